// @cohort/client: Cohort from Node, with promises. Every wait is one RPC the broker
// answers when the condition holds (never polled here); broker.proto is the contract.
//
//   const client = connect('127.0.0.1:7070');
//   const job = await client.submit('images', 'images.resize', Buffer.from('...'));
//   console.log((await job.result()).toString());
import * as grpc from '@grpc/grpc-js';
import { CohortError, JobError, TimeoutError } from './errors';
import { randomUUID } from 'node:crypto';
import { CallOptions, serverStream, unary } from './rpc';
import { NO_RETRY, retrying, RetryPolicy, Streak } from './retry';
import { channelTarget } from './target';
import { channelParts, ConfigError, configPath, DEFAULT_SERVER, resolveSettings, Settings } from './config';
import {
  BrokerClient, BulkAction, BulkOperation, BulkOperation_State, ExecutorInfo, JobFilter, JobOutcome, QueueInfo,
  QueueLimits, ReturnWhen,
} from './gen/protos/cohort/v1/broker';
import { Duration } from './gen/google/protobuf/duration';
import {
  DependencyFailurePolicy, Job as JobMessage, JobEvent, JobSpec, JobState,
} from './gen/protos/cohort/v1/job';
import {
  CatchUpPolicy, OverlapPolicy, Schedule, ScheduleSpec, SchedulerClient,
} from './gen/protos/cohort/v1/scheduler';

export { CohortError, JobError, TimeoutError };
export { RetryPolicy };

/** gRPC status codes, to compare with CohortError.code (Status.NOT_FOUND) without depending on @grpc/grpc-js. */
export { status as Status } from '@grpc/grpc-js';
/** A gRPC status code's name (14 -> "UNAVAILABLE"). */
export function statusName(code: grpc.status): string { return grpc.status[code] ?? String(code); }
export { JobSpec, JobState, JobEvent, JobMessage, QueueInfo, ExecutorInfo, Schedule, BulkOperation, BulkOperation_State };
export { ConfigError, configPath, resolveSettings, Settings };
export { AttemptStopped, Handler, TaskContext, TaskError, TaskResult, Worker, WorkerError, WorkerOptions } from './worker';
// Slack added to a wait's own timeout for its gRPC deadline, so the broker's fires first.
const DEADLINE_SLACK_MS = 30_000;
const MAX_MS = 100 * 365.25 * 24 * 3600 * 1000;

function durationOf(ms: number, field: string): Duration {
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_MS) throw new RangeError(`${field} must be 0..100 years in ms, got ${ms}`);
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** A wait's timeout: undefined waits without end; negative means "look now". */
function waitTimeout(ms: number | undefined): Duration | undefined {
  if (ms === undefined || ms > MAX_MS) return undefined;
  return durationOf(Math.max(0, ms), 'timeoutMs');
}

function waitDeadline(timeout: Duration | undefined): number | undefined {
  return timeout === undefined ? undefined : timeout.seconds * 1000 + timeout.nanos / 1e6 + DEADLINE_SLACK_MS;
}

/** What is left of a wait's timeout, for a wait re-issued after a failover: the broker is asked for the rest, never more. */
class Countdown {
  private readonly end: number | undefined;

  constructor(timeout: Duration | undefined) {
    this.end = timeout === undefined ? undefined : Date.now() + timeout.seconds * 1000 + timeout.nanos / 1e6;
  }

  /** The wire timeout for the next try (0 once it has passed: "look now"). */
  left(): Duration | undefined {
    return this.end === undefined ? undefined : durationOf(Math.max(0, this.end - Date.now()), 'timeoutMs');
  }
}

export interface SpecOptions {
  priority?: number;
  delayMs?: number;
  runAt?: Date;
  timeoutMs?: number;
  deadline?: Date;
  maxAttempts?: number;
  dependsOn?: Array<Job | string>;
  dependsOnIndex?: number[];
  onDependencyFailure?: 'cancel' | 'fail';
  labels?: Record<string, string>;
  idempotencyKey?: string;
  shield?: boolean;
  resultTtlMs?: number;
}

