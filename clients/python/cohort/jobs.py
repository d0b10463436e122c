"""Job handles: a submitted job as an asyncio awaitable.

`await job` returns the job's result (bytes) or raises JobFailed / JobCancelled, by one
WaitFor RPC that the broker answers when the job ends (no polling); one that a broker
failover ends UNAVAILABLE is made again, for what is left of its timeout, as the
client's retry policy allows. A handle remembers
an outcome it has learnt, from any wait, so awaiting it again costs nothing.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Generator, NamedTuple

from cohort import _time
from cohort._retry import Streak
from cohort._proto import broker_pb2, job_pb2
from cohort.errors import CohortError, JobCancelled, JobError, JobFailed

if TYPE_CHECKING:
    from cohort.client import Client

import grpc

# Slack added to a wait's own timeout for its gRPC deadline, so that the broker's
# timeout (which cancels as documented) is the one that fires.
DEADLINE_SLACK = 30.0

# broker.proto: a job that raises is ABORTED "job <id> <STATE>: <code>: <message>".
_ABORTED = re.compile(r"^job (\S+) (FAILED|CANCELLED): ")


class Progress(NamedTuple):
    """A running attempt's latest progress report (best effort, see job.proto)."""

    fraction: float
    message: str


class Job:
    """A handle on one job of one Client. Awaitable; hashable by (client, id).

    Belongs to the event loop of its client. Cheap: creating one does no RPC
    (`client.job(id)` makes a handle for an existing id).
    """

    __slots__ = ("id", "client", "_result", "_error")

    def __init__(self, client: Client, job_id: str) -> None:
        self.id = job_id
        self.client = client
        self._result: bytes | None = None
        self._error: JobError | None = None

    def __repr__(self) -> str:
        return f"<cohort.Job {self.id}{' done' if self.done() else ''}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id and other.client is self.client

    def __hash__(self) -> int:
        return hash((id(self.client), self.id))

    def __await__(self) -> Generator[Any, None, bytes]:
        return self.result().__await__()

    def done(self) -> bool:
        """True when this handle already knows the job's outcome (from an earlier wait
        on it). Deviation from asyncio's Task.done(): it makes no RPC, so a job that
        ended unobserved reads False; `await job.info()` asks the broker."""
        return self._result is not None or self._error is not None

    async def result(self, *, cancel_on_disconnect: bool = False) -> bytes:
        """The job's result, waiting for it to end (WaitFor without a timeout).

        Raises JobFailed or JobCancelled if it ended without one. Cancelling the
        awaiting coroutine ends the RPC and, by the broker's rule, cancels nothing
        (deviation from awaiting an asyncio Task, which cancels the task) — unless
        cancel_on_disconnect=True, which asks the broker to cancel the job as asyncio
        would (a shielded job excepted).
        """
        return await wait_for_job(self, None, shield=False, cancel_on_disconnect=cancel_on_disconnect)

    async def cancel(self) -> bool:
        """Cancels the job (CancelJob, asyncio's Task.cancel): a PENDING or QUEUED job
        ends CANCELLED at once; a RUNNING one's worker is told to stop (its task sees
        CancelledError) and the job ends when it reports. Durable before it returns.
        Returns False if the job had already ended (nothing changed), True otherwise.
        Deviation: asyncio's cancel() is synchronous; this is an RPC to await."""
        response = await self.client._broker.CancelJob(broker_pb2.CancelJobRequest(job_id=self.id),
                                                       self.client.rpc_timeout)
        return not response.already_ended

    async def info(self) -> job_pb2.Job:
        """The job as the broker stores it (GetJob), payload and result included."""
        return await self.client.get_job(self.id)

    async def progress(self) -> Progress:
        """The latest progress its running attempt reported (0, "" if none)."""
        job = await self.info()
        return Progress(job.progress.fraction, job.progress.message)

    # ---- outcomes learnt by the waits ----

    def _settle(self, result: bytes | None, error: JobError | None) -> None:
        self._result, self._error = result, error

    def _outcome(self) -> bytes:
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


