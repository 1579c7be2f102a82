import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A repo to serve: file contents by path. */
export interface FakeRepoInput {
  readonly files: Readonly<Record<string, Uint8Array | string>>;
  /** Branch the files are committed on (default `main`). */
  readonly branch?: string;
  /** Gated: files need a token from `tokens` (401 without a token, 403 with another one). Listings stay public, as on the Hub. */
  readonly gated?: boolean;
  readonly tokens?: readonly string[];
  /** Files of at least this many bytes are LFS files (sha256 in the listing, served through a CDN redirect). Default 1024. */
  readonly lfsFromBytes?: number;
}

/** One request the hub answered. */
export interface HubRequest {
  /** `info` (model info), `tree` (listing), `resolve` (a file URL), `cdn` (an LFS file after the redirect). */
  readonly route: 'info' | 'tree' | 'resolve' | 'cdn' | 'other';
  readonly repo: string | undefined;
  readonly path: string | undefined;
  /** The Range header as sent. */
  readonly range: string | undefined;
  readonly status: number;
  /** Body bytes sent (file routes). */
  bytes: number;
  readonly authorization: string | undefined;
}

interface FakeFile {
  readonly content: Buffer;
  readonly gitOid: string;
  readonly sha256: string;
  readonly lfs: boolean;
}

interface FakeRepo {
  readonly commits: Map<string, Map<string, FakeFile>>;
  readonly branches: Map<string, string>;
  readonly gated: boolean;
  readonly tokens: ReadonlySet<string>;
}

/** A fault to inject into the next content answers of one file. */
interface Fault {
  readonly path: string;
  readonly afterBytes: number;
  readonly mode: 'cut' | 'stall' | 'pause';
  /** `pause`: resolves when the rest may be sent. */
  readonly proceed?: Promise<void>;
  remaining: number;
  readonly reached: () => void;
}

/**
 * A loopback stand-in for the Hugging Face Hub that serves real bytes on the routes
 * `@huggingface/hub` calls: model info (`/api/models/{repo}/revision/{rev}` → commit sha),
 * recursive tree listings (`/api/models/{repo}/tree/{rev}`, sizes, git oids and LFS sha256s,
 * paginated through `Link`), and `/{repo}/resolve/{rev}/{path}` with Range, where LFS files are
 * redirected to a CDN route as on the Hub. Records every request; can cut or stall a transfer.
 *
 * @example
 * const hub = await FakeHuggingFaceHub.start();
 * const { commit } = hub.addRepo('acme/tiny', { files: { 'model.bin': randomBytes(4096) } });
 */
export class FakeHuggingFaceHub {
  readonly requests: HubRequest[] = [];
  readonly #server: http.Server;
  readonly #repos = new Map<string, FakeRepo>();
  readonly #faults: Fault[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #pageSize: number;

  private constructor(server: http.Server, pageSize: number) {
    this.#server = server;
    this.#pageSize = pageSize;
  }

