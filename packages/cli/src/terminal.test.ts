import assert from 'node:assert/strict';
import { test } from 'node:test';
import { humanWorkerLine } from './gateway-commands.ts';
import { formatLogLine } from './job-commands.ts';
import { ProgressDisplay, formatDuration, formatTable, painter, parseJsonLogLine, progressFraction, truncate, useColor } from './terminal.ts';

const ANSI = /\u001b\[/;

test('colour only on a terminal, and never with NO_COLOR set (an empty NO_COLOR does not count)', () => {
  const tty = { write: () => true, isTTY: true };
  const pipe = { write: () => true, isTTY: false };
  assert.equal(useColor(tty, {}), true);
  assert.equal(useColor(tty, { NO_COLOR: '1' }), false);
  assert.equal(useColor(tty, { NO_COLOR: '' }), true);
  assert.equal(useColor(pipe, {}), false);
  assert.equal(painter(false)('red', 'x'), 'x');
  assert.match(painter(true)('red', 'x'), ANSI);
});

test('tables pad columns to the widest cell, before colouring, and leave the last column unpadded', () => {
  const rows = [
    ['a', { text: 'COMPLETED', style: 'green' as const }, ''],
    ['bbbb', { text: 'FAILED', style: 'red' as const }, 'boom'],
  ];
  assert.equal(formatTable(['ID', 'STATUS', 'ERROR'], rows, painter(false)), 'ID    STATUS     ERROR\na     COMPLETED\nbbbb  FAILED     boom\n');
  const coloured = formatTable(['ID', 'STATUS', 'ERROR'], rows, painter(true));
  assert.equal(coloured.replace(/\u001b\[\d+m/g, ''), 'ID    STATUS     ERROR\na     COMPLETED\nbbbb  FAILED     boom\n');
});

test('progress values read as a fraction when they say how far along the job is', () => {
  assert.equal(progressFraction(0.25), 0.25);
  assert.equal(progressFraction(40), 0.4);
  assert.equal(progressFraction(250), undefined);
  assert.equal(progressFraction('downloading 35%'), 0.35);
  assert.equal(progressFraction('loading weights'), undefined);
  assert.equal(progressFraction({ step: 1, of: 4 }), 0.25);
  assert.equal(progressFraction({ current: 3, total: 4 }), 0.75);
  assert.equal(progressFraction({ percent: 10 }), 0.1);
  assert.equal(progressFraction({ progress: 0.5, stage: 'x' }), 0.5);
  assert.equal(progressFraction({ stage: 'synthesizing' }), undefined);
  assert.equal(progressFraction([1, 2]), undefined);
});

test('off a terminal, progress is one plain line per update', () => {
  let written = '';
  const display = new ProgressDisplay({ write: (t: string) => (written += t), isTTY: false });
  display.update({ step: 1, of: 3 });
  display.update('warming up');
  display.clear();
  assert.equal(written, 'progress 33% {"step":1,"of":3}\nprogress warming up\n');
});

test('durations and truncation for people', () => {
  assert.equal(formatDuration(undefined), '-');
  assert.equal(formatDuration(850), '850 ms');
  assert.equal(formatDuration(2500), '2.5 s');
  assert.equal(formatDuration(200_000), '3 min 20 s');
  assert.equal(truncate('line one\n  line two', 100), 'line one line two');
  assert.equal(truncate('abcdef', 4), 'abc…');
});

test('JSON worker log lines read as LEVEL [job] message, in kiln logs and in kiln dev alike; other lines as they are', () => {
  assert.deepEqual(parseJsonLogLine('{"level":"WARN","message":"slow","requestId":"j1"}'), { level: 'WARN', message: 'slow', jobId: 'j1' });
  assert.deepEqual(parseJsonLogLine('{"message":"hi"}'), { level: 'INFO', message: 'hi', jobId: undefined });
  assert.equal(parseJsonLogLine('{"msg":"no message key"}'), undefined);
  assert.equal(parseJsonLogLine('{not json'), undefined);
  assert.equal(parseJsonLogLine('plain text'), undefined);

  const json = { seq: 1, endpoint: 'echo', jobId: null, time: 0, workerId: 'w1', stream: 'stdout' as const, line: '{"level":"WARN","message":"slow","requestId":"j1"}' };
  assert.match(formatLogLine(json, painter(false)), / w1 \[j1\] WARN slow$/);
  assert.equal(humanWorkerLine(json), 'WARN [j1] slow');
  const plain = { seq: 2, endpoint: 'echo', jobId: null, time: 0, workerId: 'w1', stream: 'stderr' as const, line: '{oops' };
  assert.match(formatLogLine({ ...plain, jobId: 'j2' }, painter(false)), / w1 \[j2\] \{oops$/);
  assert.equal(humanWorkerLine(plain), 'stderr: {oops');
});
