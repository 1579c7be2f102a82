// The `kiln` command as installed (bin/kiln.js over the compiled dist/), run as a child process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const KILN = path.join(ROOT, 'packages/cli/bin/kiln.js');
/** How a worker file outside this workspace imports the runtime (it cannot resolve `@kiln/worker` from a temp folder). */
const WORKER_IMPORT = pathToFileURL(path.join(ROOT, 'packages/worker/dist/index.js')).href;
const CLI_VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'packages/cli/package.json'), 'utf8')) as { version: string }).version;
/** Safety net only: each command ends on its own long before this. */
const SAFETY_MS = 20_000;

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function kiln(args: string[], cwd = ROOT): Promise<Finished> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('RUNPOD_')) delete env[key];
  const child = spawn(process.execPath, [KILN, ...args], { cwd, env, stdio: 'pipe' });
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  try {
    const [code] = (await once(child, 'close', { signal: AbortSignal.timeout(SAFETY_MS) })) as [number | null];
    return { code, stdout, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** The one line on stdout: the job's status object. */
function statusOf(run: Finished): { id: string; status: string; output?: { message?: string } } {
  const lines = run.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `stdout should hold only the status object:\n${run.stdout}\nstderr:\n${run.stderr}`);
  return JSON.parse(lines[0]!) as { id: string; status: string; output?: { message?: string } };
}

let tmp = '';
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'kiln-cli-'));
});

/** Writes `files` into a fresh folder under the temp dir, with `package.json` as given. */
async function project(name: string, packageJson: Record<string, unknown>, files: Record<string, string>): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir);
  await writeFile(path.join(dir, 'package.json'), JSON.stringify(packageJson));
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(dir, file), text);
  return dir;
}
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test('kiln --version and -v print the CLI package version and exit 0', async () => {
  for (const flag of ['--version', '-v']) {
    const run = await kiln([flag]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${CLI_VERSION}\n`);
  }
});

test('kiln worker <compiled .js file> --test-input runs the worker and prints its COMPLETED status object', async () => {
  const run = await kiln(['worker', 'examples/echo/dist/worker.js', '--test-input', JSON.stringify({ input: { message: 'from js' } })]);
  assert.equal(run.code, 0, run.stderr);
  const status = statusOf(run);
  assert.equal(status.status, 'COMPLETED');
  assert.equal(status.output?.message, 'from js');
});

test('kiln worker <.ts file> --test-input runs TypeScript source directly', async () => {
  const run = await kiln(['worker', 'examples/echo/src/worker.ts', '--test-input', JSON.stringify({ input: { message: 'from ts' } })]);
  assert.equal(run.code, 0, run.stderr);
  const status = statusOf(run);
  assert.equal(status.status, 'COMPLETED');
  assert.equal(status.output?.message, 'from ts');
});

test('kiln worker <.ts file> works in a package without "type": "module" (npm init\'s default), where Node treats .ts as CommonJS', async () => {
  const dir = await project('commonjs-package', { name: 'my-worker', version: '1.0.0' }, {
    'worker.ts': `import { defineWorker } from '${WORKER_IMPORT}';\nexport default defineWorker({ handler: (job) => ({ message: (job.input as { message: string }).message }) });\n`,
    'named.ts': `import { defineWorker } from '${WORKER_IMPORT}';\nexport const echo = defineWorker({ handler: () => ({ message: 'named export' }) });\n`,
  });
  const run = await kiln(['worker', 'worker.ts', '--test-input', JSON.stringify({ input: { message: 'from a CommonJS package' } })], dir);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(statusOf(run).output?.message, 'from a CommonJS package');
  const named = await kiln(['worker', 'named.ts', '--test-input', JSON.stringify({ input: {} })], dir);
  assert.equal(named.code, 0, named.stderr);
  assert.equal(statusOf(named).output?.message, 'named export');
});

test('kiln worker on a file that exports no worker fails with exit 1 and says what the file must export', async () => {
  const dir = await project('no-worker', { type: 'module' }, {
    'not-a-worker.ts': 'export const answer: number = 42;\nexport default { handler: () => answer };\n',
  });
  const run = await kiln(['worker', 'not-a-worker.ts', '--test-input', JSON.stringify({ input: {} })], dir);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stdout, '');
  assert.equal(run.stderr, 'kiln: not-a-worker.ts exports no worker: export default defineWorker({ handler … })\n');
});

test('kiln worker on a file with two worker exports and no default fails with exit 1, naming both', async () => {
  const dir = await project('two-workers', { type: 'module' }, {
    'two.ts': `import { defineWorker } from '${WORKER_IMPORT}';\nexport const small = defineWorker({ handler: () => 1 });\nexport const large = defineWorker({ handler: () => 2 });\n`,
  });
  const run = await kiln(['worker', 'two.ts', '--test-input', JSON.stringify({ input: {} })], dir);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stdout, '');
  assert.match(run.stderr, /^kiln: two\.ts exports 2 workers \((small, large|large, small)\); make one the default export\n$/);
});

test('kiln worker on a missing file fails with exit 1 and names the file', async () => {
  const run = await kiln(['worker', 'no/such/worker.ts', '--test-input', JSON.stringify({ input: {} })]);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stdout, '');
  assert.equal(run.stderr, 'kiln: worker file not found: no/such/worker.ts\n');
});
