// `kiln run`, `kiln jobs ls|status|cancel|retry` and `kiln logs` as child processes (the CLI's
// TypeScript sources through tsx) against a real gateway with a real echo worker: stdout, stderr
// and exit codes as a user or a script sees them. Their stdout is a pipe, so no colour is expected.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { kiln } from '@kiln/client';
import type { KilnEndpoint } from '@kiln/client';
import { Gateway, parseConfig } from '@kiln/gateway';
import { killStartedChildren, startChild, watchChild, type Finished, type WatchedChild } from './support/child-process.ts';
import { ECHO_DIR, ECHO_SOURCE_COMMAND } from './support/echo-worker.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = pathToFileURL(path.join(ROOT, 'packages/cli/src/main.ts')).href;
const ENTRY = `import { main } from ${JSON.stringify(MAIN)}; process.exitCode = await main(process.argv.slice(1));`;
const API_KEY = 'cli-key';
const ANSI = /\u001b\[/;

let gateway: Gateway;
let dir: string;
let echo: KilnEndpoint;

function startKiln(args: string[], env: NodeJS.ProcessEnv = {}): WatchedChild & { child: ChildProcess } {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, KILN_URL: gateway.url, KILN_API_KEY: API_KEY, ...env };
  delete childEnv['NO_COLOR'];
  delete childEnv['FORCE_COLOR'];
  const child = startChild(process.execPath, ['--conditions=kiln-source', '--import', 'tsx', '--input-type=module', '-e', ENTRY, '--', ...args], { cwd: ROOT, env: childEnv });
  return { child, ...watchChild(child) };
}

async function kilnCli(args: string[], env?: NodeJS.ProcessEnv): Promise<Finished> {
  const result = await startKiln(args, env).closed;
  assert.doesNotMatch(result.stdout + result.stderr, ANSI, 'no colour codes when stdout is not a terminal');
  return result;
}

/** Resolves once `read()` satisfies `ready`; the deadline is a safety net. */
async function until<T>(read: () => T | Promise<T>, ready: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (ready(value)) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await delay(25);
  }
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-cli-jobs-'));
  const config = parseConfig(
    {
      endpoints: { echo: { worker: { command: ECHO_SOURCE_COMMAND, cwd: ECHO_DIR }, workersMin: 1, workersMax: 2, idleTimeout: 60 } },
      gateway: { port: 0, apiKeys: [API_KEY], pingIntervalMs: 1000, pingTimeoutMs: 5000, stopGraceMs: 2000 },
    },
    { baseDir: dir, env: {} },
  );
  gateway = new Gateway(config, { tickMs: 100, log: { info() {}, warn() {}, error() {} } });
  await gateway.start();
  echo = kiln({ baseUrl: `${gateway.url}/v2`, apiKey: API_KEY }).endpoint('echo');
  await until(() => echo.health(), (h) => h.workers.idle >= 1, 'the echo worker');
});

