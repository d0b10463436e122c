// Executors: id, labels, queues, kinds, capacity, running attempts, credits, connected since,
// last heartbeat. The broker records no event when an executor comes or goes, so the
// list reloads with job events and on demand.
import { useState } from 'preact/hooks';
import { api, type ExecutorInfo } from '../api';
import { since, time } from '../format';
import { useLive, useThrottled } from '../live';
import { ErrorNote, Heading } from '../ui';

export function Executors() {
  const [executors, setExecutors] = useState<ExecutorInfo[] | null>(null);
  const [error, setError] = useState('');
  const load = async () => {
    try {
      setExecutors((await api.executors()).executors ?? []);
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const reload = useThrottled(load, 1000);
  useLive({ onReset: load, onCounts: reload });
  return (
    <section>
      <Heading>Executors</Heading>
      <ErrorNote error={error} />
      <button type="button" onClick={load}>Reload</button>
      {executors === null ? (
        <p>Loading…</p>
      ) : executors.length === 0 ? (
        <p>No executor is connected.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <caption>Executors connected to the broker now</caption>
            <thead>
              <tr>
                <th scope="col">Executor</th>
                <th scope="col">Labels</th>
                <th scope="col">Queues</th>
                <th scope="col">Kinds</th>
                <th scope="col">Running / capacity</th>
                <th scope="col">Credits</th>
                <th scope="col">Connected</th>
                <th scope="col">Last heartbeat</th>
              </tr>
            </thead>
            <tbody>
              {executors.map((e) => (
                <tr key={e.executorId}>
                  <th scope="row">{e.executorId}</th>
                  <td>{Object.entries(e.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ') || '—'}</td>
                  <td>{(e.queues ?? []).join(', ') || 'all'}</td>
                  <td data-col="kinds">{(e.kinds ?? []).join(', ') || 'all'}</td>
                  <td class="num">{e.running ?? 0} / {e.capacity ?? 0}</td>
                  <td class="num">{e.credits ?? 0}</td>
                  <td>{time(e.connectTime)}</td>
                  <td>{since(e.lastHeartbeatTime)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
