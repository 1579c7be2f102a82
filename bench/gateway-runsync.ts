/**
 * `/runsync` round trip through the gateway with a warm no-op worker (1 worker, concurrency 1),
 * beside a bare `node:http` JSON echo server: one keep-alive client, one request at a time, the
 * same tiny body, in the same process and run, blocks of requests alternating round by round.
 * A runsync is client → gateway (enqueue) → the worker's parked job-take → handler → job-done →
 * gateway → client: three HTTP exchanges and a handful of store statements, where the echo is one
 * exchange. The three-hop relay floor is those three exchanges and nothing else: a
 * {@link FloorJobServer} in this process (bare node:http, an in-memory queue) that hands the
 * runsync's job to the same no-op worker bundle's parked job-take and answers the client when its
 * job-done arrives. Relay ÷ echo is what three hops cost; gateway ÷ relay is what the gateway adds.
 */
import { performance } from 'node:perf_hooks';
import type { BenchConfig } from './config.ts';
import {
  cpuDelta,
  cpuOf,
  JsonClient,
  ownCpuUs,
  postgresServerCpu,
  startEchoServer,
  startFloorServer,
  startFloorWorkers,
  startGateway,
  STORE_LABEL,
  type GatewayBenchSetup,
  type FloorWorkers,
  type GatewayRig,
  type StoreCallStats,
  type StoreKind,
} from './gateway-harness.ts';
import type { FloorJobServer } from './floor-job-server.ts';

/** The one-exchange floor's label. */
export const RUNSYNC_ECHO = 'node:http echo';
/** The three-exchange floor's label. */
export const RUNSYNC_RELAY = 'three-hop relay floor';
/** The variant the target is judged on (the gateway's default store). */
export const RUNSYNC_HEADLINE = 'runsync (SQLite)';

/** One thing timed: the echo, the relay floor, or runsync through the gateway on a store. */
export interface RunsyncVariant {
  label: string;
  kind: 'echo' | 'relay' | 'gateway';
  store: StoreKind | null;
}

/** Per round and variant. */
export interface RunsyncBlock {
  /** Round trip per request, ms, in order. */
  samplesMs: number[];
  /** This process's CPU (client + server / gateway) per request, µs. */
  benchCpuUsPerRequest: number;
  /** The worker process's CPU per request, µs (runsync and relay). */
  workerCpuUsPerRequest: number | null;
  /** Every PostgreSQL server process's CPU per request, µs (PostgreSQL runsync only). */
  postgresCpuUsPerRequest: number | null;
  /** Store calls per method over the block (runsync only). */
  store: StoreCallStats | null;
}

/** Everything measured. */
export interface GatewayRunsyncResult {
  rounds: number;
  requestsPerRound: number;
  warmupRequests: number;
  variants: RunsyncVariant[];
  /** Per variant label, one block per round. */
  blocks: Record<string, RunsyncBlock[]>;
  orders: string[][];
  /** Answers that were not HTTP 200 + COMPLETED, per variant (warm-up included). */
  badAnswers: Record<string, number>;
  logLines: Record<string, { warn: number; error: number; last: string[] }>;
  skipped: string[];
}

interface Target {
  variant: RunsyncVariant;
  url: URL;
  client: JsonClient;
  rig: GatewayRig | null;
  /** The worker process serving the variant (none for the echo). */
  workerPids(): number[];
}

