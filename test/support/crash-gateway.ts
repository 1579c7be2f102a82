// A `kiln serve` gateway as a real child process, so that a test can SIGKILL it: spawned in a
// process group of its own, so that the workers it spawned (same group) can be killed with it
// once they have lost their gateway.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'packages/cli/bin/kiln.js');
const BUILT_CLI = path.join(ROOT, 'packages/cli/dist/main.js');

/** One JSON line the gateway logged on stderr. */
export interface GatewayLogEntry {
  level: string;
  message: string;
  jobId?: string;
  workerId?: string;
  status?: string;
  jobIds?: string[];
}

/** A running `kiln serve`. */
export interface GatewayProcess {
  readonly pid: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Resolves when the gateway process itself has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Signals the gateway process only (its workers are left to themselves). */
  signal(signal: NodeJS.Signals): void;
  /** SIGKILLs the whole process group: the gateway and every worker it spawned, orphaned or not. */
  killGroup(): void;
  /** Whether any process of the group is still alive. */
  groupAlive(): boolean;
  /** Everything the gateway logged so far, parsed (lines that are not JSON are skipped). */
  log(): GatewayLogEntry[];
  /** The raw stderr file. */
  readonly logFile: string;
}

/** A TCP port that was free a moment ago (both runs of a test reuse it, as a restarted gateway would). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/**
 * Starts `node packages/cli/bin/kiln.js serve --config FILE --port PORT` (the built CLI: run
 * `tsc -b` first, as `npm test` does), its stderr in `logFile`, and waits until `/v2/{endpoint}/health` answers.
 */
export async function startGateway(options: {
  configFile: string;
  port: number;
  logFile: string;
  endpoint: string;
  timeoutMs?: number;
}): Promise<GatewayProcess> {
  if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: run \`npx tsc -b\` first (npm test does)`);
  // The config file is the only source of settings: these would override it.
  const env = { ...process.env };
  delete env['KILN_DATABASE_URL'];
  delete env['KILN_API_KEYS'];
  // A file, not a pipe: a busy test process must never block the gateway's synchronous stderr writes.
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [BIN, 'serve', '--config', options.configFile, '--port', String(options.port)], {
      cwd: ROOT,
      env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn the gateway');
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const url = `http://127.0.0.1:${options.port}`;
  const gateway: GatewayProcess = {
    pid,
    url,
    exited,
    logFile: options.logFile,
    signal: (signal) => {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    },
    killGroup: () => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // nothing left in the group
      }
    },
    groupAlive: () => {
      try {
        process.kill(-pid, 0);
        return true;
      } catch {
        return false;
      }
    },
    log: () => parseLog(readFileSync(options.logFile, 'utf8')),
  };

  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    if (gone) throw new Error(`the gateway exited before listening:\n${readFileSync(options.logFile, 'utf8').slice(-2000)}`);
    try {
      const res = await fetch(`${url}/v2/${options.endpoint}/health`);
      await res.arrayBuffer();
      if (res.status === 200) return gateway;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      gateway.killGroup();
      throw new Error(`the gateway did not answer within ${options.timeoutMs ?? 15_000} ms:\n${readFileSync(options.logFile, 'utf8').slice(-2000)}`);
    }
    await delay(50);
  }
}

function parseLog(text: string): GatewayLogEntry[] {
  const entries: GatewayLogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as GatewayLogEntry;
      if (typeof entry.message === 'string') entries.push(entry);
    } catch {
      // a line cut short by SIGKILL
    }
  }
  return entries;
}

/** Runs `fn` over `items` with at most `concurrency` calls in flight; results in input order. */
export async function mapPool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!, index);
    }
  });
  await Promise.all(lanes);
  return results;
}
