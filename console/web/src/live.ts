// Live updates: one stream on /api/events (the console's single Watch on the broker,
// fanned out), never polling. `reset` means "reload what you show" (sent first, after
// a reconnect, and when this page fell behind); `jobs` carries a batch of job events;
// `progress` (job pages only) a running job's latest progress.
//
// The stream is Server-Sent Events read with fetch rather than EventSource, because
// EventSource cannot send the Authorization header that carries the signed-in token.
// It reconnects 2 s after it ends or fails, and the server's `reset` then reloads.
import { useEffect, useRef } from 'preact/hooks';
import { authHeaders, type JobEvent } from './api';

export interface LiveHandlers {
  onReset: () => void;
  onJobs?: (events: JobEvent[]) => void;
  onProgress?: (progress: { fraction?: number; message?: string }) => void;
}

const RECONNECT_MS = 2000;

/** Splits SSE text into frames and hands each complete one to `emit`; returns the rest. */
function drain(buffer: string, emit: (event: string, data: string) => void): string {
  let end;
  while ((end = buffer.indexOf('\n\n')) >= 0) {
    const frame = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    let event = 'message';
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length) emit(event, data.join('\n'));
  }
  return buffer;
}

export function useLive(handlers: LiveHandlers, jobId?: string): void {
  const ref = useRef(handlers);
  ref.current = handlers;
  useEffect(() => {
    const url = jobId ? `/api/events?job=${encodeURIComponent(jobId)}` : '/api/events';
    const abort = new AbortController();
    const emit = (event: string, data: string) => {
      if (event === 'reset') ref.current.onReset();
      if (event === 'jobs') ref.current.onJobs?.((JSON.parse(data) as { events?: JobEvent[] }).events ?? []);
      if (event === 'progress') {
        ref.current.onProgress?.((JSON.parse(data) as { progress?: { fraction?: number } }).progress ?? {});
      }
    };
    const follow = async () => {
      while (!abort.signal.aborted) {
        try {
          const response = await fetch(url, { headers: authHeaders(), signal: abort.signal, cache: 'no-store' });
          if (response.ok && response.body) {
            const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
            let buffer = '';
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              buffer = drain(buffer + value.replace(/\r\n/g, '\n'), emit);
            }
          }
        } catch {
          // Aborted, or the connection dropped: the loop decides.
        }
        if (abort.signal.aborted) return;
        await new Promise((resolve) => window.setTimeout(resolve, RECONNECT_MS));
      }
    };
    void follow();
    return () => abort.abort();
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
