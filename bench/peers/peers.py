"""Cohort against BullMQ and Sidekiq, same workloads, one interleaved run (run.sh).

Each run starts every system afresh (its server, its worker, its driver) in temp dirs on
free 127.0.0.1 ports, runs the workloads below, reads peak RSS, and stops it; systems
take turns (A B C, A B C, ...) and the table shows the median over runs. Every process
is started here and stopped here by PID, also on Ctrl-C, SIGTERM or error.

Systems: Cohort (cohort-broker, WAL synced on every commit, + one cohort-executor at its
default capacity and at capacity 64, driven from Python grpcio), BullMQ (npm, Node
worker) and Sidekiq (Debian's), both on Debian's redis-server with appendonly yes and
appendfsync always, each driven from its own client library.

Workloads (no-op jobs): gated (bulk enqueue N with the queue held, then release and
drain), live (bulk enqueue N with the worker running, until all are done; CPU per job
is the server's + worker's utime+stime over it, from /proc/PID/stat), single (one-by-one
enqueue), roundtrip (submit one job and wait for its result, in a row), gather (submit
1,000 at once and wait for all, median of 5).
"""

import argparse
import ctypes
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


class Stopped(Exception):
    """Raised in the main thread by SIGTERM, so that cleanup runs as on Ctrl-C."""


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def percentile_ms(sorted_seconds: list[float], q: float) -> float:
    """The q-quantile (0..1, nearest rank) of ascending samples in seconds, in ms."""
    return sorted_seconds[min(len(sorted_seconds) - 1, int(len(sorted_seconds) * q))] * 1e3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process of this benchmark: started, awaited for its ready line, and
    stopped by its PID (SIGTERM, then SIGKILL after 10 s). Its output after the ready
    line goes to a log file in the run's temp dir."""

    everything: list["Proc"] = []

    def __init__(self, name: str, cmd: list[str], log: Path, env: dict | None = None,
                 stdin: bool = False, cwd: Path | None = None) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as stderr:
            self.popen = subprocess.Popen(
                cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=stderr, env={**os.environ, **(env or {})}, cwd=cwd, text=True,
                bufsize=1, preexec_fn=_die_with_parent)
        Proc.everything.append(self)
        self.pid = self.popen.pid

    def await_line(self, prefix: str, timeout: float = 60.0) -> str:
        """The first stdout line starting with `prefix`; exits the benchmark if the
        process ends or `timeout` passes first."""
        result: list[str] = []

        def read() -> None:
            for line in self.popen.stdout:
                if line.startswith(prefix):
                    result.append(line.strip())
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not result:
            raise SystemExit(f"{self.name} printed no '{prefix}' line within {timeout:.0f} s "
                             f"(exit code {self.popen.poll()}); see {self.log}")
        return result[0]

    def drain_stdout(self) -> None:
        def copy() -> None:
            with open(self.log, "a") as f:
                for line in self.popen.stdout:
                    f.write(line)
        threading.Thread(target=copy, daemon=True).start()

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rfind(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise SystemExit(f"no VmHWM for {self.name}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self in Proc.everything:
            Proc.everything.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for p in reversed(list(cls.everything)):
            p.stop()


class Driver(Proc):
    """A system's client: one JSON command per stdin line, one JSON result per stdout
    line; prints {"ready": true} once connected."""

    def __init__(self, name: str, cmd: list[str], log: Path, env: dict, cwd: Path | None = None) -> None:
        super().__init__(name, cmd, log, env=env, stdin=True, cwd=cwd)
        self.await_line('{"ready"', timeout=120)

    def call(self, op: str, n: int) -> dict:
        self.popen.stdin.write(json.dumps({"op": op, "n": n}) + "\n")
        self.popen.stdin.flush()
        line = self.popen.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name} ended during '{op}' (exit code {self.popen.wait()}); see {self.log}")
        return json.loads(line)


def start_redis(d: Path) -> tuple[Proc, int]:
    port = free_port()
    redis = Proc("redis-server", [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
        "--appendonly", "yes", "--appendfsync", "always", "--save", "",
        "--auto-aof-rewrite-percentage", "0", "--protected-mode", "no", "--loglevel", "notice"],
        d / "redis.log")
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if redis.popen.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"redis-server did not start; see {d / 'redis.log'}")
        time.sleep(0.05)
    redis.drain_stdout()
    return redis, port


class System:
    """One system under test: `start` brings up its server, worker and driver in `d`."""

    label: str

    def start(self, d: Path) -> tuple[Proc, Proc, Driver]:
        raise NotImplementedError


