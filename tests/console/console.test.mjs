// The web console in a real browser: Debian's chromium driven by playwright-core
// (no browser download), against a real cohort-dev and two cohort-console processes
// (one read-only) on 127.0.0.1 with free ports. Run by console_browser_test.sh, which
// builds the front end from its lockfile first. Screenshots go to
// $TEST_UNDECLARED_OUTPUTS_DIR.
//
// Environment: COHORT_DEV, COHORT_CONSOLE, COHORTCTL (binaries), ASSETS_DIR (the built
// front end), WEB_DIR (where playwright-core is installed), WORK_DIR (scratch).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const require = createRequire(join(process.env.WEB_DIR, 'package.json'));
const { chromium } = require('playwright-core');

const WORK = mkdtempSync(join(process.env.WORK_DIR, 'console-'));
const SHOTS = process.env.TEST_UNDECLARED_OUTPUTS_DIR || WORK;
const BOUND = 20_000; // generous bound for anything the page should show

const children = [];
let grpc; // cohort-dev's gRPC address
let consoleUrl;
let readOnlyUrl;
let metricsUrl;
let browser;

/** Starts a service and resolves with the fields of its ready line ("listening k=v ..."). */
function startService(binary, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
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

function ctl(...args) {
  return execFileSync(process.env.COHORTCTL, [`--server=${grpc}`, ...args], { encoding: 'utf8' }).trim();
}
const ctlJson = (...args) => JSON.parse(ctl('--output=json', ...args));
const queueInfo = (name) => ctlJson('queues').queues.find((q) => q.name === name);

async function newPage(width = 1280, height = 900) {
  const context = await browser.newContext({ viewport: { width, height } });
  return context.newPage();
}
const shot = (page, name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

before(async () => {
  const dev = await startService(process.env.COHORT_DEV, [
    '--listen=127.0.0.1:0', '--metrics-listen=127.0.0.1:0', `--data-dir=${join(WORK, 'data')}`, '--capacity=4',
  ]);
  grpc = dev.grpc;
  const common = [`--broker=${grpc}`, `--scheduler=${grpc}`, '--listen=127.0.0.1:0', '--metrics-listen=127.0.0.1:0',
    `--assets-dir=${process.env.ASSETS_DIR}`];
  const normal = await startService(process.env.COHORT_CONSOLE, common);
  const readOnly = await startService(process.env.COHORT_CONSOLE, [...common, '--read-only']);
  consoleUrl = `http://${normal.http}`;
  metricsUrl = `http://${normal.metrics}/metrics`;
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

test('the overview shows the queues the test created, on a laptop and a phone', async () => {
  ctl('submit', 'ui-alpha', 'builtin.echo', 'hi');
  ctl('queues', 'pause', 'ui-beta');
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
  await shot(page, 'overview');

  const phone = await newPage(390, 844);
  await phone.goto(`${consoleUrl}/#/`);
  await phone.locator('tr[data-queue="ui-alpha"]').waitFor({ timeout: BOUND });
  // Usable at a phone's width: the page itself never scrolls sideways (tables do, inside their frame).
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone`);
  await shot(phone, 'overview-phone');
  await page.context().close();
  await phone.context().close();
});

test('a failed job is found by a filter and its error read', async () => {
  const id = ctl('submit', 'ui-alpha', 'builtin.fail', 'disk full on /data');
  ctl('submit', 'ui-alpha', 'builtin.echo', 'fine');
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/jobs`);
  await page.getByLabel('Queue').fill('ui-alpha');
  await page.getByLabel('State').selectOption('failed');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.locator('caption', { hasText: 'in queue ui-alpha, failed' }).waitFor({ timeout: BOUND });
  // The failure may land just after the listing: the live stream brings it in.
  const row = page.locator(`tr[data-job="${id}"]`);
  await row.waitFor({ timeout: BOUND });
  assert.equal(await page.locator('tr[data-job]').count(), 1, 'only the failed job matches');
  await shot(page, 'jobs-filtered');
  await row.getByRole('link').click();
  const error = page.getByTestId('job-error');
  await error.waitFor({ timeout: BOUND });
  assert.equal(await error.textContent(), 'disk full on /data');
  await shot(page, 'job-failed');
  await page.context().close();
});

test('cancelling a queued job from its page ends it CANCELLED', async () => {
  ctl('queues', 'pause', 'ui-held');
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

test('in read-only mode no action can be pressed, and the server refuses one sent anyway', async () => {
  const id = ctl('submit', 'ui-held', 'builtin.echo', 'stays queued');
  const page = await newPage();
  for (const path of ['#/', `#/jobs/${id}`, '#/schedules', '#/jobs']) {
    await page.goto(`${readOnlyUrl}/${path}`);
    await page.locator('main h1').waitFor({ timeout: BOUND });
    await page.locator('.badge.readonly').waitFor({ timeout: BOUND });
    const actions = page.locator('button:not([disabled])', { hasNotText: /^(Reload|Filter|Older jobs)$/ });
    assert.equal(await actions.count(), 0, `an action is pressable on ${path}`);
  }
  await page.goto(`${readOnlyUrl}/#/`);
  await page.locator('tr[data-queue="ui-held"]').waitFor({ timeout: BOUND });
  await shot(page, 'overview-read-only');
  const status = await page.evaluate(async (jobId) => {
    const r = await fetch(`/api/jobs/${jobId}/cancel`, { method: 'POST', headers: { 'X-Cohort-Console': '1' } });
    return r.status;
  }, id);
  assert.equal(status, 403);
  assert.equal(ctlJson('get', id).job.state, 'JOB_STATE_QUEUED');
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
  const page = await newPage();
  await page.goto(`${consoleUrl}/#/schedules`);
  await page.getByRole('button', { name: 'Trigger ui-nightly' }).click();
  const made = page.getByRole('status').getByRole('link');
  await made.waitFor({ timeout: BOUND });
  const jobId = (await made.textContent()).trim();
  assert.equal(ctlJson('get', jobId).job.spec.queue, 'ui-sched');
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
    const r = await fetch(consoleUrl + path, { method });
    const body = await r.text();
    assert.equal(r.status, want, `${method} ${path.slice(0, 60)}: ${body.slice(0, 200)}`);
    assert.ok(body.length < 1024, `${method} ${path.slice(0, 60)}: a ${body.length}-byte answer`);
    assert.ok(typeof JSON.parse(body).error === 'string');
  }
  const limits = await fetch(`${consoleUrl}/api/queues/ui-alpha/limits`, {
    method: 'POST', headers: { 'X-Cohort-Console': '1' }, body: JSON.stringify({ maxConcurrency: -1 }),
  });
  assert.equal(limits.status, 400);
  const huge = await fetch(`${consoleUrl}/api/queues/ui-alpha/limits`, {
    method: 'POST', headers: { 'X-Cohort-Console': '1' }, body: 'x'.repeat(100_000),
  });
  assert.equal(huge.status, 413);
  assert.equal(queueInfo('ui-alpha').limits.maxConcurrency, 0, 'bad input changed nothing');
  const metrics = await (await fetch(metricsUrl)).text();
  assert.match(metrics, /cohort_console_http_requests_total\{code="400",route="jobs"\} [1-9]/);
  assert.match(metrics, /cohort_console_watch_connects_total [1-9]/);
});
