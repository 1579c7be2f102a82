import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { EndpointSchemaResponse } from '@kiln/protocol';
import { ManualClock } from '@kiln/protocol';
import { parseConfig } from './config.ts';
import { createTestGateway, TEST_API_KEY } from './test-gateway.ts';
import { DESCRIBE_EXIT_GRACE_MS, describeWorker, WorkerSchemas } from './worker-schema.ts';

const SCHEMA = { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] };

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kiln-describe-'));
  // Describes itself when asked; says what it was given, so the test sees its environment.
  writeFileSync(
    path.join(dir, 'describe.mjs'),
    `import { appendFileSync } from 'node:fs';
appendFileSync('runs.log', JSON.stringify({ describe: process.env.KILN_DESCRIBE, secret: process.env.SECRET, job: process.env.RUNPOD_WEBHOOK_GET_JOB ?? null }) + '\\n');
console.log('loading…');
console.log(JSON.stringify({ kilnDescribe: 1, input: ${JSON.stringify(SCHEMA)} }));
`,
  );
  writeFileSync(path.join(dir, 'no-schema.mjs'), `console.log(JSON.stringify({ kilnDescribe: 1, input: null }));\n`);
  writeFileSync(path.join(dir, 'explains.mjs'), `console.log(JSON.stringify({ kilnDescribe: 1, input: null, note: 'the input schema could not be exported' }));\n`);
  writeFileSync(path.join(dir, 'silent.mjs'), `console.log('a worker that knows nothing of describing');\nconsole.error('some warning');\n`);
  writeFileSync(path.join(dir, 'hang.mjs'), `setInterval(() => {}, 1000);\n`);
  // Stands in for a python interpreter running a runpod-python handler: it knows nothing of describing.
  writeFileSync(path.join(dir, 'python3'), `#!/bin/sh\necho ran >> python-runs.log\necho "--- Starting Serverless Worker ---"\n`, { mode: 0o755 });
  writeFileSync(path.join(dir, 'test_input.json'), JSON.stringify({ input: { text: 'hello from test_input' } }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function configFor(command: string, cwd = dir) {
  return { endpoints: { echo: { worker: { command, cwd }, env: { SECRET: 'from-config' } } }, gateway: { apiKeys: [TEST_API_KEY] } };
}

async function schemaOf(command: string, cwd = dir): Promise<EndpointSchemaResponse> {
  const gw = await createTestGateway({ config: configFor(command, cwd) });
  try {
    const res = await gw.request('/kiln/v1/endpoints/echo/schema', { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    assert.equal(res.status, 200);
    return (await res.json()) as EndpointSchemaResponse;
  } finally {
    await gw.close();
  }
}

test('GET schema: the worker, run with KILN_DESCRIBE=1, its env and no RUNPOD job URLs, describes its input; testInput is test_input.json\'s input', async () => {
  rmSync(path.join(dir, 'runs.log'), { force: true });
  assert.deepEqual(await schemaOf('node describe.mjs'), { input: SCHEMA, testInput: { text: 'hello from test_input' }, note: null });
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'runs.log'), 'utf8')), { describe: '1', secret: 'from-config', job: null });
});

test('the description is asked once per endpoint: concurrent and later requests share it', async () => {
  rmSync(path.join(dir, 'runs.log'), { force: true });
  const gw = await createTestGateway({ config: configFor('node describe.mjs') });
  try {
    const get = () => gw.request('/kiln/v1/endpoints/echo/schema', { headers: { authorization: `Bearer ${TEST_API_KEY}` } }).then((r) => r.json());
    const answers = await Promise.all([get(), get(), get()]);
    answers.push(await get());
    for (const answer of answers) assert.deepEqual((answer as EndpointSchemaResponse).input, SCHEMA);
      assert.equal(readFileSync(path.join(dir, 'runs.log'), 'utf8').trim().split('\n').length, 1);
  } finally {
    await gw.close();
  }
});

test('a worker without an input schema, or that prints no kilnDescribe line, gives input null and a note saying why', async () => {
  assert.deepEqual(await schemaOf('node no-schema.mjs'), { input: null, testInput: { text: 'hello from test_input' }, note: 'the worker has no input schema' });
  assert.equal((await schemaOf('node explains.mjs')).note, 'the input schema could not be exported', "the worker's own note wins");
  const silent = await schemaOf('node silent.mjs');
  assert.equal(silent.input, null);
  assert.match(silent.note ?? '', /^the worker did not describe its input \(it exited with code 0 without printing a kilnDescribe line; last stderr line: some warning\)$/);
  const python = await schemaOf('./python3 handler.py');
  assert.equal(python.input, null);
  assert.equal(python.note, 'python workers do not describe their input');
  // runpod-python without job URLs would run its handler on test_input.json: it is not started at all.
  assert.equal(existsSync(path.join(dir, 'python-runs.log')), false, 'the python worker was not run');
  const missing = await schemaOf('no-such-command-kiln');
  assert.equal(missing.input, null);
  assert.match(missing.note ?? '', /could not start the worker.*command not found/);
});

