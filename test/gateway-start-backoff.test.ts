// A worker that dies before it is ever ready (a missing module, a bad command) is restarted with a
// growing pause, not as fast as it dies: a real gateway, real crashing processes, a manual clock.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Gateway, parseConfig } from '@kiln/gateway';
import { ManualClock } from '@kiln/protocol';

// The first process serves jobs (and keeps a marker file); every later one dies at start, as a
// second copy of a model that does not fit in GPU memory would.
const FIRST_ONLY_WORKER = `
import { openSync } from 'node:fs';
try { openSync('first.lock', 'wx'); } catch { process.exit(3); }
const auth = process.env.RUNPOD_AI_API_KEY;
for (;;) {
  const res = await fetch(process.env.RUNPOD_WEBHOOK_GET_JOB + '&job_in_progress=0', { headers: { authorization: auth } });
  if (res.status !== 200) { await res.arrayBuffer(); continue; }
  const job = await res.json();
  await fetch(process.env.RUNPOD_WEBHOOK_POST_OUTPUT.replace('$ID', job.id) + '&isStream=false', { method: 'POST', headers: { authorization: auth }, body: JSON.stringify({ output: 'ok' }) });
}
`;

const clock = new ManualClock(Date.now());
const logs: { level: string; message: string }[] = [];
let gateway: Gateway;
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-backoff-'));
  await writeFile(path.join(dir, 'first-only.mjs'), FIRST_ONLY_WORKER);
  const config = parseConfig(
    {
      endpoints: {
        broken: { worker: { command: `${process.execPath} -e "process.exit(3)"` }, workersMin: 0, workersMax: 2 },
        half: { worker: { command: `${process.execPath} first-only.mjs` }, workersMin: 2, workersMax: 3 },
      },
      gateway: { port: 0, stopGraceMs: 1000 },
    },
    { baseDir: dir, env: {} },
  );
  const capture = (level: string) => (message: string) => void logs.push({ level, message });
  // Ticks only when the test calls gateway.tick(): the clock does not move by itself.
  gateway = new Gateway(config, { clock, tickMs: 3_600_000, log: { info: capture('info'), warn: capture('warn'), error: capture('error') } });
  await gateway.start();
});

after(async () => {
  await gateway?.stop();
  await rm(dir, { recursive: true, force: true });
});

const starts = (endpoint = 'broken') => logs.filter((l) => l.message.startsWith(`starting worker ${endpoint}-`)).length;
const failures = (endpoint = 'broken') => logs.filter((l) => l.level === 'warn' && l.message.includes(`of endpoint ${endpoint} exited before it was ready`));

/** Waits (real time, a safety net only) until `n` early exits were logged. */
async function exitsLogged(n: number, endpoint = 'broken'): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (failures(endpoint).length < n) {
    if (Date.now() > deadline) throw new Error(`${failures().length} early exits logged, wanted ${n}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a worker that exits before it is ready is restarted after 1 s, then 2 s, one at a time, while the job keeps waiting', async () => {
  const res = await fetch(`${gateway.url}/v2/broken/run`, { method: 'POST', body: JSON.stringify({ input: {} }) });
  assert.equal(res.status, 200);
  await exitsLogged(1);
  assert.match(failures()[0]!.message, /worker broken-\w+ of endpoint broken exited before it was ready \(1 in a row\); next start in 1000 ms/);
  await gateway.tick();
  assert.equal(starts(), 1, 'no restart during the pause, however often scaling runs');

  await clock.advance(1000);
  await gateway.tick();
  assert.equal(starts(), 2, 'one probe start after the pause, not workersMax');
  await exitsLogged(2);
  assert.match(failures()[1]!.message, /\(2 in a row\); next start in 2000 ms/);

  await clock.advance(1000);
  await gateway.tick();
  assert.equal(starts(), 2, 'the second pause is longer');
  await clock.advance(1000);
  await gateway.tick();
  assert.equal(starts(), 3);
  await exitsLogged(3);

  const job = (await (await fetch(`${gateway.url}/v2/broken/health`)).json()) as { jobs: { inQueue: number } };
  assert.equal(job.jobs.inQueue, 1, 'the job is still queued, for a worker that works');
});

test('a ready sibling does not lift the pause of workers that keep dying at start, and only one probe boots at a time', async () => {
  // workersMin 2: the first worker serves, every other one dies at once (its pauses also ran during the test above).
  const deadline = Date.now() + 15_000;
  const settled = () => gateway.registry.list('half').some((w) => w.readyAt !== null) && failures('half').length === starts('half') - 1;
  while (!settled()) {
    if (Date.now() > deadline) throw new Error(`half: ${starts('half')} starts, ${failures('half').length} early exits`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const last = /\((\d+) in a row\); next start in (\d+) ms/.exec(failures('half').at(-1)!.message)!;
  const [inARow, delayMs] = [Number(last[1]), Number(last[2])];
  const before = starts('half');
  await gateway.tick();
  await gateway.tick();
  assert.equal(starts('half'), before, 'no restart during the pause although a sibling is ready');
  await clock.advance(delayMs);
  await gateway.tick();
  await gateway.tick();
  assert.equal(starts('half'), before + 1, 'one probe after the pause, however many ticks');
  await exitsLogged(inARow + 1, 'half');
  assert.match(failures('half').at(-1)!.message, new RegExp(`\\(${inARow + 1} in a row\\); next start in ${delayMs * 2} ms`));
});
