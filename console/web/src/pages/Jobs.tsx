// Jobs: newest first, filtered by queue and state (the filters the broker's ListJobs
// has), paged by "older", updated live from the event stream: a listed job's row
// changes in place, a new job that matches appears at the top.
import { useEffect, useState } from 'preact/hooks';
import { api, STATES, stateName, type Job, type JobEvent, type JobList } from '../api';
import { since } from '../format';
import { useLive } from '../live';
import { ErrorNote, Heading, StateBadge } from '../ui';

const PAGE = 50;

export function Jobs({ params }: { params: URLSearchParams }) {
  const queue = params.get('queue') ?? '';
  const state = params.get('state') ?? '';
  const before = params.get('before') ?? '';
  const [list, setList] = useState<JobList | null>(null);
  const [error, setError] = useState('');
  const [queueInput, setQueueInput] = useState(queue);
  const [stateInput, setStateInput] = useState(state);
  useEffect(() => {
    setQueueInput(queue);
    setStateInput(state);
  }, [queue, state]);

  const load = async () => {
    try {
      setList(await api.jobs({ queue, state, before, limit: PAGE }));
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => {
    setList(null);
    void load();
  }, [queue, state, before]);

  const matches = (job: Job) =>
    (!queue || job.spec?.queue === queue) && (!state || stateName(job.state) === state);
  const onJobs = (events: JobEvent[]) =>
    setList((current) => {
      if (!current) return current;
      let jobs = [...(current.jobs ?? [])];
      for (const ev of events) {
        if (!ev.job) continue;
        const i = jobs.findIndex((j) => j.id === ev.jobId);
        if (i >= 0) {
          jobs[i] = ev.job;
        } else if (!before && !ev.fromState && matches(ev.job)) {
          jobs.unshift(ev.job);
        }
      }
      if (state) jobs = jobs.filter(matches);
      return { ...current, jobs: jobs.slice(0, PAGE) };
    });
  useLive({ onReset: load, onJobs });

  const submit = (e: Event) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (queueInput.trim()) p.set('queue', queueInput.trim());
    if (stateInput) p.set('state', stateInput);
    window.location.hash = `#/jobs${p.toString() ? `?${p}` : ''}`;
  };
  const older = () => {
    const p = new URLSearchParams(params);
    p.set('before', list?.nextBefore ?? '');
    window.location.hash = `#/jobs?${p}`;
  };

  return (
    <section>
      <Heading>Jobs</Heading>
      <form class="filters" onSubmit={submit} role="search" aria-label="Filter jobs">
        <label for="filter-queue">Queue</label>
        <input id="filter-queue" name="queue" value={queueInput} placeholder="any queue" autocomplete="off"
          pattern="[a-z0-9._\-]{1,64}" onInput={(e) => setQueueInput(e.currentTarget.value)} />
        <label for="filter-state">State</label>
        <select id="filter-state" name="state" value={stateInput} onChange={(e) => setStateInput(e.currentTarget.value)}>
          <option value="">any state</option>
          {STATES.map((s) => (
            <option key={s} value={stateName(s)}>{stateName(s)}</option>
          ))}
        </select>
        <button type="submit">Filter</button>
      </form>
      <p class="note">
        The broker lists jobs oldest first and filters by queue and state only; the console reads the listing to
        show the newest first. Kind, label, time and error-code filters, retry, delete and bulk actions need the
        operations API (issue 15).
      </p>
      <ErrorNote error={error} />
      {list === null ? (
        <p>Loading…</p>
      ) : (list.jobs ?? []).length === 0 ? (
        <p>No job matches.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <caption>
              {(list.jobs ?? []).length} job{(list.jobs ?? []).length === 1 ? '' : 's'}, newest first
              {queue && ` in queue ${queue}`}
              {state && `, ${state}`}
            </caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Queue</th>
                <th scope="col">Kind</th>
                <th scope="col">State</th>
                <th scope="col">Attempt</th>
                <th scope="col">Created</th>
                <th scope="col">Error</th>
              </tr>
            </thead>
            <tbody>
              {(list.jobs ?? []).map((j) => (
                <tr key={j.id} data-job={j.id}>
                  <th scope="row"><a href={`#/jobs/${j.id}`} class="mono">{j.id}</a></th>
                  <td>{j.spec?.queue}</td>
                  <td>{j.spec?.kind}</td>
                  <td><StateBadge state={j.state} /></td>
                  <td class="num">{j.attempt ?? 0}</td>
                  <td>{since(j.createTime)}</td>
                  <td class="clip">{j.error ? `${j.error.code}: ${j.error.message ?? ''}` : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list && !list.complete && (
        <p class="note">Only the first {list.scanned} matching jobs were read; narrow the filters to see newer ones.</p>
      )}
      {list?.nextBefore && <button type="button" onClick={older}>Older jobs</button>}
    </section>
  );
}
