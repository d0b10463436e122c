"""A replicated broker group of real cohort-broker replicas on 127.0.0.1 (issue 18),
for the replication panels and alerts: the Python twin of ReplicaGroup in
tests/replication/replicated_broker_test.cc.

Every replica keeps its raft, client and metrics ports across restarts, so Prometheus
scrapes one target per replica for the whole test and a restarted replica rejoins its
group from its own data dir. Only the leader listens on its client port.
"""

import os
import re
import signal
import socket
import time
import urllib.error
import urllib.request

import cohort_services
import load

# Straight to 127.0.0.1, whatever *_proxy variables the environment has.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_value(body, name, labels=""):
    """The value of the sample `name{labels}` in a /metrics body (`labels` as written
    between the braces, e.g. 'role="leader"'), or None."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else r"(?:\{\})?")
    match = re.search(r"^" + pattern + r" (\S+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else None


class ReplicaGroup:
    """`size` replicas of one group under `tmp`, sharing a secret as the chart's do
    (--replica-secret-file). Not thread-safe."""

    def __init__(self, tmp, size=3):
        self.size = size
        self._tmp = tmp
        self._raft = [_free_port() for _ in range(size)]
        self.raft_addresses = [("127.0.0.1", port) for port in self._raft]
        self._secret = os.path.join(tmp, "replica-secret")
        with open(self._secret, "w") as f:
            f.write("dashboard-replication-test-secret-0123456789\n")
        self.client_addresses = [f"127.0.0.1:{_free_port()}" for _ in range(size)]
        self.metrics_addresses = [f"127.0.0.1:{_free_port()}" for _ in range(size)]
        self.processes = [None] * size

    def start(self, i):
        members = ",".join(f"{j + 1}=127.0.0.1:{port}" for j, port in enumerate(self._raft))
        self.processes[i] = cohort_services.ServiceProcess(
            cohort_services.runfile("services/broker/cohort-broker"),
            [
                f"--replica-id={i + 1}",
                f"--replicas={members}",
                f"--listen={self.client_addresses[i]}",
                f"--metrics-listen={self.metrics_addresses[i]}",
                f"--data-dir={os.path.join(self._tmp, f'replica-{i + 1}')}",
                "--min-free-disk=0",
                f"--replica-secret-file={self._secret}",
            ],
        )

    def start_all(self):
        for i in range(self.size):
            self.start(i)

    def kill(self, i):
        """SIGKILLs replica i and waits for it to be gone."""
        self.processes[i].send_signal(signal.SIGKILL)
        self.processes[i].stop()
        self.processes[i] = None

    def stop_all(self):
        for i, p in enumerate(self.processes):
            if p is not None:
                p.send_signal(signal.SIGCONT)  # a paused replica cannot stop
                p.stop()
                self.processes[i] = None

    def scrape(self, i):
        """Replica i's /metrics body, or None if it does not answer."""
        try:
            with _OPENER.open(f"http://{self.metrics_addresses[i]}/metrics", timeout=2) as r:
                return r.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def secret(self):
        """The group's secret as the replicas read it (one trailing newline stripped)."""
        with open(self._secret, "rb") as f:
            return f.read().rstrip(b"\n")

    def metric(self, i, name, labels=""):
        body = self.scrape(i)
        return None if body is None else metric_value(body, name, labels)

    def serving(self):
        """The running replica that reports it serves clients, or None."""
        for i, p in enumerate(self.processes):
            if p is not None and self.metric(i, "cohort_broker_replica_serving") == 1:
                return i
        return None

    def await_leader(self, timeout=20.0, other_than=None):
        """The index of the serving replica (not `other_than`), waited for (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            leader = self.serving()
            if leader is not None and leader != other_than:
                return leader
            if time.monotonic() > deadline:
                raise AssertionError(f"no replica but {other_than} served within {timeout} s")
            time.sleep(0.05)

    def applied_indexes(self):
        return [
            self.metric(i, "cohort_broker_replica_applied_index") if p is not None else None
            for i, p in enumerate(self.processes)
        ]

    def await_converged(self, timeout=30.0):
        """Waits (bounded) until every running replica reports the same applied index."""

        def converged():
            applied = [a for a, p in zip(self.applied_indexes(), self.processes) if p is not None]
            return None not in applied and len(set(applied)) == 1 and applied[0] > 0

        load._await(converged, "every replica to apply the same index", timeout)
