// One job: timeline, input/output, stream chunks, error and traceback, logs, webhooks,
// Cancel and Retry; live until it ends.
import { useEffect, useRef, useState } from 'preact/hooks';
import { isTerminalState } from '@kiln/protocol';
import type { JobDetail, JobStreamResponse, LogLineView, WebhookDeliveryView } from '@kiln/protocol';
import { api, client, describeError, seg } from './api.ts';
import { displayJson, formatDuration, formatTime, parseJobError } from './format.ts';
import { useAdminEvents, useLoad, useThrottled } from './hooks.ts';
import { JsonView } from './json-view.tsx';
import { MediaOutput } from './media-output.tsx';
import { href } from './router.ts';
import { ErrorBox, Loading, Status, Table } from './ui.tsx';
import { LogLines, readLogTail } from './workers-panel.tsx';

const RETRYABLE = new Set(['FAILED', 'TIMED_OUT']);
/** When an ended job's logs are read again (after the gateway's next log flush). */
const LATE_LOGS_MS = 2500;

function jobPath(id: string, endpoint: string | null): string {
  return endpoint ? `/kiln/v1/endpoints/${seg(endpoint)}/jobs/${seg(id)}` : `/kiln/v1/jobs/${seg(id)}`;
}

export function JobError({ error }: { error: string | null | undefined }) {
  const parsed = parseJobError(error);
  if (!parsed) return null;
  return (
    <div class="job-error">
      <p class="error-text">
        <strong>Error:</strong> {parsed.message}
      </p>
      {parsed.traceback && (
        <details open>
          <summary>Traceback</summary>
          <pre class="mono traceback">{parsed.traceback}</pre>
        </details>
      )}
      {Object.keys(parsed.extra).length > 0 && <JsonView value={parsed.extra} summary="Error details" />}
    </div>
  );
}

interface Chunk {
  seq: number;
  output: unknown;
}

function Timeline({ job, progress }: { job: JobDetail; progress: unknown[] }) {
  const items: { time: number | null; text: preact.ComponentChildren; kind: string }[] = [];
  items.push({ time: job.createdAt, text: 'Created and queued', kind: 'created' });
  if (job.queuedAt && job.queuedAt !== job.createdAt) items.push({ time: job.queuedAt, text: `Queued again (retry ${job.retries})`, kind: 'queued' });
  if (job.takenAt) {
    items.push({
      time: job.takenAt,
      text: (
        <>
          Taken by worker <span class="mono">{job.workerId ?? '?'}</span>
          {job.delayTime !== null ? ` after ${formatDuration(job.delayTime)} in queue` : ''}
          {job.attempts > 1 ? ` (attempt ${job.attempts})` : ''}
        </>
      ),
      kind: 'taken',
    });
  }
  if (job.progressUpdates > 0 || progress.length > 0) {
    items.push({
      time: null,
      text: (
        <>
          {job.progressUpdates} progress update{job.progressUpdates === 1 ? '' : 's'}
          {progress.length > 0 && (
            <ol class="progress-list">
              {progress.map((p, i) => (
                <li key={i} class="mono small">
                  {displayJson(p, 120, 0)}
                </li>
              ))}
            </ol>
          )}
        </>
      ),
      kind: 'progress',
    });
  }
  if (job.finishedAt) {
    items.push({
      time: job.finishedAt,
      text: (
        <>
          Ended <strong class={`tl-status status-${job.status.toLowerCase()}`}>{job.status}</strong>
          {job.executionTime !== null ? ` after ${formatDuration(job.executionTime)} of execution` : ''}
        </>
      ),
      kind: 'end',
    });
  } else {
    items.push({ time: null, text: job.status === 'IN_QUEUE' ? 'Waiting for a worker…' : 'Running…', kind: 'pending' });
  }
  return (
    <ol class="timeline">
      {items.map((it, i) => (
        <li key={i} class={`tl-${it.kind}`}>
          <span class="tl-time mono">{it.time ? formatTime(it.time) : ''}</span>
          <span class="tl-text">{it.text}</span>
        </li>
      ))}
    </ol>
  );
}