class Shielded:
    """What `cohort.shield(job)` returns: the job, protected from a wait's timeout
    (WaitFor with shield). Awaitable like the job; `cohort.wait_for(shield(job), t)`
    raises TimeoutError and leaves the job running, as asyncio's idiom does."""

    __slots__ = ("job",)

    def __init__(self, job: Job) -> None:
        self.job = job

    def __await__(self) -> Generator[Any, None, bytes]:
        return wait_for_job(self.job, None, shield=True, cancel_on_disconnect=False).__await__()


def deadline(timeout: Any) -> float | None:
    """The gRPC deadline for a wait whose own timeout is `timeout` (a Duration or None)."""
    if timeout is None:
        return None
    seconds: float = timeout.seconds + timeout.nanos / 1e9
    return seconds + DEADLINE_SLACK


async def error_of(client: Client, job_id: str, state: int, error: job_pb2.Error) -> JobError:
    """The exception for a job that ended FAILED or CANCELLED, with its attempts (from
    GetJob; 0 if the job has already been deleted)."""
    attempts = 0
    try:
        attempts = len((await client.get_job(job_id)).attempts)
    except CohortError as e:
        if e.code != grpc.StatusCode.NOT_FOUND:
            raise
    kind = JobCancelled if state == job_pb2.JOB_STATE_CANCELLED else JobFailed
    name = job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")
    return kind(job_id, name, error.code, error.message, error.details, attempts)


async def error_from_aborted(client: Client, e: CohortError) -> JobError:
    """The JobError for an ABORTED wait, from the job it names (GetJob has its Error)."""
    match = _ABORTED.match(e.details)
    if match is None:
        raise e
    job = await client.get_job(match[1])
    kind = JobCancelled if job.state == job_pb2.JOB_STATE_CANCELLED else JobFailed
    return kind(job.id, match[2], job.error.code, job.error.message, job.error.details, len(job.attempts))


async def settle_outcome(job: Job, outcome: broker_pb2.JobOutcome) -> None:
    if outcome.state == job_pb2.JOB_STATE_SUCCEEDED:
        job._settle(outcome.result, None)
    else:
        job._settle(None, await error_of(job.client, outcome.job_id, outcome.state, outcome.error))


class Countdown:
    """What is left of a wait's timeout (a Duration or None: without end), for a wait
    re-issued after a failover: the broker is asked for the rest, never for more."""

    def __init__(self, timeout: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self._end = None if timeout is None else self._loop.time() + timeout.seconds + timeout.nanos / 1e9

    def left(self) -> Any:
        """The wire timeout for the next try (0 once it has passed: "look now")."""
        if self._end is None:
            return None
        return _time.duration(max(0.0, self._end - self._loop.time()), "timeout")


async def wait_for_job(job: Job, timeout: _time.Seconds | None, *, shield: bool, cancel_on_disconnect: bool) -> bytes:
    if job.done():
        return job._outcome()
    countdown = Countdown(_time.wait_timeout(timeout))
    streak = Streak(job.client.retry)
    while True:
        request = broker_pb2.WaitForRequest(job_id=job.id, shield=shield, cancel_on_disconnect=cancel_on_disconnect)
        wire_timeout = countdown.left()
        if wire_timeout is not None:
            request.timeout.CopyFrom(wire_timeout)
        streak.begin()
        try:
            response = await job.client._broker.WaitFor(request, deadline(wire_timeout))
            break
        except CohortError as e:
            if e.code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimeoutError(f"job {job.id} did not end in time") from e
            if e.code == grpc.StatusCode.ABORTED:
                error = await error_from_aborted(job.client, e)
                job._settle(None, error)
                raise error from None
            await streak.failed(e)
    job._settle(response.result, None)
    return job._outcome()
