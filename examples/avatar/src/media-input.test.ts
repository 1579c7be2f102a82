import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { MediaInputError, pathInside, readMediaField } from './media-input.ts';

test('a media field is read from a data: URL, from base64, or from a file inside the folder', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-avatar-media-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256));
  await writeFile(path.join(dir, 'face.png'), bytes);
  assert.deepEqual(await readMediaField('image', `data:image/png;base64,${bytes.toString('base64')}`, dir), bytes);
  assert.deepEqual(await readMediaField('image', ` ${bytes.toString('base64')}\n`, dir), bytes);
  assert.deepEqual(await readMediaField('image', 'face.png', dir), bytes);
});

test('a path that leaves the folder, or names no file, is refused with the field named', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-avatar-media-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const outside of ['../etc/passwd', '/etc/passwd', '.']) {
    await assert.rejects(readMediaField('audio', outside, dir), (err: unknown) => err instanceof MediaInputError && err.field === 'audio' && /^audio: must be base64 or a path inside/.test(err.message), outside);
  }
  await assert.rejects(readMediaField('image', 'missing.png', dir), /^MediaInputError: image: cannot read missing\.png: ENOENT$/);
  assert.deepEqual(pathInside(dir, 'a/b.wav'), { resolved: path.join(dir, 'a', 'b.wav'), relative: path.join('a', 'b.wav') });
  assert.equal(pathInside(dir, 'a/../../b.wav'), undefined);
});
