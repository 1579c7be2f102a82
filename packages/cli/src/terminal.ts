import { styleText } from 'node:util';
import cliProgress from 'cli-progress';

/** Where a command writes: `process.stdout`/`process.stderr`, or stand-ins in tests. */
export interface OutputStream {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
}

/** A command's outputs and environment. */
export interface CommandIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
}

type Style = Parameters<typeof styleText>[0];

/** Colours only for a terminal, and never when `NO_COLOR` is set to anything but the empty string (no-color.org). */
export function useColor(stream: OutputStream, env: Readonly<Record<string, string | undefined>>): boolean {
  const noColor = env['NO_COLOR'];
  return stream.isTTY === true && (noColor === undefined || noColor === '');
}

/**
 * `styleText` when `color`, the text as is otherwise. `color` decides alone: styleText's own check
 * looks at stdout, which is the wrong stream for what goes to stderr.
 */
export function painter(color: boolean): (style: Style, text: string) => string {
  return (style, text) => (color ? styleText(style, text, { validateStream: false }) : text);
}

/** The colour of a job status in tables. */
export function statusStyle(status: string): Style {
  switch (status) {
    case 'COMPLETED':
      return 'green';
    case 'FAILED':
    case 'TIMED_OUT':
      return 'red';
    case 'CANCELLED':
      return 'yellow';
    case 'IN_PROGRESS':
      return 'cyan';
    default:
      return 'gray';
  }
}

/** A table cell: its text, and an optional style applied after padding (so colours do not upset the widths). */
export type Cell = string | { text: string; style?: Style };

/**
 * Rows under a header, columns padded to their widest cell, separated by two spaces; the last
 * column is not padded.
 *
 * @example
 * formatTable(['ID', 'STATUS'], [['abc', { text: 'COMPLETED', style: 'green' }]], painter(false));
 */
export function formatTable(header: readonly string[], rows: readonly (readonly Cell[])[], paint: (style: Style, text: string) => string): string {
  const text = (cell: Cell) => (typeof cell === 'string' ? cell : cell.text);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => text(row[i] ?? '').length)));
  const line = (cells: readonly Cell[], headerRow: boolean) =>
    cells
      .map((cell, i) => {
        const padded = i === cells.length - 1 ? text(cell) : text(cell).padEnd(widths[i]!);
        if (headerRow) return paint('bold', padded);
        return typeof cell === 'string' || cell.style === undefined ? padded : paint(cell.style, padded);
      })
      .join('  ')
      .trimEnd();
  return [line(header, true), ...rows.map((row) => line(row, false))].join('\n') + '\n';
}

