// Overview: every queue (depth by priority, running, jobs in and out per second,
// oldest queued age, paused, limits) with its actions, and the executors connected.
// Reloaded when events arrive (at most once a second), never on a timer.
import { useRef, useState } from 'preact/hooks';
import { api, type ExecutorInfo, type QueueInfo, type QueueLimits } from '../api';
import { age, durationSeconds, since } from '../format';
import { useLive, useThrottled, type EventCounts } from '../live';
import { ActionButton, ErrorNote, Heading, useMay } from '../ui';

function LimitsForm({ queue, onDone }: { queue: QueueInfo; onDone: () => void }) {
  const l = queue.limits ?? {};
  const [concurrency, setConcurrency] = useState(String(l.maxConcurrency ?? 0));
  const [rate, setRate] = useState(String(l.maxRate ?? 0));
  const [weight, setWeight] = useState(String(l.weight ?? 1));
  const [message, setMessage] = useState('');
  const [error, setError] = useState('');
  const id = `limits-${queue.name}`;
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    setMessage('');
    const limits: QueueLimits = {
      maxConcurrency: Number(concurrency),
      maxRate: Number(rate),
      weight: Number(weight),
    };
    try {
      await api.setLimits(queue.name, limits);
      setMessage('Saved.');
      onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <details>
      <summary>Limits</summary>
      <form class="limits" onSubmit={submit} aria-label={`Limits of queue ${queue.name}`}>
        <label for={`${id}-c`}>Max concurrency (0: unlimited)</label>
        <input id={`${id}-c`} type="number" min="0" step="1" value={concurrency}
          onInput={(e) => setConcurrency(e.currentTarget.value)} />
        <label for={`${id}-r`}>Max rate per second (0: unlimited)</label>
        <input id={`${id}-r`} type="number" min="0" step="any" value={rate}
          onInput={(e) => setRate(e.currentTarget.value)} />
        <label for={`${id}-w`}>Weight</label>
        <input id={`${id}-w`} type="number" min="0" step="1" value={weight}
          onInput={(e) => setWeight(e.currentTarget.value)} />
        <button type="submit">Save limits</button>
        {message && <span role="status">{message}</span>}
        {error && <span role="alert" class="error">{error}</span>}
      </form>
    </details>
  );
}

// Seconds over which a queue's rates in and out are averaged.
const RATE_WINDOW = 10;

function limitsText(l: QueueLimits | undefined): string {
  const parts = [];
  if (l?.maxConcurrency) parts.push(`≤ ${l.maxConcurrency} running`);
  if (l?.maxRate) parts.push(`≤ ${l.maxRate}/s`);
  if ((l?.weight ?? 1) !== 1) parts.push(`weight ${l?.weight}`);
  return parts.length ? parts.join(', ') : 'none';
}

