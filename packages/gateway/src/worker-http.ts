import type { IncomingMessage, ServerResponse } from 'node:http';
import { PayloadTooLargeError, toHttpResponse } from './errors.ts';
import type { GatewayContext } from './http-app.ts';
import { WORKER_ROUTES, answerWorkerCall, type WorkerCall, type WorkerRoute } from './worker-api.ts';

/** Handles a request if it is a worker call; false leaves it to the next listener. */
export type WorkerRequestHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The worker API answered on node:http directly, before hono: every job costs a job-done call
 * and a share of a take, and building a web `Request` (headers, body stream, AbortSignal) for each
 * was a large part of the gateway's CPU per job. Same answers as `createWorkerApi` (both call
 * `answerWorkerCall`; errors go through `toHttpResponse`). Paths that are not exactly a worker
 * route with its method return false, and hono answers them (a JSON 404, for instance).
 *
 * @example
 * const workers = createWorkerRequestHandler(ctx);
 * const rest = getRequestListener(app.fetch);
 * createServer((req, res) => workers(req, res) || rest(req, res));
 */
export function createWorkerRequestHandler(ctx: GatewayContext): WorkerRequestHandler {
  return function handleWorkerRequest(req, res) {
    const call = matchWorkerCall(req, res);
    if (!call) return false;
    answerWorkerCall(ctx, call).then(
      (reply) => {
        if (reply.status === 204) {
          res.writeHead(204).end();
          return;
        }
        const text = JSON.stringify(reply.body);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
      },
      (err: unknown) => {
        const { status, body, headers } = toHttpResponse(err, ctx.log);
        const text = JSON.stringify(body);
        // A body refused part-way was not read to its end: the connection cannot carry another request.
        if (err instanceof PayloadTooLargeError || !req.complete) res.setHeader('connection', 'close');
        res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
      },
    );
    return true;
  };
}

/** `/v2/{endpoint}/{route}/{workerId}[/{jobId}]` with the route's method, or undefined. */
function matchWorkerCall(req: IncomingMessage, res: ServerResponse): WorkerCall | undefined {
  const url = req.url ?? '';
  if (!url.startsWith('/v2/')) return undefined;
  const queryAt = url.indexOf('?');
  const parts = (queryAt === -1 ? url.slice(4) : url.slice(4, queryAt)).split('/');
  if (parts.length < 3 || parts.length > 4) return undefined;
  const [endpoint, routeName, workerId, jobId] = parts as [string, string, string, string | undefined];
  if (!Object.hasOwn(WORKER_ROUTES, routeName)) return undefined;
  const route = routeName as WorkerRoute;
  const { method, withJobId } = WORKER_ROUTES[route];
  if (req.method !== method || withJobId !== (jobId !== undefined)) return undefined;
  let segments: { endpoint: string; workerId: string; jobId: string | undefined };
  try {
    segments = { endpoint: decodeURIComponent(endpoint), workerId: decodeURIComponent(workerId), jobId: jobId === undefined ? undefined : decodeURIComponent(jobId) };
  } catch {
    return undefined;
  }
  if (segments.endpoint === '' || segments.workerId === '' || segments.jobId === '') return undefined;
  let aborted: AbortController | undefined;
  return {
    route,
    endpoint: segments.endpoint,
    workerId: segments.workerId,
    ...(segments.jobId === undefined ? {} : { jobId: segments.jobId }),
    authorization: req.headers.authorization,
    query: new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1)),
    readBody: (limit) => readIncomingText(req, limit),
    // Only the long-polls look at it: made on first use, aborted when the worker hangs up before the answer.
    get signal() {
      if (!aborted) {
        const controller = new AbortController();
        aborted = controller;
        res.once('close', () => {
          if (!res.writableFinished) controller.abort();
        });
      }
      return aborted.signal;
    },
  };
}

/** Reads a request body as UTF-8, refusing more than `limit` bytes (by Content-Length first, then by counting). */
function readIncomingText(req: IncomingMessage, limit: number): Promise<string> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > limit) {
    return Promise.reject(new PayloadTooLargeError(limit, Number(declared)));
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume();
        reject(new PayloadTooLargeError(limit));
        return;
      }
      parts.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts, size).toString('utf8'));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
