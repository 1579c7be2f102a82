// SIGTERM in production mode: a real worker process (the echo example, started as its own main module)
// against the loopback RunPod job server. The first SIGTERM stops the take loop and lets the job in
// flight finish and be reported; a second one gives up on that job, which is then not reported at all
// (RunPod requeues it). Either way the process exits 0.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LoopbackJobServer, type QueuedJob } from './testing/loopback-job-server.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ECHO_TS = path.join(ROOT, 'examples/echo/src/worker.ts');
/** Safety net only: every wait below ends on an event long before this. */
const SAFETY_MS = 20_000;

type LogLine = Record<string, unknown>;

interface WorkerProcess {
  child: ChildProcessWithoutNullStreams;
  /** The worker's JSON log lines (stdout in production mode), parsed. */
  logs: LogLine[];
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** Resolves with the first log line matching `message`; rejects if the process exits first. */
  waitForLog(message: RegExp): Promise<LogLine>;
  stderr(): string;
}

/** Spawns the echo worker in production mode against `server`, as `node worker.ts` with the RunPod environment. */
function startWorker(server: LoopbackJobServer, workerId: string): WorkerProcess {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Under node --test this is set, and defineWorker would then not start the worker by itself.
  for (const key of Object.keys(env)) if (key.startsWith('RUNPOD_')) delete env[key];
  Object.assign(env, server.workerEnv(workerId, { pingIntervalMs: 1000 }));
  const child = spawn(process.execPath, ['--conditions=kiln-source', '--import', 'tsx', ECHO_TS], { cwd: ROOT, env, stdio: 'pipe' });
  child.stdin.end();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const logs: LogLine[] = [];
  const listeners = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      logs.push({ message: line });
    }
    for (const listener of [...listeners]) listener();
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return {
    child,
    logs,
    exited,
    stderr: () => stderr,
    waitForLog(message) {
      const what = `a log line matching ${message}`;
      return within(
        new Promise<LogLine>((resolve, reject) => {
          const check = () => {
            const found = logs.find((l) => message.test(String(l['message'])));
            if (!found) return;
            listeners.delete(check);
            resolve(found);
          };
          listeners.add(check);
          check();
          void exited.then(([code, signal]) => reject(new Error(`worker exited (${code ?? signal}) before ${what}; stderr:\n${stderr}`)));
        }),
        what,
      );
    },
  };
}

/** Awaits `promise`, failing instead of hanging if it never settles. */
async function within<T>(promise: Promise<T>, what: string, ms = SAFETY_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Starts a server and a worker, runs `fn`, then kills the worker if still alive and closes the server. */
async function withWorker(fn: (server: LoopbackJobServer, worker: WorkerProcess) => Promise<void>): Promise<void> {
  const server = new LoopbackJobServer();
  await server.start();
  let worker: WorkerProcess | undefined;
  try {
    worker = startWorker(server, 'w-1');
    await fn(server, worker);
  } finally {
    if (worker && worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
    await server.stop();
  }
}

function takenJobIds(server: LoopbackJobServer): string[] {
  return server
    .on('take')
    .filter((r) => r.status === 200)
    .map((r) => (r.response as QueuedJob).id);
}

test('SIGTERM while a job runs: the job finishes and its result is posted, no job is taken afterwards, and the process exits 0', async () => {
  await withWorker(async (server, worker) => {
    server.enqueue({ id: 'job-1', input: { message: 'finish me', sleepMs: 1500 } });
    await server.waitFor(() => takenJobIds(server).includes('job-1'), SAFETY_MS, 'job-1 to be taken');

    const signalledAt = now();
    worker.child.kill('SIGTERM');
    await worker.waitForLog(/^SIGTERM: taking no more jobs/);
    server.enqueue({ id: 'job-2', input: { message: 'must stay queued' } });

    const result = await server.waitForResult('job-1', SAFETY_MS);
    assert.equal(result.isStream, false);
    const body = result.body as { output?: { message?: string; workerId?: string }; error?: string };
    assert.equal(body.error, undefined);
    assert.equal(body.output?.message, 'finish me');
    assert.equal(body.output?.workerId, 'w-1');

    const [code, signal] = await within(worker.exited, 'the worker to exit');
    assert.equal(signal, null, worker.stderr());
    assert.equal(code, 0, worker.stderr());
    assert.deepEqual(
      server.on('take').filter((r) => r.t >= signalledAt),
      [],
      'no job-take after SIGTERM',
    );
    assert.equal(server.queued, 1, 'job-2 is still queued for another worker');
    assert.equal(server.result('job-2'), undefined);
    assert.deepEqual(takenJobIds(server), ['job-1']);
  });
});

test('a second SIGTERM during the drain aborts the job in flight: no job-done is posted for it, and the process still exits 0', async () => {
  await withWorker(async (server, worker) => {
    server.enqueue({ id: 'job-1', input: { message: 'abandon me', sleepMs: 60_000 } });
    await server.waitFor(() => takenJobIds(server).includes('job-1'), SAFETY_MS, 'job-1 to be taken');

    worker.child.kill('SIGTERM');
    // Signals do not queue: wait until the first was handled before sending the second.
    await worker.waitForLog(/^SIGTERM: taking no more jobs/);
    worker.child.kill('SIGTERM');
    await worker.waitForLog(/^SIGTERM again: aborting in-flight jobs/);

    const [code, signal] = await within(worker.exited, 'the worker to exit');
    assert.equal(signal, null, worker.stderr());
    assert.equal(code, 0, worker.stderr());
    assert.deepEqual(server.on('done'), [], 'nothing was posted to job-done: the platform requeues the job');
    assert.equal(server.result('job-1'), undefined);
    assert.ok(
      worker.logs.some((l) => l['requestId'] === 'job-1' && /job abandoned \(shutdown\)/.test(String(l['message']))),
      'the worker logs that it abandoned the job',
    );
  });
});
