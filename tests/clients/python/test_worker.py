"""cohort.Worker against a real cohort-dev: results and errors, cancel reaching a running
Python task, timeouts, progress, concurrency, reconnect across a cut or a wedged
connection keeping its running job, and drain on SIGTERM through `python -m cohort.worker`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from typing import AsyncIterator, Callable

import pytest

import cohort
from cohort.pb import broker_pb2, job_pb2
from conftest import CohortDev
from fault_proxy import FaultProxy

BOUND = 30.0  # seconds: generous, CI runs on two cores


async def until(condition: Callable[[], bool], what: str) -> None:
    """Waits for a condition that an event elsewhere makes true, within BOUND."""
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Probe:
    """What the test's tasks saw."""

    def __init__(self) -> None:
        self.started: dict[str, asyncio.Event] = {}
        self.release = asyncio.Event()
        self.cancelled: list[str] = []
        self.thread_cancelled = threading.Event()
        self.running = 0
        self.most_running = 0

    def start(self, job_id: str) -> None:
        self.started.setdefault(job_id, asyncio.Event()).set()

    async def wait_started(self, job_id: str) -> None:
        await asyncio.wait_for(self.started.setdefault(job_id, asyncio.Event()).wait(), BOUND)


def make_worker(target: str, queue: str, probe: Probe, **options: object) -> cohort.Worker:
    worker = cohort.Worker(target, queues=[queue], executor_id=f"test-{queue}", **options)  # type: ignore[arg-type]

    @worker.task("py.upper")
    async def upper(payload: bytes) -> bytes:
        return payload.upper()

    @worker.task("py.sync")
    def in_thread(payload: bytes, ctx: cohort.TaskContext) -> str:
        assert threading.current_thread() is not threading.main_thread()
        return f"{ctx.kind} {ctx.attempt} {payload.decode()}"

    @worker.task("py.fail")
    async def fail(payload: bytes) -> None:
        raise cohort.TaskError("bad_input", payload.decode())

    @worker.task("py.crash")
    async def crash(payload: bytes) -> None:
        raise KeyError(payload.decode())

    @worker.task("py.gate")
    async def gate(payload: bytes, ctx: cohort.TaskContext) -> bytes:
        probe.start(ctx.job_id)
        probe.running += 1
        probe.most_running = max(probe.most_running, probe.running)
        try:
            await ctx.progress(0.5, "half")
            await probe.release.wait()
            return b"released"
        except asyncio.CancelledError:
            probe.cancelled.append(ctx.job_id)
            raise
        finally:
            probe.running -= 1

    @worker.task("py.blocking")
    def blocking(payload: bytes, ctx: cohort.TaskContext) -> bytes:
        ctx.set_progress(0.1)
        if ctx.cancelled.wait(BOUND):
            probe.thread_cancelled.set()
        return b"finished anyway"

    return worker


@pytest.fixture
async def served(dev: CohortDev, client: cohort.Client, queue: str) -> AsyncIterator[tuple[cohort.Worker, Probe]]:
    probe = Probe()
    worker = make_worker(dev.address, queue, probe, concurrency=2)
    running = asyncio.create_task(worker.run())
    await until(lambda: worker.sessions >= 1 or running.done(), "the worker's welcome")
    yield worker, probe
    probe.release.set()
    worker.stop("test over")
    await asyncio.wait_for(running, BOUND)


async def test_worker_runs_async_and_thread_tasks_and_reports_their_errors(
        client: cohort.Client, queue: str, served: tuple[cohort.Worker, Probe]) -> None:
    jobs = await client.submit_many([cohort.spec(queue, k, p) for k, p in [
        ("py.upper", "hello"), ("py.sync", "x"), ("py.fail", "bad"), ("py.crash", "k")]])
    results = await cohort.gather(*jobs, return_exceptions=True)
    assert results[:2] == [b"HELLO", b"py.sync 1 x"]
    codes = [(r.code, r.message) if isinstance(r, cohort.JobError) else None for r in results[2:]]
    assert codes == [("bad_input", "bad"), ("handler", "KeyError: 'k'")]
    for job in jobs:
        assert (await job.info()).attempts[0].executor_id == f"test-{queue}"
    executors = {e.executor_id: e for e in await client.list_executors()}
    assert list(executors[f"test-{queue}"].kinds) == ["py.blocking", "py.crash", "py.fail", "py.gate", "py.sync",
                                                       "py.upper"]
    assert executors[f"test-{queue}"].labels["language"] == "python"


