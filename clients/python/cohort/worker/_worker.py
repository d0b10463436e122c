"""cohort.Worker: runs your Python functions as Cohort job kinds, over Broker.Connect
(executor.proto), on one asyncio loop."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import inspect
import logging
import os
import random
import signal
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence, Union, cast

import grpc

from cohort import config
from cohort.client import DEFAULT_TARGET, _BrokerMethods
from cohort._proto import executor_pb2, job_pb2
from cohort.worker.context import TaskContext, TaskError

log = logging.getLogger("cohort.worker")

Result = Union[bytes, bytearray, memoryview, str, None]
Handler = Callable[..., Union[Result, Awaitable[Result]]]

ExecutorMessage = executor_pb2.ExecutorMessage

# The broker refused the worker itself: retrying cannot help.
_FATAL = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNIMPLEMENTED,
          grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.ABORTED}
_HEARTBEAT = object()
_CLOSE = object()
# A Complete written to a stream is not acknowledged (executor.proto): it is sent again on
# the next stream while its lease may last (the broker ignores a second one).
_DEFAULT_LEASE = 30.0
# The broker answers every Heartbeat (executor.proto, LeaseExtended): a stream that has
# brought nothing for this many heartbeat intervals is wedged and is redialled.
SILENT_INTERVALS = 3
# The heartbeat interval assumed until a Welcome states one; it bounds the wait for that
# Welcome (SILENT_INTERVALS of it).
_DEFAULT_HEARTBEAT = 5.0
# Every stream gets a connection of its own (not one from gRPC's process-wide pool), so
# that redialling after a wedged stream does not reuse the wedged connection.
_OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


class WorkerError(Exception):
    """The broker refused this worker (a bad hello, another worker with its id took
    over): reconnecting cannot help, so Worker.run() ends with it."""


@dataclass
class _Task:
    fn: Handler
    is_async: bool
    wants_context: bool


@dataclass
class _Attempt:
    ctx: TaskContext
    number: int
    task: asyncio.Task[None] | None = None
    stop_code: str | None = None

    def stop(self, code: str) -> None:
        if self.stop_code is None:
            self.stop_code = code
        self.ctx.cancelled.set()
        if self.task is not None:
            self.task.cancel()


@dataclass
class _Session:
    outbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    draining: bool = False
    heartbeat_queued: bool = False
    half_closed: bool = False
    carries_credit: bool = False  # Welcome.complete_carries_credit: a Complete asks for the next job
    batches: bool = False  # Welcome.accepts_complete_batches: Completes queued together go as one message
    heard: float = 0.0  # loop time of the broker's latest message
    watchdog: asyncio.Timeout | None = None
    sent: int = 0  # the number of the latest message written (executor.proto, seq)
    received: int = 0  # the number of the broker's latest message

    def number(self, message: Any) -> Any:
        """Numbers `message` as the next one this stream writes, and returns it."""
        self.sent += 1
        message.seq = self.sent
        return message

    def gap(self, seq: int) -> str | None:
        """Why a broker message numbered `seq` shows messages lost on a stream that stayed
        up, or None when it is the next (or the broker numbers nothing)."""
        if seq == self.received + 1 or (seq == 0 and self.received == 0):
            self.received = seq
            return None
        return f"message {seq} arrived after message {self.received}: the stream lost, repeated or reordered messages"


class Worker:
    """A Cohort worker: takes jobs of its kinds from its queues and runs them.

        worker = cohort.Worker("127.0.0.1:7070", queues=["images"], concurrency=16)

        @worker.task("images.resize")
        async def resize(payload: bytes, ctx: cohort.TaskContext) -> bytes:
            await ctx.progress(0.5, "half")
            return payload

        worker.main()            # or: await worker.run(); python -m cohort.worker mod:worker

    Guarantees:
    - At most `concurrency` attempts run at once (credits, never more work than that is
      sent). An `async def` runs on the worker's loop; a plain function on a pool of
      `concurrency` threads (as run_in_executor), called as fn(payload) or
      fn(payload, ctx). Return bytes, str (UTF-8) or None (empty).
    - Cancel (CancelJob, a WaitFor timeout, the job's deadline) raises CancelledError in
      an async task at its current await; a plain function cannot be interrupted: its
      ctx.cancelled is set, the worker waits for it to return and reports the attempt
      cancelled. JobSpec.timeout is enforced the same way (Error.code "timeout").
    - Heartbeats at the broker's interval keep the leases. The broker answers each one,
      so a stream that brings nothing for SILENT_INTERVALS (3) heartbeat intervals is
      taken as wedged (its connection alive, its bytes lost): it is cancelled, its
      connection closed, and the worker redials on a new connection as when the stream
      breaks (a Welcome not received within 3 intervals, the last known or 5 s, counts
      the same). When the stream breaks, the worker reconnects with exponential backoff
      (reconnect_backoff: first and largest delay, jittered; a wedged stream does not
      reset it) and lists its running attempts in Hello.running: the
      broker keeps those it still leases to executor_id (same attempt), so they run
      exactly once, and cancels the others (e.g. after its own restart, which loses
      running attempts); completions made while away are sent on the next stream.
    - stop() (SIGTERM/SIGINT under main()) drains: no new work, running attempts get
      drain_grace seconds to finish, then are interrupted (Error.code "interrupted"),
      everything is reported and the stream half-closed (unstarted assignments go back
      to the queue without using an attempt). The broker's own Drain does the same,
      then the worker reconnects.
    - Kinds are declared to the broker (Hello.kinds: the kinds registered before
      run()): it assigns this worker only jobs of those kinds. A job of another kind
      that reaches it anyway fails with "unknown_kind" (permanent).

    target and settings (TLS, token) default as cohort.connect's: the environment, then
    the config file (cohort.config).
    """

    def __init__(self, target: str | None = None, *, queues: Sequence[str] = (), concurrency: int = 16,
                 executor_id: str | None = None, labels: Mapping[str, str] | None = None,
                 settings: config.Settings | None = None, credentials: grpc.ChannelCredentials | None = None,
                 drain_grace: float = 30.0,
                 reconnect_backoff: tuple[float, float] = (0.1, 5.0)) -> None:
        if not 1 <= concurrency <= 10_000:
            raise ValueError(f"concurrency must be in 1..10000, got {concurrency}")
        if drain_grace < 0:
            raise ValueError("drain_grace must not be negative")
        given = settings or config.Settings()
        self._settings = config.resolve(dataclasses.replace(given, server=target or given.server))
        self.target = self._settings.server or DEFAULT_TARGET
        self.queues = list(queues)
        self.concurrency = concurrency
        self.executor_id = executor_id or f"python-{socket.gethostname()}-{os.getpid()}"
        self.drain_grace = drain_grace
        self._labels = dict(labels or {})
        self._credentials = credentials
        self._backoff = reconnect_backoff
        self._tasks: dict[str, _Task] = {}
        self._running: dict[tuple[str, int], _Attempt] = {}  # by (job id, attempt)
        # Completions sent but not known to be read, oldest first, kept while their lease
        # may last (at most the lease's worth of completions).
        self._unconfirmed: collections.deque[tuple[float, Any]] = collections.deque()
        self._lease = _DEFAULT_LEASE
        self._interval = _DEFAULT_HEARTBEAT  # the latest Welcome's heartbeat interval
        self._session: _Session | None = None
        self._stop_reason: str | None = None
        self._stopping: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.sessions = 0  # streams that got a Welcome; for tests and metrics

    # ---- registration ----

    def task(self, kind: str) -> Callable[[Handler], Handler]:
        """Registers the decorated function as the handler of `kind`."""

        def register(fn: Handler) -> Handler:
            if kind in self._tasks:
                raise ValueError(f"kind {kind!r} already has a handler")
            params = [p for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            self._tasks[kind] = _Task(fn, inspect.iscoroutinefunction(fn), len(params) >= 2)
            return fn

        return register

    @property
    def kinds(self) -> list[str]:
        return sorted(self._tasks)

    # ---- running ----

    def main(self, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> int:
        """Runs the worker until one of `signals` (then drains) and returns an exit
        status: 0 after a drain, 1 when the broker refused the worker."""
        async def serve() -> None:
            loop = asyncio.get_running_loop()
            for s in signals:
                loop.add_signal_handler(s, self.stop, s.name)
            await self.run()

        try:
            asyncio.run(serve())
        except WorkerError as e:
            log.error("%s", e)
            return 1
        return 0

    def stop(self, reason: str = "stop") -> None:
        """Starts a drain (see the class docstring); run() returns when it is done. Call
        on the worker's loop."""
        if self._stopping is not None and not self._stopping.is_set():
            self._stop_reason = reason
            self._stopping.set()

    async def run(self) -> None:
        """Serves until stop() has drained. Raises WorkerError if the broker refuses the
        worker. Cancelling run() interrupts the running attempts without reporting."""
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._pool = concurrent.futures.ThreadPoolExecutor(self.concurrency, thread_name_prefix="cohort-task")
        delay = self._backoff[0]
        stop_deadline: float | None = None
        try:
            while True:
                if self._stopping.is_set():
                    if stop_deadline is None:
                        stop_deadline = time.monotonic() + self.drain_grace + 10.0
                    if not self._running and not self._unconfirmed_live() or time.monotonic() > stop_deadline:
                        break
                channel = config.open_channel(self.target, self._settings, self._credentials, _OWN_CONNECTION)
                try:
                    healthy, reason = await self._session_once(_BrokerMethods(channel))
                except grpc.aio.AioRpcError as e:
                    healthy, reason = False, f"{e.code().name}: {e.details()}"
                    if e.code() in _FATAL:
                        raise WorkerError(f"stream to the broker failed: {reason}") from None
                finally:
                    await channel.close()
                if self._stopping.is_set() and not self._running:
                    break
                if healthy:
                    delay = self._backoff[0]
                pause = delay * random.uniform(0.8, 1.2)
                log.info("reconnecting in %.1fs: %s", pause, reason)
                try:
                    await asyncio.wait_for(self._stopping.wait(), pause)
                except TimeoutError:
                    pass
                delay = min(self._backoff[1], delay * 2)
            log.info("stopped")
        finally:
            for attempt in list(self._running.values()):
                attempt.stop("interrupted")
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _running_refs(self) -> list[Any]:
        return [executor_pb2.AttemptRef(job_id=job_id, attempt=number) for job_id, number in self._running]

    def _unconfirmed_live(self) -> bool:
        cutoff = time.monotonic() - self._lease
        while self._unconfirmed and self._unconfirmed[0][0] < cutoff:
            self._unconfirmed.popleft()
        return bool(self._unconfirmed)

    # ---- one stream ----

    async def _session_once(self, broker: _BrokerMethods) -> tuple[bool, str]:
        """One Connect stream, to its end. Returns (healthy: welcomed and not wedged, why
        it ended); a healthy stream resets the reconnect backoff."""
        assert self._stopping is not None
        call = broker.Connect()
        session = _Session(draining=self._stopping.is_set())
        helpers: list[asyncio.Task[Any]] = []
        try:
            try:
                async with asyncio.timeout(SILENT_INTERVALS * self._interval):
                    await call.write(session.number(ExecutorMessage(hello=ExecutorMessage.Hello(
                        executor_id=self.executor_id, queues=self.queues, capacity=self.concurrency,
                        labels={"language": "python", **self._labels}, running=self._running_refs(),
                        kinds=self.kinds, accepts_assign_batches=True))))
                    first = await _read(call)
            except TimeoutError:
                return False, f"no welcome from the broker within {SILENT_INTERVALS * self._interval:g}s"
            if first is grpc.aio.EOF or first.WhichOneof("body") != "welcome":
                return False, "the broker ended the stream before its welcome"
            if (lost := session.gap(first.seq)) is not None:
                log.warning("broker stream lost messages, reconnecting: %s", lost)
                return False, lost
            interval = first.welcome.heartbeat_interval.ToTimedelta().total_seconds() or _DEFAULT_HEARTBEAT
            self._interval = interval
            session.carries_credit = first.welcome.complete_carries_credit
            session.batches = first.welcome.accepts_complete_batches
            self.sessions += 1
            log.info("connected as %s: queues=%s kinds=%s capacity=%d heartbeat=%gs", self.executor_id,
                     ",".join(self.queues), ",".join(self.kinds), self.concurrency, interval)
            self._session = session
            helpers.append(asyncio.create_task(self._write(call, session)))
            helpers.append(asyncio.create_task(self._beat(session, interval)))
            if not session.draining:
                session.outbox.put_nowait(_credit(self.concurrency - len(self._running)))
            if self._unconfirmed_live():
                for _, message in self._unconfirmed:
                    # Its credit was for the stream it was first sent on; this one's
                    # credit was granted above.
                    message.complete.credit = 0
                    session.outbox.put_nowait(message)
            helpers.append(asyncio.create_task(self._drain_on_stop(session)))
            loop = asyncio.get_running_loop()
            session.heard = loop.time()
            try:
                async with asyncio.timeout(None) as session.watchdog:
                    while True:
                        message = await _read(call)
                        session.heard = loop.time()
                        if message is grpc.aio.EOF:
                            if session.half_closed:
                                self._unconfirmed.clear()  # the broker read everything before it ended
                            return True, "the broker ended the stream"
                        if (lost := session.gap(message.seq)) is not None:
                            # An Assign or Cancel may be gone: reconnect, and let the
                            # Hello settle which attempts are ours.
                            log.warning("broker stream lost messages, reconnecting: %s", lost)
                            return False, lost
                        self._on_message(session, message)
            except TimeoutError:
                log.warning("heard nothing from the broker for %gs: the stream is wedged",
                            SILENT_INTERVALS * interval)
                return False, f"heard nothing from the broker for {SILENT_INTERVALS * interval:g}s"
        finally:
            self._session = None
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            call.cancel()

    async def _write(self, call: Any, session: _Session) -> None:
        held: collections.deque[Any] = collections.deque()  # taken from the outbox, not yet sent
        while True:
            message = held.popleft() if held else await session.outbox.get()
            if message is _CLOSE:
                await call.done_writing()
                session.half_closed = True
                return
            if message is _HEARTBEAT:
                session.heartbeat_queued = False
                message = ExecutorMessage(heartbeat=ExecutorMessage.Heartbeat(running=self._running_refs()))
            elif session.batches and message.WhichOneof("body") == "complete":
                message = _batch_completes(message, session.outbox, held)
            await call.write(session.number(message))

    async def _beat(self, session: _Session, interval: float) -> None:
        """Queues a heartbeat every interval and keeps the watchdog's deadline at
        SILENT_INTERVALS intervals after the broker's latest message (it fires at once
        if that is already past). Moving the deadline here rather than per message keeps
        the read loop free of timer work."""
        while True:
            await asyncio.sleep(interval)
            if session.watchdog is not None:
                session.watchdog.reschedule(session.heard + SILENT_INTERVALS * interval)
            if not session.heartbeat_queued:
                session.heartbeat_queued = True
                session.outbox.put_nowait(_HEARTBEAT)

    async def _drain_on_stop(self, session: _Session) -> None:
        assert self._stopping is not None
        await self._stopping.wait()
        await self._drain(session, self._stop_reason or "stop")

    async def _drain(self, session: _Session, reason: str) -> None:
        """No new work, let running attempts finish for drain_grace, interrupt the rest,
        report everything, half-close."""
        assert self._idle is not None
        first = not session.draining
        session.draining = True
        log.info("draining (%s): %d running", reason, len(self._running))
        if first:
            session.outbox.put_nowait(_credit(-self.concurrency))
        try:
            await asyncio.wait_for(self._idle.wait(), self.drain_grace)
        except TimeoutError:
            for attempt in list(self._running.values()):
                attempt.stop("interrupted")
            await self._idle.wait()
        session.outbox.put_nowait(_CLOSE)

    def _on_message(self, session: _Session, message: Any) -> None:
        body = message.WhichOneof("body")
        if body == "assign":
            self._on_assign(session, message.assign)
        elif body == "assigns":
            for assign in message.assigns.assigns:
                self._on_assign(session, assign)
        elif body == "cancel":
            attempt = self._running.get((message.cancel.job_id, message.cancel.attempt))
            if attempt is not None:
                attempt.stop("cancelled")
        elif body == "lease_extended":
            if message.lease_extended.HasField("lease"):
                self._lease = max(self._lease, message.lease_extended.lease.ToTimedelta().total_seconds())
        elif body == "drain":
            asyncio.create_task(self._drain(session, f"the broker asked to drain: {message.drain.reason}"))

    # ---- attempts ----

    def _on_assign(self, session: _Session, assign: Any) -> None:
        assert self._idle is not None
        job = assign.job
        if assign.HasField("lease"):
            self._lease = max(self._lease, assign.lease.ToTimedelta().total_seconds())
        # While draining, an assignment is left alone: the broker takes it back when the
        # stream is half-closed. A duplicate of a running attempt is ignored; a later
        # attempt of a job whose earlier one still unwinds (the broker lost it) runs.
        key = (job.id, assign.attempt)
        if session.draining or key in self._running:
            return
        loop = asyncio.get_running_loop()
        job_id, number = key

        def report(fraction: float, text: str) -> None:
            if self._session is not None and key in self._running:
                self._session.outbox.put_nowait(ExecutorMessage(progress=ExecutorMessage.ProgressReport(
                    job_id=job_id, attempt=number, progress=job_pb2.Progress(fraction=fraction, message=text))))

        attempt = _Attempt(TaskContext(job, number, loop, report), number)
        self._running[key] = attempt
        self._idle.clear()
        log.info("started %s attempt %d kind %s", job_id, number, job.spec.kind)
        attempt.task = asyncio.create_task(self._execute(attempt))

    async def _execute(self, attempt: _Attempt) -> None:
        ctx = attempt.ctx
        complete = ExecutorMessage.Complete(job_id=ctx.job_id, attempt=attempt.number)
        spec = ctx.job.spec
        limit = spec.timeout.ToTimedelta().total_seconds() if spec.HasField("timeout") else None
        timer = asyncio.timeout(limit)
        try:
            task = self._tasks.get(spec.kind)
            if task is None:
                raise TaskError("unknown_kind", f"this worker runs {', '.join(self.kinds)}, not {spec.kind[:64]!r}")
            async with timer:
                result = await self._call(task, ctx)
            complete.result = _to_bytes(result)
        except asyncio.CancelledError:
            code = attempt.stop_code or "interrupted"
            complete.error.CopyFrom(job_pb2.Error(code=code, message="cancelled by the broker" if code == "cancelled"
                                                  else "stopped by the worker"))
        except TimeoutError as e:
            if timer.expired():
                complete.error.CopyFrom(job_pb2.Error(code="timeout", message=f"ran past its timeout of {limit:g}s"))
            else:
                complete.error.CopyFrom(_handler_error(e))
        except TaskError as e:
            complete.error.CopyFrom(job_pb2.Error(code=e.code, message=e.message, details=e.details))
        except Exception as e:  # a bug in a task fails its attempt, not the worker
            complete.error.CopyFrom(_handler_error(e))
        self._finish(attempt, complete)

    async def _call(self, task: _Task, ctx: TaskContext) -> Result:
        args = (ctx.payload, ctx) if task.wants_context else (ctx.payload,)
        if task.is_async:
            return await task.fn(*args)  # type: ignore[no-any-return, misc]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.run_in_executor(self._pool, lambda: cast(Result, task.fn(*args)))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # A thread cannot be interrupted: tell it, and wait until it returns so the
            # report (and the slot it frees) is honest.
            ctx.cancelled.set()
            while not future.done():
                try:
                    await asyncio.wait([future])
                except asyncio.CancelledError:
                    continue
            if not future.cancelled():
                future.exception()  # retrieved: its outcome is replaced by the cancel
            raise

    def _finish(self, attempt: _Attempt, complete: Any) -> None:
        assert self._idle is not None
        outcome = "ok" if complete.HasField("result") else f"{complete.error.code}: {complete.error.message}"
        log.info("completed %s attempt %d: %s", complete.job_id, attempt.number, outcome)
        del self._running[(complete.job_id, attempt.number)]
        if not self._running:
            self._idle.set()
        session = self._session
        asks = session is not None and not session.draining
        if asks and session is not None and session.carries_credit:
            complete.credit = 1  # the slot's next job, staged in the same commit as this completion
        message = ExecutorMessage(complete=complete)
        self._unconfirmed.append((time.monotonic(), message))
        self._unconfirmed_live()
        if session is not None:
            session.outbox.put_nowait(message)
            if asks and not session.carries_credit:
                session.outbox.put_nowait(_credit(1))


async def _read(call: Any) -> Any:
    """The stream's next message, or grpc.aio.EOF at its end. (A call through
    interceptors, as with a token, ends its reads with StopAsyncIteration instead.)"""
    try:
        return await call.read()
    except StopAsyncIteration:
        return grpc.aio.EOF


# Completes per CompleteBatch: far below any broker's limit (twice its capacity limit).
_MAX_BATCH = 256


def _is_complete(message: Any) -> bool:
    return message is not _CLOSE and message is not _HEARTBEAT and message.WhichOneof("body") == "complete"


def _batch_completes(first: Any, outbox: asyncio.Queue[Any], held: collections.deque[Any]) -> Any:
    """`first` and the Completes queued right behind it, as one CompleteBatch (one gRPC
    write and one broker commit for all of them; a grpc.aio write costs ~0.1 ms here), or
    `first` alone when nothing follows it. What is queued is moved to `held`, which the
    writer sends from before the outbox, so every message keeps its order."""
    while not outbox.empty() and len(held) < _MAX_BATCH:
        held.append(outbox.get_nowait())
    completes = [first.complete]
    while held and _is_complete(held[0]) and len(completes) < _MAX_BATCH:
        completes.append(held.popleft().complete)
    if len(completes) == 1:
        return first
    return ExecutorMessage(completes=ExecutorMessage.CompleteBatch(completes=completes))


def _credit(n: int) -> Any:
    return ExecutorMessage(credit=ExecutorMessage.CreditGrant(credits=n))


def _to_bytes(result: Result) -> bytes:
    if result is None:
        return b""
    if isinstance(result, str):
        return result.encode("utf-8")
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result)
    raise TypeError(f"a task returns bytes, str or None, not {type(result).__name__}")


def _handler_error(e: BaseException) -> Any:
    text = "".join(traceback.format_exception(e))
    return job_pb2.Error(code="handler", message=f"{type(e).__name__}: {e}"[:512], details=text[-4096:].encode())
