/**
 * How long a stream chunk takes from the worker's `job-stream` POST to a client, through the
 * gateway: SSE (`Accept: text/event-stream`) beside the JSON long-poll `/stream` (a keep-alive
 * client re-requesting at once, as RunPod's JS SDK does) and `runpod-sdk`'s own `stream()`, in
 * one run. The bench itself is the worker: a token registered with the gateway's registry, a
 * job-take, then `chunksPerJob` job-stream POSTs a few ms apart, timed from just before each POST
 * to the moment the client has parsed that chunk. One job per client and round (the long-poll's
 * delivered-once marks would let two pollers of one job steal from each other); client order
 * rotates round by round. Everything runs in this process on `performance.now()`; the jobs are
 * lowPriority, so the gateway never starts a worker process of its own.
 */
import { randomBytes } from 'node:crypto';
import dc from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import runpodSdk from 'runpod-sdk';
import { Gateway, parseConfig } from '@kiln/gateway';
import { sleep } from './clock.ts';
import { httpCall as call } from './http-call.ts';
import type { BenchConfig } from './config.ts';
import { latencySummary, median, type LatencySummary } from './stats.ts';

/** The clients compared, in report order; the first is the reference for ratios. */
export const STREAM_CLIENTS = ['SSE', 'long-poll /stream', 'runpod-sdk stream()'] as const;
/** One of {@link STREAM_CLIENTS}. */
export type StreamClient = (typeof STREAM_CLIENTS)[number];

const ENDPOINT = 'stream';
const API_KEY = 'bench-key';
/** Chunks of each client's unrecorded warm-up job. */
const WARMUP_CHUNKS = 30;

/** Everything measured. */
export interface StreamLatencyResult {
  rounds: number;
  chunksPerJob: number;
  spacingMs: readonly [number, number];
  /** POST → arrival per chunk, ms, per client (all rounds, in order). */
  samplesMs: Record<StreamClient, number[]>;
  /** HTTP requests the client made to `/stream`, per round. */
  requests: Record<StreamClient, number[]>;
  /** This process's CPU (gateway + the bench as worker + the client) per chunk, µs, per round. */
  cpuUsPerChunk: Record<StreamClient, number[]>;
  orders: StreamClient[][];
  /** Chunks a client missed or got twice (should be none), and gateway WARN/ERROR lines. */
  problems: string[];
}

/** Medians and percentiles per client, and each client's p50/p99 as a multiple of SSE's. */
export interface StreamLatencySummary {
  chunks: number;
  clients: Record<StreamClient, LatencySummary & { p50VsSse: number; p99VsSse: number; requestsPerJob: number; cpuUsPerChunk: number }>;
  problems: string[];
}

