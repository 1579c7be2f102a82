/**
 * The dashboard's two costs that grow with use:
 * 1. Jobs-page API latency with 100,000 jobs in the store (SQLite and PostgreSQL): the first page,
 *    a filtered page, a deep page (cursor half way down), and the endpoints overview (its
 *    last-hour percentiles read the finished jobs), beside a point read of one job through the
 *    same stack in the same run (the baseline: auth, routing, one indexed row).
 * 2. Completion → row update in a real browser: Debian's Chromium shows the jobs page; the bench
 *    is the worker (a registered token, job-take, job-done) and times from just before the
 *    job-done POST to the moment the row's status cell reads COMPLETED (a MutationObserver in the
 *    page). Beside it, in the same run, a Node SSE reader of `/kiln/v1/events` timed to the same
 *    completion: the part of the browser figure that is the gateway's.
 * Both clocks are wall clocks on one machine (`performance.timeOrigin + performance.now()` in Node
 * and in the page).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { dashboardDir } from '@kiln/dashboard';
import { Gateway, parseConfig } from '@kiln/gateway';
import type { BenchConfig } from './config.ts';
import { httpCall } from './http-call.ts';
import { latencySummary, median, type LatencySummary } from './stats.ts';

const ENDPOINT = 'bench';
const API_KEY = 'bench-key';
const CHROMIUM = process.env.KILN_TEST_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The API requests timed, in report order; the first is the baseline. */
export const JOBS_API_QUERIES = ['point read (baseline)', 'first page', 'filtered page (FAILED, 2 %)', 'filtered page (2 states)', 'deep page (50 %)', 'endpoints overview'] as const;
type JobsApiQuery = (typeof JOBS_API_QUERIES)[number];

/** Everything measured. */
export interface DashboardBenchResult {
  jobs: number;
  /** Per store: request → parsed answer, ms, every sample. */
  api: Partial<Record<'SQLite' | 'PostgreSQL', Record<JobsApiQuery, number[]>>>;
  skipped: string[];
  /** Job-done POST → row reads COMPLETED in Chromium, ms. */
  browserMs: number[];
  /** Job-done POST → the `jobs` event with COMPLETED parsed by a Node SSE reader, ms (same jobs). */
  sseMs: number[];
  problems: string[];
}

/** Runs both parts. */
export async function measureDashboard(config: BenchConfig, progress: (text: string) => void): Promise<DashboardBenchResult> {
  const { jobs, requests, liveJobs } = config.dashboard;
  const result: DashboardBenchResult = { jobs, api: {}, skipped: [], browserMs: [], sseMs: [], problems: [] };
  for (const store of ['SQLite', 'PostgreSQL'] as const) {
    progress(`dashboard API, ${store}: seeding ${jobs.toLocaleString('en')} jobs`);
    try {
      result.api[store] = await measureJobsApi(config, store, jobs, requests);
    } catch (err) {
      if (store === 'PostgreSQL' && /ECONNREFUSED|connect/i.test(String(err))) result.skipped.push(`PostgreSQL: ${String(err)}`);
      else throw err;
    }
    const api = result.api[store];
    if (api) progress(`  ${JOBS_API_QUERIES.map((q) => `${q} ${median(api[q]).toFixed(2)} ms`).join(', ')}`);
  }
  progress(`dashboard live rows: ${liveJobs} jobs in Chromium`);
  await measureLiveRows(config, liveJobs, result);
  return result;
}

