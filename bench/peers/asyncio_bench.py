#!/usr/bin/python3
"""Peer benchmark: Python asyncio on uvloop.

Measures the same five workloads as Cohort's coroutine-runtime benchmark and
bench/peers/asio_bench.cc, each on a fresh uvloop event loop (loop creation is
outside the timed region):

  gather_100k  create 100,000 trivial tasks (each returns its index) and
               asyncio.gather them; verifies the sum of the results.
  queue_1m     1,000,000 put/get pairs through an unbounded asyncio.Queue
               between one producer and one consumer task; verifies order.
  yield_1m     100 tasks x 10,000 `await asyncio.sleep(0)` = 1,000,000 yields.
  timers_100k  100,000 loop.call_later timers, delays uniform in [0, 1 ms]
               (fixed seed), all scheduled at once; runs until all fired and
               verifies they fired in non-decreasing deadline order (see the
               uvloop caveat in bench_timers).
  post_1m      a foreign thread does 1,000,000 loop.call_soon_threadsafe calls,
               each incrementing a counter on the loop thread; timed until the
               counter reaches 1,000,000.

Each workload prints one line `<name> <seconds>` (monotonic clock,
time.perf_counter, 6 decimals). Exit status is 0 on success, 1 with a message
on stderr if a verification fails, 2 on bad usage.

Run with Debian's python3 (uvloop is installed for it, not for pyenv's):
  /usr/bin/python3 bench/peers/asyncio_bench.py [--only NAME]
"""

import argparse
import asyncio
import random
import sys
import threading
import time

import uvloop

GATHER_TASKS = 100_000
QUEUE_ITEMS = 1_000_000
YIELD_TASKS = 100
YIELDS_PER_TASK = 10_000
TIMERS = 100_000
TIMER_MAX_DELAY_S = 0.001
TIMER_SEED = 12345
POSTS = 1_000_000


class VerificationError(Exception):
    """A workload produced a wrong result."""


async def bench_gather() -> float:
    async def trivial(i: int) -> int:
        return i

    t0 = time.perf_counter()
    results = await asyncio.gather(*[trivial(i) for i in range(GATHER_TASKS)])
    t1 = time.perf_counter()

    expected = GATHER_TASKS * (GATHER_TASKS - 1) // 2
    if sum(results) != expected:
        raise VerificationError(f"gather sum {sum(results)} != {expected}")
    return t1 - t0


async def bench_queue() -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()  # unbounded
    bad: list[tuple[int, int]] = []

    async def producer() -> None:
        for i in range(QUEUE_ITEMS):
            await queue.put(i)

    async def consumer() -> None:
        for expected in range(QUEUE_ITEMS):
            got = await queue.get()
            if got != expected and not bad:
                bad.append((expected, got))

    t0 = time.perf_counter()
    await asyncio.gather(consumer(), producer())
    t1 = time.perf_counter()

    if bad:
        raise VerificationError(f"queue item {bad[0][0]} arrived as {bad[0][1]}")
    if not queue.empty():
        raise VerificationError(f"queue has {queue.qsize()} leftover items")
    return t1 - t0


async def bench_yield() -> float:
    counts = [0] * YIELD_TASKS

    async def yielder(k: int) -> None:
        for _ in range(YIELDS_PER_TASK):
            await asyncio.sleep(0)
        counts[k] = YIELDS_PER_TASK

    t0 = time.perf_counter()
    await asyncio.gather(*[yielder(k) for k in range(YIELD_TASKS)])
    t1 = time.perf_counter()

    if sum(counts) != YIELD_TASKS * YIELDS_PER_TASK:
        raise VerificationError(f"yield total {sum(counts)}")
    return t1 - t0


async def bench_timers() -> float:
    """Timers with delays in [0, 1 ms].

    uvloop caveat: uvloop.call_later rounds the delay to whole milliseconds;
    a delay that rounds to 0 becomes a plain call_soon (an asyncio.Handle with
    no deadline), the rest become 1 ms libuv timers (TimerHandle). Since
    scheduling 100k handles takes far more than 1 ms, libuv runs the expired
    1 ms timers *before* the call_soon'd ones in the next loop iteration, so
    the two groups are inverted relative to each other. We therefore verify
    the deadline order that the loop actually knows: TimerHandles must fire in
    non-decreasing when() order and call_soon'd handles in FIFO order (their
    effective deadline is "now" at scheduling time). On the stock asyncio
    loop every handle is a TimerHandle and this is the full check.
    """
    loop = asyncio.get_running_loop()
    rng = random.Random(TIMER_SEED)
    delays = [rng.uniform(0.0, TIMER_MAX_DELAY_S) for _ in range(TIMERS)]
    fired: list[int] = []
    done = loop.create_future()

    def on_timer(i: int) -> None:
        fired.append(i)
        if len(fired) == TIMERS:
            done.set_result(None)

    t0 = time.perf_counter()
    handles = [loop.call_later(d, on_timer, i) for i, d in enumerate(delays)]
    await done
    t1 = time.perf_counter()

    if sorted(fired) != list(range(TIMERS)):
        raise VerificationError("timers: not every timer fired exactly once")
    last_when = float("-inf")
    last_soon = -1
    for i in fired:
        # uvloop's handle classes do not subclass asyncio's, so duck-type.
        when = getattr(handles[i], "when", None)
        if when is not None:  # a real timer
            if when() < last_when:
                raise VerificationError(
                    f"timers: deadline {when()} fired after {last_when}")
            last_when = when()
        else:  # uvloop turned a sub-0.5 ms delay into call_soon
            if i < last_soon:
                raise VerificationError("timers: call_soon handles out of order")
            last_soon = i
    return t1 - t0


async def bench_post() -> float:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    counter = 0

    def increment() -> None:
        nonlocal counter
        counter += 1
        if counter == POSTS:
            done.set_result(None)

    def foreign() -> None:
        post = loop.call_soon_threadsafe
        for _ in range(POSTS):
            post(increment)

    t0 = time.perf_counter()
    thread = threading.Thread(target=foreign)
    thread.start()
    await done
    t1 = time.perf_counter()
    thread.join()

    if counter != POSTS:
        raise VerificationError(f"post counter {counter} != {POSTS}")
    return t1 - t0


WORKLOADS = {
    "gather_100k": bench_gather,
    "queue_1m": bench_queue,
    "yield_1m": bench_yield,
    "timers_100k": bench_timers,
    "post_1m": bench_post,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="NAME", choices=list(WORKLOADS),
                        help="run just this workload")
    args = parser.parse_args()

    uvloop.install()
    names = [args.only] if args.only else list(WORKLOADS)
    for name in names:
        try:
            seconds = asyncio.run(WORKLOADS[name]())  # fresh loop per workload
        except VerificationError as e:
            print(f"{name}: verification failed: {e}", file=sys.stderr)
            return 1
        print(f"{name} {seconds:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
