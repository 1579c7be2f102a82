// Ctrl-C during `kiln models verify`: the command stops and exits 130, as `kiln models pull` does,
// rather than failing with the abort as an error. Real files on a temp volume; SIGINT is delivered
// to the command's own listener with process.emit, so the test process itself is not signalled.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pullCommand, verifyCommand } from './models-actions.ts';
import type { CommandIo } from './terminal.ts';

function capture(): CommandIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (text: string) => (out += text), isTTY: false },
    stderr: { write: (text: string) => (err += text), isTTY: false },
    env: {},
    out: () => out,
    err: () => err,
  };
}

test('kiln models verify: Ctrl-C while it hashes exits 130 and says so; uninterrupted, it exits 0', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-models-interrupt-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const weights = Buffer.from('weights of a tiny model\n'.repeat(1000));
  await writeFile(path.join(dir, 'weights.bin'), weights);
  const config = path.join(dir, 'kiln.config.json');
  await writeFile(config, JSON.stringify({ models: { tiny: { source: 'file:weights.bin', sha256: createHash('sha256').update(weights).digest('hex') } } }));
  const options = { config, volume: path.join(dir, 'volume') };
  assert.equal(await pullCommand([], options, capture()), 0);

  const listeners = process.listenerCount('SIGINT');
  const interrupted = capture();
  const running = verifyCommand([], options, interrupted);
  process.emit('SIGINT');
  assert.equal(await running, 130, interrupted.err());
  assert.match(interrupted.err(), /^interrupted: /);
  assert.equal(interrupted.out(), '', 'no verdict is printed for an interrupted verify');
  assert.equal(process.listenerCount('SIGINT'), listeners, 'the Ctrl-C listener is removed');

  const whole = capture();
  assert.equal(await verifyCommand([], options, whole), 0, whole.err());
  assert.equal(whole.out(), 'tiny: 1 file ok\n');
});
