import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Clock, EndpointSchemaResponse } from '@kiln/protocol';
import type { EndpointConfig, GatewayConfig } from './config.ts';
import { EndpointNotFoundError } from './errors.ts';
import { splitCommand, workerEnv } from './process-driver.ts';

/** How long a worker may take to describe itself before it is killed. */
export const DESCRIBE_TIMEOUT_MS = 10_000;
/** The variable that asks a worker to print its description and exit instead of taking jobs. */
export const DESCRIBE_ENV = 'KILN_DESCRIBE';
/** RunPod's local-test file in a worker's folder: its `input` is the Run form's first values. */
export const TEST_INPUT_FILE = 'test_input.json';
/** Most stdout a describing worker may print (a longer line than this is not a description). */
const MAX_DESCRIBE_STDOUT_CHARS = 4 * 1024 * 1024;

/**
 * The environment every process of an endpoint's worker command gets besides RunPod's job
 * variables: the models volume (`KILN_VOLUME`), the config file (`KILN_CONFIG`) and the endpoint's
 * own `env` (secrets resolved).
 */
export function workerBaseEnv(config: GatewayConfig, endpoint: EndpointConfig): Record<string, string> {
  return {
    // Where `@kiln/models`' ensure() finds and puts weights: the endpoint's models volume, as RunPod mounts it.
    ...(endpoint.volumes['models'] ? { KILN_VOLUME: endpoint.volumes['models'].local } : {}),
    // The manifest `ensure()` reads: the gateway's own config, wherever the worker's folder is.
    ...(config.file === undefined ? {} : { KILN_CONFIG: config.file }),
    ...endpoint.resolvedEnv,
  };
}

/** What a worker said about itself. */
export interface WorkerDescription {
  input: Record<string, unknown> | null;
  note: string | null;
  /**
   * Set when the worker gave no answer (it could not start, crashed or timed out): asking again
   * later may succeed, so the answer is not kept. Unset when the worker answered, or is python.
   */
  transient?: true;
}

/** After its answer, how long a describing worker has to exit on SIGTERM before it is killed. */
export const DESCRIBE_EXIT_GRACE_MS = 2000;

/** What {@link describeWorker} runs. */
export interface DescribeSpec {
  command: string;
  cwd: string;
  env: Record<string, string>;
  clock: Clock;
  /** Default {@link DESCRIBE_TIMEOUT_MS}, on `clock`. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Runs a worker command once with `KILN_DESCRIBE=1` and reads the one stdout line it answers with,
 * `{"kilnDescribe":1,"input":<JSON Schema or null>}`. Never rejects: a worker that prints no such
 * line (an older @kiln/worker), cannot start, or takes longer than `timeoutMs` (then it is killed)
 * gives `input: null` and a `note` that says why. A python command is not run at all (runpod-python
 * would run its handler on `test_input.json`): `input: null`.
 *
 * @example
 * const { input, note } = await describeWorker({ command: 'node dist/worker.js', cwd, env, clock });
 */
export function describeWorker(spec: DescribeSpec): Promise<WorkerDescription> {
  const timeoutMs = spec.timeoutMs ?? DESCRIBE_TIMEOUT_MS;
  return new Promise<WorkerDescription>((resolve) => {
    const done = new AbortController();
    let settled = false;
    const settle = (description: WorkerDescription) => {
      if (settled) return;
      settled = true;
      done.abort();
      spec.signal?.removeEventListener('abort', onAbort);
      resolve(description);
    };
    const onAbort = () => {
      child?.kill('SIGKILL');
      settle({ input: null, note: 'the gateway stopped before the worker described its input', transient: true });
    };

    let child: ReturnType<typeof spawn> | undefined;
    try {
      const [file, ...args] = splitCommand(spec.command);
      if (file === undefined) throw new Error('empty command');
      // Not even started: runpod-python, without RunPod's job URLs, runs the handler on
      // test_input.json, so asking would run a real job (models, uploads) outside the gateway.
      if (isPythonCommand(spec.command)) return settle({ input: null, note: PYTHON_NOTE });
      child = spawn(file, args, { cwd: spec.cwd, env: workerEnv({ env: { ...spec.env, [DESCRIBE_ENV]: '1' } }), stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    } catch (err) {
      settle({ input: null, note: `could not start the worker to describe its input: ${err instanceof Error ? err.message : String(err)}`, transient: true });
      return;
    }
    const c = child;
    if (spec.signal?.aborted) return onAbort();
    spec.signal?.addEventListener('abort', onAbort, { once: true });

    const decoder = new StringDecoder('utf8');
    let pending = '';
    let lastStderr = '';
    const onLine = (line: string) => {
      const description = parseDescribeLine(line);
      if (!description) return;
      settle(description);
      // It has said all it will: it should exit by itself, but need not be waited for; one that
      // ignores SIGTERM is killed rather than left behind.
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        void spec.clock.sleep(DESCRIBE_EXIT_GRACE_MS).then(() => {
          if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
        });
      }
    };
    c.stdout!.on('data', (chunk: Buffer) => {
      pending += decoder.write(chunk);
      for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      if (pending.length > MAX_DESCRIBE_STDOUT_CHARS) pending = '';
    });
    c.stderr!.on('data', (chunk: Buffer) => {
      const lines = chunk.toString('utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
      if (lines.length > 0) lastStderr = lines.at(-1)!.slice(0, 300);
    });
    c.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      settle({
        input: null,
        note: `could not start the worker to describe its input (${JSON.stringify(spec.command)} in ${spec.cwd}): ${err.message}${code === 'ENOENT' ? ' (command not found)' : ''}`,
        transient: true,
      });
    });
    c.on('close', (code, signal) => {
      if (pending !== '') onLine(pending + decoder.end());
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      settle({
        input: null,
        note: `the worker did not describe its input (it ${how} without printing a kilnDescribe line${lastStderr ? `; last stderr line: ${lastStderr}` : ''})`,
        transient: true,
      });
    });
    void spec.clock.sleep(timeoutMs, done.signal).then(() => {
      if (settled) return;
      c.kill('SIGKILL');
      settle({ input: null, note: `the worker did not describe its input within ${timeoutMs / 1000} s (killed)`, transient: true });
    });
  });
}

const PYTHON_NOTE = 'python workers do not describe their input';

/** Whether a worker command runs a python interpreter (`python3 handler.py`, `/usr/bin/python3.11 -u h.py`). */
function isPythonCommand(command: string): boolean {
  return /(^|\/)python[0-9.]*$/.test(splitCommand(command)[0] ?? '');
}

/** `{"kilnDescribe":1,"input":{…}|null[,"note":"…"]}` → its input (and why it is null); undefined for any other line. */
function parseDescribeLine(line: string): WorkerDescription | undefined {
  if (!line.includes('kilnDescribe')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { kilnDescribe, input, note } = value as { kilnDescribe?: unknown; input?: unknown; note?: unknown };
  if (kilnDescribe !== 1) return undefined;
  if (input === null || input === undefined) return { input: null, note: typeof note === 'string' && note !== '' ? note.slice(0, 500) : 'the worker has no input schema' };
  if (typeof input !== 'object' || Array.isArray(input)) return { input: null, note: 'the worker described its input with something that is not a JSON Schema object' };
  return { input: input as Record<string, unknown>, note: null };
}

/**
 * The `input` of `test_input.json` in a folder (RunPod's local-test file); null when there is no
 * such file, it is not JSON, or it has no `input`.
 */
export async function readTestInput(folder: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path.join(folder, TEST_INPUT_FILE), 'utf8');
  } catch {
    return null;
  }
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) && 'input' in value ? ((value as { input: unknown }).input ?? null) : null;
  } catch {
    return null;
  }
}

