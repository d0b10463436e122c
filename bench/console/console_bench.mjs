// The console's benchmark, run by run.sh (which starts cohort-dev and cohort-console):
//   1. fills the store to --jobs jobs with cohort-demo runs (10,000 jobs each, run to the end);
//   2. time to first render of the overview (a queue row drawn) and of the jobs list (a
//      job row drawn), from navigation start (performance.now()), cold (a fresh browser
//      context: empty cache) and warm (the same page reloaded), median of 5 each;
//   3. cohort-console's CPU (utime + stime from /proc) while cohort-demo runs keep jobs
//      flowing for --seconds with --pages overview pages open (each an event stream),
//      with the jobs/s that ended meanwhile (cohort_broker_jobs_ended_total).
// Environment: CONSOLE_URL, CONSOLE_PID, DEMO, GRPC, WEB_DIR (playwright-core).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.env.WEB_DIR, 'package.json'));
const { chromium } = require('playwright-core');

const arg = (name, fallback) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.split('=')[1]) : fallback;
};
const JOBS = arg('jobs', 100_000);
const PAGES = arg('pages', 10);
const SECONDS = arg('seconds', 20);
const TICKS = 100; // clock ticks per second (getconf CLK_TCK on Linux)
const DEMO_JOBS = 10_000;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function demo() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.DEMO, [`--server=${process.env.GRPC}`, `--jobs=${DEMO_JOBS}`, '--batches=10',
      '--noprogress', '--step-timeout=120s'], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`cohort-demo exited ${code}`))));
  });
}

function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime, stime (fields 14 and 15)
}

async function brokerEnded(metricsUrl) {
  const text = await (await fetch(metricsUrl)).text();
  return text.split('\n').filter((l) => l.startsWith('cohort_broker_jobs_ended_total'))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

async function firstRender(browser, path, selector) {
  const cold = [];
  const warm = [];
  for (let i = 0; i < 5; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${process.env.CONSOLE_URL}/${path}`);
    await page.locator(selector).first().waitFor({ timeout: 60_000 });
    cold.push(await page.evaluate(() => performance.now()));
    await page.reload();
    await page.locator(selector).first().waitFor({ timeout: 60_000 });
    warm.push(await page.evaluate(() => performance.now()));
    await context.close();
  }
  return { cold: median(cold), warm: median(warm) };
}

const started = Date.now();
let stored = 0;
while (stored < JOBS) {
  await demo();
  stored += DEMO_JOBS;
}
console.log(`stored: about ${stored} jobs (${Math.ceil(JOBS / DEMO_JOBS)} cohort-demo runs, ${((Date.now() - started) / 1000).toFixed(0)} s)`);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-quic'],
});
const overview = await firstRender(browser, '#/', 'tr[data-queue]');
const jobs = await firstRender(browser, '#/jobs', 'tr[data-job]');
console.log(`first render, median of 5 (ms from navigation start): overview cold ${overview.cold.toFixed(0)}, ` +
  `warm ${overview.warm.toFixed(0)}; jobs list cold ${jobs.cold.toFixed(0)}, warm ${jobs.warm.toFixed(0)}`);

// Jobs flowing with PAGES overview pages open.
const contexts = [];
for (let i = 0; i < PAGES; i++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${process.env.CONSOLE_URL}/#/`);
  await page.locator('tr[data-queue]').first().waitFor({ timeout: 60_000 });
  contexts.push(context);
}
const metricsUrl = process.env.DEV_METRICS_URL;
const pid = Number(process.env.CONSOLE_PID);
let flowing = true;
const flow = (async () => {
  while (flowing) await demo();
})();
await new Promise((r) => setTimeout(r, 3000)); // into the steady flow
const cpu0 = cpuSeconds(pid);
const ended0 = await brokerEnded(metricsUrl);
const t0 = Date.now();
await new Promise((r) => setTimeout(r, SECONDS * 1000));
const window = (Date.now() - t0) / 1000;
const cpu = cpuSeconds(pid) - cpu0;
const ended = (await brokerEnded(metricsUrl)) - ended0;
console.log(`flow: ${(ended / window).toFixed(0)} jobs/s ended over ${window.toFixed(1)} s with ${PAGES} pages open; ` +
  `cohort-console CPU ${(100 * cpu / window).toFixed(1)}% of one core`);
// Pages still render while it flows.
const loaded = await firstRender(browser, '#/jobs', 'tr[data-job]');
console.log(`jobs list first render during that flow: cold ${loaded.cold.toFixed(0)} ms, warm ${loaded.warm.toFixed(0)} ms`);
flowing = false;
await flow;
for (const c of contexts) await c.close();
await browser.close();
