"""The Celery side's app and its one task, imported by the worker (`celery -A celery_app
worker`) and by celery_driver.py. Broker and result backend are the Redis that
celery_bench.py started ($REDIS_URL: databases 0 and 1)."""

import os

from celery import Celery

_redis = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
app = Celery("bench", broker=f"{_redis}/0", backend=f"{_redis}/1")
app.conf.update(task_default_queue="bench", worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@app.task(name="bench.noop")
def noop() -> None:
    return None
