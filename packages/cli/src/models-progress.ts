import cliProgress from 'cli-progress';
import { formatBytes, type PullEvent } from '@kiln/models';
import { painter, useColor, type CommandIo } from './terminal.ts';

/** Time source for speeds (replaceable in tests). */
export type Now = () => number;

interface FileTrack {
  readonly key: string;
  readonly startedAt: number;
  readonly startBytes: number;
  bar: cliProgress.SingleBar | undefined;
}

/**
 * Shows a pull on stderr: on a terminal, one bar per file being downloaded (bytes, speed, ETA) and
 * a line per finished file; elsewhere (CI, pipes, tests) plain lines only: what each model
 * resolved to, each finished file with its speed, and waits for another process's lock.
 */
export class PullProgress {
  readonly #io: CommandIo;
  readonly #now: Now;
  readonly #bars: cliProgress.MultiBar | undefined;
  readonly #files = new Map<string, FileTrack>();
  readonly #paint: ReturnType<typeof painter>;

  constructor(io: CommandIo, now: Now = () => performance.now()) {
    this.#io = io;
    this.#now = now;
    this.#paint = painter(useColor(io.stderr, io.env));
    if (io.stderr.isTTY === true) {
      this.#bars = new cliProgress.MultiBar({
        stream: io.stderr as NodeJS.WritableStream,
        hideCursor: true,
        clearOnComplete: true,
        autopadding: true,
        barsize: 24,
        format: (options, params, payload: { label: string; start: number }) => {
          const size = options.barsize ?? 24;
          const done = Math.round(params.progress * size);
          const elapsed = Math.max(0.001, (Date.now() - params.startTime) / 1000);
          const speed = (params.value - payload.start) / elapsed;
          const eta = speed > 0 ? Math.ceil((params.total - params.value) / speed) : undefined;
          const pct = String(Math.round(params.progress * 100)).padStart(3);
          return `${'█'.repeat(done)}${'░'.repeat(size - done)} ${pct}% ${formatBytes(params.value)}/${formatBytes(params.total)} ${formatBytes(speed)}/s${eta === undefined ? '' : ` ETA ${eta}s`}  ${payload.label}`;
        },
      });
    }
  }

  /** Feed for `ModelStore.pull({ onEvent })`. */
  readonly onEvent = (event: PullEvent): void => {
    if (event.type === 'waiting') return this.#line(`${event.model}: another process is writing it on this volume; waiting for its lock`);
    if (event.type === 'resolved') {
      const at = event.revision === undefined ? '' : ` at ${event.revision.slice(0, 12)}`;
      const what = event.download === 0 ? 'all present' : `${event.download} to download${event.bytes === undefined ? '' : ` (${formatBytes(event.bytes)})`}`;
      return this.#line(`${event.model}: ${event.files} file${event.files === 1 ? '' : 's'}${at}, ${what}`);
    }
    const key = `${event.model}/${event.path}`;
    if (event.phase === 'checking') return;
    let track = this.#files.get(key);
    if (track === undefined) {
      track = { key, startedAt: this.#now(), startBytes: event.bytes, bar: undefined };
      this.#files.set(key, track);
    }
    if (event.phase === 'downloading') {
      if (this.#bars !== undefined && event.total !== undefined) {
        track.bar ??= this.#bars.create(event.total, event.bytes, { label: key, start: event.bytes });
        track.bar.update(event.bytes);
      }
      return;
    }
    // done
    const seconds = Math.max(0.001, (this.#now() - track.startedAt) / 1000);
    const fetched = event.bytes - event.resumedFrom;
    this.#files.delete(key);
    const resumed = event.resumedFrom > 0 ? `, resumed at ${formatBytes(event.resumedFrom)}` : '';
    this.#line(`${this.#paint('green', '✓')} ${key}  ${formatBytes(event.bytes)}  ${formatBytes(fetched / seconds)}/s${resumed}`);
    // After the line: removing a bar redraws, which is when cli-progress writes logged lines.
    if (track.bar !== undefined) this.#bars?.remove(track.bar);
  };

  /** Takes the bars off the terminal. */
  stop(): void {
    // Lines logged since the last redraw are written by a redraw, not by stop().
    this.#bars?.update();
    this.#bars?.stop();
  }

  #line(text: string): void {
    if (this.#bars !== undefined) this.#bars.log(`${text}\n`);
    else this.#io.stderr.write(`${text}\n`);
  }
}
