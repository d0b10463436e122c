"""python -m cohort.worker MODULE:ATTRIBUTE [--server HOST:PORT] [--queue Q]...

Imports MODULE (from the current directory or PYTHONPATH), takes its cohort.Worker
ATTRIBUTE, and runs it until SIGTERM/SIGINT (then drains). Flags override the worker's
own settings. Logs one line per event on stderr. Exit status: 0 after a drain, 1 when
the broker refuses the worker, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from cohort.worker._worker import Worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cohort.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("worker", help="MODULE:ATTRIBUTE naming a cohort.Worker")
    parser.add_argument("--server", help="the broker, HOST:PORT (default: the worker's, $COHORT_SERVER)")
    parser.add_argument("--queue", action="append", help="queue to serve (repeatable; default: the worker's)")
    parser.add_argument("--concurrency", type=int, help="attempts at once (default: the worker's)")
    parser.add_argument("--executor-id", help="stable id; leases belong to it")
    args = parser.parse_args(argv)
    module_name, _, attribute = args.worker.partition(":")
    if not module_name or not attribute:
        parser.error("the worker must be given as MODULE:ATTRIBUTE")
    sys.path.insert(0, os.getcwd())
    try:
        worker = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as e:
        parser.error(f"cannot load {args.worker}: {e}")
    if not isinstance(worker, Worker):
        parser.error(f"{args.worker} is a {type(worker).__name__}, not a cohort.Worker")
    if args.server:
        worker.target = args.server
    if args.queue:
        worker.queues = args.queue
    if args.concurrency is not None:
        if not 1 <= args.concurrency <= 10_000:
            parser.error("--concurrency must be in 1..10000")
        worker.concurrency = args.concurrency
    if args.executor_id:
        worker.executor_id = args.executor_id
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return worker.main()


if __name__ == "__main__":
    sys.exit(main())
