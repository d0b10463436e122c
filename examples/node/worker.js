#!/usr/bin/node
// A Cohort worker in Node.js on the SDK (@cohort/client): a Worker and two kinds.
//
//   node.upper  the payload (UTF-8) uppercased
//   node.sleep  sleeps for the payload in milliseconds; a cancel from the broker aborts
//               ctx.signal, which ends the sleep (Error.code "cancelled")
//
// The worker declares its kinds to the broker, runs at most --capacity jobs at once,
// heartbeats, reconnects with backoff keeping its running jobs, and on SIGTERM or SIGINT
// drains: no new work, what it holds finishes, then it exits 0. If the broker refuses
// it (a bad queue name, bad credentials) it says why on stderr and exits 1. stderr has
// one line per event: connected, started, completed, draining, stopped.
//
//   node worker.js --broker=127.0.0.1:7070 --queue=node
'use strict';

const { setTimeout: sleep } = require('node:timers/promises');
const { parseArgs } = require('node:util');
const cohort = require('@cohort/client');

const { values } = parseArgs({
  options: {
    broker: { type: 'string' },
    queue: { type: 'string', default: 'node' },
    capacity: { type: 'string', default: '4' },
    'executor-id': { type: 'string' },
  },
});

const worker = new cohort.Worker({
  settings: { server: values.broker }, queues: [values.queue], concurrency: Number(values.capacity),
  executorId: values['executor-id'],
});

worker.task('node.upper', (payload) => payload.toString('utf8').toUpperCase());

worker.task('node.sleep', async (payload, ctx) => {
  const ms = Number(payload.toString());
  if (!Number.isFinite(ms) || ms < 0) throw new cohort.TaskError('bad_payload', 'node.sleep wants milliseconds');
  await sleep(ms, undefined, { signal: ctx.signal });
  return `slept ${ms}ms`;
});

worker.main().then((status) => { process.exitCode = status; });
