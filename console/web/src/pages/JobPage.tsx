// One job: state, spec, payload and result (text as text, binary as hex, truncated
// with a download), attempts with their executors and errors, live progress, its
// dependencies as a small graph with their states, and a timeline of its transitions
// (recorded times and attempts, plus events as they arrive).
import { useEffect, useState } from 'preact/hooks';
import { api, authHeaders, isTerminal, stateName, type Job, type JobDetail, type JobEvent, type Preview } from '../api';
import { time } from '../format';
import { useLive } from '../live';
import { ActionButton, ErrorNote, Heading, StateBadge } from '../ui';

// A download through fetch, so that it carries the signed-in token (a plain link
// cannot send the Authorization header).
async function download(href: string, name: string) {
  const response = await fetch(href, { headers: authHeaders() });
  if (!response.ok) throw new Error(`download failed: HTTP ${response.status}`);
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function Bytes({ label, preview, href }: { label: string; preview: Preview; href: string }) {
  const [error, setError] = useState('');
  const name = href.split('/').slice(-2).join('.');
  return (
    <div class="bytes">
      <h3>{label}</h3>
      <p class="note">
        {preview.size} bytes, shown as {preview.encoding}
        {preview.truncated && ' (truncated)'} —{' '}
        <a href={href} onClick={(e) => { e.preventDefault(); download(href, name).catch((err: Error) => setError(err.message)); }}>
          download
        </a>
        {error && <span role="alert" class="error"> {error}</span>}
      </p>
      <pre tabIndex={0} aria-label={label}>{preview.data || '(empty)'}</pre>
    </div>
  );
}

// Dependencies drawn with their state; more are listed without it.
const MAX_DRAWN_DEPS = 20;

/**
 * The jobs this one waits for, drawn as a graph: each dependency a node with its state,
 * an edge from each into this job. States are read when the page opens and again when
 * this job changes (its release follows theirs).
 */
function DependencyGraph({ job }: { job: Job }) {
  const deps = job.spec?.dependsOn ?? [];
  const [states, setStates] = useState<Record<string, string>>({});
  useEffect(() => {
    for (const d of deps.slice(0, MAX_DRAWN_DEPS)) {
      api.job(d)
        .then((r) => setStates((c) => ({ ...c, [d]: r.job.state ?? '' })))
        .catch(() => setStates((c) => ({ ...c, [d]: 'gone' })));
    }
  }, [deps.join(','), job.state]);
  if (deps.length === 0) return <p>Depends on nothing.</p>;
  return (
    <figure class="deps" aria-label={`Dependencies: ${deps.length} jobs into this one`}>
      <ul class="dep-nodes">
        {deps.map((d) => (
          <li key={d} data-dep={d}>
            <span class="dep-node">
              <a class="mono" href={`#/jobs/${d}`}>{d}</a>{' '}
              {states[d] ? <StateBadge state={states[d]} /> : d in states ? null : <span class="note">…</span>}
            </span>
            <span class="dep-edge" aria-hidden="true">↓</span>
          </li>
        ))}
      </ul>
      <div class="dep-node self">
        <span class="mono">{job.id}</span> <StateBadge state={job.state} /> (this job)
      </div>
    </figure>
  );
}

/** The job's recorded times and its attempts, in time order. */
function timeline(job: Job): { at: string; text: string }[] {
  const items: { at: string; text: string }[] = [];
  const add = (at: string | undefined, text: string) => { if (at) items.push({ at, text }); };
  add(job.createTime, 'Created');
  add(job.notBefore, 'Not before');
  add(job.queueTime, 'Queued');
  for (const a of job.attempts ?? []) {
    add(a.startTime, `Attempt ${a.number ?? ''} started on ${a.executorId ?? 'an executor'}`);
    add(a.endTime, `Attempt ${a.number ?? ''} ended${a.error ? `: ${a.error.code ?? ''} ${a.error.message ?? ''}` : ''}`);
  }
  add(job.endTime, `Ended ${stateName(job.state)}`);
  add(job.expireTime, 'Deleted after');
  return items.sort((x, y) => Date.parse(x.at) - Date.parse(y.at));
}

export function JobPage({ id }: { id: string }) {
  const [detail, setDetail] = useState<JobDetail | null>(null);
  const [progress, setProgress] = useState<{ fraction?: number; message?: string } | null>(null);
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [error, setError] = useState('');
  const load = async () => {
    try {
      const d = await api.job(id);
      setDetail(d);
      setProgress(d.job.progress ?? null);
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useLive(
    {
      onReset: load,
      onJobs: (evs) => {
        setEvents((current) => [...current, ...evs].slice(-100));
        void load();
      },
      onProgress: setProgress,
    },
    id,
  );
  const job = detail?.job;
  const fraction = Math.max(0, Math.min(1, progress?.fraction ?? 0));
  return (
    <section>
      <Heading>
        Job <span class="mono">{id}</span>
      </Heading>
      <ErrorNote error={error} />
      {!job ? (
        !error && <p>Loading…</p>
      ) : (
        <>
          <p class="summary">
            <StateBadge state={job.state} /> in queue <a href={`#/jobs?queue=${job.spec?.queue}`}>{job.spec?.queue}</a>,
            kind <code>{job.spec?.kind}</code>, attempt {job.attempt ?? 0}
            {job.spec?.maxAttempts ? ` of ${job.spec.maxAttempts}` : ''}
            {job.cancelRequested && ', cancel requested'}
          </p>
          <div class="actions">
            {!isTerminal(job.state) && (
              <ActionButton may="cancel" label="Cancel job" danger run={() => api.cancel(id)} onDone={load} />
            )}
            {(job.state === 'JOB_STATE_FAILED' || job.state === 'JOB_STATE_CANCELLED') && (
              <ActionButton may="retry" label="Retry job" run={() => api.retry(id)} onDone={load} />
            )}
            {job.state !== 'JOB_STATE_RUNNING' && (
              <ActionButton may="delete" label="Delete job" danger
                run={async () => {
                  if (!window.confirm(`Delete job ${id} and its record for good?`)) throw new Error('not deleted');
                  await api.remove(id);
                }}
                onDone={() => { window.location.hash = `#/jobs?queue=${encodeURIComponent(job.spec?.queue ?? '')}`; }} />
            )}
          </div>
          {job.state === 'JOB_STATE_RUNNING' && (
            <div class="progress">
              <label for="job-progress">Progress</label>
              <progress id="job-progress" max={1} value={fraction} aria-valuetext={`${Math.round(fraction * 100)}%`} />
              <span data-testid="progress-text">
                {Math.round(fraction * 100)}%{progress?.message ? ` — ${progress.message}` : ''}
              </span>
            </div>
          )}
          {job.error && (
            <div class="job-error" role="region" aria-label="Error">
              <h2>Error</h2>
              <p>
                <code>{job.error.code}</code>: <span data-testid="job-error">{job.error.message}</span>
              </p>
            </div>
          )}
          <h2>Spec</h2>
          <dl class="grid">
            <dt>Priority</dt><dd>{job.spec?.priority ?? 0}</dd>
            <dt>Timeout</dt><dd>{job.spec?.timeout ?? 'none'}</dd>
            <dt>Labels</dt>
            <dd>{Object.entries(job.spec?.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ') || 'none'}</dd>
            {job.spec?.command?.argv && (<><dt>Command</dt><dd><code>{job.spec.command.argv.join(' ')}</code></dd></>)}
            <dt>Executor</dt><dd>{job.executorId || '—'}</dd>
          </dl>
          {detail && <Bytes label="Payload" preview={detail.payload} href={`/api/jobs/${id}/payload`} />}
          {detail?.result && <Bytes label="Result" preview={detail.result} href={`/api/jobs/${id}/result`} />}
          <h2>Dependencies</h2>
          <DependencyGraph job={job} />
          <h2>Attempts</h2>
          {(job.attempts ?? []).length === 0 ? (
            <p>Not started yet.</p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">#</th>
                    <th scope="col">Executor</th>
                    <th scope="col">Started</th>
                    <th scope="col">Ended</th>
                    <th scope="col">Error</th>
                  </tr>
                </thead>
                <tbody>
                  {job.attempts!.map((a) => (
                    <tr key={a.number}>
                      <th scope="row">{a.number}</th>
                      <td>{a.executorId}</td>
                      <td>{time(a.startTime)}</td>
                      <td>{a.endTime ? time(a.endTime) : 'running'}</td>
                      <td>{a.error ? `${a.error.code}: ${a.error.message ?? ''}` : ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <h2>Timeline</h2>
          <ol class="timeline" data-testid="timeline">
            {timeline(job).map((item, i) => (
              <li key={i}>{time(item.at)}: {item.text}</li>
            ))}
          </ol>
          {events.length > 0 && (
            <>
              <h3>Events seen on this page</h3>
              <ol class="timeline" aria-live="polite">
                {events.map((e) => (
                  <li key={e.sequence}>
                    #{e.sequence} {time(e.time)}: {stateName(e.fromState)} → {stateName(e.toState)} (
                    {(e.reason ?? '').replace('TRANSITION_REASON_', '').toLowerCase()})
                  </li>
                ))}
              </ol>
            </>
          )}
        </>
      )}
    </section>
  );
}
