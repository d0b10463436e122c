// Jobs: newest first with the operations API's filters (state, queue, kind, label
// selector, created/finished time, error code), paged by the broker's cursor, updated
// live from the event stream's counts (any change reloads the page shown, at most once
// a second). Bulk cancel/retry/delete act on the
// whole filter: a dry run counts the jobs first and a dialog asks to confirm.
import { Fragment } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  api, FILTER_KEYS, STATES, stateName, type BulkAction, type BulkOperation, type JobList,
  type JobQuery,
} from '../api';
import { since } from '../format';
import { useLive, useThrottled } from '../live';
import { ErrorNote, Heading, StateBadge, useMay } from '../ui';

const PAGE = 50;

const TEXT_FILTERS: { key: keyof JobQuery; label: string; placeholder: string; pattern?: string }[] = [
  { key: 'queue', label: 'Queue', placeholder: 'any queue', pattern: '[a-z0-9._\\-]{1,64}' },
  { key: 'kind', label: 'Kind', placeholder: 'any kind' },
  { key: 'labels', label: 'Labels', placeholder: 'e.g. team=web,tier!=db' },
  { key: 'error_code', label: 'Error code', placeholder: 'any error' },
];
const TIME_FILTERS: { key: keyof JobQuery; label: string }[] = [
  { key: 'created_after', label: 'Created after' },
  { key: 'created_before', label: 'Created before' },
  { key: 'finished_after', label: 'Finished after' },
  { key: 'finished_before', label: 'Finished before' },
];

// datetime-local inputs speak local "YYYY-MM-DDTHH:mm"; the API RFC 3339 UTC.
const toLocalInput = (iso: string | undefined): string => {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};
const fromLocalInput = (local: string): string => (local ? new Date(local).toISOString() : '');

const ACTIONS: { action: BulkAction; verb: string }[] = [
  { action: 'BULK_ACTION_CANCEL', verb: 'Cancel' },
  { action: 'BULK_ACTION_RETRY', verb: 'Retry' },
  { action: 'BULK_ACTION_DELETE', verb: 'Delete' },
];

function describe(q: JobQuery): string {
  const parts = FILTER_KEYS.filter((k) => q[k]).map((k) => `${k.replace('_', ' ')} ${q[k]}`);
  return parts.length ? parts.join(', ') : 'every job';
}

