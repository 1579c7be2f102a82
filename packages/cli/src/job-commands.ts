import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { JobFailedError, KilnHttpError, UnexpectedResponseError, kiln, summarizeJobError } from '@kiln/client';
import type { FinishedJob, JobStatus, KilnEndpoint, RunOptions } from '@kiln/client';
import type { LogLineView } from '@kiln/protocol';
import { listJobs, readLogs } from './gateway-admin.ts';
import type { GatewayTarget } from './gateway-admin.ts';
import { ProgressDisplay, formatClock, formatDuration, formatTable, formatTime, painter, parseJsonLogLine, statusStyle, truncate, useColor } from './terminal.ts';
import type { CommandIo } from './terminal.ts';
import { DEFAULT_GATEWAY_URL } from './job-cli.ts';
import type { ConnectionOptions } from './job-cli.ts';

/** Options of `kiln run`. */
export interface RunCommandOptions extends ConnectionOptions {
  input?: string;
  inputFile?: string;
  webhook?: string;
  idempotencyKey?: string;
}

/** Options of `kiln jobs ls`. */
export interface ListCommandOptions extends ConnectionOptions {
  status?: string;
  limit?: string;
  cursor?: string;
}

/** Options of `kiln logs`. */
export interface LogsCommandOptions extends ConnectionOptions {
  job?: string;
  worker?: string;
  follow?: boolean;
}

/** How often `kiln logs --follow` asks for new lines. */
export const LOG_FOLLOW_POLL_MS = 1000;
const LOG_PAGE = 1000;
/** Keys of a run request body: a JSON object made only of these (with `input`) is taken as the whole request, like test_input.json. */
const RUN_REQUEST_KEYS = new Set(['input', 'webhook', 'webhookEvents', 'policy', 's3Config']);

/** `--url`, else KILN_URL, else the default; `--api-key`, else KILN_API_KEY. */
export function resolveTarget(options: ConnectionOptions, env: CommandIo['env']): GatewayTarget {
  const url = (options.url ?? env['KILN_URL'] ?? DEFAULT_GATEWAY_URL).replace(/\/+$/, '');
  const apiKey = options.apiKey ?? (env['KILN_API_KEY'] || undefined);
  return { url, apiKey };
}

function endpointOf(target: GatewayTarget, name: string): KilnEndpoint {
  return kiln({ baseUrl: `${target.url}/v2`, ...(target.apiKey ? { apiKey: target.apiKey } : {}) }).endpoint(name);
}

/**
 * `kiln run <endpoint>`: submits with `/run`, shows progress on stderr, prints stream chunks as
 * they arrive and the output at the end. 0 when the job COMPLETED, 1 when it ended otherwise,
 * 130 after Ctrl-C (the job goes on; its id is printed).
 */
export async function runCommand(endpointName: string, options: RunCommandOptions, io: CommandIo): Promise<number> {
  const target = resolveTarget(options, io.env);
  const request = await readRunRequest(options);
  const endpoint = endpointOf(target, endpointName);
  const paint = painter(useColor(io.stderr, io.env));
  const runOptions: RunOptions = { ...request.options };
  if (options.webhook !== undefined) runOptions.webhook = options.webhook;
  if (options.idempotencyKey !== undefined) runOptions.idempotencyKey = options.idempotencyKey;
  const { id } = await endpoint.run(request.input, runOptions);
  if (!options.json) io.stderr.write(`${paint('gray', `job ${id} submitted to ${endpointName}`)}\n`);

  const interrupted = new AbortController();
  const onSignal = () => interrupted.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  const progress = options.json ? undefined : new ProgressDisplay(io.stderr);
  let chunks = 0;
  let atLineStart = true;
  let final: FinishedJob<unknown> | undefined;
  try {
    for await (const chunk of endpoint.stream(id, { signal: interrupted.signal, onProgress: (p) => progress?.update(p) })) {
      chunks++;
      if (options.json) {
        io.stdout.write(`${JSON.stringify({ chunk })}\n`);
        continue;
      }
      progress?.clear();
      // Text chunks (tokens) run on as they come; anything else is one JSON line each.
      const text = typeof chunk === 'string' ? chunk : `${JSON.stringify(chunk)}\n`;
      io.stdout.write(text);
      if (text.length > 0) atLineStart = text.endsWith('\n');
    }
  } catch (err) {
    if (err instanceof JobFailedError) final = err.job;
    else if (interrupted.signal.aborted) {
      progress?.clear();
      io.stderr.write(`\njob ${id} is still ${await currentStatus(endpoint, id)}; cancel it with: kiln jobs cancel ${endpointName} ${id}\n`);
      return 130;
    } else throw err;
  } finally {
    process.off('SIGINT', onSignal);
    progress?.clear();
  }
  final ??= await endpoint.waitFor(id);
  if (!atLineStart) io.stdout.write('\n');

  if (options.json) {
    io.stdout.write(`${JSON.stringify(final)}\n`);
  } else if (final.status === 'COMPLETED') {
    // A streaming handler's output is [] unless it aggregates its chunks: nothing more to show then.
    const streamedOnly = chunks > 0 && Array.isArray(final.output) && final.output.length === 0;
    if (!streamedOnly && final.output !== undefined) io.stdout.write(formatOutput(final.output));
    io.stderr.write(`${paint('green', 'COMPLETED')} ${paint('gray', timing(final))}\n`);
  } else {
    const why = final.error === undefined ? '' : `: ${summarizeJobError(final.error)}`;
    io.stderr.write(`${paint(statusStyle(final.status), final.status)}${why}\n`);
  }
  return final.status === 'COMPLETED' ? 0 : 1;
}

