import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isKilnWorker, type KilnWorker } from '@kiln/worker';

/** File endings that need TypeScript support at run time. */
const TS_FILE = /\.[cm]?tsx?$/;

/**
 * Imports a worker file (`.js` directly, `.ts` through tsx; it does not start itself, since it is not the main module) and
 * returns the worker it exports: the default export, or the only export made with `defineWorker()`.
 */
export async function loadWorker(file: string): Promise<KilnWorker> {
  const absolute = path.resolve(file);
  if (!existsSync(absolute)) throw new Error(`worker file not found: ${file}`);
  if (TS_FILE.test(absolute)) {
    // Both hooks, as `node --import tsx` does: in a package without "type": "module" (npm init's default) a .ts
    // file is CommonJS to Node, and with the ESM hooks alone Node 20 fails it with "Cannot require() ES Module … in a cycle".
    const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
    cjs.register();
    esm.register();
  }
  let mod = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
  const inner = mod['default'];
  // A file compiled to CommonJS (tsx or tsc, in a package without "type": "module") has its ES exports on `default`.
  if (typeof inner === 'object' && inner !== null && (inner as Record<string, unknown>)['__esModule'] === true) mod = inner as Record<string, unknown>;
  if (isKilnWorker(mod['default'])) return mod['default'];
  const found = Object.entries(mod).filter(([, v]) => isKilnWorker(v));
  if (found.length === 1) return found[0]![1] as KilnWorker;
  if (found.length === 0) throw new Error(`${file} exports no worker: export default defineWorker({ handler … })`);
  throw new Error(`${file} exports ${found.length} workers (${found.map(([k]) => k).join(', ')}); make one the default export`);
}
