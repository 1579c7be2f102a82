// Child processes for cross-package tests: the `kiln` command started as a user starts it, and any
// command run to its end with its output collected. Every child started here is killed by
// `killStartedChildren()` (register it with `after`), so a failing test leaves nothing running.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The `kiln` command of this checkout. */
export const KILN_BIN = path.join(ROOT, 'packages/cli/bin/kiln.js');
/** Safety net of {@link runToEnd}: every command of these tests ends on its own long before. */
export const CHILD_SAFETY_MS = 60_000;

const started = new Set<ChildProcess>();

/** Spawns `command` with piped output and remembers it for {@link killStartedChildren}. */
export function startChild(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

/** SIGKILLs every child {@link startChild} started that is still running. */
export function killStartedChildren(): void {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** What a finished child printed, and how it ended. */
export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A child's output as it comes (`output()`), and all of it once it closes (`closed`). */
export interface WatchedChild {
  output(): Finished;
  closed: Promise<Finished>;
}

/** Collects `child`'s output; `closed` resolves when it closes (it is SIGKILLed after {@link CHILD_SAFETY_MS}). */
export function watchChild(child: ChildProcess, safetyMs = CHILD_SAFETY_MS): WatchedChild {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const closed = (async () => {
    try {
      const [code] = (await once(child, 'close', { signal: AbortSignal.timeout(safetyMs) })) as [number | null];
      return { code, stdout, stderr };
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  })();
  return { output: () => ({ code: child.exitCode, stdout, stderr }), closed };
}

/** Collects `child`'s output until it closes (SIGKILLed after {@link CHILD_SAFETY_MS}). */
export function runToEnd(child: ChildProcess, safetyMs = CHILD_SAFETY_MS): Promise<Finished> {
  return watchChild(child, safetyMs).closed;
}

/** A running `kiln serve` / `kiln dev`. */
export interface KilnServer {
  child: ChildProcess;
  /** The address it printed (`listening on …`). */
  url: string;
  /** Its stderr so far. */
  stderr(): string;
}

/**
 * Starts `kiln <args>` and resolves once its stderr matches `ready` (default: the `listening on`
 * line), with the URL it printed; rejects if it exits first or after `timeoutMs`.
 */
export async function startKilnServer(options: { args: readonly string[]; cwd: string; env?: NodeJS.ProcessEnv; ready?: RegExp; timeoutMs?: number }): Promise<KilnServer> {
  const { args, cwd, env = process.env, ready = /listening on http/, timeoutMs = 30_000 } = options;
  const child = startChild(process.execPath, [KILN_BIN, ...args], { cwd, env });
  child.stdout!.resume();
  let text = '';
  child.stderr!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kiln ${args.join(' ')}: nothing matched ${ready} within ${timeoutMs} ms:\n${text}`)), timeoutMs);
    child.stderr!.on('data', (chunk: string) => {
      text += chunk;
      if (ready.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kiln ${args.join(' ')} exited with ${code}:\n${text}`));
    });
  });
  const url = /listening on (http:\/\/\S+)/.exec(text)?.[1];
  if (url === undefined) throw new Error(`kiln ${args.join(' ')} printed no address:\n${text}`);
  return { child, url, stderr: () => text };
}

/** SIGTERMs `child` and resolves with its exit code. */
export async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit') as Promise<[number | null]>;
  child.kill('SIGTERM');
  return (await exited)[0];
}
