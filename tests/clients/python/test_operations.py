"""The operations API against a real cohort-dev: retry and delete one job, bulk
operations over a filter, queues created and deleted, and listings filtered by labels,
kind and state, newest first."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

import cohort
from cohort.pb import broker_pb2, job_pb2
from conftest import BUILTIN

BOUND = 30.0


async def test_retry_job_runs_a_failed_job_again_with_the_same_id(client: cohort.Client) -> None:
    job = await client.submit(BUILTIN, "builtin.fail", "first", max_attempts=1)
    with pytest.raises(cohort.JobFailed):
        await cohort.wait_for(job, BOUND)
    failed = await job.info()
    retried = await client.retry_job(job.id, expected_attempt=failed.attempt)
    assert retried.retried and retried.job.id == job.id and retried.job.retry_count == 1
    assert (await client.retry_job(job.id, expected_attempt=failed.attempt)).retried is False  # resent: no second retry
    with pytest.raises(cohort.JobFailed) as again:
        await cohort.wait_for(client.job(job.id), BOUND)
    assert again.value.attempts == 2
    ok = await client.submit(BUILTIN, "builtin.echo", "fine")
    await ok
    with pytest.raises(cohort.CohortError) as refused:
        await client.retry_job(ok.id)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_delete_job_removes_a_job_for_good_and_refuses_a_running_one(
        client: cohort.Client, queue: str) -> None:
    queued = await client.submit(queue, "py.never")  # nobody serves this queue
    assert await client.delete_job(queued.id) == job_pb2.JOB_STATE_QUEUED
    for call in (client.get_job(queued.id), client.delete_job(queued.id)):
        with pytest.raises(cohort.CohortError) as missing:
            await call
        assert missing.value.code == grpc.StatusCode.NOT_FOUND
    running = await client.submit(BUILTIN, "builtin.sleep", "60s")
    async with asyncio.timeout(BOUND):
        async for event in client.watch():
            if event.job_id == running.id and event.to_state == job_pb2.JOB_STATE_RUNNING:
                break
    with pytest.raises(cohort.CohortError) as refused:
        await client.delete_job(running.id)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    await running.cancel()


async def test_listing_filters_by_labels_kind_and_state_newest_first(client: cohort.Client, queue: str) -> None:
    jobs = await client.submit_many([cohort.spec(queue, kind, labels=labels) for kind, labels in [
        ("a.kind", {"team": "red"}), ("b.kind", {"team": "blue"}), ("a.kind", {"team": "blue", "urgent": "1"})]])
    listed = [j.id async for j in client.list_jobs(cohort.job_filter(queue=queue, labels="team=blue"),
                                                   newest_first=True)]
    assert listed == [jobs[2].id, jobs[1].id]
    listed = [j.id async for j in client.list_jobs(cohort.job_filter(queue=queue, kind="a.kind", labels="!urgent"))]
    assert listed == [jobs[0].id]
    queued = cohort.job_filter(queue=queue, states=[job_pb2.JOB_STATE_QUEUED])
    assert [j.id async for j in client.list_jobs(queued, page_size=1)] == [j.id for j in jobs]
    with pytest.raises(cohort.CohortError) as malformed:
        [j async for j in client.list_jobs(cohort.job_filter(labels="team in (red"))]
    assert malformed.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_bulk_cancel_counts_then_applies_to_the_jobs_that_match(client: cohort.Client, queue: str) -> None:
    jobs = await client.submit_many([cohort.spec(queue, "py.never", labels={"batch": str(i % 2)}) for i in range(6)])
    selector = cohort.job_filter(queue=queue, labels="batch=1")
    dry = await client.start_bulk_operation("cancel", selector, dry_run=True)
    assert (dry.id, dry.matched, dry.state) == ("", 3, broker_pb2.BulkOperation.STATE_DONE)
    started = await client.start_bulk_operation("cancel", selector, request_id=f"cancel-{queue}")
    assert (await client.start_bulk_operation("cancel", selector, request_id=f"cancel-{queue}")).id == started.id
    deadline = time.monotonic() + BOUND
    operation = started
    while operation.state != broker_pb2.BulkOperation.STATE_DONE:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
        operation = await client.get_bulk_operation(started.id)
    assert (operation.matched, operation.changed, operation.skipped) == (3, 3, 0)
    states = [(await j.info()).state for j in jobs]
    assert states == [job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_CANCELLED] * 3
    assert started.id in [o.id for o in await client.list_bulk_operations()]
    with pytest.raises(cohort.CohortError) as unfiltered:
        await client.start_bulk_operation("delete", cohort.job_filter())
    assert unfiltered.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_queues_are_created_and_deleted_with_their_jobs(client: cohort.Client, queue: str) -> None:
    assert await client.create_queue(queue, paused=True, max_concurrency=2) is True
    assert await client.create_queue(queue) is False
    info = {q.name: q for q in await client.list_queues()}[queue]
    assert info.paused and info.limits.max_concurrency == 2
    await client.submit_many([cohort.spec(queue, "py.never")] * 2)
    with pytest.raises(cohort.CohortError) as holds_jobs:
        await client.delete_queue(queue)
    assert holds_jobs.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert await client.delete_queue(queue, delete_jobs=True) == 2
    assert queue not in {q.name for q in await client.list_queues()}
    with pytest.raises(cohort.CohortError) as missing:
        await client.pause_queue(queue)
    assert missing.value.code == grpc.StatusCode.NOT_FOUND
