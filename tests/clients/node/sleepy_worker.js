// A module for cohort-worker (cli.test.js): `cohort-worker ./sleepy_worker.js:sleepy`. Its
// Worker names no server: the runner's environment ($COHORT_SERVER) gives it.
'use strict';
const { setTimeout: sleep } = require('node:timers/promises');
const cohort = require('@cohort/client');

const sleepy = new cohort.Worker({ concurrency: 2, drainGraceMs: 20_000 });
sleepy.task('node.sleep', async (payload, ctx) => {
  await sleep(Number(payload.toString()), undefined, { signal: ctx.signal });
  return `slept ${payload}`;
});

module.exports = { sleepy };
