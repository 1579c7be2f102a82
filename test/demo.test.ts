// `npm run demo` as a user runs it (the script itself; the test run has built the packages already):
// it must exit 0, say for every endpoint of examples/kiln.config.json what happened (COMPLETED, or
// SKIPPED with a reason), skip the Python endpoint with its reason when runpod-python is missing,
// and leave valid media files behind.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseWav } from '../examples/tts/src/wav.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function runDemo(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/demo.mjs')], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}

test('npm run demo: one job per endpoint, a line each, media written to files, exit 0', async () => {
  const { code, stdout, stderr } = await runDemo();
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  const config = JSON.parse(readFileSync(path.join(ROOT, 'examples/kiln.config.json'), 'utf8')) as { endpoints: Record<string, unknown> };
  const statusOf = (endpoint: string) => new RegExp(`^${endpoint}\\s+(COMPLETED|SKIPPED)\\s+(.*)$`, 'm').exec(stdout);
  for (const endpoint of Object.keys(config.endpoints)) assert.ok(statusOf(endpoint), `no status line for ${endpoint}:\n${stdout}`);

  const runpodMissing = spawnSync('python3', ['-c', 'import runpod']).status !== 0;
  const python = statusOf('python-runpod')!;
  if (runpodMissing) {
    assert.equal(python[1], 'SKIPPED');
    assert.match(python[2]!, /import runpod.*No module named 'runpod'/);
  } else {
    // With runpod-python installed it runs, unless its folder has no test_input.json to send.
    assert.ok(python[1] === 'COMPLETED' || /no test_input\.json/.test(python[2]!), python[0]);
  }

  assert.equal(statusOf('echo')![1], 'COMPLETED');
  const tts = statusOf('tts')!;
  assert.equal(tts[1], 'COMPLETED');
  assert.match(tts[2]!, /delay \d+(\.\d+)? m?s, execution \d+(\.\d+)? m?s, cold start \d+(\.\d+)? m?s/);
  assert.match(stdout, /model flite: (verified|pulled)/);

  const written = [...stdout.matchAll(/^\s+wrote (\S+)$/gm)].map((m) => path.resolve(ROOT, m[1]!));
  const wavFile = written.find((f) => path.basename(f).startsWith('tts-') && f.endsWith('.wav'));
  assert.ok(wavFile, `no WAV written for tts:\n${stdout}`);
  // The output printed names the file instead of carrying base64.
  assert.ok(stdout.includes(`"audio_base64":"${path.relative(ROOT, wavFile)}"`), stdout);
  const bytes = readFileSync(wavFile);
  assert.equal(bytes.subarray(0, 4).toString('ascii'), 'RIFF');
  assert.equal(bytes.readUInt32LE(4), bytes.length - 8, 'RIFF size covers the file');
  const wav = parseWav(bytes);
  assert.equal(wav.sampleRate, 16_000);
  assert.ok(wav.samples.length > 16_000, 'more than a second of audio');
  for (const file of written) assert.ok(readFileSync(file).length > 0, `${file} is empty`);
});
