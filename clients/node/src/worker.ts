// Worker: runs your functions as Cohort job kinds over Broker.Connect (executor.proto).
import * as os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { ChannelParts, channelParts, DEFAULT_SERVER, resolveSettings, Settings } from './config';
import { channelTarget } from './target';
import { BrokerClient } from './gen/protos/cohort/v1/broker';
import { Duration } from './gen/google/protobuf/duration';
import {
  AttemptRef, BrokerMessage, ExecutorMessage, ExecutorMessage_Complete,
} from './gen/protos/cohort/v1/executor';
import { Error as ErrorMessage, Job as JobMessage } from './gen/protos/cohort/v1/job';

/** What a task may return: bytes, a string (sent as UTF-8), or nothing (an empty result). */
export type TaskResult = Buffer | Uint8Array | string | void | undefined | null;
/** A task: called with the job's payload and its context. */
export type Handler = (payload: Buffer, ctx: TaskContext) => TaskResult | Promise<TaskResult>;

/** Throw from a task to fail its attempt with your own Error.code (lower_snake_case);
 * any other exception fails it with code "handler". */
export class TaskError extends Error {
  constructor(readonly code: string, message: string, readonly details: Buffer = Buffer.alloc(0)) {
    super(message);
    this.name = 'TaskError';
  }
}

/** The reason a task's signal is aborted with: why the worker stopped the attempt. */
export class AttemptStopped extends Error {
  constructor(readonly code: 'cancelled' | 'timeout' | 'interrupted', message: string) {
    super(message);
    this.name = 'AbortError';
  }
}

/** The broker refused this worker (bad hello, bad credentials, another stream took its
 * executor id): reconnecting cannot help, so run() rejects with it. */
export class WorkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerError';
  }
}

/**
 * One attempt of one job, as its task sees it. `signal` is aborted (reason: an
 * AttemptStopped) when the broker cancels the attempt (CancelJob, a WaitFor timeout, the
 * job's deadline), when JobSpec.timeout passes, and when a drain runs out of grace:
 * pass it to what you await (fetch, timers/promises, child_process) or check
 * signal.aborted. Delivery is at least once: `attempt` is 1-based and a job may run
 * again after a lost lease.
 */
export class TaskContext {
  readonly signal: AbortSignal;

  /** @internal */
  constructor(readonly job: JobMessage, readonly attempt: number, signal: AbortSignal,
    private readonly report: (fraction: number, message: string) => void) {
    this.signal = signal;
  }

  get jobId(): string { return this.job.id; }
  get kind(): string { return this.job.spec?.kind ?? ''; }
  get payload(): Buffer { return this.job.spec?.payload ?? Buffer.alloc(0); }

  /** Reports progress (fraction clamped to [0, 1]); best effort, see job.proto. */
  progress(fraction: number, message = ''): void {
    if (Number.isNaN(fraction)) throw new RangeError('progress fraction must be a number in [0, 1]');
    this.report(Math.min(1, Math.max(0, fraction)), message);
  }
}

export interface WorkerOptions {
  /** Broker address and trust settings; unset fields come from the environment and the
   * config file, as for connect() (see config.ts). */
  settings?: Settings;
  /** Queues to take jobs from; empty means every queue. */
  queues?: string[];
  /** Most attempts running at once, 1..10000 (default 16). */
  concurrency?: number;
  /** Stable across restarts (e.g. the pod name): leases belong to it. Default node-HOST-PID. */
  executorId?: string;
  /** Reported by ListExecutors (with language=node). */
  labels?: Record<string, string>;
  /** How long a drain lets running attempts finish before interrupting them (default 30 s). */
  drainGraceMs?: number;
  /** First and largest reconnect delay, jittered ±20% (default 100 ms, 5 s). */
  reconnectBackoffMs?: [number, number];
  /** Where the worker's one-line events go (default stderr). */
  log?: (line: string) => void;
}

// The broker refused the worker itself: retrying cannot help.
const FATAL = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION, grpc.status.UNIMPLEMENTED,
  grpc.status.PERMISSION_DENIED, grpc.status.UNAUTHENTICATED, grpc.status.ABORTED]);
