// Databases for tests: a temp SQLite file, or a fresh schema on the test PostgreSQL server.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';

const DEFAULT_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** The PostgreSQL server tests use: `KILN_TEST_DATABASE_URL`, else a local default. */
export function postgresTestUrl(): string {
  return process.env.KILN_TEST_DATABASE_URL ?? DEFAULT_POSTGRES_URL;
}

/** Whether the test PostgreSQL server answers (within a few seconds). */
export async function postgresAvailable(url = postgresTestUrl()): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 0 });
  }
}

/** Whether PostgreSQL tests run, and if not, whether that is a skip or (in CI) a failure. */
export type PostgresTestGate = { run: true } | { run: false; fail: boolean; message: string };

/**
 * Decides the fate of PostgreSQL tests: they run when the server answers; otherwise they fail
 * in CI (`CI=true`), where a missing database is a broken pipeline, and are skipped elsewhere.
 *
 * @example
 * const gate = await postgresTestGate();
 * describe('PostgreSQL', { skip: !gate.run && !gate.fail && gate.message }, () => { ... });
 */
export async function postgresTestGate(): Promise<PostgresTestGate> {
  const url = postgresTestUrl();
  if (await postgresAvailable(url)) return { run: true };
  const where = url.replace(/\/\/[^@/]*@/, '//');
  if (process.env.CI === 'true') {
    return { run: false, fail: true, message: `PostgreSQL is unreachable at ${where}, and CI=true: the PostgreSQL tests must run in CI` };
  }
  return {
    run: false,
    fail: false,
    message: `PostgreSQL is unreachable at ${where}: set KILN_TEST_DATABASE_URL=postgres://… to run the PostgreSQL contract tests`,
  };
}

/** A schema name on the test server that no other test uses. */
export interface TestSchema {
  url: string;
  /** `kiln_test_<random>`; not created: the store under test creates it. */
  schema: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

/** A fresh, unused schema name on the test PostgreSQL server, with its cleanup. */
export async function freshPostgresSchema(url = postgresTestUrl()): Promise<TestSchema> {
  const schema = `kiln_test_${randomBytes(6).toString('hex')}`;
  return {
    url,
    schema,
    async drop() {
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`;
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  };
}

/** A path for a SQLite file inside a new temp folder (the file itself does not exist yet). */
export interface TempSqlitePath {
  path: string;
  /** Deletes the temp folder with the database and its -wal/-shm files. */
  remove(): Promise<void>;
}

/** A new temp folder and a database path inside it. */
export async function tempSqlitePath(): Promise<TempSqlitePath> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kiln-store-'));
  return {
    path: path.join(dir, 'jobs.db'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
