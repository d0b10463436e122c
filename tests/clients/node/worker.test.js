// @cohort/client's Worker against a real cohort-dev: results and errors, kinds declared,
// cancel reaching a running task's AbortSignal, timeouts, progress, concurrency,
// reconnect across a cut connection (keeping its running attempt) and across a broker
// restart, and drain on SIGTERM.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const cohort = require('@cohort/client');
const { CohortDev, FaultProxy, within } = require('./harness');

let dev;
let client;
let queueNumber = 0;
const freshQueue = () => `node-w${queueNumber++}-${process.pid}`;

test.before(async () => {
  dev = await CohortDev.start();
  client = cohort.connect(dev.address);
});

test.after(async () => {
  client?.close();
  await dev?.kill();
});

/** A promise with its resolve function. */
function deferred() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

/** What the test's tasks saw, as events the test can await. */
class Probe {
  constructor() {
    this.starts = new Map();
    this.released = deferred();
    this.aborted = [];
    this.running = 0;
    this.mostRunning = 0;
    this.runningChanged = deferred();
  }

  startOf(key) {
    if (!this.starts.has(key)) this.starts.set(key, deferred());
    return this.starts.get(key);
  }

  /** Resolves once `jobId` (at `attempt`, default 1) has started. */
  started(jobId, attempt = 1) { return within(this.startOf(`${jobId}/${attempt}`).promise, `${jobId} attempt ${attempt} to start`); }

  async untilRunning(n) {
    while (this.running !== n) await within(this.runningChanged.promise, `${n} tasks running`);
  }

  setRunning(delta) {
    this.running += delta;
    this.mostRunning = Math.max(this.mostRunning, this.running);
    const changed = this.runningChanged;
    this.runningChanged = deferred();
    changed.resolve();
  }
}

/** A worker's log lines, awaited in order: next(re) resolves with the first line after
 * the previous match that matches `re`. */
class Lines {
  constructor() {
    this.lines = [];
    this.seen = 0;
    this.changed = deferred();
    this.add = (line) => {
      this.lines.push(line);
      const changed = this.changed;
      this.changed = deferred();
      changed.resolve();
    };
  }

  /** Matches only lines added from now on. */
  skip() { this.seen = this.lines.length; }

  async next(re) {
    for (;;) {
      while (this.seen < this.lines.length) {
        const line = this.lines[this.seen++];
        if (re.test(line)) return line;
      }
      await within(this.changed.promise, `a log line matching ${re}; got:\n${this.lines.join('\n')}`);
    }
  }
}

function makeWorker(server, queue, probe, options = {}) {
  const worker = new cohort.Worker({
    settings: { server }, queues: [queue], executorId: `test-${queue}`, concurrency: 2, log: () => {}, ...options,
  });
  worker.task('node.upper', (payload) => payload.toString().toUpperCase());
  worker.task('node.fail', (payload) => { throw new cohort.TaskError('bad_input', payload.toString()); });
  worker.task('node.crash', async (payload) => { throw new RangeError(payload.toString()); });
  worker.task('node.gate', async (payload, ctx) => {
    probe.setRunning(1);
    probe.startOf(`${ctx.jobId}/${ctx.attempt}`).resolve();
    ctx.progress(0.5, 'half');
    try {
      await new Promise((resolve, reject) => {
        probe.released.promise.then(resolve);
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
      });
      return Buffer.from('released');
    } catch (e) {
      probe.aborted.push(`${ctx.jobId}/${ctx.attempt}: ${e.code}`);
      throw e;
    } finally {
      probe.setRunning(-1);
    }
  });
  return worker;
}

/** A worker on a fresh queue of its own, for one test; stopped (drained) at its end. */
async function served(t, options = {}) {
  const queue = freshQueue();
  const probe = new Probe();
  const worker = makeWorker(options.server ?? dev.address, queue, probe, options);
  const running = worker.run();
  t.after(async () => {
    probe.released.resolve();
    worker.stop('test over');
    await within(running, 'the worker to stop');
  });
  return { queue, probe, worker, running };
}