/** A JobSpec (job.proto documents each field and the broker's rules). */
export function spec(queue: string, kind: string, payload: Buffer | string = Buffer.alloc(0), o: SpecOptions = {}): JobSpec {
  const timestamp = (d: Date) => ({ seconds: Math.floor(d.getTime() / 1000), nanos: (d.getTime() % 1000) * 1e6 });
  if (o.delayMs !== undefined && o.runAt !== undefined) throw new TypeError('give delayMs or runAt, not both');
  return JobSpec.fromPartial({
    queue, kind, payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
    priority: o.priority ?? 0,
    start: o.delayMs !== undefined ? { $case: 'delay', value: durationOf(o.delayMs, 'delayMs') }
      : o.runAt !== undefined ? { $case: 'runAt', value: timestamp(o.runAt) } : undefined,
    timeout: o.timeoutMs !== undefined ? durationOf(o.timeoutMs, 'timeoutMs') : undefined,
    deadline: o.deadline !== undefined ? timestamp(o.deadline) : undefined,
    maxAttempts: o.maxAttempts ?? 0,
    dependsOn: (o.dependsOn ?? []).map((d) => (typeof d === 'string' ? d : d.id)),
    dependsOnIndex: o.dependsOnIndex ?? [],
    onDependencyFailure: o.onDependencyFailure === 'fail'
      ? DependencyFailurePolicy.DEPENDENCY_FAILURE_POLICY_FAIL : DependencyFailurePolicy.DEPENDENCY_FAILURE_POLICY_CANCEL,
    labels: o.labels ?? {},
    idempotencyKey: o.idempotencyKey ?? '',
    shield: o.shield ?? false,
    resultTtl: o.resultTtlMs !== undefined ? durationOf(o.resultTtlMs, 'resultTtlMs') : undefined,
  });
}

/** A handle on one job. Not a thenable (so `await client.submit()` gives the handle): call result(). */
export class Job {
  /** @internal */ outcome?: { result: Buffer } | { error: JobError };

  constructor(readonly client: Client, readonly id: string) {}

  /** True when this handle already knows the outcome (no RPC). */
  done(): boolean { return this.outcome !== undefined; }

  /**
   * The job's result (WaitFor without a timeout); rejects with JobError if it ended
   * FAILED or CANCELLED. Aborting `signal` ends the RPC and cancels nothing, unless
   * cancelOnDisconnect asks the broker to cancel the job too.
   */
  result(options: { signal?: AbortSignal; cancelOnDisconnect?: boolean } = {}): Promise<Buffer> {
    return waitFor(this, undefined, options);
  }

  /** CancelJob: false if the job had already ended. Durable before it resolves. */
  async cancel(): Promise<boolean> {
    const c = this.client;
    const r = await unary(c.broker, c.broker.cancelJob, 'CancelJob', { jobId: this.id }, c.rpcOptions());
    return !r.alreadyEnded;
  }

  /** GetJob: the job as the broker stores it. */
  info(): Promise<JobMessage> { return this.client.getJob(this.id); }

  /** The latest progress of its running attempt. */
  async progress(): Promise<{ fraction: number; message: string }> {
    const p = (await this.info()).progress;
    return { fraction: p?.fraction ?? 0, message: p?.message ?? '' };
  }

  /** @internal */ settled(): Buffer {
    if (this.outcome === undefined) throw new Error('not settled');
    if ('error' in this.outcome) throw this.outcome.error;
    return this.outcome.result;
  }
}

const ABORTED = /^job (\S+) (FAILED|CANCELLED): /;

async function errorOf(client: Client, jobId: string, state: JobState, error: { code: string; message: string; details: Buffer } | undefined): Promise<JobError> {
  let attempts = 0;
  try {
    attempts = (await client.getJob(jobId)).attempts.length;
  } catch (e) {
    if (!(e instanceof CohortError && e.code === grpc.status.NOT_FOUND)) throw e;
  }
  const name = state === JobState.JOB_STATE_CANCELLED ? 'CANCELLED' : 'FAILED';
  return new JobError(jobId, name, error?.code ?? '', error?.message ?? '', error?.details ?? Buffer.alloc(0), attempts);
}

async function errorFromAborted(client: Client, e: CohortError): Promise<JobError> {
  const match = ABORTED.exec(e.details);
  if (match === null) throw e;
  const job = await client.getJob(match[1]!);
  const error = job.outcome?.$case === 'error' ? job.outcome.value : undefined;
  return new JobError(job.id, match[2] as 'FAILED' | 'CANCELLED', error?.code ?? '', error?.message ?? '',
    error?.details ?? Buffer.alloc(0), job.attempts.length);
}

