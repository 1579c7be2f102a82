/**
 * Model pull throughput: a 1 GiB set of files (4 × 256 MiB, generated into a temp folder and
 * deleted afterwards) served by a loopback HTTP server in a child process, fetched by kiln
 * (`ModelStore.pull`: 4 files at once, each into `.part`, SHA-256 verified, fsynced, renamed) and by
 * `curl --parallel --parallel-immediate --parallel-max 4` (no verification, no fsync) from the same server, in rounds
 * whose order alternates. kiln is also run without fsync, to show what durability costs. Every run
 * writes into a fresh folder; dirty pages are flushed (`sync`) between runs so that one run's
 * write-back does not land in the next one's time. A second server caps each connection at
 * {@link CAPPED_LINK_BYTES_PER_SECOND}: on bare loopback the CPU sets the pace (two cores shared by
 * server and client), through the capped link the network does, as on a real download.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ModelStore, parseManifest } from '@kiln/models';
import type { ProcessGroup } from './child-process.ts';
import type { BenchConfig } from './config.ts';
import { median, pairwiseRatios, spread, type Spread } from './stats.ts';

/** What is pulled: the 1 GB set. */
export const MODELS_PULL_SET = { files: 4, bytesPerFile: 256 << 20 } as const;
/** The variants, in their round-0 order: on bare loopback, and through a link capped per connection. */
export const MODELS_PULL_VARIANTS = ['kiln', 'kiln (no fsync)', 'curl', 'kiln, capped link', 'curl, capped link'] as const;
/** The capped link: bytes per second per connection (4 connections: 400 MB/s, a fast link to a CDN). */
export const CAPPED_LINK_BYTES_PER_SECOND = 100e6;
/** One of {@link MODELS_PULL_VARIANTS}. */
export type ModelsPullVariant = (typeof MODELS_PULL_VARIANTS)[number];
/** The aim: kiln's throughput at least this fraction of curl's. */
export const MODELS_PULL_TARGET = 0.9;
const SERVER_READY_TIMEOUT_MS = 10_000;

/** Raw results: one wall time per variant per measured round. */
export interface ModelsPullResult {
  files: number;
  bytes: number;
  rounds: number;
  curlVersion: string;
  samplesMs: Record<ModelsPullVariant, number[]>;
  orders: ModelsPullVariant[][];
}

/** The figures the report prints. */
export interface ModelsPullSummary {
  /** Median MB/s (10^6 bytes) per variant, with the spread of per-round MB/s. */
  throughputMBps: Record<ModelsPullVariant, Spread>;
  /** kiln / curl throughput: of the medians, and per round. */
  kilnVsCurl: { ofMedians: number; perRound: Spread };
  kilnNoFsyncVsCurl: { ofMedians: number; perRound: Spread };
  /** The same through the capped link, where the network rather than the CPU sets the pace. */
  cappedKilnVsCurl: { ofMedians: number; perRound: Spread };
  target: number;
  met: boolean;
}

// The file server runs in its own process, so that neither client shares an event loop with it.
const SERVER = `
const http = require('node:http'), fs = require('node:fs'), path = require('node:path');
const dir = process.env.BENCH_DIR;
const rate = Number(process.env.BENCH_RATE || 0);
http.createServer((req, res) => {
  const file = path.join(dir, path.basename(req.url));
  let size; try { size = fs.statSync(file).size; } catch { res.writeHead(404).end(); return; }
  const m = /^bytes=(\\d+)-(\\d*)$/.exec(req.headers.range || '');
  const start = m ? Number(m[1]) : 0, end = m && m[2] ? Number(m[2]) : size - 1;
  res.writeHead(m ? 206 : 200, { 'content-length': end - start + 1, 'accept-ranges': 'bytes', ...(m ? { 'content-range': 'bytes ' + start + '-' + end + '/' + size } : {}) });
  const stream = fs.createReadStream(file, { start, end, highWaterMark: rate > 0 ? 256 << 10 : 1 << 20 });
  if (rate === 0) return void stream.pipe(res);
  const began = Date.now();
  let sent = 0;
  stream.on('data', (chunk) => {
    res.write(chunk);
    sent += chunk.length;
    const ahead = sent / rate * 1000 - (Date.now() - began);
    if (ahead > 0) { stream.pause(); setTimeout(() => stream.resume(), ahead); }
  });
  stream.on('end', () => res.end());
}).listen(Number(process.env.BENCH_PORT), '127.0.0.1');
`;

