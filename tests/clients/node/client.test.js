// @cohort/client against a real cohort-dev ($COHORT_DEV): each function, checked
// against what the broker records. Run with `node --test`; NODE_PATH finds the package.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const cohort = require('@cohort/client');
const { BUILTIN, CohortDev } = require('./harness');

let dev;
let client;
let queueNumber = 0;
const freshQueue = () => `node-q${queueNumber++}-${process.pid}`;

test.before(async () => {
  dev = await CohortDev.start();
  client = cohort.connect(dev.address);
});

test.after(async () => {
  client?.close();
  await dev?.kill();
});

test('submit returns a handle whose result is the job result', async () => {
  const job = await client.submit(BUILTIN, 'builtin.echo', 'hello');
  assert.equal((await job.result()).toString(), 'hello');
  assert.equal((await job.info()).state, cohort.JobState.JOB_STATE_SUCCEEDED);
});

test('gather returns results in order, rejects at a failure, and settles like allSettled', async () => {
  const jobs = await client.submitMany([
    cohort.spec(BUILTIN, 'builtin.sleep', '300ms'), cohort.spec(BUILTIN, 'builtin.echo', 'b'),
  ]);
  assert.deepEqual((await cohort.gather(jobs)).map(String), ['300ms', 'b']);
  const [ok, bad] = await client.submitMany([cohort.spec(BUILTIN, 'builtin.echo', 'fine'), cohort.spec(BUILTIN, 'builtin.fail', 'nope')]);
  await assert.rejects(cohort.gather([ok, bad]), (e) => e instanceof cohort.JobError && e.jobId === bad.id &&
    e.code === 'handler' && e.errorMessage === 'nope' && e.attempts === 1);
  const settled = await cohort.gather([ok, bad], { settled: true });
  assert.equal(settled[0].status, 'fulfilled');
  assert.equal(settled[1].status, 'rejected');
  assert.equal(settled[1].reason.state, 'FAILED');
});

test('wait FIRST_COMPLETED returns done and pending and cancels nothing', async () => {
  const [short, long] = await client.submitMany([
    cohort.spec(BUILTIN, 'builtin.sleep', '50ms', { priority: 1 }), cohort.spec(BUILTIN, 'builtin.sleep', '60s'),
  ]);
  const { done, pending } = await cohort.wait([short, long], { returnWhen: 'FIRST_COMPLETED', timeoutMs: 30_000 });
  assert.deepEqual(done.map((j) => j.id), [short.id]);
  assert.deepEqual(pending.map((j) => j.id), [long.id]);
  assert.notEqual((await long.info()).state, cohort.JobState.JOB_STATE_CANCELLED);
  assert.equal(await long.cancel(), true);
  // A RUNNING job ends when its executor reports the cancel: only then has it "already ended".
  await assert.rejects(long.result(), (e) => e instanceof cohort.JobError && e.state === 'CANCELLED');
  assert.equal(await long.cancel(), false);
});

test('waitFor times out and the broker cancels the job; shielded it keeps running', async () => {
  const job = await client.submit(BUILTIN, 'builtin.sleep', '60s');
  await assert.rejects(cohort.waitFor(job, 200), cohort.TimeoutError);
  await assert.rejects(job.result(), (e) => e instanceof cohort.JobError && e.code === 'cancelled');
  const shielded = await client.submit(BUILTIN, 'builtin.sleep', '800ms');
  await assert.rejects(cohort.waitFor(shielded, 100, { shield: true }), cohort.TimeoutError);
  assert.equal((await cohort.waitFor(shielded, 30_000)).toString(), '800ms');
});

