// BullMQ's worker for bench/peers: a no-op processor on queue "bench" with
// CONCURRENCY slots. Jobs of the drain workloads carry {tag, n} in their data: when
// the n-th job of a tag has completed (the 'completed' event, after its result is
// stored in Redis), the worker pushes "done:<tag>", so the driver waits without polling.
// Usage: REDIS_PORT=... CONCURRENCY=... node worker.js   (prints "ready")
'use strict';
const { Worker } = require('bullmq');
const IORedis = require('ioredis');

const connection = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT), maxRetriesPerRequest: null };
const signal = new IORedis(connection);
const counts = new Map();

const worker = new Worker('bench', async () => 'ok', {
  connection,
  concurrency: Number(process.env.CONCURRENCY),
});
worker.on('completed', (job) => {
  const { tag, n } = job.data;
  if (tag === undefined) return; // waited for through QueueEvents instead
  const count = (counts.get(tag) || 0) + 1;
  if (count < n) {
    counts.set(tag, count);
    return;
  }
  counts.delete(tag);
  signal.lpush(`done:${tag}`, '1');
});
worker.on('failed', (job, err) => {
  console.error(`job ${job && job.id} failed: ${err}`);
  process.exit(1);
});
worker.waitUntilReady().then(() => console.log('ready'));
process.on('SIGTERM', () => worker.close().then(() => process.exit(0)));
