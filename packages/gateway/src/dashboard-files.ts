import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Hono } from 'hono';
import type { Context } from 'hono';

/** Content types of the files a built dashboard has in `assets/`; other extensions are not served. */
export const DASHBOARD_CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
});

/**
 * The dashboard page's Content-Security-Policy: its own scripts, styles and API only; images and
 * media also from `data:` and `blob:` (base64 audio and image outputs are shown from blobs) and
 * from any http(s) URL (outputs that are links, e.g. to the job's S3 bucket, are shown as players).
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data: blob: http: https:",
  "media-src 'self' data: blob: http: https:",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

/** Hashed asset files never change under one name. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>kiln</title>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>kiln</h1>
<p>The gateway is running, but the dashboard is not built.</p>
<p>Build it with <code>npm run build -w @kiln/dashboard</code> and restart the gateway.</p>
<p>RunPod's API is under <code>/v2/{endpoint}/…</code>; kiln's admin API under <code>/kiln/v1/…</code>.</p>
</body>
</html>
`;

/**
 * Serves the built dashboard (no auth: the page asks for the API key itself): `GET /` and
 * `/index.html` answer its `index.html` (`no-cache`, with {@link DASHBOARD_CSP}), `/assets/<file>`
 * its hashed files (cached for a year, `immutable`). Nothing outside `dir` is ever read: a path
 * with `..`, an encoded separator or a hidden file is a 404. Without `dir`, or without an
 * `index.html` in it, `/` answers a small page that says how to build the dashboard. HEAD works
 * everywhere GET does.
 *
 * @example
 * app.route('/', createDashboardFiles(dashboardDir));
 */
export function createDashboardFiles(dir: string | undefined): Hono {
  const app = new Hono();
  const root = dir === undefined ? undefined : path.resolve(dir);

  const page = async (c: Context) => {
    const html = root === undefined ? undefined : await readIfFile(path.join(root, 'index.html'));
    if (html === undefined) {
      return new Response(c.req.method === 'HEAD' ? null : NOT_BUILT_PAGE, { status: 200, headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' } });
    }
    return new Response(c.req.method === 'HEAD' ? null : new Uint8Array(html), {
      status: 200,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        'content-length': String(html.length),
        'cache-control': 'no-cache',
        'content-security-policy': DASHBOARD_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      },
    });
  };
  app.on(['GET', 'HEAD'], '/', page);
  app.on(['GET', 'HEAD'], '/index.html', page);

  app.on(['GET', 'HEAD'], '/assets/*', async (c) => {
    const file = root === undefined ? undefined : assetPath(root, c.req.path);
    const type = file === undefined ? undefined : DASHBOARD_CONTENT_TYPES[path.extname(file).toLowerCase()];
    const body = file === undefined || type === undefined ? undefined : await readIfFile(file);
    if (body === undefined) return c.json({ error: `no dashboard file ${c.req.path}`, code: 'not_found' }, 404);
    return new Response(c.req.method === 'HEAD' ? null : new Uint8Array(body), {
      status: 200,
      headers: { 'content-type': type!, 'content-length': String(body.length), 'cache-control': IMMUTABLE, 'x-content-type-options': 'nosniff' },
    });
  });
  return app;
}

/**
 * The file under `root/assets/` a request path names, or undefined when it would leave that
 * folder. Checked on the raw path (before and after decoding), not only on the resolved one, so
 * `%2e%2e`, `%2f` and `\` never reach the file system.
 */
function assetPath(root: string, requestPath: string): string | undefined {
  const raw = requestPath.slice('/assets/'.length);
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  const segments = name.split('/');
  if (name === '' || name.includes('\\') || name.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..' || s.startsWith('.'))) return undefined;
  const assets = path.join(root, 'assets');
  const file = path.resolve(assets, ...segments);
  return file.startsWith(assets + path.sep) ? file : undefined;
}

/** A regular file's bytes, or undefined when it is missing, a folder, or unreadable. */
async function readIfFile(file: string): Promise<Buffer | undefined> {
  try {
    if (!(await stat(file)).isFile()) return undefined;
    return await readFile(file);
  } catch {
    return undefined;
  }
}
