"""The asyncio client against a real cohort-dev: each function, checked against what the
broker records."""

from __future__ import annotations

import asyncio

import grpc
import pytest

import cohort
from cohort import config
from cohort.pb import job_pb2
from conftest import BUILTIN
from fault_proxy import FaultProxy

LONG = "60s"


async def test_awaiting_a_submitted_job_returns_its_result(client: cohort.Client) -> None:
    job = await client.submit(BUILTIN, "builtin.echo", "hello")
    assert await job == b"hello"
    assert job.done()
    info = await job.info()
    assert info.state == job_pb2.JOB_STATE_SUCCEEDED
    assert info.result == b"hello"


async def test_gather_returns_results_in_submission_order(client: cohort.Client) -> None:
    jobs = await client.submit_many([cohort.spec(BUILTIN, "builtin.sleep", f"{300 - 50 * i}ms") for i in range(5)]
                                    + [cohort.spec(BUILTIN, "builtin.echo", "last")])
    results = await cohort.gather(*jobs)
    assert results == [f"{300 - 50 * i}ms".encode() for i in range(5)] + [b"last"]
    assert await cohort.gather() == []


async def test_gather_raises_the_failed_jobs_error_with_its_code_and_attempts(client: cohort.Client) -> None:
    ok, bad = await client.submit_many([cohort.spec(BUILTIN, "builtin.echo", "fine"),
                                        cohort.spec(BUILTIN, "builtin.fail", "no such customer", max_attempts=2,
                                                    backoff=job_pb2.Backoff(multiplier=1))])
    bad_spec = await bad.info()
    assert bad_spec.spec.max_attempts == 2
    with pytest.raises(cohort.JobFailed) as raised:
        await cohort.gather(ok, bad)
    assert raised.value.job_id == bad.id
    assert raised.value.code == "handler"
    assert raised.value.message == "no such customer"
    assert raised.value.attempts == 2
    results = await cohort.gather(ok, bad, return_exceptions=True)
    assert results[0] == b"fine"
    assert isinstance(results[1], cohort.JobFailed) and results[1].attempts == 2
    with pytest.raises(cohort.JobFailed):
        await bad  # the handle remembers its outcome


async def test_wait_first_completed_returns_done_and_pending_and_cancels_nothing(client: cohort.Client) -> None:
    short, long = await client.submit_many([cohort.spec(BUILTIN, "builtin.sleep", "50ms", priority=1),
                                            cohort.spec(BUILTIN, "builtin.sleep", LONG)])
    done, pending = await cohort.wait([short, long], return_when=cohort.FIRST_COMPLETED, timeout=30)
    assert done == {short} and pending == {long}
    assert await short == b"50ms"
    assert (await long.info()).state in (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING)
    done, pending = await cohort.wait([long], timeout=0)
    assert (done, pending) == (set(), {long})
    assert await long.cancel() is True
    with pytest.raises(cohort.JobCancelled) as raised:
        await long
    assert raised.value.state == "CANCELLED"
    assert await long.cancel() is False
    with pytest.raises(ValueError):
        await cohort.wait([])
    with pytest.raises(ValueError):
        await cohort.wait([short], return_when="SOMETIMES")


async def test_wait_for_times_out_and_the_broker_cancels_the_job(client: cohort.Client) -> None:
    job = await client.submit(BUILTIN, "builtin.sleep", LONG)
    with pytest.raises(TimeoutError):
        await cohort.wait_for(job, 0.3)
    with pytest.raises(cohort.JobCancelled) as raised:
        await job
    assert raised.value.code == "cancelled"
    assert await cohort.wait_for(await client.submit(BUILTIN, "builtin.echo", "x"), 30) == b"x"


async def test_wait_for_a_shielded_job_times_out_and_leaves_it_running(client: cohort.Client) -> None:
    job = await client.submit(BUILTIN, "builtin.sleep", "1s")
    with pytest.raises(TimeoutError):
        await cohort.wait_for(cohort.shield(job), 0.2)
    assert await cohort.wait_for(job, 30) == b"1s"


async def test_as_completed_yields_jobs_as_they_end_earliest_first(client: cohort.Client) -> None:
    jobs = await client.submit_many([cohort.spec(BUILTIN, "builtin.sleep", d) for d in ("900ms", "10ms", "400ms")])
    order = [await job async for job in cohort.as_completed(jobs, timeout=30)]
    assert order == [b"10ms", b"400ms", b"900ms"]
    long = await client.submit(BUILTIN, "builtin.sleep", LONG)
    with pytest.raises(TimeoutError):
        async for _ in cohort.as_completed([long], timeout=0.2):
            pass
    assert await long.cancel()


async def test_cancelling_the_awaiting_coroutine_cancels_the_job_only_when_asked(client: cohort.Client) -> None:
    kept, cancelled = await client.submit_many([cohort.spec(BUILTIN, "builtin.sleep", LONG)] * 2)
    for job, flag in ((kept, False), (cancelled, True)):
        waiter = asyncio.create_task(job.result(cancel_on_disconnect=flag))
        await asyncio.sleep(0.2)  # lets the WaitFor reach the broker; what is checked is the job's state after
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    with pytest.raises(cohort.JobCancelled):
        await cohort.wait_for(cancelled, 30)
    assert (await kept.info()).state in (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING)
    assert await kept.cancel()