test('a worker runs its kinds, reports their errors, and declares itself', async (t) => {
  const { queue } = await served(t);
  const jobs = await client.submitMany([['node.upper', 'hello'], ['node.fail', 'bad'], ['node.crash', 'oops']]
    .map(([kind, payload]) => cohort.spec(queue, kind, payload)));
  const settled = await cohort.gather(jobs, { settled: true });
  assert.equal(settled[0].value.toString(), 'HELLO');
  assert.equal(settled[1].reason.code, 'bad_input');
  assert.equal(settled[1].reason.errorMessage, 'bad');
  assert.equal(settled[2].reason.code, 'handler');
  assert.equal(settled[2].reason.errorMessage, 'RangeError: oops');
  for (const job of jobs) assert.equal((await job.info()).attempts[0].executorId, `test-${queue}`);
  const me = (await client.listExecutors()).find((e) => e.executorId === `test-${queue}`);
  assert.equal(me.labels.language, 'node');
  assert.equal(me.capacity, 2);
  assert.deepEqual(me.queues, [queue]);
});

test('a cancel reaches the running task as its aborted signal, and the job ends CANCELLED', async (t) => {
  const { queue, probe } = await served(t);
  const job = await client.submit(queue, 'node.gate');
  await probe.started(job.id);
  assert.equal(await job.cancel(), true);
  await assert.rejects(cohort.waitFor(job, 30_000), (e) => e instanceof cohort.JobError && e.state === 'CANCELLED' && e.code === 'cancelled');
  assert.deepEqual(probe.aborted, [`${job.id}/1: cancelled`]);
});

test('a task past its JobSpec timeout is aborted and fails with code timeout', async (t) => {
  const { queue, probe } = await served(t);
  const job = await client.submit(queue, 'node.gate', '', { timeoutMs: 300 });
  await assert.rejects(cohort.waitFor(job, 30_000), (e) => e instanceof cohort.JobError && e.state === 'FAILED' && e.code === 'timeout');
  assert.deepEqual(probe.aborted, [`${job.id}/1: timeout`]);
});

test('progress reported by a task is visible to the client', async (t) => {
  const { queue, probe } = await served(t);
  const job = await client.submit(queue, 'node.gate');
  await probe.started(job.id);
  // Progress is best effort and not in the event log: read it until it shows, within a bound.
  const deadline = Date.now() + 30_000;
  let seen;
  do {
    assert.ok(Date.now() < deadline, `progress never showed: ${JSON.stringify(seen)}`);
    seen = await job.progress();
  } while (seen.message !== 'half');
  assert.deepEqual(seen, { fraction: 0.5, message: 'half' });
  probe.released.resolve();
  assert.equal((await cohort.waitFor(job, 30_000)).toString(), 'released');
});

test('at most concurrency attempts run at once', async (t) => {
  const { queue, probe } = await served(t);
  const jobs = await client.submitMany(Array.from({ length: 5 }, () => cohort.spec(queue, 'node.gate')));
  await probe.untilRunning(2);
  probe.released.resolve();
  assert.deepEqual((await cohort.gather(jobs)).map(String), Array(5).fill('released'));
  assert.equal(probe.mostRunning, 2);
});

test('a worker reconnects across a cut connection and keeps its running attempt', async (t) => {
  const proxy = new FaultProxy(dev.address);
  await proxy.start();
  t.after(() => proxy.close());
  const { queue, probe, worker } = await served(t, { server: proxy.address, reconnectBackoffMs: [50, 200] });
  const job = await client.submit(queue, 'node.gate');
  await probe.started(job.id);
  const welcomed = worker.sessions;
  assert.ok(proxy.cut() >= 1);
  const second = await client.submit(queue, 'node.upper', 'after');  // served only once reconnected
  assert.equal((await cohort.waitFor(second, 30_000)).toString(), 'AFTER');
  assert.ok(worker.sessions > welcomed);
  probe.released.resolve();
  assert.equal((await cohort.waitFor(job, 30_000)).toString(), 'released');
  const info = await job.info();
  assert.equal(info.attempt, 1);
  assert.equal(info.attempts.length, 1);
  assert.deepEqual(probe.aborted, []);
});