// A Complete is not acknowledged (executor.proto): it is sent again on the next stream
// while its lease may last (the broker ignores a second one).
const DEFAULT_LEASE_MS = 30_000;
// Until a Welcome says otherwise (executor.proto's default).
const DEFAULT_HEARTBEAT_MS = 5_000;
// A broker silent for this many heartbeat intervals is taken for a wedged stream (executor.proto, LeaseExtended).
const WATCHDOG_INTERVALS = 3;
const STOP_MESSAGES = { cancelled: 'cancelled by the broker', interrupted: 'stopped by the worker' } as const;

const msOf = (d: Duration | undefined): number => (d === undefined ? 0 : d.seconds * 1000 + d.nanos / 1e6);
const keyOf = (jobId: string, attempt: number): string => `${jobId}/${attempt}`;

interface Attempt {
  ctx: TaskContext;
  controller: AbortController;
}

interface Session {
  stream: grpc.ClientDuplexStream<ExecutorMessage, BrokerMessage>;
  draining: boolean;
  drainStarted: boolean;
  halfClosed: boolean;
  ended: boolean;
  /** Welcome.complete_carries_credit: a Complete asks for the slot's next job itself. */
  carriesCredit: boolean;
  /** The number of the latest message written, and of the broker's latest (executor.proto, seq). */
  sent: number;
  received: number;
}

/** A message as the worker builds it: send() numbers it for the stream it goes on. */
type Outgoing = Omit<ExecutorMessage, 'seq'>;

/**
 * Why a broker message numbered `seq` shows messages lost on a stream that stayed up
 * (then the worker reconnects, as for a wedged stream), or undefined when it is the
 * next one, or the broker numbers nothing.
 */
function gapIn(session: Session, seq: number): string | undefined {
  if (seq === session.received + 1 || (seq === 0 && session.received === 0)) {
    session.received = seq;
    return undefined;
  }
  return `message ${seq} arrived after message ${session.received}: the stream lost, repeated or reordered messages`;
}

function stop(attempt: Attempt, code: AttemptStopped['code'], message: string): void {
  if (!attempt.controller.signal.aborted) attempt.controller.abort(new AttemptStopped(code, message));
}

/**
 * A Cohort worker: takes jobs of its kinds from its queues and runs them.
 *
 *   const worker = new Worker({ queues: ['images'], concurrency: 16 });
 *   worker.task('images.resize', async (payload, ctx) => {
 *     ctx.progress(0.5, 'half');
 *     return resize(payload, { signal: ctx.signal });
 *   });
 *   process.exitCode = await worker.main();   // or: await worker.run(); worker.stop()
 *
 * Guarantees (the same as the Python SDK's cohort.Worker):
 * - At most `concurrency` attempts run at once (credits: the broker never sends more).
 * - Kinds are declared to the broker (Hello.kinds): it assigns only jobs of the kinds
 *   registered before run(). A job of another kind still fails "unknown_kind".
 * - Cancel (CancelJob, a WaitFor timeout, the deadline) aborts the task's ctx.signal with
 *   an AttemptStopped; JobSpec.timeout does the same (code "timeout"). A promise cannot
 *   be interrupted from outside: the worker waits for the task to settle (its slot stays
 *   taken until then) and reports the attempt cancelled / timed out, whatever it returned.
 * - Heartbeats at the broker's interval keep the leases. When the stream breaks, the
 *   worker reconnects with exponential backoff and lists its running attempts in
 *   Hello.running: the broker keeps those it still leases to executorId (same attempt,
 *   run once) and cancels the others; completions made while away are sent again.
 * - Watchdog: the broker answers every Heartbeat, so a stream on which nothing has been
 *   heard for 3 heartbeat intervals (before the Welcome: 3 of the last interval known,
 *   5 s at first) is taken for wedged (a connection that stays open but carries no
 *   bytes): the worker cancels it and redials on a new connection, as after a break.
 *   Time this process itself spent stalled (a blocked event loop) does not count.
 * - stop() (SIGTERM/SIGINT under main()) drains: no new work, running attempts get
 *   drainGraceMs to finish, then are aborted (code "interrupted"), everything is
 *   reported and the stream half-closed (assignments not started go back to the queue
 *   without using an attempt). The broker's own Drain does the same, then it reconnects.
 */