async function settle(job: Job, outcome: JobOutcome): Promise<void> {
  if (outcome.outcome?.$case === 'result' || outcome.state === JobState.JOB_STATE_SUCCEEDED) {
    job.outcome = { result: outcome.outcome?.$case === 'result' ? outcome.outcome.value : Buffer.alloc(0) };
  } else {
    job.outcome = { error: await errorOf(job.client, job.id, outcome.state, outcome.outcome?.$case === 'error' ? outcome.outcome.value : undefined) };
  }
}

function oneClient(jobs: readonly Job[]): Client {
  const client = jobs[0]!.client;
  if (jobs.some((j) => j.client !== client)) throw new TypeError('all jobs of one wait must belong to the same Client');
  return client;
}

/**
 * asyncio.wait_for / Promise with a timeout: the job's result, or TimeoutError once
 * timeoutMs has passed, after the broker has cancelled the job (unless shield, or the
 * spec's shield). Aborting `signal` rejects with its reason and cancels the job only
 * with cancelOnDisconnect.
 */
export async function waitFor(job: Job, timeoutMs: number | undefined,
  options: { signal?: AbortSignal; shield?: boolean; cancelOnDisconnect?: boolean } = {}): Promise<Buffer> {
  if (job.done()) return job.settled();
  const client = job.client;
  const countdown = new Countdown(waitTimeout(timeoutMs));
  try {
    const r = await retrying(client.retry, () => {
      const timeout = countdown.left();
      return unary(client.broker, client.broker.waitFor, 'WaitFor', {
        jobId: job.id, timeout, shield: options.shield ?? false, cancelOnDisconnect: options.cancelOnDisconnect ?? false,
      }, { timeoutMs: waitDeadline(timeout), signal: options.signal });
    }, options.signal);
    job.outcome = { result: r.result };
  } catch (e) {
    if (!(e instanceof CohortError)) throw e;
    if (e.code === grpc.status.DEADLINE_EXCEEDED) throw new TimeoutError(`job ${job.id} did not end in time`);
    if (e.code !== grpc.status.ABORTED) throw e;
    job.outcome = { error: await errorFromAborted(client, e) };
  }
  return job.settled();
}

/**
 * Promise.all-shaped (Gather): results in the given order; rejects at the first job to
 * fail (the others keep running). Aborting `signal` rejects with its reason and cancels
 * nothing.
 */
export function gather(jobs: readonly Job[], options?: { settled?: false; signal?: AbortSignal }): Promise<Buffer[]>;
/** Promise.allSettled-shaped (Gather with return_exceptions): every outcome in its slot. */
export function gather(jobs: readonly Job[], options: { settled: true; signal?: AbortSignal }): Promise<PromiseSettledResult<Buffer>[]>;
export async function gather(jobs: readonly Job[], options: { settled?: boolean; signal?: AbortSignal } = {}):
  Promise<Buffer[] | PromiseSettledResult<Buffer>[]> {
  if (jobs.length === 0) return [];
  const client = oneClient(jobs);
  const settled = options.settled ?? false;
  let response;
  try {
    response = await retrying(client.retry, () => unary(client.broker, client.broker.gather, 'Gather',
      { jobIds: jobs.map((j) => j.id), returnExceptions: settled, timeout: undefined }, { signal: options.signal }),
    options.signal);
  } catch (e) {
    if (e instanceof CohortError && e.code === grpc.status.ABORTED) throw await errorFromAborted(client, e);
    throw e;
  }
  await Promise.all(jobs.map((job, i) => settle(job, response.outcomes[i]!)));
  if (!settled) return jobs.map((j) => j.settled());
  return jobs.map((j): PromiseSettledResult<Buffer> => (
    j.outcome !== undefined && 'error' in j.outcome ? { status: 'rejected', reason: j.outcome.error }
      : { status: 'fulfilled', value: j.settled() }));
}

export type ReturnWhenName = 'FIRST_COMPLETED' | 'FIRST_EXCEPTION' | 'ALL_COMPLETED';

