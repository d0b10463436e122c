"""The SDK and cohortctl across a broker failover (issue 18): a three-replica group, jobs
in flight with waiters on them (Python gather, wait_for and as_completed through the
address list; cohortctl gather, wait-for, as-completed, submit --wait and watch with the list in
--server), the leader killed with SIGKILL, then an executor given the list completes
the jobs. Every waiter ends with exactly the jobs' results (watch: each transition
once, in order); keyed Submits made while there is no leader (keys given, or generated
by idempotent_submit) are retried until the new leader takes them, and a repeat creates
nothing; a wait that runs out of its retry deadline raises UNAVAILABLE."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
from typing import AsyncIterator, Callable, Iterator

import grpc
import pytest

import cohort
from cohort.pb import job_pb2
from replica_group import ReplicaGroup

QUEUE = "failover"
KEYED_QUEUE = "failover-keyed"
SUBMIT_WAIT_QUEUE = "failover-submit-wait"


def cohortctl() -> str:
    return os.environ.get("COHORTCTL", "bazel-bin/services/cli/cohortctl")


def executor_binary() -> str:
    return os.environ.get("COHORT_EXECUTOR", "bazel-bin/services/executor/cohort-executor")


@pytest.fixture
def group() -> Iterator[ReplicaGroup]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as tmp:
        replicas = ReplicaGroup(tmp)
        try:
            yield replicas
        finally:
            replicas.stop()


@pytest.fixture
def executor(group: ReplicaGroup) -> Iterator[Callable[[], None]]:
    """Starts (when called) a cohort-executor given the group's address list."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(subprocess.Popen(
            [executor_binary(), f"--broker={group.addresses}", "--listen=127.0.0.1:0",
             "--metrics-listen=127.0.0.1:0", "--executor-id=failover-executor", "--capacity=8",
             f"--queues={QUEUE},{KEYED_QUEUE},{SUBMIT_WAIT_QUEUE}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))

    yield start
    for proc in procs:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < end, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.05)


