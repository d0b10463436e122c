// The console's benchmark, run by run.sh (which starts cohort-dev and cohort-console):
//   1. fills the store to --jobs jobs with console_load --total (run to the end);
//   2. time to first render of the overview (a queue row drawn) and of the jobs list (a
//      job row drawn), from navigation start (performance.now()), cold (a fresh browser
//      context: empty cache) and warm (the same page reloaded), median of 5 each;
//   3. with --pages overview pages open (each an event stream) and console_load keeping
//      --rate jobs/s flowing: the CPU of cohort-console, cohort-dev, console_load and the
//      whole machine (/proc) over --seconds, the jobs/s that ended meanwhile
//      (cohort_broker_jobs_ended_total), first render of both pages during the flow, and
//      how long a new job takes to appear in a jobs list filtered to its queue (the row
//      drawn, against the job's createTime: same machine, same clock), median of 5.
// Environment: CONSOLE_URL, CONSOLE_PID, DEV_PID, DEV_METRICS_URL, LOAD (console_load),
// GRPC, WEB_DIR (playwright-core).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const require = createRequire(join(process.env.WEB_DIR, 'package.json'));
const { chromium } = require('playwright-core');

const arg = (name, fallback) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.split('=')[1]) : fallback;
};
const JOBS = arg('jobs', 100_000);
const PAGES = arg('pages', 10);
const SECONDS = arg('seconds', 20);
const RATE = arg('rate', 5000);
const TICKS = 100; // clock ticks per second (getconf CLK_TCK on Linux)

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** console_load with `args`; resolves with its child process and a promise of its exit. */
function load(args) {
  const child = spawn(process.env.LOAD, [`--broker=${process.env.GRPC}`, ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  const done = new Promise((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve(lines) : reject(new Error(`console_load exited ${code}`))));
  });
  return { child, lines, done };
}

function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime, stime (fields 14 and 15)
}
/** CPU seconds of every process below `root` (chromium's browser, renderers and helpers). */
function treeCpuSeconds(root) {
  const parent = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      parent.set(Number(d), Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]));
    } catch { /* gone meanwhile */ }
  }
  let total = 0;
  for (const pid of parent.keys()) {
    let p = parent.get(pid);
    while (p && p !== root && p !== 1) p = parent.get(p);
    if (p !== root || pid === root) continue;
    try { total += cpuSeconds(pid); } catch { /* gone meanwhile */ }
  }
  return total;
}
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];

/** Busy and total jiffies of the whole machine (every core). */
function machine() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total }; // idle, iowait
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

/** ms from a new job's createTime to its row in a jobs list filtered to its queue, median of `n`. */
async function liveLatency(browser, n) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const ms = [];
  for (let i = 0; i < n; i++) {
    const queue = `probe-${Date.now()}-${i}`;
    await page.goto(`${process.env.CONSOLE_URL}/#/jobs?queue=${queue}`);
    await page.getByText('No job matches.').waitFor({ timeout: 60_000 });
    const appeared = page.evaluate(() => new Promise((resolve) => {
      const seen = () => {
        const row = document.querySelector('tr[data-job]');
        if (!row) return false;
        resolve({ at: Date.now(), id: row.getAttribute('data-job') });
        return true;
      };
      if (!seen()) new MutationObserver((_, o) => { if (seen()) o.disconnect(); }).observe(document.body, { childList: true, subtree: true });
    }));
    await load(['--total=1', '--submitters=1', `--queue=${queue}`]).done;
    const { at, id } = await appeared;
    const job = await (await fetch(`${process.env.CONSOLE_URL}/api/jobs/${id}`)).json();
    ms.push(at - Date.parse(job.job.createTime));
  }
  await context.close();
  return median(ms);
}

const started = Date.now();
const fill = await load([`--total=${JOBS}`, '--rate=20000', '--batch=500']).done;
console.log(`stored: ${JOBS} jobs by console_load (${fill.at(-1)}; ${((Date.now() - started) / 1000).toFixed(0)} s)`);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-quic'],
});
const overview = await firstRender(browser, '#/', 'tr[data-queue]');
const jobs = await firstRender(browser, '#/jobs', 'tr[data-job]');
console.log(`idle, ${JOBS} jobs stored: first render, median of 5 (ms from navigation start): overview cold ` +
  `${overview.cold.toFixed(0)}, warm ${overview.warm.toFixed(0)}; jobs list cold ${jobs.cold.toFixed(0)}, ` +
  `warm ${jobs.warm.toFixed(0)}; a new job in a filtered jobs list after ${(await liveLatency(browser, 5)).toFixed(0)} ms`);

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
const pids = { console: Number(process.env.CONSOLE_PID), dev: Number(process.env.DEV_PID) };
const flow = load([`--rate=${RATE}`, '--seconds=3600']);
pids.load = flow.child.pid;
await sleep(3000); // into the steady flow
const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p)]));
const browser0 = treeCpuSeconds(process.pid) - cpuSeconds(flow.child.pid);
const load0 = loadAverage();
const machine0 = machine();
const ended0 = await brokerEnded(metricsUrl);
const t0 = Date.now();
await sleep(SECONDS * 1000);
const window = (Date.now() - t0) / 1000;
const cpu = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, (100 * (cpuSeconds(p) - cpu0[k])) / window]));
const browserCpu = (100 * (treeCpuSeconds(process.pid) - cpuSeconds(flow.child.pid) - browser0)) / window;
const machine1 = machine();
const ended = (await brokerEnded(metricsUrl)) - ended0;
const busy = (100 * (machine1.busy - machine0.busy)) / (machine1.total - machine0.total);
console.log(`flow: ${(ended / window).toFixed(0)} jobs/s ended over ${window.toFixed(1)} s (console_load asked ${RATE}) ` +
  `with ${PAGES} overview pages open; CPU (% of one core): cohort-console ${cpu.console.toFixed(1)}, ` +
  `cohort-dev ${cpu.dev.toFixed(1)}, console_load ${cpu.load.toFixed(1)}, chromium (every process) ` +
  `${browserCpu.toFixed(1)}; the machine's 2 cores ${busy.toFixed(0)}% busy (load average ${load0} -> ${loadAverage()})`);
// Pages still render, and live changes still arrive, while it flows.
const overviewFlow = await firstRender(browser, '#/', 'tr[data-queue]');
const jobsFlow = await firstRender(browser, '#/jobs', 'tr[data-job]');
const latencyFlow = await liveLatency(browser, 5);
const flowed = flow.lines.filter((l) => l.startsWith('second='));
flow.child.kill('SIGTERM');
await flow.done;
console.log(`during that flow (${flowed.length} s of console_load): overview cold ${overviewFlow.cold.toFixed(0)} ms, ` +
  `warm ${overviewFlow.warm.toFixed(0)} ms; jobs list cold ${jobsFlow.cold.toFixed(0)} ms, ` +
  `warm ${jobsFlow.warm.toFixed(0)} ms; a new job in a filtered jobs list after ${latencyFlow.toFixed(0)} ms`);
for (const c of contexts) await c.close();
await browser.close();
