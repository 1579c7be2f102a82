// The Python example: a handler written against RunPod's SDK, run by the gateway unchanged
// (`python3 handler.py`) when the `runpod` package is installed; and its own unit tests, which stub
// the SDK and therefore run everywhere.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Gateway, parseConfig } from '@kiln/gateway';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const EXAMPLE = path.join(ROOT, 'examples/python-runpod');

const probe = spawnSync('python3', ['-c', 'import runpod'], { encoding: 'utf8' });
const skipGateway =
  probe.status === 0
    ? false
    : `python3 cannot import runpod (${(probe.stderr || probe.error?.message || '').trim().split('\n').pop()}); run \`pip install runpod\` to run this example through the gateway`;

test('through the gateway: RunPod’s own Python worker runs handler.py unchanged', { skip: skipGateway }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-python-e2e-'));
  const config = parseConfig(
    {
      endpoints: { py: { worker: { command: 'python3 handler.py', cwd: EXAMPLE }, workersMin: 0, workersMax: 1, idleTimeout: 60 } },
      gateway: { port: 0, pingIntervalMs: 1000, pingTimeoutMs: 15_000, stopGraceMs: 2000 },
    },
    { baseDir: dir, env: {} },
  );
  const gateway = new Gateway(config, { tickMs: 100, log: { info() {}, warn() {}, error() {} } });
  await gateway.start();
  try {
    const runsync = async (input: unknown) => {
      const res = await fetch(`${gateway.url}/v2/py/runsync?wait=60000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input }) });
      return (await res.json()) as { status: string; output?: Record<string, unknown>; error?: string };
    };
    const health = await runsync({ action: 'health_check' });
    assert.equal(health.status, 'COMPLETED');
    assert.deepEqual(health.output, { status: 'healthy', model_loaded: false });
    const spoken = await runsync({ action: 'synthesize', text: 'hello from python' });
    assert.equal(spoken.status, 'COMPLETED');
    const wav = Buffer.from(String(spoken.output?.['audio_base64']), 'base64');
    assert.equal(wav.subarray(0, 4).toString('ascii'), 'RIFF');
    assert.equal(wav.readUInt32LE(24), spoken.output?.['sample_rate']);
    const status = await runsync({ action: 'get_status' });
    assert.equal(status.output?.['model_loads'], 1);
    // runpod-python turns a returned {"error": …} into a FAILED job carrying that error.
    const bad = await runsync({ action: 'dance' });
    assert.equal(bad.status, 'FAILED');
    assert.match(String(bad.error), /Unknown action: dance/);
  } finally {
    await gateway.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('handler.py’s unit tests pass under python3 with runpod stubbed', () => {
  const run = spawnSync('python3', ['-m', 'unittest', '-v', 'test_handler'], {
    cwd: EXAMPLE,
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '', PYTHONDONTWRITEBYTECODE: '1' },
    timeout: 60_000,
  });
  assert.equal(run.error, undefined, 'python3 must be on PATH');
  // unittest reports on stderr.
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, /^Ran 6 tests in /m);
  assert.match(run.stderr, /^OK$/m);
  for (const name of ['test_bad_inputs_return_errors', 'test_health_check_does_not_load_the_model', 'test_importing_starts_nothing_and_loads_no_model', 'test_the_model_loads_once_across_requests']) {
    assert.match(run.stderr, new RegExp(`${name} .*\\.\\.\\. ok`));
  }
});
