// Helpers for replaying /work/shared/fixtures/runpod-python-exchange: the requests the real
// runpod-python worker made, one JSON object per line (see the fixtures' README).
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One HTTP request the real worker made, and what the recording's fake job server answered. */
export interface RecordedRequest {
  t_ms: number;
  method: 'GET' | 'POST';
  path: string;
  query: Record<string, string>;
  rawQuery: string;
  headers: Record<string, string>;
  /** Exact body bytes, as text. */
  body: string;
  status: number;
  response?: unknown;
}

/** The worker API call a recorded request is: the path segment after `/v2/{endpoint}/`. */
export type RecordedKind = 'job-take' | 'job-take-batch' | 'job-done' | 'job-stream' | 'job-stop' | 'ping';

/** A job as the recording's fake server handed it out. */
export interface RecordedJob {
  id: string;
  input: unknown;
  [key: string]: unknown;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The shared fixtures folder (outside the repository). */
export const FIXTURES_DIR = path.resolve(ROOT, '../shared/fixtures/runpod-python-exchange');

/** The `*.jsonl` files of the fixtures folder, sorted. */
export function fixtureFiles(): string[] {
  return readdirSync(FIXTURES_DIR)
    .filter((name) => name.endsWith('.jsonl'))
    .sort();
}

/** Reads one fixture file, in recorded order. */
export function loadExchange(file: string): RecordedRequest[] {
  return readFileSync(path.join(FIXTURES_DIR, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as RecordedRequest);
}

/** `job-take`, `job-done`, … of `/v2/{endpoint}/{kind}/{workerId}[/{jobId}]`. */
export function kindOf(request: RecordedRequest): RecordedKind {
  const kind = request.path.split('/')[3];
  switch (kind) {
    case 'job-take':
    case 'job-take-batch':
    case 'job-done':
    case 'job-stream':
    case 'job-stop':
    case 'ping':
      return kind;
    default:
      throw new Error(`unexpected recorded path ${request.path}`);
  }
}

/** The jobs a recorded take answer carried (none for a 204). */
export function jobsOf(request: RecordedRequest): RecordedJob[] {
  if (request.status !== 200 || request.response === undefined) return [];
  return (Array.isArray(request.response) ? request.response : [request.response]) as RecordedJob[];
}

/** A response read off the socket. */
export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * Sends one request over a fresh socket with exactly these headers (no Host/Content-Length
 * rewriting beyond what is given): `fetch` would drop or normalise some of the recorded ones.
 */
export function rawRequest(
  base: string,
  request: { method: string; pathAndQuery: string; headers: Record<string, string>; body: string },
): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method: request.method, path: request.pathAndQuery, headers: request.headers, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (chunk: Buffer) => parts.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(request.body === '' ? undefined : request.body);
  });
}
