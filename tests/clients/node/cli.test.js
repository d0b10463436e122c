// cohort-worker, @cohort/client's bin (`npx cohort-worker ./module.js:export`), run as a
// child process against a real cohort-dev: it loads the module's Worker, takes the broker
// from $COHORT_SERVER and its flags, runs a job, drains on SIGTERM and exits 0; bad
// arguments exit 2 saying what is wrong.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const cohort = require('@cohort/client');
const { CohortDev, within } = require('./harness');

const pkg = require('@cohort/client/package.json');
const BIN = path.join(path.dirname(require.resolve('@cohort/client/package.json')), pkg.bin['cohort-worker']);

let dev;
let client;

test.before(async () => {
  dev = await CohortDev.start();
  client = cohort.connect(dev.address);
});

test.after(async () => {
  client?.close();
  await dev?.kill();
});

/** cohort-worker ARGS from this directory, its stderr lines awaitable by prefix. */
function runCli(args, env = {}) {
  const proc = spawn(process.execPath, [BIN, ...args], {
    cwd: __dirname, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env },
  });
  const lines = [];
  const waiters = [];
  readline.createInterface({ input: proc.stderr }).on('line', (l) => {
    lines.push(l);
    for (const w of waiters) if (l.startsWith(w.prefix)) w.resolve(l);
  });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    lines,
    exited: () => within(exited, 'cohort-worker to exit'),
    line: (prefix) => within(new Promise((resolve) => {
      const seen = lines.find((l) => l.startsWith(prefix));
      if (seen !== undefined) resolve(seen);
      else waiters.push({ prefix, resolve });
    }), `cohort-worker to print "${prefix}"; got:\n${lines.join('\n')}`),
  };
}

test('cohort-worker runs a module\'s Worker from $COHORT_SERVER and its flags, and drains on SIGTERM', async (t) => {
  const queue = `node-cli-${process.pid}`;
  const cli = runCli(['./sleepy_worker.js:sleepy', '--queue', queue, '--executor-id', `cli-${queue}`, '--concurrency', '3'],
    { COHORT_SERVER: dev.address });
  t.after(() => cli.proc.kill('SIGKILL'));
  const connected = await cli.line('connected as ');
  assert.match(connected, new RegExp(`^connected as cli-${queue}: queues=${queue} kinds=node.sleep capacity=3 `));
  const held = await client.submit(queue, 'node.sleep', '1000');
  await cli.line(`started ${held.id} attempt 1`);
  cli.proc.kill('SIGTERM');
  await cli.line('draining (SIGTERM): 1 running');
  assert.equal(await cli.exited(), 0, cli.lines.join('\n'));
  assert.equal(cli.lines.at(-1), 'stopped');
  assert.equal((await cohort.waitFor(held, 30_000)).toString(), 'slept 1000');
  const info = await held.info();
  assert.deepEqual(info.attempts.map((a) => [a.executorId, a.error?.code ?? '']), [[`cli-${queue}`, '']]);
});

test('cohort-worker exits 2 naming what is wrong with its arguments', async () => {
  await Promise.all([
    [['./sleepy_worker.js:missing'], 'cohort-worker: ./sleepy_worker.js: its export "missing" is not a Worker'],
    [['./no_such_module.js'], 'cohort-worker: cannot find the module "./no_such_module.js"'],
    [['./sleepy_worker.js:sleepy', '--concurrency', '0'], 'cohort-worker: concurrency must be an integer in 1..10000, got 0'],
    [['./sleepy_worker.js:sleepy', '--bogus'], 'cohort-worker: Unknown option \'--bogus\''],
    [[], 'cohort-worker: give exactly one MODULE[:EXPORT]'],
  ].map(async ([args, message]) => {
    const cli = runCli(args, { COHORT_SERVER: dev.address });
    assert.equal(await cli.exited(), 2, `${args.join(' ')}: ${cli.lines.join('\n')}`);
    assert.ok(cli.lines[0]?.startsWith(message), `${args.join(' ')}: ${cli.lines.join('\n')}`);
    assert.match(cli.lines[1] ?? '', /^usage: cohort-worker MODULE\[:EXPORT\]/);
  }));
});
