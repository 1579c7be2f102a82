// The echo worker describes its input (KILN_DESCRIBE=1) as the JSON Schema the dashboard's Run form
// is built from: labels, hints, defaults and bounds, and still validates with valibot.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeInput } from '@kiln/worker';
import worker, { EchoInput } from './worker.ts';

test('echo describes its input: message required, the rest optional with defaults, titles and descriptions', () => {
  const { input, note } = describeInput(worker);
  assert.equal(note, undefined);
  assert.equal(input?.['type'], 'object');
  assert.deepEqual(input?.['required'], ['message']);
  const properties = input?.['properties'] as Record<string, Record<string, unknown>>;
  assert.deepEqual(properties['sleepMs'], {
    type: 'integer',
    minimum: 0,
    maximum: 600_000,
    title: 'Sleep (ms)',
    description: "Milliseconds to work before answering; the job's signal cuts it short",
    default: 0,
  });
  assert.equal(properties['stream']?.['default'], false);
  assert.equal(properties['message']?.['maxLength'], 10_000);
});

test('the wrapped schema still validates and fills defaults', async () => {
  const ok = await EchoInput['~standard'].validate({ message: 'hi' });
  assert.equal(ok.issues, undefined);
  assert.deepEqual('value' in ok ? ok.value : undefined, { message: 'hi', sleepMs: 0, stream: false, progressSteps: 0 });
  const bad = await EchoInput['~standard'].validate({ message: 'hi', sleepMs: -1 });
  assert.equal(bad.issues?.length, 1);
});
