// Describe mode: a worker tells the gateway what input it accepts (the dashboard's Run form) as a
// JSON Schema taken from its input schema's Standard JSON Schema interface, without running setup.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { toStandardJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';
import { z } from 'zod';
import { defineWorker } from './define-worker.ts';
import { describeInput, describeLine } from './describe-input.ts';
import { readWorkerEnvironment } from './worker-env.ts';

const DESCRIBE_ME_TS = fileURLToPath(new URL('./test-workers/describe-me.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('a zod 4 schema is described natively as draft 2020-12', () => {
  const worker = defineWorker({ input: z.object({ text: z.string(), voice: z.enum(['a', 'b']).default('a') }), handler: () => null });
  const { input, note } = describeInput(worker);
  assert.equal(note, undefined);
  assert.equal(input?.['$schema'], 'https://json-schema.org/draft/2020-12/schema');
  assert.equal(input?.['type'], 'object');
  assert.deepEqual(input?.['required'], ['text'], 'a field with a default is optional in the input');
  assert.deepEqual((input?.['properties'] as Record<string, unknown>)['voice'], { type: 'string', enum: ['a', 'b'], default: 'a' });
});

test('a valibot schema wrapped with toStandardJsonSchema is described, with titles, descriptions and defaults', () => {
  const schema = v.object({
    message: v.pipe(v.string(), v.title('Message'), v.maxLength(10)),
    sleepMs: v.optional(v.pipe(v.number(), v.integer(), v.description('Milliseconds to work')), 0),
  });
  const worker = defineWorker({ input: toStandardJsonSchema(schema), handler: (job) => job.input.message });
  const { input, note } = describeInput(worker);
  assert.equal(note, undefined);
  assert.deepEqual(input, {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    properties: {
      message: { type: 'string', title: 'Message', maxLength: 10 },
      sleepMs: { type: 'integer', description: 'Milliseconds to work', default: 0 },
    },
    required: ['message'],
  });
});

test('a converter that refuses draft 2020-12 is asked for draft-07', () => {
  const asked: string[] = [];
  const input = {
    '~standard': {
      version: 1 as const,
      vendor: 'test',
      validate: (value: unknown) => ({ value }),
      jsonSchema: {
        input({ target }: { target: string }) {
          asked.push(target);
          if (target !== 'draft-07') throw new Error(`Unsupported target: ${target}`);
          return { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object' };
        },
      },
    },
  };
  const { input: json } = describeInput(defineWorker({ input, handler: () => null }));
  assert.deepEqual(asked, ['draft-2020-12', 'draft-07']);
  assert.equal(json?.['$schema'], 'http://json-schema.org/draft-07/schema#');
});

test('no input schema, a schema without jsonSchema, or one that cannot convert: input null and a note', () => {
  const none = JSON.parse(describeLine(defineWorker({ handler: () => null }))) as Record<string, unknown>;
  assert.deepEqual(none, { kilnDescribe: 1, input: null, note: 'the worker has no input schema' });

  const bare = describeInput(defineWorker({ input: v.object({ a: v.string() }), handler: () => null }));
  assert.equal(bare.input, null);
  assert.match(bare.note ?? '', /valibot.*does not implement Standard JSON Schema.*toStandardJsonSchema/);

  const check = toStandardJsonSchema(v.pipe(v.string(), v.check((s) => s.length > 1)));
  const failing = describeInput(defineWorker({ input: check, handler: () => null }));
  assert.equal(failing.input, null);
  assert.match(failing.note ?? '', /could not be converted.*draft-2020-12: .*"check" action.*draft-07: /);
});

test('KILN_DESCRIBE=1 is the describe mode, whatever else the environment says', () => {
  const env = readWorkerEnvironment({ KILN_DESCRIBE: '1', RUNPOD_WEBHOOK_GET_JOB: 'http://127.0.0.1:1/take' }, ['--serve-api'], ROOT);
  assert.deepEqual(env.mode, { kind: 'describe' });
  assert.notEqual(readWorkerEnvironment({ KILN_DESCRIBE: '0' }, ['--serve-api'], ROOT).mode.kind, 'describe');
});

test('a worker file run with KILN_DESCRIBE=1 prints one line, exits 0, and neither runs setup nor takes a job', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-describe-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const marker = path.join(dir, 'setup-ran');
  // A job source that records every request: describe mode must not contact it.
  let requests = 0;
  const server = http.createServer((_req, res) => {
    requests++;
    res.writeHead(204).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const env: NodeJS.ProcessEnv = { ...process.env, KILN_DESCRIBE: '1', SETUP_MARKER: marker, RUNPOD_WEBHOOK_GET_JOB: `${base}/take`, RUNPOD_WEBHOOK_POST_OUTPUT: `${base}/job-done/$ID` };
  const child = spawn(process.execPath, ['--conditions=kiln-source', '--import', 'tsx', DESCRIBE_ME_TS], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'close', { signal: AbortSignal.timeout(30_000) })) as [number | null];

  assert.equal(code, 0, stderr);
  const lines = stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `stdout must be exactly one line, got:\n${stdout}`);
  const line = JSON.parse(lines[0]!) as { kilnDescribe: number; input: Record<string, unknown>; note?: string };
  assert.equal(line.kilnDescribe, 1);
  assert.equal(line.note, undefined);
  assert.equal(line.input['type'], 'object');
  assert.deepEqual(line.input['required'], ['text']);
  assert.deepEqual((line.input['properties'] as Record<string, unknown>)['text'], { type: 'string', description: 'What to say' });
  assert.equal(existsSync(marker), false, 'setup must not run in describe mode');
  assert.equal(requests, 0, 'describe mode must not contact the job source');
});
