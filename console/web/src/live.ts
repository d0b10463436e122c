// Live updates: one EventSource on /api/events (the console's single Watch on the
// broker, fanned out), never polling. `reset` means "reload what you show" (sent
// first, after a reconnect, and when this page fell behind); `jobs` carries a batch of
// job events; `progress` (job pages only) a running job's latest progress.
import { useEffect, useRef } from 'preact/hooks';
import type { JobEvent } from './api';

export interface LiveHandlers {
  onReset: () => void;
  onJobs?: (events: JobEvent[]) => void;
  onProgress?: (progress: { fraction?: number; message?: string }) => void;
}

export function useLive(handlers: LiveHandlers, jobId?: string): void {
  const ref = useRef(handlers);
  ref.current = handlers;
  useEffect(() => {
    const url = jobId ? `/api/events?job=${encodeURIComponent(jobId)}` : '/api/events';
    const source = new EventSource(url);
    source.addEventListener('reset', () => ref.current.onReset());
    source.addEventListener('jobs', (e) => {
      const data = JSON.parse((e as MessageEvent<string>).data) as { events?: JobEvent[] };
      ref.current.onJobs?.(data.events ?? []);
    });
    source.addEventListener('progress', (e) => {
      const data = JSON.parse((e as MessageEvent<string>).data) as { progress?: { fraction?: number; message?: string } };
      ref.current.onProgress?.(data.progress ?? {});
    });
    return () => source.close();
  }, [jobId]);
}

/** Calls `fn` at most once per `ms`, trailing: a burst of events costs one reload. */
export function useThrottled(fn: () => void, ms: number): () => void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  return () => {
    if (timer.current !== undefined) return;
    timer.current = window.setTimeout(() => {
      timer.current = undefined;
      fnRef.current();
    }, ms);
  };
}
