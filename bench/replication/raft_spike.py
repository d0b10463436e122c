"""Spike for issue 18: what a 3-member libraft group (Debian's libraft 0.15) costs as the
replicated log of a broker's group commits, on this machine, measured like
etcd_spike.py (not a test; not in CI).

Compiles raft_node.c with the system compiler (needs libraft-dev and libuv1-dev),
starts three members on 127.0.0.1 in temp dirs, lets the first leader append batches
of 1 KiB, 16 KiB and 256 KiB sequentially (p50/p99 commit latency, entries/s), then
kills that leader with SIGKILL and reports the time until the new leader has
committed an entry. Run: /usr/bin/python3 bench/replication/raft_spike.py
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_base():
    # Three consecutive free ports above a free one (good enough for a spike).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1] + 10


def run_group(binary, entries, size, failover):
    tmp = tempfile.mkdtemp(prefix="raft-spike-")
    base = free_base()
    procs = {}
    try:
        for i in (1, 2, 3):
            d = os.path.join(tmp, str(i))
            os.makedirs(d)
            procs[i] = subprocess.Popen([binary, str(i), d, str(base), str(entries), str(size)],
                                        stdout=subprocess.PIPE, text=True)
        leader, result = None, None
        import selectors
        sel = selectors.DefaultSelector()
        for i, p in procs.items():
            sel.register(p.stdout, selectors.EVENT_READ, i)
        deadline = time.time() + 120
        while result is None and time.time() < deadline:
            for key, _ in sel.select(timeout=1):
                line = key.fileobj.readline()
                if line.startswith("RESULT"):
                    leader, result = key.data, line.split()[1:]
        if result is None:
            raise RuntimeError("no leader finished its appends")
        failover_s = None
        if failover:
            killed = time.time_ns()
            os.kill(procs[leader].pid, signal.SIGKILL)
            sel.unregister(procs[leader].stdout)
            deadline = time.time() + 30
            while failover_s is None and time.time() < deadline:
                for key, _ in sel.select(timeout=1):
                    line = key.fileobj.readline()
                    if line.startswith("FAILOVER"):
                        failover_s = (int(line.split()[1]) - killed) / 1e9
        return result, failover_s
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    build = tempfile.mkdtemp(prefix="raft-node-")
    binary = os.path.join(build, "raft_node")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "raft", "libuv"], capture_output=True,
                           text=True, check=True).stdout.split()
    subprocess.run(["cc", "-O2", "-o", binary, os.path.join(HERE, "raft_node.c"), *flags], check=True)
    print("libraft 0.15 (Debian), 3 members on 127.0.0.1, heartbeat 100 ms, election timeout 1 s")
    try:
        for size, n in ((1024, 300), (16 * 1024, 300), (256 * 1024, 100)):
            (p50, p99, rate), _ = run_group(binary, n, size, failover=False)
            print(f"commit {size // 1024} KiB, sequential | p50 {int(p50) / 1e3:.2f} ms | "
                  f"p99 {int(p99) / 1e3:.2f} ms | {rate} entries/s")
        _, failover_s = run_group(binary, 50, 1024, failover=True)
        print("leader kill -9 -> next entry committed | " +
              (f"{failover_s:.2f} s" if failover_s is not None else "none in 30 s"))
    finally:
        shutil.rmtree(build, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
