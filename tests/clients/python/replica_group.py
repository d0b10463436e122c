"""A replicated broker group of three cohort-broker replicas on 127.0.0.1 (free ports,
a temp dir) for the SDK's failover tests, as tests/replication starts one: each with
--replica-id, the whole group in --replicas, its own client and metrics port. Only the
leader listens on its client port; clients are given every replica's address
(`addresses`). Processes are stopped by pid (their own process groups)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from conftest import broker_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ReplicaGroup:
    def __init__(self, data_dir: str, replicas: int = 3) -> None:
        self._dir = data_dir
        self.client_ports = [free_port() for _ in range(replicas)]
        self._raft_ports = [free_port() for _ in range(replicas)]
        self._metrics_ports = [free_port() for _ in range(replicas)]
        self._procs: list[subprocess.Popen[bytes] | None] = [None] * replicas
        for i in range(replicas):
            self.start(i)

    @property
    def addresses(self) -> str:
        """The client address list, as a user gives it (--server, COHORT_SERVER)."""
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def start(self, i: int) -> None:
        members = ",".join(f"{j + 1}=127.0.0.1:{p}" for j, p in enumerate(self._raft_ports))
        self._procs[i] = subprocess.Popen(
            [broker_binary(), f"--replica-id={i + 1}", f"--replicas={members}",
             f"--listen=127.0.0.1:{self.client_ports[i]}", f"--metrics-listen=127.0.0.1:{self._metrics_ports[i]}",
             f"--data-dir={self._dir}/replica-{i + 1}", "--lease=4s", "--heartbeat-interval=250ms"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def serving(self, i: int) -> bool:
        """Whether replica i accepts client connections (only the serving leader does)."""
        if self._procs[i] is None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.client_ports[i]), timeout=0.3):
                return True
        except OSError:
            return False

    def leader(self, timeout: float = 20.0) -> int:
        """The index of the replica that serves, once one does (blocks: call it from a
        thread while a test's event loop has calls in flight)."""
        end = time.monotonic() + timeout
        while True:
            for i in range(len(self._procs)):
                if self.serving(i):
                    return i
            if time.monotonic() > end:
                raise AssertionError(f"no replica served within {timeout} s")
            time.sleep(0.05)

    def gauge(self, i: int, name: str) -> float:
        """A metric without labels from replica i's /metrics (0 when absent)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self._metrics_ports[i]}/metrics", timeout=2) as r:
            text = r.read().decode()
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        return float(match[1]) if match else 0.0

    def kill9(self, i: int) -> None:
        proc = self._procs[i]
        assert proc is not None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self._procs[i] = None

    def stop(self) -> None:
        for i, proc in enumerate(self._procs):
            if proc is not None:
                self.kill9(i)