after(async () => {
  killStartedChildren();
  await gateway?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('kiln run: progress lines on stderr, the output as JSON on stdout, exit 0 when COMPLETED', async () => {
  const { code, stdout, stderr } = await kilnCli(['run', 'echo', '--input', '{"message":"hello cli","sleepMs":1200,"progressSteps":3}']);
  assert.equal(code, 0, stderr);
  assert.equal((JSON.parse(stdout) as { message: string }).message, 'hello cli');
  assert.match(stderr, /^job \S+-u1 submitted to echo$/m);
  assert.match(stderr, /^progress \d+% \{"step":[123],"of":3\}$/m, 'progress updates, with their percentage');
  assert.match(stderr, /^COMPLETED \(delay \d+ ms, execution [\d.]+ s\)$/m);
});

test('kiln run: stream chunks are printed as they arrive, one JSON line each, and no empty output after them', async () => {
  const { code, stdout } = await kilnCli(['run', 'echo', '--input', '{"message":"alpha beta gamma","stream":true,"sleepMs":600}']);
  assert.equal(code, 0);
  assert.equal(stdout, '{"word":"alpha"}\n{"word":"beta"}\n{"word":"gamma"}\n');
});

test('kiln run --json: one {"chunk"} line per chunk, then the final status object', async () => {
  const { code, stdout, stderr } = await kilnCli(['run', 'echo', '--json', '--input', '{"message":"x y","stream":true}']);
  assert.equal(code, 0);
  assert.equal(stderr, '', 'nothing for people in --json mode');
  const lines = stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(lines.slice(0, 2), [{ chunk: { word: 'x' } }, { chunk: { word: 'y' } }]);
  const final = lines[2]!;
  assert.equal(final['status'], 'COMPLETED');
  assert.deepEqual(final, await echo.status(String(final['id'])));
});

test('kiln run --input-file: a test_input.json-style {"input": …} body is the request; a failed job exits 1 with its error', async () => {
  const file = path.join(dir, 'test_input.json');
  await writeFile(file, JSON.stringify({ input: { message: 'x', fail: 'boom from a file' } }));
  const { code, stdout, stderr } = await kilnCli(['run', 'echo', '--input-file', file]);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.match(stderr, /^FAILED: Error: boom from a file$/m);
});

test('kiln run: a job cancelled while it runs exits 1 with CANCELLED', async () => {
  const run = startKiln(['run', 'echo', '--input', '{"message":"long","sleepMs":60000}']);
  const id = /job (\S+) submitted/.exec((await until(() => run.output().stderr, (s) => /job \S+ submitted/.test(s), 'the job id')))![1]!;
  await until(() => echo.status(id), (s) => s.status === 'IN_PROGRESS', 'the job to start');
  await echo.cancel(id);
  const { code, stderr } = await run.closed;
  assert.equal(code, 1);
  assert.match(stderr, /^CANCELLED$/m);
});

test('kiln run: missing or malformed input is refused before anything is submitted', async () => {
  const before = (await echo.health()).jobs;
  const none = await kilnCli(['run', 'echo']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /give the job's input with --input/);
  const bad = await kilnCli(['run', 'echo', '--input', '{not json']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--input is not JSON/);
  assert.deepEqual((await echo.health()).jobs, before);
});

test('kiln jobs ls: a table newest first, --status filters, --limit pages with a cursor, --json is the gateway’s page', async () => {
  const failed = await echo.runSync({ message: 'x', fail: 'listed failure' });
  const completed = await echo.runSync({ message: 'listed' });

  const table = await kilnCli(['jobs', 'ls', 'echo']);
  assert.equal(table.code, 0);
  const [header, ...rows] = table.stdout.trimEnd().split('\n');
  assert.match(header!, /^ID\s+STATUS\s+CREATED\s+DELAY\s+EXECUTION\s+WORKER\s+ERROR$/);
  assert.ok(rows[0]!.startsWith(`${completed.id}  `), 'newest first');
  assert.match(rows.find((r) => r.startsWith(failed.id))!, /FAILED .*Error: listed failure$/);

  const onlyFailed = JSON.parse((await kilnCli(['jobs', 'ls', 'echo', '--status', 'FAILED', '--json'])).stdout) as { jobs: { id: string; status: string }[] };
  assert.ok(onlyFailed.jobs.length >= 1);
  assert.ok(onlyFailed.jobs.every((j) => j.status === 'FAILED'));
  assert.ok(onlyFailed.jobs.some((j) => j.id === failed.id));

  const first = await kilnCli(['jobs', 'ls', 'echo', '--limit', '1']);
  const cursor = /^more: kiln jobs ls echo --cursor (\S+)$/m.exec(first.stderr)?.[1];
  assert.ok(cursor, first.stderr);
  const second = JSON.parse((await kilnCli(['jobs', 'ls', 'echo', '--limit', '1', '--cursor', cursor, '--json'])).stdout) as { jobs: { id: string }[] };
  assert.equal(second.jobs.length, 1);
  assert.equal(second.jobs[0]!.id, failed.id, 'the page after the newest');
});

test('kiln jobs status, cancel and retry', async () => {
  const done = await echo.runSync({ message: 'status me' });
  const people = await kilnCli(['jobs', 'status', 'echo', done.id]);
  assert.equal(people.code, 0);
  assert.match(people.stdout, new RegExp(`^id +${done.id}$`, 'm'));
  assert.match(people.stdout, /^status +COMPLETED$/m);
  assert.match(people.stdout, /^output +\{$/m);
  const machine = await kilnCli(['jobs', 'status', 'echo', done.id, '--json']);
  assert.deepEqual(JSON.parse(machine.stdout), await echo.status(done.id));

  const { id } = await echo.run({ message: 'cancel me', sleepMs: 60_000 });
  const cancelled = await kilnCli(['jobs', 'cancel', 'echo', id]);
  assert.equal(cancelled.code, 0);
  assert.equal(cancelled.stdout, `${id} CANCELLED\n`);

  const failed = await echo.runSync({ message: 'x', fail: 'retry me' });
  const retried = await kilnCli(['jobs', 'retry', 'echo', failed.id, '--json']);
  assert.deepEqual(JSON.parse(retried.stdout), { id: failed.id, status: 'IN_QUEUE' });
  assert.equal((await echo.waitFor(failed.id)).retries, 1);
});

test('refusals exit 1 with the reason: unknown job (404), wrong key (401), no gateway at the address', async () => {
  const missing = await kilnCli(['jobs', 'status', 'echo', 'no-such-job']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^kiln: GET \/v2\/echo\/status\/no-such-job: HTTP 404 job no-such-job not found/m);
  const intruder = await kilnCli(['jobs', 'ls', 'echo', '--api-key', 'wrong']);
  assert.equal(intruder.code, 1);
  assert.match(intruder.stderr, /HTTP 401/);
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise((resolve) => closed.close(resolve));
  const nowhere = await kilnCli(['jobs', 'ls', 'echo', '--url', `http://127.0.0.1:${port}`]);
  assert.equal(nowhere.code, 1);
  assert.match(nowhere.stderr, new RegExp(`^kiln: cannot reach the gateway at http://127\\.0\\.0\\.1:${port}: ECONNREFUSED`, 'm'));
});

test('kiln logs --job: that job’s lines, readable or as JSON lines', async () => {
  const done = await echo.runSync({ message: 'log me' });
  const lines = await until(
    async () => (await kilnCli(['logs', 'echo', '--job', done.id])).stdout,
    (out) => /echoing 6 characters/.test(out),
    'the job’s log line',
  );
  for (const line of lines.trimEnd().split('\n')) assert.match(line, new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} echo-\\S+ \\[${done.id}\\] `));
  const json = await kilnCli(['logs', 'echo', '--job', done.id, '--json']);
  const parsed = json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { jobId: string; line: string });
  assert.ok(parsed.length >= 1 && parsed.every((l) => l.jobId === done.id));
});

test('kiln logs --follow prints lines of jobs that run after it started, until Ctrl-C (exit 0)', async () => {
  const follow = startKiln(['logs', 'echo', '--follow']);
  // Everything logged so far is printed first; the job below comes after.
  await until(() => follow.output().stdout, (out) => out.length > 0, 'the existing lines');
  const done = await echo.runSync({ message: 'followed later' });
  await until(() => follow.output().stdout, (out) => out.includes(`[${done.id}]`), 'the new job’s line');
  follow.child.kill('SIGINT');
  const { code } = await follow.closed;
  assert.equal(code, 0);
});

test('kiln --help lists the job commands', async () => {
  const { stdout } = await kilnCli(['--help']);
  for (const command of ['run', 'jobs', 'logs']) assert.match(stdout, new RegExp(`^  ${command} `, 'm'));
});
