// Schedules: interval or cron (with its zone), next and last fire, the last job made,
// policies; pause, resume and trigger.
import { useEffect, useState } from 'preact/hooks';
import { api, type Schedule } from '../api';
import { age, durationSeconds, time } from '../format';
import { ActionButton, ErrorNote, Heading, useMay } from '../ui';

const policy = (p: string | undefined, prefix: string) => (p ?? 'unspecified').replace(prefix, '').toLowerCase();

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
                <th scope="col">Next fire</th>
                <th scope="col">Last fire</th>
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
                  <td>{s.paused ? '—' : time(s.nextFireTime)}</td>
                  <td>
                    {s.lastFireTime ? time(s.lastFireTime) : s.lastJobId ? '' : '—'}
                    {s.lastJobId && (<> <a href={`#/jobs/${s.lastJobId}`}>last job</a></>)}
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
