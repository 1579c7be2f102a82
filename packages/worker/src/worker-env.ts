import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DESCRIBE_ENV } from './describe-input.ts';
import type { JobUrlTemplates } from './job-urls.ts';
import { LOG_LEVELS, type LogLevel } from './log.ts';

/** How the worker process was asked to run. */
export type WorkerMode =
  | {
      kind: 'production';
      templates: JobUrlTemplates;
      apiKey: string | undefined;
      pingIntervalMs: number;
      pingEnabled: boolean;
    }
  | { kind: 'test-input'; testInput: unknown; source: string }
  | { kind: 'serve-api'; host: string; port: number }
  /** `KILN_DESCRIBE=1`: print the input's JSON Schema as one stdout line and exit, without setup or any job source. */
  | { kind: 'describe' }
  | { kind: 'usage'; message: string };

/** Everything the worker runtime reads from its environment and arguments, parsed once. */
export interface WorkerEnvironment {
  readonly mode: WorkerMode;
  readonly workerId: string;
  readonly endpointId: string | undefined;
  readonly hostname: string;
  readonly logLevel: LogLevel;
}

/** RunPod's default ping interval (`RUNPOD_PING_INTERVAL`, ms). */
export const DEFAULT_PING_INTERVAL_MS = 10_000;

/** The usage text of a worker file's own command line. */
export const WORKER_USAGE = `usage: <worker> [--test-input '{"input": …}'] [--serve-api [--host 127.0.0.1] [--port 8000]]
  production mode when RUNPOD_WEBHOOK_GET_JOB is set (the platform or the kiln gateway sets it);
  otherwise --test-input runs one job and prints the result, or test_input.json in the current folder is used;
  --serve-api serves RunPod's endpoint API (/run, /runsync, /status, /stream, /cancel, /health) locally;
  KILN_DESCRIBE=1 prints {"kilnDescribe":1,"input":<JSON Schema of the input>} and exits, without setup.`;

/**
 * Reads the RunPod environment (PROTOCOL.md §1.1) and the local-mode flags. The only place in the
 * worker runtime that looks at `process.env` and `process.argv`; everything else gets this object.
 */
export function readWorkerEnvironment(
  env: Record<string, string | undefined> = process.env,
  argv: readonly string[] = process.argv.slice(2),
  cwd: string = process.cwd(),
): WorkerEnvironment {
  const flags = parseFlags(argv);
  const workerId = env['RUNPOD_POD_ID'] || `local-${process.pid}`;
  const level = (env['RUNPOD_LOG_LEVEL'] ?? env['RUNPOD_DEBUG_LEVEL'] ?? flags.values.get('log-level') ?? 'INFO').toUpperCase();
  const logLevel: LogLevel = (LOG_LEVELS as readonly string[]).includes(level) ? (level as LogLevel) : level === 'WARNING' ? 'WARN' : 'INFO';
  let hostname = env['RUNPOD_POD_HOSTNAME'] || undefined;
  return Object.freeze({
    workerId,
    endpointId: env['RUNPOD_ENDPOINT_ID'] || undefined,
    // Looked up on first use (an error body): not on the cold-start path.
    get hostname() {
      hostname ??= os.hostname() || 'unknown';
      return hostname;
    },
    logLevel,
    mode: pickMode(env, flags, cwd),
  });
}

function pickMode(env: Record<string, string | undefined>, flags: ParsedFlags, cwd: string): WorkerMode {
  // Before anything else: the gateway asks with the endpoint's own command line and environment.
  if (env[DESCRIBE_ENV] === '1') return { kind: 'describe' };
  if (flags.error) return { kind: 'usage', message: flags.error };
  if (flags.switches.has('serve-api')) {
    const host = flags.values.get('host') ?? '127.0.0.1';
    const portText = flags.values.get('port') ?? '8000';
    const port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) return { kind: 'usage', message: `--port must be an integer from 0 to 65535, got '${portText}'` };
    return { kind: 'serve-api', host, port };
  }
  const inline = flags.values.get('test-input');
  if (inline !== undefined) return testInputMode(inline, '--test-input');
  const take = env['RUNPOD_WEBHOOK_GET_JOB'];
  if (take) {
    const done = env['RUNPOD_WEBHOOK_POST_OUTPUT'];
    const stream = env['RUNPOD_WEBHOOK_POST_STREAM'];
    if (!done) return { kind: 'usage', message: 'RUNPOD_WEBHOOK_GET_JOB is set but RUNPOD_WEBHOOK_POST_OUTPUT is not: results would have nowhere to go' };
    const intervalText = env['RUNPOD_PING_INTERVAL'];
    const interval = intervalText === undefined ? DEFAULT_PING_INTERVAL_MS : Number(intervalText);
    const apiKey = env['RUNPOD_AI_API_KEY'] || undefined;
    return {
      kind: 'production',
      templates: { take, done, stream: stream || done.replace('/job-done/', '/job-stream/'), ping: env['RUNPOD_WEBHOOK_PING'] || undefined },
      apiKey,
      // Below 1 s runpod-python's integer division gives 0 and a tight loop; we keep 1 s as the floor.
      pingIntervalMs: Number.isFinite(interval) && interval >= 1000 ? interval : DEFAULT_PING_INTERVAL_MS,
      pingEnabled: apiKey !== undefined && Boolean(env['RUNPOD_POD_ID']),
    };
  }
  const file = path.join(cwd, 'test_input.json');
  if (existsSync(file)) return testInputMode(readFileSync(file, 'utf8'), file);
  return {
    kind: 'usage',
    message: `no job source: RUNPOD_WEBHOOK_GET_JOB is not set, and there is no --test-input, --serve-api or test_input.json\n${WORKER_USAGE}`,
  };
}

function testInputMode(text: string, source: string): WorkerMode {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { kind: 'usage', message: `${source}: not JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !('input' in value)) {
    return { kind: 'usage', message: `${source}: must be a JSON object with an "input" key, like {"input": {"text": "hi"}}` };
  }
  return { kind: 'test-input', testInput: value, source };
}

interface ParsedFlags {
  switches: Set<string>;
  values: Map<string, string>;
  error?: string;
}

const VALUE_FLAGS: Record<string, string> = {
  'test-input': 'test-input',
  test_input: 'test-input',
  host: 'host',
  rp_api_host: 'host',
  port: 'port',
  rp_api_port: 'port',
  'log-level': 'log-level',
  rp_log_level: 'log-level',
};
const SWITCH_FLAGS: Record<string, string> = { 'serve-api': 'serve-api', rp_serve_api: 'serve-api' };

function parseFlags(argv: readonly string[]): ParsedFlags {
  const out: ParsedFlags = { switches: new Set(), values: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) continue;
    const [rawName = '', inlineValue] = arg.slice(2).split(/=(.*)/s, 2);
    const name = VALUE_FLAGS[rawName] ?? SWITCH_FLAGS[rawName];
    if (!name) continue;
    if (SWITCH_FLAGS[rawName]) {
      out.switches.add(name);
      continue;
    }
    const value = inlineValue ?? argv[++i];
    if (value === undefined) {
      out.error = `--${rawName} needs a value`;
      return out;
    }
    out.values.set(name, value);
  }
  return out;
}

