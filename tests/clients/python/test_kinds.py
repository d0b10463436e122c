"""Kinds declared to the broker (Hello.kinds): a Python worker and cohort-dev's own
executor on the same queue each get only the jobs of their kinds, and a kind nobody runs
waits, reported as unserved, instead of failing."""

from __future__ import annotations

import asyncio

import cohort
from cohort.pb import job_pb2
from conftest import BUILTIN, CohortDev

BOUND = 30.0


async def test_a_worker_and_the_builtin_executor_on_one_queue_each_get_only_their_kinds(
        dev: CohortDev, client: cohort.Client) -> None:
    worker = cohort.Worker(dev.address, queues=[BUILTIN], executor_id="kinds-worker", concurrency=4)

    @worker.task("py.shout")
    async def shout(payload: bytes) -> bytes:
        return payload.upper() + b"!"

    running = asyncio.create_task(worker.run())
    try:
        specs = [cohort.spec(BUILTIN, "py.shout" if i % 2 else "builtin.echo", f"m{i}") for i in range(12)]
        jobs = await client.submit_many(specs)
        results = await asyncio.wait_for(cohort.gather(*jobs), BOUND)
        assert results == [f"M{i}!".encode() if i % 2 else f"m{i}".encode() for i in range(12)]
        for i, job in enumerate(jobs):
            attempts = (await job.info()).attempts
            assert len(attempts) == 1
            assert (attempts[0].executor_id == "kinds-worker") == bool(i % 2), (i, attempts[0].executor_id)

        nobody = await client.submit(BUILTIN, "py.nobody")
        queue = {q.name: q for q in await client.list_queues()}[BUILTIN]
        assert list(queue.unserved_kinds) == ["py.nobody"] and queue.unserved == 1
        assert (await nobody.info()).state == job_pb2.JOB_STATE_QUEUED
        assert await nobody.cancel()
    finally:
        worker.stop("test over")
        await asyncio.wait_for(running, BOUND)
