// How a page of the job listing takes a live `jobs` event. Pure: no DOM.
import type { ListedJob } from '@kiln/protocol';

/** Whether a job has one of the states of a `status` filter (`''` = all, else comma-separated). */
function matchesStatus(job: Pick<ListedJob, 'status'>, status: string): boolean {
  return status === '' || status.split(',').includes(job.status);
}

/**
 * The rows of a listing page after a live event of changed jobs: known rows are updated, rows whose
 * new status leaves the filter are dropped, and on the first page new matching jobs go on top (at
 * most `pageSize` rows are kept). `refetch` says the page should be read again from the server: a
 * row left it or was pushed off it, so the page (and its `next` cursor) no longer holds what the
 * server would answer.
 *
 * @example
 * const { rows, refetch } = mergeJobRows(page.jobs, event.jobs, { status: 'IN_QUEUE,IN_PROGRESS', firstPage: true, pageSize: 25 });
 */
export function mergeJobRows(
  rows: readonly ListedJob[],
  changed: readonly ListedJob[],
  options: { status: string; firstPage: boolean; pageSize: number },
): { rows: ListedJob[]; refetch: boolean } {
  const { status, firstPage, pageSize } = options;
  const byId = new Map(changed.map((j) => [j.id, j]));
  let refetch = false;
  let next: ListedJob[] = [];
  for (const row of rows) {
    const updated = byId.get(row.id) ?? row;
    // A job that left the filter (e.g. COMPLETED under "IN_QUEUE,IN_PROGRESS") is not shown any more.
    if (!matchesStatus(updated, status)) {
      refetch = true;
      continue;
    }
    next.push(updated);
  }
  if (firstPage) {
    const known = new Set(rows.map((j) => j.id));
    const newest = rows[0]?.createdAt ?? -Infinity;
    const fresh = changed.filter((j) => !known.has(j.id) && matchesStatus(j, status) && j.createdAt >= newest).sort((a, b) => b.createdAt - a.createdAt);
    if (fresh.length > 0) next = [...fresh, ...next];
    // Rows pushed off the first page: the next page starts after the new last row, so page again from the server.
    if (next.length > pageSize) {
      next = next.slice(0, pageSize);
      refetch = true;
    }
  }
  return { rows: next, refetch };
}