export class Worker {
  /** The broker's address; these four are fixed once run() starts (see configure()). */
  target: string;
  queues: string[];
  concurrency: number;
  executorId: string;
  /** Streams that got a Welcome (for tests and metrics). */
  sessions = 0;

  private readonly tasks = new Map<string, Handler>();
  private readonly running = new Map<string, Attempt>();
  private readonly labels: Record<string, string>;
  private readonly drainGraceMs: number;
  private readonly backoff: [number, number];
  private readonly log: (line: string) => void;
  private readonly channel: ChannelParts;
  private unconfirmed: { at: number; message: Outgoing }[] = [];
  private leaseMs = DEFAULT_LEASE_MS;
  private heartbeatMs = DEFAULT_HEARTBEAT_MS;
  private session: Session | undefined;
  private stopReason: string | undefined;
  private wakeStop: () => void = () => {};
  private stopped: Promise<void> = Promise.resolve();
  private idleWaiters: (() => void)[] = [];
  private started = false;

  constructor(options: WorkerOptions = {}) {
    const concurrency = checkedConcurrency(options.concurrency ?? 16);
    const grace = options.drainGraceMs ?? 30_000;
    if (!(grace >= 0)) throw new RangeError('drainGraceMs must not be negative');
    const settings = resolveSettings(options.settings);
    this.target = settings.server ?? DEFAULT_SERVER;
    channelTarget(this.target);  // a malformed replica list is a ConfigError here, not at the first dial
    this.channel = channelParts(settings);
    this.queues = [...(options.queues ?? [])];
    this.concurrency = concurrency;
    this.executorId = options.executorId ?? `node-${os.hostname()}-${process.pid}`;
    this.labels = { language: 'node', ...(options.labels ?? {}) };
    this.drainGraceMs = grace;
    this.backoff = options.reconnectBackoffMs ?? [100, 5_000];
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
  }

  /**
   * Overrides where and how the worker serves, before run(): each field given wins over
   * the options and settings it was made with (cohort-worker's flags). Returns the worker.
   */
  configure(o: { server?: string; queues?: string[]; concurrency?: number; executorId?: string }): this {
    if (this.started) throw new Error('configure a worker before run()');
    if (o.concurrency !== undefined) this.concurrency = checkedConcurrency(o.concurrency);
    if (o.server !== undefined) this.target = o.server;
    channelTarget(this.target);
    if (o.queues !== undefined) this.queues = [...o.queues];
    if (o.executorId !== undefined) this.executorId = o.executorId;
    return this;
  }

  /** Registers `handler` as the runner of `kind` (before run()). Returns the worker. */
  task(kind: string, handler: Handler): this {
    if (this.started) throw new Error('register tasks before run(): kinds are declared when connecting');
    if (this.tasks.has(kind)) throw new Error(`kind "${kind}" already has a handler`);
    this.tasks.set(kind, handler);
    return this;
  }

  get kinds(): string[] { return [...this.tasks.keys()].sort(); }

