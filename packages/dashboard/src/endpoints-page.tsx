// The endpoints: a card per endpoint (jobs, workers, last hour), and an endpoint's own page
// with its queue chart and workers.
import type { ComponentChildren } from 'preact';
import { ADMIN_WORKER_STATES } from '@kiln/protocol';
import type { EndpointOverview, MetricsResponse, MetricsSample, Percentiles } from '@kiln/protocol';
import { api, seg } from './api.ts';
import { formatDuration } from './format.ts';
import { useAdminEvents, useLoad, useThrottled } from './hooks.ts';
import { QueueChart } from './queue-chart.tsx';
import { href } from './router.ts';
import { ErrorBox, Loading } from './ui.tsx';
import { WorkersPanel } from './workers-panel.tsx';

export function loadEndpoints(signal?: AbortSignal): Promise<EndpointOverview[]> {
  return api<{ endpoints: EndpointOverview[] }>('/kiln/v1/endpoints', signal ? { signal } : {}).then((r) => r.endpoints);
}

function Stat({ label, value, title }: { label: string; value: ComponentChildren; title?: string }) {
  return (
    <div class="stat" title={title}>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

function pct(p: Percentiles | null): string {
  return p ? `${formatDuration(p.p50)} / ${formatDuration(p.p95)}` : '—';
}

function EndpointSummary({ ep, heading = true }: { ep: EndpointOverview; heading?: boolean }) {
  const { workers, jobs, lastHour } = ep;
  const live = ADMIN_WORKER_STATES.reduce((n, s) => n + workers[s], 0);
  return (
    <>
      {heading && (
        <header class="card-head">
          <h2>
            <a href={href(['endpoints', ep.name])}>{ep.name}</a>
          </h2>
          <span class="muted small">
            workers {ep.workersMin}–{ep.workersMax}
            {ep.gpu ? ` · ${ep.gpu.count}× ${ep.gpu.types.join('/') || 'GPU'}` : ''}
          </span>
        </header>
      )}
      <dl class="stats">
        <Stat label="In queue" value={jobs.inQueue} />
        <Stat label="In progress" value={jobs.inProgress} />
        <Stat label="Workers" value={live} />
        <Stat
          label="Done (1 h)"
          value={
            <>
              {lastHour.finished}
              {lastHour.failed ? <span class="sub error-text">{lastHour.failed} failed</span> : null}
            </>
          }
        />
      </dl>
      <ul class="chips" aria-label={`Workers of ${ep.name} by state`}>
        {live === 0 && <li class="chip zero">no live workers</li>}
        {ADMIN_WORKER_STATES.filter((s) => workers[s] > 0).map((s) => (
          <li class={`chip worker-${s}`} key={s}>
            {s} <strong>{workers[s]}</strong>
          </li>
        ))}
      </ul>
      <dl class="stats two">
        <Stat label="Delay p50 / p95 (1 h)" value={pct(lastHour.delayTime)} />
        <Stat label="Execution p50 / p95 (1 h)" value={pct(lastHour.executionTime)} />
      </dl>
    </>
  );
}

export function EndpointsPage() {
  const endpoints = useLoad((signal) => loadEndpoints(signal), []);
  const refresh = useThrottled(endpoints.reload, 2000);
  useAdminEvents((m) => {
    if (m.event === 'jobs' || m.event === 'workers' || m.event === 'open') refresh();
  });
  return (
    <>
      <h1>Endpoints</h1>
      {endpoints.error && <ErrorBox onRetry={endpoints.reload}>Could not load the endpoints: {endpoints.error}</ErrorBox>}
      {!endpoints.data && !endpoints.error && <Loading what="endpoints" />}
      {endpoints.data?.length === 0 && <p class="muted">This gateway has no endpoints.</p>}
      <div class="cards">
        {endpoints.data?.map((ep) => (
          <section class="card" aria-label={`Endpoint ${ep.name}`} key={ep.name}>
            <EndpointSummary ep={ep} />
            <footer class="card-links">
              <a href={href(['endpoints', ep.name])}>Details</a>
              <a href={href(['jobs'], { endpoint: ep.name })}>Jobs</a>
              <a href={href(['run'], { endpoint: ep.name })}>Run</a>
            </footer>
          </section>
        ))}
      </div>
    </>
  );
}

const HOUR = 3_600_000;

export function EndpointPage({ name }: { name: string }) {
  const overview = useLoad(async (signal) => {
    const all = await loadEndpoints(signal);
    const found = all.find((e) => e.name === name);
    if (!found) throw new Error(`no endpoint named ${name}`);
    return found;
  }, [name]);
  const metrics = useLoad((signal) => api<MetricsResponse>(`/kiln/v1/endpoints/${seg(name)}/metrics`, { signal }), [name]);
  const refresh = useThrottled(overview.reload, 1000);
  useAdminEvents((m) => {
    if (m.event === 'open') {
      refresh();
      metrics.reload();
    } else if ((m.event === 'jobs' || m.event === 'workers') && m.data.endpoint === name) refresh();
    else if (m.event === 'metrics' && m.data.endpoint === name) {
      const sample: MetricsSample = m.data.sample;
      metrics.set((prev) => {
        if (!prev) return prev;
        const samples = prev.samples.filter((s) => s.t > sample.t - HOUR && s.t < sample.t);
        return { ...prev, samples: [...samples, sample] };
      });
    }
  });
  return (
    <>
      <p class="crumbs">
        <a href="#/endpoints">Endpoints</a> /
      </p>
      <h1>
        Endpoint <span class="mono">{name}</span>
      </h1>
      <p class="actions">
        <a class="button" href={href(['jobs'], { endpoint: name })}>
          Jobs of {name}
        </a>
        <a class="button" href={href(['run'], { endpoint: name })}>
          Run a job
        </a>
      </p>
      <section class="card" aria-labelledby="ep-now">
        <h2 id="ep-now">Now</h2>
        {overview.error && <ErrorBox onRetry={overview.reload}>Could not load the endpoint: {overview.error}</ErrorBox>}
        {!overview.data && !overview.error && <Loading what="the endpoint" />}
        {overview.data && <EndpointSummary ep={overview.data} heading={false} />}
      </section>
      <section class="card" aria-labelledby="ep-chart">
        <h2 id="ep-chart">Queue and workers, last hour</h2>
        {metrics.error && <ErrorBox onRetry={metrics.reload}>Could not load the metrics: {metrics.error}</ErrorBox>}
        {metrics.data && <QueueChart samples={metrics.data.samples} title={`Queue depth and workers of ${name}`} />}
        {!metrics.data && !metrics.error && <Loading what="metrics" />}
      </section>
      <WorkersPanel endpoint={name} />
    </>
  );
}
