"""Cohort through its Python SDK against Celery, same no-op workloads (run.sh).

Systems, each started afresh for every run in its own temp dir on free 127.0.0.1 ports:
- Cohort: cohort-broker (WAL synced on every commit) + one cohort.Worker (the Python
  SDK, cohort_worker.py) at concurrency 16, driven by cohort_driver.py (the SDK's
  asyncio client).
- Celery (Debian's python3-celery) with Debian's redis-server as broker and result
  backend (appendonly yes, appendfsync always: durable like Cohort's WAL; --redis-fsync
  everysec for Redis's usual setting, which may lose the last second), one worker
  per pool at concurrency 16: prefork, threads and gevent; driven by celery_driver.py
  (delay()/group() and AsyncResult.get()).

Workloads: throughput (submit N and wait for every result, end to end jobs/s),
round trip (submit one and wait for its result, in a row: p50 and p99), gather (submit
1,000 and wait for all, median of 5), fan-out (100 submitted and awaited concurrently
from one coroutine, median of 5). Systems take turns (A B C D, A B C D, ...) and the
table shows the median over runs. Every process is started here and stopped here by
PID, also on Ctrl-C, SIGTERM or error (bench/peers/peers.py's Proc).

--mode overhead measures the SDK's own cost per call instead (overhead.py).
"""

import argparse
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "peers"))
from peers import Driver, Proc, Stopped, percentile_ms, start_redis  # noqa: E402  (bench/peers' process helpers)


class System:
    label: str

    def start(self, d: Path) -> tuple[list[Proc], Driver]:
        """Starts the system's server and worker in d; returns them and its driver."""
        raise NotImplementedError


def start_cohort(args: argparse.Namespace, d: Path) -> tuple[list[Proc], str]:
    """A cohort-broker and the SDK worker; returns them and the broker's address."""
    broker = Proc("cohort-broker", [args.broker, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                    f"--data-dir={d}/broker"], d / "broker.log")
    address = broker.await_line("listening").split()[1].removeprefix("grpc=")
    broker.drain_stdout()
    env = {"COHORT_SERVER": address, "PYTHONPATH": args.python_site, "CONCURRENCY": str(args.concurrency)}
    worker = Proc("cohort worker", [sys.executable, str(HERE / "cohort_worker.py")], d / "worker.log", env=env)
    worker.await_line("ready")
    worker.drain_stdout()
    return [broker, worker], address


class Cohort(System):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.label = f"Cohort (Python SDK worker c{args.concurrency})"

    def start(self, d: Path) -> tuple[list[Proc], Driver]:
        procs, address = start_cohort(self.args, d)
        driver = Driver("cohort driver", [sys.executable, str(HERE / "cohort_driver.py")], d / "driver.log",
                        env={"COHORT_SERVER": address, "PYTHONPATH": self.args.python_site})
        return procs, driver


class Celery(System):
    def __init__(self, args: argparse.Namespace, pool: str) -> None:
        self.args = args
        self.pool = pool
        self.label = f"Celery {pool} c{args.concurrency}"

    def start(self, d: Path) -> tuple[list[Proc], Driver]:
        redis, port = start_redis(d)
        if self.args.redis_fsync != "always":
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(f"CONFIG SET appendfsync {self.args.redis_fsync}\r\n".encode())
                if not s.recv(16).startswith(b"+OK"):
                    raise SystemExit("redis-server refused CONFIG SET appendfsync")
        env = {"REDIS_URL": f"redis://127.0.0.1:{port}", "PYTHONPATH": str(HERE)}
        # The flags that Celery's docs suggest for throughput, and no line per task.
        worker = Proc(f"celery {self.pool}", [
            sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-P", self.pool,
            "-c", str(self.args.concurrency), "-Q", "bench", "-l", "WARNING", "--without-gossip",
            "--without-mingle", "--without-heartbeat"], d / "worker.log", env=env, cwd=HERE)
        worker.drain_stdout()
        driver = Driver(f"celery driver ({self.pool})", [sys.executable, str(HERE / "celery_driver.py")],
                        d / "driver.log", env=env, cwd=HERE)
        return [redis, worker], driver


def run_system(system: System, args: argparse.Namespace, root: Path, run: int) -> dict:
    d = Path(tempfile.mkdtemp(prefix=f"{system.label.split()[0]}-{run}-", dir=root))
    procs, driver = system.start(d)
    try:
        figures = {"throughput": args.jobs / driver.call("throughput", args.jobs)["s"]}
        rt = sorted(driver.call("roundtrip", args.round_trips)["samples"])
        figures["rt_p50"] = percentile_ms(rt, 0.5)
        figures["rt_p99"] = percentile_ms(rt, 0.99)
        figures["gather"] = statistics.median(driver.call("gather", args.gather_jobs)["s"] for _ in range(5)) * 1e3
        figures["fanout"] = statistics.median(driver.call("fanout", args.fanout)["s"] for _ in range(5)) * 1e3
        return figures
    finally:
        driver.stop()
        for p in reversed(procs):
            p.stop()


