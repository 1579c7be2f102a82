// Test support: one suite body run against each store, on a temp SQLite file and on a fresh
// PostgreSQL schema (gated like the contract suite: a failure in CI, a skip elsewhere).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JobStore } from './job-store.ts';
import { openPostgresStore } from './postgres-store.ts';
import { openSqliteStore } from './sqlite-store.ts';
import { freshPostgresSchema, postgresTestGate, tempSqlitePath } from './test-databases.ts';
import type { TempSqlitePath, TestSchema } from './test-databases.ts';

/** Where a suite's store lives: a SQLite file, or a PostgreSQL schema (for seeding rows with SQL). */
export type TestDatabase = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; schema: string };

/** Opens a store on `database`. */
export function openTestStore(database: TestDatabase): Promise<JobStore> {
  return database.kind === 'sqlite' ? openSqliteStore({ path: database.path }) : openPostgresStore({ url: database.url, schema: database.schema });
}

/**
 * Defines `define`'s tests twice, in a `SQLite store` and a `PostgreSQL store` suite; `database()`
 * gives the suite's database once its `before` hooks have run.
 *
 * @example
 * await describeOnEachStore((database) => {
 *   let store: JobStore;
 *   before(async () => { store = await openTestStore(database()); });
 *   test('…', async () => { … });
 * });
 */
export async function describeOnEachStore(define: (database: () => TestDatabase) => void): Promise<void> {
  describe('SQLite store', () => {
    let file: TempSqlitePath;
    before(async () => {
      file = await tempSqlitePath();
    });
    after(() => file.remove());
    define(() => ({ kind: 'sqlite', path: file.path }));
  });

  const gate = await postgresTestGate();
  if (!gate.run && gate.fail) {
    test('PostgreSQL store', () => assert.fail(gate.message));
    return;
  }
  describe('PostgreSQL store', { skip: gate.run ? false : gate.message }, () => {
    let schema: TestSchema;
    before(async () => {
      schema = await freshPostgresSchema();
    });
    after(() => schema.drop());
    define(() => ({ kind: 'postgres', url: schema.url, schema: schema.schema }));
  });
}

/** The median time of `runs` calls of `read`, and how many rows the last call returned (scale tests). */
export async function medianReadMs(read: () => Promise<readonly unknown[]>, runs: number): Promise<{ ms: number; count: number }> {
  const times: number[] = [];
  let count = 0;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    count = (await read()).length;
    times.push(performance.now() - t);
  }
  return { ms: times.sort((a, b) => a - b)[Math.floor(runs / 2)]!, count };
}
