import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { parseConfig } from '@kiln/gateway';
import { describeDashboard, describeEndpoints, EMPTY_REQUEST, MAX_INLINE_BODY_CHARS } from './dev-endpoints.ts';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

test('the curl pastes short bodies, reads a long whole-request test_input.json with -d @file, and wraps a bare input', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-dev-endpoints-'));
  dirs.push(dir);
  const long = 'x'.repeat(MAX_INLINE_BODY_CHARS);
  const inputs: Record<string, string | undefined> = {
    short: JSON.stringify({ input: { a: 1 } }),
    long: JSON.stringify({ input: { video: long } }),
    bare: JSON.stringify({ video: long }),
    broken: '{"input": ',
    none: undefined,
  };
  for (const [name, text] of Object.entries(inputs)) {
    await mkdir(path.join(dir, name));
    if (text !== undefined) await writeFile(path.join(dir, name, 'test_input.json'), text);
  }
  const endpoints = Object.fromEntries(Object.keys(inputs).map((name) => [name, { worker: { command: 'node w.js', cwd: name } }]));
  const config = parseConfig({ endpoints }, { baseDir: dir, env: {} });
  const described = await describeEndpoints(config, 'http://127.0.0.1:8080', dir);
  const usage = Object.fromEntries(described.map((u) => [u.endpoint, u.curl]));
  assert.equal(usage['short'], `curl -s -X POST http://127.0.0.1:8080/v2/short/runsync -H 'content-type: application/json' -d '{"input":{"a":1}}'`);
  assert.equal(usage['long'], `curl -s -X POST http://127.0.0.1:8080/v2/long/runsync -H 'content-type: application/json' -d '@long/test_input.json'`);
  assert.ok(usage['bare']?.endsWith(`-d '{"input":{"video":"${long}"}}'`), 'a bare input cannot be sent as the file: it is wrapped inline');
  assert.ok(usage['none']?.endsWith(`-d '${EMPTY_REQUEST}'`), 'no test_input.json: an empty input');
  assert.ok(usage['broken']?.endsWith(`-d '${EMPTY_REQUEST}'`), 'a test_input.json that is not JSON: an empty input…');
  const problems = Object.fromEntries(described.map((u) => [u.endpoint, u.problem]));
  assert.match(problems['broken'] ?? '', /broken[/\\]test_input\.json is not JSON/, '…and the reason, for kiln dev to print');
  for (const name of ['short', 'long', 'bare', 'none']) assert.equal(problems[name], undefined, name);
});

test('the dashboard is announced at the gateway root, with a note when it is not built or needs an API key', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-dev-dashboard-'));
  dirs.push(dir);
  const dist = path.join(dir, 'dist');
  const endpoints = { echo: { worker: { command: 'node w.js', cwd: '.' } } };
  const open = parseConfig({ endpoints }, { baseDir: dir, env: {} });
  assert.deepEqual(describeDashboard(open, 'http://127.0.0.1:8080', dist), {
    url: 'http://127.0.0.1:8080/',
    built: false,
    note: 'not built: npm run build -w @kiln/dashboard, then restart',
  });
  await mkdir(dist);
  await writeFile(path.join(dist, 'index.html'), '<!doctype html>');
  assert.deepEqual(describeDashboard(open, 'http://127.0.0.1:8080/', dist), { url: 'http://127.0.0.1:8080/', built: true, note: undefined });
  const locked = parseConfig({ endpoints, gateway: { apiKeys: ['k'] } }, { baseDir: dir, env: {} });
  assert.equal(describeDashboard(locked, 'http://127.0.0.1:8080', dist).note, 'it asks for an API key');
});
