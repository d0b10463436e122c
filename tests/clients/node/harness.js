// What the node --test suites share: a real cohort-dev ($COHORT_DEV) on 127.0.0.1 with
// free ports and a temp dir, a TCP proxy that can cut connections, and waiting on
// events with a bound.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

/** Bound on anything a test waits for: generous, CI runs on two cores. */
const BOUND_MS = 30_000;
const BUILTIN = 'builtin';

function tempDir(prefix) {
  return fs.mkdtempSync(path.join(process.env.TEST_TMPDIR || os.tmpdir(), prefix));
}

/** Rejects with `what` unless `promise` settles within BOUND_MS. */
function within(promise, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), BOUND_MS);
  })]).finally(() => clearTimeout(timer));
}

/** Flags that keep a cohort-dev to itself: no web console on a fixed port, where a
 * cohort-dev has one. */
let ownFlags;
function isolationFlags(binary) {
  if (ownFlags === undefined) {
    const help = spawnSync(binary, ['--help'], { encoding: 'utf8' });
    ownFlags = `${help.stdout}${help.stderr}`.includes('--console-listen') ? ['--console-listen='] : [];
  }
  return ownFlags;
}

/**
 * One cohort-dev: its executor serves only the "builtin" queue, so the tests' own queues
 * are left to the workers they start. `listen` may name the address of a previous run
 * (a restart on the same data dir). Or a cohort-broker alone (no executor, no scheduler).
 */
class CohortDev {
  constructor(dataDir, listen, extra, env, broker) {
    this.dataDir = dataDir;
    const binary = broker ? (process.env.COHORT_BROKER || 'bazel-bin/services/broker/cohort-broker')
      : (process.env.COHORT_DEV || 'bazel-bin/services/dev/cohort-dev');
    const own = broker ? [] : [...isolationFlags(binary), '--capacity=4', `--queues=${BUILTIN}`];
    this.proc = spawn(binary, [
      ...own, `--listen=${listen}`, '--metrics-listen=127.0.0.1:0', `--data-dir=${dataDir}`, '--lease=4s',
      '--heartbeat-interval=250ms', ...extra,
    ], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => resolve({ code, signal }));
      this.proc.on('error', (e) => resolve({ code: e.message, signal: null }));
    });
    this.ready = within(new Promise((resolve, reject) => {
      readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
        const match = /^listening grpc=(\S+) metrics=(\S+)/.exec(line);
        if (match) resolve({ grpc: match[1], metrics: match[2] });
      });
      this.exited.then(({ code }) => reject(new Error(`cohort-dev exited (${code}) before its ready line`)));
    }), 'the ready line of cohort-dev');
  }

  /** `env` is added to its environment; `broker` starts cohort-broker ($COHORT_BROKER) alone instead. */
  static async start({ dataDir = tempDir('cohort-dev-'), listen = '127.0.0.1:0', extra = [], env = {}, broker = false } = {}) {
    const dev = new CohortDev(dataDir, listen, extra, env, broker);
    ({ grpc: dev.address, metrics: dev.metricsAddress } = await dev.ready);
    return dev;
  }

  /** The value of an unlabelled metric on its /metrics page (NaN when absent). */
  async metric(name) {
    const text = await (await fetch(`http://${this.metricsAddress}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? NaN : Number(line.slice(name.length + 1));
  }

  /** Resolves once `predicate(value of metric name)` holds, read again at most every 20 ms, within BOUND_MS. */
  async untilMetric(name, predicate) {
    const deadline = Date.now() + BOUND_MS;
    for (;;) {
      const value = await this.metric(name);
      if (predicate(value)) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting on ${name} (last ${value})`);
      await new Promise((resolve) => { setTimeout(resolve, 20); });
    }
  }

  async kill(signal = 'SIGKILL') {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return within(this.exited, 'cohort-dev to exit');
  }
}

/**
 * A TCP proxy on 127.0.0.1 that can reset every connection through it at once, or wedge
 * them (open, but every byte dropped) while new connections go through.
 */
class FaultProxy {
  constructor(target) {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    this.sockets = new Set();
    this.pipes = new Set();
    this.connections = 0;
    this.server = net.createServer((client) => {
      this.connections += 1;
      const upstream = net.connect(port, host);
      for (const [a, b] of [[client, upstream], [upstream, client]]) {
        this.sockets.add(a);
        this.pipes.add([a, b]);
        a.on('error', () => b.destroy());
        a.on('close', () => { this.sockets.delete(a); b.destroy(); });
        a.pipe(b);
      }
    });
  }

  /** Drops every byte of the connections open now, in both directions, keeping them open. */
  wedge() {
    for (const [a, b] of this.pipes) {
      a.unpipe(b);
      a.on('data', () => {});
    }
    this.pipes.clear();
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.address = `127.0.0.1:${this.server.address().port}`;
  }

  /** Resets every open connection; returns how many there were. */
  cut() {
    const n = this.sockets.size;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
    return n;
  }

  close() {
    this.cut();
    this.server.close();
  }
}

module.exports = { BOUND_MS, BUILTIN, CohortDev, FaultProxy, tempDir, within };
