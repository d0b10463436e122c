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
}
export interface ExecutorInfo {
  executorId: string;
  labels?: Record<string, string>;
  queues?: string[];
  capacity?: number;
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
export interface JobList { jobs?: Job[]; complete: boolean; scanned: number; nextBefore?: string }
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
export interface Config { readOnly: boolean; broker: string; scheduler: string }

/** An API error, with the server's (bounded) message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
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
    throw new ApiError(response.status, message);
  }
  return parsed as T;
}

export const api = {
  config: () => call<Config>('GET', 'config'),
  queues: () => call<{ queues?: QueueInfo[] }>('GET', 'queues'),
  executors: () => call<{ executors?: ExecutorInfo[] }>('GET', 'executors'),
  jobs: (q: { queue?: string; state?: string; before?: string; limit?: number }) => {
    const params = new URLSearchParams();
    if (q.queue) params.set('queue', q.queue);
    if (q.state) params.set('state', q.state);
    if (q.before) params.set('before', q.before);
    if (q.limit) params.set('limit', String(q.limit));
    return call<JobList>('GET', `jobs?${params}`);
  },
  job: (id: string) => call<JobDetail>('GET', `jobs/${encodeURIComponent(id)}`),
  cancel: (id: string) => call<{ state?: JobState; alreadyEnded?: boolean }>('POST', `jobs/${encodeURIComponent(id)}/cancel`),
  pauseQueue: (q: string) => call<object>('POST', `queues/${encodeURIComponent(q)}/pause`),
  resumeQueue: (q: string) => call<object>('POST', `queues/${encodeURIComponent(q)}/resume`),
  setLimits: (q: string, limits: QueueLimits) =>
    call<{ limits: QueueLimits }>('POST', `queues/${encodeURIComponent(q)}/limits`, limits),
  schedules: () => call<{ schedules?: Schedule[] }>('GET', 'schedules'),
  scheduleAction: (id: string, action: 'pause' | 'resume' | 'trigger') =>
    call<{ jobId?: string }>('POST', `schedules/${encodeURIComponent(id)}/${action}`),
};
