import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appendQuery, resolveJobUrls } from './job-urls.ts';

const G = 'gpu=NVIDIA+H100+80GB+HBM3';
const base = 'http://gw/v2/ep';

test('take URL substitutes $ID with the worker id and appends job_in_progress with &', () => {
  const urls = resolveJobUrls({ take: `${base}/job-take/$ID?${G}`, done: `${base}/job-done/$RUNPOD_POD_ID/$ID?${G}`, stream: `${base}/job-stream/$RUNPOD_POD_ID/$ID?${G}` }, 'w1');
  assert.equal(urls.take(false), `${base}/job-take/w1?${G}&job_in_progress=0`);
  assert.equal(urls.take(true), `${base}/job-take/w1?${G}&job_in_progress=1`);
  assert.equal(urls.takeBatch(3, false), `${base}/job-take-batch/w1?${G}&batch_size=3&job_in_progress=0`);
});

test('take URL also accepts $RUNPOD_POD_ID, which runpod-python leaves unsubstituted there', () => {
  const urls = resolveJobUrls({ take: `${base}/job-take/$RUNPOD_POD_ID?x=1`, done: `${base}/d/$ID`, stream: `${base}/s/$ID` }, 'w2');
  assert.equal(urls.take(false), `${base}/job-take/w2?x=1&job_in_progress=0`);
});

test('done and stream URLs put the worker id for $RUNPOD_POD_ID and the job id for $ID', () => {
  const urls = resolveJobUrls({ take: `${base}/job-take/$ID?${G}`, done: `${base}/job-done/$RUNPOD_POD_ID/$ID?${G}`, stream: `${base}/job-stream/$RUNPOD_POD_ID/$ID?${G}` }, 'w1');
  assert.equal(urls.done('job 1', true), `${base}/job-done/w1/job%201?${G}&isStream=true`);
  assert.equal(urls.stream('j2'), `${base}/job-stream/w1/j2?${G}&isStream=false`);
});

test('a template without ? gets one (sls-local-server style), one ending in ? gets no extra separator', () => {
  assert.equal(appendQuery('http://gw/v2/IDE/job-take/x', 'job_in_progress=0'), 'http://gw/v2/IDE/job-take/x?job_in_progress=0');
  assert.equal(appendQuery('http://gw/job-take/x?', 'job_in_progress=0'), 'http://gw/job-take/x?job_in_progress=0');
  assert.equal(appendQuery('http://gw/job-take/x?a=1&', 'b=2'), 'http://gw/job-take/x?a=1&b=2');
});

test('the stop URL is the take URL with /job-stop/, query kept; none when there is no /job-take/', () => {
  const urls = resolveJobUrls({ take: `${base}/job-take/$ID?${G}`, done: `${base}/d/$ID`, stream: `${base}/s/$ID` }, 'w1');
  assert.equal(urls.stop, `${base}/job-stop/w1?${G}`);
  const other = resolveJobUrls({ take: 'http://gw/take?w=$ID', done: 'http://gw/d/$ID', stream: 'http://gw/s/$ID' }, 'w1');
  assert.equal(other.stop, undefined);
});

test('ping URL substitutes the worker id and carries the given query', () => {
  const urls = resolveJobUrls({ take: `${base}/job-take/$ID?${G}`, done: `${base}/d/$ID`, stream: `${base}/s/$ID`, ping: `${base}/ping/$RUNPOD_POD_ID` }, 'w1');
  assert.equal(urls.ping('job_id=a%2Cb&runpod_version=v'), `${base}/ping/w1?job_id=a%2Cb&runpod_version=v`);
  const none = resolveJobUrls({ take: `${base}/job-take/$ID`, done: `${base}/d/$ID`, stream: `${base}/s/$ID` }, 'w1');
  assert.equal(none.ping('x=1'), undefined);
});
