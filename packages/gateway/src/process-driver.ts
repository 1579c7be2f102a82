import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { Clock } from '@kiln/protocol';

/** Variables copied from the gateway's own environment into a worker's, when present. */
export const DEFAULT_INHERITED_ENV: readonly string[] = Object.freeze([
  'PATH',
  'HOME',
  'LANG',
  'TZ',
  'NODE_OPTIONS',
  'PYTHONPATH',
  'VIRTUAL_ENV',
  'CUDA_VISIBLE_DEVICES',
]);

/** Longest captured log line, in characters; longer lines are cut and marked. */
export const MAX_LOG_LINE_CHARS = 16 * 1024;

const TRUNCATED_MARKER = ' …[truncated]';

/**
 * After a worker exits, how long to wait for its stdout/stderr to close. A grandchild that
 * inherited the pipes can hold them open forever; this is an I/O safety net, not policy, so it
 * uses a real timer rather than the injected clock.
 */
const STDIO_CLOSE_GRACE_MS = 2000;

/** What to run for one worker. */
export interface WorkerSpec {
  endpoint: string;
  workerId: string;
  /** E.g. `node dist/worker.js` or `python3 handler.py`: split on whitespace, honouring simple double and single quotes; no shell. */
  command: string;
  cwd: string;
  /** The RUNPOD_* variables and the endpoint's env; these win over inherited ones. */
  env: Record<string, string>;
  /** Names copied from the gateway's own environment when present. Default {@link DEFAULT_INHERITED_ENV}; never the whole environment. */
  inheritEnv?: readonly string[];
  /** `CUDA_VISIBLE_DEVICES` for this worker (the caller decides assignments); set when given. */
  gpus?: string;
}

/** How a worker process ended. */
export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running (or finished) worker process. */
export interface WorkerProcess {
  readonly workerId: string;
  /** Undefined when the process could not be spawned. */
  readonly pid: number | undefined;
  /** Resolves once the process has exited and its output has been captured. Never rejects. */
  readonly exited: Promise<WorkerExit>;
  /** Sends SIGTERM, then SIGKILL after `graceMs` (on the clock); resolves on exit. */
  stop(graceMs: number): Promise<void>;
  /** Sends SIGKILL now. */
  kill(): void;
}

/** One line a worker wrote to stdout or stderr. */
export interface WorkerLogLine {
  workerId: string;
  endpoint: string;
  stream: 'stdout' | 'stderr';
  line: string;
  time: number;
  /** `requestId` of a JSON log line (how @kiln/worker and runpod-python log), else null. */
  jobId: string | null;
}

/** What a {@link ProcessDriver} needs. */
export interface ProcessDriverOptions {
  clock: Clock;
  onLog: (line: WorkerLogLine) => void;
}