async function currentStatus(endpoint: KilnEndpoint, id: string): Promise<string> {
  try {
    return (await endpoint.status(id)).status;
  } catch {
    return 'queued or running';
  }
}

/** The job input from `--input` or `--input-file`; a run request body (`{"input": …, "policy": …}`) is taken apart. */
async function readRunRequest(options: RunCommandOptions): Promise<{ input: unknown; options: RunOptions }> {
  if ((options.input === undefined) === (options.inputFile === undefined)) {
    throw new UsageError("give the job's input with --input '{…}' or --input-file file.json (one of them)");
  }
  const source = options.input !== undefined ? '--input' : options.inputFile!;
  const text = options.input ?? (await readFile(options.inputFile!, 'utf8'));
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (cause) {
    throw new UsageError(`${source} is not JSON: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
  if (isObject(value) && Object.hasOwn(value, 'input') && Object.keys(value).every((key) => RUN_REQUEST_KEYS.has(key))) {
    const { input, ...rest } = value;
    return { input, options: rest as RunOptions };
  }
  return { input: value, options: {} };
}

/** `kiln jobs ls <endpoint>`: the newest jobs first, one page. */
export async function listCommand(endpointName: string, options: ListCommandOptions, io: CommandIo): Promise<number> {
  const target = resolveTarget(options, io.env);
  const limit = options.limit === undefined ? undefined : positiveInteger(options.limit, '--limit');
  const page = await listJobs(target, endpointName, { status: options.status, limit, cursor: options.cursor });
  if (options.json) {
    io.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
    return 0;
  }
  const paint = painter(useColor(io.stdout, io.env));
  if (page.jobs.length === 0) {
    io.stderr.write(`no jobs${options.status ? ` with status ${options.status}` : ''} on ${endpointName}\n`);
    return 0;
  }
  const rows = page.jobs.map((job) => [
    job.id,
    { text: job.status, style: statusStyle(job.status) },
    formatTime(job.createdAt),
    formatDuration(job.delayTime),
    formatDuration(job.executionTime),
    job.workerId ?? '-',
    job.error ? truncate(summarizeJobError(job.error), 60) : '',
  ]);
  io.stdout.write(formatTable(['ID', 'STATUS', 'CREATED', 'DELAY', 'EXECUTION', 'WORKER', 'ERROR'], rows, paint));
  if (page.next !== null) io.stderr.write(`more: kiln jobs ls ${endpointName} --cursor ${page.next}\n`);
  return 0;
}

/** `kiln jobs status <endpoint> <id>`: the status object. */
export async function statusCommand(endpointName: string, id: string, options: ConnectionOptions, io: CommandIo): Promise<number> {
  const job = await endpointOf(resolveTarget(options, io.env), endpointName).status(id);
  if (options.json) {
    io.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
    return 0;
  }
  const paint = painter(useColor(io.stdout, io.env));
  const rows: [string, string][] = [
    ['id', job.id],
    ['status', paint(statusStyle(job.status), job.status)],
    ['delay', formatDuration(job.delayTime)],
    ['execution', formatDuration(job.executionTime)],
  ];
  if (job.workerId !== undefined) rows.push(['worker', job.workerId]);
  if (job.retries !== undefined) rows.push(['retries', String(job.retries)]);
  if (job.error !== undefined) rows.push(['error', summarizeJobError(job.error)]);
  if (job.output !== undefined) rows.push([job.status === 'IN_PROGRESS' ? 'progress' : 'output', formatOutput(job.output).trimEnd().replaceAll('\n', '\n           ')]);
  io.stdout.write(rows.map(([key, value]) => `${paint('bold', key.padEnd(10))} ${value}\n`).join(''));
  return 0;
}

/** `kiln jobs cancel|retry <endpoint> <id>`: the job's id and new status. */
export async function transitionCommand(action: 'cancel' | 'retry', endpointName: string, id: string, options: ConnectionOptions, io: CommandIo): Promise<number> {
  const endpoint = endpointOf(resolveTarget(options, io.env), endpointName);
  const answer = action === 'cancel' ? await endpoint.cancel(id) : await endpoint.retry(id);
  if (options.json) io.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
  else io.stdout.write(`${answer.id} ${painter(useColor(io.stdout, io.env))(statusStyle(answer.status), answer.status)}\n`);
  return 0;
}

/**
 * `kiln logs <endpoint>`: the captured worker lines, oldest first (of a job with `--job`, of a
 * worker with `--worker`); with `--follow`, new lines as they come until Ctrl-C.
 */
export async function logsCommand(endpointName: string, options: LogsCommandOptions, io: CommandIo): Promise<number> {
  const target = resolveTarget(options, io.env);
  const paint = painter(useColor(io.stdout, io.env));
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let after = 0;
    for (;;) {
      let page;
      try {
        page = await readLogs(target, endpointName, { jobId: options.job, workerId: options.worker, after, limit: LOG_PAGE }, stop.signal);
      } catch (err) {
        if (stop.signal.aborted) return 0;
        throw err;
      }
      for (const line of page.lines) io.stdout.write(options.json ? `${JSON.stringify(line)}\n` : `${formatLogLine(line, paint)}\n`);
      after = page.next;
      if (page.lines.length === LOG_PAGE) continue;
      if (!options.follow) return 0;
      await delay(LOG_FOLLOW_POLL_MS, undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) return 0;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** One worker log line for people: time, worker, and for JSON lines `LEVEL [job] message`. */
export function formatLogLine(line: LogLineView, paint: ReturnType<typeof painter>): string {
  const time = formatClock(line.time);
  const parsed = parseJsonLogLine(line.line);
  const text = parsed === undefined ? line.line : `${parsed.level} ${parsed.message}`;
  const job = parsed?.jobId ?? line.jobId;
  const jobPart = job ? ` ${paint('cyan', `[${job}]`)}` : '';
  const body = line.stream === 'stderr' ? paint('yellow', text) : text;
  return `${paint('gray', time)} ${paint('magenta', line.workerId)}${jobPart} ${body}`;
}

/** An output for people: a string as it is, anything else as indented JSON; always one trailing newline. */
export function formatOutput(output: unknown): string {
  const text = typeof output === 'string' ? output : JSON.stringify(output, null, 2);
  return text.endsWith('\n') ? text : `${text}\n`;
}

function timing(job: JobStatus<unknown>): string {
  return `(delay ${formatDuration(job.delayTime)}, execution ${formatDuration(job.executionTime)})`;
}

/** A mistake on the command line: printed without a stack, exit code 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * One line for a failed command: HTTP errors as the client words them, an unreachable gateway
 * named with its address and the system's reason.
 */
export function describeCommandError(err: unknown, target: GatewayTarget): string {
  if (err instanceof KilnHttpError || err instanceof UnexpectedResponseError || err instanceof UsageError) return err.message;
  if (err instanceof TypeError && err.cause instanceof Error) {
    const code = (err.cause as { code?: string }).code;
    return `cannot reach the gateway at ${target.url}: ${code ?? err.cause.message} (start it with kiln dev, or point --url / KILN_URL at it)`;
  }
  return err instanceof Error ? err.message : String(err);
}

function positiveInteger(raw: string, flag: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
