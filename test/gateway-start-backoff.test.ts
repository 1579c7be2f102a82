// A worker that dies before it is ever ready (a missing module, a bad command) is restarted with a
// growing pause, not as fast as it dies: a real gateway, real crashing processes, a manual clock.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Gateway, parseConfig } from '@kiln/gateway';
import { ManualClock } from '@kiln/protocol';

const clock = new ManualClock(Date.now());
const logs: { level: string; message: string }[] = [];
let gateway: Gateway;
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-backoff-'));
  const config = parseConfig(
    {
      endpoints: { broken: { worker: { command: `${process.execPath} -e "process.exit(3)"` }, workersMin: 0, workersMax: 2 } },
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

const starts = () => logs.filter((l) => l.message.startsWith('starting worker broken-')).length;
const failures = () => logs.filter((l) => l.level === 'warn' && /exited before it was ready/.test(l.message));

/** Waits (real time, a safety net only) until `n` early exits were logged. */
async function exitsLogged(n: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (failures().length < n) {
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
