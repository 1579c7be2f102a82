// The endpoint overview's "last hour" with 100,000 jobs kept: finishedTimings reads at most its limit
// of rows in (endpoint, finished_at) order, so an endpoint with 100,000 ended jobs costs what one
// with exactly the limit costs, on both stores. Rows are inserted directly, as in job-listing-scale.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { LAST_HOUR_MAX_JOBS, LAST_HOUR_MS } from './admin-views.ts';
import type { FinishedJobsQuery, JobStore } from './job-store.ts';
import { describeOnEachStore, medianReadMs, openTestStore } from './each-store.ts';

const NOW = 1_700_000_000_000 + 2 * LAST_HOUR_MS;
const BIG = 100_000;
const SMALL = LAST_HOUR_MAX_JOBS;
const RUNS = 5;

/** `n` jobs, every 10th FAILED, the rest COMPLETED, ending evenly over the last hour (newest at NOW). */
const insertSql = (series: string, text: (name: string) => string) => `
  INSERT INTO jobs (id, endpoint, status, input, policy, created_at, queued_at, taken_at, finished_at, expires_at, execution_timeout_ms)
  SELECT ${text('endpoint')} || '-' || i, ${text('endpoint')}, CASE WHEN i % 10 = 0 THEN 'FAILED' ELSE 'COMPLETED' END, '{}', '{}',
         ${text('end')} - i * ${text('step')} - 300, ${text('end')} - i * ${text('step')} - 300, ${text('end')} - i * ${text('step')} - 200,
         ${text('end')} - i * ${text('step')}, ${text('end')} + 86400000, 600000
    FROM ${series}`;

function query(endpoint: string): FinishedJobsQuery {
  return { endpoint, since: NOW - LAST_HOUR_MS, limit: LAST_HOUR_MAX_JOBS };
}

function medianMs(store: JobStore, q: FinishedJobsQuery): Promise<{ ms: number; count: number }> {
  return medianReadMs(() => store.finishedTimings(q), RUNS);
}

function defineScaleTest(open: () => Promise<JobStore>, fill: (endpoint: string, n: number) => Promise<void>): void {
  let store: JobStore;
  before(async () => {
    store = await open();
    await fill('small', SMALL);
    await fill('big', BIG);
  });
  after(() => store?.close());

  test(`the last hour of an endpoint with ${BIG.toLocaleString('en')} ended jobs reads only the newest ${LAST_HOUR_MAX_JOBS.toLocaleString('en')}`, async () => {
    await store.finishedTimings(query('big'));
    await store.finishedTimings(query('small'));
    const b = await medianMs(store, query('big'));
    const s = await medianMs(store, query('small'));
    assert.equal(b.count, LAST_HOUR_MAX_JOBS);
    assert.equal(s.count, LAST_HOUR_MAX_JOBS);
    // Reading and sorting all 100,000 costs ×10 here; the slack absorbs a busy machine.
    assert.ok(b.ms <= 3 * s.ms + 5, `${b.ms.toFixed(2)} ms with ${BIG} jobs vs ${s.ms.toFixed(2)} ms with ${SMALL}`);
  });
}

await describeOnEachStore((database) =>
  defineScaleTest(
    () => openTestStore(database()),
    async (endpoint, n) => {
      const db = database();
      const step = Math.floor(LAST_HOUR_MS / n);
      if (db.kind === 'sqlite') {
        const sqlite = new Database(db.path);
        try {
          sqlite.prepare(`WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < @n) ${insertSql('s', (name) => `@${name}`)}`).run({ endpoint, n, end: NOW, step });
        } finally {
          sqlite.close();
        }
        return;
      }
      const sql = postgres(db.url, { max: 1, onnotice: () => {}, connection: { search_path: db.schema } });
      const params: Record<string, string> = { endpoint: '$1', end: '$2::bigint', step: '$3::bigint' };
      try {
        await sql.unsafe(insertSql('generate_series(0, $4::int - 1) AS i', (name) => params[name]!), [endpoint, NOW, step, n]);
        await sql`ANALYZE jobs`;
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  ),
);