/** Runs the benchmark; `progress` gets a line per run. */
export async function measureModelsPull(config: BenchConfig, processes: ProcessGroup, progress: (text: string) => void): Promise<ModelsPullResult> {
  const curl = spawnSync('curl', ['--version'], { encoding: 'utf8' });
  if (curl.status !== 0) throw new Error('models-pull needs curl on PATH (the baseline it is compared with)');
  const curlVersion = curl.stdout.split('\n')[0] ?? 'curl';
  const rounds = config.quick ? 2 : 5;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-bench-models-'));
  const source = path.join(dir, 'source');
  await mkdir(source);
  try {
    progress(`models-pull: generating ${MODELS_PULL_SET.files} × ${MODELS_PULL_SET.bytesPerFile >> 20} MiB in ${source}`);
    const digests: string[] = [];
    for (let i = 0; i < MODELS_PULL_SET.files; i++) digests.push(await writeRandomFile(path.join(source, `weights-${i}.bin`), MODELS_PULL_SET.bytesPerFile, i));
    const port = await freePort();
    const cappedPort = await freePort();
    const server = processes.spawn(config.node, ['-e', SERVER], { env: { ...config.baseEnv, BENCH_DIR: source, BENCH_PORT: String(port) }, cwd: dir });
    const capped = processes.spawn(config.node, ['-e', SERVER], { env: { ...config.baseEnv, BENCH_DIR: source, BENCH_PORT: String(cappedPort), BENCH_RATE: String(CAPPED_LINK_BYTES_PER_SECOND) }, cwd: dir });
    try {
      const urlsOf = (p: number) => digests.map((_, i) => `http://127.0.0.1:${p}/weights-${i}.bin`);
      const urls = urlsOf(port);
      const cappedUrls = urlsOf(cappedPort);
      await waitForServer(urls[0]!);
      await waitForServer(cappedUrls[0]!);
      const manifestOf = (list: string[]) =>
        parseManifest(Object.fromEntries(digests.map((sha256, i) => [`weights-${i}`, { source: list[i]!, sha256, size: MODELS_PULL_SET.bytesPerFile }])), { baseDir: dir });
      const manifest = manifestOf(urls);
      const cappedManifest = manifestOf(cappedUrls);

      const run: Record<ModelsPullVariant, (out: string) => Promise<number>> = {
        kiln: (out) => pullWithKiln(manifest, out, true),
        'kiln (no fsync)': (out) => pullWithKiln(manifest, out, false),
        curl: (out) => pullWithCurl(processes, urls, out, config),
        'kiln, capped link': (out) => pullWithKiln(cappedManifest, out, true),
        'curl, capped link': (out) => pullWithCurl(processes, cappedUrls, out, config),
      };
      const samplesMs = Object.fromEntries(MODELS_PULL_VARIANTS.map((v) => [v, [] as number[]])) as Record<ModelsPullVariant, number[]>;
      const orders: ModelsPullVariant[][] = [];
      // One unmeasured round warms the page cache and the server.
      for (let round = -1; round < rounds; round++) {
        const order = round % 2 === 0 || round === -1 ? [...MODELS_PULL_VARIANTS] : [...MODELS_PULL_VARIANTS].reverse();
        if (round >= 0) orders.push(order);
        for (const variant of order) {
          const out = path.join(dir, `out-${round + 1}-${variant.replace(/\W+/g, '-')}`);
          await mkdir(out);
          const ms = await run[variant](out);
          await rm(out, { recursive: true, force: true });
          spawnSync('sync');
          if (round < 0) continue;
          samplesMs[variant].push(ms);
          progress(`  round ${round + 1} ${variant}: ${(bytesOfSet() / 1e6 / (ms / 1000)).toFixed(0)} MB/s (${(ms / 1000).toFixed(2)} s)`);
        }
      }
      return { files: MODELS_PULL_SET.files, bytes: bytesOfSet(), rounds, curlVersion, samplesMs, orders };
    } finally {
      await server.kill();
      await capped.kill();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Medians, spreads and the kiln/curl ratio. */
export function summarizeModelsPull(result: ModelsPullResult): ModelsPullSummary {
  const mbps = (ms: number) => result.bytes / 1e6 / (ms / 1000);
  const throughputMBps = Object.fromEntries(MODELS_PULL_VARIANTS.map((v) => [v, spread(result.samplesMs[v].map(mbps))])) as Record<ModelsPullVariant, Spread>;
  // Throughput ratio = inverse time ratio.
  const versus = (variant: ModelsPullVariant, baseline: ModelsPullVariant = 'curl') => ({
    ofMedians: median(result.samplesMs[baseline]) / median(result.samplesMs[variant]),
    perRound: spread(pairwiseRatios(result.samplesMs[baseline], result.samplesMs[variant])),
  });
  const kilnVsCurl = versus('kiln');
  return {
    throughputMBps,
    kilnVsCurl,
    kilnNoFsyncVsCurl: versus('kiln (no fsync)'),
    cappedKilnVsCurl: versus('kiln, capped link', 'curl, capped link'),
    target: MODELS_PULL_TARGET,
    met: kilnVsCurl.ofMedians >= MODELS_PULL_TARGET,
  };
}

/** The report's lines for this benchmark. */
export function formatModelsPull(result: ModelsPullResult): string {
  const s = summarizeModelsPull(result);
  const line = (v: ModelsPullVariant) => {
    const t = s.throughputMBps[v];
    return `  ${v.padEnd(18)} ${t.median.toFixed(0).padStart(5)} MB/s  [${t.min.toFixed(0)}–${t.max.toFixed(0)}]`;
  };
  const ratio = (r: { ofMedians: number; perRound: Spread }) => `×${r.ofMedians.toFixed(2)} (per round ×${r.perRound.median.toFixed(2)} [${r.perRound.min.toFixed(2)}–${r.perRound.max.toFixed(2)}])`;
  return [
    `models-pull: ${result.files} × ${result.bytes / result.files / 2 ** 20} MiB from a loopback HTTP server, 4 at once, ${result.rounds} rounds, medians (${result.curlVersion.split(' ').slice(0, 2).join(' ')})`,
    ...MODELS_PULL_VARIANTS.map(line),
    `  kiln / curl throughput: ${ratio(s.kilnVsCurl)}  target ≥ ${s.target}: ${s.met ? 'met' : 'missed'}`,
    `  kiln (no fsync) / curl: ${ratio(s.kilnNoFsyncVsCurl)}`,
    `  capped link (${CAPPED_LINK_BYTES_PER_SECOND / 1e6} MB/s per connection), kiln / curl: ${ratio(s.cappedKilnVsCurl)}`,
  ].join('\n');
}

async function pullWithKiln(manifest: ReturnType<typeof parseManifest>, volume: string, durable: boolean): Promise<number> {
  const store = new ModelStore({ manifest, volume, concurrency: 4, durable });
  const started = performance.now();
  const report = await store.pull();
  const ms = performance.now() - started;
  if (report.failures.length > 0) throw new Error(`kiln pull failed: ${String(report.failures[0]!.error)}`);
  return ms;
}

async function pullWithCurl(processes: ProcessGroup, urls: readonly string[], out: string, config: BenchConfig): Promise<number> {
  // --parallel-immediate: without it curl holds back new connections hoping to multiplex them, which HTTP/1.1 cannot.
  const args = ['--silent', '--show-error', '--fail', '--parallel', '--parallel-immediate', '--parallel-max', '4', ...urls.flatMap((url, i) => [url, '--output', path.join(out, `weights-${i}.bin`)])];
  const started = performance.now();
  const child = processes.spawn('curl', args, { env: { ...config.baseEnv }, cwd: out });
  const exit = await child.exited;
  const ms = performance.now() - started;
  if (exit.code !== 0) throw new Error(`curl failed (${exit.code}): ${child.output.tail}`);
  return ms;
}

/** Writes `bytes` of random-looking data (a random block, re-keyed per MiB) and returns its SHA-256. */
async function writeRandomFile(file: string, bytes: number, seed: number): Promise<string> {
  const block = randomFillSync(Buffer.alloc(1 << 20));
  const hash = createHash('sha256');
  const stream = createWriteStream(file);
  for (let offset = 0; offset < bytes; offset += block.length) {
    block.writeUInt32LE(seed, 0);
    block.writeUInt32LE(offset / block.length, 4);
    const chunk = Buffer.from(block);
    hash.update(chunk);
    if (!stream.write(chunk)) await once(stream, 'drain');
  }
  stream.end();
  await once(stream, 'finish');
  return hash.digest('hex');
}

function bytesOfSet(): number {
  return MODELS_PULL_SET.files * MODELS_PULL_SET.bytesPerFile;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForServer(url: string): Promise<void> {
  const deadline = Date.now() + SERVER_READY_TIMEOUT_MS;
  for (;;) {
    try {
      const res = await fetch(url, { headers: { range: 'bytes=0-0' } });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`models-pull: the file server did not answer at ${url}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
