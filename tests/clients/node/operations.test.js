// @cohort/client's operations API against a real cohort-dev (its broker, scheduler and an
// executor serving only "builtin"): RetryJob, DeleteJob, ListJobs, bulk operations,
// queues and schedules, each checked against what the broker then records, and per area
// a bad request whose gRPC status surfaces as a CohortError with that code.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const cohort = require('@cohort/client');
const { BOUND_MS, BUILTIN, CohortDev } = require('./harness');

const { JobState } = cohort;
// A well-formed id no job has.
const UNKNOWN_ID = '0000000000000000deadbeef';
let dev;
let client;
let queueNumber = 0;
// Queues no executor serves: their jobs stay QUEUED until the test acts on them.
const freshQueue = () => `node-ops${queueNumber++}-${process.pid}`;

test.before(async () => {
  dev = await CohortDev.start();
  client = cohort.connect(dev.address);
});

test.after(async () => {
  client?.close();
  await dev?.kill();
});

/** assert.rejects with a CohortError of `method` and gRPC `code`. */
function rejectsWith(promise, method, code) {
  return assert.rejects(promise, (e) => {
    assert.ok(e instanceof cohort.CohortError, `${e}`);
    assert.equal(e.method, method);
    assert.equal(cohort.statusName(e.code), cohort.statusName(code), e.message);
    return true;
  });
}

async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
}

/** Resolves once `condition()` holds, asked again every 20 ms, within BOUND_MS. */
async function until(condition, what) {
  const deadline = Date.now() + BOUND_MS;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => { setTimeout(resolve, 20); });
  }
}

/** The bulk operation once DONE (the broker applies it in the background; no RPC waits on it). */
async function done(operation) {
  let op = operation;
  await until(async () => {
    op = await client.getBulkOperation(op.id);
    return op.state === cohort.BulkOperation_State.STATE_DONE;
  }, `bulk operation ${op.id} to be DONE`);
  return op;
}

test('retryJob runs a FAILED job again, keeping its attempts, fenced by expectedAttempt', async () => {
  const job = await client.submit(BUILTIN, 'builtin.fail', 'twice', { maxAttempts: 1 });
  await assert.rejects(job.result(), (e) => e instanceof cohort.JobError && e.state === 'FAILED');
  const stale = await client.retryJob(job.id, { expectedAttempt: 5 });
  assert.equal(stale.retried, false);
  assert.equal(stale.job.state, JobState.JOB_STATE_FAILED);
  const { retried, job: queued } = await client.retryJob(job.id, { expectedAttempt: 1 });
  assert.equal(retried, true);
  assert.equal(queued.retryCount, 1);
  assert.equal(queued.attemptBase, 1);
  assert.ok([JobState.JOB_STATE_QUEUED, JobState.JOB_STATE_RUNNING].includes(queued.state), `${queued.state}`);
  await assert.rejects(new cohort.Job(client, job.id).result(), (e) => e instanceof cohort.JobError && e.attempts === 2);
  assert.deepEqual((await job.info()).attempts.map((a) => [a.number, a.error?.code]), [[1, 'handler'], [2, 'handler']]);

  const succeeded = await client.submit(BUILTIN, 'builtin.echo', 'fine');
  await succeeded.result();
  await rejectsWith(client.retryJob(succeeded.id), 'RetryJob', cohort.Status.FAILED_PRECONDITION);
  await rejectsWith(client.retryJob(UNKNOWN_ID), 'RetryJob', cohort.Status.NOT_FOUND);
  await rejectsWith(client.retryJob(job.id, { expectedAttempt: -1 }), 'RetryJob', cohort.Status.INVALID_ARGUMENT);
});

test('deleteJob removes a job that is not RUNNING, for good, and refuses a RUNNING one', async () => {
  const queue = freshQueue();
  const job = await client.submit(queue, 'node.never');
  assert.equal(await client.deleteJob(job.id), JobState.JOB_STATE_QUEUED);
  await rejectsWith(job.info(), 'GetJob', cohort.Status.NOT_FOUND);
  await rejectsWith(client.deleteJob(job.id), 'DeleteJob', cohort.Status.NOT_FOUND);

  const running = await client.submit(BUILTIN, 'builtin.sleep', '60s');
  await until(async () => (await running.info()).state === JobState.JOB_STATE_RUNNING, 'the sleep to start');
  await rejectsWith(client.deleteJob(running.id), 'DeleteJob', cohort.Status.FAILED_PRECONDITION);
  assert.equal(await running.cancel(), true);
  await assert.rejects(running.result(), (e) => e instanceof cohort.JobError && e.state === 'CANCELLED');
  assert.equal(await client.deleteJob(running.id), JobState.JOB_STATE_CANCELLED);
});

test('listJobs pages through every match once, oldest or newest first, by label', async () => {
  const queue = freshQueue();
  const jobs = await client.submitMany([0, 1, 2, 3, 4].map((n) => cohort.spec(queue, 'node.never', '', { labels: { n: String(n) } })));
  const ids = jobs.map((j) => j.id);
  assert.deepEqual((await collect(client.listJobs({ queue }, { pageSize: 2 }))).map((j) => j.id), ids);
  assert.deepEqual((await collect(client.listJobs({ queue }, { newestFirst: true, pageSize: 3 }))).map((j) => j.id), [...ids].reverse());
  const picked = await collect(client.listJobs({ queue, labelSelector: 'n in (1,3)', states: [JobState.JOB_STATE_QUEUED] }));
  assert.deepEqual(picked.map((j) => j.id), [ids[1], ids[3]]);
  assert.deepEqual(picked[0].spec.payload, Buffer.alloc(0));
  await rejectsWith(collect(client.listJobs({ queue, labelSelector: 'n in (' })), 'ListJobs', cohort.Status.INVALID_ARGUMENT);
  assert.equal(await client.deleteQueue(queue, { deleteJobs: true }), 5);
});