/** A gateway on a store seeded with `n` jobs; each query timed `requests` times, round-robin. */
async function measureJobsApi(config: BenchConfig, store: 'SQLite' | 'PostgreSQL', n: number, requests: number): Promise<Record<JobsApiQuery, number[]>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-dashboard-'));
  const schema = `kiln_bench_dash_${randomBytes(4).toString('hex')}`;
  const now = Date.now();
  const gatewayConfig = parseConfig(
    {
      endpoints: { [ENDPOINT]: { worker: { command: `"${config.node}" -e 0` }, workersMin: 0, workersMax: 1 } },
      gateway: {
        host: '127.0.0.1',
        port: 0,
        apiKeys: [API_KEY],
        ...(store === 'PostgreSQL' ? { databaseUrl: config.gateway.postgresUrl, databaseSchema: schema } : {}),
      },
    },
    { baseDir: dir, env: {} },
  );
  const seedSqlite = store === 'SQLite';
  // Migrate first (the gateway creates the tables), then seed behind its back, then serve.
  const gateway = new Gateway(gatewayConfig, { log: { info() {}, warn() {}, error() {} }, dashboardDir });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const base = await gateway.start();
    if (seedSqlite) seedSqliteJobs(gatewayConfig.gateway.sqlitePath, n, now);
    else await seedPostgresJobs(config.gateway.postgresUrl, schema, n, now);
    const admin = `${base}/kiln/v1/endpoints/${ENDPOINT}`;
    const get = async (url: string) => {
      const t = performance.now();
      const answer = await call(agent, url);
      const ms = performance.now() - t;
      if (answer.status !== 200) throw new Error(`${url} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
      return { ms, body: JSON.parse(answer.body) as { jobs?: { id: string }[]; next?: string | null } };
    };
    // The cursor half way down: walk there once with big pages (not timed).
    let cursor: string | null | undefined;
    for (let seen = 0; seen < n / 2; seen += 500) cursor = (await get(`${admin}/jobs?limit=500${cursor ? `&cursor=${cursor}` : ''}`)).body.next;
    const urls: Record<JobsApiQuery, string> = {
      'point read (baseline)': `${admin}/jobs/${ENDPOINT}-${Math.floor(n / 3)}`,
      'first page': `${admin}/jobs?limit=50`,
      'filtered page (FAILED, 2 %)': `${admin}/jobs?limit=50&status=FAILED`,
      'filtered page (2 states)': `${admin}/jobs?limit=50&status=IN_QUEUE,CANCELLED`,
      'deep page (50 %)': `${admin}/jobs?limit=50&cursor=${cursor}`,
      'endpoints overview': `${base}/kiln/v1/endpoints`,
    };
    const samples = Object.fromEntries(JOBS_API_QUERIES.map((q) => [q, [] as number[]])) as Record<JobsApiQuery, number[]>;
    for (let i = 0; i < requests + 5; i++) {
      for (const query of JOBS_API_QUERIES) {
        const { ms, body } = await get(urls[query]);
        if (query !== 'point read (baseline)' && query !== 'endpoints overview' && body.jobs?.length !== 50) throw new Error(`${query}: ${body.jobs?.length} jobs, not a full page`);
        if (i >= 5) samples[query].push(ms); // the first rounds warm statement caches and the JIT
      }
    }
    return samples;
  } finally {
    agent.destroy();
    await gateway.stop();
    if (!seedSqlite) {
      const sql = postgres(config.gateway.postgresUrl, { max: 1, onnotice: () => {} });
      await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`.finally(() => sql.end({ timeout: 5 }));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

// 100,000 jobs over the last 50 minutes: 2 % FAILED, 1 % queued, 1 % cancelled, the rest COMPLETED,
// each finished one with a delay of 5–55 ms and an execution of 100–1,100 ms (so the overview's
// last-hour percentiles have every one of them to read).
const SEED_COLUMNS = 'id, endpoint, status, input, policy, created_at, queued_at, taken_at, finished_at, worker_id, attempts, expires_at, execution_timeout_ms';
function seedSelect(created: string, i: string): string {
  const status = `CASE WHEN ${i} % 100 = 0 THEN 'IN_QUEUE' WHEN ${i} % 100 = 1 THEN 'CANCELLED' WHEN ${i} % 50 = 2 THEN 'FAILED' ELSE 'COMPLETED' END`;
  const taken = `CASE WHEN ${i} % 100 = 0 THEN NULL ELSE ${created} + 5 + (${i} * 7) % 50 END`;
  const finished = `CASE WHEN ${i} % 100 = 0 THEN NULL ELSE ${created} + 5 + (${i} * 7) % 50 + 100 + (${i} * 13) % 1000 END`;
  return `${status}, '{}', '{}', ${created}, ${created}, ${taken}, ${finished}, CASE WHEN ${i} % 100 = 0 THEN NULL ELSE 'bench-worker' END, 1`;
}

function seedSqliteJobs(file: string, n: number, now: number): void {
  const db = new Database(file);
  try {
    const created = `(@now - 3000000 + i * 30)`;
    db.prepare(
      `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < @n)
       INSERT INTO jobs (${SEED_COLUMNS})
       SELECT @endpoint || '-' || i, @endpoint, ${seedSelect(created, 'i')}, @now + 86400000, 600000 FROM s`,
    ).run({ endpoint: ENDPOINT, n, now: Math.floor(now) });
    db.exec('ANALYZE');
  } finally {
    db.close();
  }
}

async function seedPostgresJobs(url: string, schema: string, n: number, now: number): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connection: { search_path: schema } });
  try {
    const created = `($2::bigint - 3000000 + i * 30)`;
    await sql.unsafe(
      `INSERT INTO jobs (${SEED_COLUMNS})
       SELECT $1 || '-' || i, $1, ${seedSelect(created, 'i')}, $2::bigint + 86400000, 600000 FROM generate_series(0, $3::int - 1) AS i`,
      [ENDPOINT, Math.floor(now), n],
    );
    await sql`ANALYZE jobs`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Chromium on the jobs page; the bench takes and finishes jobs as a worker and times the row update. */
async function measureLiveRows(config: BenchConfig, count: number, result: DashboardBenchResult): Promise<void> {
  const { chromium } = await import('playwright-core');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-live-'));
  const gatewayConfig = parseConfig(
    {
      endpoints: { [ENDPOINT]: { worker: { command: `"${config.node}" -e 0` }, workersMin: 0, workersMax: 1 } },
      gateway: { host: '127.0.0.1', port: 0, apiKeys: [API_KEY], pingTimeoutMs: 600_000 },
    },
    { baseDir: dir, env: {} },
  );
  const gateway = new Gateway(gatewayConfig, { log: { info() {}, warn: (m) => void result.problems.push(`WARN ${m}`), error: (m) => void result.problems.push(`ERROR ${m}`) }, dashboardDir });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const sse = new AbortController();
  try {
    const base = await gateway.start();
    const worker = { id: `bench-${randomBytes(3).toString('hex')}`, token: randomBytes(18).toString('base64url') };
    gateway.registry.register({ workerId: worker.id, endpoint: ENDPOINT, token: worker.token });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.addInitScript(`sessionStorage.setItem('kiln.apiKey', ${JSON.stringify(API_KEY)})`);
    await page.goto(`${base}/#/jobs?endpoint=${ENDPOINT}`);
    await page.waitForSelector('table caption');
    // The page records when each row's status cell first reads COMPLETED (page code as a string:
    // this project is type-checked without the DOM library).
    await page.evaluate(`(() => {
      const seen = {};
      window.__completedAt = seen;
      new MutationObserver(() => {
        const at = performance.timeOrigin + performance.now();
        for (const row of document.querySelectorAll('tr[data-job-id]')) {
          const id = row.getAttribute('data-job-id');
          if (seen[id] === undefined && row.querySelector('.status')?.textContent?.trim() === 'COMPLETED') seen[id] = at;
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    })()`);
    const sseCompletedAt = new Map<string, number>();
    void readAdminEvents(`${base}/kiln/v1/events?endpoint=${ENDPOINT}`, sse.signal, (jobs) => {
      const at = performance.timeOrigin + performance.now();
      for (const job of jobs) if (job.status === 'COMPLETED' && !sseCompletedAt.has(job.id)) sseCompletedAt.set(job.id, at);
    }).catch((err) => !sse.signal.aborted && result.problems.push(`SSE reader: ${String(err)}`));

    const v2 = `${base}/v2/${ENDPOINT}`;
    for (let i = 0; i < count + 3; i++) {
      const run = await call(agent, `${v2}/run`, 'POST', { authorization: `Bearer ${API_KEY}` }, { input: { i }, policy: { lowPriority: true } });
      const id = (JSON.parse(run.body) as { id: string }).id;
      const taken = await call(agent, `${v2}/job-take/${worker.id}?gpu=bench&job_in_progress=0`, 'GET', { authorization: worker.token });
      if (taken.status !== 200) throw new Error(`job-take answered ${taken.status}`);
      // The row is on the page as IN_PROGRESS before the completion is timed.
      await page.waitForSelector(`tr[data-job-id="${id}"] .status:text-is("IN_PROGRESS")`, { timeout: 10_000 });
      const doneAt = performance.timeOrigin + performance.now();
      const done = await call(agent, `${v2}/job-done/${worker.id}/${id}?gpu=bench&isStream=false`, 'POST', { authorization: worker.token }, { output: { i } });
      if (done.status !== 200) throw new Error(`job-done answered ${done.status}`);
      await page.waitForSelector(`tr[data-job-id="${id}"] .status:text-is("COMPLETED")`, { timeout: 10_000 });
      const inPage = (await page.evaluate(`window.__completedAt[${JSON.stringify(id)}]`)) as number | undefined;
      const viaSse = sseCompletedAt.get(id);
      if (i < 3) continue; // warm-up
      if (inPage === undefined) result.problems.push(`job ${id}: the observer missed the COMPLETED row`);
      else result.browserMs.push(inPage - doneAt);
      if (viaSse === undefined) result.problems.push(`job ${id}: no COMPLETED jobs event reached the SSE reader`);
      else result.sseMs.push(viaSse - doneAt);
    }
  } finally {
    sse.abort();
    agent.destroy();
    await browser.close();
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads `jobs` events of the admin feed until `signal` aborts. */
async function readAdminEvents(url: string, signal: AbortSignal, onJobs: (jobs: { id: string; status: string }[]) => void): Promise<void> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${API_KEY}`, accept: 'text/event-stream' }, signal });
  if (!res.ok || !res.body) throw new Error(`/kiln/v1/events answered ${res.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const part of res.body) {
    buffer += decoder.decode(part as Uint8Array, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const lines = block.split('\n');
      if (!lines.includes('event: jobs')) continue;
      const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      onJobs((JSON.parse(data) as { jobs: { id: string; status: string }[] }).jobs);
    }
  }
}

/** GET (or `method`) with the bench's API key unless other headers are given. */
function call(agent: http.Agent, url: string, method = 'GET', headers: Record<string, string> = { authorization: `Bearer ${API_KEY}` }, body?: unknown): Promise<{ status: number; body: string }> {
  return httpCall(agent, method, url, headers, body);
}

/** Medians, percentiles and ratios to the baseline. */
export interface DashboardBenchSummary {
  jobs: number;
  api: Partial<Record<'SQLite' | 'PostgreSQL', Record<JobsApiQuery, LatencySummary & { vsBaseline: number }>>>;
  browser: LatencySummary | null;
  sse: LatencySummary | null;
  browserVsSse: number | null;
  problems: string[];
  skipped: string[];
}

/** Summarizes a run. */
export function summarizeDashboard(result: DashboardBenchResult): DashboardBenchSummary {
  const api: DashboardBenchSummary['api'] = {};
  for (const [store, samples] of Object.entries(result.api) as ['SQLite' | 'PostgreSQL', Record<JobsApiQuery, number[]>][]) {
    const base = median(samples['point read (baseline)']);
    api[store] = Object.fromEntries(JOBS_API_QUERIES.map((q) => { const s = latencySummary(samples[q]); return [q, { ...s, vsBaseline: s.median / base }]; })) as Record<JobsApiQuery, LatencySummary & { vsBaseline: number }>;
  }
  const browser = result.browserMs.length > 0 ? latencySummary(result.browserMs) : null;
  const sse = result.sseMs.length > 0 ? latencySummary(result.sseMs) : null;
  return { jobs: result.jobs, api, browser, sse, browserVsSse: browser && sse ? browser.median / sse.median : null, problems: result.problems.slice(0, 10), skipped: result.skipped };
}

/** The summary as lines of the bench report. */
export function formatDashboard(summary: DashboardBenchSummary): string {
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const lines = ['', `Dashboard jobs API with ${summary.jobs.toLocaleString('en')} jobs in the store (request → parsed JSON over keep-alive HTTP)`];
  for (const [store, queries] of Object.entries(summary.api)) {
    lines.push(`  ${store}`, `    ${'query'.padEnd(30)}${'p50'.padStart(10)}${'p90'.padStart(10)}${'p99'.padStart(10)}   p50 / point read`);
    for (const q of JOBS_API_QUERIES) {
      const s = queries[q];
      lines.push(`    ${q.padEnd(30)}${ms(s.median).padStart(10)}${ms(s.p90).padStart(10)}${ms(s.p99).padStart(10)}   ${`×${s.vsBaseline.toFixed(2)}`.padStart(8)}`);
    }
  }
  for (const skipped of summary.skipped) lines.push(`  (skipped ${skipped})`);
  lines.push('', 'Job completion → its row reads COMPLETED', `  ${'reader'.padEnd(30)}${'p50'.padStart(10)}${'p90'.padStart(10)}${'p99'.padStart(10)}`);
  if (summary.browser) lines.push(`  ${'Chromium, jobs page'.padEnd(30)}${ms(summary.browser.median).padStart(10)}${ms(summary.browser.p90).padStart(10)}${ms(summary.browser.p99).padStart(10)}`);
  if (summary.sse) lines.push(`  ${'Node SSE reader (baseline)'.padEnd(30)}${ms(summary.sse.median).padStart(10)}${ms(summary.sse.p90).padStart(10)}${ms(summary.sse.p99).padStart(10)}`);
  if (summary.browserVsSse !== null) lines.push(`  browser / SSE reader p50: ×${summary.browserVsSse.toFixed(2)}`);
  for (const problem of summary.problems) lines.push(`  ! ${problem}`);
  return lines.join('\n');
}
