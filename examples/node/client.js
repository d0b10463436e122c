#!/usr/bin/node
// A Cohort client in Node.js (@grpc/grpc-js, the protos loaded at run time by
// @grpc/proto-loader): asyncio's gather and wait, as RPCs to the broker. It does what
// examples/python/client.py does and prints the same lines:
//
// 1. Submits a batch of builtin.echo jobs and gathers their results, which come back in
//    submission order whatever order the jobs finish in (asyncio.gather).
// 2. Submits three builtin.sleep jobs (one short, two long) and waits with
//    FIRST_COMPLETED (asyncio.wait): the short one is done, the long ones pending. Wait
//    never cancels, so the client then cancels the pending ones itself.
//
// Needs a broker and an executor serving the queue (builtin kinds). On an RPC failure
// it prints one line to stderr and exits 1; bad flags exit 2.
//
//   npm ci && node client.js --server=127.0.0.1:7070
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// The short sleep runs at a higher priority, so it is dispatched first even by an
// executor with a single slot; the long ones would run for a minute if not cancelled.
const SLEEPS = [['60s', 0], ['100ms', 1], ['60s', 0]];

class ClientError extends Error {}

function usage(message) {
  process.stderr.write(`client.js: ${message}\n` +
    'usage: client.js [--server=HOST:PORT] [--queue=NAME] [--count=N] [--timeout=SECONDS] [--protos=DIR]\n');
  process.exit(2);
}

function parseFlags() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        server: { type: 'string', default: '127.0.0.1:7070' },
        queue: { type: 'string', default: 'examples' },
        count: { type: 'string', default: '5' },
        timeout: { type: 'string', default: '60' },
        // The directory that holds protos/cohort/v1/*.proto: the repository's root.
        protos: { type: 'string', default: path.join(__dirname, '..', '..') },
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

function loadBroker(protoRoot) {
  const definition = protoLoader.loadSync('protos/cohort/v1/broker.proto', {
    includeDirs: [protoRoot],
    keepCase: true,
    enums: String,
    longs: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).cohort.v1.Broker;
}

const STATUS_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

// stub.<method>(request) with a deadline of `timeout` seconds, as a promise.
// The bearer token from COHORT_TOKEN, sent on every call (as cohortctl does).
const metadata = new grpc.Metadata();
if (process.env.COHORT_TOKEN) metadata.set('authorization', `Bearer ${process.env.COHORT_TOKEN}`);

// TLS when COHORT_TLS_CA is set (COHORT_TLS_CERT and COHORT_TLS_KEY add a client
// certificate for mutual TLS), plaintext otherwise.
function credentials() {
  const ca = process.env.COHORT_TLS_CA;
  if (!ca) return grpc.credentials.createInsecure();
  const read = (name) => (process.env[name] ? fs.readFileSync(process.env[name]) : null);
  return grpc.credentials.createSsl(fs.readFileSync(ca), read('COHORT_TLS_KEY'), read('COHORT_TLS_CERT'));
}

function call(stub, method, request, timeout) {
  return new Promise((resolve, reject) => {
    stub[method](request, metadata, { deadline: Date.now() + timeout * 1000 }, (err, response) => {
      if (err) reject(new ClientError(`${method} failed: ${STATUS_NAMES[err.code]}: ${err.details}`));
      else resolve(response);
    });
  });
}

const seconds = (n) => ({ seconds: n, nanos: 0 });
const stateName = (state) => state.replace(/^JOB_STATE_/, '');

async function run(stub, { queue, count, timeout }) {
  const payloads = Array.from({ length: count }, (_, i) => `hello ${i}`);
  let submitted = await call(stub, 'Submit', {
    jobs: payloads.map((p) => ({ queue, kind: 'builtin.echo', payload: Buffer.from(p) })),
  }, timeout);
  console.log(`submitted ${count} builtin.echo jobs to queue ${queue}`);

  const gathered = await call(stub, 'Gather', { job_ids: submitted.job_ids, timeout: seconds(timeout) }, timeout + 5);
  gathered.outcomes.forEach((outcome, i) => console.log(`gather[${i}] = ${outcome.result.toString()}`));

  submitted = await call(stub, 'Submit', {
    jobs: SLEEPS.map(([d, priority]) => ({ queue, kind: 'builtin.sleep', payload: Buffer.from(d), priority })),
  }, timeout);
  const label = new Map(submitted.job_ids.map((id, i) => [id, SLEEPS[i][0]]));
  const waited = await call(stub, 'Wait', {
    job_ids: submitted.job_ids, return_when: 'RETURN_WHEN_FIRST_COMPLETED', timeout: seconds(timeout),
  }, timeout + 5);
  const done = waited.done.map((o) => `sleep ${label.get(o.job_id)} ${stateName(o.state)}`).join(', ');
  const pending = waited.pending.map((id) => `sleep ${label.get(id)}`).join(', ');
  console.log(`wait FIRST_COMPLETED: done=[${done}] pending=[${pending}]`);

  for (const id of waited.pending) await call(stub, 'CancelJob', { job_id: id }, timeout);
  console.log(`cancelled ${waited.pending.length} pending jobs`);
}

async function main() {
  const flags = parseFlags();
  const Broker = loadBroker(flags.protos);
  const stub = new Broker(flags.server, credentials());
  try {
    await run(stub, flags);
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    process.stderr.write(`client.js: ${e.message}\n`);
    process.exitCode = 1;
  } finally {
    stub.close();
  }
}

main();
