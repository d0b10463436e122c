#!/usr/bin/env node
// cohort-worker: runs the Worker a module exports, as `python -m cohort.worker` does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from './worker';

const USAGE = `usage: cohort-worker MODULE[:EXPORT] [--server HOST:PORT] [--queue Q]... [--concurrency N] [--executor-id ID]

Loads MODULE (a file, from the current directory, or a package name) and takes its
Worker: the export EXPORT, else the module itself, its default export or its "worker"
export; a function found there is called (and awaited) to make the Worker. Runs it until
SIGTERM or SIGINT, then drains: running jobs finish, nothing new is taken. Flags override
the worker's own settings; otherwise the broker, TLS and token come from its options,
the environment ($COHORT_SERVER, $COHORT_TOKEN, ...) and the config file, as for
connect(). Logs one line per event on stderr.
Exit status: 0 after a drain, 1 when the broker refuses the worker, 2 for bad arguments.`;

/** Bad arguments or a module without a Worker: exit status 2. */
class UsageError extends Error {}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function isWorker(x: unknown): x is Worker {
  return typeof x === 'object' && x !== null && typeof (x as Worker).main === 'function' &&
    typeof (x as Worker).configure === 'function';
}

/** Resolves MODULE[:EXPORT] to the Worker it names. */
async function loadWorker(spec: string): Promise<Worker> {
  const colon = spec.lastIndexOf(':');
  const named = colon > 0 && IDENTIFIER.test(spec.slice(colon + 1));
  const moduleName = named ? spec.slice(0, colon) : spec;
  const exportName = named ? spec.slice(colon + 1) : undefined;
  const local = moduleName.startsWith('.') || path.isAbsolute(moduleName) || fs.existsSync(moduleName);
  let file: string;
  try {
    file = require.resolve(local ? path.resolve(moduleName) : moduleName, { paths: [process.cwd()] });
  } catch {
    throw new UsageError(`cannot find the module "${moduleName.slice(0, 256)}"`);
  }
  // CommonJS, or an ES module where require() loads them (Node 20.19, 22.12 and later).
  const mod = require(file) as Record<string, unknown>;
  let value: unknown = exportName !== undefined ? mod[exportName]
    : [mod, mod.default, mod.worker].find((c) => isWorker(c) || typeof c === 'function');
  if (typeof value === 'function') value = await (value as () => unknown)();
  if (!isWorker(value)) {
    const where = exportName !== undefined ? `its export "${exportName}"` : 'the module, its default export or "worker"';
    throw new UsageError(`${moduleName.slice(0, 256)}: ${where} is not a Worker (nor a function making one)`);
  }
  return value;
}

/** cohort-worker's main: resolves with its exit status. */
export async function main(argv: string[]): Promise<number> {
  let worker: Worker;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        server: { type: 'string' },
        queue: { type: 'string', multiple: true },
        concurrency: { type: 'string' },
        'executor-id': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('give exactly one MODULE[:EXPORT]');
    const concurrency = values.concurrency;
    if (concurrency !== undefined && !/^\d{1,5}$/.test(concurrency)) throw new UsageError('--concurrency must be in 1..10000');
    worker = await loadWorker(positionals[0]!);
    worker.configure({
      server: values.server, queues: values.queue, executorId: values['executor-id'],
      concurrency: concurrency === undefined ? undefined : Number(concurrency),
    });
  } catch (e) {
    const code = String((e as { code?: unknown }).code ?? '');
    if (!(e instanceof UsageError || e instanceof RangeError || code.startsWith('ERR_PARSE_ARGS'))) throw e;
    process.stderr.write(`cohort-worker: ${(e as Error).message}\n${USAGE.split('\n')[0]}\n`);
    return 2;
  }
  return worker.main();
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    // Exits even if the module left handles open (a client, a timer): the worker is done.
    (status) => process.exit(status),
    (e: unknown) => {
      process.stderr.write(`cohort-worker: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
