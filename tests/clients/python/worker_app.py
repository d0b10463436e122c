"""The worker `python -m cohort.worker worker_app:worker` runs in test_worker.py."""

import asyncio

import cohort

worker = cohort.Worker(concurrency=2, drain_grace=20)


@worker.task("py.sleep")
async def sleep(payload: bytes) -> str:
    await asyncio.sleep(float(payload))
    return f"slept {payload.decode()}"