async def test_cancel_reaches_a_running_async_task_as_cancelled_error(
        client: cohort.Client, queue: str, served: tuple[cohort.Worker, Probe]) -> None:
    _, probe = served
    job = await client.submit(queue, "py.gate")
    await probe.wait_started(job.id)
    assert await job.cancel() is True
    with pytest.raises(cohort.JobCancelled) as raised:
        await cohort.wait_for(job, BOUND)
    assert raised.value.code == "cancelled"
    assert probe.cancelled == [job.id]


async def test_progress_is_visible_to_the_client(
        client: cohort.Client, queue: str, served: tuple[cohort.Worker, Probe]) -> None:
    _, probe = served
    job = await client.submit(queue, "py.gate")
    await probe.wait_started(job.id)
    seen: list[cohort.Progress] = []

    async def poll() -> None:
        seen.append(await job.progress())

    deadline = time.monotonic() + BOUND
    while not seen or seen[-1] != cohort.Progress(0.5, "half"):
        assert time.monotonic() < deadline, seen
        await poll()
    probe.release.set()
    assert await job == b"released"


async def test_a_plain_function_sees_the_cancel_and_the_attempt_ends_cancelled(
        client: cohort.Client, queue: str, served: tuple[cohort.Worker, Probe]) -> None:
    _, probe = served
    job = await client.submit(queue, "py.blocking")
    deadline = time.monotonic() + BOUND
    while (await job.progress()).fraction < 0.1:
        assert time.monotonic() < deadline
    assert await job.cancel()
    with pytest.raises(cohort.JobCancelled):
        await cohort.wait_for(job, BOUND)
    assert probe.thread_cancelled.is_set()


async def test_a_task_past_its_timeout_fails_with_code_timeout(
        client: cohort.Client, queue: str, served: tuple[cohort.Worker, Probe]) -> None:
    _, probe = served
    job = await client.submit(queue, "py.gate", timeout=0.3)
    with pytest.raises(cohort.JobFailed) as raised:
        await cohort.wait_for(job, BOUND)
    assert raised.value.code == "timeout"
    assert probe.cancelled == [job.id]  # the task saw CancelledError at its await, as under asyncio.timeout


async def test_at_most_concurrency_attempts_run_at_once(
        client: cohort.Client, queue: str, served: tuple[cohort.Worker, Probe]) -> None:
    _, probe = served
    jobs = await client.submit_many([cohort.spec(queue, "py.gate")] * 5)
    await until(lambda: probe.running == 2, "two attempts running")
    probe.release.set()
    assert await cohort.gather(*jobs) == [b"released"] * 5
    assert probe.most_running == 2


async def test_worker_reconnects_across_a_cut_connection_and_keeps_its_running_job(
        dev: CohortDev, client: cohort.Client, queue: str) -> None:
    # A broker restart requeues running attempts today (lease_expired), so the stream is
    # cut under a live broker instead: the lease belongs to the executor id and the
    # reconnect's Hello lists the attempt, which must run exactly once.
    proxy = FaultProxy(dev.address)
    await proxy.start()
    probe = Probe()
    worker = make_worker(proxy.address, queue, probe, concurrency=2, reconnect_backoff=(0.05, 0.2))
    running = asyncio.create_task(worker.run())
    try:
        job = await client.submit(queue, "py.gate")
        await probe.wait_started(job.id)
        assert proxy.cut() >= 1
        await until(lambda: worker.sessions >= 2, "the worker's second welcome")
        probe.release.set()
        assert await cohort.wait_for(job, BOUND) == b"released"
        info = await job.info()
        assert info.attempt == 1 and len(info.attempts) == 1
        assert list(probe.started) == [job.id] and probe.cancelled == []
    finally:
        worker.stop("test over")
        await asyncio.wait_for(running, BOUND)
        await proxy.close()


