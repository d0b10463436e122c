"""A real cohort-dev for the SDK's tests, started once per session on 127.0.0.1 with
free ports and a temp dir, its executor serving only the "builtin" queue (other queues
are left to the workers the tests start). $COHORT_DEV names the binary."""

from __future__ import annotations

import functools
import itertools
import os
import re
import signal
import subprocess
import tempfile
import threading
from typing import AsyncIterator, Iterator, Mapping, Sequence

import pytest

import cohort

BUILTIN = "builtin"
_READY = re.compile(r"^listening grpc=(\S+) metrics=(\S+)$")
_queue_numbers = itertools.count()


def dev_binary() -> str:
    return os.environ.get("COHORT_DEV", "bazel-bin/services/dev/cohort-dev")


def broker_binary() -> str:
    return os.environ.get("COHORT_BROKER", "bazel-bin/services/broker/cohort-broker")


@functools.cache
def isolation_flags(binary: str) -> tuple[str, ...]:
    """Flags that keep a cohort-dev to itself: no web console on a fixed port, where a
    cohort-dev has one."""
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    return ("--console-listen=",) if "--console-listen" in help_text.stdout + help_text.stderr else ()


class CohortDev:
    """One cohort-dev process (or, with broker=True, a cohort-broker alone: no executor,
    no scheduler); stdout drained by a thread for its whole life. `extra` are more flags
    (e.g. TLS and --auth-tokens), `env` more environment."""

    def __init__(self, binary: str, data_dir: str, extra: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, broker: bool = False) -> None:
        self.address = ""
        self._ready = threading.Event()
        own = [] if broker else [*isolation_flags(binary), "--capacity=4", f"--queues={BUILTIN}"]
        self._proc = subprocess.Popen(
            [binary, *own, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", f"--data-dir={data_dir}",
             "--lease=4s", "--heartbeat-interval=250ms", *extra],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
            env={**os.environ, **(env or {})})
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(30) or not self.address:
            self.stop()
            raise RuntimeError("cohort-dev printed no ready line within 30 s")

    def _drain(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            match = _READY.match(line.strip())
            if match and not self.address:
                self.address = match[1]
                self._ready.set()
        self._ready.set()

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._proc.wait()


@pytest.fixture(scope="session")
def dev() -> Iterator[CohortDev]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as tmp:
        server = CohortDev(dev_binary(), tmp)
        yield server
        server.stop()


@pytest.fixture
async def client(dev: CohortDev) -> AsyncIterator[cohort.Client]:
    async with cohort.connect(dev.address) as c:
        yield c


@pytest.fixture
def queue() -> str:
    """A queue of the test's own, that no executor serves until a worker does."""
    return f"q{next(_queue_numbers)}-{os.getpid()}"
