/**
 * Child processes of the benchmark: spawned with a clean environment, their output kept (a tail,
 * plus counts of WARN / ERROR log lines), and always killed. A {@link ProcessGroup} tracks every
 * child it spawned so an interrupted run can kill them all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { serverTime } from './clock.ts';

/** How a child ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Server time base (see `clock.ts`) when the `exit` event fired. */
  at: number;
}

/** What a child wrote, kept small. */
export interface ChildOutput {
  /** The last few KB of stdout + stderr. */
  tail: string;
  /** Lines with `"level":"WARN"` / `"level":"ERROR"` (the runtime's JSON log lines). */
  warnLines: number;
  errorLines: number;
}

/** A running child. */
export interface ChildHandle {
  readonly pid: number | undefined;
  /** Server time base just before `spawn()` was called. */
  readonly spawnedAt: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  readonly output: ChildOutput;
  /** SIGKILLs the process if it still runs; resolves once it has exited. */
  kill(): Promise<ChildExit>;
}

const TAIL_CHARS = 4096;

/** Spawns and tracks benchmark children. */
export class ProcessGroup {
  readonly #live = new Set<ChildProcess>();

  /** Spawns `command` with exactly `env` (nothing inherited). */
  spawn(command: string, args: readonly string[], options: { env: Record<string, string>; cwd: string }): ChildHandle {
    const spawnedAt = serverTime();
    const proc = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#live.add(proc);
    const output: ChildOutput = { tail: '', warnLines: 0, errorLines: 0 };
    const collect = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output.warnLines += count(text, '"level":"WARN"');
      output.errorLines += count(text, '"level":"ERROR"');
      output.tail = (output.tail + text).slice(-TAIL_CHARS);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    const exited = new Promise<ChildExit>((resolve) => {
      proc.once('exit', (code, signal) => {
        this.#live.delete(proc);
        resolve({ code, signal, at: serverTime() });
      });
      proc.once('error', (err) => {
        this.#live.delete(proc);
        output.tail += `\nspawn failed: ${err.message}`;
        resolve({ code: null, signal: null, at: serverTime() });
      });
    });
    return {
      pid: proc.pid,
      spawnedAt,
      exited,
      output,
      kill() {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        return exited;
      },
    };
  }

  /** SIGKILLs every child still running (for an interrupted run). */
  killAll(): void {
    for (const proc of this.#live) proc.kill('SIGKILL');
  }
}

/**
 * CPU time (user + system) a process has used so far, in ms, from `/proc/<pid>/stat` (Linux; 10 ms
 * ticks). Undefined when it cannot be read.
 */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at state = field 3; utime, stime are fields 14, 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

/** Rejects with the child's output tail when it exits before `work` settles. */
export async function unlessChildExits<T>(child: ChildHandle, work: Promise<T>, what: string): Promise<T> {
  // The losing branch must not surface as an unhandled rejection.
  work.catch(() => {});
  const died = child.exited.then((exit): never => {
    throw new Error(`${what}: child exited early (code ${exit.code}, signal ${exit.signal})\n${child.output.tail}`);
  });
  died.catch(() => {});
  return Promise.race([work, died]);
}

function count(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}