async def test_worker_redials_a_wedged_stream_and_its_running_job_completes_once(
        dev: CohortDev, client: cohort.Client, queue: str) -> None:
    # The connection stays open but carries nothing (a lost or desynchronised link): no
    # transport error comes, only the broker's heartbeat answers stop. The worker must
    # give up on the stream after 3 intervals (250 ms each here), redial on a new
    # connection, list its running attempt in the Hello and report it there.
    proxy = FaultProxy(dev.address)
    await proxy.start()
    probe = Probe()
    worker = make_worker(proxy.address, queue, probe, concurrency=2, reconnect_backoff=(0.05, 0.2))
    running = asyncio.create_task(worker.run())
    try:
        job = await client.submit(queue, "py.gate")
        await probe.wait_started(job.id)
        assert worker.sessions == 1
        assert proxy.stall() == 1
        await until(lambda: worker.sessions >= 2, "the worker's welcome on a new connection")
        assert proxy.accepted == 2  # the redial did not reuse the wedged connection
        probe.release.set()
        assert await cohort.wait_for(job, BOUND) == b"released"
        info = await job.info()
        assert info.attempt == 1 and len(info.attempts) == 1
        assert info.attempts[0].executor_id == f"test-{queue}"
        assert list(probe.started) == [job.id] and probe.cancelled == []
    finally:
        worker.stop("test over")
        await asyncio.wait_for(running, BOUND)
        await proxy.close()


async def test_an_idle_worker_keeps_its_one_stream_while_the_broker_answers_its_heartbeats(
        dev: CohortDev, client: cohort.Client, queue: str) -> None:
    # The broker answers every heartbeat, also one that lists no attempts, so the
    # watchdog (3 intervals of 250 ms) never fires on a live stream with no work.
    probe = Probe()
    worker = make_worker(dev.address, queue, probe, concurrency=2)
    running = asyncio.create_task(worker.run())
    executor_id = f"test-{queue}"
    try:
        await until(lambda: worker.sessions >= 1 or running.done(), "the worker's welcome")
        first: list[broker_pb2.ExecutorInfo] = []

        async def heartbeats_for(seconds: float) -> bool:
            info = {e.executor_id: e for e in await client.list_executors()}[executor_id]
            first[:] = first or [info]
            span: int = info.last_heartbeat_time.ToNanoseconds() - first[0].connect_time.ToNanoseconds()
            return span >= seconds * 1e9

        deadline = time.monotonic() + BOUND
        while not await heartbeats_for(2.0):  # 8 intervals: the watchdog would have fired twice
            assert time.monotonic() < deadline, "the broker saw no heartbeats for 2 s"
            await asyncio.sleep(0.05)
        info = {e.executor_id: e for e in await client.list_executors()}[executor_id]
        assert info.connect_time == first[0].connect_time
        assert worker.sessions == 1
    finally:
        worker.stop("test over")
        await asyncio.wait_for(running, BOUND)


async def test_python_m_cohort_worker_drains_on_sigterm(dev: CohortDev, client: cohort.Client, queue: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), *sys.path]))
    proc = subprocess.Popen([sys.executable, "-m", "cohort.worker", "worker_app:worker", "--server", dev.address,
                             "--queue", queue, "--executor-id", f"cli-{queue}"],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=os.path.dirname(__file__))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True)
    reader.start()
    try:
        held = await client.submit(queue, "py.sleep", "1")
        await until(lambda: any(line.startswith(f"started {held.id}") for line in lines), "the worker's start")
        proc.send_signal(signal.SIGTERM)
        await until(lambda: any(line.startswith("draining (SIGTERM): 1 running") for line in lines), "the drain")
        later = await client.submit(queue, "py.sleep", "0")
        status = await asyncio.get_running_loop().run_in_executor(None, proc.wait, BOUND)
        reader.join(BOUND)
        assert status == 0, lines
        assert await cohort.wait_for(held, BOUND) == b"slept 1"
        later_info = await later.info()
        assert later_info.state == job_pb2.JOB_STATE_QUEUED and later_info.attempt == 0
        assert lines[-1].strip() == "stopped"
        assert await later.cancel()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
