// Drives BullMQ for bench/peers/peers.py from BullMQ's own client (Queue, QueueEvents):
// one JSON command per stdin line, one JSON result per stdout line (see peers.py).
// Usage: REDIS_PORT=... node driver.js
'use strict';
const readline = require('node:readline');
const { Queue, QueueEvents } = require('bullmq');
const IORedis = require('ioredis');

const BATCH = 1000;
const connection = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT), maxRetriesPerRequest: null };
const queue = new Queue('bench', { connection });
const events = new QueueEvents('bench', { connection });
const blocker = new IORedis(connection);
let serial = 0;
const now = () => Number(process.hrtime.bigint()) / 1e9;

async function enqueueBulk(tag, n) {
  for (let i = 0; i < n; i += BATCH) {
    const k = Math.min(BATCH, n - i);
    await queue.addBulk(Array.from({ length: k }, () => ({ name: 'noop', data: { tag, n } })));
  }
}
const done = (tag) => blocker.blpop(`done:${tag}`, 0);

const ops = {
  async gated(n) {
    const tag = `g${++serial}`;
    await queue.pause();
    const t0 = now();
    await enqueueBulk(tag, n);
    const t1 = now();
    await queue.resume();
    await done(tag);
    return { enqueue_s: t1 - t0, drain_s: now() - t1 };
  },
  async live(n) {
    const tag = `l${++serial}`;
    const t0 = now();
    await enqueueBulk(tag, n);
    await done(tag);
    return { live_s: now() - t0 };
  },
  async single(n) {
    const tag = `s${++serial}`;
    await queue.pause();
    const t0 = now();
    for (let i = 0; i < n; i++) await queue.add('noop', { tag, n });
    const elapsed = now() - t0;
    await queue.resume();
    await done(tag);
    return { single_s: elapsed };
  },
  async roundtrip(n) {
    const samples = [];
    for (let i = 0; i < n; i++) {
      const t0 = now();
      const job = await queue.add('noop', {});
      await job.waitUntilFinished(events);
      samples.push(now() - t0);
    }
    return { rt_samples: samples };
  },
  async gather(n) {
    const t0 = now();
    const jobs = await queue.addBulk(Array.from({ length: n }, () => ({ name: 'noop', data: {} })));
    await Promise.all(jobs.map((j) => j.waitUntilFinished(events)));
    return { gather_s: now() - t0 };
  },
};

async function main() {
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  console.log(JSON.stringify({ ready: true }));
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line);
    console.log(JSON.stringify(await ops[cmd.op](cmd.n)));
  }
  await Promise.all([queue.close(), events.close(), blocker.quit()]);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
