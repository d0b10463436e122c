// The web console in a real browser: Debian's chromium driven by playwright-core
// (no browser download), against a real cohort-dev with --auth-tokens whose own
// console (--console-listen) the browser signs in to, and a cohort-console --read-only
// beside it, on 127.0.0.1 with free ports. Run by console_browser_test.sh, which builds
// the front end from its lockfile first. Screenshots of every page go to
// $TEST_UNDECLARED_OUTPUTS_DIR.
//
// Environment: COHORT_DEV, COHORT_CONSOLE, COHORTCTL (binaries), ASSETS_DIR (the built
// front end), WEB_DIR (where playwright-core is installed), WORK_DIR (scratch).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const require = createRequire(join(process.env.WEB_DIR, 'package.json'));
const { chromium } = require('playwright-core');

const WORK = mkdtempSync(join(process.env.WORK_DIR, 'console-'));
const SHOTS = process.env.TEST_UNDECLARED_OUTPUTS_DIR || WORK;
const BOUND = 20_000; // generous bound for anything the page should show
const TOKENS = join(WORK, 'tokens');

const children = [];
let grpc; // cohort-dev's gRPC address
let consoleUrl; // cohort-dev's console
let readOnlyUrl; // cohort-console --read-only
let metricsUrl;
let browser;
const token = {}; // principal -> bearer token

/** Starts a service and resolves with the fields of its ready line ("listening k=v ..."). */
function startService(binary, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    children.push(child);
    const timer = setTimeout(() => reject(new Error(`${binary}: no ready line in 30 s`)), 30_000);
    child.on('exit', (code) => reject(new Error(`${binary} exited ${code} before its ready line`)));
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (!line.startsWith('listening ')) return;
      clearTimeout(timer);
      resolve(Object.fromEntries(line.split(' ').slice(1).map((kv) => kv.split('='))));
    });
  });
}

/** A token made by `cohortctl token create`, its hash added to TOKENS. */
function makeToken(principal, scopes, extra = []) {
  const out = execFileSync(process.env.COHORTCTL,
    ['token', 'create', `--principal=${principal}`, `--scopes=${scopes}`, `--tokens-file=${TOKENS}`, ...extra],
    { encoding: 'utf8' });
  token[principal] = out.trim().split('\n').pop().trim();
  writeFileSync(join(WORK, `${principal}.token`), token[principal]);
}

function ctl(...args) {
  return execFileSync(process.env.COHORTCTL, [`--server=${grpc}`, ...args], {
    encoding: 'utf8', env: { ...process.env, COHORT_TOKEN: token.admin },
  }).trim();
}
const ctlJson = (...args) => JSON.parse(ctl('--output=json', ...args));
const queueInfo = (name) => ctlJson('queues').queues.find((q) => q.name === name);
/** Makes `name` exist and pauses it: a first Submit creates a queue, and a job an hour off never runs here. */
function pausedQueue(name) {
  if (!queueInfo(name)) ctl('submit', '--delay=1h', name, 'builtin.echo', 'makes the queue');
  ctl('queues', 'pause', name);
}

