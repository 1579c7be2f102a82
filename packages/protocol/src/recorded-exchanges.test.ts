import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import {
  formatPingQuery,
  parseDonePostText,
  parseErrorString,
  parsePingQuery,
  parseStopResponse,
  parseStreamBody,
  parseTakeResponse,
} from './index.ts';

/** One request the real runpod-python worker made (fixtures README). */
interface Exchange {
  method: string;
  path: string;
  rawQuery: string;
  body: string;
  status: number;
  response?: unknown;
  file: string;
}

const fixtures = new URL('../../../../shared/fixtures/runpod-python-exchange/', import.meta.url);

function load(file: string): Exchange[] {
  return readFileSync(new URL(file, fixtures), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => ({ ...(JSON.parse(line) as Omit<Exchange, 'file'>), file }));
}

const files = readdirSync(fixtures).filter((name) => name.endsWith('.jsonl')).sort();
const all = files.flatMap(load);
const byKind = (segment: string) => all.filter((e) => e.path.includes(`/${segment}/`));

test('the recorded fixtures are found', () => {
  assert.ok(files.includes('batch.jsonl') && files.includes('basic.jsonl'), `fixtures at ${fixtures.pathname}`);
  assert.ok(files.length >= 10);
});

test('every recorded job-done body parses', () => {
  const done = byKind('job-done');
  assert.ok(done.length >= 20, `found ${done.length}`);
  for (const e of done) assert.doesNotThrow(() => parseDonePostText(e.body), `${e.file} ${e.body}`);
  const progress = done.filter((e) => parseDonePostText(e.body).kind === 'progress');
  assert.deepEqual(new Set(progress.map((e) => e.file)), new Set(['basic.jsonl', 'trixie.jsonl']));
  for (const e of progress) assert.deepEqual(parseDonePostText(e.body), { kind: 'progress', output: { pct: 50 } });
});

test('recorded results read as the handler behaviour that produced them', () => {
  const last = (file: string) => byKind('job-done').filter((e) => e.file === file).at(-1)?.body ?? '';
  assert.deepEqual(parseDonePostText(last('refresh.jsonl')), { kind: 'result', output: 42, stopPod: true });
  assert.deepEqual(parseDonePostText(last('errdict.jsonl')), {
    kind: 'result',
    output: { detail: 1 },
    error: 'bad input',
    stopPod: false,
  });
  assert.deepEqual(parseDonePostText(last('gen.jsonl')), {
    kind: 'result',
    output: [{ tok: 0 }, { tok: 1 }, { tok: 2 }],
    stopPod: false,
  });
  assert.deepEqual(parseDonePostText(last('agen.jsonl')), { kind: 'result', output: [], stopPod: false });
});

test('a raised handler error is a string holding the error object', () => {
  const result = parseDonePostText(byKind('job-done').find((e) => e.file === 'raises.jsonl')?.body ?? '');
  assert.equal(result.kind, 'result');
  assert.ok(result.kind === 'result' && result.error !== undefined);
  assert.equal('output' in result, false);
  const info = parseErrorString(result.error);
  assert.ok(info);
  assert.equal(info.error_type, "<class 'ValueError'>");
  assert.equal(info.error_message, 'boom from handler');
  assert.equal(info.worker_id, 'worker-abc123');
  assert.equal(info.hostname, 'worker-abc123-host');
  assert.equal(info.runpod_version, '1.12.0');
  assert.match(info.error_traceback, /^Traceback/);
});

test('every recorded job-stream body parses', () => {
  const stream = byKind('job-stream');
  assert.ok(stream.length >= 8, `found ${stream.length}`);
  for (const e of stream) parseStreamBody(JSON.parse(e.body));
  assert.deepEqual(
    stream.filter((e) => e.file === 'agen.jsonl').map((e) => parseStreamBody(JSON.parse(e.body)).output),
    ['chunk-0', 'chunk-1'],
  );
});

test('every recorded take answer parses without rejects, keeping extra keys', () => {
  const takes = all.filter((e) => /\/job-take(-batch)?\//.test(e.path) && e.status === 200);
  assert.ok(takes.length >= 10, `found ${takes.length}`);
  for (const e of takes) assert.deepEqual(parseTakeResponse(e.response).rejected, [], e.file);
  const basic = takes.find((e) => e.file === 'basic.jsonl');
  assert.deepEqual(parseTakeResponse(basic?.response).jobs, [
    { id: 'job-1', input: { prompt: 'hi' }, s3Config: { bucketName: 'b' } },
  ]);
  const batch = takes.filter((e) => e.file === 'batch.jsonl').flatMap((e) => parseTakeResponse(e.response).jobs);
  assert.deepEqual(batch.map((j) => j.id), ['b1', 'b2', 'b3', 'b4']);
});

test('the recorded stop answer parses', () => {
  const stops = byKind('job-stop').filter((e) => e.status === 200);
  assert.equal(stops.length, 1);
  assert.deepEqual(parseStopResponse(stops[0]?.response), { jobsToStop: ['s1'] });
});

test('the batch ping reports jobs b3 and b4', () => {
  const ping = byKind('ping').find((e) => e.file === 'batch.jsonl' && e.rawQuery.includes('job_id'));
  assert.equal(ping?.rawQuery, '?job_id=b3%2Cb4&runpod_version=1.12.0');
  const query = parsePingQuery(new URLSearchParams(ping.rawQuery));
  assert.deepEqual(query, { jobIds: ['b3', 'b4'], runpodVersion: '1.12.0' });
  assert.equal(`?${formatPingQuery(query)}`, ping.rawQuery);
});

test('every recorded ping query is reproduced byte for byte', () => {
  const pings = byKind('ping');
  assert.ok(pings.length >= 30, `found ${pings.length}`);
  for (const e of pings) assert.equal(`?${formatPingQuery(parsePingQuery(new URLSearchParams(e.rawQuery)))}`, e.rawQuery, e.file);
  const versions = new Set(pings.map((e) => parsePingQuery(new URLSearchParams(e.rawQuery)).runpodVersion));
  assert.deepEqual(versions, new Set(['1.12.0', '1.7.13']));
});
