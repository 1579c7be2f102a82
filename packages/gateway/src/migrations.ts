import { readdir, readFile } from 'node:fs/promises';

/** The SQL dialects that have a migrations folder. */
export type MigrationDialect = 'sqlite' | 'postgres';

/** One numbered schema change, read from `migrations/<dialect>/NNN_name.sql`. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const FILE_NAME = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/**
 * Reads the migrations of a dialect in version order. Throws on a file name that breaks the
 * `NNN_name.sql` pattern or on a version used twice.
 *
 * @example
 * for (const m of await loadMigrations('sqlite')) console.log(m.version, m.name);
 */
export async function loadMigrations(dialect: MigrationDialect): Promise<Migration[]> {
  // Resolved from this module's URL so that it works from src/ (tsx) and dist/ alike.
  const folder = new URL(`../migrations/${dialect}/`, import.meta.url);
  const migrations: Migration[] = [];
  for (const file of (await readdir(folder)).sort()) {
    const match = FILE_NAME.exec(file);
    if (!match) throw new Error(`migration ${dialect}/${file}: the name must look like 001_init.sql`);
    const version = Number(match[1]);
    if (migrations.some((m) => m.version === version)) throw new Error(`migration ${dialect}/${file}: version ${version} is used twice`);
    migrations.push({ version, name: match[2] ?? '', sql: await readFile(new URL(file, folder), 'utf8') });
  }
  return migrations;
}

/** Throws when the database has a migration this code does not know (a newer gateway migrated it). */
export function checkKnownVersions(applied: Iterable<number>, known: readonly Migration[]): void {
  const latest = known.at(-1)?.version ?? 0;
  for (const version of applied) {
    if (!known.some((m) => m.version === version)) {
      throw new Error(`the job store has migration ${version}, unknown to this gateway (latest ${latest}): upgrade the gateway`);
    }
  }
}
