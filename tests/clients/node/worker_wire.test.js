// The Worker's messages on the wire, against a scripted broker (a grpc-js server speaking
// executor.proto) that records them: a Complete carries its slot's credit when the
// Welcome says complete_carries_credit (no separate CreditGrant), a CreditGrant follows
// it otherwise, a resent Complete carries none; and every channel the SDK builds has
// HTTP/2 keepalive pings (README "Dead connections").
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const cohort = require('@cohort/client');
const { within } = require('./harness');

const sdk = path.dirname(require.resolve('@cohort/client'));
const grpc = require(require.resolve('@grpc/grpc-js', { paths: [sdk] }));
const { BrokerService } = require(path.join(sdk, 'gen/protos/cohort/v1/broker'));
const { BrokerMessage } = require(path.join(sdk, 'gen/protos/cohort/v1/executor'));
const { channelParts, ConfigError } = require(path.join(sdk, 'config'));

const quiet = () => {};

/**
 * A broker that welcomes each stream (streams[i] of `welcomes` says whether it honours
 * Complete.credit), assigns `jobs` jobs against the credit it is given (CreditGrant and
 * Complete.credit), and records every message of every stream. `onComplete(stream, n)`
 * may end a stream early.
 */
class ScriptedBroker {
  constructor({ jobs, welcomes, onComplete = () => {} }) {
    this.streams = [];
    this.completed = new Set();
    this.allCompleted = new Promise((resolve) => { this.resolveAll = resolve; });
    this.server = new grpc.Server();
    let next = 0;
    this.server.addService(BrokerService, {
      connect: (call) => {
        const index = this.streams.length;
        const sent = [];
        this.streams.push(sent);
        let credit = 0;
        const assign = () => {
          while (credit > 0 && next < jobs) {
            credit -= 1;
            const id = `job-${next++}`;
            call.write(BrokerMessage.fromPartial({
              body: { $case: 'assign', value: { job: { id, attempt: 1, spec: { kind: 'echo', payload: Buffer.from(id) } }, attempt: 1, lease: { seconds: 30 } } },
            }));
          }
        };
        call.on('data', (m) => {
          sent.push(m.body);
          switch (m.body?.$case) {
            case 'hello':
              call.write(BrokerMessage.fromPartial({
                body: { $case: 'welcome', value: { heartbeatInterval: { seconds: 5 }, completeCarriesCredit: welcomes[index] } },
              }));
              break;
            case 'credit': credit += m.body.value.credits; assign(); break;
            case 'complete':
              this.completed.add(m.body.value.jobId);
              if (this.completed.size === jobs) this.resolveAll();
              if (onComplete(call, index)) return;
              credit += m.body.value.credit;
              assign();
              break;
            default: break;
          }
        });
        call.on('end', () => call.end());
        call.on('error', quiet);
      },
    });
  }

  async start() {
    this.port = await new Promise((resolve, reject) => {
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? reject(e) : resolve(port)));
    });
    return `127.0.0.1:${this.port}`;
  }

  stop() { this.server.forceShutdown(); }
}

/** Runs an echo worker of `concurrency` against `broker` until it has completed every job. */
async function runWorker(broker, concurrency) {
  const worker = new cohort.Worker({
    settings: { server: await broker.start() }, concurrency, executorId: `wire-${process.pid}`,
    reconnectBackoffMs: [10, 50], log: quiet,
  });
  worker.task('echo', (payload) => payload);
  const run = worker.run();
  try {
    await within(broker.allCompleted, 'every job to complete');
  } finally {
    worker.stop();
    await within(run, 'the worker to drain');
    broker.stop();
  }
}

const kinds = (sent) => sent.map((b) => b.$case);
const credits = (sent) => sent.filter((b) => b.$case === 'credit').map((b) => b.value.credits);
const completes = (sent) => sent.filter((b) => b.$case === 'complete').map((b) => b.value);

test('with complete_carries_credit each Complete asks for the next job and no CreditGrant follows', async () => {
  const broker = new ScriptedBroker({ jobs: 8, welcomes: [true] });
  await runWorker(broker, 2);
  assert.equal(broker.streams.length, 1);
  const [sent] = broker.streams;
  const done = completes(sent);
  assert.equal(done.length, 8);
  assert.deepEqual(done.map((c) => c.credit), Array(8).fill(1));
  // The Welcome's grant of the whole capacity, then only the drain's withdrawal.
  assert.deepEqual(credits(sent), [2, -2]);
});

test('without complete_carries_credit a CreditGrant{1} follows each Complete, which carries none', async () => {
  const broker = new ScriptedBroker({ jobs: 6, welcomes: [false] });
  await runWorker(broker, 2);
  const [sent] = broker.streams;
  assert.deepEqual(completes(sent).map((c) => c.credit), Array(6).fill(0));
  assert.deepEqual(credits(sent), [2, 1, 1, 1, 1, 1, 1, -2]);
  const order = kinds(sent);
  order.forEach((k, i) => { if (k === 'complete') assert.equal(order[i + 1], 'credit', `after message ${i}`); });
});

