"""Real Cohort service binaries as children of a test: the Python twin of
tests/testing/service_process.h.

ServiceProcess starts a binary in a process group of its own and returns only once the
child has printed its ready line, `listening grpc=HOST:PORT metrics=HOST:PORT`
(design.md, "Binaries, targets and flags"), so its ports are bound. A thread drains its
stdout for its whole life (the child never blocks on a full pipe); stderr is the test's,
so the service's logs land in the test log. stop() SIGTERMs it and waits, then SIGKILLs
whatever is left of its group: no process outlives the test.
"""

import os
import re
import signal
import subprocess
import threading

_READY = re.compile(r"^listening grpc=(\S+) metrics=(\S+)$")


def runfile(path):
    """The absolute path of a file of this test's runfiles, given its workspace path."""
    return os.path.join(os.environ["TEST_SRCDIR"], os.environ.get("TEST_WORKSPACE", "cohort"), path)


class ServiceProcess:
    """One running service binary. Not thread-safe."""

    def __init__(self, binary, args, ready_timeout=30.0):
        self.binary = binary
        self.grpc_address = None
        self.metrics_address = None
        self._lines = []
        self._ready = threading.Event()
        self._proc = subprocess.Popen(
            [binary, *args], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        if not self._ready.wait(ready_timeout) or self.grpc_address is None:
            status = self._proc.poll()
            self._kill_group()
            raise RuntimeError(
                f"{binary} printed no ready line within {ready_timeout} s "
                f"(exit status {status}); stdout: {self._lines}"
            )

    def _drain(self):
        for line in self._proc.stdout:
            line = line.rstrip("\n")
            self._lines.append(line)
            match = _READY.match(line)
            if match and self.grpc_address is None:
                self.grpc_address, self.metrics_address = match.groups()
                self._ready.set()
        self._ready.set()  # EOF: the child is gone; wake a waiting constructor.

    def _kill_group(self):
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._proc.wait()
        self._reader.join()

    def send_signal(self, signum):
        """Sends `signum` (SIGKILL, SIGSTOP, SIGCONT...) to the service's process group."""
        os.killpg(self._proc.pid, signum)

    def wait(self, timeout):
        """Waits up to `timeout` seconds for the service to exit; its exit status
        (negative: killed by that signal). Raises subprocess.TimeoutExpired."""
        return self._proc.wait(timeout)

    def stop(self, grace=10.0):
        """SIGTERMs the service, waits up to `grace` seconds, then SIGKILLs its process
        group. Returns the exit status (negative: killed by that signal)."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        status = self._proc.poll()
        self._kill_group()
        return self._proc.returncode if status is None else status


def _start_broker(tmp, started):
    return ServiceProcess(
        runfile("services/broker/cohort-broker"),
        [
            "--listen=127.0.0.1:0",
            "--metrics-listen=127.0.0.1:0",
            f"--data-dir={tmp}/broker",
            # Short, so that a lost lease is redelivered within the test's time.
            "--lease=2s",
            "--heartbeat-interval=500ms",
        ],
    )


def _start_scheduler(tmp, started):
    return ServiceProcess(
        runfile("services/scheduler/cohort-scheduler"),
        [
            f"--broker={started['broker'].grpc_address}",
            "--listen=127.0.0.1:0",
            f"--data-dir={tmp}/scheduler",
            "--metrics-listen=127.0.0.1:0",
        ],
    )


def _start_executor(tmp, started):
    return ServiceProcess(
        runfile("services/executor/cohort-executor"),
        [
            f"--broker={started['broker'].grpc_address}",
            "--listen=127.0.0.1:0",
            "--metrics-listen=127.0.0.1:0",
            "--capacity=4",
            "--executor-id=dashboard-executor",
            # Not dashboard.backlog nor dashboard.lease: see load.py.
            "--queues=dashboard",
            "--allow-exec=/usr/bin/cat",
            "--allow-exec=/usr/bin/false",
        ],
    )


# How to start each service, in dependency order (the broker first).
_STARTERS = {"broker": _start_broker, "scheduler": _start_scheduler, "executor": _start_executor}
KNOWN_SERVICES = tuple(_STARTERS)


def start_services(names, tmp):
    """Starts the named services (a subset of KNOWN_SERVICES; the broker is required)
    with data dirs under `tmp`. Returns {name: ServiceProcess}; on failure stops those
    already started and raises."""
    unknown = set(names) - set(_STARTERS)
    if unknown or "broker" not in names:
        raise ValueError(f"services must include broker and be among {KNOWN_SERVICES}: {sorted(names)}")
    started = {}
    try:
        for name in KNOWN_SERVICES:
            if name in names:
                started[name] = _STARTERS[name](tmp, started)
    except BaseException:
        stop_services(started)
        raise
    return started


def stop_services(started):
    """Stops services in the reverse order of their start."""
    for name in reversed(list(started)):
        started[name].stop()