export function Overview() {
  const mayAct = useMay('queues');
  const [queues, setQueues] = useState<QueueInfo[] | null>(null);
  const [executors, setExecutors] = useState<ExecutorInfo[]>([]);
  const [error, setError] = useState('');
  const load = async () => {
    try {
      const [q, e] = await Promise.all([api.queues(), api.executors()]);
      setQueues(q.queues ?? []);
      setExecutors(e.executors ?? []);
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const reload = useThrottled(load, 1000);
  // Jobs that ended in the last minute, from the live counts (since the page opened),
  // per second: at most 60 buckets, whatever the rate. Kept outside the component's
  // state: a count alone draws nothing, the (throttled) reload it asks for redraws the
  // page with it, so thousands of jobs a second cost one render a second.
  const ended = useRef<{ second: number; succeeded: number; failed: number }[]>([]);
  // Per queue, jobs in and out per second over the last RATE_WINDOW seconds, likewise.
  const flows = useRef(new Map<string, { second: number; in: number; out: number }[]>());
  const opened = useRef(Date.now());
  const onCounts = ({ succeeded, failed, queues: perQueue }: EventCounts) => {
    const second = Math.floor(Date.now() / 1000);
    for (const [queue, [jobsIn, jobsOut]] of Object.entries(perQueue ?? {})) {
      const kept = (flows.current.get(queue) ?? []).filter((b) => second - b.second < RATE_WINDOW);
      const last = kept[kept.length - 1];
      if (last?.second === second) {
        kept[kept.length - 1] = { second, in: last.in + jobsIn, out: last.out + jobsOut };
      } else {
        kept.push({ second, in: jobsIn, out: jobsOut });
      }
      flows.current.set(queue, kept);
    }
    if (succeeded + failed > 0) {
      const kept = ended.current.filter((b) => second - b.second < 60);
      const last = kept[kept.length - 1];
      if (last?.second === second) {
        kept[kept.length - 1] = { second, succeeded: last.succeeded + succeeded, failed: last.failed + failed };
      } else {
        kept.push({ second, succeeded, failed });
      }
      ended.current = kept;
    }
    reload();
  };
  useLive({ onReset: load, onCounts });
  const now = Math.floor(Date.now() / 1000);
  const lastMinute = ended.current.filter((b) => now - b.second < 60);
  const failedLastMinute = lastMinute.reduce((n, b) => n + b.failed, 0);
  const succeededLastMinute = lastMinute.reduce((n, b) => n + b.succeeded, 0);
  // Rates over the window, or over the time the page has been open if shorter.
  const span = Math.max(1, Math.min(RATE_WINDOW, (Date.now() - opened.current) / 1000));
  const rate = (queue: string) => {
    const recent = (flows.current.get(queue) ?? []).filter((b) => now - b.second < RATE_WINDOW);
    const sum = (pick: (b: { in: number; out: number }) => number) => recent.reduce((n, b) => n + pick(b), 0) / span;
    return `${sum((b) => b.in).toFixed(1)} / ${sum((b) => b.out).toFixed(1)}`;
  };
  const capacity = executors.reduce((n, e) => n + (e.capacity ?? 0), 0);
  const running = executors.reduce((n, e) => n + (e.running ?? 0), 0);
  return (
    <section>
      <Heading>Overview</Heading>
      <ErrorNote error={error} />
      <p class="summary">
        {executors.length} executor{executors.length === 1 ? '' : 's'} connected, {running} of {capacity} slots busy.{' '}
        <a href="#/executors">Executors</a>
      </p>
      <p class="summary" data-testid="last-minute">
        Last minute (seen live on this page): {succeededLastMinute} succeeded,{' '}
        <span class={failedLastMinute ? 'error' : undefined}>{failedLastMinute} failed</span>.
      </p>
      <h2 id="queues-heading">Queues</h2>
      {queues === null ? (
        <p>Loading…</p>
      ) : queues.length === 0 ? (
        <p>No queues yet: a queue appears with its first job.</p>
      ) : (
        <div class="table-wrap">
          <table aria-labelledby="queues-heading">
            <thead>
              <tr>
                <th scope="col">Queue</th>
                <th scope="col">Queued</th>
                <th scope="col">By priority</th>
                <th scope="col">Running</th>
                <th scope="col" title={`jobs submitted / ended per second, over the last ${RATE_WINDOW} s seen live`}>
                  In / out per s
                </th>
                <th scope="col">Oldest queued</th>
                <th scope="col">Status</th>
                <th scope="col">Limits</th>
                <th scope="col">Unserved kinds</th>
                {mayAct && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {queues.map((q) => (
                <tr key={q.name} data-queue={q.name}>
                  <th scope="row">
                    <a href={`#/jobs?queue=${encodeURIComponent(q.name)}`}>{q.name}</a>
                  </th>
                  <td class="num" data-col="depth">{q.depth ?? '0'}</td>
                  <td>
                    {(q.depthByPriority ?? []).map((p) => `${p.priority ?? 0}: ${p.queued ?? 0}`).join(', ') || '—'}
                  </td>
                  <td class="num" data-col="running">{q.running ?? '0'}</td>
                  <td class="num" data-col="rate">{rate(q.name)}</td>
                  <td>{q.oldestQueuedAge ? age(durationSeconds(q.oldestQueuedAge)) : '—'}</td>
                  <td data-col="status">{q.paused ? <span class="badge paused">paused</span> : 'active'}</td>
                  <td>{limitsText(q.limits)}</td>
                  <td data-col="unserved">
                    {(q.unservedKinds ?? []).length ? (
                      <span class="error" title="queued jobs of these kinds wait for an executor that runs them">
                        {q.unservedKinds!.join(', ')} ({q.unserved ?? 0} waiting)
                      </span>
                    ) : (
                      '—'
                    )}
                  </td>
                  {mayAct && (
                    <td class="actions">
                      {q.paused ? (
                        <ActionButton may="queues" label={`Resume ${q.name}`} run={() => api.resumeQueue(q.name)} onDone={load} />
                      ) : (
                        <ActionButton may="queues" label={`Pause ${q.name}`} run={() => api.pauseQueue(q.name)} onDone={load} />
                      )}
                      <LimitsForm queue={q} onDone={load} />
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Executors</h2>
      <ul class="plain">
        {executors.map((e) => (
          <li key={e.executorId}>
            <strong>{e.executorId}</strong>: {e.running ?? 0}/{e.capacity ?? 0} running, heartbeat{' '}
            {since(e.lastHeartbeatTime)}
          </li>
        ))}
      </ul>
    </section>
  );
}
