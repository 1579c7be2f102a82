// The TTS worker describes its input (KILN_DESCRIBE=1) for the dashboard's Run form, and the
// "not empty" rule, now a regex, rejects what the old check rejected.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeInput } from '@kiln/worker';
import worker, { TtsInput } from './worker.ts';
import { VOICES } from './flite-engine.ts';

test('tts describes its input: text required and non-blank, voice a picklist with its default', () => {
  const { input, note } = describeInput(worker);
  assert.equal(note, undefined);
  assert.deepEqual(input?.['required'], ['text']);
  const properties = input?.['properties'] as Record<string, Record<string, unknown>>;
  assert.equal(properties['text']?.['pattern'], '\\S');
  assert.equal(properties['text']?.['maxLength'], 5000);
  assert.deepEqual(properties['voice']?.['enum'], [...VOICES]);
  assert.equal(properties['voice']?.['default'], 'kal16');
});

test('blank text is still refused with the same message', async () => {
  for (const text of ['', '  \n\t ']) {
    const result = await TtsInput['~standard'].validate({ text });
    assert.deepEqual(result.issues?.map((i) => i.message), ['text must not be empty']);
  }
  assert.equal((await TtsInput['~standard'].validate({ text: ' a ' })).issues, undefined);
});