def run_cohortctl(addresses: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([cohortctl(), f"--server={addresses}", "--output=json", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def outcome_of(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    return proc.returncode, out, err


async def collect(jobs: list[cohort.Job]) -> list[str]:
    return [job.id async for job in cohort.as_completed(jobs, timeout=60)]


async def test_waiters_and_keyed_submits_ride_out_a_leader_kill(group: ReplicaGroup,
                                                                executor: Callable[[], None]) -> None:
    first = await asyncio.to_thread(group.leader)
    async with cohort.connect(group.addresses) as client:
        # No executor yet: the jobs stay QUEUED, so every waiter is waiting at the kill.
        payloads = [f"result-{i}" for i in range(6)]
        jobs = await client.submit_many([cohort.spec(QUEUE, "builtin.echo", p) for p in payloads])
        ids = [job.id for job in jobs]
        gather = asyncio.create_task(cohort.gather(*jobs))
        wait_for = asyncio.create_task(cohort.wait_for(client.job(ids[0]), 60))
        as_completed = asyncio.create_task(collect([client.job(i) for i in ids]))
        ctl_gather = run_cohortctl(group.addresses, "gather", *ids)
        ctl_wait_for = run_cohortctl(group.addresses, "wait-for", "--timeout=60s", ids[1])
        ctl_as_completed = run_cohortctl(group.addresses, "as-completed", "--timeout=60s", *ids)
        # Every transition of the six jobs: created QUEUED, RUNNING, SUCCEEDED.
        ctl_watch = run_cohortctl(group.addresses, "watch", "--from=0", f"--queue={QUEUE}", "--limit=18")
        ctl_submit_wait = run_cohortctl(group.addresses, "submit", "--wait", SUBMIT_WAIT_QUEUE, "builtin.echo",
                                        "submitted-then-waited")
        await until(lambda: group.gauge(first, "cohort_broker_waiters") >= 7, 15, "seven waiters on the leader")

        group.kill9(first)
        # A keyed Submit with no leader: retried (UNAVAILABLE) until the new one serves.
        keyed = [cohort.spec(KEYED_QUEUE, "builtin.echo", f"keyed-{i}", idempotency_key=f"failover-{i}")
                 for i in range(3)]
        keyed_jobs = await client.submit_many(keyed)
        async with cohort.connect(group.addresses, idempotent_submit=True) as generating:
            generated = await generating.submit_many([cohort.spec(KEYED_QUEUE, "builtin.echo", "generated")] * 2)
        second = await asyncio.to_thread(group.leader)
        assert second != first
        executor()

        assert await asyncio.wait_for(gather, 30) == [p.encode() for p in payloads]
        assert await asyncio.wait_for(wait_for, 30) == payloads[0].encode()
        assert sorted(await asyncio.wait_for(as_completed, 30)) == sorted(ids)
        code, out, err = await outcome_of(ctl_gather)
        assert code == 0, err
        outcomes = json.loads(out)["outcomes"]
        assert [(o["jobId"], o["state"], o.get("result")) for o in outcomes] == [
            (i, "JOB_STATE_SUCCEEDED", p) for i, p in zip(ids, payloads)]
        code, out, err = await outcome_of(ctl_wait_for)
        assert code == 0, err
        assert json.loads(out)["result"] == payloads[1]
        code, out, err = await outcome_of(ctl_as_completed)
        assert code == 0, err
        printed = [json.loads(line)["outcome"] for line in out.splitlines()]
        assert sorted((o["jobId"], o["result"]) for o in printed) == sorted(zip(ids, payloads))
        code, out, err = await outcome_of(ctl_submit_wait)
        assert code == 0, err
        assert (json.loads(out)["state"], json.loads(out)["result"]) == ("JOB_STATE_SUCCEEDED", "submitted-then-waited")
        code, out, err = await outcome_of(ctl_watch)
        assert code == 0, err
        events = [json.loads(line) for line in out.splitlines()]
        sequences = [int(e["sequence"]) for e in events]
        assert sequences == sorted(set(sequences)), "each event once, in order"
        assert sorted((e["jobId"], e["toState"]) for e in events) == sorted(
            (i, state) for i in ids for state in ["JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"])

        # The keyed jobs ran once; submitting them again (a retry whose first reply was
        # lost) names the same jobs and creates none.
        assert [await job for job in keyed_jobs] == [f"keyed-{i}".encode() for i in range(3)]
        again = await client.submit_many(keyed)
        assert [j.id for j in again] == [j.id for j in keyed_jobs]
        listed = [job async for job in client.list_jobs(queue=QUEUE)]
        assert sorted(j.id for j in listed) == sorted(ids)
        keyed_listed = [job async for job in client.list_jobs(queue=KEYED_QUEUE)]
        assert sorted(j.id for j in keyed_listed) == sorted(j.id for j in keyed_jobs + generated)
        assert all(j.state == job_pb2.JOB_STATE_SUCCEEDED for j in listed + keyed_listed)
        generated_keys = {j.spec.idempotency_key for j in keyed_listed if j.id in {g.id for g in generated}}
        assert len(generated_keys) == 2 and all(k.startswith("sdk-") for k in generated_keys)


async def test_a_wait_past_its_retry_deadline_raises_unavailable(group: ReplicaGroup) -> None:
    await asyncio.to_thread(group.leader)
    async with cohort.connect(group.addresses, retry=cohort.RetryPolicy(deadline=1.5)) as client:
        job = await client.submit(QUEUE, "builtin.echo", "never run")
        waiter = asyncio.create_task(cohort.gather(job))
        leader = await asyncio.to_thread(group.leader)
        await until(lambda: group.gauge(leader, "cohort_broker_waiters") >= 1, 15, "the waiter on the leader")
        # The retry deadline runs from the first UNAVAILABLE, which comes after stop()
        # began (it kills the leader first, then the others): time it from before stop().
        # It gives up rather than sleep past the deadline: with backoffs of 50 ms
        # doubling, jittered down to half, not before ~775 ms of retrying.
        started = time.monotonic()
        group.stop()  # the whole group: no leader to come back
        with pytest.raises(cohort.CohortError) as raised:
            await asyncio.wait_for(waiter, 20)
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE
        assert 0.7 <= time.monotonic() - started < 10
        assert not job.done()
