"""The Python SDK's own cost per call (run.sh --mode overhead): the same RPCs made through
the SDK and through a raw grpc.aio method handle (what a generated stub does), against a
live cohort-broker, alternated in blocks of --calls sequential calls, --runs times each.

SDK overhead = median(SDK) - median(raw), per call, for
- submit: client.submit(queue, kind) vs Submit(SubmitRequest) of the same spec;
- await: `await client.job(id)` of a finished job (a fresh handle, so one WaitFor RPC) vs
  WaitFor(WaitForRequest);
- gather 100: cohort.gather(*100 fresh handles of finished jobs) vs Gather(GatherRequest).
Two measurements, each a table of µs per call:
- isolated: the transport replaced by an in-process fake that returns the broker's
  recorded response at once, for the SDK and for the raw handle alike, so the
  difference is exactly the SDK's Python (building the request, handles, outcomes,
  error mapping) and is not hidden in network noise;
- live: against the broker, wall and client-process CPU time per call (noisy on a busy
  machine: the broker's fsync and the loopback vary more than the SDK costs).

Usage: COHORT_SERVER=HOST:PORT PYTHONPATH=<installed clients/python> python3 overhead.py
"""

import argparse
import asyncio
import os
import statistics
import time
from typing import Awaitable, Callable

import grpc

import cohort
from cohort.pb import broker_pb2, job_pb2

IDLE_QUEUE = "overhead-idle"  # no worker serves it: submitted jobs just wait
QUEUE, KIND = "bench", "bench.noop"  # served by the benchmark's worker
GATHER = 100


def raw_method(channel: grpc.aio.Channel, name: str, response: type) -> Callable:
    return channel.unary_unary(f"/cohort.v1.Broker/{name}", request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=response.FromString)


