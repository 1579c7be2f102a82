import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { collectOutputs, folderStats, projectNameProblem, projectPaths } from './projects.ts';

test('project names are single safe folder names', () => {
  for (const ok of ['shot_010', 'Plate-B', 'a', 'v1.2', 'x'.repeat(64)]) assert.equal(projectNameProblem(ok), undefined, ok);
  for (const bad of ['', '..', 'a..b', '../x', 'a/b', 'a\\b', '.hidden', '-x', 'x'.repeat(65), 'sp ace', '/abs']) assert.match(projectNameProblem(bad) ?? '', /^name must be/, bad);
});

test('collectOutputs counts the files in each output folder and adds up their sizes, and leaves out what is absent', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'kiln-vfx-projects-'));
  try {
    const paths = projectPaths(root, 'p');
    assert.deepEqual(await collectOutputs(paths), { outputs: {} });
    await mkdir(paths.frames, { recursive: true });
    await writeFile(path.join(paths.frames, '00001.png'), Buffer.alloc(10));
    await writeFile(path.join(paths.frames, '00002.png'), Buffer.alloc(5));
    await mkdir(path.join(paths.frames, 'not-a-file'));
    assert.deepEqual(await folderStats(paths.frames), { count: 2, bytes: 15 });
    await writeFile(paths.preview, Buffer.alloc(7));
    assert.deepEqual(await collectOutputs(paths), { outputs: { 'source/frames': { count: 2, bytes: 15 } }, preview: { path: 'preview.mp4', bytes: 7 } });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
