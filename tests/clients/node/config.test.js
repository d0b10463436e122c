// TLS and token settings from cohortctl's config file and environment, against a real
// cohort-broker serving TLS with --auth-tokens (its jobs run by a Worker of the test's):
// the client and the Worker connect with nothing but the config file; the environment
// wins over the file and explicit settings over both; bad settings fail with errors
// naming the file, never the token.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const cohort = require('@cohort/client');
const { CohortDev, tempDir, within } = require('./harness');

const TOKEN = 'cohort_node-sdk-test-token-0123456789abcdefghijklmnop';
let dir;
let dev;
let ca;

/** A throwaway CA and a server certificate for 127.0.0.1 (as tests/security/certs.cc). */
function makePki(d) {
  const openssl = (...args) => execFileSync('/usr/bin/openssl', args, { stdio: 'ignore', timeout: 60_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const p = (name) => path.join(d, name);
  openssl('req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=sdk-ca');
  fs.writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl('req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=cohort-dev');
  openssl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-out', p('server.pem'), '-days', '2', '-extfile', p('server.ext'));
  return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

/** Runs `fn` with process.env holding exactly `vars` among COHORT_* and XDG_CONFIG_HOME. */
async function withEnv(vars, fn) {
  const saved = { ...process.env };
  for (const name of Object.keys(process.env)) {
    if (name.startsWith('COHORT_') && name !== 'COHORT_DEV') delete process.env[name];
  }
  process.env.XDG_CONFIG_HOME = path.join(dir, 'empty-xdg');
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  }
}

function writeFile(name, text) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

test.before(async () => {
  dir = tempDir('node-config-');
  const pki = makePki(dir);
  ca = pki.ca;
  const digest = crypto.createHash('sha256').update(TOKEN).digest('hex');
  const tokens = writeFile('tokens', `sha256:${digest} principal=sdk scopes=submit,read,cancel,admin,execute executor=*\n`);
  dev = await CohortDev.start({ broker: true, extra: [`--tls-cert=${pki.cert}`, `--tls-key=${pki.key}`, `--auth-tokens=${tokens}`] });
});

test.after(() => dev?.kill());

/** Runs `fn` while a Worker configured by the environment (and config file) serves queue "secure". */
async function withWorker(fn) {
  const worker = new cohort.Worker({ queues: ['secure'], executorId: 'secure-node', concurrency: 1, log: () => {} });
  worker.task('node.reverse', (payload) => Buffer.from(payload).reverse());
  const running = worker.run();
  try {
    return await fn();
  } finally {
    worker.stop('test over');
    await within(running, 'the worker to stop');
  }
}

test('the client connects with TLS and a token file named by the config file alone', async () => {
  const tokenFile = writeFile('token', `  ${TOKEN}\n`);
  const config = writeFile('config', `# written by the test\nserver = ${dev.address}\ntls_ca = ${ca}\n\ntoken_file = ${tokenFile}\n`);
  await withEnv({ COHORT_CONFIG: config }, () => withWorker(async () => {
    const client = cohort.connect();
    try {
      assert.equal(client.target, dev.address);
      const job = await client.submit('secure', 'node.reverse', 'abc');
      assert.equal((await cohort.waitFor(job, 30_000)).toString(), 'cba');
      const info = await job.info();
      assert.equal(info.submittedBy, 'sdk');
      // The Worker connected with the same file: TLS and the token.
      assert.deepEqual([info.attempts[0].executorId, info.attempts[0].executorPrincipal], ['secure-node', 'sdk']);
    } finally {
      client.close();
    }
  }));
});

test('without the token the broker refuses; the environment\'s token wins over the file\'s', async () => {
  const config = writeFile('wrong-token', `server = ${dev.address}\ntls_ca = ${ca}\ntoken = cohort_wrong\n`);
  const unauthenticated = (e) => e instanceof cohort.CohortError && e.code === 16;
  await withEnv({ COHORT_CONFIG: config }, async () => {
    const client = cohort.connect();
    await assert.rejects(client.listQueues(), unauthenticated);
    client.close();
  });
  await withEnv({ COHORT_CONFIG: config, COHORT_TOKEN: TOKEN }, async () => {
    const client = cohort.connect();
    assert.ok(Array.isArray(await client.listQueues()));
    client.close();
    const explicit = cohort.connect(undefined, { settings: { token: 'cohort_also_wrong' } });
    await assert.rejects(explicit.listQueues(), unauthenticated);
    explicit.close();
  });
});

test('settings: explicit over environment over file; token and tokenFile are one setting', () => {
  const home = tempDir('xdg-');
  fs.mkdirSync(path.join(home, 'cohort'));
  fs.writeFileSync(path.join(home, 'cohort', 'config'), 'token = from-file\nserver = file:1\ntls_ca = /ca\n');
  const env = { XDG_CONFIG_HOME: home, COHORT_TOKEN_FILE: '/run/token', COHORT_SERVER: 'env:2' };
  assert.deepEqual(cohort.resolveSettings({ tlsCa: '/mine' }, env), { server: 'env:2', tlsCa: '/mine', tokenFile: '/run/token' });
  assert.deepEqual(cohort.resolveSettings({ token: 'explicit' }, env).tokenFile, undefined);
  assert.equal(cohort.configPath({ HOME: '/home/u' }), '/home/u/.config/cohort/config');
  assert.equal(cohort.configPath({ COHORT_CONFIG: '/etc/c', XDG_CONFIG_HOME: '/x' }), '/etc/c');
  assert.deepEqual(cohort.resolveSettings({}, { XDG_CONFIG_HOME: tempDir('absent-') }), {});
  // Paths in the file are relative to its directory, or to $HOME with "~/".
  const relative = writeFile('relative', 'tls_ca = certs/ca.pem\ntoken_file = ~/token\n');
  assert.deepEqual(cohort.resolveSettings({}, { COHORT_CONFIG: relative, HOME: '/home/u' }),
    { tlsCa: path.join(dir, 'certs', 'ca.pem'), tokenFile: '/home/u/token' });
  assert.throws(() => cohort.resolveSettings({}, { COHORT_CONFIG: path.join(home, 'missing') }), cohort.ConfigError);
});

test('a malformed config file or an unusable file is a ConfigError naming it, never the token', () => {
  const bad = writeFile('bad', `# ok\n\ntls_ca = /a\ncolour = blue\n`);
  assert.throws(() => cohort.resolveSettings({}, { COHORT_CONFIG: bad }),
    { name: 'ConfigError', message: `${bad}:4: unknown key "colour": use server, scheduler, tls_ca, tls_cert, tls_key, tls_server_name, token, token_file` });
  const noEquals = writeFile('no-equals', `token ${TOKEN}\n`);
  assert.throws(() => cohort.resolveSettings({}, { COHORT_CONFIG: noEquals }),
    (e) => e instanceof cohort.ConfigError && e.message === `${noEquals}:1: expected \`key = value\`` && !e.message.includes(TOKEN));
  const twice = writeFile('twice', 'server = a:1\n\nserver = b:2\n');
  assert.throws(() => cohort.resolveSettings({}, { COHORT_CONFIG: twice }), { message: `${twice}:3: "server" is set twice (first on line 1)` });
  const empty = writeFile('empty-token', '\n');
  assert.throws(() => cohort.connect('127.0.0.1:1', { settings: { tokenFile: empty } }), { message: `token file ${empty} is empty` });
  assert.throws(() => cohort.connect('127.0.0.1:1', { settings: { tlsCa: '/nonexistent/ca.pem' } }),
    { message: 'tls_ca file /nonexistent/ca.pem cannot be read: ENOENT' });
  assert.throws(() => cohort.connect('127.0.0.1:1', { settings: { tlsCa: ca, tlsCert: '/b' } }), { message: 'tls_cert and tls_key go together' });
});

test('a server list is one address-list target over the replicas, checked as cohortctl checks it', () => {
  const client = cohort.connect('127.0.0.1:7001, 127.0.0.1:7002');
  client.close();
  for (const [bad, says] of [['127.0.0.1:7001,', 'is invalid'], ['127.0.0.1:7001,127.0.0.1:0', '1..65535'],
    ['127.0.0.1:7001,broker-1.cohort:7002', 'IP addresses only'], ['127.0.0.1:7001,[::1]:7002', 'all IPv4 or all IPv6'],
    ['127.0.0.1:7001,127.0.0.1:7001', 'twice'], [Array(17).fill('127.0.0.1:1').join(','), 'at most 16']]) {
    assert.throws(() => cohort.connect(bad), (e) => e instanceof cohort.ConfigError && e.message.includes(says), bad);
  }
});
