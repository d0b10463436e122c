// The console's HTTP API (served by cohort-console under /api/), typed as the proto3
// JSON mapping of protos/cohort/v1 prints it: lowerCamelCase, enums as names, int64 as
// strings, zero values left out.

export type JobState =
  | 'JOB_STATE_PENDING'
  | 'JOB_STATE_QUEUED'
  | 'JOB_STATE_RUNNING'
  | 'JOB_STATE_SUCCEEDED'
  | 'JOB_STATE_FAILED'
  | 'JOB_STATE_CANCELLED';

export const STATES: JobState[] = [
  'JOB_STATE_PENDING',
  'JOB_STATE_QUEUED',
  'JOB_STATE_RUNNING',
  'JOB_STATE_SUCCEEDED',
  'JOB_STATE_FAILED',
  'JOB_STATE_CANCELLED',
];

export const stateName = (s: string | undefined): string =>
  (s ?? 'JOB_STATE_UNSPECIFIED').replace('JOB_STATE_', '').toLowerCase();

export const isTerminal = (s: string | undefined): boolean =>
  s === 'JOB_STATE_SUCCEEDED' || s === 'JOB_STATE_FAILED' || s === 'JOB_STATE_CANCELLED';

export interface QueueLimits { maxConcurrency?: number; maxRate?: number; weight?: number }
export interface QueueInfo {
  name: string;
  paused?: boolean;
  limits?: QueueLimits;
  depth?: string;
  depthByPriority?: { priority?: number; queued?: string }[];
  running?: string;
  oldestQueuedAge?: string;
  executors?: number;
  unservedKinds?: string[];
  unserved?: string;
}
export interface ExecutorInfo {
  executorId: string;
  labels?: Record<string, string>;
  queues?: string[];
  capacity?: number;
  kinds?: string[];
  running?: number;
  credits?: number;
  connectTime?: string;
  lastHeartbeatTime?: string;
}
export interface JobError { code?: string; message?: string }
export interface Attempt { number?: number; executorId?: string; startTime?: string; endTime?: string; error?: JobError }
export interface Job {
  id: string;
  spec?: {
    queue?: string;
    kind?: string;
    labels?: Record<string, string>;
    priority?: number;
    maxAttempts?: number;
    timeout?: string;
    dependsOn?: string[];
    command?: { argv?: string[] };
  };
  state?: JobState;
  attempt?: number;
  cancelRequested?: boolean;
  error?: JobError;
  progress?: { fraction?: number; message?: string };
  executorId?: string;
  attempts?: Attempt[];
  createTime?: string;
  updateTime?: string;
  notBefore?: string;
  queueTime?: string;
  startTime?: string;
  endTime?: string;
  expireTime?: string;
}
export interface JobEvent {
  sequence?: string;
  time?: string;
  jobId: string;
  fromState?: JobState;
  toState?: JobState;
  reason?: string;
  job?: Job;
}
export interface Preview { size: number; encoding: 'text' | 'hex'; data: string; truncated: boolean }
export interface JobDetail { job: Job; payload: Preview; result: Preview | null }
export interface JobList { jobs?: Job[]; nextCursor?: string }

/** The operations API's job filter, as GET /api/jobs takes it (every field optional). */
export interface JobQuery {
  state?: string;
  queue?: string;
  kind?: string;
  labels?: string;
  created_after?: string;
  created_before?: string;
  finished_after?: string;
  finished_before?: string;
  error_code?: string;
}
export const FILTER_KEYS: (keyof JobQuery)[] = [
  'state', 'queue', 'kind', 'labels', 'created_after', 'created_before', 'finished_after', 'finished_before',
  'error_code',
];

export type BulkAction = 'BULK_ACTION_CANCEL' | 'BULK_ACTION_RETRY' | 'BULK_ACTION_DELETE';
export interface BulkOperation {
  id?: string;
  action?: BulkAction;
  state?: 'STATE_RUNNING' | 'STATE_DONE';
  matched?: string;
  changed?: string;
  skipped?: string;
}

/** The same filter in StartBulkOperation's JSON (JobFilter's proto3 mapping). */
export function bulkFilter(q: JobQuery): Record<string, unknown> {
  const f: Record<string, unknown> = {};
  if (q.state) f.states = q.state.split(',').map((s) => `JOB_STATE_${s.trim().toUpperCase()}`);
  if (q.queue) f.queue = q.queue;
  if (q.kind) f.kind = q.kind;
  if (q.labels) f.labelSelector = q.labels;
  if (q.error_code) f.errorCode = q.error_code;
  if (q.created_after) f.createdAfter = q.created_after;
  if (q.created_before) f.createdBefore = q.created_before;
  if (q.finished_after) f.finishedAfter = q.finished_after;
  if (q.finished_before) f.finishedBefore = q.finished_before;
  return f;
}
export interface Schedule {
  id: string;
  spec?: {
    interval?: string;
    cron?: { expression?: string; timeZone?: string };
    job?: { queue?: string; kind?: string };
    overlapPolicy?: string;
    catchUpPolicy?: string;
  };
  paused?: boolean;
  nextFireTime?: string;
  lastFireTime?: string;
  lastJobId?: string;
}
export interface Config { readOnly: boolean; tls: boolean; broker: string; scheduler: string }

