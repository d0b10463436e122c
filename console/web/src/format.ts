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

/**
 * `t` as a wall-clock time in the IANA `zone` with the zone's abbreviation ("Dec 6, 2026,
 * 02:00 AM GMT+1"): a schedule's fire times read as its cron expression means them. An
 * unknown zone falls back to the browser's own.
 */
export function zoned(t: string | undefined, zone: string): string {
  if (!t) return '—';
  const d = new Date(t);
  if (isNaN(d.getTime())) return t;
  try {
    return new Intl.DateTimeFormat(undefined, { timeZone: zone, year: 'numeric', month: 'short', day: 'numeric',
      hour: '2-digit', minute: '2-digit', timeZoneName: 'short' }).format(d);
  } catch {
    return d.toLocaleString();
  }
}
