// Live updates: one stream on /api/events (the console's single Watch on the broker,
// fanned out), never polling. `reset` means "reload what you show" (sent first, after
// a reconnect, and when this page fell behind); `jobs` carries a batch of job events
// (a job page: that job's); `counts` (pages that ask for the counts view) how many
// events a batch held and how many jobs ended in each state, tens of bytes whatever
// the rate; `progress` (job pages only) a running job's latest progress.
//
// The stream is Server-Sent Events read with fetch rather than EventSource, because
// EventSource cannot send the Authorization header that carries the signed-in token.
// It reconnects 2 s after it ends or fails, and the server's `reset` then reloads.
import { useEffect, useRef } from 'preact/hooks';
import { authHeaders, type JobEvent } from './api';

/** A `counts` frame: one Watch batch, counted. */
export interface EventCounts {
  events: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  /** Per queue: [jobs submitted, jobs ended] in the batch. */
  queues?: Record<string, [number, number]>;
}

export interface LiveHandlers {
  onReset: () => void;
  onJobs?: (events: JobEvent[]) => void;
  /** Given: the stream carries counts instead of events (see useLive). */
  onCounts?: (counts: EventCounts) => void;
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

/**
 * Follows the live stream while the component is mounted: one job's events with
 * `jobId`, else counts when `handlers.onCounts` is given, else every event.
 */
export function useLive(handlers: LiveHandlers, jobId?: string): void {
  const ref = useRef(handlers);
  ref.current = handlers;
  const counts = !jobId && handlers.onCounts !== undefined;
  useEffect(() => {
    const url = jobId ? `/api/events?job=${encodeURIComponent(jobId)}` : counts ? '/api/events?view=counts' : '/api/events';
    const abort = new AbortController();
    const emit = (event: string, data: string) => {
      if (event === 'reset') ref.current.onReset();
      if (event === 'jobs') ref.current.onJobs?.((JSON.parse(data) as { events?: JobEvent[] }).events ?? []);
      if (event === 'counts') ref.current.onCounts?.(JSON.parse(data) as EventCounts);
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
  }, [jobId, counts]);
}

/**
 * Calls `fn` at most once per `ms`: at once when it has not run for `ms` (a lone change
 * shows without delay), else once at the end of that interval (a burst of events, or a
 * steady flow of thousands a second, costs one reload per `ms`).
 */
export function useThrottled(fn: () => void, ms: number): () => void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const timer = useRef<number | undefined>(undefined);
  const last = useRef(-Infinity);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  return () => {
    if (timer.current !== undefined) return;
    const wait = last.current + ms - performance.now();
    const run = () => {
      timer.current = undefined;
      last.current = performance.now();
      fnRef.current();
    };
    if (wait <= 0) run();
    else timer.current = window.setTimeout(run, wait);
  };
}