/** Runs warm-up, then `rounds` rounds of `requestsPerRound` sequential requests per variant, order rotated. */
export async function measureGatewayRunsync(config: BenchConfig, setup: GatewayBenchSetup, progress: (text: string) => void): Promise<GatewayRunsyncResult> {
  const { rounds, requestsPerRound, warmupRequests } = config.gatewayRunsync;
  const skipped: string[] = [];
  const stores: StoreKind[] = ['sqlite'];
  if (setup.postgres.available) stores.push('postgres');
  else skipped.push(`runsync (PostgreSQL): ${setup.postgres.reason}`);

  const targets: Target[] = [];
  const echo = await startEchoServer();
  let relayServer: FloorJobServer | undefined;
  let relayWorkers: FloorWorkers | undefined;
  try {
    targets.push({ variant: { label: RUNSYNC_ECHO, kind: 'echo', store: null }, url: echo.url, client: new JsonClient(1), rig: null, workerPids: () => [] });
    relayServer = await startFloorServer();
    const workers = startFloorWorkers(config, setup, relayServer, { workers: 1, concurrency: 1 });
    relayWorkers = workers;
    await workers.waitForParked(1);
    targets.push({
      variant: { label: RUNSYNC_RELAY, kind: 'relay', store: null },
      url: relayServer.runsyncUrl,
      client: new JsonClient(1),
      rig: null,
      workerPids: () => [...workers.pids],
    });
    for (const store of stores) {
      const rig = await startGateway(config, setup, { store, workers: 1, concurrency: 1 });
      targets.push({
        variant: { label: `runsync (${STORE_LABEL[store]})`, kind: 'gateway', store },
        url: new URL(`${rig.endpointUrl}/runsync`),
        client: new JsonClient(1),
        rig,
        workerPids: () => rig.workerPids(),
      });
      await rig.waitForIdleWorkers(1);
    }
    const result: GatewayRunsyncResult = {
      rounds,
      requestsPerRound,
      warmupRequests,
      variants: targets.map((t) => t.variant),
      blocks: Object.fromEntries(targets.map((t) => [t.variant.label, []])),
      orders: [],
      badAnswers: Object.fromEntries(targets.map((t) => [t.variant.label, 0])),
      logLines: {},
      skipped,
    };
    for (const target of targets) await runBlock(target, warmupRequests, result);
    for (let round = 0; round < rounds; round++) {
      const shift = round % targets.length;
      const order = [...targets.slice(shift), ...targets.slice(0, shift)];
      result.orders.push(order.map((t) => t.variant.label));
      for (const target of order) {
        const block = await runBlock(target, requestsPerRound, result);
        result.blocks[target.variant.label]!.push(block);
        const sorted = [...block.samplesMs].sort((a, b) => a - b);
        progress(`  round ${round + 1} ${target.variant.label}: p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(3)} ms`);
      }
    }
    for (const t of targets) {
      if (t.rig) result.logLines[t.variant.label] = { warn: t.rig.log.warn, error: t.rig.log.error, last: [...t.rig.log.last] };
    }
    // The relay has no gateway log: its worker's own WARN / ERROR lines stand in.
    const relayLog = workers.logLines();
    result.logLines[RUNSYNC_RELAY] = { warn: relayLog.warn, error: relayLog.error, last: [] };
    return result;
  } finally {
    for (const t of targets) t.client.close();
    for (const t of targets) await t.rig?.stop();
    await relayWorkers?.stop();
    await relayServer?.stop();
    await echo.stop();
  }
}

async function runBlock(target: Target, requests: number, result: GatewayRunsyncResult): Promise<RunsyncBlock> {
  const { rig, url, client, variant } = target;
  const workerPids = target.workerPids();
  rig?.probe.reset();
  const samplesMs: number[] = new Array<number>(requests);
  const pg0 = variant.store === 'postgres' ? postgresServerCpu() : undefined;
  const workers0 = cpuOf(workerPids);
  const cpu0 = ownCpuUs();
  let bad = 0;
  for (let i = 0; i < requests; i++) {
    const body = `{"input":{"n":${i}}}`;
    const t0 = performance.now();
    const res = await client.post(url, body);
    samplesMs[i] = performance.now() - t0;
    if (res.status !== 200 || (JSON.parse(res.body) as { status?: string }).status !== 'COMPLETED') {
      bad++;
      if (bad > Math.max(10, requests / 20)) throw new Error(`${variant.label}: ${bad} bad answers, last ${res.status} ${res.body.slice(0, 300)}`);
    }
  }
  const cpu1 = ownCpuUs();
  const workers1 = cpuOf(workerPids);
  const pg1 = pg0 ? postgresServerCpu() : undefined;
  result.badAnswers[variant.label]! += bad;
  return {
    samplesMs,
    benchCpuUsPerRequest: (cpu1 - cpu0) / requests,
    workerCpuUsPerRequest: variant.kind === 'echo' ? null : cpuDelta(workers0, workers1) / requests,
    postgresCpuUsPerRequest: pg0 && pg1 ? cpuDelta(pg0, pg1) / requests : null,
    store: rig ? structuredClone(rig.probe.stats) : null,
  };
}
