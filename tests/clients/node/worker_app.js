// The worker worker.test.js runs as a process: `node worker_app.js SERVER QUEUE EXECUTOR_ID`.
'use strict';
const { setTimeout: sleep } = require('node:timers/promises');
const cohort = require('@cohort/client');

const [server, queue, executorId] = process.argv.slice(2);
const worker = new cohort.Worker({ settings: { server }, queues: [queue], executorId, concurrency: 2, drainGraceMs: 20_000 });
worker.task('node.sleep', async (payload, ctx) => {
  await sleep(Number(payload.toString()), undefined, { signal: ctx.signal });
  return `slept ${payload}`;
});
worker.main().then((status) => { process.exitCode = status; });
