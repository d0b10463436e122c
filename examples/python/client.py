#!/usr/bin/python3
"""A Cohort client in Python on the SDK (clients/python): remote jobs as asyncio awaitables.

1. Submits a batch of builtin.echo jobs and gathers their results with cohort.gather,
   which returns them in submission order whatever order the jobs finish in, as
   asyncio.gather does.
2. Submits three builtin.sleep jobs (one short, two long) and waits with
   cohort.wait(..., return_when=FIRST_COMPLETED), as asyncio.wait: the short one is
   done, the long ones pending. Wait never cancels, so the client cancels those itself.

Needs a broker and an executor serving the queue (builtin kinds). Prints what it gets on
stdout; on an RPC failure prints one line to stderr and exits 1. TLS and the token come
from the environment and ~/.config/cohort/config, as for cohortctl.

    /usr/bin/python3 examples/python/client.py --server=127.0.0.1:7070
"""

import argparse
import asyncio
import sys

import cohort

# The short sleep runs at a higher priority, so it is dispatched first even by an
# executor with a single slot; the long ones would run for a minute if not cancelled.
SLEEPS = [("60s", 0), ("100ms", 1), ("60s", 0)]


async def run(server: str, queue: str, count: int, timeout: float) -> None:
    async with cohort.connect(server) as client:
        jobs = await client.submit_many([cohort.spec(queue, "builtin.echo", f"hello {i}") for i in range(count)])
        print(f"submitted {count} builtin.echo jobs to queue {queue}")
        for i, result in enumerate(await asyncio.wait_for(cohort.gather(*jobs), timeout)):
            print(f"gather[{i}] = {result.decode()}")

        sleeps = await client.submit_many([cohort.spec(queue, "builtin.sleep", d, priority=p) for d, p in SLEEPS])
        label = {job: d for job, (d, _) in zip(sleeps, SLEEPS)}
        done, pending = await cohort.wait(sleeps, return_when=cohort.FIRST_COMPLETED, timeout=timeout)
        states = {job: cohort.state_name((await job.info()).state) for job in done}
        print("wait FIRST_COMPLETED: done=[{}] pending=[{}]".format(
            ", ".join(f"sleep {label[j]} {states[j]}" for j in sleeps if j in done),
            ", ".join(f"sleep {label[j]}" for j in sleeps if j in pending)))
        for job in pending:
            await job.cancel()
        print(f"cancelled {len(pending)} pending jobs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:7070", help="the broker, HOST:PORT")
    parser.add_argument("--queue", default="examples", help="queue for the jobs")
    parser.add_argument("--count", type=int, default=5, help="echo jobs to gather (1..1000)")
    parser.add_argument("--timeout", type=int, default=60, help="seconds to wait at most")
    args = parser.parse_args()
    if not 1 <= args.count <= 1000:
        parser.error("--count must be in 1..1000")
    if args.timeout < 1:
        parser.error("--timeout must be at least 1")
    try:
        asyncio.run(run(args.server, args.queue, args.count, args.timeout))
    except cohort.CohortError as e:
        print(f"client.py: {e.method} failed: {e.code.name}: {e.details}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