/** Options of {@link WorkerSchemas}. */
export interface WorkerSchemasOptions {
  config: GatewayConfig;
  clock: Clock;
}

/**
 * What the dashboard's Run form is built from, per endpoint: the worker's own description of its
 * input (asked once per endpoint and kept for the gateway's life; concurrent requests share one
 * run; `forget` after the worker's files change; a worker that gave no answer — crashed, timed out —
 * is asked again by the next request) and its `test_input.json`, read on every call.
 *
 * @example
 * const schemas = new WorkerSchemas({ config, clock });
 * await schemas.get('tts'); // { input: { type: 'object', … }, testInput: { text: 'hi' }, note: null }
 * schemas.close();
 */
export class WorkerSchemas {
  readonly #options: WorkerSchemasOptions;
  readonly #cache = new Map<string, Promise<WorkerDescription>>();
  readonly #closing = new AbortController();

  constructor(options: WorkerSchemasOptions) {
    this.#options = options;
  }

  /** The endpoint's schema response; `EndpointNotFoundError` for an endpoint the config does not have. */
  async get(endpoint: string): Promise<EndpointSchemaResponse> {
    const settings = this.#options.config.endpoints[endpoint];
    if (!settings) throw new EndpointNotFoundError(endpoint);
    let description = this.#cache.get(endpoint);
    if (!description) {
      description = describeWorker({
        command: settings.worker.command,
        cwd: settings.worker.cwd,
        env: workerBaseEnv(this.#options.config, settings),
        clock: this.#options.clock,
        signal: this.#closing.signal,
      });
      this.#cache.set(endpoint, description);
      const asked = description;
      void asked.then((answer) => {
        if (answer.transient && this.#cache.get(endpoint) === asked) this.#cache.delete(endpoint);
      });
    }
    const [{ input, note }, testInput] = await Promise.all([description, readTestInput(settings.worker.cwd)]);
    return { input, testInput, note };
  }

  /** Forgets an endpoint's description (its worker changed): the next `get` asks the worker again. */
  forget(endpoint: string): void {
    this.#cache.delete(endpoint);
  }

  /** Kills describing workers still running; their requests answer `input: null`. */
  close(): void {
    this.#closing.abort();
  }
}
