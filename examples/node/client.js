#!/usr/bin/node
// A Cohort client in Node.js on the SDK (@cohort/client, clients/node): remote jobs as
// promises. It does what examples/python/client.py does and prints the same lines:
//
// 1. Submits a batch of builtin.echo jobs and gathers their results with gather()
//    (Promise.all-shaped: results in submission order whatever order the jobs finish in).
// 2. Submits three builtin.sleep jobs (one short, two long) and waits with
//    FIRST_COMPLETED (asyncio.wait's shape): the short one is done, the long ones
//    pending. wait() never cancels, so the client cancels the pending ones itself.
//
// Needs a broker and an executor serving the queue (builtin kinds). On an RPC failure
// it prints one line to stderr and exits 1; bad flags exit 2. TLS and the token come
// from the environment and ~/.config/cohort/config, as for cohortctl.
//
//   npm install && node client.js --server=127.0.0.1:7070
'use strict';

const { parseArgs } = require('node:util');
const cohort = require('@cohort/client');

// The short sleep runs at a higher priority, so it is dispatched first even by an
// executor with a single slot; the long ones would run for a minute if not cancelled.
const SLEEPS = [['60s', 0], ['100ms', 1], ['60s', 0]];

function usage(message) {
  process.stderr.write(`client.js: ${message}\n` +
    'usage: client.js [--server=HOST:PORT] [--queue=NAME] [--count=N] [--timeout=SECONDS]\n');
  process.exit(2);
}

function parseFlags() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        server: { type: 'string' },
        queue: { type: 'string', default: 'examples' },
        count: { type: 'string', default: '5' },
        timeout: { type: 'string', default: '60' },
      },
    }));
  } catch (e) {
    usage(e.message);
  }
  const count = Number(values.count);
  const timeout = Number(values.timeout);
  if (!Number.isInteger(count) || count < 1 || count > 1000) usage('--count must be in 1..1000');
  if (!Number.isInteger(timeout) || timeout < 1) usage('--timeout must be at least 1');
  return { ...values, count, timeout };
}

async function run(client, { queue, count, timeout }) {
  const echoes = await client.submitMany(Array.from({ length: count }, (_, i) => cohort.spec(queue, 'builtin.echo', `hello ${i}`)));
  console.log(`submitted ${count} builtin.echo jobs to queue ${queue}`);
  (await cohort.gather(echoes, { signal: AbortSignal.timeout(timeout * 1000) }))
    .forEach((result, i) => console.log(`gather[${i}] = ${result.toString()}`));

  const sleeps = await client.submitMany(SLEEPS.map(([d, priority]) => cohort.spec(queue, 'builtin.sleep', d, { priority })));
  const label = new Map(sleeps.map((job, i) => [job, SLEEPS[i][0]]));
  const { done, pending } = await cohort.wait(sleeps, { returnWhen: 'FIRST_COMPLETED', timeoutMs: timeout * 1000 });
  const states = await Promise.all(done.map(async (job) => cohort.JobState[(await job.info()).state].replace(/^JOB_STATE_/, '')));
  console.log(`wait FIRST_COMPLETED: done=[${done.map((job, i) => `sleep ${label.get(job)} ${states[i]}`).join(', ')}] ` +
    `pending=[${pending.map((job) => `sleep ${label.get(job)}`).join(', ')}]`);
  for (const job of pending) await job.cancel();
  console.log(`cancelled ${pending.length} pending jobs`);
}

async function main() {
  const flags = parseFlags();
  const client = cohort.connect(flags.server);
  try {
    await run(client, flags);
  } catch (e) {
    if (!(e instanceof cohort.CohortError)) throw e;
    process.stderr.write(`client.js: ${e.method} failed: ${cohort.statusName(e.code)}: ${e.details}\n`);
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

main();
