// Jobs of an endpoint, newest first: filter by status, find by id, keyset paging, live rows.
import { useState } from 'preact/hooks';
import { JOB_STATES } from '@kiln/protocol';
import type { ListedJob } from '@kiln/protocol';
import { api, seg } from './api.ts';
import { loadEndpoints } from './endpoints-page.tsx';
import { formatDuration, formatTime, parseJobError } from './format.ts';
import { useAdminEvents, useLoad, useThrottled } from './hooks.ts';
import { mergeJobRows } from './job-rows.ts';
import { href, jobHref, navigate } from './router.ts';
import { ErrorBox, Loading, Table } from './ui.tsx';

const PAGE = 25;
const JOB_COLUMNS = ['Job id', 'Status', 'Created', 'Delay', 'Execution', 'Worker', 'Attempts', 'Error'];

export function JobsPage({ query }: { query: URLSearchParams }) {
  const endpoints = useLoad((signal) => loadEndpoints(signal), []);
  const names = endpoints.data?.map((e) => e.name) ?? [];
  const endpoint = query.get('endpoint') ?? names[0] ?? '';
  const status = query.get('status') ?? '';
  // The cursors of the pages before this one, and this one's ('' = the first page).
  const filterKey = `${endpoint}|${status}`;
  const [paging, setPaging] = useState({ key: filterKey, cursors: [''] });
  const cursors = paging.key === filterKey ? paging.cursors : [''];
  const setCursors = (update: (c: string[]) => string[]) => setPaging({ key: filterKey, cursors: update(cursors) });
  const cursor = cursors[cursors.length - 1]!;
  const [findId, setFindId] = useState('');

  const page = useLoad(
    (signal) => {
      if (endpoint === '') return Promise.resolve({ jobs: [] as ListedJob[], next: null as string | null });
      const qs = new URLSearchParams({ limit: String(PAGE) });
      if (status) qs.set('status', status);
      if (cursor) qs.set('cursor', cursor);
      return api<{ jobs: ListedJob[]; next: string | null }>(`/kiln/v1/endpoints/${seg(endpoint)}/jobs?${qs}`, { signal });
    },
    [endpoint, status, cursor],
  );
  const refetch = useThrottled(page.reload, 1000);

  useAdminEvents((m) => {
    if (m.event === 'open') {
      refetch();
      return;
    }
    if (m.event !== 'jobs' || m.data.endpoint !== endpoint) return;
    page.set((prev) => {
      if (!prev) return prev;
      const merged = mergeJobRows(prev.jobs, m.data.jobs, { status, firstPage: cursor === '', pageSize: PAGE });
      if (merged.refetch) refetch();
      return { ...prev, jobs: merged.rows };
    });
  });

  const setFilter = (next: { endpoint?: string; status?: string }) => navigate(href(['jobs'], { endpoint: next.endpoint ?? endpoint, status: next.status ?? status }), true);

  return (
    <>
      <h1>Jobs</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          const id = findId.trim();
          if (id) navigate(jobHref(id));
        }}
      >
        <div class="field">
          <label for="jobs-endpoint">Endpoint</label>
          <select id="jobs-endpoint" value={endpoint} onChange={(e) => setFilter({ endpoint: e.currentTarget.value })}>
            {names.length === 0 && endpoint && <option value={endpoint}>{endpoint}</option>}
            {names.map((n) => (
              <option value={n}>{n}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="jobs-status">Status</label>
          <select id="jobs-status" value={status} onChange={(e) => setFilter({ status: e.currentTarget.value })}>
            <option value="">All</option>
            <option value="IN_QUEUE,IN_PROGRESS">Active (IN_QUEUE, IN_PROGRESS)</option>
            {JOB_STATES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </div>
        <div class="field grow">
          <label for="jobs-find">Job id</label>
          <input id="jobs-find" type="search" class="mono" placeholder="any endpoint's job id" value={findId} onInput={(e) => setFindId(e.currentTarget.value)} />
        </div>
        <button type="submit">Find</button>
      </form>
      {endpoints.error && <ErrorBox onRetry={endpoints.reload}>Could not load the endpoints: {endpoints.error}</ErrorBox>}
      {page.error && <ErrorBox onRetry={page.reload}>Could not load the jobs: {page.error}</ErrorBox>}
      {!page.data && !page.error && <Loading what="jobs" />}
      {page.data && (
        <>
          <Table
            class="jobs"
            caption={
              <>
              Jobs of <span class="mono">{endpoint || '—'}</span>
              {status ? `, status ${status.replace(',', ' or ')}` : ''}, newest first{cursors.length > 1 ? ` (page ${cursors.length})` : ''}
            </>
          }
          columns={JOB_COLUMNS}
          empty={page.data.jobs.length === 0 ? `No jobs${status ? ' with this status' : ''}.` : null}
        >
            {page.data.jobs.map((j) => (
              <tr data-job-id={j.id} key={j.id}>
                <td>
                  <a class="mono" href={jobHref(j.id, endpoint)}>
                    {j.id}
                  </a>
                </td>
                <td class={`status status-${j.status.toLowerCase()}`}>{j.status}</td>
                <td>{formatTime(j.createdAt)}</td>
                <td>{formatDuration(j.delayTime)}</td>
                <td>{formatDuration(j.executionTime)}</td>
                <td class="mono small">{j.workerId ?? '—'}</td>
                <td>{j.attempts}</td>
                <td class="error-cell" title={j.error ?? undefined}>
                  {parseJobError(j.error)?.message ?? ''}
                </td>
              </tr>
            ))}
          </Table>
          <nav class="pager" aria-label="Pages">
            <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
              ← Newer
            </button>
            <button type="button" disabled={!page.data.next} onClick={() => page.data?.next && setCursors((c) => [...c, page.data!.next!])}>
              Older →
            </button>
          </nav>
        </>
      )}
    </>
  );
}
