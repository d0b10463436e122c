"""What a task receives: its job, and the means to report progress and see a cancel."""

from __future__ import annotations

import asyncio
import threading
from typing import Callable

from cohort._proto import job_pb2


class TaskError(Exception):
    """Raise from a task to fail its attempt with your own Error.code (lower_snake_case,
    e.g. "bad_image"); any other exception fails it with code "handler"."""

    def __init__(self, code: str, message: str, details: bytes = b"") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class TaskContext:
    """One attempt of one job, as its task sees it. Made by the Worker.

    `job` is the whole Job (spec, payload, labels); `attempt` its 1-based attempt number
    (delivery is at least once: a job may run again after a lost lease). A plain
    function, which runs on a pool thread and cannot be interrupted, watches
    `cancelled` (a threading.Event set on cancel, timeout or drain) or calls
    check_cancelled().
    """

    def __init__(self, job: job_pb2.Job, attempt: int, loop: asyncio.AbstractEventLoop,
                 report: Callable[[float, str], None]) -> None:
        self.job = job
        self.attempt = attempt
        self.cancelled = threading.Event()
        self._loop = loop
        self._report = report

    @property
    def job_id(self) -> str:
        return str(self.job.id)

    @property
    def kind(self) -> str:
        return str(self.job.spec.kind)

    @property
    def payload(self) -> bytes:
        return bytes(self.job.spec.payload)

    async def progress(self, fraction: float, message: str = "") -> None:
        """Reports progress (fraction clamped to [0, 1]); best effort, see job.proto."""
        self._report(min(1.0, max(0.0, fraction)), message)

    def set_progress(self, fraction: float, message: str = "") -> None:
        """progress() for a plain function: callable from any thread."""
        self._loop.call_soon_threadsafe(self._report, min(1.0, max(0.0, fraction)), message)

    def check_cancelled(self) -> None:
        """Raises asyncio.CancelledError once the attempt has been cancelled."""
        if self.cancelled.is_set():
            raise asyncio.CancelledError()