/** A browser page signed in as `principal` (the token in the tab's sessionStorage), or not at all. */
async function newPage({ width = 1280, height = 900, as = 'admin' } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  if (as) {
    await context.addInitScript((t) => window.sessionStorage.setItem('cohort.console.token', t), token[as]);
  }
  return context.newPage();
}
const shot = (page, name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

before(async () => {
  makeToken('admin', '*');
  makeToken('viewer', 'read');
  makeToken('worker', 'execute', ['--executor=*']);
  const dev = await startService(process.env.COHORT_DEV, [
    '--listen=127.0.0.1:0', '--metrics-listen=127.0.0.1:0', `--data-dir=${join(WORK, 'data')}`, '--capacity=4',
    `--auth-tokens=${TOKENS}`, '--console-listen=127.0.0.1:0', `--console-assets-dir=${process.env.ASSETS_DIR}`,
    '--allow-exec=/usr/bin/test,/bin/sleep',
  ], { COHORT_TOKEN_FILE: join(WORK, 'worker.token') });
  grpc = dev.grpc;
  consoleUrl = `http://${dev.console}`;
  metricsUrl = `http://${dev.metrics}/metrics`;
  const readOnly = await startService(process.env.COHORT_CONSOLE, [
    `--broker=${grpc}`, `--scheduler=${grpc}`, '--listen=127.0.0.1:0', '--metrics-listen=127.0.0.1:0',
    `--assets-dir=${process.env.ASSETS_DIR}`, '--read-only', `--broker-token-file=${join(WORK, 'viewer.token')}`,
  ]);
  readOnlyUrl = `http://${readOnly.http}`;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    // playwright-core gives every launch a fresh, empty user-data-dir of its own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
});

after(async () => {
  await browser?.close();
  for (const child of children.reverse()) child.kill('SIGTERM');
});

test('signing in: a wrong token is refused, a right one shows its scopes, signing out asks again', async () => {
  const page = await newPage({ as: null });
  await page.goto(`${consoleUrl}/#/`);
  const field = page.getByLabel('Access token');
  await field.waitFor({ timeout: BOUND });
  await shot(page, 'sign-in');
  await field.fill('cohort_not-a-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not known' }).waitFor({ timeout: BOUND });
  await field.fill(token.viewer);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').filter({ hasText: 'Signed in (read)' }).waitFor({ timeout: BOUND });
  await page.locator('main h1', { hasText: 'Overview' }).waitFor({ timeout: BOUND });
  // The token lives in this tab's sessionStorage only: no cookie carries it.
  assert.deepEqual(await page.context().cookies(), []);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Access token').waitFor({ timeout: BOUND });
  assert.equal(await page.evaluate(() => window.sessionStorage.length), 0);
  await page.context().close();
});

