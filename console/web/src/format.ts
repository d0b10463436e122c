// Formatting for people: ages, times and durations from proto3 JSON values.

/** "1.5s" (a proto3 JSON Duration) in seconds. */
export const durationSeconds = (d: string | undefined): number => (d ? parseFloat(d) : 0);

export function age(seconds: number): string {
  if (!isFinite(seconds) || seconds < 0) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

export function time(t: string | undefined): string {
  if (!t) return '—';
  const d = new Date(t);
  return isNaN(d.getTime()) ? t : d.toLocaleString();
}

export function since(t: string | undefined, now = Date.now()): string {
  if (!t) return '—';
  return `${age((now - new Date(t).getTime()) / 1000)} ago`;
}