/** asyncio.wait (Wait): {done, pending} once returnWhen holds or the timeout passes; cancels nothing. */
export async function wait(jobs: readonly Job[], options: { returnWhen?: ReturnWhenName; timeoutMs?: number; signal?: AbortSignal } = {}):
  Promise<{ done: Job[]; pending: Job[] }> {
  if (jobs.length === 0) throw new RangeError('wait needs at least one job');
  const client = oneClient(jobs);
  const countdown = new Countdown(waitTimeout(options.timeoutMs));
  const returnWhen = {
    FIRST_COMPLETED: ReturnWhen.RETURN_WHEN_FIRST_COMPLETED,
    FIRST_EXCEPTION: ReturnWhen.RETURN_WHEN_FIRST_EXCEPTION,
    ALL_COMPLETED: ReturnWhen.RETURN_WHEN_ALL_COMPLETED,
  }[options.returnWhen ?? 'ALL_COMPLETED'];
  const r = await retrying(client.retry, () => {
    const timeout = countdown.left();
    return unary(client.broker, client.broker.wait, 'Wait', { jobIds: jobs.map((j) => j.id), returnWhen, timeout },
      { timeoutMs: waitDeadline(timeout), signal: options.signal });
  }, options.signal);
  const outcomes = new Map(r.done.map((o) => [o.jobId, o]));
  const done: Job[] = [];
  const pending: Job[] = [];
  for (const job of jobs) {
    const outcome = outcomes.get(job.id);
    if (outcome === undefined) pending.push(job);
    else {
      await settle(job, outcome);
      done.push(job);
    }
  }
  return { done, pending };
}

/**
 * asyncio.as_completed (AsCompleted stream): each handle as its job ends, earliest
 * first. A failover re-opens the stream for the jobs not yet yielded, for what is left
 * of the timeout.
 */
export async function* asCompleted(jobs: readonly Job[], options: { timeoutMs?: number; signal?: AbortSignal } = {}):
  AsyncGenerator<Job> {
  if (jobs.length === 0) return;
  const client = oneClient(jobs);
  const countdown = new Countdown(waitTimeout(options.timeoutMs));
  const left = new Set(jobs.map((j) => j.id));
  const streak = new Streak(client.retry, options.signal);
  while (left.size > 0) {
    const timeout = countdown.left();
    const deadline = waitDeadline(timeout);
    const call = client.broker.asCompleted({ jobIds: [...left], timeout },
      deadline === undefined ? {} : { deadline: Date.now() + deadline });
    streak.begin();
    try {
      for await (const r of serverStream(call, 'AsCompleted', options.signal)) {
        streak.succeeded();
        const id = r.outcome?.jobId ?? '';
        if (!left.delete(id)) continue;
        for (const job of jobs.filter((j) => j.id === id)) {
          await settle(job, r.outcome!);
          yield job;
        }
      }
      return;
    } catch (e) {
      if (e instanceof CohortError && e.code === grpc.status.DEADLINE_EXCEEDED) throw new TimeoutError('jobs did not all end in time');
      await streak.failed(e);
    }
  }
}

/** Which jobs a listing or bulk operation covers (JobFilter in broker.proto); all given fields must hold. */
export interface Filter {
  states?: JobState[];
  queue?: string;
  kind?: string;
  /** Kubernetes-style: `k=v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma-separated. */
  labelSelector?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  finishedAfter?: Date;
  finishedBefore?: Date;
  errorCode?: string;
}

function timestampOf(d: Date | undefined): { seconds: number; nanos: number } | undefined {
  if (d === undefined) return undefined;
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('an invalid Date in a filter');
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1e6 };
}

function jobFilter(f: Filter): JobFilter {
  return {
    states: f.states ?? [], queue: f.queue ?? '', kind: f.kind ?? '', labelSelector: f.labelSelector ?? '',
    createdAfter: timestampOf(f.createdAfter), createdBefore: timestampOf(f.createdBefore),
    finishedAfter: timestampOf(f.finishedAfter), finishedBefore: timestampOf(f.finishedBefore),
    errorCode: f.errorCode ?? '',
  };
}

export interface ConnectOptions {
  /** The scheduler; default $COHORT_SCHEDULER, the config file's, else the broker's address (cohort-dev serves both). */
  schedulerTarget?: string;
  /** TLS and token settings (and server, scheduler); each field given wins over the
   * environment, which wins over the config file (see config.ts, as cohortctl). */
  settings?: Settings;
  /** gRPC channel credentials, instead of the TLS the settings give. */
  credentials?: grpc.ChannelCredentials;
  /** Bound on every call that is not a wait. */
  rpcTimeoutMs?: number;
  /**
   * How long a call that is safe to make twice rides out an unreachable broker (a
   * failover) before rejecting with CohortError UNAVAILABLE: default 30 s of backoff;
   * { deadlineMs: 0 } turns it off. See README ("A replicated broker group").
   */
  retry?: RetryPolicy;
  /**
   * Give every submitted spec without an idempotencyKey a random one (once per
   * submit call), so that Submit, too, is retried across a failover without creating a
   * job twice. Off by default: a key costs the broker memory until the job's result_ttl.
   */
  idempotentSubmit?: boolean;
}

