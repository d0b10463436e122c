"""The exceptions the SDK raises.

- `CohortError`: an RPC the broker or scheduler refused or could not serve; carries the
  gRPC status code and the server's (bounded) message.
- `JobError` and its two kinds, `JobFailed` and `JobCancelled`: what awaiting a job
  raises when the job ended FAILED or CANCELLED, with the job's Error and attempts.
- A wait that runs out of time raises the built-in `TimeoutError`, as asyncio does.
"""

from __future__ import annotations

import grpc


class CohortError(Exception):
    """An RPC failed. `code` is its grpc.StatusCode, `details` the server's message."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{method}: {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details


class JobError(Exception):
    """A job ended without a result (asyncio's exception of a task).

    `state` is "FAILED" or "CANCELLED"; `code`, `message` and `details` are the job's
    Error (job.proto lists the well-known codes); `attempts` is how many attempts ran.
    """

    def __init__(self, job_id: str, state: str, code: str, message: str, details: bytes, attempts: int) -> None:
        super().__init__(f"job {job_id} {state}: {code}: {message}")
        self.job_id = job_id
        self.state = state
        self.code = code
        self.message = message
        self.details = details
        self.attempts = attempts


class JobFailed(JobError):
    """The job ended FAILED: its handler failed on its last attempt, its deadline
    passed, a parent failed, or a permanent error (e.g. "unknown_kind")."""


class JobCancelled(JobError):
    """The job ended CANCELLED (CancelJob, a WaitFor timeout, a cancelled parent).

    Deviation from asyncio: awaiting a cancelled task raises asyncio.CancelledError;
    awaiting a cancelled job raises this instead (an Exception), so that a job cancelled
    elsewhere is never mistaken for the cancellation of the coroutine awaiting it.
    """


def rpc_error(method: str, error: grpc.aio.AioRpcError) -> CohortError:
    return CohortError(method, error.code(), error.details() or "")
