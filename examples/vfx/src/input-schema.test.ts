// The VFX worker describes its discriminated union of actions (KILN_DESCRIBE=1) as a oneOf the
// dashboard's Run form can switch on; its code-only checks are left out of the schema but still run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeInput } from '@kiln/worker';
import worker, { DEPTH_REFUSAL, STAGES, VfxInput } from './worker.ts';

type Json = Record<string, unknown>;

test('vfx describes one branch per action, each with its action as a const', () => {
  const { input, note } = describeInput(worker);
  assert.equal(note, undefined);
  const branches = input?.['oneOf'] as Json[];
  assert.deepEqual(
    branches.map((b) => (b['properties'] as Record<string, Json>)['action']?.['const']),
    ['health_check', 'process_video', 'get_status'],
  );
  const process = branches[1]!;
  assert.deepEqual(process['required'], ['action', 'name']);
  const properties = process['properties'] as Record<string, Json>;
  assert.deepEqual(properties['stages'], {
    type: 'array',
    items: { type: 'string', enum: [...STAGES] },
    minItems: 1,
    title: 'Stages',
    description: 'Run in the order ingest, roto, preview whatever order they are listed in',
    default: [...STAGES],
  });
  assert.equal(properties['maxFrames']?.['default'], 300);
  assert.equal(typeof properties['name']?.['pattern'], 'string');
});

test('the checks left out of the schema still validate jobs', async () => {
  const depth = await VfxInput['~standard'].validate({ action: 'process_video', name: 'p', video: 'x', stages: ['depth'] });
  assert.deepEqual(depth.issues?.map((i) => i.message), [DEPTH_REFUSAL]);
  const noVideo = await VfxInput['~standard'].validate({ action: 'process_video', name: 'p' });
  assert.deepEqual(noVideo.issues?.map((i) => i.message), ['video is required when stages include "ingest"']);
  const dots = await VfxInput['~standard'].validate({ action: 'get_status', name: 'a..b' });
  assert.equal(dots.issues?.length, 1);
});
