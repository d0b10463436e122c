"""Riding out a broker failover: calls that are safe to make twice are made again when
they end UNAVAILABLE (the leader died or is being elected; the channel then dials the
address list again and reaches the new leader), with backoff, within a bounded time.

Safe to make twice: reads, the waits (re-issued for what is left of their timeout), and
writes the broker makes idempotent (PauseQueue, ResumeQueue, SetQueueLimits, a Submit
whose every spec has an idempotency key, a StartBulkOperation with a request_id).
Nothing else is retried: a write that may have been applied before the connection broke
ends UNAVAILABLE and the caller decides.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Awaitable, Callable, TypeVar

import grpc

from cohort.errors import CohortError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How long a call rides out an unreachable broker.

    A call that ends UNAVAILABLE is made again after a backoff (initial_backoff, doubling
    to max_backoff, with jitter) until `deadline` seconds have passed since the first
    UNAVAILABLE of the streak or max_attempts calls failed; then the last UNAVAILABLE
    CohortError is raised (retryable: nothing wrong was answered). An attempt that had
    been running for `deadline` seconds or more before failing (a long wait that was being
    served) starts a new streak. deadline=0 turns retrying off."""

    deadline: float = 30.0
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    max_attempts: int = 200

    def __post_init__(self) -> None:
        if not 0 <= self.deadline <= 3600:
            raise ValueError(f"retry deadline must be 0..3600 s, got {self.deadline!r}")
        if not 0 < self.initial_backoff <= self.max_backoff <= 60:
            raise ValueError("want 0 < initial_backoff <= max_backoff <= 60 s")
        if not 1 <= self.max_attempts <= 10_000:
            raise ValueError(f"max_attempts must be 1..10000, got {self.max_attempts!r}")


NO_RETRY = RetryPolicy(deadline=0, max_attempts=1)


class Streak:
    """The state of one call's retries; `failed` decides whether to go again."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._loop = asyncio.get_running_loop()
        self._start: float | None = None
        self._failures = 0
        self._backoff = policy.initial_backoff
        self.attempt_started = self._loop.time()

    def begin(self) -> None:
        """Call before each attempt."""
        self.attempt_started = self._loop.time()

    def succeeded(self) -> None:
        """An attempt got an answer (e.g. a stream message): the streak is over."""
        self._start = None
        self._failures = 0
        self._backoff = self._policy.initial_backoff

    async def failed(self, error: CohortError) -> None:
        """Sleeps before the next attempt, or raises `error` when it is not UNAVAILABLE
        or the policy's bounds are reached."""
        if error.code != grpc.StatusCode.UNAVAILABLE:
            raise error
        now = self._loop.time()
        if self._start is None or now - self.attempt_started >= self._policy.deadline:
            self._start = now
            self._failures = 0
            self._backoff = self._policy.initial_backoff
        self._failures += 1
        pause = self._backoff * random.uniform(0.5, 1.0)
        if self._failures >= self._policy.max_attempts or now + pause - self._start > self._policy.deadline:
            raise error
        self._backoff = min(self._backoff * 2, self._policy.max_backoff)
        await asyncio.sleep(pause)


async def retrying(policy: RetryPolicy, attempt: Callable[[], Awaitable[T]]) -> T:
    """attempt() until it returns, or raises what Streak.failed lets through."""
    streak = Streak(policy)
    while True:
        streak.begin()
        try:
            return await attempt()
        except CohortError as e:
            await streak.failed(e)
