// Test support (node:http; never imported by index.ts): a loopback server that records every request
// and answers with whatever the test's handler writes, so the client is tested over real sockets.
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the fake received. */
export interface RecordedRequest {
  method: string;
  /** Path and query, e.g. `/v2/ep/status-sync/j1?wait=90000`. */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Answers one request; `n` counts the requests so far (1 for the first). */
export type FakeHandler = (request: RecordedRequest, response: ServerResponse, n: number) => void | Promise<void>;

/** A running fake endpoint server. */
export interface FakeEndpoint {
  /** `http://127.0.0.1:<port>/v2`: what `kiln({ baseUrl })` takes. */
  readonly baseUrl: string;
  readonly requests: RecordedRequest[];
  handler: FakeHandler;
  close(): Promise<void>;
}

/** Starts a fake on a free loopback port. */
export async function startFakeEndpoint(handler: FakeHandler): Promise<FakeEndpoint> {
  const requests: RecordedRequest[] = [];
  const fake = { handler } as FakeEndpoint;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      requests.push(recorded);
      Promise.resolve(fake.handler(recorded, res, requests.length)).catch((err: unknown) => {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    baseUrl: `http://127.0.0.1:${port}/v2`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/** Writes a JSON answer. */
export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

/** Starts a `text/event-stream` answer. */
export function startEventStream(response: ServerResponse): void {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  response.flushHeaders();
}

/** One SSE event as the kiln gateway writes it. */
export function sseEvent(id: string, event: string, data: unknown): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * A starter of fake endpoints that all close when the test file's `after` hook runs.
 *
 * @example
 * const fake = fakeEndpoints(after);
 * const endpoint = await fake((req, res) => sendJson(res, 200, {}));
 */
export function fakeEndpoints(after: (fn: () => Promise<void>) => void): (handler: FakeHandler) => Promise<FakeEndpoint> {
  const started: FakeEndpoint[] = [];
  after(async () => {
    for (const endpoint of started) await endpoint.close();
  });
  return async (handler) => {
    const endpoint = await startFakeEndpoint(handler);
    started.push(endpoint);
    return endpoint;
  };
}
