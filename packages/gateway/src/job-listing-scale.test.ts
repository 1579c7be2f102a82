// listJobs with 100,000 jobs: each page must cost about what it costs on an endpoint with 1,000
// (index range scans stopped at the page size), on both stores. Rows are inserted directly, which
// is a hundred times faster than enqueueing them one by one.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import type { JobListQuery, JobStore } from './job-store.ts';
import { describeOnEachStore, medianReadMs, openTestStore } from './each-store.ts';

const T0 = 1_700_000_000_000;
const BIG = 100_000;
const SMALL = 1000;
const RUNS = 9;

/** Every 100th job queued, every 10th failed, the rest completed; two jobs per millisecond. */
const STATUS_SQL = `CASE WHEN i % 100 = 0 THEN 'IN_QUEUE' WHEN i % 10 = 0 THEN 'FAILED' ELSE 'COMPLETED' END`;

/** The same pages on an endpoint of `n` jobs: first, a rare state, two states, and 90 % deep. */
function pages(endpoint: string, n: number): Record<string, JobListQuery> {
  const deep = { createdAt: T0 + Math.floor((n * 0.1) / 2), id: `${endpoint}-${Math.floor(n * 0.1)}` };
  return {
    first: { endpoint, limit: 51 },
    'rare state': { endpoint, limit: 51, statuses: ['IN_QUEUE'] },
    'two states': { endpoint, limit: 51, statuses: ['IN_QUEUE', 'FAILED'] },
    deep: { endpoint, limit: 51, after: deep },
    'deep, filtered': { endpoint, limit: 51, statuses: ['COMPLETED', 'IN_QUEUE'], after: deep },
  };
}

function medianMs(store: JobStore, query: JobListQuery): Promise<{ ms: number; count: number }> {
  return medianReadMs(() => store.listJobs(query), RUNS);
}

function defineScaleTest(open: () => Promise<JobStore>, fill: (endpoint: string, n: number) => Promise<void>): void {
  let store: JobStore;
  before(async () => {
    store = await open();
    await fill('small', SMALL);
    await fill('big', BIG);
  });
  after(() => store?.close());

  test(`a page of ${BIG.toLocaleString('en')} jobs costs what a page of ${SMALL.toLocaleString('en')} does`, async () => {
    const big = pages('big', BIG);
    const small = pages('small', SMALL);
    for (const name of Object.keys(big)) {
      // Warm both up (statement preparation, page cache) before timing.
      await store.listJobs(big[name]!);
      await store.listJobs(small[name]!);
      const b = await medianMs(store, big[name]!);
      const s = await medianMs(store, small[name]!);
      assert.equal(b.count, 51, `${name}: a full page`);
      // A scan or sort of the whole endpoint costs ×100 here; the slack absorbs a busy machine.
      assert.ok(b.ms <= 4 * s.ms + 2, `${name}: ${b.ms.toFixed(2)} ms with ${BIG} jobs vs ${s.ms.toFixed(2)} ms with ${SMALL}`);
    }
  });
}

await describeOnEachStore((database) =>
  defineScaleTest(
    () => openTestStore(database()),
    async (endpoint, n) => {
      const db = database();
      if (db.kind === 'sqlite') {
        const sqlite = new Database(db.path);
        try {
          sqlite
            .prepare(
              `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < @n)
               INSERT INTO jobs (id, endpoint, status, input, policy, created_at, queued_at, expires_at, execution_timeout_ms)
               SELECT @endpoint || '-' || i, @endpoint, ${STATUS_SQL}, '{}', '{}', @t0 + i / 2, @t0 + i / 2, @t0 + 86400000, 600000 FROM s`,
            )
            .run({ endpoint, n, t0: T0 });
        } finally {
          sqlite.close();
        }
        return;
      }
      const sql = postgres(db.url, { max: 1, onnotice: () => {}, connection: { search_path: db.schema } });
      try {
        await sql.unsafe(
          `INSERT INTO jobs (id, endpoint, status, input, policy, created_at, queued_at, expires_at, execution_timeout_ms)
           SELECT $1 || '-' || i, $1, ${STATUS_SQL}, '{}', '{}', $2::bigint + i / 2, $2::bigint + i / 2, $2::bigint + 86400000, 600000
             FROM generate_series(0, $3::int - 1) AS i`,
          [endpoint, T0, n],
        );
        await sql`ANALYZE jobs`;
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  ),
);