test('the overview shows the queues the test created, on a laptop and a phone', async () => {
  ctl('submit', 'ui-alpha', 'builtin.echo', 'hi');
  pausedQueue('ui-beta');
  ctl('submit', 'ui-beta', 'builtin.echo', 'waits');
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/`);
  await page.locator('tr[data-queue="ui-alpha"]').waitFor({ timeout: BOUND });
  const beta = page.locator('tr[data-queue="ui-beta"]');
  await beta.waitFor({ timeout: BOUND });
  assert.equal(await beta.locator('[data-col="depth"]').textContent(), '1');
  assert.match(await beta.locator('[data-col="status"]').textContent(), /paused/);
  // Live: a job that fails while the page is open is counted without a reload, and the
  // queue's new depth follows.
  ctl('submit', 'ui-beta', 'builtin.echo', 'second');
  ctl('submit', 'ui-count', 'builtin.fail', 'counted');
  await page.getByTestId('last-minute').filter({ hasText: '1 failed' }).waitFor({ timeout: BOUND });
  await beta.locator('[data-col="depth"]', { hasText: '2' }).waitFor({ timeout: BOUND });
  // Rates in / out per queue, from the same live counts: ui-count had one job in and out.
  const rates = async (queue) => (await page.locator(`tr[data-queue="${queue}"] [data-col="rate"]`).textContent())
    .split(' / ').map(Number);
  await page.waitForFunction(() => (document.querySelector('tr[data-queue="ui-count"] [data-col="rate"]')
    ?.textContent ?? '').split(' / ').every((r) => Number(r) > 0), null, { timeout: BOUND });
  const [betaIn, betaOut] = await rates('ui-beta');
  assert.ok(betaIn > 0 && betaOut === 0, `ui-beta (paused) in ${betaIn}, out ${betaOut}`);
  await shot(page, 'overview');

  const phone = await newPage({ width: 390, height: 844 });
  await phone.goto(`${consoleUrl}/#/`);
  await phone.locator('tr[data-queue="ui-alpha"]').waitFor({ timeout: BOUND });
  // Usable at a phone's width: the page itself never scrolls sideways (tables do, inside their frame).
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone`);
  await shot(phone, 'overview-phone');
  await page.context().close();
  await phone.context().close();
});

test('a failed job is found by a filter, its error read, retried, and seen to succeed', async () => {
  // Fails until the flag file exists: /usr/bin/test -e FLAG exits 1, then 0.
  const flag = join(WORK, 'retry-flag');
  const id = ctl('submit', '--label=run=retry-1', 'ui-alpha', 'exec', '--', '/usr/bin/test', '-e', flag);
  ctl('submit', '--label=run=retry-1', 'ui-alpha', 'builtin.echo', 'fine');
  ctl('submit', '--label=run=other', 'ui-alpha', 'builtin.fail', 'not this one');
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/jobs`);
  await page.getByLabel('State').selectOption('failed');
  await page.getByLabel('Kind').fill('exec');
  await page.getByLabel('Labels').fill('run=retry-1');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.locator('caption', { hasText: 'labels run=retry-1' }).waitFor({ timeout: BOUND });
  // The failure may land just after the listing: the live stream brings it in.
  const row = page.locator(`tr[data-job="${id}"]`);
  await row.waitFor({ timeout: BOUND });
  assert.equal(await page.locator('tr[data-job]').count(), 1, 'only the failed exec job matches');
  await shot(page, 'jobs-filtered');
  await row.getByRole('link').click();
  const error = page.getByTestId('job-error');
  await error.waitFor({ timeout: BOUND });
  assert.match(await error.textContent(), /exited with code 1/);
  await shot(page, 'job-failed');
  writeFileSync(flag, '');
  await page.getByRole('button', { name: 'Retry job' }).click();
  await page.locator('.summary .state-succeeded').waitFor({ timeout: BOUND });
  assert.equal(ctlJson('get', id).job.state, 'JOB_STATE_SUCCEEDED');
  // Both attempts are on the timeline, in order, with the first one's error.
  const timeline = page.getByTestId('timeline');
  await timeline.filter({ hasText: 'Attempt 2 ended' }).waitFor({ timeout: BOUND });
  assert.match(await timeline.textContent(), /Attempt 1 started on .*Attempt 1 ended: .*exited with code 1.*Attempt 2 started/s);
  await shot(page, 'job-retried');
  await page.context().close();
});

test('a job page draws its dependencies with their states', async () => {
  pausedQueue('ui-held');
  const parent = ctl('submit', 'ui-held', 'builtin.echo', 'parent');
  const done = ctl('submit', 'ui-alpha', 'builtin.echo', 'done parent');
  ctl('wait', done);
  const child = ctl('submit', `--depends-on=${parent}`, `--depends-on=${done}`, 'ui-alpha', 'builtin.echo', 'child');
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/jobs/${child}`);
  const graph = page.getByRole('figure', { name: /Dependencies: 2 jobs/ });
  await graph.locator(`[data-dep="${parent}"] .state-queued`).waitFor({ timeout: BOUND });
  await graph.locator('.dep-node.self .state-pending').waitFor({ timeout: BOUND });
  await graph.locator('.dep-node:not(.self) .state-succeeded').waitFor({ timeout: BOUND });
  await shot(page, 'job-dependencies');
  await page.context().close();
  ctl('cancel', child);
});

test('cancelling a queued job from its page ends it CANCELLED', async () => {
  pausedQueue('ui-held');
  const id = ctl('submit', 'ui-held', 'builtin.echo', 'never runs');
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/jobs/${id}`);
  await page.getByRole('button', { name: 'Cancel job' }).click();
  await page.locator('.summary .state-cancelled').waitFor({ timeout: BOUND });
  assert.equal(ctlJson('get', id).job.state, 'JOB_STATE_CANCELLED');
  await shot(page, 'job-cancelled');
  await page.context().close();
});

