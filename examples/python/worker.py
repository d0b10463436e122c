#!/usr/bin/python3
"""A Cohort worker in Python: speaks Broker.Connect and runs jobs of its own kinds.

Any gRPC client can be an executor (protos/cohort/v1/executor.proto). This one says
hello with its queue and capacity, grants credits, heartbeats at the interval the
broker's welcome asks for, runs each assigned job on a thread and sends Complete:

  python.upper  the payload (UTF-8) uppercased; a payload that is not UTF-8 fails
                with Error.code "handler"
  python.sleep  sleeps for the payload ("250ms", "2s"), stops early when the broker
                cancels the attempt (Error.code "cancelled")

Any other kind found in its queue fails with "unknown_kind". On SIGTERM or SIGINT (or
the broker's Drain) it takes no new work, withdraws its unused credit, lets what it
holds finish (interrupting it after --drain-grace), reports it, half-closes the stream
(the broker puts back assignments it never started, without using up an attempt) and
exits 0. If the stream fails (broker unreachable, hello rejected, broker gone) it says
why on stderr and exits 1; the broker redelivers its attempts when their leases run out.

stdout has one line per event: connected, started, completed, draining, stopped.

    PYTHONPATH=/tmp/cohort-stubs /usr/bin/python3 examples/python/worker.py --broker=127.0.0.1:7070
"""

import argparse
import contextlib
import os
import re
import signal
import socket
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import grpc

from protos.cohort.v1 import broker_pb2_grpc, executor_pb2, job_pb2

from cohort_channel import cohort_channel


class Cancelled(Exception):
    """Raised by a handler that stopped because its attempt was cancelled."""