test('bulk operations cancel, retry and delete what their filter matches, counted; dry runs write nothing', async () => {
  const queue = freshQueue();
  const jobs = await client.submitMany(['a', 'a', 'a', 'b'].map((batch) => cohort.spec(queue, 'node.never', '', { labels: { batch } })));
  const inA = { queue, labelSelector: 'batch=a' };
  const dry = await client.startBulkOperation('cancel', inA, { dryRun: true });
  assert.equal(dry.matched, 3);
  assert.equal((await jobs[0].info()).state, JobState.JOB_STATE_QUEUED);

  const cancel = await done(await client.startBulkOperation('cancel', inA, { requestId: `cancel-${queue}` }));
  assert.deepEqual([cancel.matched, cancel.changed, cancel.skipped], [3, 3, 0]);
  const again = await client.startBulkOperation('cancel', inA, { requestId: `cancel-${queue}` });
  assert.equal(again.id, cancel.id);
  const states = async () => Promise.all(jobs.map(async (j) => (await j.info()).state));
  assert.deepEqual(await states(), [JobState.JOB_STATE_CANCELLED, JobState.JOB_STATE_CANCELLED, JobState.JOB_STATE_CANCELLED, JobState.JOB_STATE_QUEUED]);

  const retry = await done(await client.startBulkOperation('retry', { queue, states: [JobState.JOB_STATE_CANCELLED] }));
  assert.equal(retry.changed, 3);
  assert.deepEqual(await states(), Array(4).fill(JobState.JOB_STATE_QUEUED));

  const del = await done(await client.startBulkOperation('delete', { queue }));
  assert.equal(del.changed, 4);
  assert.deepEqual(await collect(client.listJobs({ queue })), []);
  const listed = (await client.listBulkOperations()).map((op) => op.id);
  assert.deepEqual(listed.filter((id) => [cancel.id, retry.id, del.id].includes(id)), [del.id, retry.id, cancel.id]);

  await rejectsWith(client.startBulkOperation('delete', {}), 'StartBulkOperation', cohort.Status.INVALID_ARGUMENT);
  await rejectsWith(client.startBulkOperation('cancel', { labelSelector: '!' }), 'StartBulkOperation', cohort.Status.INVALID_ARGUMENT);
  await rejectsWith(client.getBulkOperation('no-such-operation'), 'GetBulkOperation', cohort.Status.NOT_FOUND);
});

test('queues: created paused with limits, limits changed one at a time, deleted with their jobs', async () => {
  const queue = freshQueue();
  assert.equal(await client.createQueue(queue, { paused: true, limits: { maxConcurrency: 2, weight: 3 } }), true);
  const info = async () => (await client.listQueues()).find((q) => q.name === queue);
  assert.equal((await info()).paused, true);
  assert.deepEqual(await client.setQueueLimits(queue, { maxRate: 5 }), { maxConcurrency: 2, maxRate: 5, weight: 3 });
  await client.resumeQueue(queue);
  await client.submitMany([cohort.spec(queue, 'node.never'), cohort.spec(queue, 'node.never')]);
  const after = await info();
  assert.deepEqual([after.paused, after.depth, after.unservedKinds], [false, 2, ['node.never']]);

  await rejectsWith(client.deleteQueue(queue), 'DeleteQueue', cohort.Status.FAILED_PRECONDITION);
  assert.equal(await client.deleteQueue(queue, { deleteJobs: true }), 2);
  assert.equal(await info(), undefined);
  await rejectsWith(client.deleteQueue(queue), 'DeleteQueue', cohort.Status.NOT_FOUND);
  await rejectsWith(client.pauseQueue(queue), 'PauseQueue', cohort.Status.NOT_FOUND);
  await rejectsWith(client.setQueueLimits(BUILTIN, { maxConcurrency: -1 }), 'SetQueueLimits', cohort.Status.INVALID_ARGUMENT);
});

test('schedules: bad triggers and taken or unknown ids are refused with their codes', async () => {
  const id = freshQueue();
  const template = cohort.spec(BUILTIN, 'builtin.echo', 'tick');
  const created = await client.createSchedule(id, template, { cron: '*/5 * * * *' });
  assert.equal(created.id, id);
  assert.equal((await client.getSchedule(id)).id, id);
  await rejectsWith(client.createSchedule(id, template, { everyMs: 60_000 }), 'CreateSchedule', cohort.Status.ALREADY_EXISTS);
  await rejectsWith(client.updateSchedule(id, template, { cron: '61 * * * *' }), 'UpdateSchedule', cohort.Status.INVALID_ARGUMENT);
  await client.deleteSchedule(id);
  for (const [call, method] of [[() => client.getSchedule(id), 'GetSchedule'], [() => client.pauseSchedule(id), 'PauseSchedule'],
    [() => client.triggerSchedule(id), 'TriggerSchedule'], [() => client.deleteSchedule(id), 'DeleteSchedule']]) {
    await rejectsWith(call(), method, cohort.Status.NOT_FOUND);
  }
  await assert.rejects(client.createSchedule(id, template, {}), TypeError);
});