test('a queue is paused and resumed from the overview', async () => {
  ctl('submit', 'ui-toggle', 'builtin.echo', 'x');
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/`);
  const row = page.locator('tr[data-queue="ui-toggle"]');
  await row.getByRole('button', { name: 'Pause ui-toggle' }).click();
  await row.getByRole('button', { name: 'Resume ui-toggle' }).waitFor({ timeout: BOUND });
  assert.equal(queueInfo('ui-toggle').paused, true);
  await shot(page, 'queue-paused');
  await row.getByRole('button', { name: 'Resume ui-toggle' }).click();
  await row.getByRole('button', { name: 'Pause ui-toggle' }).waitFor({ timeout: BOUND });
  assert.equal(queueInfo('ui-toggle').paused, false);
  await page.context().close();
});

test('a bulk cancel on a label shows the dry-run count, asks, and cancels exactly those jobs', async () => {
  pausedQueue('ui-bulk');
  const batch = [1, 2, 3].map((i) => ctl('submit', '--label=batch=b7', 'ui-bulk', 'builtin.echo', `in batch ${i}`));
  const other = ctl('submit', '--label=batch=b8', 'ui-bulk', 'builtin.echo', 'another batch');
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/jobs?labels=${encodeURIComponent('batch=b7')}`);
  await page.locator('tr[data-job]').nth(2).waitFor({ timeout: BOUND });
  await page.getByRole('button', { name: 'Cancel all…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor({ timeout: BOUND });
  assert.match(await dialog.getByTestId('bulk-count').textContent(), /^3 jobs match labels batch=b7 now/);
  await shot(page, 'bulk-confirm');
  await dialog.getByRole('button', { name: 'Cancel 3 jobs' }).click();
  await page.getByTestId('bulk-status').filter({ hasText: 'Done: 3 changed' }).waitFor({ timeout: BOUND });
  for (const id of batch) assert.equal(ctlJson('get', id).job.state, 'JOB_STATE_CANCELLED');
  assert.equal(ctlJson('get', other).job.state, 'JOB_STATE_QUEUED');
  await shot(page, 'bulk-done');
  await page.context().close();
});

/** Asserts that no action can be pressed on any page of `url` (navigation and sign-out aside). */
async function assertNoAction(page, url, jobId) {
  for (const path of ['#/', `#/jobs/${jobId}`, '#/schedules', '#/jobs', '#/executors']) {
    await page.goto(`${url}/${path}`);
    await page.locator('main h1').waitFor({ timeout: BOUND });
    await page.getByTestId('who').filter({ hasText: 'Signed in' }).waitFor({ timeout: BOUND });
    await page.locator('main table, main p').first().waitFor({ timeout: BOUND });
    const actions = page.locator('button:not([disabled])', { hasNotText: /^(Reload|Filter|Older jobs|Newest jobs|Sign out)$/ });
    assert.equal(await actions.count(), 0, `an action is pressable on ${path}`);
  }
}

/** POSTs an action from the page, as a script could, and returns the status. */
const postFromPage = (page, path) =>
  page.evaluate(async (p) => {
    const t = window.sessionStorage.getItem('cohort.console.token');
    const r = await fetch(p, { method: 'POST', headers: { 'X-Cohort-Console': '1', Authorization: `Bearer ${t}` } });
    return r.status;
  }, path);

test('a read-only token cannot press any action, and the broker refuses one sent anyway', async () => {
  pausedQueue('ui-held');
  const id = ctl('submit', 'ui-held', 'builtin.echo', 'stays queued');
  const page = await newPage({ as: 'viewer' });
  await assertNoAction(page, consoleUrl, id);
  await page.goto(`${consoleUrl}/#/`);
  await page.locator('tr[data-queue="ui-held"]').waitFor({ timeout: BOUND });
  await shot(page, 'overview-read-token');
  assert.equal(await postFromPage(page, `/api/jobs/${id}/cancel`), 403);
  assert.equal(await postFromPage(page, '/api/queues/ui-held/resume'), 403);
  assert.equal(await postFromPage(page, `/api/jobs/${id}/retry`), 403);
  assert.equal(ctlJson('get', id).job.state, 'JOB_STATE_QUEUED');
  assert.equal(queueInfo('ui-held').paused, true);
  await page.context().close();
});

test('in read-only mode even an admin token can press nothing, and the console refuses an action', async () => {
  const id = ctl('submit', 'ui-held', 'builtin.echo', 'stays queued too');
  const page = await newPage({ as: 'admin' });
  await assertNoAction(page, readOnlyUrl, id);
  await page.locator('.badge.readonly').waitFor({ timeout: BOUND });
  await shot(page, 'executors-read-only');
  assert.equal(await postFromPage(page, `/api/jobs/${id}/cancel`), 403);
  assert.equal(ctlJson('get', id).job.state, 'JOB_STATE_QUEUED');
  await page.context().close();
});

test('the executors page shows the executor with its kinds', async () => {
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/executors`);
  const row = page.locator('tbody tr').first();
  await row.waitFor({ timeout: BOUND });
  const executor = ctlJson('executors').executors[0];
  assert.equal(await row.locator('th').textContent(), executor.executorId);
  const kinds = await row.locator('[data-col="kinds"]').textContent();
  assert.equal(kinds, (executor.kinds ?? []).join(', ') || 'all');
  assert.match(kinds, /builtin\.echo/, 'cohort-dev\'s executor announces the kinds it runs');
  await shot(page, 'executors');
  await page.context().close();
});

test('a queue shows the kinds no connected executor runs', async () => {
  ctl('submit', 'ui-unserved', 'nobody.runs-this', 'waits for its executor');
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/`);
  const cell = page.locator('tr[data-queue="ui-unserved"] [data-col="unserved"]');
  await cell.filter({ hasText: 'nobody.runs-this (1 waiting)' }).waitFor({ timeout: BOUND });
  assert.deepEqual(queueInfo('ui-unserved').unservedKinds, ['nobody.runs-this']);
  await shot(page, 'overview-unserved');
  await page.context().close();
});