/** Bulk actions on the current filter: dry-run count, confirmation dialog, progress. */
function BulkActions({ query, onDone }: { query: JobQuery; onDone: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [pending, setPending] = useState<{ action: BulkAction; verb: string; matched: string } | null>(null);
  const [operation, setOperation] = useState<BulkOperation | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (pending) dialog.current?.showModal();
    else dialog.current?.close();
  }, [pending]);
  // A started operation is applied by the broker in batches: follow it until done.
  useEffect(() => {
    if (!operation?.id || operation.state === 'STATE_DONE') return;
    const timer = window.setTimeout(async () => {
      try {
        const next = (await api.bulkOperation(operation.id!)).operation ?? null;
        setOperation(next);
        if (next?.state === 'STATE_DONE') onDone();
      } catch (e) {
        setError((e as Error).message);
      }
    }, 500);
    return () => window.clearTimeout(timer);
  }, [operation]);

  const count = async (action: BulkAction, verb: string) => {
    setBusy(true);
    setError('');
    setOperation(null);
    try {
      const dry = await api.bulk(action, query, true);
      setPending({ action, verb, matched: dry.operation?.matched ?? '0' });
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const confirm = async () => {
    if (!pending) return;
    setBusy(true);
    try {
      const started = (await api.bulk(pending.action, query, false)).operation ?? null;
      setOperation(started);
      if (started?.state === 'STATE_DONE') onDone();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setPending(null);
      setBusy(false);
    }
  };
  return (
    <div class="bulk" role="group" aria-label="Act on every job the filter matches">
      <span>Every job matching the filter:</span>
      {ACTIONS.map(({ action, verb }) => (
        <button key={action} type="button" class={verb === 'Retry' ? undefined : 'danger'} disabled={busy}
          onClick={() => count(action, verb)}>
          {verb} all…
        </button>
      ))}
      {operation && (
        <span role="status" data-testid="bulk-status">
          {operation.state === 'STATE_DONE' ? 'Done' : 'Running'}: {operation.changed ?? 0} changed,{' '}
          {operation.skipped ?? 0} skipped of {operation.matched ?? 0} matched.
        </span>
      )}
      <ErrorNote error={error} />
      <dialog ref={dialog} aria-labelledby="bulk-title" onClose={() => setPending(null)}>
        {pending && (
          <form method="dialog" onSubmit={(e) => { e.preventDefault(); void confirm(); }}>
            <h2 id="bulk-title">{pending.verb} {pending.matched} job{pending.matched === '1' ? '' : 's'}?</h2>
            <p data-testid="bulk-count">
              <strong>{pending.matched}</strong> job{pending.matched === '1' ? '' : 's'} match {describe(query)} now
              (jobs submitted later are not touched).
            </p>
            <div class="actions">
              <button type="submit" class="danger" disabled={busy}>
                {pending.verb} {pending.matched} jobs
              </button>
              <button type="button" onClick={() => setPending(null)}>Back</button>
            </div>
          </form>
        )}
      </dialog>
    </div>
  );
}

export function Jobs({ params }: { params: URLSearchParams }) {
  const mayBulk = useMay('bulk');
  const query: JobQuery = {};
  for (const key of FILTER_KEYS) if (params.get(key)) query[key] = params.get(key)!;
  const cursor = params.get('cursor') ?? '';
  const queryKey = FILTER_KEYS.map((k) => query[k] ?? '').join('\u0000');
  const [list, setList] = useState<JobList | null>(null);
  const [error, setError] = useState('');
  const [inputs, setInputs] = useState<JobQuery>(query);
  useEffect(() => setInputs(query), [queryKey]);

  const load = async () => {
    try {
      setList(await api.jobs(query, { cursor, limit: PAGE }));
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => {
    setList(null);
    void load();
  }, [queryKey, cursor]);
  const reload = useThrottled(load, 1000);

  // Any change may touch a listed row or bring a new match: the page reloads, at most
  // once a second, from the counts stream (a few bytes per batch, at any rate).
  useLive({ onReset: load, onCounts: reload });

  const submit = (e: Event) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const key of FILTER_KEYS) if (inputs[key]?.trim()) p.set(key, inputs[key]!.trim());
    window.location.hash = `#/jobs${p.toString() ? `?${p}` : ''}`;
  };
  const set = (key: keyof JobQuery, value: string) => setInputs((current) => ({ ...current, [key]: value }));
  const older = () => {
    const p = new URLSearchParams(params);
    p.set('cursor', list?.nextCursor ?? '');
    window.location.hash = `#/jobs?${p}`;
  };
  const newest = () => {
    const p = new URLSearchParams(params);
    p.delete('cursor');
    window.location.hash = `#/jobs?${p}`;
  };
  const jobs = list?.jobs ?? [];

  return (
    <section>
      <Heading>Jobs</Heading>
      <form class="filters" onSubmit={submit} role="search" aria-label="Filter jobs">
        <label for="filter-state">State</label>
        <select id="filter-state" name="state" value={inputs.state ?? ''} onChange={(e) => set('state', e.currentTarget.value)}>
          <option value="">any state</option>
          {STATES.map((s) => (
            <option key={s} value={stateName(s)}>{stateName(s)}</option>
          ))}
        </select>
        {TEXT_FILTERS.map((f) => (
          <Fragment key={f.key}>
            <label for={`filter-${f.key}`}>{f.label}</label>
            <input id={`filter-${f.key}`} name={f.key} value={inputs[f.key] ?? ''} placeholder={f.placeholder}
              autocomplete="off" pattern={f.pattern} maxLength={f.key === 'labels' ? 1024 : 128}
              onInput={(e) => set(f.key, e.currentTarget.value)} />
          </Fragment>
        ))}
        <details class="time-filters">
          <summary>Time</summary>
          {TIME_FILTERS.map((f) => (
            <span key={f.key} class="field">
              <label for={`filter-${f.key}`}>{f.label}</label>
              <input id={`filter-${f.key}`} type="datetime-local" value={toLocalInput(inputs[f.key])}
                onInput={(e) => set(f.key, fromLocalInput(e.currentTarget.value))} />
            </span>
          ))}
        </details>
        <button type="submit">Filter</button>
      </form>
      {mayBulk && <BulkActions query={query} onDone={load} />}
      <ErrorNote error={error} />
      {list === null ? (
        !error && <p>Loading…</p>
      ) : jobs.length === 0 ? (
        <p>No job matches.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <caption>
              {jobs.length} job{jobs.length === 1 ? '' : 's'}, newest first{cursor ? ' (older page)' : ''}: {describe(query)}
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
              {jobs.map((j) => (
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
      <div class="actions">
        {cursor && <button type="button" onClick={newest}>Newest jobs</button>}
        {list?.nextCursor && <button type="button" onClick={older}>Older jobs</button>}
      </div>
    </section>
  );
}