class Cohort(System):
    def __init__(self, args: argparse.Namespace, capacity: int | None, flags: list[str]) -> None:
        self.args = args
        self.capacity = capacity
        self.flags = flags  # more cohort-executor flags, e.g. a fixed --prefetch to compare
        self.label = " ".join([f"Cohort c{capacity or args.default_capacity or '(default)'}"] + flags)

    def start(self, d: Path) -> tuple[Proc, Proc, Driver]:
        broker = Proc("cohort-broker", [
            self.args.broker, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
            f"--data-dir={d}/broker"], d / "broker.log")
        address = broker.await_line("listening").split()[1].removeprefix("grpc=")
        broker.drain_stdout()
        executor = Proc("cohort-executor", [
            self.args.executor, f"--broker={address}", "--listen=127.0.0.1:0",
            "--metrics-listen=127.0.0.1:0"] + ([f"--capacity={self.capacity}"] if self.capacity else []) + self.flags,
            d / "executor.log")
        executor.await_line("listening")
        executor.drain_stdout()
        driver = Driver("cohort driver", [sys.executable, str(HERE / "cohort_driver.py")], d / "driver.log",
                        env={"COHORT_BROKER": address, "PYTHONPATH": self.args.python_site})
        return broker, executor, driver


class BullMQ(System):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.label = f"BullMQ c{args.bullmq_concurrency}"

    def start(self, d: Path) -> tuple[Proc, Proc, Driver]:
        redis, port = start_redis(d)
        env = {"REDIS_PORT": str(port), "CONCURRENCY": str(self.args.bullmq_concurrency)}
        worker = Proc("bullmq worker", ["node", "worker.js"], d / "worker.log", env=env, cwd=HERE / "bullmq")
        worker.await_line("ready")
        worker.drain_stdout()
        driver = Driver("bullmq driver", ["node", "driver.js"], d / "driver.log", env=env, cwd=HERE / "bullmq")
        return redis, worker, driver


class Sidekiq(System):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.label = f"Sidekiq c{args.sidekiq_concurrency}"

    def start(self, d: Path) -> tuple[Proc, Proc, Driver]:
        redis, port = start_redis(d)
        env = {"REDIS_URL": f"redis://127.0.0.1:{port}"}
        worker = Proc("sidekiq", [
            "sidekiq", "-e", "production", "-r", str(HERE / "sidekiq/jobs.rb"), "-q", "bench",
            "-c", str(self.args.sidekiq_concurrency)], d / "worker.log", env=env)
        worker.await_line("ready")
        worker.drain_stdout()
        driver = Driver("sidekiq driver", ["ruby", str(HERE / "sidekiq/driver.rb")], d / "driver.log", env=env)
        return redis, worker, driver


def run_system(system: System, args: argparse.Namespace, root: Path, run: int) -> dict:
    d = Path(tempfile.mkdtemp(prefix=f"{system.label.replace(' ', '-')}-{run}-", dir=root))
    server, worker, driver = system.start(d)
    try:
        n = args.jobs
        figures: dict = {}
        gated = driver.call("gated", n)
        figures["drain"] = n / gated["drain_s"]
        figures["prefill_drain"] = gated["enqueue_s"] + gated["drain_s"]
        figures["bulk"] = n / gated["enqueue_s"]
        cpu0 = server.cpu_seconds() + worker.cpu_seconds()
        live = driver.call("live", n)
        cpu = server.cpu_seconds() + worker.cpu_seconds() - cpu0
        figures["live"] = n / live["live_s"]
        figures["cpu_us"] = cpu / n * 1e6
        figures["single"] = args.single_jobs / driver.call("single", args.single_jobs)["single_s"]
        rt = sorted(driver.call("roundtrip", args.round_trips)["rt_samples"])
        figures["rt_p50"] = percentile_ms(rt, 0.5)
        figures["rt_p99"] = percentile_ms(rt, 0.99)
        figures["gather"] = statistics.median(
            driver.call("gather", args.gather_jobs)["gather_s"] for _ in range(5)) * 1e3
        figures["rss"] = server.peak_rss_mb() + worker.peak_rss_mb()
        return figures
    finally:
        for p in (driver, worker, server):
            p.stop()


# (key, row title, unit format, higher is better)
ROWS = [
    ("prefill_drain", "prefill {n} then drain, end to end", "{:.2f} s", False),
    ("drain", "gated drain", "{:,.0f} jobs/s", True),
    ("live", "live end to end, {n} jobs", "{:,.0f} jobs/s", True),
    ("bulk", "bulk enqueue (batches of 1,000)", "{:,.0f} jobs/s", True),
    ("single", "one-by-one enqueue", "{:,.0f} /s", True),
    ("rt_p50", "round trip p50 (submit, wait for result)", "{:.2f} ms", False),
    ("rt_p99", "round trip p99", "{:.2f} ms", False),
    ("gather", "submit + gather {g}", "{:,.0f} ms", False),
    ("rss", "peak RSS, server + worker, after all of the above", "{:.0f} MB", False),
    ("cpu_us", "CPU per job, server + worker, over the live run", "{:.0f} µs", False),
]


