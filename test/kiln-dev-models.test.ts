// `kiln dev` start-up as a user sees it: the models its endpoints list are pulled, then verified from
// the volume's record on the next start (nothing re-read), a `manual` model is reported with its
// instructions and the endpoint needing it while the gateway keeps serving, and each endpoint gets a curl.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { readRecord } from '@kiln/models';
import { killStartedChildren, startKilnServer, stopChild, type KilnServer } from './support/child-process.ts';

const dirs: string[] = [];
after(async () => {
  killStartedChildren();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Starts `kiln dev` and resolves once it printed its `ready` line. */
function startDev(dir: string, volume: string): Promise<KilnServer> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', KILN_VOLUME: volume };
  delete env['KILN_CONFIG'];
  return startKilnServer({ args: ['dev', '--config', path.join(dir, 'kiln.config.json')], cwd: dir, env, ready: /kiln dev: ready/ });
}

test('kiln dev pulls a file: model at start, verifies it from the record on restart, reports a manual model and keeps serving', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-dev-models-'));
  dirs.push(dir);
  const volume = path.join(dir, 'volume');
  const weights = Buffer.from('weights of a tiny model\n'.repeat(1000));
  await mkdir(path.join(dir, 'src'));
  await writeFile(path.join(dir, 'src', 'weights.bin'), weights);
  for (const folder of ['speak', 'licensed']) await mkdir(path.join(dir, folder));
  await writeFile(path.join(dir, 'speak', 'test_input.json'), JSON.stringify({ input: { text: "it's here" } }, null, 2));
  await writeFile(
    path.join(dir, 'kiln.config.json'),
    JSON.stringify({
      endpoints: {
        speak: { worker: { command: 'node worker.mjs', cwd: 'speak' }, models: ['weights'] },
        licensed: { worker: { command: 'node worker.mjs', cwd: 'licensed' }, models: ['gated'] },
      },
      models: {
        weights: { source: 'file:src/weights.bin', sha256: createHash('sha256').update(weights).digest('hex'), size: weights.length },
        gated: { source: 'manual', instructions: 'request access at example.org, then download gated.safetensors' },
      },
      gateway: { port: 0 },
    }),
  );

  const first = await startDev(dir, volume);
  const text = first.stderr();
  assert.match(text, /model weights: pulled 23\.4 KiB/);
  assert.match(text, /model gated: NOT INSTALLED, must be installed by hand \(needed by licensed\): request access at example\.org.*then: kiln models add gated PATH/);
  assert.match(text, /kiln dev: ready \(models: 1 ready, 1 missing\)/);
  assert.doesNotMatch(text, /█/, 'no progress bars when stderr is not a terminal');
  // The test input, with its single quote escaped for the shell; the endpoint without one gets an empty input.
  assert.ok(text.includes(`curl -s -X POST ${first.url}/v2/speak/runsync -H 'content-type: application/json' -d '{"input":{"text":"it'\\''s here"}}'`), text);
  assert.ok(text.includes(`curl -s -X POST ${first.url}/v2/licensed/runsync -H 'content-type: application/json' -d '{"input":{}}'`), text);
  assert.match(text, /licensed\s+http:\S+\/v2\/licensed\s+\(jobs will fail until gated is installed\)/);
  // The missing model did not stop the gateway.
  const health = await fetch(`${first.url}/v2/licensed/health`);
  assert.equal(health.status, 200);
  await health.body?.cancel();

  const record = await readRecord(volume, 'weights');
  assert.ok(record?.complete, 'the pull recorded the model as complete');
  const copy = path.join(volume, 'weights', 'weights.bin');
  const copied = await stat(copy);
  assert.equal(await stopChild(first.child), 0);

  // The source is gone: a restart that needed to read it would fail. The record must not be rewritten
  // either, which a re-hash (pull's check of unrecorded files, or verify's refresh) would do.
  await rm(path.join(dir, 'src', 'weights.bin'));
  const second = await startDev(dir, volume);
  assert.match(second.stderr(), /model weights: verified \(volume record, nothing re-read\)/);
  assert.match(second.stderr(), /model gated: NOT INSTALLED/);
  assert.deepEqual(await readRecord(volume, 'weights'), record);
  const again = await stat(copy);
  assert.equal(again.mtimeMs, copied.mtimeMs);
  assert.equal(again.atimeMs, copied.atimeMs, 'the volume copy was not read again');
  assert.equal(await stopChild(second.child), 0);
});