  /**
   * Runs until `signals` arrive (then drains) and resolves with an exit status: 0 after
   * a drain, 1 when the broker refused the worker.
   */
  async main(signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): Promise<number> {
    const handlers = signals.map((s) => [s, () => this.stop(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    try {
      await this.run();
      return 0;
    } catch (e) {
      if (!(e instanceof WorkerError)) throw e;
      this.log(e.message);
      return 1;
    } finally {
      for (const [s, h] of handlers) process.off(s, h);
    }
  }

  /** Starts a drain (see the class docs); run() resolves when it is done. */
  stop(reason = 'stop'): void {
    if (this.started && this.stopReason === undefined) {
      this.stopReason = reason;
      this.wakeStop();
    }
  }

  /** Serves until stop() has drained. Rejects with WorkerError if the broker refuses the worker. */
  async run(): Promise<void> {
    if (this.started) throw new Error('a Worker runs once');
    this.started = true;
    this.stopped = new Promise((resolve) => { this.wakeStop = resolve; });
    let delay = this.backoff[0];
    let stopDeadline: number | undefined;
    try {
      for (;;) {
        if (this.stopReason !== undefined) {
          stopDeadline ??= Date.now() + this.drainGraceMs + 10_000;
          if ((this.running.size === 0 && !this.unconfirmedLive()) || Date.now() > stopDeadline) break;
        }
        // A connection of its own per stream (no subchannel shared with the process's
        // other clients), so that redialling after the watchdog never reuses a wedged one.
        const client = new BrokerClient(channelTarget(this.target), this.channel.credentials,
          { ...this.channel.options, 'grpc.use_local_subchannel_pool': 1 });
        let outcome;
        try {
          outcome = await this.serveOnce(client);
        } finally {
          client.close();
        }
        const { welcomed, reason } = outcome;
        if (this.stopReason !== undefined && this.running.size === 0) break;
        if (welcomed) delay = this.backoff[0];
        const pause = delay * (0.8 + 0.4 * Math.random());
        this.log(`reconnecting in ${(pause / 1000).toFixed(1)}s: ${reason}`);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([new Promise((r) => { timer = setTimeout(r, pause); }), this.stopped]);
        clearTimeout(timer);
        delay = Math.min(this.backoff[1], delay * 2);
      }
      this.log('stopped');
    } finally {
      for (const attempt of this.running.values()) stop(attempt, 'interrupted', STOP_MESSAGES.interrupted);
    }
  }

  private unconfirmedLive(): boolean {
    const cutoff = Date.now() - this.leaseMs;
    this.unconfirmed = this.unconfirmed.filter((u) => u.at >= cutoff);
    return this.unconfirmed.length > 0;
  }

  private runningRefs(): AttemptRef[] {
    return [...this.running.values()].map((a) => ({ jobId: a.ctx.jobId, attempt: a.ctx.attempt }));
  }

  // ---- one stream ----

  /** One Connect stream, to its end: whether it was welcomed and why it ended. */
  private serveOnce(client: BrokerClient): Promise<{ welcomed: boolean; reason: string }> {
    return new Promise((resolve, reject) => {
      const stream = client.connect();
      const session: Session = {
        stream, draining: this.stopReason !== undefined, drainStarted: false, halfClosed: false, ended: false,
        carriesCredit: false, sent: 0, received: 0,
      };
      let welcomed = false;
      let status: grpc.StatusObject | undefined;
      let readEnded = false;
      let wedged: string | undefined;
      // One timer sends the heartbeats (once welcomed) and runs the watchdog.
      let lastHeard = Date.now();
      let lastTick = lastHeard;
      const tick = () => {
        const now = Date.now();
        // A tick this late means this process was stalled, not the broker: restart the count.
        if (now - lastTick > 2 * this.heartbeatMs) lastHeard = now;
        lastTick = now;
        if (now - lastHeard >= WATCHDOG_INTERVALS * this.heartbeatMs) {
          wedged = `heard nothing from the broker for ${((now - lastHeard) / 1000).toFixed(1)}s`;
          this.log(`${wedged}: closing the stream`);
          stream.cancel();
        } else if (welcomed) {
          this.send(session, { body: { $case: 'heartbeat', value: { running: this.runningRefs() } } });
        }
      };
      let timer = setInterval(tick, this.heartbeatMs);
      const finish = () => {
        if (status === undefined || !readEnded || session.ended) return;
        session.ended = true;
        clearInterval(timer);
        if (this.session === session) this.session = undefined;
        const reason = wedged ?? (status.code === grpc.status.OK ? 'the broker ended the stream'
          : `${grpc.status[status.code]}: ${status.details}`);
        if (status.code === grpc.status.OK && session.halfClosed) this.unconfirmed = []; // the broker read them all
        if (!welcomed && FATAL.has(status.code)) reject(new WorkerError(`stream to the broker failed: ${reason}`));
        else resolve({ welcomed, reason: welcomed || status.code !== grpc.status.OK ? reason : 'no welcome' });
      };
      stream.on('error', () => {}); // the status event below carries it
      stream.on('status', (s: grpc.StatusObject) => { status = s; finish(); });
      stream.on('end', () => { readEnded = true; finish(); });
      stream.on('data', (message: BrokerMessage) => {
        lastHeard = Date.now();
        const lost = gapIn(session, message.seq);
        if (lost !== undefined) {
          // An Assign or Cancel may be gone: reconnect, and let the Hello settle which
          // attempts are ours.
          wedged = lost;
          this.log(`broker stream lost messages, reconnecting: ${lost}`);
          stream.cancel();
          return;
        }
        if (welcomed) {
          this.onMessage(session, message);
          return;
        }
        if (message.body?.$case !== 'welcome') {
          stream.cancel();
          return;
        }
        welcomed = true;
        this.sessions += 1;
        this.session = session;
        // From the wire: kept within 10 ms..10 min, so that neither timer spins nor sleeps for ever.
        const interval = Math.min(600_000, Math.max(10, msOf(message.body.value.heartbeatInterval) || DEFAULT_HEARTBEAT_MS));
        this.log(`connected as ${this.executorId}: queues=${this.queues.join(',')} kinds=${this.kinds.join(',')} ` +
          `capacity=${this.concurrency} heartbeat=${interval / 1000}s`);
        this.heartbeatMs = interval;
        session.carriesCredit = message.body.value.completeCarriesCredit;
        clearInterval(timer);
        lastTick = Date.now();
        timer = setInterval(tick, interval);
        if (!session.draining) this.send(session, credit(this.concurrency - this.running.size));
        // A resent completion carries no credit: its credit was for the stream it was
        // first sent on, and this stream's was granted above.
        if (this.unconfirmedLive()) for (const u of this.unconfirmed) this.send(session, withoutCredit(u.message));
        if (this.stopReason !== undefined) void this.drain(session, this.stopReason);
      });
      void this.stopped.then(() => {
        if (welcomed && !session.ended && this.stopReason !== undefined) void this.drain(session, this.stopReason);
      });
      this.send(session, {
        body: {
          $case: 'hello', value: {
            executorId: this.executorId, labels: this.labels, queues: this.queues, capacity: this.concurrency,
            running: this.runningRefs(), kinds: this.kinds,
          },
        },
      });
    });
  }

  private send(session: Session, message: Outgoing): void {
    if (session.ended || session.halfClosed) return;
    session.sent += 1;
    session.stream.write({ ...message, seq: session.sent });
  }

  private onMessage(session: Session, message: BrokerMessage): void {
    const body = message.body;
    switch (body?.$case) {
      case 'assign': this.onAssign(session, body.value.job, body.value.attempt, body.value.lease); break;
      case 'cancel': {
        const attempt = this.running.get(keyOf(body.value.jobId, body.value.attempt));
        if (attempt !== undefined) stop(attempt, 'cancelled', STOP_MESSAGES.cancelled);
        break;
      }
      case 'leaseExtended': this.leaseMs = Math.max(this.leaseMs, msOf(body.value.lease)); break;
      case 'drain': void this.drain(session, `the broker asked to drain: ${body.value.reason}`); break;
      default: break;
    }
  }

  /** No new work; running attempts get drainGraceMs, then are interrupted; report; half-close. */
  private async drain(session: Session, reason: string): Promise<void> {
    if (session.drainStarted) return;
    session.drainStarted = true;
    this.log(`draining (${reason}): ${this.running.size} running`);
    if (!session.draining) this.send(session, credit(-this.concurrency));
    session.draining = true;
    if (!(await this.idle(this.drainGraceMs))) {
      for (const attempt of this.running.values()) stop(attempt, 'interrupted', STOP_MESSAGES.interrupted);
      await this.idle(undefined);
    }
    if (!session.ended && !session.halfClosed) {
      session.halfClosed = true;
      session.stream.end();
    }
  }

  /** Resolves true once nothing runs, or false after timeoutMs. */
  private idle(timeoutMs: number | undefined): Promise<boolean> {
    if (this.running.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => { clearTimeout(timer); resolve(true); });
    });
  }

  // ---- attempts ----

  private onAssign(session: Session, job: JobMessage | undefined, number: number, lease: Duration | undefined): void {
    if (job === undefined) return;
    this.leaseMs = Math.max(this.leaseMs, msOf(lease));
    const key = keyOf(job.id, number);
    // While draining, an assignment is left alone: the broker takes it back when the
    // stream is half-closed. A duplicate of a running attempt is ignored.
    if (session.draining || this.running.has(key)) return;
    const controller = new AbortController();
    const report = (fraction: number, message: string) => {
      const current = this.session;
      if (current !== undefined && this.running.has(key)) {
        this.send(current, { body: { $case: 'progress', value: { jobId: job.id, attempt: number, progress: { fraction, message } } } });
      }
    };
    const attempt: Attempt = { ctx: new TaskContext(job, number, controller.signal, report), controller };
    this.running.set(key, attempt);
    this.log(`started ${job.id} attempt ${number} kind ${job.spec?.kind ?? ''}`);
    void this.execute(key, attempt);
  }

  private async execute(key: string, attempt: Attempt): Promise<void> {
    const { ctx, controller } = attempt;
    const spec = ctx.job.spec;
    const complete: ExecutorMessage_Complete = { jobId: ctx.jobId, attempt: ctx.attempt, outcome: undefined, credit: 0 };
    const limitMs = spec?.timeout !== undefined ? msOf(spec.timeout) : undefined;
    const timer = limitMs === undefined ? undefined
      : setTimeout(() => stop(attempt, 'timeout', `ran past its timeout of ${limitMs / 1000}s`), limitMs);
    try {
      const handler = this.tasks.get(ctx.kind);
      if (handler === undefined) {
        throw new TaskError('unknown_kind', `this worker runs ${this.kinds.join(', ')}, not "${ctx.kind.slice(0, 64)}"`);
      }
      const result = await handler(ctx.payload, ctx);
      complete.outcome = controller.signal.aborted ? stoppedOutcome(controller.signal)
        : { $case: 'result', value: toBuffer(result) };
    } catch (e) {
      complete.outcome = controller.signal.aborted ? stoppedOutcome(controller.signal) : errorOutcome(e);
    } finally {
      clearTimeout(timer);
    }
    this.finish(key, complete);
  }

  private finish(key: string, complete: ExecutorMessage_Complete): void {
    const outcome = complete.outcome?.$case === 'error' ? `${complete.outcome.value.code}: ${complete.outcome.value.message}` : 'ok';
    this.log(`completed ${complete.jobId} attempt ${complete.attempt}: ${outcome}`);
    this.running.delete(key);
    if (this.running.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    // The freed slot asks for its next job: in the Complete itself when the broker honours
    // Complete.credit (one broker commit for both), else by a CreditGrant after it.
    const session = this.session;
    const asks = session !== undefined && !session.draining;
    if (asks && session.carriesCredit) complete.credit = 1;
    const message: Outgoing = { body: { $case: 'complete', value: complete } };
    this.unconfirmed.push({ at: Date.now(), message });
    this.unconfirmedLive();
    if (session !== undefined) {
      this.send(session, message);
      if (asks && !session.carriesCredit) this.send(session, credit(1));
    }
  }
}

function checkedConcurrency(concurrency: number): number {
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
    throw new RangeError(`concurrency must be an integer in 1..10000, got ${concurrency}`);
  }
  return concurrency;
}

function credit(credits: number): Outgoing {
  return { body: { $case: 'credit', value: { credits } } };
}

function withoutCredit(message: Outgoing): Outgoing {
  const body = message.body;
  if (body?.$case !== 'complete' || body.value.credit === 0) return message;
  return { body: { $case: 'complete', value: { ...body.value, credit: 0 } } };
}

function toBuffer(result: TaskResult): Buffer {
  if (result === undefined || result === null) return Buffer.alloc(0);
  if (typeof result === 'string') return Buffer.from(result, 'utf8');
  if (result instanceof Uint8Array) return Buffer.from(result.buffer, result.byteOffset, result.byteLength);
  throw new TypeError(`a task returns a Buffer, Uint8Array, string or nothing, not ${typeof result}`);
}

type Outcome = ExecutorMessage_Complete['outcome'];

function stoppedOutcome(signal: AbortSignal): Outcome {
  const reason = signal.reason as AttemptStopped;
  return { $case: 'error', value: { code: reason.code, message: reason.message, details: Buffer.alloc(0) } };
}

function errorOutcome(e: unknown): Outcome {
  let value: ErrorMessage;
  if (e instanceof TaskError) value = { code: e.code, message: e.message, details: e.details };
  else if (e instanceof Error) {
    value = { code: 'handler', message: `${e.name}: ${e.message}`.slice(0, 512), details: Buffer.from((e.stack ?? '').slice(-4096)) };
  } else value = { code: 'handler', message: String(e).slice(0, 512), details: Buffer.alloc(0) };
  return { $case: 'error', value };
}
