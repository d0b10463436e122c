"""The Cohort side's worker: a cohort.Worker (the Python SDK) running the no-op kind
`bench.noop` on the `bench` queue at $CONCURRENCY (16 by default). Prints "ready" on
stdout once the broker has welcomed it; stops (drains) on SIGTERM.

Usage: COHORT_SERVER=HOST:PORT PYTHONPATH=<installed clients/python> python3 cohort_worker.py
"""

import asyncio
import logging
import os
import signal

import cohort

worker = cohort.Worker(os.environ["COHORT_SERVER"], queues=["bench"],
                       concurrency=int(os.environ.get("CONCURRENCY", "16")), executor_id="bench-python-worker")


@worker.task("bench.noop")
async def noop(payload: bytes) -> None:
    return None


async def main() -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, worker.stop, "SIGTERM")
    running = asyncio.create_task(worker.run())
    while worker.sessions == 0 and not running.done():
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await running


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)  # as Celery's worker: no line per task
    asyncio.run(main())
