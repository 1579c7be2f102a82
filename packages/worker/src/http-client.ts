import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';

/** What the worker keeps of an HTTP response. */
export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Options of one request. */
export interface HttpRequestOptions {
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Cut the request off after this long (long-polls are capped client-side, as RunPod's SDK does). */
  timeoutMs?: number;
}

/**
 * A minimal HTTP client on `node:http` with keep-alive. `fetch` would cost ≈25 ms of start-up
 * (undici loads lazily), which is most of a Node worker's cold start.
 */
export class HttpClient {
  #agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  #httpsModule: Promise<typeof import('node:https')> | undefined;
  #httpsAgent: import('node:https').Agent | undefined;

  /** Sends one request and reads the whole response body as text. Rejects on network errors, timeout or abort. */
  async request(url: string, options: HttpRequestOptions): Promise<HttpResponse> {
    const target = new URL(url);
    let transport: Pick<typeof http, 'request'> = http;
    let agent: http.Agent = this.#agent;
    if (target.protocol === 'https:') {
      this.#httpsModule ??= import('node:https');
      const https = await this.#httpsModule;
      this.#httpsAgent ??= new https.Agent({ keepAlive: true, maxSockets: 64 });
      transport = https;
      agent = this.#httpsAgent;
    }
    return new Promise((resolve, reject) => {
      if (options.signal?.aborted) return reject(options.signal.reason);
      const headers: Record<string, string> = { ...options.headers };
      if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
      const req = transport.request(target, { method: options.method, headers, agent });
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => req.destroy(options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'));
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => req.destroy(new Error(`request timed out after ${options.timeoutMs} ms`)), options.timeoutMs);
      }
      req.on('error', (err) => {
        cleanup();
        reject(err);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => {
          cleanup();
          reject(err);
        });
        res.on('end', () => {
          cleanup();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.end(options.body);
    });
  }

  /** Closes idle keep-alive sockets so the process can exit. */
  close(): void {
    this.#agent.destroy();
    this.#httpsAgent?.destroy();
  }
}
