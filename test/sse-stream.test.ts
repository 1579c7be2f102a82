// SSE on /stream over real sockets: a real gateway, the echo worker streaming word by word (an
// async generator), a client whose connection is killed mid-stream and which resumes with
// Last-Event-ID. What a browser's EventSource or `curl -N` would see.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Gateway, parseConfig } from '@kiln/gateway';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ECHO = path.join(ROOT, 'examples/echo');
const API_KEY = 'sse-key';

let gateway: Gateway;
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-sse-'));
  const config = parseConfig(
    {
      endpoints: { echo: { worker: { command: `${process.execPath} dist/worker.js`, cwd: ECHO }, workersMin: 1, workersMax: 1, idleTimeout: 60 } },
      gateway: { port: 0, apiKeys: [API_KEY], pingIntervalMs: 1000, pingTimeoutMs: 5000, stopGraceMs: 2000 },
    },
    { baseDir: dir, env: {} },
  );
  gateway = new Gateway(config, { tickMs: 100, log: { info() {}, warn() {}, error() {} } });
  await gateway.start();
});

after(async () => {
  await gateway?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface SseEvent {
  id?: string;
  event?: string;
  data?: unknown;
  comment?: string;
}

/** An SSE request on its own socket: the answer, and its events as they arrive. */
function openStream(jobId: string, lastEventId?: string): Promise<{ res: http.IncomingMessage; events: AsyncGenerator<SseEvent> }> {
  const url = new URL(`${gateway.url}/v2/echo/stream/${jobId}`);
  const headers: Record<string, string> = { authorization: `Bearer ${API_KEY}`, accept: 'text/event-stream' };
  if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => resolve({ res, events: readEvents(res) }));
    req.on('error', reject);
  });
}

/** Parses the body into events; leaving the loop early destroys the response and its socket. */
async function* readEvents(res: http.IncomingMessage): AsyncGenerator<SseEvent> {
  res.setEncoding('utf8');
  let buffer = '';
  for await (const text of res as AsyncIterable<string>) {
    buffer += text;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const event: SseEvent = {};
      for (const line of buffer.slice(0, end).split('\n')) {
        if (line.startsWith(':')) event.comment = line.slice(1).trim();
        else if (line.startsWith('id: ')) event.id = line.slice(4);
        else if (line.startsWith('event: ')) event.event = line.slice(7);
        else if (line.startsWith('data: ')) event.data = JSON.parse(line.slice(6));
      }
      buffer = buffer.slice(end + 2);
      yield event;
    }
  }
}

async function call(method: 'GET' | 'POST', route: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${gateway.url}/v2/echo/${route}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, unknown>;
}

/** Polls `check` every 10 ms (a real gateway and worker: there is no clock to drive). */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(10);
  }
}

const chunkSeq = (id: string | undefined) => Number(id?.split('.')[1]);

test('a client killed mid-stream resumes with Last-Event-ID: every word once, in order, then the status', { timeout: 60_000 }, async () => {
  const words = Array.from({ length: 40 }, (_, i) => `w${i}`);
  const { id } = (await call('POST', 'run', { input: { message: words.join(' '), stream: true, sleepMs: 2000 } })) as { id: string };

  const first = await openStream(id);
  assert.equal(first.res.statusCode, 200);
  assert.equal(first.res.headers['content-type'], 'text/event-stream');
  assert.equal(first.res.headers['cache-control'], 'no-cache');
  const received: SseEvent[] = [];
  for await (const event of first.events) {
    received.push(event);
    if (received.filter((e) => e.event === 'chunk').length === 10) break;
  }
  // Leaving the loop destroyed the socket: the gateway lets go of the stream's watch at once.
  await until('the gateway to drop the disconnected stream', () => gateway.events.waiting === 0);
  const lastId = received.at(-1)!.id!;
  // Let the worker stream on while nobody listens.
  await until('more words to be stored', async () => ((await gateway.store.get('echo', id))?.streamSeq ?? 0) >= chunkSeq(lastId) + 5);

  const second = await openStream(id, lastId);
  assert.equal(second.res.statusCode, 200);
  for await (const event of second.events) received.push(event);
  assert.equal(second.res.complete, true, 'the server ended the response after the status');

  const chunks = received.filter((e) => e.event === 'chunk');
  assert.deepEqual(
    chunks.map((e) => (e.data as { output: { word: string } }).output.word),
    words,
    'nothing lost, nothing twice',
  );
  assert.deepEqual(
    chunks.map((e) => chunkSeq(e.id)),
    words.map((_, i) => i + 1),
  );
  const last = received.at(-1)!;
  assert.equal(last.event, 'status');
  assert.equal(last.id, `0.${words.length}.0.end`);
  assert.deepEqual(last.data, await call('GET', `status/${id}`));
  assert.equal((last.data as { status: string }).status, 'COMPLETED');
  assert.equal(received.filter((e) => e.event === 'status').length, 1);

  // EventSource reconnects after the server ends the response: its final id gets 204 (stop).
  const again = await openStream(id, last.id);
  assert.equal(again.res.statusCode, 204);
  again.res.resume();
  assert.equal(gateway.events.waiting, 0);
});

test('a client that hangs up on a quiet stream costs the gateway nothing from that moment', { timeout: 30_000 }, async () => {
  const { id } = (await call('POST', 'run', { input: { message: 'quiet', sleepMs: 60_000 } })) as { id: string };
  const { res } = await openStream(id);
  assert.equal(res.statusCode, 200);
  await until('the stream to watch the job', () => gateway.events.waiting === 1);
  res.destroy();
  // Sooner than the once-a-second re-read that would otherwise notice (the job sends nothing).
  await until('the gateway to drop the stream', () => gateway.events.waiting === 0, 900);
  assert.equal((await call('POST', `cancel/${id}`, {}))['status'], 'CANCELLED');
});

test('without Accept: text/event-stream, /stream is the JSON long-poll RunPod clients expect', { timeout: 30_000 }, async () => {
  const { id } = (await call('POST', 'run', { input: { message: 'one two', stream: true } })) as { id: string };
  const outputs: unknown[] = [];
  for (;;) {
    const body = await call('GET', `stream/${id}`);
    assert.deepEqual(Object.keys(body).sort(), ['id', 'status', 'stream']);
    outputs.push(...(body['stream'] as { output: unknown }[]).map((item) => item.output));
    if (body['status'] === 'COMPLETED') break;
  }
  assert.deepEqual(outputs, [{ word: 'one' }, { word: 'two' }]);
});
