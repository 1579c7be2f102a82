import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DASHBOARD_CSP } from './dashboard-files.ts';
import { createTestGateway, type TestGateway } from './test-gateway.ts';

let root: string;
let dist: string;
before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'kiln-dashboard-'));
  dist = path.join(root, 'dist');
  mkdirSync(path.join(dist, 'assets', 'fonts'), { recursive: true });
  writeFileSync(path.join(dist, 'index.html'), '<!doctype html><title>kiln</title><script type="module" src="/assets/index-abc.js"></script>');
  writeFileSync(path.join(dist, 'assets', 'index-abc.js'), 'console.log(1)');
  writeFileSync(path.join(dist, 'assets', 'index-abc.css'), 'body{}');
  writeFileSync(path.join(dist, 'assets', 'logo.svg'), '<svg/>');
  writeFileSync(path.join(dist, 'assets', 'fonts', 'inter.woff2'), Buffer.from([0x77, 0x4f, 0x46, 0x32]));
  writeFileSync(path.join(dist, 'assets', 'icon.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  writeFileSync(path.join(dist, 'assets', 'notes.txt'), 'not an asset type');
  writeFileSync(path.join(root, 'secret.js'), 'outside the dashboard');
});
after(() => rmSync(root, { recursive: true, force: true }));

async function withGateway(dashboardDir: string | undefined, run: (gw: TestGateway) => Promise<void>): Promise<void> {
  const gw = await createTestGateway(dashboardDir === undefined ? {} : { dashboardDir });
  try {
    await run(gw);
  } finally {
    await gw.close();
  }
}

test('GET / and /index.html serve index.html without auth, no-cache, with a CSP for self scripts, styles and API', async () => {
  await withGateway(dist, async (gw) => {
    for (const url of ['/', '/index.html']) {
      const res = await gw.request(url);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      assert.equal(res.headers.get('content-security-policy'), DASHBOARD_CSP);
      assert.match(await res.text(), /<title>kiln<\/title>/);
    }
    assert.match(DASHBOARD_CSP, /script-src 'self'/);
    assert.match(DASHBOARD_CSP, /style-src 'self'/);
    assert.match(DASHBOARD_CSP, /connect-src 'self'/);
    assert.match(DASHBOARD_CSP, /media-src 'self' data: blob:/);
    assert.match(DASHBOARD_CSP, /img-src 'self' data: blob:/);
  });
});

test('the CSP lets the job page play media outputs that are http(s) URLs (an S3 upload, a local bucket)', () => {
  const directive = (name: string) => DASHBOARD_CSP.split('; ').find((d) => d.startsWith(`${name} `))?.split(' ').slice(1) ?? [];
  for (const name of ['img-src', 'media-src']) {
    assert.ok(directive(name).includes('https:'), `${name} allows https: URLs`);
    assert.ok(directive(name).includes('http:'), `${name} allows http: URLs`);
  }
  // Scripts and the API stay same-origin only.
  assert.deepEqual(directive('script-src'), ["'self'"]);
  assert.deepEqual(directive('connect-src'), ["'self'"]);
});

test('GET /assets/<file> serves js, css, svg, woff2 and png with their content types, cached as immutable', async () => {
  await withGateway(dist, async (gw) => {
    const expected: [string, string, string][] = [
      ['/assets/index-abc.js', 'text/javascript; charset=utf-8', 'console.log(1)'],
      ['/assets/index-abc.css', 'text/css; charset=utf-8', 'body{}'],
      ['/assets/logo.svg', 'image/svg+xml', '<svg/>'],
      ['/assets/fonts/inter.woff2', 'font/woff2', 'wOF2'],
      ['/assets/icon.png', 'image/png', '\x89PNG'],
    ];
    for (const [url, type, body] of expected) {
      const res = await gw.request(url);
      assert.equal(res.status, 200, url);
      assert.equal(res.headers.get('content-type'), type, url);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable', url);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), Buffer.from(body, 'latin1'), url);
    }
  });
});

test('HEAD answers like GET without a body', async () => {
  await withGateway(dist, async (gw) => {
    const page = await gw.request('/', { method: 'HEAD' });
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(await page.text(), '');
    const asset = await gw.request('/assets/index-abc.js', { method: 'HEAD' });
    assert.equal(asset.status, 200);
    assert.equal(asset.headers.get('content-length'), String('console.log(1)'.length));
    assert.equal(await asset.text(), '');
  });
});

test('no path leaves the dashboard folder: .., encoded %2e%2e and %2f, backslashes; unknown or unlisted files are a JSON 404', async () => {
  await withGateway(dist, async (gw) => {
    for (const url of [
      '/assets/%2e%2e/%2e%2e/secret.js',
      '/assets/%2E%2E%2F%2E%2E%2Fsecret.js',
      '/assets/..%2f..%2fsecret.js',
      '/assets/fonts/%2e%2e/%2e%2e/%2e%2e/secret.js',
      '/assets/..%5c..%5csecret.js',
      '/assets/%252e%252e/%252e%252e/secret.js',
      '/assets/missing.js',
      '/assets/notes.txt',
      '/assets/',
      '/assets/fonts',
    ]) {
      const res = await gw.request(url);
      assert.equal(res.status, 404, url);
      assert.equal(res.headers.get('content-type'), 'application/json', url);
      assert.doesNotMatch(await res.text(), /outside the dashboard/, url);
    }
  });
});

test('paths with .. reach no file outside the folder over a real socket either', async () => {
  const gw = await createTestGateway({ dashboardDir: dist, transport: 'socket' });
  try {
    for (const url of ['/assets/%2e%2e/%2e%2e/secret.js', '/assets/..%2f..%2fsecret.js']) {
      const res = await gw.request(url);
      assert.equal(res.status, 404, url);
      assert.doesNotMatch(await res.text(), /outside the dashboard/);
    }
  } finally {
    await gw.close();
  }
});

test('without a built dashboard, / says how to build it (200 text/html), never a stack trace', async () => {
  const empty = mkdtempSync(path.join(tmpdir(), 'kiln-dashboard-empty-'));
  try {
    for (const dir of [undefined, empty, path.join(empty, 'missing')]) {
      await withGateway(dir, async (gw) => {
        const res = await gw.request('/');
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
        const text = await res.text();
        assert.match(text, /npm run build -w @kiln\/dashboard/);
        assert.doesNotMatch(text, /\bat \S+ \(/);
        assert.equal((await gw.request('/assets/index-abc.js')).status, 404);
      });
    }
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
