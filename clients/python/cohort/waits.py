"""asyncio's waiting functions for remote jobs, each one RPC the broker answers when the
condition holds (event-driven on the broker, never polled here).

Same names, arguments, return shapes and exceptions as asyncio's, with the deviations
stated in each docstring. A wait that a broker failover ends UNAVAILABLE is made again
(for what is left of its timeout; as_completed for the jobs not yet yielded) within the
client's retry policy; past it, CohortError UNAVAILABLE, which cancelled nothing. Common to all: the jobs must belong to one Client; a timeout
is in seconds (or a timedelta) and None waits without end; cancelling the awaiting
coroutine ends the RPC and, by the broker's rule, cancels no job (asyncio would cancel
the tasks gather/wait_for were waiting on) — wait_for offers cancel_on_disconnect for
asyncio's behaviour.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterable, Literal, Sequence, overload

import grpc

from cohort import _time
from cohort._proto import broker_pb2, job_pb2
from cohort.errors import CohortError, JobError
from cohort._retry import Streak, retrying
from cohort.jobs import Countdown, Job, Shielded, deadline, error_from_aborted, settle_outcome, wait_for_job

FIRST_COMPLETED = asyncio.FIRST_COMPLETED
FIRST_EXCEPTION = asyncio.FIRST_EXCEPTION
ALL_COMPLETED = asyncio.ALL_COMPLETED

_RETURN_WHEN = {
    FIRST_COMPLETED: broker_pb2.RETURN_WHEN_FIRST_COMPLETED,
    FIRST_EXCEPTION: broker_pb2.RETURN_WHEN_FIRST_EXCEPTION,
    ALL_COMPLETED: broker_pb2.RETURN_WHEN_ALL_COMPLETED,
}


def _one_client(jobs: Sequence[Job]) -> None:
    for job in jobs:
        if not isinstance(job, Job):
            raise TypeError(f"expected cohort.Job handles, got {type(job).__name__}")
        if job.client is not jobs[0].client:
            raise ValueError("all jobs of one wait must belong to the same Client")


def shield(job: Job) -> Shielded:
    """asyncio.shield: the job, protected from cancellation by a wait's timeout.

    `await cohort.wait_for(cohort.shield(job), 5)` raises TimeoutError after 5 s and
    leaves the job running (WaitFor with shield). Deviation: CancelJob (job.cancel())
    still cancels a shielded job, as the broker documents.
    """
    return Shielded(job)


async def wait_for(job: Job | Shielded, timeout: _time.Seconds | None, *, cancel_on_disconnect: bool = False) -> bytes:
    """asyncio.wait_for: the job's result, or TimeoutError once `timeout` has passed —
    after the broker has cancelled the job (durably: a queued job never runs, a running
    one's worker is told to stop), unless it is shielded (shield(job) or the spec's
    shield). A job that ended FAILED/CANCELLED raises JobFailed/JobCancelled.

    Cancelling the awaiting coroutine cancels the job only with cancel_on_disconnect=
    True (asyncio's behaviour); by default it cancels nothing (the broker's rule).
    """
    if isinstance(job, Shielded):
        return await wait_for_job(job.job, timeout, shield=True, cancel_on_disconnect=cancel_on_disconnect)
    _one_client([job])
    return await wait_for_job(job, timeout, shield=False, cancel_on_disconnect=cancel_on_disconnect)


@overload
async def gather(*jobs: Job, return_exceptions: Literal[False] = False) -> list[bytes]: ...
@overload
async def gather(*jobs: Job, return_exceptions: Literal[True]) -> list[bytes | JobError]: ...


async def gather(*jobs: Job, return_exceptions: bool = False) -> list[bytes] | list[bytes | JobError]:
    """asyncio.gather: every job's result, in the order given (Gather).

    With return_exceptions=False, the first job to end FAILED or CANCELLED raises its
    JobFailed/JobCancelled and the other jobs keep running (as in asyncio). With
    True, each slot holds the result or the JobError. Deviations: a cancelled job is a
    JobCancelled, not asyncio.CancelledError; cancelling the awaiting coroutine cancels
    no job. No timeout, as in asyncio: use wait_for or wait for one.
    """
    results: list[bytes | JobError] = []
    if not jobs:
        return results
    _one_client(jobs)
    response = await _gather(jobs, return_exceptions)
    # A result settles in place; only an error needs an RPC (GetJob, for its attempts),
    # so only errors cost a task each.
    failed = []
    for job, outcome in zip(jobs, response.outcomes):
        if outcome.state == job_pb2.JOB_STATE_SUCCEEDED:
            job._settle(outcome.result, None)
        else:
            failed.append(settle_outcome(job, outcome))
    if failed:
        await asyncio.gather(*failed)
    for job in jobs:
        results.append(job._error if job._error is not None else job._outcome())
    return results


async def _gather(jobs: Sequence[Job], return_exceptions: bool) -> broker_pb2.GatherResponse:
    request = broker_pb2.GatherRequest(job_ids=[j.id for j in jobs], return_exceptions=return_exceptions)
    try:
        return await jobs[0].client._broker.Gather(request, None, jobs[0].client.retry)
    except CohortError as e:
        if e.code != grpc.StatusCode.ABORTED:
            raise
        error = await error_from_aborted(jobs[0].client, e)
        for job in jobs:
            if job.id == error.job_id:
                job._settle(None, error)
        raise error from None


async def wait(jobs: Iterable[Job], *, timeout: _time.Seconds | None = None,
               return_when: str = ALL_COMPLETED) -> tuple[set[Job], set[Job]]:
    """asyncio.wait: (done, pending) sets of the handles given, once return_when holds
    or the timeout passes (Wait). A timeout is not an error; nothing is cancelled.

    return_when is asyncio's FIRST_COMPLETED, FIRST_EXCEPTION (a CANCELLED job does not
    count, as in asyncio) or ALL_COMPLETED. Done handles know their outcome: awaiting
    one returns or raises at once. ValueError for an empty set, as asyncio.
    """
    handles = list(jobs)
    if not handles:
        raise ValueError("Set of jobs is empty.")
    if return_when not in _RETURN_WHEN:
        raise ValueError(f"Invalid return_when value: {return_when}")
    _one_client(handles)
    countdown = Countdown(_time.wait_timeout(timeout))
    request = broker_pb2.WaitRequest(job_ids=[j.id for j in handles], return_when=_RETURN_WHEN[return_when])

    async def once() -> broker_pb2.WaitResponse:
        wire_timeout = countdown.left()
        if wire_timeout is not None:
            request.timeout.CopyFrom(wire_timeout)
        return await handles[0].client._broker.Wait(request, deadline(wire_timeout))

    response = await retrying(handles[0].client.retry, once)
    outcomes = {o.job_id: o for o in response.done}
    done: set[Job] = set()
    pending: set[Job] = set()
    for job in handles:
        outcome = outcomes.get(job.id)
        if outcome is None:
            pending.add(job)
        else:
            await settle_outcome(job, outcome)
            done.add(job)
    return done, pending


async def as_completed(jobs: Iterable[Job], *, timeout: _time.Seconds | None = None) -> AsyncIterator[Job]:
    """asyncio.as_completed, in its async-iterator form (Python 3.13's): yields each
    handle as its job ends, earliest first (AsCompleted stream). Awaiting a yielded
    handle returns its result or raises its JobError at once. TimeoutError when the
    timeout passes before every job has ended (nothing is cancelled). Leaving the loop
    early ends the stream. Deviation: no plain-iterator form.
    """
    handles = list(jobs)
    if not handles:
        return
    _one_client(handles)
    by_id: dict[str, list[Job]] = {}
    for job in handles:
        by_id.setdefault(job.id, []).append(job)
    countdown = Countdown(_time.wait_timeout(timeout))
    streak = Streak(handles[0].client.retry)
    while by_id:
        # After a failover, the stream is opened again for the jobs not yet yielded.
        request = broker_pb2.AsCompletedRequest(job_ids=list(by_id))
        wire_timeout = countdown.left()
        if wire_timeout is not None:
            request.timeout.CopyFrom(wire_timeout)
        streak.begin()
        try:
            async for response in handles[0].client._broker.AsCompleted(request, deadline(wire_timeout)):
                streak.succeeded()
                for job in by_id.pop(response.outcome.job_id, []):
                    await settle_outcome(job, response.outcome)
                    yield job
            return
        except CohortError as e:
            if e.code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimeoutError("jobs did not all end in time") from e
            await streak.failed(e)


def state_name(state: int) -> str:
    """JOB_STATE_SUCCEEDED -> "SUCCEEDED"."""
    return str(job_pb2.JobState.Name(state)).removeprefix("JOB_STATE_")
