// Schedules: interval or cron (with its zone), the next fire times in the schedule's
// zone, the last fires with the jobs they made, policies; pause, resume and trigger.
import { useEffect, useState } from 'preact/hooks';
import { api, type Job, type Schedule } from '../api';
import { age, durationSeconds, zoned } from '../format';
import { ActionButton, ErrorNote, Heading, StateBadge, useMay } from '../ui';

const policy = (p: string | undefined, prefix: string) => (p ?? 'unspecified').replace(prefix, '').toLowerCase();
// The label the scheduler puts on every job a schedule fires (services/scheduler).
const SCHEDULE_LABEL = 'cohort.schedule';
const UPCOMING = 3;
const RECENT = 5;

const zoneOf = (s: Schedule): string => s.spec?.cron?.timeZone || 'UTC';

/**
 * The next fire times, as the scheduler computed the first: an interval's slots are the
 * multiples of the interval, so the following ones are known here; a cron schedule's
 * following slots (DST and all) are the scheduler's to compute, so only the first shows.
 */
function upcoming(s: Schedule): string[] {
  if (s.paused || !s.nextFireTime) return [];
  const first = Date.parse(s.nextFireTime);
  const step = durationSeconds(s.spec?.interval) * 1000;
  if (s.spec?.cron || !(step > 0) || isNaN(first)) return [s.nextFireTime];
  return Array.from({ length: UPCOMING }, (_, i) => new Date(first + i * step).toISOString());
}

/** The last jobs a schedule made (its fires and triggers), newest first, read when opened. */
function RecentFires({ schedule }: { schedule: Schedule }) {
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [error, setError] = useState('');
  const load = async () => {
    try {
      const list = await api.jobs({ labels: `${SCHEDULE_LABEL}=${schedule.id}` }, { limit: RECENT });
      setJobs(list.jobs ?? []);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <details onToggle={(e) => { if ((e.currentTarget as HTMLDetailsElement).open) void load(); }}>
      <summary>Last fires of {schedule.id}</summary>
      <ErrorNote error={error} />
      {jobs === null ? (
        !error && <p>Loading…</p>
      ) : jobs.length === 0 ? (
        <p>No job yet.</p>
      ) : (
        <ol class="plain" data-testid={`fires-${schedule.id}`}>
          {jobs.map((j) => (
            <li key={j.id}>
              {zoned(j.createTime, zoneOf(schedule))}: <a class="mono" href={`#/jobs/${j.id}`}>{j.id}</a>{' '}
              <StateBadge state={j.state} />
            </li>
          ))}
        </ol>
      )}
      <a href={`#/jobs?labels=${encodeURIComponent(`${SCHEDULE_LABEL}=${schedule.id}`)}`}>every job it made</a>
    </details>
  );
}

export function Schedules() {
  const mayAct = useMay('schedules');
  const [schedules, setSchedules] = useState<Schedule[] | null>(null);
  const [error, setError] = useState('');
  const [triggered, setTriggered] = useState<{ id: string; jobId: string } | null>(null);
  const load = async () => {
    try {
      setSchedules((await api.schedules()).schedules ?? []);
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => {
    void load();
  }, []);
  return (
    <section>
      <Heading>Schedules</Heading>
      <ErrorNote error={error} />
      <button type="button" onClick={load}>Reload</button>
      {triggered && (
        <p role="status">
          Triggered {triggered.id}: job <a href={`#/jobs/${triggered.jobId}`}>{triggered.jobId}</a>.
        </p>
      )}
      {schedules === null ? (
        <p>Loading…</p>
      ) : schedules.length === 0 ? (
        <p>No schedules. Create one with <code>cohortctl schedules create</code>.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <caption>Schedules stored by the scheduler</caption>
            <thead>
              <tr>
                <th scope="col">Schedule</th>
                <th scope="col">When</th>
                <th scope="col">Job</th>
                <th scope="col">Next fires</th>
                <th scope="col">Last fires</th>
                <th scope="col">Overlap / catch-up</th>
                <th scope="col">Status</th>
                {mayAct && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {schedules.map((s) => (
                <tr key={s.id}>
                  <th scope="row">{s.id}</th>
                  <td>
                    {s.spec?.cron
                      ? `cron ${s.spec.cron.expression ?? ''} (${s.spec.cron.timeZone || 'UTC'})`
                      : `every ${age(durationSeconds(s.spec?.interval))}`}
                  </td>
                  <td>{s.spec?.job?.queue} / {s.spec?.job?.kind}</td>
                  <td data-col="next">
                    {upcoming(s).length === 0 ? '—' : (
                      <ol class="plain">{upcoming(s).map((t) => <li key={t}>{zoned(t, zoneOf(s))}</li>)}</ol>
                    )}
                  </td>
                  <td>
                    {s.lastFireTime ? zoned(s.lastFireTime, zoneOf(s)) : s.lastJobId ? '' : '—'}
                    {s.lastJobId && (<> <a href={`#/jobs/${s.lastJobId}`}>last job</a></>)}
                    <RecentFires schedule={s} />
                  </td>
                  <td>
                    {policy(s.spec?.overlapPolicy, 'OVERLAP_POLICY_')} / {policy(s.spec?.catchUpPolicy, 'CATCH_UP_POLICY_')}
                  </td>
                  <td>{s.paused ? <span class="badge paused">paused</span> : 'active'}</td>
                  {mayAct && (
                    <td class="actions">
                      {s.paused ? (
                        <ActionButton may="schedules" label={`Resume ${s.id}`} run={() => api.scheduleAction(s.id, 'resume')} onDone={load} />
                      ) : (
                        <ActionButton may="schedules" label={`Pause ${s.id}`} run={() => api.scheduleAction(s.id, 'pause')} onDone={load} />
                      )}
                      <ActionButton may="schedules" label={`Trigger ${s.id}`}
                        run={async () => {
                          const r = await api.scheduleAction(s.id, 'trigger');
                          setTriggered({ id: s.id, jobId: r.jobId ?? '' });
                        }}
                        onDone={load} />
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