test('a running job\'s progress moves on its page without a reload', async () => {
  const id = ctl('submit', 'ui-sleep', 'builtin.sleep', '8s');
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/jobs/${id}`);
  await page.evaluate(() => { window.__sameDocument = true; });
  const bar = page.locator('#job-progress');
  await bar.waitFor({ timeout: BOUND });
  await page.waitForFunction(() => Number(document.querySelector('#job-progress')?.value) > 0, null, { timeout: BOUND });
  const first = Number(await bar.getAttribute('value'));
  await page.waitForFunction((v) => Number(document.querySelector('#job-progress')?.value) > v, first, { timeout: BOUND });
  const later = Number(await bar.getAttribute('value'));
  assert.ok(later > first, `progress ${first} -> ${later}`);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was reloaded');
  await shot(page, 'job-progress');
  await page.context().close();
  ctl('cancel', id);
});

test('a schedule is triggered, paused and resumed from the schedules page', async () => {
  ctl('schedules', 'create', '--every=24h', 'ui-nightly', 'ui-sched', 'builtin.echo', 'report');
  ctl('schedules', 'create', '--cron=0 2 * * *', '--tz=Asia/Tokyo', 'ui-tokyo', 'ui-sched', 'builtin.echo', 'report');
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/schedules`);
  await page.getByRole('button', { name: 'Trigger ui-nightly' }).click();
  const made = page.getByRole('status').getByRole('link');
  await made.waitFor({ timeout: BOUND });
  const jobId = (await made.textContent()).trim();
  assert.equal(ctlJson('get', jobId).job.spec.queue, 'ui-sched');
  // Next fires in the schedule's zone: an interval's next three (UTC), a cron's first.
  const interval = page.locator('tr', { has: page.getByRole('rowheader', { name: 'ui-nightly' }) });
  assert.equal(await interval.locator('[data-col="next"] li').count(), 3);
  assert.match(await interval.locator('[data-col="next"]').textContent(), /UTC/);
  const tokyo = page.locator('tr', { has: page.getByRole('rowheader', { name: 'ui-tokyo' }) });
  assert.match(await tokyo.locator('[data-col="next"]').textContent(), /2:00\sAM GMT\+9/);
  // The last fires, with the jobs they made.
  await interval.getByText('Last fires of ui-nightly').click();
  await page.getByTestId('fires-ui-nightly').getByRole('link', { name: jobId }).waitFor({ timeout: BOUND });
  await page.getByRole('button', { name: 'Pause ui-nightly' }).click();
  await page.getByRole('button', { name: 'Resume ui-nightly' }).waitFor({ timeout: BOUND });
  assert.equal(ctlJson('schedules', 'get', 'ui-nightly').schedule.paused, true);
  await shot(page, 'schedules');
  await page.getByRole('button', { name: 'Resume ui-nightly' }).click();
  await page.getByRole('button', { name: 'Pause ui-nightly' }).waitFor({ timeout: BOUND });
  assert.notEqual(ctlJson('schedules', 'get', 'ui-nightly').schedule.paused, true);
  await page.context().close();
});

