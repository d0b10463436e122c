#!/usr/bin/python3
"""A Cohort worker in Python on the SDK (clients/python): cohort.Worker and two kinds.

  python.upper  the payload (UTF-8) uppercased; a payload that is not UTF-8 fails with
                Error.code "bad_payload"
  python.sleep  sleeps for the payload ("250ms", "2s"); a cancel from the broker reaches
                it as asyncio.CancelledError (Error.code "cancelled")

The worker declares its kinds to the broker, runs at most --capacity jobs at once,
heartbeats, reconnects with backoff keeping its running jobs, and on SIGTERM or SIGINT
drains: no new work, what it holds finishes (interrupted after --drain-grace), then it
exits 0. If the broker refuses it (a bad queue name, bad credentials) it says why on
stderr and exits 1. stdout has one line per event: connected, started, completed,
draining, stopped. The same worker runs with `python -m cohort.worker worker:worker`.

    /usr/bin/python3 examples/python/worker.py --broker=127.0.0.1:7070 --queue=python
"""

import argparse
import asyncio
import logging
import re
import signal
import sys

import cohort

worker = cohort.Worker(queues=["python"], concurrency=4)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


@worker.task("python.upper")
async def upper(payload: bytes) -> str:
    try:
        return payload.decode("utf-8").upper()
    except UnicodeDecodeError as e:
        raise cohort.TaskError("bad_payload", f"python.upper wants UTF-8 text: {e}") from e


@worker.task("python.sleep")
async def sleep(payload: bytes) -> str:
    text = payload.decode("utf-8", errors="replace")
    match = _DURATION.match(text)
    if not match:
        raise cohort.TaskError("bad_payload", f'python.sleep wants a duration like "250ms" or "2s", got "{text}"')
    await asyncio.sleep(float(match[1]) * _UNIT_SECONDS[match[2]])
    return f"slept {text}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", help="the broker, HOST:PORT (default: $COHORT_SERVER, the config file)")
    parser.add_argument("--queue", default="python", help="queue to take jobs from")
    parser.add_argument("--capacity", type=int, default=4, help="jobs at once (1..10000)")
    parser.add_argument("--executor-id", help="stable id (default python-HOST-PID); leases belong to it")
    parser.add_argument("--drain-grace", type=float, default=30, help="seconds a drain lets jobs finish")
    args = parser.parse_args()
    if not 1 <= args.capacity <= 10_000:
        parser.error("--capacity must be in 1..10000")
    if args.broker:
        worker.target = args.broker
    worker.queues = [args.queue]
    worker.concurrency = args.capacity
    worker.drain_grace = args.drain_grace
    if args.executor_id:
        worker.executor_id = args.executor_id
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    try:
        asyncio.run(_serve())
    except cohort.WorkerError as e:
        print(f"worker.py: {e}", file=sys.stderr)
        return 1
    return 0


async def _serve() -> None:
    """worker.run() with SIGTERM and SIGINT starting its drain."""
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, worker.stop, s.name)
    await worker.run()


if __name__ == "__main__":
    sys.exit(main())