def table(systems: list[System], peers: list[System], medians: dict, args: argparse.Namespace) -> str:
    cohorts = [s for s in systems if s not in peers]
    head = ["figure"] + [s.label for s in systems] + [
        "ratio vs best durable peer (" + " / ".join(s.label.removeprefix("Cohort ") for s in cohorts) + ")"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, title, fmt, higher in ROWS:
        cells = [title.format(n=f"{args.jobs:,}", g=f"{args.gather_jobs:,}")]
        cells += [fmt.format(medians[s.label][key]) for s in systems]
        best = (max if higher else min)(peers, key=lambda p: medians[p.label][key])
        b = medians[best.label][key]
        ratios = [medians[c.label][key] / b if higher else b / medians[c.label][key] for c in cohorts]
        cells.append(" / ".join(f"{r:.2f}×" for r in ratios) + f" ({best.label.split()[0]})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=20_000, help="N for the drain, live and bulk workloads")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs; the table shows medians")
    ap.add_argument("--single-jobs", type=int, default=2_000, help="jobs enqueued one by one")
    ap.add_argument("--round-trips", type=int, default=1_000, help="sequential round trips")
    ap.add_argument("--gather-jobs", type=int, default=1_000, help="jobs per submit + gather")
    ap.add_argument("--capacities", default="default,64",
                    help="cohort-executor capacities, comma-separated; each may be followed by more executor "
                    "flags after spaces, e.g. 'default,default --adaptive-prefetch=false'")
    ap.add_argument("--default-capacity", type=int, default=0, help="the executor's default, for the label")
    # The peers get 64 slots, as Cohort's second column: each drained 1.5-2x faster at
    # 64 than at its default (BullMQ 1, Sidekiq 6's 10) or at 8 on this machine.
    ap.add_argument("--bullmq-concurrency", type=int, default=64)
    ap.add_argument("--sidekiq-concurrency", type=int, default=64)
    ap.add_argument("--systems", default="cohort,bullmq,sidekiq")
    ap.add_argument("--broker", required=True)
    ap.add_argument("--executor", required=True)
    ap.add_argument("--python-site", required=True, help="where clients/python is installed (its stubs)")
    ap.add_argument("--work", required=True, help="temp dir for every system's data and logs")
    ap.add_argument("--versions", default="", help="a line printed under the table")
    args = ap.parse_args()

    wanted = args.systems.split(",")
    systems: list[System] = []
    if "cohort" in wanted:
        for entry in args.capacities.split(","):
            c, *flags = entry.split()
            systems.append(Cohort(args, None if c == "default" else int(c), flags))
    peers: list[System] = ([BullMQ(args)] if "bullmq" in wanted else []) + (
        [Sidekiq(args)] if "sidekiq" in wanted else [])
    systems += peers

    def on_term(signum, frame):
        raise Stopped()
    signal.signal(signal.SIGTERM, on_term)

    results: dict[str, list[dict]] = {s.label: [] for s in systems}
    load_before = Path("/proc/loadavg").read_text().split()[0]
    root = Path(args.work)
    try:
        for run in range(1, args.runs + 1):
            for s in systems:
                t0 = time.monotonic()
                figures = run_system(s, args, root, run)
                results[s.label].append(figures)
                print(f"run {run}/{args.runs} {s.label}: " + ", ".join(
                    f"{k}={v:.4g}" for k, v in figures.items()) + f" ({time.monotonic() - t0:.0f} s)",
                    file=sys.stderr, flush=True)
    except (KeyboardInterrupt, Stopped):
        print("interrupted: stopping every process started", file=sys.stderr)
        Proc.stop_all()
        sys.exit(130)
    finally:
        Proc.stop_all()

    medians = {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in results.items()}
    print(f"\nNo-op jobs, medians of {args.runs} interleaved run(s); ratio > 1: Cohort ahead "
          f"(rates: Cohort / peer; times, memory, CPU: peer / Cohort).\n")
    if peers and len(systems) > len(peers):
        print(table(systems, peers, medians, args))
    else:
        for label, m in medians.items():
            print(label, {k: round(v, 3) for k, v in m.items()})
    print(f"\nLoad average (1 min) at the start {load_before}, at the end "
          f"{Path('/proc/loadavg').read_text().split()[0]}, on {os.cpu_count()} cores.")
    if args.versions:
        print(args.versions)


if __name__ == "__main__":
    main()