/** `850 ms`, `2.5 s`, `3 min 20 s`; `-` when unknown. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Local date and time, to the second: `2026-05-01 14:03:07`. */
export function formatTime(epochMs: number | null | undefined): string {
  if (epochMs === null || epochMs === undefined) return '-';
  const d = new Date(epochMs);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${formatClock(epochMs).slice(0, 8)}`;
}

/** Local time of day, to the millisecond: `14:03:07.215`. */
export function formatClock(epochMs: number): string {
  const d = new Date(epochMs);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** A worker's JSON log line, as @kiln/worker and runpod-python write them. */
export interface JsonLogLine {
  /** `level`, `INFO` when the line has none. */
  readonly level: string;
  readonly message: string;
  /** `requestId`: the job the line is about, when the line says. */
  readonly jobId: string | undefined;
}

/**
 * Reads a worker log line written as JSON with a string `message`; undefined for any other line
 * (plain text, or JSON of another shape), which is then shown as it is.
 *
 * @example
 * parseJsonLogLine('{"level":"WARN","message":"slow","requestId":"j1"}'); // { level: 'WARN', message: 'slow', jobId: 'j1' }
 */
export function parseJsonLogLine(text: string): JsonLogLine | undefined {
  if (!text.startsWith('{')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { level, message, requestId } = parsed as Record<string, unknown>;
  if (typeof message !== 'string') return undefined;
  return { level: typeof level === 'string' ? level : 'INFO', message, jobId: typeof requestId === 'string' ? requestId : undefined };
}

/** Cuts `text` to `max` characters, marking the cut with `…`; line breaks become spaces. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s*\n\s*/g, ' ');
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * How far along a progress update says the job is, from 0 to 1, when it says so in a common way:
 * a number (0–1, or a percentage up to 100), a string holding `NN%`, or an object with
 * `step`/`of`, `current`/`total`, `completed`/`total`, `done`/`total`, `percent`/`percentage`, or `progress`.
 * Undefined when it does not (progress values are whatever the worker sends).
 *
 * @example
 * progressFraction({ step: 1, of: 4 }); // 0.25
 */
export function progressFraction(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
    if (value <= 1) return value;
    if (value <= 100) return value / 100;
    return undefined;
  }
  if (typeof value === 'string') {
    const m = /(\d+(?:\.\d+)?)\s*%/.exec(value);
    return m ? clamp01(Number(m[1]) / 100) : undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const obj = value as Record<string, unknown>;
  for (const [part, whole] of [
    ['step', 'of'],
    ['current', 'total'],
    ['completed', 'total'],
    ['done', 'total'],
  ] as const) {
    const a = obj[part];
    const b = obj[whole];
    if (typeof a === 'number' && typeof b === 'number' && b > 0) return clamp01(a / b);
  }
  for (const key of ['percent', 'percentage']) {
    const p = obj[key];
    if (typeof p === 'number' && Number.isFinite(p)) return clamp01(p / 100);
  }
  if ('progress' in obj && obj['progress'] !== value) return progressFraction(obj['progress']);
  return undefined;
}

function clamp01(n: number): number {
  return Math.min(1, Math.max(0, n));
}

/** A progress value as one short line: strings as they are, anything else as compact JSON. */
function progressLabel(value: unknown, max = 60): string {
  return truncate(typeof value === 'string' ? value : JSON.stringify(value) ?? String(value), max);
}

/**
 * Shows progress updates on stderr: a redrawn bar on a terminal (cli-progress), one
 * `progress NN% label` line per update otherwise. `clear()` before writing anything else to
 * the terminal, so the bar does not end up mixed into it; it is drawn again on the next update.
 */
export class ProgressDisplay {
  readonly #stream: OutputStream;
  readonly #bar: cliProgress.SingleBar | undefined;
  #active = false;

  constructor(stream: OutputStream) {
    this.#stream = stream;
    if (stream.isTTY === true) {
      this.#bar = new cliProgress.SingleBar({
        stream: stream as NodeJS.WritableStream,
        format: (options, params, payload: { label?: string; known?: boolean }) => {
          const size = options.barsize ?? 30;
          const done = Math.round(params.progress * size);
          const bar = payload.known ? `${'█'.repeat(done)}${'░'.repeat(size - done)} ${String(Math.round(params.progress * 100)).padStart(3)}%` : '…';
          return `${bar} ${payload.label ?? ''}`;
        },
        hideCursor: true,
        clearOnComplete: true,
        barsize: 30,
      });
    }
  }

  /** Shows `value`, the job's latest progress update. */
  update(value: unknown): void {
    const fraction = progressFraction(value);
    const label = progressLabel(value, Math.max(20, (this.#stream.columns ?? 80) - 40));
    if (!this.#bar) {
      this.#stream.write(`progress ${fraction === undefined ? '' : `${Math.round(fraction * 100)}% `}${label}\n`);
      return;
    }
    const payload = { label, known: fraction !== undefined };
    if (!this.#active) {
      this.#bar.start(100, (fraction ?? 0) * 100, payload);
      this.#active = true;
    } else {
      this.#bar.update((fraction ?? 0) * 100, payload);
    }
  }

  /** Takes the bar off the terminal (it comes back on the next update). */
  clear(): void {
    if (!this.#bar || !this.#active) return;
    this.#bar.stop();
    this.#active = false;
  }
}