/** Starts a gateway on a fresh SQLite file and times every client over `rounds` rounds. */
export async function measureStreamLatency(config: BenchConfig, progress: (text: string) => void): Promise<StreamLatencyResult> {
  const { rounds, chunksPerJob, spacingMs } = config.streamLatency;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-stream-'));
  const problems: string[] = [];
  // Start-up notices (configuration advice) are not problems of the run.
  let started = false;
  const note = (level: string) => (message: string) => void (started && problems.length < 10 && problems.push(`${level} ${message}`));
  const gatewayConfig = parseConfig(
    {
      // Never started: lowPriority jobs do not scale an endpoint up, and workersMin is 0.
      endpoints: { [ENDPOINT]: { worker: { command: `"${config.node}" -e 0` }, workersMin: 0, workersMax: 1 } },
      gateway: { host: '127.0.0.1', port: 0, apiKeys: [API_KEY], pingTimeoutMs: 600_000 },
    },
    { baseDir: dir, env: {} },
  );
  const gateway = new Gateway(gatewayConfig, { log: { info() {}, warn: note('WARN'), error: note('ERROR') } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  try {
    const base = new URL(`${await gateway.start()}/v2/${ENDPOINT}/`);
    started = true;
    const worker = { id: `bench-${randomBytes(3).toString('hex')}`, token: randomBytes(18).toString('base64url') };
    gateway.registry.register({ workerId: worker.id, endpoint: ENDPOINT, token: worker.token });
    const sdk = runpodSdk(API_KEY, { baseUrl: new URL('..', base).href.replace(/\/$/, '') }).endpoint(ENDPOINT);
    if (!sdk) throw new Error('runpod-sdk: endpoint() returned null');

    // Every request the HTTP server gets for /stream, whichever client sends it.
    let streamRequests = 0;
    countStreamRequests = (url) => void (url.includes(`/${ENDPOINT}/stream/`) && streamRequests++);
    const clients: Record<StreamClient, (jobId: string, arrived: (i: number) => void) => Promise<void>> = {
      SSE: (jobId, arrived) => readSse(new URL(`stream/${jobId}`, base), arrived),
      'long-poll /stream': (jobId, arrived) => longPoll(agent, new URL(`stream/${jobId}`, base), arrived),
      'runpod-sdk stream()': async (jobId, arrived) => {
        for await (const item of sdk.stream(jobId)) arrived(chunkIndex(item));
      },
    };
    const perClient = () => Object.fromEntries(STREAM_CLIENTS.map((c) => [c, [] as number[]])) as Record<StreamClient, number[]>;
    const samplesMs = perClient();
    const requests = perClient();
    const cpuUsPerChunk = perClient();
    const orders: StreamClient[][] = [];

    /** One job streamed to `client`: per chunk POST → arrival, /stream requests, CPU. */
    const timeOneJob = async (client: StreamClient, chunks: number, label: string) => {
      const run = await call(agent, 'POST', new URL('run', base), { authorization: `Bearer ${API_KEY}` }, { input: { label }, policy: { lowPriority: true } });
      const jobId = (JSON.parse(run.body) as { id: string }).id;
      const taken = await call(agent, 'GET', new URL(`job-take/${worker.id}?gpu=bench&job_in_progress=0`, base), { authorization: worker.token });
      if (taken.status !== 200 || (JSON.parse(taken.body) as { id: string }).id !== jobId) throw new Error(`job-take answered ${taken.status} ${taken.body.slice(0, 200)}`);

      const requests0 = streamRequests;
      const cpu0 = process.cpuUsage();
      const sentAt = new Array<number>(chunks).fill(NaN);
      const arrivedAt = new Array<number>(chunks).fill(NaN);
      let duplicates = 0;
      const reading = clients[client](jobId, (i) => {
        if (!Number.isNaN(arrivedAt[i]!)) duplicates++;
        arrivedAt[i] = performance.now();
      });
      // The client is parked on the job (its request holds a watch) before the first chunk goes out.
      while (gateway.events.waiting < 1) await sleep(1);
      const streamUrl = new URL(`job-stream/${worker.id}/${jobId}?gpu=bench&isStream=false`, base);
      for (let i = 0; i < chunks; i++) {
        sentAt[i] = performance.now();
        const posted = await call(agent, 'POST', streamUrl, { authorization: worker.token }, { output: { i } });
        if (posted.status !== 200) throw new Error(`job-stream answered ${posted.status} ${posted.body.slice(0, 200)}`);
        await sleep(spacingMs[0] + Math.random() * (spacingMs[1] - spacingMs[0]));
      }
      await call(agent, 'POST', new URL(`job-done/${worker.id}/${jobId}?gpu=bench&isStream=false`, base), { authorization: worker.token }, { output: 'done' });
      await reading;
      const cpu = process.cpuUsage(cpu0);

      const missing = arrivedAt.filter((t) => Number.isNaN(t)).length;
      if (missing > 0 || duplicates > 0) problems.push(`${client}, ${label}: ${missing} chunks missing, ${duplicates} twice`);
      return {
        latencies: arrivedAt.flatMap((t, i) => (Number.isNaN(t) ? [] : [t - sentAt[i]!])),
        requests: streamRequests - requests0,
        cpuUsPerChunk: (cpu.user + cpu.system) / chunks,
      };
    };

    // JIT, statement caches and sockets warm up on a short job per client first.
    for (const client of STREAM_CLIENTS) await timeOneJob(client, WARMUP_CHUNKS, 'warm-up');
    for (let round = 0; round < rounds; round++) {
      const order = STREAM_CLIENTS.map((_, i) => STREAM_CLIENTS[(i + round) % STREAM_CLIENTS.length]!);
      orders.push(order);
      for (const client of order) {
        const job = await timeOneJob(client, chunksPerJob, `round ${round + 1}`);
        samplesMs[client].push(...job.latencies);
        requests[client].push(job.requests);
        cpuUsPerChunk[client].push(job.cpuUsPerChunk);
        progress(`  round ${round + 1} ${client}: p50 ${median(job.latencies).toFixed(2)} ms, ${job.requests} requests`);
      }
    }
    return { rounds, chunksPerJob, spacingMs, samplesMs, requests, cpuUsPerChunk, orders, problems };
  } finally {
    countStreamRequests = undefined;
    agent.destroy();
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** p50/p90/p99 per client, and ratios to SSE. */
export function summarizeStreamLatency(result: StreamLatencyResult): StreamLatencySummary {
  const sse = latencySummary(result.samplesMs.SSE);
  const clients = Object.fromEntries(
    STREAM_CLIENTS.map((client) => {
      const s = latencySummary(result.samplesMs[client]);
      return [
        client,
        { ...s, p50VsSse: s.median / sse.median, p99VsSse: s.p99 / sse.p99, requestsPerJob: median(result.requests[client]), cpuUsPerChunk: median(result.cpuUsPerChunk[client]) },
      ];
    }),
  ) as StreamLatencySummary['clients'];
  return { chunks: result.samplesMs.SSE.length, clients, problems: result.problems };
}

/** The summary as a few lines of the bench report. */
export function formatStreamLatency(summary: StreamLatencySummary, result: StreamLatencyResult): string {
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const lines = [
    '',
    `Stream chunk latency: job-stream POST → chunk parsed by the client (${summary.chunks} chunks per client, ${result.spacingMs[0]}–${result.spacingMs[1]} ms apart, SQLite)`,
    `  ${'client'.padEnd(22)}${'p50'.padStart(10)}${'p90'.padStart(10)}${'p99'.padStart(10)}${'max'.padStart(10)}   p50 / SSE   p99 / SSE   requests/job   CPU µs/chunk`,
  ];
  for (const client of STREAM_CLIENTS) {
    const c = summary.clients[client];
    lines.push(
      `  ${client.padEnd(22)}${ms(c.median).padStart(10)}${ms(c.p90).padStart(10)}${ms(c.p99).padStart(10)}${ms(c.max).padStart(10)}   ${`×${c.p50VsSse.toFixed(2)}`.padStart(9)}   ${`×${c.p99VsSse.toFixed(2)}`.padStart(9)}   ${String(c.requestsPerJob).padStart(12)}   ${c.cpuUsPerChunk.toFixed(0).padStart(12)}`,
    );
  }
  lines.push(`  (requests/job: to /stream, per job of ${result.chunksPerJob} chunks; CPU: this process — gateway, the bench as worker, the client — medians over rounds)`);
  for (const problem of summary.problems) lines.push(`  ! ${problem}`);
  return lines.join('\n');
}

let countStreamRequests: ((url: string) => void) | undefined;
dc.subscribe('http.server.request.start', (message) => countStreamRequests?.((message as { request: http.IncomingMessage }).request.url ?? ''));

function chunkIndex(item: unknown): number {
  return ((item as { output: { i: number } }).output).i;
}

/** RunPod's long-poll: `GET /stream/{id}` again as soon as an answer is in, until the job is terminal. */
async function longPoll(agent: http.Agent, url: URL, arrived: (i: number) => void): Promise<void> {
  for (;;) {
    const res = await call(agent, 'GET', url, { authorization: `Bearer ${API_KEY}` });
    if (res.status !== 200) throw new Error(`/stream answered ${res.status} ${res.body.slice(0, 200)}`);
    const answer = JSON.parse(res.body) as { status: string; stream: unknown[] };
    for (const item of answer.stream) arrived(chunkIndex(item));
    if (answer.status !== 'IN_QUEUE' && answer.status !== 'IN_PROGRESS') return;
  }
}

/** An SSE request on its own socket: each chunk event as it is parsed; resolves after the status event ends the response. */
function readSse(url: URL, arrived: (i: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { authorization: `Bearer ${API_KEY}`, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE answered ${res.statusCode}`));
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (text: string) => {
        buffer += text;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!block.includes('\nevent: chunk\n')) continue;
          const data = block.slice(block.indexOf('\ndata: ') + 7);
          arrived(chunkIndex(JSON.parse(data)));
        }
      });
      res.on('end', () => resolve());
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