test('a Complete sent again on the next stream carries no credit', async () => {
  // The first stream breaks on its first Complete (the broker never acts on it).
  const broker = new ScriptedBroker({
    jobs: 3, welcomes: [true, true],
    onComplete: (call, index) => {
      if (index !== 0) return false;
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'cut by the test' });
      return true;
    },
  });
  await runWorker(broker, 1);
  assert.equal(broker.streams.length, 2);
  const [first, second] = broker.streams;
  assert.deepEqual(completes(first).map((c) => [c.jobId, c.credit]), [['job-0', 1]]);
  const again = completes(second);
  assert.deepEqual(again[0], { ...again[0], jobId: 'job-0', credit: 0 });
  assert.deepEqual(again.slice(1).map((c) => c.credit), [1, 1]);
  // The second stream's capacity came from its Welcome's grant, not from the resend.
  assert.deepEqual(credits(second), [1, -1]);
});

test('every channel pings: keepalive 20 s / 10 s by default, keepaliveMs sets it, out of range is a ConfigError', () => {
  assert.deepEqual(pick(channelParts({}).options), {
    'grpc.keepalive_time_ms': 20_000, 'grpc.keepalive_timeout_ms': 10_000, 'grpc.keepalive_permit_without_calls': 1,
  });
  assert.deepEqual(pick(channelParts({ keepaliveMs: 5_000 }).options), {
    'grpc.keepalive_time_ms': 5_000, 'grpc.keepalive_timeout_ms': 5_000, 'grpc.keepalive_permit_without_calls': 1,
  });
  for (const bad of [0, 999, 3_600_001, 1.5, NaN]) {
    assert.throws(() => channelParts({ keepaliveMs: bad }), ConfigError, `keepaliveMs ${bad}`);
  }
  // The Worker's channel and the client's take them from its settings.
  const worker = new cohort.Worker({ settings: { server: '127.0.0.1:1', keepaliveMs: 7_000 }, log: quiet });
  assert.equal(worker.channel.options['grpc.keepalive_time_ms'], 7_000);
  const client = cohort.connect('127.0.0.1:1', { settings: { keepaliveMs: 8_000 } });
  try {
    for (const stub of [client.broker, client.scheduler]) {
      assert.equal(stub.getChannel().internalChannel.options['grpc.keepalive_time_ms'], 8_000);
    }
  } finally {
    client.close();
  }
});

function pick(options) {
  return Object.fromEntries(Object.entries(options).filter(([k]) => k.startsWith('grpc.keepalive')));
}

test('a missing broker message number closes the stream and the worker reconnects, numbering afresh', async () => {
  // executor.proto, seq: the broker numbers its messages; this one skips 2 on the first
  // stream, as if a middlebox had dropped it while the connection stayed up.
  const streams = [];
  let reconnected;
  const second = new Promise((resolve) => { reconnected = resolve; });
  const server = new grpc.Server();
  server.addService(BrokerService, {
    connect: (call) => {
      const index = streams.length;
      const got = [];
      streams.push(got);
      call.on('data', (m) => {
        got.push(m);
        if (m.body?.$case === 'hello') {
          call.write(BrokerMessage.fromPartial({
            seq: 1, body: { $case: 'welcome', value: { heartbeatInterval: { seconds: 5 }, completeCarriesCredit: true } },
          }));
          if (index > 0) reconnected();
        } else if (m.body?.$case === 'credit' && index === 0) {
          call.write(BrokerMessage.fromPartial({ seq: 3, body: { $case: 'leaseExtended', value: {} } }));
        }
      });
      call.on('end', () => call.end());
      call.on('error', quiet);
    },
  });
  const port = await new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)));
  });
  const lines = [];
  const worker = new cohort.Worker({
    settings: { server: `127.0.0.1:${port}` }, concurrency: 2, executorId: `wire-seq-${process.pid}`,
    reconnectBackoffMs: [10, 50], log: (line) => lines.push(line),
  });
  worker.task('echo', (payload) => payload);
  const run = worker.run();
  try {
    await within(second, 'the worker to reconnect');
    const [first, again] = streams;
    assert.deepEqual(first.slice(0, 2).map((m) => [m.body.$case, m.seq]), [['hello', 1], ['credit', 2]]);
    assert.equal(again[0].body.$case, 'hello');
    assert.equal(again[0].seq, 1, 'each stream is numbered from 1');
    assert.ok(lines.some((l) => l.startsWith('broker stream lost messages, reconnecting: message 3 arrived after message 1')),
      lines.join('\n'));
  } finally {
    worker.stop();
    await within(run, 'the worker to drain');
    server.forceShutdown();
  }
});
