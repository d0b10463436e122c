"""A small synchronous client for scripts: the asyncio client on a private event loop
thread, with blocking methods.

    from cohort.sync import connect

    with connect("127.0.0.1:7070") as client:
        job = client.submit("reports", "reports.build", b"2026-01")
        print(client.result(job, timeout=60))

Each method blocks the calling thread until the RPC ends; the SyncClient may be used
from several threads. Job handles are the asyncio ones (do not await them yourself).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, Iterable, TypeVar

from cohort import waits
from cohort._proto import broker_pb2, job_pb2
from cohort._time import Seconds
from cohort.client import Client
from cohort.errors import JobError
from cohort.jobs import Job

T = TypeVar("T")


class SyncClient:
    """A Client whose methods block. Close it (or use `with`) to stop its loop thread."""

    def __init__(self, target: str | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cohort-sync", daemon=True)
        self._thread.start()

        async def make() -> Client:
            return Client(target, **options)

        self.client = self._run(make())

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self.client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def submit(self, queue: str, kind: str, payload: bytes | str = b"", **options: Any) -> Job:
        """Client.submit."""
        return self._run(self.client.submit(queue, kind, payload, **options))

    def submit_many(self, specs: Iterable[job_pb2.JobSpec]) -> list[Job]:
        return self._run(self.client.submit_many(specs))

    def result(self, job: Job, timeout: Seconds | None = None) -> bytes:
        """cohort.wait_for(job, timeout): TimeoutError cancels the job unless shielded."""
        return self._run(waits.wait_for(job, timeout))

    def gather(self, jobs: Iterable[Job], return_exceptions: bool = False) -> list[bytes | JobError]:
        if return_exceptions:
            return self._run(waits.gather(*jobs, return_exceptions=True))
        return list(self._run(waits.gather(*jobs)))

    def wait(self, jobs: Iterable[Job], *, timeout: Seconds | None = None,
             return_when: str = waits.ALL_COMPLETED) -> tuple[set[Job], set[Job]]:
        return self._run(waits.wait(jobs, timeout=timeout, return_when=return_when))

    def cancel(self, job: Job) -> bool:
        return self._run(job.cancel())

    def get_job(self, job_id: str) -> job_pb2.Job:
        return self._run(self.client.get_job(job_id))

    def list_queues(self) -> list[broker_pb2.QueueInfo]:
        return self._run(self.client.list_queues())

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs any coroutine of self.client (e.g. client.create_schedule(...))."""
        return self._run(coro)


def connect(target: str | None = None, **options: Any) -> SyncClient:
    """A SyncClient; options as cohort.connect's."""
    return SyncClient(target, **options)