test('the API answers bad input with a bounded 4xx and counts requests in /metrics', async () => {
  const auth = { Authorization: `Bearer ${token.admin}` };
  const cases = [
    ['GET', '/api/nope', 404],
    ['GET', '/api/jobs/not-a-job-id', 404],
    ['GET', '/api/jobs?limit=100000', 400],
    ['GET', '/api/jobs?state=done', 400],
    ['GET', `/api/jobs?queue=${'X'.repeat(5000)}`, 400],
    ['GET', '/api/queues/ui-alpha/pause', 405],
    ['POST', '/api/queues/ui-alpha/pause', 403], // no X-Cohort-Console header
  ];
  for (const [method, path, want] of cases) {
    const r = await fetch(consoleUrl + path, { method, headers: auth });
    const body = await r.text();
    assert.equal(r.status, want, `${method} ${path.slice(0, 60)}: ${body.slice(0, 200)}`);
    assert.ok(body.length < 1024, `${method} ${path.slice(0, 60)}: a ${body.length}-byte answer`);
    assert.ok(typeof JSON.parse(body).error === 'string');
  }
  for (const [headers, want] of [[{}, 401], [{ Authorization: 'Basic eDp5' }, 400],
    [{ Authorization: `Bearer ${'x'.repeat(600)}` }, 400], [{ Authorization: 'Bearer cohort_unknown' }, 401]]) {
    const r = await fetch(`${consoleUrl}/api/queues`, { headers });
    const body = await r.text();
    assert.equal(r.status, want, `${JSON.stringify(headers).slice(0, 60)}: ${body.slice(0, 200)}`);
    assert.ok(!body.includes(token.admin) && body.length < 1024);
  }
  const limits = await fetch(`${consoleUrl}/api/queues/ui-alpha/limits`, {
    method: 'POST', headers: { 'X-Cohort-Console': '1', ...auth }, body: JSON.stringify({ maxConcurrency: -1 }),
  });
  assert.equal(limits.status, 400);
  const huge = await fetch(`${consoleUrl}/api/queues/ui-alpha/limits`, {
    method: 'POST', headers: { 'X-Cohort-Console': '1', ...auth }, body: 'x'.repeat(100_000),
  });
  assert.equal(huge.status, 413);
  assert.equal(queueInfo('ui-alpha').limits.maxConcurrency, 0, 'bad input changed nothing');
  const metrics = await (await fetch(metricsUrl)).text();
  assert.match(metrics, /cohort_console_http_requests_total\{code="400",route="jobs"\} [1-9]/);
  assert.match(metrics, /cohort_console_watch_connects_total [1-9]/);
});