async def measure(calls: int, make: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    """(CPU µs, wall µs) per call over `calls` sequential calls of make(i)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(calls):
        await make(i)
    return (time.process_time() - cpu0) / calls * 1e6, (time.perf_counter() - wall0) / calls * 1e6


class Fake:
    """Stands in for a grpc.aio unary multicallable: returns `response` at once (after
    one trip through the event loop, as a completed RPC's await does)."""

    def __init__(self, response: object) -> None:
        self.response = response

    async def __call__(self, request: object, timeout: float | None = None) -> object:
        await asyncio.sleep(0)
        return self.response


async def isolated(client: cohort.Client, runs: int, finished: list[str], groups: list[list[str]]) -> list[tuple]:
    """Per-call wall time of the SDK and of the raw call over a Fake transport."""
    broker = client._broker
    fake_submit = Fake(broker_pb2.SubmitResponse(job_ids=[finished[0]]))
    fake_wait = Fake(broker_pb2.WaitForResponse(result=b""))
    fake_gather = Fake(broker_pb2.GatherResponse(outcomes=[
        broker_pb2.JobOutcome(job_id=j, state=job_pb2.JOB_STATE_SUCCEEDED, result=b"") for j in groups[0]]))
    saved = (broker.Submit._call, broker.WaitFor._call, broker.Gather._call)
    broker.Submit._call, broker.WaitFor._call, broker.Gather._call = fake_submit, fake_wait, fake_gather
    spec = job_pb2.JobSpec(queue=IDLE_QUEUE, kind=KIND)
    try:
        async def sdk_submit(i: int) -> object:
            return await client.submit(IDLE_QUEUE, KIND)

        async def raw_submit(i: int) -> object:
            return (await fake_submit(broker_pb2.SubmitRequest(jobs=[spec]), timeout=30.0)).job_ids[0]

        async def sdk_await(i: int) -> object:
            return await client.job(finished[i % len(finished)])

        async def raw_await(i: int) -> object:
            return (await fake_wait(broker_pb2.WaitForRequest(job_id=finished[i % len(finished)]), timeout=None)).result

        handles = [client.job(j) for j in groups[0]]  # as submit returned them

        async def sdk_gather(i: int) -> object:
            return await cohort.gather(*handles)

        async def raw_gather(i: int) -> object:
            response = await fake_gather(broker_pb2.GatherRequest(job_ids=groups[0]), timeout=None)
            return [o.result for o in response.outcomes]

        rows = []
        for name, calls, sdk, raw in [("submit", 20_000, sdk_submit, raw_submit),
                                      ("await a finished job", 20_000, sdk_await, raw_await),
                                      (f"gather of {GATHER} finished jobs", 2_000, sdk_gather, raw_gather)]:
            sdk_us, raw_us = [], []
            for run in range(runs):
                pair = [(sdk, sdk_us), (raw, raw_us)]
                for fn, into in pair if run % 2 == 0 else pair[::-1]:
                    into.append((await measure(calls, fn))[1])
            rows.append((name, calls, statistics.median(sdk_us), statistics.median(raw_us)))
        return rows
    finally:
        broker.Submit._call, broker.WaitFor._call, broker.Gather._call = saved


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    address = os.environ["COHORT_SERVER"]
    async with cohort.connect(address) as client, grpc.aio.insecure_channel(address) as channel:
        submit = raw_method(channel, "Submit", broker_pb2.SubmitResponse)
        wait_for = raw_method(channel, "WaitFor", broker_pb2.WaitForResponse)
        gather = raw_method(channel, "Gather", broker_pb2.GatherResponse)
        idle_spec = job_pb2.JobSpec(queue=IDLE_QUEUE, kind=KIND)
        finished = [job.id for job in await client.submit_many([cohort.spec(QUEUE, KIND)] * args.calls)]
        await cohort.gather(*(client.job(i) for i in finished))
        groups = [finished[i:i + GATHER] for i in range(0, len(finished), GATHER)]
        gathers = max(1, args.calls // 10)

        async def sdk_submit(i: int) -> object:
            return await client.submit(IDLE_QUEUE, KIND)

        async def raw_submit(i: int) -> object:
            return await submit(broker_pb2.SubmitRequest(jobs=[idle_spec]), timeout=client.rpc_timeout)

        async def sdk_await(i: int) -> object:
            return await client.job(finished[i])

        async def raw_await(i: int) -> object:
            response = await wait_for(broker_pb2.WaitForRequest(job_id=finished[i]), timeout=None)
            return response.result

        handles = [[client.job(j) for j in group] for group in groups]  # as submit_many returned them

        async def sdk_gather(i: int) -> object:
            return await cohort.gather(*handles[i % len(handles)])

        async def raw_gather(i: int) -> object:
            response = await gather(broker_pb2.GatherRequest(job_ids=groups[i % len(groups)]), timeout=None)
            return [o.result for o in response.outcomes]

        ops = [("submit", args.calls, sdk_submit, raw_submit), ("await a finished job", args.calls, sdk_await, raw_await),
               (f"gather of {GATHER} finished jobs", gathers, sdk_gather, raw_gather)]
        await measure(100, sdk_submit)  # warm-up: connections, caches
        await measure(100, raw_submit)
        rows = []
        for name, calls, sdk, raw in ops:
            sdk_runs: list[tuple[float, float]] = []
            raw_runs: list[tuple[float, float]] = []
            for run in range(args.runs):  # alternated, and the order flipped every run
                pair = [(sdk, sdk_runs), (raw, raw_runs)]
                for fn, into in pair if run % 2 == 0 else pair[::-1]:
                    into.append(await measure(calls, fn))
            s_cpu, s_wall = (statistics.median(r[k] for r in sdk_runs) for k in (0, 1))
            r_cpu, r_wall = (statistics.median(r[k] for r in raw_runs) for k in (0, 1))
            rows.append((name, calls, s_cpu, r_cpu, s_wall, r_wall))
        alone = await isolated(client, args.runs, finished, groups)
    print(f"\nThe SDK's own cost per call (transport faked, the same for both): medians of {args.runs} "
          "alternated blocks of sequential calls\n")
    print("| call | calls per block | µs/call through the SDK | raw grpc.aio-shaped call | **SDK overhead** |")
    print("|---|---|---|---|---|")
    for name, calls, sdk_us, raw_us in alone:
        print(f"| {name} | {calls:,} | {sdk_us:.1f} | {raw_us:.1f} | **{sdk_us - raw_us:.1f} µs** |")
    print(f"\nAgainst the live broker: medians of {args.runs} alternated blocks (SDK, raw grpc.aio) of "
          "sequential calls\n")
    print("| call | calls per block | CPU µs/call SDK | raw | CPU difference | wall µs/call SDK | raw | "
          "wall difference |")
    print("|---|---|---|---|---|---|---|---|")
    for name, calls, s_cpu, r_cpu, s_wall, r_wall in rows:
        print(f"| {name} | {calls:,} | {s_cpu:.0f} | {r_cpu:.0f} | {s_cpu - r_cpu:.0f} | {s_wall:.0f} | {r_wall:.0f} | "
              f"{s_wall - r_wall:.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