class Failure(Exception):
    """A handler's failure with its own Error.code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def upper(payload, cancelled):
    try:
        return payload.decode("utf-8").upper().encode("utf-8")
    except UnicodeDecodeError as e:
        raise Failure("handler", f"python.upper wants UTF-8 text: {e}") from e


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def sleep(payload, cancelled):
    text = payload.decode("utf-8", errors="replace")
    match = _DURATION.match(text)
    if not match:
        raise Failure("handler", f'python.sleep wants a duration like "250ms" or "2s", got "{text}"')
    if cancelled.wait(float(match[1]) * _UNIT_SECONDS[match[2]]):
        raise Cancelled()
    return f"slept {text}".encode()


# kind -> handler(payload: bytes, cancelled: threading.Event) -> result bytes. A handler
# runs on a pool thread; it may raise Failure, Cancelled (once `cancelled` is set) or
# anything else (reported as code "handler").
KINDS = {"python.upper": upper, "python.sleep": sleep}

# Outbox markers: build a heartbeat when it is sent; end the stream (half-close).
_HEARTBEAT = object()
_CLOSE = object()


def credit(n):
    return executor_pb2.ExecutorMessage(credit=executor_pb2.ExecutorMessage.CreditGrant(credits=n))


class _Attempt:
    """An attempt this worker runs. `cancel_code` says why `cancel` was set."""

    def __init__(self, number):
        self.number = number
        self.cancel = threading.Event()
        self.cancel_code = "cancelled"


class Worker:
    """One Connect session with the broker, and the attempts it runs.

    Threads: the session thread reads the broker's messages; grpc's own thread sends
    what the outbox holds; the heartbeat thread queues heartbeats; a pool of `capacity`
    threads runs the handlers. Shared state is guarded by `_lock`. The outbox holds at
    most 2 x capacity + 4 items: a completion and a credit per attempt (the broker
    assigns no more than the credit it was given), one heartbeat (a new one is not
    queued while one waits), the drain's credit withdrawal and two close markers (the
    drain's, and the session's own when the stream ends).
    `wake()` is called when the session needs the main thread: on the broker's Drain,
    and when the stream has ended.
    """

    def __init__(self, stub, executor_id, queues, capacity, drain_grace, wake):
        self._stub = stub
        self._hello = executor_pb2.ExecutorMessage(hello=executor_pb2.ExecutorMessage.Hello(
            executor_id=executor_id, queues=queues, capacity=capacity,
            labels={"language": "python", "kinds": ",".join(sorted(KINDS))}))
        self._capacity = capacity
        self._drain_grace = drain_grace
        self._wake = wake
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._outbox = deque()  # guarded by _lock; waited on with _changed
        self._running = {}  # job id -> _Attempt
        self._draining = False
        self._heartbeat_queued = False
        self._ended = threading.Event()
        self.drain_requested = False  # the broker sent Drain
        self.failure = None  # one line, when the stream failed
        self._pool = ThreadPoolExecutor(max_workers=capacity, thread_name_prefix="job")
        self._session = threading.Thread(target=self._run_session, name="session")
        self._heartbeats = None

    def start(self):
        self._session.start()

    def ended(self):
        return self._ended.is_set()

    def drain(self, reason):
        """Takes no new work, lets running attempts finish (interrupting them after the
        grace period), reports them and half-closes. Returns once that is done or the
        stream has ended."""
        with self._lock:
            self._draining = True
            running = len(self._running)
        log(f"draining ({reason}): {running} running")
        self._send(credit(-self._capacity))
        with self._lock:
            if not self._changed.wait_for(self._settled, timeout=self._drain_grace):
                for attempt in self._running.values():
                    attempt.cancel_code = "interrupted"
                    attempt.cancel.set()
                self._changed.wait_for(self._settled)
        self._send(_CLOSE)

    def _settled(self):
        """Nothing left to report: no attempt runs, or the stream is gone. Under _lock."""
        return not self._running or self._ended.is_set()

    def join(self):
        """Waits for the stream to end, then for the handlers (interrupted)."""
        self._session.join()
        with self._lock:
            for attempt in self._running.values():
                attempt.cancel_code = "interrupted"
                attempt.cancel.set()
        self._pool.shutdown(wait=True)
        if self._heartbeats is not None:
            self._heartbeats.join()

    # ---- the stream ----

    def _send(self, message):
        with self._lock:
            self._outbox.append(message)
            self._changed.notify_all()

    def _requests(self):
        """The executor's side of the stream, consumed by grpc's sending thread."""
        yield self._hello
        yield credit(self._capacity)
        while True:
            with self._lock:
                self._changed.wait_for(lambda: self._outbox)
                message = self._outbox.popleft()
                if message is _HEARTBEAT:
                    self._heartbeat_queued = False
                    message = executor_pb2.ExecutorMessage(heartbeat=executor_pb2.ExecutorMessage.Heartbeat(
                        running=[executor_pb2.AttemptRef(job_id=job_id, attempt=a.number)
                                 for job_id, a in self._running.items()]))
            if message is _CLOSE:
                return
            yield message

    def _run_session(self):
        call = self._stub.Connect(self._requests())
        try:
            for message in call:
                self._on_message(message)
            with self._lock:
                if not self._draining:
                    self.failure = "the broker ended the stream"
        except grpc.RpcError as e:
            self.failure = f"stream to the broker failed: {e.code().name}: {e.details()}"
        finally:
            self._ended.set()
            with self._lock:
                self._outbox.append(_CLOSE)  # lets grpc's sending thread finish
                self._changed.notify_all()
            self._wake()

    def _on_message(self, message):
        body = message.WhichOneof("body")
        if body == "welcome":
            interval = message.welcome.heartbeat_interval.ToTimedelta().total_seconds() or 5.0
            log(f"connected as {self._hello.hello.executor_id}: queues={','.join(self._hello.hello.queues)} "
                f"kinds={','.join(sorted(KINDS))} capacity={self._capacity} heartbeat={interval:g}s")
            if self._heartbeats is None:
                self._heartbeats = threading.Thread(target=self._beat, args=(interval,), name="heartbeat")
                self._heartbeats.start()
        elif body == "assign":
            self._on_assign(message.assign)
        elif body == "cancel":
            with self._lock:
                attempt = self._running.get(message.cancel.job_id)
                if attempt is not None and attempt.number == message.cancel.attempt:
                    attempt.cancel.set()
        elif body == "drain":
            self.drain_requested = True
            self._wake()
        # lease_extended: nothing to do, the heartbeats keep the leases alive.

    def _beat(self, interval):
        while not self._ended.wait(interval):
            with self._lock:
                if self._heartbeat_queued:
                    continue
                self._heartbeat_queued = True
                self._outbox.append(_HEARTBEAT)
                self._changed.notify_all()

    # ---- attempts ----

    def _on_assign(self, assign):
        job = assign.job
        with self._lock:
            # While draining, an assignment is left alone: the broker takes it back when
            # the stream is half-closed. A duplicate of a running attempt is ignored.
            if self._draining or job.id in self._running:
                return
            attempt = _Attempt(assign.attempt)
            self._running[job.id] = attempt
        log(f"started {job.id} attempt {assign.attempt} kind {job.spec.kind}")
        self._pool.submit(self._execute, job, attempt)

    def _execute(self, job, attempt):
        complete = executor_pb2.ExecutorMessage.Complete(job_id=job.id, attempt=attempt.number)
        handler = KINDS.get(job.spec.kind)
        try:
            if handler is None:
                raise Failure("unknown_kind", f'this worker runs {", ".join(sorted(KINDS))}, not "{job.spec.kind}"')
            complete.result = handler(job.spec.payload, attempt.cancel)
        except Cancelled:
            complete.error.CopyFrom(job_pb2.Error(code=attempt.cancel_code, message="stopped by the worker"
                                                  if attempt.cancel_code == "interrupted" else "cancelled by the broker"))
        except Failure as e:
            complete.error.CopyFrom(job_pb2.Error(code=e.code, message=str(e)))
        except Exception as e:  # a bug in a handler fails its attempt, not the worker
            complete.error.CopyFrom(job_pb2.Error(code="handler", message=f"{type(e).__name__}: {e}"))
        outcome = "ok" if complete.HasField("result") else f"{complete.error.code}: {complete.error.message}"
        log(f"completed {job.id} attempt {attempt.number}: {outcome}")
        with self._lock:
            del self._running[job.id]
            self._outbox.append(executor_pb2.ExecutorMessage(complete=complete))
            if not self._draining:
                self._outbox.append(credit(1))
            self._changed.notify_all()


_log_lock = threading.Lock()


def log(line):
    with _log_lock:
        print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="127.0.0.1:7070", help="the broker, HOST:PORT")
    parser.add_argument("--queue", default="python", help="queue to take jobs from")
    parser.add_argument("--capacity", type=int, default=4, help="jobs at once (1..1000)")
    parser.add_argument("--executor-id", default=f"python-{socket.gethostname()}-{os.getpid()}",
                        help="stable id; leases belong to it")
    parser.add_argument("--drain-grace", type=float, default=30, help="seconds a drain lets jobs finish")
    args = parser.parse_args()
    if not 1 <= args.capacity <= 1000:
        parser.error("--capacity must be in 1..1000")
    if args.drain_grace < 0:
        parser.error("--drain-grace must not be negative")

    # The main thread sleeps on a pipe: the C-level signal handler writes the signal's
    # number into it (set_wakeup_fd), the session writes 0 when it needs attention.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: None)

    def wake():
        with contextlib.suppress(BlockingIOError):  # a full pipe already holds a wake-up
            os.write(wake_w, b"\0")

    with cohort_channel(args.broker) as channel:
        worker = Worker(broker_pb2_grpc.BrokerStub(channel), args.executor_id, [args.queue],
                        args.capacity, args.drain_grace, wake)
        worker.start()
        while True:
            woken_by = os.read(wake_r, 1)[0]
            if woken_by:
                reason = signal.Signals(woken_by).name
                break
            if worker.ended():
                reason = None
                break
            if worker.drain_requested:
                reason = "the broker asked to drain"
                break
        if reason is not None:
            worker.drain(reason)
        worker.join()
    if worker.failure is not None:
        print(f"worker.py: {worker.failure}", file=sys.stderr)
        return 1
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
