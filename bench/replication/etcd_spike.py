"""Spike for issue 18: what a 3-member etcd costs as the replicated log of a broker's
group commits, measured on this machine (not a test; not in CI).

Starts a real 3-member etcd cluster (Debian's etcd-server) on 127.0.0.1 with free
ports and temp dirs, then measures, with Debian's python3-etcd3:
  - commit latency p50/p99 of one transaction appending one batch (a key per batch
    under a prefix, the leader's term as a fenced compare), for batch sizes a broker's
    group commit produces (1 KiB .. 256 KiB), sequential;
  - throughput of appended batches with 8 concurrent writers;
  - failover: kill -9 of the leader during writes, then the time until a write
    succeeds again and the time until a new leader is reported;
and prints a table. Run: /usr/bin/python3 bench/replication/etcd_spike.py
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import etcd3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, members=3):
        self.dir = tempfile.mkdtemp(prefix="etcd-spike-")
        self.names = [f"m{i}" for i in range(members)]
        self.peer = {n: free_port() for n in self.names}
        self.client = {n: free_port() for n in self.names}
        initial = ",".join(f"{n}=http://127.0.0.1:{self.peer[n]}" for n in self.names)
        self.procs = {}
        for n in self.names:
            self.procs[n] = subprocess.Popen(
                ["etcd", "--name", n, "--data-dir", os.path.join(self.dir, n),
                 "--listen-peer-urls", f"http://127.0.0.1:{self.peer[n]}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer[n]}",
                 "--listen-client-urls", f"http://127.0.0.1:{self.client[n]}",
                 "--advertise-client-urls", f"http://127.0.0.1:{self.client[n]}",
                 "--initial-cluster", initial, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "spike", "--log-level", "error",
                 "--heartbeat-interval", "100", "--election-timeout", "1000"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.connect(self.names[0]).status()
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("etcd cluster did not start")

    def connect(self, name, timeout=5):
        return etcd3.client(host="127.0.0.1", port=self.client[name], timeout=timeout)

    def leader(self):
        """The name of the member that is leader now, asked of any live member."""
        for n in self.names:
            if self.procs[n].poll() is not None:
                continue
            try:
                leader = self.connect(n).status().leader
            except Exception:
                continue
            for m in self.names:
                if leader is not None and f"http://127.0.0.1:{self.client[m]}" in leader.client_urls:
                    return m
        return None

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def append(client, seq, payload):
    # One group commit: a batch record at a new key, only if that slot is free (the
    # compare is the fencing: two leaders cannot both write slot `seq`).
    key = f"/cohort/log/{seq:020d}"
    ok, _ = client.transaction(compare=[client.transactions.create(key) == 0],
                               success=[client.transactions.put(key, payload)], failure=[])
    return ok


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="sequential commits per batch size")
    args = ap.parse_args()
    cluster = Cluster()
    rows = []
    try:
        leader = cluster.leader()
        client = cluster.connect(leader)
        seq = 0
        for size in (1024, 16 * 1024, 256 * 1024):
            payload = os.urandom(size)
            lat = []
            for _ in range(args.n if size < 256 * 1024 else args.n // 3):
                seq += 1
                t = time.perf_counter()
                assert append(client, seq, payload)
                lat.append(time.perf_counter() - t)
            rows.append((f"commit {size // 1024} KiB, sequential", f"p50 {percentile(lat, .5) * 1e3:.2f} ms",
                         f"p99 {percentile(lat, .99) * 1e3:.2f} ms"))

        # 8 writers, 4 KiB batches, for 3 s.
        counter = {"n": 0}
        lock = threading.Lock()
        stop = time.time() + 3
        base = [seq + 1_000_000]

        def writer(w):
            c = cluster.connect(leader)
            payload = os.urandom(4096)
            i = 0
            while time.time() < stop:
                i += 1
                append(c, base[0] + w * 1_000_000 + i, payload)
                with lock:
                    counter["n"] += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows.append(("8 writers, 4 KiB batches", f"{counter['n'] / 3:.0f} commits/s", ""))

        # Failover: kill -9 the leader while a follower-connected client keeps writing.
        old = cluster.leader()
        survivor = next(n for n in cluster.names if n != old)
        c = cluster.connect(survivor, timeout=0.5)
        killed = time.perf_counter()
        os.kill(cluster.procs[old].pid, signal.SIGKILL)
        cluster.procs[old].wait()
        wrote = None
        s = 10_000_000
        while time.perf_counter() - killed < 30:
            s += 1
            try:
                if append(c, s, b"x"):
                    wrote = time.perf_counter() - killed
                    break
            except Exception:
                time.sleep(0.01)
        new = cluster.leader()
        rows.append(("leader kill -9 -> next write acknowledged",
                     f"{wrote:.2f} s" if wrote else "none in 30 s", f"new leader {new} (was {old})"))
    finally:
        cluster.stop()
    print(f"etcd {subprocess.run(['etcd', '--version'], capture_output=True, text=True).stdout.split()[2]}, "
          f"3 members on 127.0.0.1, heartbeat 100 ms, election timeout 1 s")
    for r in rows:
        print(" | ".join(r))


if __name__ == "__main__":
    sys.exit(main())