export interface ScheduleOptions {
  everyMs?: number;
  cron?: string;
  timeZone?: string;
  overlap?: 'skip' | 'allow' | 'buffer_one';
  catchUp?: 'skip_missed' | 'run_once' | 'run_all';
  catchUpLimit?: number;
}

function scheduleSpec(job: JobSpec, o: ScheduleOptions): ScheduleSpec {
  if ((o.everyMs === undefined) === (o.cron === undefined)) throw new TypeError('give exactly one of everyMs and cron');
  return ScheduleSpec.fromPartial({
    job,
    trigger: o.everyMs !== undefined ? { $case: 'interval', value: durationOf(o.everyMs, 'everyMs') }
      : { $case: 'cron', value: { expression: o.cron!, timeZone: o.timeZone ?? '' } },
    overlapPolicy: { skip: OverlapPolicy.OVERLAP_POLICY_SKIP, allow: OverlapPolicy.OVERLAP_POLICY_ALLOW,
      buffer_one: OverlapPolicy.OVERLAP_POLICY_BUFFER_ONE }[o.overlap ?? 'skip'],
    catchUpPolicy: { skip_missed: CatchUpPolicy.CATCH_UP_POLICY_SKIP_MISSED, run_once: CatchUpPolicy.CATCH_UP_POLICY_RUN_ONCE,
      run_all: CatchUpPolicy.CATCH_UP_POLICY_RUN_ALL }[o.catchUp ?? 'run_once'],
    catchUpLimit: o.catchUpLimit ?? 0,
  });
}

/** A connection to Cohort: the broker (and the scheduler). Call close() when done. */
export class Client {
  /** @internal */ readonly broker: BrokerClient;
  /** @internal */ readonly scheduler: SchedulerClient;
  readonly target: string;
  /** @internal */ readonly retry: RetryPolicy;
  private readonly rpcTimeoutMs: number;
  private readonly idempotentSubmit: boolean;

  /** Throws ConfigError for a malformed config file or an unreadable file it names. */
  constructor(target?: string, options: ConnectOptions = {}) {
    const settings = resolveSettings({
      ...options.settings, server: target ?? options.settings?.server,
      scheduler: options.schedulerTarget ?? options.settings?.scheduler,
    });
    this.target = settings.server ?? DEFAULT_SERVER;
    const parts = channelParts(settings);
    const credentials = options.credentials ?? parts.credentials;
    this.broker = new BrokerClient(channelTarget(this.target), credentials, parts.options);
    this.scheduler = new SchedulerClient(channelTarget(settings.scheduler ?? this.target), credentials, parts.options);
    this.rpcTimeoutMs = options.rpcTimeoutMs ?? 30_000;
    this.retry = options.retry ?? {};
    new Streak(this.retry);  // checks the policy now rather than at the first failure
    this.idempotentSubmit = options.idempotentSubmit ?? false;
  }

  /** @internal */ rpcOptions(): CallOptions { return { timeoutMs: this.rpcTimeoutMs }; }

  /** A unary call that is safe to make twice, retried as the client's policy says. */
  private read<Resp>(call: () => Promise<Resp>): Promise<Resp> { return retrying(this.retry, call); }

  close(): void {
    this.broker.close();
    this.scheduler.close();
  }

  job(id: string): Job { return new Job(this, id); }

  async submit(queue: string, kind: string, payload?: Buffer | string, options?: SpecOptions): Promise<Job> {
    return (await this.submitMany([spec(queue, kind, payload, options)]))[0]!;
  }

  /**
   * Submit, all or nothing; durable before it resolves. Retried on UNAVAILABLE only when
   * every spec has an idempotencyKey (given, or generated with idempotentSubmit): the
   * broker then returns the jobs a lost first try created instead of creating them again.
   */
  async submitMany(specs: JobSpec[]): Promise<Job[]> {
    const jobs = this.idempotentSubmit
      ? specs.map((s) => (s.idempotencyKey !== '' ? s : { ...s, idempotencyKey: `sdk-${randomUUID()}` })) : specs;
    const keyed = jobs.length > 0 && jobs.every((s) => s.idempotencyKey !== '');
    const r = await retrying(keyed ? this.retry : NO_RETRY,
      () => unary(this.broker, this.broker.submit, 'Submit', { jobs, validateOnly: false }, this.rpcOptions()));
    return r.jobIds.map((id) => new Job(this, id));
  }