function Webhooks({ deliveries }: { deliveries: WebhookDeliveryView[] }) {
  if (deliveries.length === 0) return <p class="muted">No webhook deliveries.</p>;
  return (
    <Table caption="Webhook deliveries" captionClass="sr-only" columns={['Event', 'URL', 'State', 'Attempts', 'Last answer', 'Created']}>
      {deliveries.map((d) => (
        <tr key={d.id}>
          <td>{d.event}</td>
          <td class="mono small break">{d.url}</td>
          <td>{d.state}</td>
          <td>{d.attempts}</td>
          <td class="small">{d.lastStatus !== null ? `HTTP ${d.lastStatus}` : ''}{d.lastError ? ` ${d.lastError}` : ''}</td>
          <td>{formatTime(d.createdAt)}</td>
        </tr>
      ))}
    </Table>
  );
}

/** One job's page; the router keys it by job, so another job starts from nothing. */
export function JobPage({ id, endpointHint }: { id: string; endpointHint: string | null }) {
  const detail = useLoad((signal) => api<JobDetail>(jobPath(id, endpointHint), { signal }), [id, endpointHint]);
  const job = detail.data;
  const endpoint = job?.endpoint ?? endpointHint;
  const terminal = job !== undefined && isTerminalState(job.status);

  const [chunks, setChunks] = useState<Chunk[]>([]);
  const [logs, setLogs] = useState<LogLineView[]>([]);
  const [deliveries, setDeliveries] = useState<WebhookDeliveryView[] | null>(null);
  const [sideError, setSideError] = useState<string | null>(null);
  const [progress, setProgress] = useState<unknown[]>([]);
  const [action, setAction] = useState<{ busy: boolean; message: string | null; error: boolean }>({ busy: false, message: null, error: false });
  const cursors = useRef({ stream: 0, logs: 0 });
  const [sideTick, setSideTick] = useState(0);

  // While running, `output` is the latest progress update: keep each distinct one seen.
  useEffect(() => {
    if (job?.status !== 'IN_PROGRESS' || job.output === undefined) return;
    const text = JSON.stringify(job.output);
    setProgress((prev) => (prev.length > 0 && JSON.stringify(prev[prev.length - 1]) === text ? prev : [...prev, job.output].slice(-50)));
  }, [job?.status, job?.output]);

  // Stream chunks, logs and webhooks: read on load and on every change of the job.
  useEffect(() => {
    if (!endpoint || !job) return;
    const controller = new AbortController();
    const { signal } = controller;
    const base = `/kiln/v1/endpoints/${seg(endpoint)}`;
    const fail = (err: unknown) => {
      if (!signal.aborted) setSideError(describeError(err));
    };
    if (job.streamChunks > 0 || cursors.current.stream > 0) {
      api<JobStreamResponse>(`${base}/jobs/${seg(id)}/stream?after=${cursors.current.stream}`, { signal }).then((r) => {
        if (signal.aborted) return;
        cursors.current.stream = r.next;
        if (r.chunks.length > 0) setChunks((prev) => [...prev, ...r.chunks.filter((c) => !prev.some((p) => p.seq === c.seq))].slice(-500));
      }, fail);
    }
    readLogTail(`${base}/logs?jobId=${seg(id)}`, cursors.current.logs, signal).then((r) => {
      if (signal.aborted) return;
      cursors.current.logs = r.next;
      if (r.lines.length > 0) setLogs((prev) => prev.concat(r.lines).slice(-300));
    }, fail);
    api<{ deliveries: WebhookDeliveryView[] }>(`${base}/webhooks?jobId=${seg(id)}`, { signal }).then((r) => {
      if (!signal.aborted) setDeliveries(r.deliveries.filter((d) => d.jobId === id));
    }, fail);
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [endpoint, id, sideTick, job?.status, job?.streamChunks, job?.progressUpdates]);

  // The gateway stores captured log lines once per tick (1 s by default): the job's last lines
  // usually land after its end was announced, and no event follows an ended job. Read once more.
  useEffect(() => {
    if (!terminal) return;
    const timer = setTimeout(() => setSideTick((t) => t + 1), LATE_LOGS_MS);
    return () => clearTimeout(timer);
  }, [terminal, id]);

  const refresh = useThrottled(() => {
    detail.reload();
    setSideTick((t) => t + 1);
  }, 500);
  useAdminEvents((m) => {
    if (m.event === 'open' && !terminal) refresh();
    if (m.event === 'jobs' && (!endpoint || m.data.endpoint === endpoint) && m.data.jobs.some((j) => j.id === id)) refresh();
  });

  async function act(kind: 'cancel' | 'retry') {
    if (!endpoint) return;
    setAction({ busy: true, message: null, error: false });
    try {
      const ep = client().endpoint(endpoint);
      const r = kind === 'cancel' ? await ep.cancel(id) : await ep.retry(id);
      setAction({ busy: false, message: `${kind === 'cancel' ? 'Cancel' : 'Retry'} accepted: now ${r.status}`, error: false });
      if (kind === 'retry') {
        setChunks([]);
        setProgress([]);
        cursors.current.stream = 0;
      }
      detail.reload();
    } catch (err) {
      setAction({ busy: false, message: describeError(err), error: true });
    }
  }

  return (
    <>
      <p class="crumbs">
        <a href={href(['jobs'], { endpoint: endpoint ?? undefined })}>Jobs</a> /{' '}
        {endpoint && <a href={href(['endpoints', endpoint])}>{endpoint}</a>}
      </p>
      <h1>
        Job <span class="mono">{id}</span>
      </h1>
      {detail.error && (
        <ErrorBox onRetry={detail.reload}>
          {detail.status === 404 ? `No job ${id}${endpointHint ? ` on endpoint ${endpointHint}` : ''}: ${detail.error}` : `Could not load the job: ${detail.error}`}
        </ErrorBox>
      )}
      {!job && !detail.error && <Loading what="the job" />}
      {job && (
        <>
          <section class="card job-head" aria-label="Summary">
            <div class="job-status-line">
              <span class="label">Status</span> <Status status={job.status} />
              {!terminal && <span class="live-dot" title="updating live">live</span>}
            </div>
            <dl class="stats">
              <div class="stat">
                <dt>Endpoint</dt>
                <dd>
                  <a href={href(['endpoints', job.endpoint])}>{job.endpoint}</a>
                </dd>
              </div>
              <div class="stat">
                <dt>Delay</dt>
                <dd>{formatDuration(job.delayTime)}</dd>
              </div>
              <div class="stat">
                <dt>Execution</dt>
                <dd>{formatDuration(job.executionTime)}</dd>
              </div>
              <div class="stat">
                <dt>Attempts / retries</dt>
                <dd>
                  {job.attempts} / {job.retries}
                </dd>
              </div>
            </dl>
            <div class="actions">
              <button type="button" disabled={terminal || action.busy} onClick={() => void act('cancel')}>
                Cancel
              </button>
              <button type="button" disabled={!RETRYABLE.has(job.status) || action.busy} onClick={() => void act('retry')}>
                Retry
              </button>
              <span role="status" class={action.error ? 'error-text' : 'muted'}>
                {action.message ?? ''}
              </span>
            </div>
          </section>
          <section class="card" aria-labelledby="tl-h">
            <h2 id="tl-h">Timeline</h2>
            <Timeline job={job} progress={progress} />
          </section>
          {job.error && (
            <section class="card" aria-labelledby="err-h">
              <h2 id="err-h">Error</h2>
              <JobError error={job.error} />
            </section>
          )}
          <section class="card" aria-labelledby="io-h">
            <h2 id="io-h">Input and output</h2>
            <JsonView value={job.input} summary="Input" />
            {job.output !== undefined ? (
              <>
                <MediaOutput output={job.output} />
                <JsonView value={job.output} summary={job.status === 'IN_PROGRESS' ? 'Latest progress update' : 'Output'} open />
              </>
            ) : (
              <p class="muted">No output{terminal ? '' : ' yet'}.</p>
            )}
          </section>
          {(chunks.length > 0 || job.streamChunks > 0) && (
            <section class="card" aria-labelledby="chunks-h">
              <h2 id="chunks-h">Stream chunks ({Math.max(chunks.length, job.streamChunks)})</h2>
              <ol class="chunks mono">
                {chunks.map((c) => (
                  <li key={c.seq}>
                    <span class="muted">#{c.seq}</span> {displayJson(c.output, 160, 0)}
                  </li>
                ))}
              </ol>
            </section>
          )}
          {sideError && <ErrorBox>{sideError}</ErrorBox>}
          <section class="card" aria-labelledby="logs-h">
            <h2 id="logs-h">Logs</h2>
            <LogLines lines={logs} label={`Log lines of job ${id}`} />
          </section>
          <section class="card" aria-labelledby="wh-h">
            <h2 id="wh-h">Webhook deliveries</h2>
            {deliveries === null ? <Loading what="webhook deliveries" /> : <Webhooks deliveries={deliveries} />}
            {job.webhook && (
              <p class="small muted">
                Webhook: <span class="mono">{job.webhook}</span>
                {job.webhookEvents?.length ? ` (events: ${job.webhookEvents.join(', ')})` : ''}
              </p>
            )}
          </section>
          <JsonView value={job} summary="Whole record" />
        </>
      )}
    </>
  );
}