test('with --tls-cert and --tls-key cohort-dev serves its console over HTTPS only', async () => {
  const cert = join(WORK, 'tls.crt');
  const key = join(WORK, 'tls.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const dev = await startService(process.env.COHORT_DEV, [
    '--listen=127.0.0.1:0', '--metrics-listen=127.0.0.1:0', `--data-dir=${join(WORK, 'tls-data')}`,
    `--auth-tokens=${TOKENS}`, `--tls-cert=${cert}`, `--tls-key=${key}`, '--console-listen=127.0.0.1:0',
    `--console-assets-dir=${process.env.ASSETS_DIR}`,
  ], { COHORT_TOKEN_FILE: join(WORK, 'worker.token') });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  await context.addInitScript((t) => window.sessionStorage.setItem('cohort.console.token', t), token.admin);
  const page = await context.newPage();
  await page.goto(`https://${dev.console}/#/executors`);
  await page.getByTestId('who').filter({ hasText: 'Signed in (read, cancel, admin)' }).waitFor({ timeout: BOUND });
  await page.locator('tbody tr').first().waitFor({ timeout: BOUND });
  await shot(page, 'executors-https');
  await context.close();
  await assert.rejects(fetch(`http://${dev.console}/api/config`), 'plain HTTP is not served');
});

/** A TLS connection to `address` (HOST:PORT) and the SHA-256 fingerprint of the certificate it was served. */
function tlsOpen(address) {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port: Number(port), rejectUnauthorized: false }, () => {
      resolve({ socket, fingerprint: socket.getPeerCertificate().fingerprint256 });
    });
    socket.once('error', reject);
  });
}

test('a rotated certificate reaches new HTTPS connections without a restart, and an open one keeps working', async () => {
  // A Secret as Kubernetes mounts it: tls.crt and tls.key are links through ..data, which
  // a rotation repoints at a new directory in one rename.
  const secret = join(WORK, 'console-secret');
  const fingerprint = {};
  for (const v of ['v1', 'v2']) {
    mkdirSync(join(secret, v), { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '1', '-subj', `/CN=console-${v}`, '-keyout', join(secret, v, 'tls.key'),
      '-out', join(secret, v, 'tls.crt')], { stdio: 'ignore' });
    fingerprint[v] = new X509Certificate(readFileSync(join(secret, v, 'tls.crt'))).fingerprint256;
  }
  symlinkSync('v1', join(secret, '..data'));
  for (const f of ['tls.crt', 'tls.key']) symlinkSync(join('..data', f), join(secret, f));
  const https = await startService(process.env.COHORT_CONSOLE, [
    `--broker=${grpc}`, '--scheduler=', '--listen=127.0.0.1:0', '--metrics-listen=127.0.0.1:0',
    `--tls-cert=${join(secret, 'tls.crt')}`, `--tls-key=${join(secret, 'tls.key')}`, '--tls-reload-interval=1s',
  ]);
  const before = await tlsOpen(https.http);
  assert.equal(before.fingerprint, fingerprint.v1);

  symlinkSync('v2', join(secret, '..data_tmp'));
  renameSync(join(secret, '..data_tmp'), join(secret, '..data'));
  let served;
  const deadline = Date.now() + BOUND;
  while (Date.now() < deadline) {
    const next = await tlsOpen(https.http);
    next.socket.destroy();
    served = next.fingerprint;
    if (served === fingerprint.v2) break;
    await new Promise((r) => setTimeout(r, 200)); // the console re-reads the files once a second
  }
  assert.equal(served, fingerprint.v2, 'a new connection gets the rotated certificate');

  // The connection made before the rotation still carries a request and its answer.
  const answer = new Promise((resolve) => {
    let text = '';
    before.socket.on('data', (d) => { text += d; });
    before.socket.on('end', () => resolve(text));
  });
  before.socket.write('GET /api/config HTTP/1.1\r\nHost: console\r\n\r\n');
  const text = await answer;
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.match(text, /"tls":true/);
});