/**
 * Splits a command line into argv: whitespace separates words, and `"…"` or `'…'` group
 * characters literally (no escapes, no expansion). Throws on an unterminated quote.
 *
 * @example
 * splitCommand(`python3 -c 'print("hi")'`); // ['python3', '-c', 'print("hi")']
 */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (const ch of command) {
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} quote in command: ${command}`);
  if (inWord) words.push(word);
  return words;
}

/**
 * Turns "start a worker" into a child process: spawned without a shell, with only the given
 * environment plus an allow-list from the gateway's own (a minimal env also keeps variables such
 * as NODE_EXTRA_CA_CERTS from slowing Node workers), its stdout/stderr captured line by line.
 *
 * @example
 * const driver = new ProcessDriver({ clock: realClock, onLog: (l) => console.log(l.workerId, l.line) });
 * const worker = driver.start({ endpoint: 'echo', workerId: 'echo-1', command: 'node dist/worker.js', cwd, env });
 * await worker.stop(10_000);
 */
export class ProcessDriver {
  readonly #clock: Clock;
  readonly #onLog: (line: WorkerLogLine) => void;
  readonly #live = new Set<WorkerProcess>();

  constructor(options: ProcessDriverOptions) {
    this.#clock = options.clock;
    this.#onLog = options.onLog;
  }

  /** Spawns the worker. Never throws: a spawn failure is reported as an exit (code 127 when not found) and a stderr log line. */
  start(spec: WorkerSpec): WorkerProcess {
    const log = (stream: 'stdout' | 'stderr', line: string) => {
      this.#onLog({ workerId: spec.workerId, endpoint: spec.endpoint, stream, line, time: this.#clock.now(), jobId: jobIdOf(line) });
    };
    const proc = spawnWorker(spec, this.#clock, log);
    this.#live.add(proc);
    void proc.exited.then(() => this.#live.delete(proc));
    return proc;
  }

  /** Stops every worker this driver started that is still running (see {@link WorkerProcess.stop}). */
  async stopAll(graceMs: number): Promise<void> {
    await Promise.all([...this.#live].map((p) => p.stop(graceMs)));
  }
}

/**
 * A worker's whole environment: the allow-listed variables of the gateway's own environment, then
 * `spec.env`, then `CUDA_VISIBLE_DEVICES` when `spec.gpus` is set.
 */
export function workerEnv(spec: Pick<WorkerSpec, 'env' | 'inheritEnv' | 'gpus'>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of spec.inheritEnv ?? DEFAULT_INHERITED_ENV) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, spec.env);
  if (spec.gpus !== undefined) env['CUDA_VISIBLE_DEVICES'] = spec.gpus;
  return env;
}

function spawnWorker(spec: WorkerSpec, clock: Clock, log: (stream: 'stdout' | 'stderr', line: string) => void): WorkerProcess {
  let resolveExit!: (exit: WorkerExit) => void;
  const exited = new Promise<WorkerExit>((resolve) => (resolveExit = resolve));
  let settled = false;
  const settle = (exit: WorkerExit) => {
    if (settled) return;
    settled = true;
    resolveExit(exit);
  };
  const failed = (err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    let message = err instanceof Error ? err.message : String(err);
    // Node reports a missing cwd as the command not being found.
    if (code === 'ENOENT') message += existsSync(spec.cwd) ? ' (command not found)' : ' (the working directory does not exist)';
    log('stderr', `kiln: could not start worker ${spec.workerId} (command ${JSON.stringify(spec.command)} in ${spec.cwd}): ${message}`);
    settle({ code: code === 'ENOENT' ? 127 : code === 'EACCES' ? 126 : null, signal: null });
  };

  let child: ChildProcess | undefined;
  try {
    const [file, ...args] = splitCommand(spec.command);
    if (file === undefined) throw new Error('empty command');
    child = spawn(file, args, { cwd: spec.cwd, env: workerEnv(spec), stdio: ['ignore', 'pipe', 'pipe'], shell: false });
  } catch (err) {
    failed(err);
  }

  if (child) {
    const c = child;
    const stdout = captureLines(c.stdout!, (line) => log('stdout', line));
    const stderr = captureLines(c.stderr!, (line) => log('stderr', line));
    let exit: WorkerExit | undefined;
    let stdioTimer: NodeJS.Timeout | undefined;
    const finish = (how: WorkerExit) => {
      clearTimeout(stdioTimer);
      stdout.finish();
      stderr.finish();
      settle(how);
    };
    c.on('error', (err) => {
      // After a successful spawn, 'error' only reports a failed kill(); the exit still follows.
      if (c.pid === undefined) failed(err);
    });
    c.on('exit', (code, signal) => {
      const how = { code, signal };
      exit = how;
      stdioTimer = setTimeout(() => finish(how), STDIO_CLOSE_GRACE_MS).unref();
    });
    c.on('close', (code, signal) => finish(exit ?? { code, signal }));
  }

  let stopping: Promise<void> | undefined;
  return {
    workerId: spec.workerId,
    pid: child?.pid,
    exited,
    kill() {
      if (!settled) child?.kill('SIGKILL');
    },
    stop(graceMs) {
      if (settled || !child) return exited.then(() => {});
      stopping ??= (async () => {
        const c = child;
        c.kill('SIGTERM');
        const done = new AbortController();
        void exited.then(() => done.abort());
        await clock.sleep(graceMs, done.signal);
        if (!settled) c.kill('SIGKILL');
        await exited;
      })();
      return stopping;
    },
  };
}

/** Splits a stream into lines (partial lines across chunks, UTF-8 split across chunks, CRLF, over-long lines). */
function captureLines(stream: Readable, emit: (line: string) => void): { finish(): void } {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  // Set once an over-long line has been emitted (cut): the rest of it, up to its newline, is dropped.
  let dropping = false;
  let finished = false;

  const emitLine = (line: string) => emit(line.endsWith('\r') ? line.slice(0, -1) : line);
  const cut = (line: string) => {
    let end = MAX_LOG_LINE_CHARS - TRUNCATED_MARKER.length;
    // Do not split a surrogate pair.
    const code = line.charCodeAt(end - 1);
    if (code >= 0xd800 && code <= 0xdbff) end -= 1;
    return line.slice(0, end) + TRUNCATED_MARKER;
  };
  const push = (text: string) => {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const piece = text.slice(start, nl);
      start = nl + 1;
      if (dropping) {
        dropping = false;
        partial = '';
        continue;
      }
      const line = partial + piece;
      partial = '';
      emitLine(line.length > MAX_LOG_LINE_CHARS ? cut(line) : line);
    }
    if (dropping) return;
    partial += text.slice(start);
    if (partial.length > MAX_LOG_LINE_CHARS) {
      emit(cut(partial));
      partial = '';
      dropping = true;
    }
  };

  stream.on('data', (chunk: Buffer) => {
    if (!finished) push(decoder.write(chunk));
  });
  stream.on('error', () => {
    // A broken pipe after the child died: whatever was read has been captured.
  });
  return {
    finish() {
      if (finished) return;
      push(decoder.end());
      if (partial.length > 0 && !dropping) emitLine(partial);
      partial = '';
      finished = true;
      stream.destroy();
    },
  };
}

/**
 * The `setupMs` of a worker's `setup finished` JSON log line (how `@kiln/worker` reports its
 * setup time: `{"requestId":null,"level":"INFO","message":"setup finished","setupMs":812}`), else null.
 *
 * @example
 * setupMsOf('{"requestId":null,"level":"INFO","message":"setup finished","setupMs":812}'); // 812
 */
export function setupMsOf(line: string): number | null {
  // Cheap test first: this runs on every captured line.
  if (!line.includes('setup finished') || !line.trimStart().startsWith('{')) return null;
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
    const { message, setupMs } = value as { message?: unknown; setupMs?: unknown };
    return message === 'setup finished' && typeof setupMs === 'number' && Number.isFinite(setupMs) && setupMs >= 0 ? setupMs : null;
  } catch {
    return null;
  }
}

function jobIdOf(line: string): string | null {
  if (!line.trimStart().startsWith('{')) return null;
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const requestId = (value as { requestId?: unknown }).requestId;
      if (typeof requestId === 'string') return requestId;
    }
  } catch {
    // Not JSON: a plain log line.
  }
  return null;
}