  async getJob(id: string): Promise<JobMessage> {
    return (await this.read(() => unary(this.broker, this.broker.getJob, 'GetJob', { jobId: id }, this.rpcOptions()))).job!;
  }

  /**
   * Every job that matches `filter` (without payload and result), oldest first or
   * newestFirst, page by page (ListJobs; a job appears at most once).
   */
  async* listJobs(filter: Filter = {}, options: { newestFirst?: boolean; pageSize?: number } = {}): AsyncGenerator<JobMessage> {
    let pageToken = '';
    do {
      const page = await this.read(() => unary(this.broker, this.broker.listJobs, 'ListJobs', {
        queue: '', states: [], filter: jobFilter(filter), newestFirst: options.newestFirst ?? false,
        pageSize: options.pageSize ?? 0, pageToken,
      }, this.rpcOptions()));
      yield* page.jobs;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
  }

  // ---- operations (RetryJob, DeleteJob, bulk operations) ----

  /**
   * RetryJob: runs a FAILED or CANCELLED job again (same id, a new attempt budget).
   * `retried` is false when it was already queued or running again, or when
   * expectedAttempt no longer matches. CohortError FAILED_PRECONDITION for a SUCCEEDED job.
   */
  async retryJob(id: string, options: { expectedAttempt?: number } = {}): Promise<{ retried: boolean; job: JobMessage }> {
    const r = await unary(this.broker, this.broker.retryJob, 'RetryJob',
      { jobId: id, expectedAttempt: options.expectedAttempt ?? 0 }, this.rpcOptions());
    return { retried: r.retried, job: r.job! };
  }

  /** DeleteJob: removes a job that is not RUNNING for good; resolves with the state it had. */
  async deleteJob(id: string): Promise<JobState> {
    return (await unary(this.broker, this.broker.deleteJob, 'DeleteJob', { jobId: id }, this.rpcOptions())).state;
  }

  /**
   * StartBulkOperation: cancels, retries or deletes every job matching `filter`, in the
   * background; resolves with the durable record (poll getBulkOperation). dryRun only
   * counts (operation.matched); an empty filter needs matchAll. requestId makes it idempotent.
   */
  async startBulkOperation(action: 'cancel' | 'retry' | 'delete', filter: Filter,
    options: { dryRun?: boolean; matchAll?: boolean; requestId?: string } = {}): Promise<BulkOperation> {
    const r = await retrying(options.requestId ? this.retry : NO_RETRY, () => unary(this.broker, this.broker.startBulkOperation, 'StartBulkOperation', {
      action: { cancel: BulkAction.BULK_ACTION_CANCEL, retry: BulkAction.BULK_ACTION_RETRY, delete: BulkAction.BULK_ACTION_DELETE }[action],
      filter: jobFilter(filter), dryRun: options.dryRun ?? false, matchAll: options.matchAll ?? false,
      requestId: options.requestId ?? '',
    }, this.rpcOptions()));
    return r.operation!;
  }

  async getBulkOperation(id: string): Promise<BulkOperation> {
    return (await this.read(() => unary(this.broker, this.broker.getBulkOperation, 'GetBulkOperation', { id }, this.rpcOptions()))).operation!;
  }

  /** The operations the broker keeps, newest first. */
  async listBulkOperations(): Promise<BulkOperation[]> {
    return (await this.read(() => unary(this.broker, this.broker.listBulkOperations, 'ListBulkOperations', {}, this.rpcOptions()))).operations;
  }

  /**
   * The event log (Watch) after afterSequence, then live, until `signal` aborts or you
   * stop iterating. A failover ends the stream UNAVAILABLE: it is re-opened after the
   * last event yielded, as the retry policy allows (each event starts its budget again).
   */
  async* watch(afterSequence = 0, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    let after = afterSequence;
    const streak = new Streak(this.retry, signal);
    for (;;) {
      streak.begin();
      try {
        for await (const r of serverStream(this.broker.watch({ afterSequence: after }), 'Watch', signal)) {
          streak.succeeded();
          for (const event of r.events) {
            yield event;
            after = event.sequence;
          }
        }
        return;
      } catch (e) {
        await streak.failed(e);
      }
    }
  }

  async listQueues(): Promise<QueueInfo[]> {
    return (await this.read(() => unary(this.broker, this.broker.listQueues, 'ListQueues', {}, this.rpcOptions()))).queues;
  }

  /** CreateQueue; resolves false when the queue already existed (it is left unchanged). */
  async createQueue(queue: string, options: { paused?: boolean; limits?: QueueLimits } = {}): Promise<boolean> {
    const r = await unary(this.broker, this.broker.createQueue, 'CreateQueue',
      { queue, paused: options.paused ?? false, limits: options.limits }, this.rpcOptions());
    return !r.alreadyExisted;
  }

  /** DeleteQueue; with deleteJobs its jobs go too (none may be RUNNING). Resolves with how many jobs were deleted. */
  async deleteQueue(queue: string, options: { deleteJobs?: boolean } = {}): Promise<number> {
    const r = await unary(this.broker, this.broker.deleteQueue, 'DeleteQueue',
      { queue, deleteJobs: options.deleteJobs ?? false }, this.rpcOptions());
    return r.deletedJobs;
  }

  async pauseQueue(queue: string): Promise<void> {
    await this.read(() => unary(this.broker, this.broker.pauseQueue, 'PauseQueue', { queue }, this.rpcOptions()));
  }

  async resumeQueue(queue: string): Promise<void> {
    await this.read(() => unary(this.broker, this.broker.resumeQueue, 'ResumeQueue', { queue }, this.rpcOptions()));
  }

  async setQueueLimits(queue: string, limits: QueueLimits): Promise<QueueLimits> {
    return (await this.read(() => unary(this.broker, this.broker.setQueueLimits, 'SetQueueLimits', { queue, limits }, this.rpcOptions()))).limits!;
  }

  async listExecutors(): Promise<ExecutorInfo[]> {
    return (await this.read(() => unary(this.broker, this.broker.listExecutors, 'ListExecutors', {}, this.rpcOptions()))).executors;
  }

  async createSchedule(id: string, job: JobSpec, options: ScheduleOptions): Promise<Schedule> {
    return (await unary(this.scheduler, this.scheduler.createSchedule, 'CreateSchedule',
      { scheduleId: id, spec: scheduleSpec(job, options) }, this.rpcOptions())).schedule!;
  }

  async updateSchedule(id: string, job: JobSpec, options: ScheduleOptions): Promise<Schedule> {
    return (await unary(this.scheduler, this.scheduler.updateSchedule, 'UpdateSchedule',
      { scheduleId: id, spec: scheduleSpec(job, options) }, this.rpcOptions())).schedule!;
  }

  async getSchedule(id: string): Promise<Schedule> {
    return (await this.read(() => unary(this.scheduler, this.scheduler.getSchedule, 'GetSchedule', { scheduleId: id }, this.rpcOptions()))).schedule!;
  }

  async* listSchedules(): AsyncGenerator<Schedule> {
    let pageToken = '';
    do {
      const page = await this.read(() => unary(this.scheduler, this.scheduler.listSchedules, 'ListSchedules', { pageSize: 0, pageToken }, this.rpcOptions()));
      yield* page.schedules;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
  }

  async deleteSchedule(id: string): Promise<void> {
    await unary(this.scheduler, this.scheduler.deleteSchedule, 'DeleteSchedule', { scheduleId: id }, this.rpcOptions());
  }

  async pauseSchedule(id: string): Promise<Schedule> {
    return (await unary(this.scheduler, this.scheduler.pauseSchedule, 'PauseSchedule', { scheduleId: id }, this.rpcOptions())).schedule!;
  }

  async resumeSchedule(id: string): Promise<Schedule> {
    return (await unary(this.scheduler, this.scheduler.resumeSchedule, 'ResumeSchedule', { scheduleId: id }, this.rpcOptions())).schedule!;
  }

  async triggerSchedule(id: string): Promise<Job> {
    const r = await unary(this.scheduler, this.scheduler.triggerSchedule, 'TriggerSchedule', { scheduleId: id }, this.rpcOptions());
    return new Job(this, r.jobId);
  }
}

/** A Client (see its docs). Connecting is lazy: the first call that cannot reach the broker fails UNAVAILABLE. */
export function connect(target?: string, options?: ConnectOptions): Client {
  return new Client(target, options);
}
