import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ListedJob } from '@kiln/protocol';
import { mergeJobRows } from './job-rows.ts';

function job(id: string, status: ListedJob['status'], createdAt: number): ListedJob {
  return { id, status, createdAt, queuedAt: createdAt, takenAt: null, finishedAt: null, workerId: null, attempts: 0, retries: 0, delayTime: null, executionTime: null, error: null };
}

test('a job that leaves the status filter leaves the page, which is read again', () => {
  const rows = [job('b', 'IN_PROGRESS', 2), job('a', 'IN_QUEUE', 1)];
  const merged = mergeJobRows(rows, [job('b', 'COMPLETED', 2)], { status: 'IN_QUEUE,IN_PROGRESS', firstPage: true, pageSize: 25 });
  assert.deepEqual(merged.rows.map((j) => j.id), ['a']);
  assert.equal(merged.refetch, true);
});

test('rows that still match are updated in place; without a filter every change stays', () => {
  const rows = [job('b', 'IN_QUEUE', 2), job('a', 'IN_QUEUE', 1)];
  const active = mergeJobRows(rows, [job('a', 'IN_PROGRESS', 1)], { status: 'IN_QUEUE,IN_PROGRESS', firstPage: false, pageSize: 25 });
  assert.deepEqual(active.rows.map((j) => [j.id, j.status]), [['b', 'IN_QUEUE'], ['a', 'IN_PROGRESS']]);
  assert.equal(active.refetch, false);
  const all = mergeJobRows(rows, [job('a', 'FAILED', 1)], { status: '', firstPage: false, pageSize: 25 });
  assert.deepEqual(all.rows.map((j) => [j.id, j.status]), [['b', 'IN_QUEUE'], ['a', 'FAILED']]);
});

test('new matching jobs go on top of the first page only; a full page is cut and read again', () => {
  const rows = [job('b', 'IN_QUEUE', 2), job('a', 'IN_QUEUE', 1)];
  const fresh = [job('d', 'IN_QUEUE', 4), job('c', 'COMPLETED', 3)];
  assert.deepEqual(mergeJobRows(rows, fresh, { status: 'IN_QUEUE', firstPage: true, pageSize: 25 }).rows.map((j) => j.id), ['d', 'b', 'a']);
  assert.deepEqual(mergeJobRows(rows, fresh, { status: 'IN_QUEUE', firstPage: false, pageSize: 25 }).rows.map((j) => j.id), ['b', 'a']);
  const cut = mergeJobRows(rows, fresh, { status: '', firstPage: true, pageSize: 3 });
  assert.deepEqual(cut.rows.map((j) => j.id), ['d', 'c', 'b']);
  assert.equal(cut.refetch, true);
});
