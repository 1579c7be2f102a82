// An endpoint's workers: state, uptime, cold start (spawn → ready, setup), current job, log tail.
import { Fragment } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LogLineView, WorkerView } from '@kiln/protocol';
import { api, describeError, seg } from './api.ts';
import { formatAgo, formatDuration, formatTime } from './format.ts';
import { useAdminEvents, useLoad, useNow, useThrottled } from './hooks.ts';
import { jobHref } from './router.ts';
import { ErrorBox, Loading, Table } from './ui.tsx';

/** Lines a log tail keeps. */
const TAIL = 300;
const WORKER_COLUMNS = ['Worker', 'State', 'Uptime', 'Cold start (spawn → ready)', 'Setup', 'Last ping', 'Current job', 'Log'];

/** Reads log lines after `after` until the end (or `maxPages`), keeping the last TAIL. */
export async function readLogTail(query: string, after: number, signal?: AbortSignal, maxPages = 20): Promise<{ lines: LogLineView[]; next: number }> {
  let lines: LogLineView[] = [];
  let next = after;
  for (let page = 0; page < maxPages; page++) {
    const r = await api<{ lines: LogLineView[]; next: number }>(`${query}&after=${next}&limit=1000`, signal ? { signal } : {});
    lines = lines.concat(r.lines).slice(-TAIL);
    if (r.lines.length === 0 || r.next === next) break;
    next = r.next;
    if (r.lines.length < 1000) break;
  }
  return { lines, next };
}

export function LogLines({ lines, label }: { lines: LogLineView[]; label: string }) {
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const el = pre.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines]);
  if (lines.length === 0) return <p class="muted">No log lines.</p>;
  return (
    <pre class="log mono" ref={pre} tabIndex={0} aria-label={label}>
      {lines.map((l) => (
        <div class={l.stream === 'stderr' ? 'log-err' : undefined} key={l.seq}>
          <span class="log-time">{formatTime(l.time)}</span> {l.line}
        </div>
      ))}
    </pre>
  );
}

function WorkerLogs({ endpoint, workerId, live }: { endpoint: string; workerId: string; live: number }) {
  // null until the first read answers.
  const [lines, setLines] = useState<LogLineView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const nextRef = useRef(0);
  useEffect(() => {
    const controller = new AbortController();
    readLogTail(`/kiln/v1/endpoints/${seg(endpoint)}/logs?workerId=${seg(workerId)}`, nextRef.current, controller.signal).then(
      (r) => {
        // A read overtaken by a newer one (its cursor was taken before this one moved it): drop it, or its lines would show twice.
        if (controller.signal.aborted) return;
        nextRef.current = r.next;
        setLines((prev) => (prev ?? []).concat(r.lines).slice(-TAIL));
        setError(null);
      },
      (err: unknown) => {
        if (!controller.signal.aborted) setError(describeError(err));
      },
    );
    return () => controller.abort();
  }, [endpoint, workerId, live]);
  if (error) return <ErrorBox>Could not load the logs: {error}</ErrorBox>;
  if (lines === null) return <Loading what="logs" />;
  return <LogLines lines={lines} label={`Log of worker ${workerId}`} />;
}

export function WorkersPanel({ endpoint }: { endpoint: string }) {
  const workers = useLoad((signal) => api<{ workers: WorkerView[] }>(`/kiln/v1/endpoints/${seg(endpoint)}/workers`, { signal }).then((r) => r.workers), [endpoint]);
  const [tick, setTick] = useState(0);
  const bump = useThrottled(() => setTick((t) => t + 1), 1500);
  const reloadWorkers = useThrottled(workers.reload, 1000);
  const now = useNow(1000);
  useAdminEvents((m) => {
    if (m.event === 'open') workers.reload();
    if (m.event === 'workers' && m.data.endpoint === endpoint) {
      workers.set(() => m.data.workers);
      bump();
    }
    if (m.event === 'jobs' && m.data.endpoint === endpoint) {
      bump();
      // A busy worker that takes its next job stays `running`: no `workers` event says so, but its current job changed.
      reloadWorkers();
    }
  });
  const [open, setOpen] = useState<string | null>(null);
  const list = workers.data ?? [];
  return (
    <section class="card" aria-labelledby="workers-h">
      <h2 id="workers-h">Workers</h2>
      {workers.error && <ErrorBox onRetry={workers.reload}>Could not load the workers: {workers.error}</ErrorBox>}
      {!workers.data && !workers.error && <Loading what="workers" />}
      {workers.data && list.length === 0 && <p class="muted">No workers running (they start when jobs arrive, up to the endpoint's maximum).</p>}
      {list.length > 0 && (
        <Table caption={`Workers of ${endpoint}`} captionClass="sr-only" columns={WORKER_COLUMNS}>
          {list.map((w) => {
            const jobs = w.currentJobs;
            const uptime = w.startedAt ? now - w.startedAt : w.uptimeMs;
            return (
              <Fragment key={w.workerId}>
                <tr data-worker-id={w.workerId}>
                  <td class="mono">{w.workerId}</td>
                  <td>
                    <span class={`worker-state worker-${w.state}`}>{w.state}</span>
                    {w.unhealthy && (
                      <div class="small error-text">
                        {w.unhealthy.check}: {w.unhealthy.reason}
                      </div>
                    )}
                  </td>
                  <td>{formatDuration(uptime)}</td>
                  <td>{w.coldStartMs === null ? 'not ready yet' : formatDuration(w.coldStartMs)}</td>
                  <td>{formatDuration(w.setupMs)}</td>
                  <td>{formatAgo(w.lastPingAt, now)}</td>
                  <td>
                    {jobs.length === 0
                      ? '—'
                      : jobs.map((id) => (
                          <a class="mono" href={jobHref(id, endpoint)} key={id}>
                            {id}
                          </a>
                        ))}
                  </td>
                  <td>
                    <button type="button" class="small" aria-expanded={open === w.workerId} onClick={() => setOpen(open === w.workerId ? null : w.workerId)}>
                      {open === w.workerId ? 'Hide log' : 'Show log'}
                    </button>
                  </td>
                </tr>
                {open === w.workerId && (
                  <tr class="log-row">
                    <td colSpan={WORKER_COLUMNS.length}>
                      <WorkerLogs endpoint={endpoint} workerId={w.workerId} live={tick} />
                    </td>
                  </tr>
                )}
              </Fragment>
            );
          })}
        </Table>
      )}
    </section>
  );
}
