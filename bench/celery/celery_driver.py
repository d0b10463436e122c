"""Drives Celery for celery_bench.py, as a Celery user's client does: tasks sent with
delay()/group(), results read from the Redis result backend with AsyncResult.get().

One command per stdin line (JSON), one JSON result per stdout line (bench/peers/peers.py,
`Driver`); prints {"ready": true} once one task has made the round trip (so the worker
is up). Usage: REDIS_URL=redis://127.0.0.1:PORT python3 celery_driver.py
"""

import asyncio
import concurrent.futures
import json
import sys
import time

from celery import group

from celery_app import noop

TIMEOUT = 600.0


def throughput(n: int) -> dict:
    """Submit n (one group) and wait for every result."""
    t0 = time.perf_counter()
    result = group(noop.s() for _ in range(n)).apply_async()
    result.get(timeout=TIMEOUT)
    return {"s": time.perf_counter() - t0}


def roundtrip(n: int) -> dict:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        noop.delay().get(timeout=TIMEOUT)
        samples.append(time.perf_counter() - t0)
    return {"samples": samples}


async def fanout(n: int, pool: concurrent.futures.Executor) -> dict:
    """n tasks awaited concurrently from one coroutine: Celery has no asyncio face, so
    each blocking get() runs in a thread of its own (pool has n threads), on that
    thread's own result backend (Celery's backends are per thread and not thread-safe)."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    ids = [noop.delay().id for _ in range(n)]
    await asyncio.gather(*(loop.run_in_executor(pool, lambda i=i: noop.AsyncResult(i).get(timeout=TIMEOUT))
                           for i in ids))
    return {"s": time.perf_counter() - t0}


def main() -> None:
    noop.delay().get(timeout=120)
    print(json.dumps({"ready": True}), flush=True)
    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        for line in sys.stdin:
            command = json.loads(line)
            op, n = command["op"], command["n"]
            if op in ("throughput", "gather"):
                out = throughput(n)
            elif op == "roundtrip":
                out = roundtrip(n)
            elif op == "fanout":
                out = asyncio.run(fanout(n, pool))
            else:
                raise SystemExit(f"celery_driver: unknown op {op!r}")
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