async def test_watch_streams_the_jobs_transitions_in_order(client: cohort.Client) -> None:
    job = await client.submit(BUILTIN, "builtin.echo", "watched")
    await job
    states = []
    async for event in client.watch():
        if event.job_id == job.id:
            states.append(cohort.state_name(event.to_state))
            if event.to_state == job_pb2.JOB_STATE_SUCCEEDED:
                break
    assert states == ["QUEUED", "RUNNING", "SUCCEEDED"]


async def test_queues_pause_resume_and_limits(client: cohort.Client, queue: str) -> None:
    assert await client.create_queue(queue) is True
    await client.pause_queue(queue)
    limits = await client.set_queue_limits(queue, max_concurrency=3, max_rate=10.5)
    assert (limits.max_concurrency, limits.max_rate) == (3, 10.5)
    info = {q.name: q for q in await client.list_queues()}[queue]
    assert info.paused and info.limits.max_concurrency == 3
    await client.resume_queue(queue)
    assert not {q.name: q for q in await client.list_queues()}[queue].paused
    with pytest.raises(cohort.CohortError) as raised:
        await client.pause_queue("Bad Queue")
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_executors_and_list_jobs(client: cohort.Client) -> None:
    executors = await client.list_executors()
    assert any(BUILTIN in e.queues for e in executors)
    job = await client.submit(BUILTIN, "builtin.echo", "listed")
    await job
    ids = [j.id async for j in client.list_jobs(queue=BUILTIN, states=[job_pb2.JOB_STATE_SUCCEEDED], page_size=2)]
    assert job.id in ids


async def test_schedules_lifecycle(client: cohort.Client, queue: str) -> None:
    template = cohort.spec(BUILTIN, "builtin.echo", "scheduled")
    created = await client.create_schedule(queue, template, every=3600)
    assert created.id == queue and created.HasField("next_fire_time")
    assert (await client.pause_schedule(queue)).paused
    assert not (await client.resume_schedule(queue)).paused
    assert await (await client.trigger_schedule(queue)) == b"scheduled"
    updated = await client.update_schedule(queue, template, cron="0 3 * * *", time_zone="Europe/Paris")
    assert updated.spec.cron.expression == "0 3 * * *"
    assert queue in [s.id async for s in client.list_schedules()]
    assert (await client.get_schedule(queue)).spec.cron.time_zone == "Europe/Paris"
    await client.delete_schedule(queue)
    with pytest.raises(cohort.CohortError) as raised:
        await client.get_schedule(queue)
    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ValueError):
        await client.create_schedule(queue, template)


async def test_bad_specs_are_refused_before_any_rpc_or_by_the_broker(client: cohort.Client) -> None:
    with pytest.raises(ValueError):
        cohort.spec(BUILTIN, "builtin.echo", delay=-1)
    with pytest.raises(cohort.CohortError) as raised:
        await client.submit("Bad Queue", "builtin.echo")
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_unreachable_broker_is_unavailable() -> None:
    async with cohort.connect("127.0.0.1:1", rpc_timeout=10) as client:
        with pytest.raises(cohort.CohortError) as raised:
            await client.submit(BUILTIN, "builtin.echo")
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE


def test_sync_client_submits_and_waits(dev) -> None:  # type: ignore[no-untyped-def]
    from cohort.sync import connect

    with connect(dev.address) as client:
        job = client.submit(BUILTIN, "builtin.echo", "sync")
        assert client.result(job, timeout=30) == b"sync"
        assert client.gather([job]) == [b"sync"]
        assert client.get_job(job.id).state == job_pb2.JOB_STATE_SUCCEEDED


async def test_a_wait_over_a_wedged_link_fails_within_the_keepalive_bound(dev, queue: str) -> None:  # type: ignore[no-untyped-def]
    # A link that stays open but carries nothing (a dead NAT entry, a stalled peer)
    # would hold a 60 s wait for all of it; the channel's keepalive ping goes unanswered
    # and the call fails UNAVAILABLE within a ping interval and its timeout (retrying off:
    # a retried wait would dial the same stalled link again).
    proxy = FaultProxy(dev.address)
    await proxy.start()
    try:
        async with cohort.Client(proxy.address, options=[("grpc.keepalive_time_ms", 1000)],
                                 retry=cohort.RetryPolicy(deadline=0)) as client:
            job = await client.submit(queue, "nothing.serves.this")
            assert proxy.stall() == 1
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(cohort.CohortError) as failed:
                await asyncio.wait_for(cohort.wait_for(job, 60), 20)
            assert failed.value.code == grpc.StatusCode.UNAVAILABLE
            assert loop.time() - started < 10
    finally:
        await proxy.close()


def test_channel_options_add_keepalive_unless_the_caller_sets_it() -> None:
    defaults = dict(config.channel_options())
    assert defaults["grpc.keepalive_time_ms"] == config.DEFAULT_KEEPALIVE_MS
    assert defaults["grpc.keepalive_timeout_ms"] == 10_000
    assert defaults["grpc.keepalive_permit_without_calls"] == 1
    mine = dict(config.channel_options([("grpc.keepalive_time_ms", 2000), ("grpc.primary_user_agent", "x")]))
    assert mine["grpc.keepalive_time_ms"] == 2000 and mine["grpc.keepalive_timeout_ms"] == 2000
    assert mine["grpc.primary_user_agent"] == "x"
