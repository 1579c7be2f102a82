// One example endpoint behind a real gateway, as `npm start` declares it: the example's worker
// folder, its models from examples/kiln.config.json (the real manifest, real digests), a throw-away
// models volume and SQLite file under `dir`.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway, parseConfig } from '@kiln/gateway';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The examples' config: endpoints and the models manifest `ensure()` reads. */
export const EXAMPLES_CONFIG = path.join(ROOT, 'examples/kiln.config.json');

/** A started gateway and the example endpoint's base URL (`…/v2/<example>`). */
export interface ExampleGateway {
  gateway: Gateway;
  base: string;
}

/**
 * Starts a gateway serving `example` from its source (tsx), one worker at most, scaled from zero.
 * `env` adds variables for the worker (e.g. a projects folder).
 */
export async function startExampleGateway(example: string, dir: string, env: Record<string, string> = {}): Promise<ExampleGateway> {
  const examples = JSON.parse(readFileSync(EXAMPLES_CONFIG, 'utf8')) as { endpoints: Record<string, { models?: string[] }>; models: Record<string, unknown> };
  const declared = examples.endpoints[example];
  if (!declared) throw new Error(`examples/kiln.config.json has no endpoint ${example}`);
  const config = parseConfig(
    {
      endpoints: {
        [example]: {
          worker: { command: `${process.execPath} --conditions=kiln-source --import tsx src/worker.ts`, cwd: path.join(ROOT, 'examples', example) },
          workersMin: 0,
          workersMax: 1,
          idleTimeout: 60,
          models: declared.models ?? [],
          env: { KILN_CONFIG: EXAMPLES_CONFIG, KILN_VOLUME: path.join(dir, 'volume'), ...env },
        },
      },
      models: examples.models,
      gateway: { port: 0, pingIntervalMs: 1000, pingTimeoutMs: 10_000, stopGraceMs: 2000 },
    },
    { baseDir: dir, env: {} },
  );
  const gateway = new Gateway(config, { tickMs: 100, log: { info() {}, warn() {}, error() {} } });
  await gateway.start();
  return { gateway, base: `${gateway.url}/v2/${example}` };
}