test('waitFor with an AbortSignal rejects with its reason and cancels the job only when asked', async () => {
  const [kept, cancelled] = await client.submitMany([cohort.spec(BUILTIN, 'builtin.sleep', '60s'), cohort.spec(BUILTIN, 'builtin.sleep', '60s')]);
  for (const [job, flag] of [[kept, false], [cancelled, true]]) {
    const controller = new AbortController();
    const waiting = cohort.waitFor(job, undefined, { signal: controller.signal, cancelOnDisconnect: flag });
    // Abort only once the broker holds the wait: a call cancelled before the broker has
    // read it is one the broker never saw, and cancels nothing whatever it asked.
    await dev.untilMetric('cohort_broker_waiters', (n) => n >= 1);
    controller.abort();
    await assert.rejects(waiting, (e) => e.name === 'AbortError');
    await dev.untilMetric('cohort_broker_waiters', (n) => n === 0);
  }
  await assert.rejects(cohort.waitFor(cancelled, 30_000), (e) => e instanceof cohort.JobError && e.state === 'CANCELLED');
  assert.notEqual((await kept.info()).state, cohort.JobState.JOB_STATE_CANCELLED);
  assert.equal(await kept.cancel(), true);
});

test('asCompleted yields jobs as they end, earliest first', async () => {
  const jobs = await client.submitMany(['900ms', '10ms', '400ms'].map((d) => cohort.spec(BUILTIN, 'builtin.sleep', d)));
  const order = [];
  for await (const job of cohort.asCompleted(jobs, { timeoutMs: 30_000 })) order.push(job);
  assert.deepEqual(order.map((j) => j.id).sort(), jobs.map((j) => j.id).sort());
  // Earliest first in the broker's own order of ends (its event log: a job's end is its
  // last event), not in wall-clock guesses a loaded machine can upset.
  const ends = [];
  for (const job of order) ends.push((await job.info()).sequence);
  assert.deepEqual(ends, [...ends].sort((a, b) => a - b));
  assert.notDeepEqual(order.map((j) => j.id), jobs.map((j) => j.id));
});

test('watch streams a job\'s transitions', async () => {
  const job = await client.submit(BUILTIN, 'builtin.echo', 'watched');
  await job.result();
  const states = [];
  for await (const event of client.watch(0)) {
    if (event.jobId !== job.id) continue;
    states.push(event.toState);
    if (event.toState === cohort.JobState.JOB_STATE_SUCCEEDED) break;
  }
  assert.deepEqual(states, [cohort.JobState.JOB_STATE_QUEUED, cohort.JobState.JOB_STATE_RUNNING, cohort.JobState.JOB_STATE_SUCCEEDED]);
});

test('queues, executors and schedules', async () => {
  const queue = freshQueue();
  assert.equal(await client.createQueue(queue), true);
  assert.equal(await client.createQueue(queue), false);
  await client.pauseQueue(queue);
  const limits = await client.setQueueLimits(queue, { maxConcurrency: 3 });
  assert.equal(limits.maxConcurrency, 3);
  assert.equal((await client.listQueues()).find((q) => q.name === queue).paused, true);
  await client.resumeQueue(queue);
  assert.ok((await client.listExecutors()).some((e) => e.queues.includes(BUILTIN)));
  const template = cohort.spec(BUILTIN, 'builtin.echo', 'scheduled');
  await client.createSchedule(queue, template, { everyMs: 3_600_000 });
  assert.equal((await client.pauseSchedule(queue)).paused, true);
  assert.equal((await client.resumeSchedule(queue)).paused, false);
  assert.equal((await (await client.triggerSchedule(queue)).result()).toString(), 'scheduled');
  await client.updateSchedule(queue, template, { cron: '0 3 * * *', timeZone: 'Europe/Paris' });
  const ids = [];
  for await (const s of client.listSchedules()) ids.push(s.id);
  assert.ok(ids.includes(queue));
  await client.deleteSchedule(queue);
  await assert.rejects(client.getSchedule(queue), (e) => e instanceof cohort.CohortError && e.code === 5 /* NOT_FOUND */);
  await assert.rejects(client.pauseQueue('Bad Queue'), (e) => e instanceof cohort.CohortError && e.code === 3 /* INVALID_ARGUMENT */);
});