/** What the signed-in credential may do (GET /api/whoami: the broker's answers to probes). */
export interface May {
  read: boolean;
  cancel: boolean;
  retry: boolean;
  delete: boolean;
  bulk: boolean;
  queues: boolean;
  schedules: boolean;
}
export interface Whoami { signedIn: boolean; readOnly: boolean; scopes: string[]; may: May }

// The bearer token lives in this tab's sessionStorage only: gone when the tab closes,
// never in a cookie (so no other site's request carries it), sent on each API call.
const TOKEN_KEY = 'cohort.console.token';
export const session = {
  token: (): string => window.sessionStorage.getItem(TOKEN_KEY) ?? '',
  signIn: (token: string) => window.sessionStorage.setItem(TOKEN_KEY, token),
  signOut: () => window.sessionStorage.removeItem(TOKEN_KEY),
};

/** Headers every API call carries: the bearer token, when signed in. */
export function authHeaders(): Record<string, string> {
  const token = session.token();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Fired on window when the console answers 401. */
export const UNAUTHORIZED_EVENT = 'cohort:unauthorized';

/** An API error, with the server's (bounded) message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = authHeaders();
  if (method === 'POST') {
    // The server refuses actions without it: a cross-site form cannot set it.
    headers['X-Cohort-Console'] = '1';
    headers['Content-Type'] = 'application/json';
  }
  const response = await fetch(`/api/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError(response.status, `the console answered ${response.status} without JSON`);
  }
  if (!response.ok) {
    const message = (parsed as { error?: string }).error ?? `HTTP ${response.status}`;
    // The App shows the sign-in form: the token is missing, unknown or revoked.
    if (response.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
    throw new ApiError(response.status, message);
  }
  return parsed as T;
}

export const api = {
  config: () => call<Config>('GET', 'config'),
  whoami: () => call<Whoami>('GET', 'whoami'),
  queues: () => call<{ queues?: QueueInfo[] }>('GET', 'queues'),
  executors: () => call<{ executors?: ExecutorInfo[] }>('GET', 'executors'),
  jobs: (q: JobQuery, page: { cursor?: string; limit?: number }) => {
    const params = new URLSearchParams();
    for (const key of FILTER_KEYS) if (q[key]) params.set(key, q[key]!);
    if (page.cursor) params.set('cursor', page.cursor);
    if (page.limit) params.set('limit', String(page.limit));
    return call<JobList>('GET', `jobs?${params}`);
  },
  job: (id: string) => call<JobDetail>('GET', `jobs/${encodeURIComponent(id)}`),
  cancel: (id: string) => call<{ state?: JobState; alreadyEnded?: boolean }>('POST', `jobs/${encodeURIComponent(id)}/cancel`),
  retry: (id: string) => call<{ retried?: boolean; job?: Job }>('POST', `jobs/${encodeURIComponent(id)}/retry`),
  remove: (id: string) => call<{ state?: JobState }>('POST', `jobs/${encodeURIComponent(id)}/delete`),
  bulk: (action: BulkAction, q: JobQuery, dryRun: boolean) =>
    call<{ operation?: BulkOperation }>('POST', 'bulk', {
      action,
      filter: bulkFilter(q),
      dryRun,
      matchAll: Object.keys(bulkFilter(q)).length === 0,
    }),
  bulkOperation: (id: string) => call<{ operation?: BulkOperation }>('GET', `bulk/${encodeURIComponent(id)}`),
  pauseQueue: (q: string) => call<object>('POST', `queues/${encodeURIComponent(q)}/pause`),
  resumeQueue: (q: string) => call<object>('POST', `queues/${encodeURIComponent(q)}/resume`),
  setLimits: (q: string, limits: QueueLimits) =>
    call<{ limits: QueueLimits }>('POST', `queues/${encodeURIComponent(q)}/limits`, limits),
  schedules: () => call<{ schedules?: Schedule[] }>('GET', 'schedules'),
  scheduleAction: (id: string, action: 'pause' | 'resume' | 'trigger') =>
    call<{ jobId?: string }>('POST', `schedules/${encodeURIComponent(id)}/${action}`),
};
