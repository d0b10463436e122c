"""Drives Cohort for celery_bench.py through the Python SDK's asyncio face (cohort
package): submit_many / submit, cohort.gather, awaiting job handles.

One command per stdin line (JSON), one JSON result per stdout line (bench/peers/peers.py,
`Driver`); prints {"ready": true} once one job has made the round trip (so the worker
is up). Usage: COHORT_SERVER=HOST:PORT PYTHONPATH=<installed clients/python> python3 cohort_driver.py
"""

import asyncio
import json
import os
import sys
import time

import cohort

QUEUE, KIND = "bench", "bench.noop"
BATCH = 1000  # jobs per Submit
MAX_WAIT_IDS = 10_000  # the broker's default --max-wait-ids


async def throughput(client: cohort.Client, n: int) -> dict:
    """Submit n (batches of BATCH) and wait for every result."""
    t0 = time.perf_counter()
    jobs: list[cohort.Job] = []
    for i in range(0, n, BATCH):
        jobs += await client.submit_many([cohort.spec(QUEUE, KIND)] * min(BATCH, n - i))
    await asyncio.gather(*(cohort.gather(*jobs[i:i + MAX_WAIT_IDS]) for i in range(0, n, MAX_WAIT_IDS)))
    return {"s": time.perf_counter() - t0}


async def roundtrip(client: cohort.Client, n: int) -> dict:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await (await client.submit(QUEUE, KIND))
        samples.append(time.perf_counter() - t0)
    return {"samples": samples}


async def fanout(client: cohort.Client, n: int) -> dict:
    """n jobs submitted and awaited concurrently from one coroutine, as asyncio tasks
    would be: each submit is its own RPC, each await its own WaitFor."""
    t0 = time.perf_counter()
    jobs = await asyncio.gather(*(client.submit(QUEUE, KIND) for _ in range(n)))
    await asyncio.gather(*jobs)
    return {"s": time.perf_counter() - t0}


async def main() -> None:
    async with cohort.connect(os.environ["COHORT_SERVER"]) as client:
        await cohort.wait_for(await client.submit(QUEUE, KIND), 120)
        print(json.dumps({"ready": True}), flush=True)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            command = json.loads(line)
            op, n = command["op"], command["n"]
            if op in ("throughput", "gather"):
                out = await throughput(client, n)
            elif op == "roundtrip":
                out = await roundtrip(client, n)
            elif op == "fanout":
                out = await fanout(client, n)
            else:
                raise SystemExit(f"cohort_driver: unknown op {op!r}")
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