# (key, row title, unit format, higher is better)
ROWS = [
    ("throughput", "submit {n} + wait for all, end to end", "{:,.0f} jobs/s", True),
    ("rt_p50", "round trip p50 (submit one, await its result)", "{:.2f} ms", False),
    ("rt_p99", "round trip p99", "{:.2f} ms", False),
    ("gather", "submit + gather {g}", "{:,.0f} ms", False),
    ("fanout", "fan-out of {f} awaited concurrently from one coroutine", "{:,.1f} ms", False),
]


def table(cohort: System, celeries: list[System], medians: dict, args: argparse.Namespace) -> str:
    head = ["figure", cohort.label] + [s.label for s in celeries] + ["Cohort vs best Celery pool"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, title, fmt, higher in ROWS:
        cells = [title.format(n=f"{args.jobs:,}", g=f"{args.gather_jobs:,}", f=args.fanout)]
        cells += [fmt.format(medians[s.label][key]) for s in [cohort, *celeries]]
        best = (max if higher else min)(celeries, key=lambda s: medians[s.label][key])
        b, c = medians[best.label][key], medians[cohort.label][key]
        cells.append(f"{(c / b if higher else b / c):.2f}× ({best.label.split()[1]})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(args: argparse.Namespace, root: Path) -> None:
    cohort = Cohort(args)
    celeries: list[System] = [Celery(args, pool) for pool in args.pools.split(",")]
    systems = [cohort, *celeries]
    results: dict[str, list[dict]] = {s.label: [] for s in systems}
    load_before = Path("/proc/loadavg").read_text().split()[0]
    for run in range(1, args.runs + 1):
        for s in systems:
            t0 = time.monotonic()
            figures = run_system(s, args, root, run)
            results[s.label].append(figures)
            print(f"run {run}/{args.runs} {s.label}: " + ", ".join(f"{k}={v:.4g}" for k, v in figures.items())
                  + f" ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    medians = {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in results.items()}
    print(f"\nNo-op tasks, medians of {args.runs} interleaved run(s); Redis appendfsync {args.redis_fsync}; "
          f"ratio > 1: Cohort ahead (rates: Cohort / Celery; times: Celery / Cohort).\n")
    print(table(cohort, celeries, medians, args))
    print(f"\nLoad average (1 min) at the start {load_before}, at the end "
          f"{Path('/proc/loadavg').read_text().split()[0]}, on {os.cpu_count()} cores.")


def overhead(args: argparse.Namespace, root: Path) -> None:
    d = Path(tempfile.mkdtemp(prefix="overhead-", dir=root))
    procs, address = start_cohort(args, d)
    try:
        probe = Proc("overhead", [sys.executable, str(HERE / "overhead.py"), "--calls", str(args.calls),
                                  "--runs", str(args.runs)], d / "overhead.log",
                     env={"COHORT_SERVER": address, "PYTHONPATH": args.python_site})
        report = probe.popen.stdout.read()
        if probe.popen.wait() != 0:
            raise SystemExit(f"overhead.py failed; see {d / 'overhead.log'}")
        print(report, end="")
    finally:
        for p in reversed(procs):
            p.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["compare", "overhead"], default="compare")
    ap.add_argument("--jobs", type=int, default=5_000, help="N of the throughput workload")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs; the table shows medians")
    ap.add_argument("--round-trips", type=int, default=500, help="sequential round trips")
    ap.add_argument("--gather-jobs", type=int, default=1_000, help="jobs per submit + gather")
    ap.add_argument("--fanout", type=int, default=100, help="jobs per fan-out")
    ap.add_argument("--concurrency", type=int, default=16, help="every worker's concurrency")
    ap.add_argument("--pools", default="prefork,threads,gevent", help="Celery pools, comma-separated")
    ap.add_argument("--redis-fsync", choices=["always", "everysec"], default="always",
                    help="Redis's appendfsync: always is as durable as Cohort's WAL")
    ap.add_argument("--calls", type=int, default=2_000, help="overhead mode: calls per measurement")
    ap.add_argument("--broker", required=True)
    ap.add_argument("--python-site", required=True, help="where clients/python is installed")
    ap.add_argument("--work", required=True, help="temp dir for every system's data and logs")
    ap.add_argument("--versions", default="", help="a line printed at the end")
    args = ap.parse_args()

    def on_term(signum, frame):
        raise Stopped()
    signal.signal(signal.SIGTERM, on_term)
    try:
        (compare if args.mode == "compare" else overhead)(args, Path(args.work))
    except (KeyboardInterrupt, Stopped):
        print("interrupted: stopping every process started", file=sys.stderr)
        Proc.stop_all()
        sys.exit(130)
    finally:
        Proc.stop_all()
    if args.versions:
        print(args.versions)


if __name__ == "__main__":
    main()