  /** Starts a hub on 127.0.0.1 (a free port). `pageSize` splits tree listings into pages. */
  static async start(options: { pageSize?: number } = {}): Promise<FakeHuggingFaceHub> {
    let hub: FakeHuggingFaceHub | undefined;
    const server = http.createServer((req, res) => hub!.#handle(req, res));
    hub = new FakeHuggingFaceHub(server, options.pageSize ?? 1000);
    server.on('connection', (socket) => {
      hub!.#sockets.add(socket);
      socket.on('close', () => hub!.#sockets.delete(socket));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return hub;
  }

  /** `http://127.0.0.1:<port>`: the hub URL to configure (`HF_ENDPOINT`). */
  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Adds (or replaces) a repo with one commit on its branch; returns the commit sha. */
  addRepo(id: string, input: FakeRepoInput): { commit: string } {
    const lfsFrom = input.lfsFromBytes ?? 1024;
    const files = new Map<string, FakeFile>();
    for (const [path, raw] of Object.entries(input.files)) {
      const content = typeof raw === 'string' ? Buffer.from(raw) : Buffer.from(raw);
      files.set(path, {
        content,
        gitOid: createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex'),
        sha256: createHash('sha256').update(content).digest('hex'),
        lfs: content.length >= lfsFrom,
      });
    }
    const commit = createHash('sha1')
      .update(id)
      .update([...files].map(([p, f]) => `${p}:${f.gitOid}`).sort().join('\n'))
      .digest('hex');
    const repo = this.#repos.get(id) ?? { commits: new Map(), branches: new Map(), gated: input.gated ?? false, tokens: new Set(input.tokens ?? []) };
    repo.commits.set(commit, files);
    repo.branches.set(input.branch ?? 'main', commit);
    this.#repos.set(id, repo);
    return { commit };
  }

  /** From now on `path` in `repo` is served with one byte flipped, while listings keep the original digests. */
  tamper(repo: string, path: string): void {
    for (const files of this.#repos.get(repo)?.commits.values() ?? []) {
      const file = files.get(path);
      if (file === undefined) continue;
      const content = Buffer.from(file.content);
      content[content.length >> 1] = content[content.length >> 1]! ^ 0xff;
      files.set(path, { ...file, content });
    }
  }

  /** The next `times` content answers of `path` end abruptly (socket destroyed) after `afterBytes` body bytes. */
  cutAfter(path: string, afterBytes: number, times = 1): Promise<void> {
    return this.#addFault(path, afterBytes, 'cut', times);
  }

  /** The next content answer of `path` sends `afterBytes` body bytes, then nothing more until the hub closes. Resolves when that point is reached. */
  stallAfter(path: string, afterBytes: number): Promise<void> {
    return this.#addFault(path, afterBytes, 'stall', 1);
  }

  /**
   * The next content answer of `path` sends `afterBytes` body bytes, then waits for `resume()` before
   * sending the rest. `reached` resolves when the pause begins.
   */
  pauseAfter(path: string, afterBytes: number): { reached: Promise<void>; resume: () => void } {
    let resume!: () => void;
    const proceed = new Promise<void>((r) => (resume = r));
    let reachedResolve!: () => void;
    const reached = new Promise<void>((r) => (reachedResolve = r));
    this.#faults.push({ path, afterBytes, mode: 'pause', remaining: 1, reached: reachedResolve, proceed });
    return { reached, resume };
  }

  /** Content requests (file bytes, not the 1-byte probes @huggingface/hub makes first) for `path`, or for every file. */
  contentRequests(path?: string): HubRequest[] {
    return this.requests.filter((r) => (r.route === 'resolve' || r.route === 'cdn') && r.range !== 'bytes=0-0' && (path === undefined || r.path === path));
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    this.#server.close();
    await once(this.#server, 'close');
  }

  #addFault(path: string, afterBytes: number, mode: Fault['mode'], times: number): Promise<void> {
    return new Promise((resolve) => this.#faults.push({ path, afterBytes, mode, remaining: times, reached: resolve }));
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://hub');
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const record = (route: HubRequest['route'], repo: string | undefined, path: string | undefined, status: number): HubRequest => {
      const entry: HubRequest = { route, repo, path, range: req.headers.range, status, bytes: 0, authorization: req.headers.authorization };
      this.requests.push(entry);
      return entry;
    };
    const json = (route: HubRequest['route'], repo: string | undefined, status: number, body: unknown, headers: Record<string, string> = {}) => {
      record(route, repo, undefined, status);
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };

    // /api/models/{org}/{repo}/revision/{rev}  and  /api/models/{org}/{repo}/tree/{rev}[/{path}]
    if (parts[0] === 'api' && parts[1] === 'models' && parts.length >= 6) {
      const id = `${parts[2]}/${parts[3]}`;
      const repo = this.#repos.get(id);
      const route = parts[4] === 'tree' ? 'tree' : parts[4] === 'revision' ? 'info' : 'other';
      if (repo === undefined) return json(route, id, 401, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
      const commit = repo.branches.get(parts[5]!) ?? (repo.commits.has(parts[5]!) ? parts[5]! : undefined);
      if (commit === undefined) return json(route, id, 404, { error: `Invalid rev id: ${parts[5]}` }, { 'x-error-code': 'RevisionNotFound' });
      const files = repo.commits.get(commit)!;
      if (route === 'info') {
        return json('info', id, 200, { _id: commit.slice(0, 24), id, sha: commit, private: false, gated: repo.gated ? 'manual' : false, downloads: 0, likes: 0, lastModified: '2025-01-01T00:00:00.000Z', pipeline_tag: 'other' });
      }
      if (route === 'tree') return this.#tree(url, files, (status, body, headers) => json('tree', id, status, body, headers));
      return json('other', id, 404, { error: 'not found' });
    }

    // /cdn/{sha256}
    if (parts[0] === 'cdn' && parts.length === 2) {
      for (const repo of this.#repos.values()) {
        for (const files of repo.commits.values()) {
          for (const [path, file] of files) if (file.sha256 === parts[1]) return this.#serve(req, res, record('cdn', undefined, path, 0), path, file);
        }
      }
      record('cdn', undefined, undefined, 404);
      res.writeHead(404).end();
      return;
    }

    // /{org}/{repo}/resolve/{rev}/{path…}
    if (parts.length >= 5 && parts[2] === 'resolve') {
      const id = `${parts[0]}/${parts[1]}`;
      const path = parts.slice(4).join('/');
      const repo = this.#repos.get(id);
      const commit = repo?.branches.get(parts[3]!) ?? (repo?.commits.has(parts[3]!) === true ? parts[3] : undefined);
      const file = commit === undefined ? undefined : repo!.commits.get(commit)!.get(path);
      if (repo === undefined || commit === undefined || file === undefined) {
        record('resolve', id, path, 404);
        res.writeHead(404, { 'x-error-code': repo === undefined ? 'RepoNotFound' : 'EntryNotFound', 'content-type': 'application/json' }).end(JSON.stringify({ error: 'Entry not found' }));
        return;
      }
      if (repo.gated) {
        const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        if (token === undefined || !repo.tokens.has(token)) {
          const status = token === undefined ? 401 : 403;
          record('resolve', id, path, status);
          const message = status === 401 ? `Access to model ${id} is restricted. You must be authenticated to access it.` : `Access to model ${id} is restricted and you are not in the authorized list.`;
          res.writeHead(status, { 'x-error-code': 'GatedRepo', 'content-type': 'application/json' }).end(JSON.stringify({ error: message }));
          return;
        }
      }
      if (file.lfs) {
        record('resolve', id, path, 302);
        res.writeHead(302, { location: `${this.url}/cdn/${file.sha256}`, 'x-repo-commit': commit, 'x-linked-size': String(file.content.length), 'x-linked-etag': `"${file.sha256}"`, etag: `"${file.gitOid}"` }).end();
        return;
      }
      return this.#serve(req, res, record('resolve', id, path, 0), path, file, { 'x-repo-commit': commit });
    }

    record('other', undefined, undefined, 404);
    res.writeHead(404).end();
  }

  #tree(url: URL, files: Map<string, FakeFile>, send: (status: number, body: unknown, headers?: Record<string, string>) => void): void {
    const entries: unknown[] = [];
    const dirs = new Set<string>();
    for (const path of [...files.keys()].sort()) {
      const segments = path.split('/');
      for (let i = 1; i < segments.length; i++) dirs.add(segments.slice(0, i).join('/'));
    }
    for (const dir of [...dirs].sort()) entries.push({ type: 'directory', oid: createHash('sha1').update(dir).digest('hex'), size: 0, path: dir });
    for (const [path, file] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
      entries.push({
        type: 'file',
        oid: file.gitOid,
        size: file.content.length,
        path,
        ...(file.lfs ? { lfs: { oid: file.sha256, size: file.content.length, pointerSize: 134 } } : {}),
      });
    }
    const cursor = Number(url.searchParams.get('cursor') ?? '0');
    const page = entries.slice(cursor, cursor + this.#pageSize);
    const headers: Record<string, string> = {};
    if (cursor + this.#pageSize < entries.length) {
      const next = new URL(url.pathname + url.search, this.url);
      next.searchParams.set('cursor', String(cursor + this.#pageSize));
      headers['link'] = `<${next.href}>; rel="next"`;
    }
    send(200, page, headers);
  }

  #serve(req: http.IncomingMessage, res: http.ServerResponse, entry: HubRequest, path: string, file: FakeFile, headers: Record<string, string> = {}): void {
    const size = file.content.length;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = size - 1;
    let status = 200;
    if (range !== null) {
      start = Number(range[1]);
      end = range[2] === '' ? size - 1 : Math.min(size - 1, Number(range[2]));
      if (start >= size) {
        (entry as { status: number }).status = 416;
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      status = 206;
    }
    (entry as { status: number }).status = status;
    const body = file.content.subarray(start, end + 1);
    res.writeHead(status, {
      'content-length': String(body.length),
      'accept-ranges': 'bytes',
      etag: `"${file.lfs ? file.sha256 : file.gitOid}"`,
      'content-type': 'application/octet-stream',
      ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
      ...headers,
    });
    if (req.method === 'HEAD') return void res.end();
    const probe = req.headers.range === 'bytes=0-0';
    const fault = probe ? undefined : this.#faults.find((f) => f.path === path && f.remaining > 0);
    if (fault === undefined) {
      entry.bytes = body.length;
      res.end(body);
      return;
    }
    fault.remaining--;
    const first = body.subarray(0, Math.max(0, fault.afterBytes - start));
    entry.bytes = first.length;
    res.write(first, () => {
      fault.reached();
      // A cut: the peer sees the connection end mid-body. A stall: nothing more until close().
      if (fault.mode === 'cut') res.socket?.destroy();
      if (fault.mode === 'pause') {
        void fault.proceed!.then(() => {
          entry.bytes = body.length;
          res.end(body.subarray(first.length));
        });
      }
    });
  }
}