test('a worker redials a wedged stream after 3 silent heartbeat intervals and its job ends once', async (t) => {
  // The connection stays open but carries nothing, so only the worker's watchdog (the
  // broker answers every heartbeat) can tell; it must redial on a new connection and
  // keep its running attempt.
  const proxy = new FaultProxy(dev.address);
  await proxy.start();
  t.after(() => proxy.close());
  const log = new Lines();
  const { queue, probe, worker } = await served(t, { server: proxy.address, reconnectBackoffMs: [50, 200], log: log.add });
  const job = await client.submit(queue, 'node.gate', '', { maxAttempts: 1 });
  await probe.started(job.id);
  await log.next(/^connected as /);
  const welcomed = worker.sessions;
  const dialled = proxy.connections;
  log.skip();
  proxy.wedge();
  await log.next(/^heard nothing from the broker for \d+\.\ds: closing the stream$/);
  await log.next(/^connected as /);
  assert.ok(worker.sessions > welcomed);
  assert.ok(proxy.connections > dialled);
  const second = await client.submit(queue, 'node.upper', 'after');
  assert.equal((await cohort.waitFor(second, 30_000)).toString(), 'AFTER');
  probe.released.resolve();
  assert.equal((await cohort.waitFor(job, 30_000)).toString(), 'released');
  const info = await job.info();
  assert.equal(info.attempt, 1);
  assert.deepEqual(info.attempts.map((a) => [a.number, a.error?.code ?? '']), [[1, '']]);
  assert.equal(probe.starts.size, 1);
  assert.deepEqual(probe.aborted, []);
});

test('a worker reconnects across a broker restart and runs the job the broker redelivers', async (t) => {
  // The broker's recovery loses the attempts that were running (lease_expired, attempt
  // + 1): the worker lists its attempt in Hello.running, is told to stop it, and runs
  // the redelivery.
  const own = await CohortDev.start();
  t.after(() => own.kill());
  const ownClient = cohort.connect(own.address);
  t.after(() => ownClient.close());
  const { queue, probe, worker } = await served(t, { server: own.address, reconnectBackoffMs: [50, 200] });
  const job = await ownClient.submit(queue, 'node.gate', '', { maxAttempts: 3 });
  await probe.started(job.id, 1);
  const welcomed = worker.sessions;
  await own.kill('SIGKILL');
  const restarted = await CohortDev.start({ dataDir: own.dataDir, listen: own.address });
  t.after(() => restarted.kill());
  await probe.started(job.id, 2);
  assert.ok(worker.sessions > welcomed);
  probe.released.resolve();
  assert.equal((await cohort.waitFor(job, 30_000)).toString(), 'released');
  const info = await job.info();
  assert.deepEqual(info.attempts.map((a) => [a.executorId, a.error?.code ?? '']),
    [[`test-${queue}`, 'lease_expired'], [`test-${queue}`, '']]);
  assert.deepEqual(probe.aborted, [`${job.id}/1: cancelled`]);
});

test('a worker process drains on SIGTERM: finishes what it runs, takes nothing new, exits 0', async () => {
  const queue = freshQueue();
  const proc = spawn(process.execPath, [path.join(__dirname, 'worker_app.js'), dev.address, queue, `cli-${queue}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines = [];
  const waiters = [];
  readline.createInterface({ input: proc.stderr }).on('line', (line) => {
    lines.push(line);
    for (const w of waiters) if (line.startsWith(w.prefix)) w.resolve(line);
  });
  const line = (prefix) => within(new Promise((resolve) => {
    const seen = lines.find((l) => l.startsWith(prefix));
    if (seen !== undefined) resolve(seen);
    else waiters.push({ prefix, resolve });
  }), `the worker to print "${prefix}"`);
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  try {
    const held = await client.submit(queue, 'node.sleep', '1000');
    await line(`started ${held.id}`);
    proc.kill('SIGTERM');
    await line('draining (SIGTERM): 1 running');
    const later = await client.submit(queue, 'node.sleep', '0');
    assert.equal(await within(exited, 'the worker to exit'), 0, lines.join('\n'));
    assert.equal((await cohort.waitFor(held, 30_000)).toString(), 'slept 1000');
    const laterInfo = await later.info();
    assert.equal(laterInfo.state, cohort.JobState.JOB_STATE_QUEUED);
    assert.equal(laterInfo.attempt, 0);
    assert.equal(lines.at(-1), 'stopped');
    assert.equal(await later.cancel(), true);
  } finally {
    proc.kill('SIGKILL');
  }
});
