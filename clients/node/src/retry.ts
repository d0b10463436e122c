// Riding out a broker failover: calls that are safe to make twice are made again when
// they end UNAVAILABLE (the leader died or is being elected; the channel dials the
// address list again and reaches the new leader), with backoff, within a bounded time.
// Safe twice: reads, the waits (re-issued for what is left of their timeout), and the
// writes the broker makes idempotent (PauseQueue, ResumeQueue, SetQueueLimits, a Submit
// whose every spec has an idempotency key, a StartBulkOperation with a requestId).
import * as grpc from '@grpc/grpc-js';
import { CohortError } from './errors';

/**
 * How long a call rides out an unreachable broker: an UNAVAILABLE call is made again
 * after a backoff (initialBackoffMs doubling to maxBackoffMs, with jitter) until
 * deadlineMs have passed since the first UNAVAILABLE of the streak or maxAttempts
 * calls failed; then the last UNAVAILABLE CohortError is thrown (retryable: nothing
 * wrong was answered). An attempt that ran for deadlineMs or more before failing (a
 * long wait that was being served) starts a new streak. deadlineMs 0 turns it off.
 */
export interface RetryPolicy {
  deadlineMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  maxAttempts?: number;
}

export const NO_RETRY: RetryPolicy = { deadlineMs: 0, maxAttempts: 1 };

function checked(p: RetryPolicy): Required<RetryPolicy> {
  const r = { deadlineMs: p.deadlineMs ?? 30_000, initialBackoffMs: p.initialBackoffMs ?? 50,
    maxBackoffMs: p.maxBackoffMs ?? 1000, maxAttempts: p.maxAttempts ?? 200 };
  if (!(r.deadlineMs >= 0 && r.deadlineMs <= 3_600_000)) throw new RangeError('retry deadlineMs must be 0..3600000');
  if (!(r.initialBackoffMs > 0 && r.initialBackoffMs <= r.maxBackoffMs && r.maxBackoffMs <= 60_000)) {
    throw new RangeError('want 0 < initialBackoffMs <= maxBackoffMs <= 60000');
  }
  if (!(Number.isInteger(r.maxAttempts) && r.maxAttempts >= 1 && r.maxAttempts <= 10_000)) {
    throw new RangeError('retry maxAttempts must be 1..10000');
  }
  return r;
}

/** The state of one call's retries. */
export class Streak {
  private readonly policy: Required<RetryPolicy>;
  private start: number | undefined;
  private failures = 0;
  private backoff: number;
  private attemptStarted = Date.now();

  constructor(policy: RetryPolicy, private readonly signal?: AbortSignal) {
    this.policy = checked(policy);
    this.backoff = this.policy.initialBackoffMs;
  }

  /** Call before each attempt. */
  begin(): void { this.attemptStarted = Date.now(); }

  /** An attempt got an answer (a stream message): the streak is over. */
  succeeded(): void {
    this.start = undefined;
    this.failures = 0;
    this.backoff = this.policy.initialBackoffMs;
  }

  /** Waits before the next attempt, or rethrows `error` (not UNAVAILABLE, or past the policy). */
  async failed(error: unknown): Promise<void> {
    if (!(error instanceof CohortError) || error.code !== grpc.status.UNAVAILABLE) throw error;
    const now = Date.now();
    if (this.start === undefined || now - this.attemptStarted >= this.policy.deadlineMs) {
      this.start = now;
      this.failures = 0;
      this.backoff = this.policy.initialBackoffMs;
    }
    this.failures += 1;
    const pause = this.backoff * (0.5 + 0.5 * Math.random());
    if (this.failures >= this.policy.maxAttempts || now + pause - this.start > this.policy.deadlineMs) throw error;
    this.backoff = Math.min(this.backoff * 2, this.policy.maxBackoffMs);
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => { clearTimeout(timer); reject(this.signal!.reason); };
      const timer = setTimeout(() => { this.signal?.removeEventListener('abort', onAbort); resolve(); }, pause);
      this.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** attempt() until it resolves, or rejects with what Streak.failed lets through. */
export async function retrying<T>(policy: RetryPolicy, attempt: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const streak = new Streak(policy, signal);
  for (;;) {
    streak.begin();
    try {
      return await attempt();
    } catch (e) {
      await streak.failed(e);
    }
  }
}
