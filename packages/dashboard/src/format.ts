// Formatting of durations, sizes, times and job errors for display. Pure: no DOM.

/** `1234` → `1.23 s`, `65000` → `1 m 5 s`, null → `—`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} m ${s % 60} s`;
  const h = Math.floor(s / 3600);
  if (h < 48) return `${h} h ${Math.floor((s % 3600) / 60)} m`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** `1536` → `1.5 KB`, null → `—`. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** Epoch ms → `14:03:27` (today) or `2026-11-23 14:03:27`, in local time. */
export function formatTime(epochMs: number | null | undefined, now: number = Date.now()): string {
  if (epochMs === null || epochMs === undefined || !Number.isFinite(epochMs)) return '—';
  const d = new Date(epochMs);
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date(now);
  if (d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** Epoch ms → `5 s ago`, `3 m ago`. */
export function formatAgo(epochMs: number | null | undefined, now: number = Date.now()): string {
  if (epochMs === null || epochMs === undefined || !Number.isFinite(epochMs)) return '—';
  const ms = Math.max(0, now - epochMs);
  if (ms < 1000) return 'just now';
  return `${formatDuration(ms).replace(/\.\d+ s$/, ' s')} ago`;
}

/** A job's `error` made readable: RunPod's JSON `{ error_message, error_traceback, … }` or a plain string. */
export interface JobErrorView {
  message: string;
  traceback: string | null;
  /** Other fields of a JSON error (error_type, hostname …). */
  extra: Record<string, unknown>;
}

export function parseJobError(error: unknown): JobErrorView | null {
  if (error === null || error === undefined || error === '') return null;
  let value: unknown = error;
  if (typeof error === 'string') {
    const trimmed = error.trim();
    if (!trimmed.startsWith('{')) return { message: error, traceback: null, extra: {} };
    try {
      value = JSON.parse(trimmed);
    } catch {
      return { message: error, traceback: null, extra: {} };
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { message: String(error), traceback: null, extra: {} };
  const record = { ...(value as Record<string, unknown>) };
  const messageValue = record['error_message'] ?? record['message'] ?? record['error'];
  const tracebackValue = record['error_traceback'] ?? record['traceback'] ?? record['stack'];
  delete record['error_message'];
  delete record['message'];
  delete record['error'];
  delete record['error_traceback'];
  delete record['traceback'];
  delete record['stack'];
  const message = typeof messageValue === 'string' ? messageValue : messageValue === undefined ? String(error) : JSON.stringify(messageValue);
  const traceback = typeof tracebackValue === 'string' && tracebackValue !== '' ? tracebackValue : null;
  return { message, traceback, extra: record };
}

/** JSON for display: long strings (base64 payloads) shortened so a page never holds megabytes of text. */
export function displayJson(value: unknown, maxString = 300, indent = 2): string {
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' && v.length > maxString ? `${v.slice(0, 120)}… (${v.length} chars)` : v), indent);
  } catch {
    return String(value);
  }
}
