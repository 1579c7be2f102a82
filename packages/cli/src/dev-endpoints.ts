import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TEST_INPUT_FILE, type GatewayConfig } from '@kiln/gateway';

/** The request body used when an endpoint's worker folder has no `test_input.json`. */
export const EMPTY_REQUEST = '{"input":{}}';

/** Longer request bodies are not pasted into the curl line; it reads the file (`-d @file`) instead. */
export const MAX_INLINE_BODY_CHARS = 400;

/** An endpoint as `kiln dev` shows it: its base URL and a request one can paste. */
export interface EndpointUsage {
  readonly endpoint: string;
  /** `…/v2/<endpoint>`: append `/run`, `/runsync`, `/status/<id>`, … */
  readonly url: string;
  /** A `/runsync` call with the worker's `test_input.json` (or {@link EMPTY_REQUEST}). */
  readonly curl: string;
  /** Why the worker's `test_input.json` was not used although it exists (it is not JSON); undefined otherwise. */
  readonly problem: string | undefined;
}

/**
 * A request body from `test_input.json` in the worker's folder, compacted to one line, or
 * {@link EMPTY_REQUEST} when the file is absent or not JSON (then `problem` says so). `file` is set
 * when the file holds a whole request, so that it can be sent as it is.
 */
async function requestBody(workerCwd: string): Promise<{ body: string; file?: string; problem?: string }> {
  const file = path.join(workerCwd, TEST_INPUT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { body: EMPTY_REQUEST };
  }
  try {
    const parsed: unknown = JSON.parse(text);
    // RunPod's test_input.json is the whole request ({ input: … }); a bare object is taken as the input.
    if (typeof parsed === 'object' && parsed !== null && 'input' in parsed) return { body: JSON.stringify(parsed), file };
    return { body: JSON.stringify({ input: parsed }) };
  } catch (error) {
    return { body: EMPTY_REQUEST, problem: `${file} is not JSON (${error instanceof Error ? error.message : String(error)})` };
  }
}

/** Quotes a string for POSIX shells. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Each endpoint's URL and a ready-to-paste `curl` for it, in the config's order.
 *
 * @example
 * for (const e of await describeEndpoints(config, 'http://127.0.0.1:8080')) console.error(`${e.url}\n  ${e.curl}`);
 */
export async function describeEndpoints(config: GatewayConfig, baseUrl: string, cwd: string = process.cwd()): Promise<EndpointUsage[]> {
  return Promise.all(
    Object.entries(config.endpoints).map(async ([endpoint, settings]) => {
      const { body, file, problem } = await requestBody(settings.worker.cwd);
      const url = `${baseUrl}/v2/${endpoint}`;
      const auth = config.gateway.apiKeys.length > 0 ? ` -H 'authorization: Bearer <api key>'` : '';
      // A file that already holds the whole request can be sent as it is (e.g. a video inline as base64).
      const data = file !== undefined && body.length > MAX_INLINE_BODY_CHARS ? shellQuote(`@${path.relative(cwd, file)}`) : shellQuote(body);
      return { endpoint, url, curl: `curl -s -X POST ${url}/runsync -H 'content-type: application/json'${auth} -d ${data}`, problem };
    }),
  );
}

/** The dashboard as `kiln dev` and `kiln serve` announce it. */
export interface DashboardUsage {
  /** `<base>/`: the gateway serves the dashboard at its root. */
  readonly url: string;
  /** Whether the built dashboard (`index.html`) is in `dashboardDir`. */
  readonly built: boolean;
  /** What a person should know before opening it (not built; asks for an API key), if anything. */
  readonly note: string | undefined;
}

/**
 * The dashboard's URL, and whether it is built: without `index.html` in `dashboardDir` the gateway
 * answers `/` with a page that says how to build it, and so does the note.
 *
 * @example
 * describeDashboard(config, 'http://127.0.0.1:8080', dashboardDir); // { url: 'http://127.0.0.1:8080/', built: true, note: undefined }
 */
export function describeDashboard(config: GatewayConfig, baseUrl: string, dashboardDir: string): DashboardUsage {
  const built = existsSync(path.join(dashboardDir, 'index.html'));
  const notes = [
    ...(built ? [] : ['not built: npm run build -w @kiln/dashboard, then restart']),
    ...(config.gateway.apiKeys.length > 0 ? ['it asks for an API key'] : []),
  ];
  return { url: `${baseUrl.replace(/\/+$/, '')}/`, built, note: notes.length === 0 ? undefined : notes.join('; ') };
}