test('without test_input.json, testInput is null', async () => {
  const bare = mkdtempSync(path.join(tmpdir(), 'kiln-describe-bare-'));
  try {
    writeFileSync(path.join(bare, 'no-schema.mjs'), `console.log(JSON.stringify({ kilnDescribe: 1, input: null }));\n`);
    assert.equal((await schemaOf('node no-schema.mjs', bare)).testInput, null);
  } finally {
    rmSync(bare, { recursive: true, force: true });
  }
});

test('a worker that does not answer within the timeout (on the clock) is killed: input null with a note', async () => {
  const clock = new ManualClock();
  const answer = describeWorker({ command: 'node hang.mjs', cwd: dir, env: {}, clock, timeoutMs: 10_000 });
  await clock.waitForSleep(10_000);
  await clock.advance(10_000);
  assert.deepEqual(await answer, { input: null, note: 'the worker did not describe its input within 10 s (killed)', transient: true });
});

test('a worker that gave no answer is asked again by the next request; an answer is kept', async () => {
  // Crashes the first time (say, a module still being built), answers from then on.
  writeFileSync(
    path.join(dir, 'flaky.mjs'),
    `import { existsSync, writeFileSync } from 'node:fs';
if (!existsSync('flaky.ran')) { writeFileSync('flaky.ran', ''); console.error('not ready yet'); process.exit(1); }
console.log(JSON.stringify({ kilnDescribe: 1, input: ${JSON.stringify(SCHEMA)} }));
`,
  );
  rmSync(path.join(dir, 'flaky.ran'), { force: true });
  const config = parseConfig(configFor('node flaky.mjs'), { baseDir: dir, env: {} });
  const schemas = new WorkerSchemas({ config, clock: new ManualClock() });
  try {
    const first = await schemas.get('echo');
    assert.equal(first.input, null);
    assert.match(first.note ?? '', /exited with code 1.*not ready yet/);
    assert.deepEqual((await schemas.get('echo')).input, SCHEMA, 'the crash was not kept: the worker was asked again');
    rmSync(path.join(dir, 'flaky.ran'), { force: true }); // would make a third run crash again
    assert.deepEqual((await schemas.get('echo')).input, SCHEMA, 'the answer is kept: no third run');
    assert.equal(existsSync(path.join(dir, 'flaky.ran')), false);
  } finally {
    schemas.close();
  }
});

test('a worker that answers but ignores SIGTERM is killed after the grace period (on the clock)', async () => {
  writeFileSync(
    path.join(dir, 'stubborn.mjs'),
    `import { writeFileSync } from 'node:fs';
process.on('SIGTERM', () => {});
writeFileSync('stubborn.pid', String(process.pid));
console.log(JSON.stringify({ kilnDescribe: 1, input: null }));
setInterval(() => {}, 1000);
`,
  );
  const clock = new ManualClock();
  const answer = await describeWorker({ command: 'node stubborn.mjs', cwd: dir, env: {}, clock });
  assert.equal(answer.input, null);
  const pid = Number(readFileSync(path.join(dir, 'stubborn.pid'), 'utf8'));
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  await clock.waitForSleep(DESCRIBE_EXIT_GRACE_MS);
  assert.equal(alive(), true, 'SIGTERM alone did not stop it');
  await clock.advance(DESCRIBE_EXIT_GRACE_MS);
  // The kill is real: wait (a bounded while) for the process to be gone.
  for (let i = 0; i < 200 && alive(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(alive(), false, 'killed after the grace period');
});

test('close() kills a describing worker and its request answers at once', async () => {
  const clock = new ManualClock();
  const config = parseConfig(configFor('node hang.mjs'), { baseDir: dir, env: {} });
  const schemas = new WorkerSchemas({ config, clock });
  const answer = schemas.get('echo');
  await clock.waitForSleep(10_000);
  schemas.close();
  const { input, note } = await answer;
  assert.equal(input, null);
  assert.match(note ?? '', /stopped before the worker described/);
});

test('a real @kiln/worker worker describes its zod input schema', async () => {
  const root = path.resolve(import.meta.dirname, '../../..');
  const command = `"${process.execPath}" --conditions=kiln-source --import tsx packages/worker/src/test-workers/describe-me.ts`;
  const { input, note } = await describeWorker({ command, cwd: root, env: {}, clock: new ManualClock(), timeoutMs: 60_000 });
  assert.equal(note, null);
  assert.equal(input?.['type'], 'object');
  assert.deepEqual(input?.['required'], ['text']);
});
