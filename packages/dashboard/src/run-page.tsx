// Run a job: a form generated from the endpoint's input schema (or raw JSON), then the job live:
// status, progress, stream chunks, output with media players.
import { useEffect, useRef, useState } from 'preact/hooks';
import { isTerminalState } from '@kiln/protocol';
import type { EndpointSchemaResponse, JobState } from '@kiln/protocol';
import { api, client, describeError, seg } from './api.ts';
import { loadEndpoints } from './endpoints-page.tsx';
import { displayJson, formatDuration } from './format.ts';
import { useAdminEvents, useLoad } from './hooks.ts';
import { JobError } from './job-page.tsx';
import { JsonView } from './json-view.tsx';
import { MediaOutput } from './media-output.tsx';
import { href, jobHref, navigate } from './router.ts';
import { SchemaForm } from './schema-form.tsx';
import { prefill } from './schema-fields.ts';
import type { JsonSchema } from './schema-fields.ts';
import { ErrorBox, Loading, Status } from './ui.tsx';

interface Watched {
  id: string;
  endpoint: string;
  status: JobState;
  progress: unknown;
  chunks: unknown[];
  output: unknown;
  error: string | null;
  delayTime: number | null;
  executionTime: number | null;
}

/** The test input as the form's value: `test_input.json` holds `{ input: … }`. */
function testInputOf(schema: EndpointSchemaResponse | undefined): unknown {
  const t = schema?.testInput;
  if (t && typeof t === 'object' && !Array.isArray(t) && Object.keys(t).length === 1 && 'input' in t) {
    const props = (schema?.input?.['properties'] ?? {}) as Record<string, unknown>;
    if (!('input' in props)) return (t as { input: unknown }).input;
  }
  return t;
}

export function RunPage({ query }: { query: URLSearchParams }) {
  const endpoints = useLoad((signal) => loadEndpoints(signal), []);
  const names = endpoints.data?.map((e) => e.name) ?? [];
  const endpoint = query.get('endpoint') ?? names[0] ?? '';
  const schema = useLoad(
    (signal) => (endpoint ? api<EndpointSchemaResponse>(`/kiln/v1/endpoints/${seg(endpoint)}/schema`, { signal }) : Promise.resolve(undefined)),
    [endpoint],
  );
  const inputSchema = (schema.data?.input ?? null) as JsonSchema | null;
  const [tab, setTab] = useState<'form' | 'json'>('form');
  const [value, setValue] = useState<unknown>({});
  const [jsonText, setJsonText] = useState('{}');
  const [jsonError, setJsonError] = useState<string | null>(null);
  const [submitting, setSubmitting] = useState(false);
  const [submitError, setSubmitError] = useState<string | null>(null);
  const [job, setJob] = useState<Watched | null>(null);
  const watch = useRef<AbortController | null>(null);

  // A new schema (another endpoint): first values from its defaults and test input.
  useEffect(() => {
    if (schema.loading) return;
    const first = prefill(inputSchema, testInputOf(schema.data));
    setValue(first);
    setJsonText(JSON.stringify(first, null, 2));
    setJsonError(null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [schema.data, schema.loading]);
  useEffect(() => () => watch.current?.abort(), []);

  const showForm = inputSchema !== null && tab === 'form';

  function update(patch: Partial<Watched>) {
    setJob((prev) => (prev ? { ...prev, ...patch } : prev));
  }

  useAdminEvents((m) => {
    if (m.event !== 'jobs' || !job) return;
    const row = m.data.jobs.find((j) => j.id === job.id);
    if (!row) return;
    setJob((prev) =>
      prev && prev.id === row.id && !isTerminalState(prev.status)
        ? { ...prev, status: row.status, delayTime: row.delayTime, executionTime: row.executionTime, error: row.error ?? prev.error }
        : prev,
    );
  });

  async function submit(e: Event) {
    e.preventDefault();
    if (!endpoint) return;
    let input = value;
    if (tab === 'json' || inputSchema === null) {
      try {
        input = JSON.parse(jsonText);
      } catch (err) {
        setJsonError(err instanceof Error ? err.message : 'invalid JSON');
        return;
      }
    }
    watch.current?.abort();
    const controller = new AbortController();
    watch.current = controller;
    setSubmitting(true);
    setSubmitError(null);
    const ep = client().endpoint(endpoint);
    let id: string;
    try {
      const ref = await ep.run(input, { signal: controller.signal });
      id = ref.id;
      setJob({ id, endpoint, status: ref.status, progress: undefined, chunks: [], output: undefined, error: null, delayTime: null, executionTime: null });
    } catch (err) {
      setSubmitError(describeError(err));
      setSubmitting(false);
      return;
    }
    setSubmitting(false);
    const { signal } = controller;
    const alive = (jobId: string) => !signal.aborted && jobId === id;
    // An idle worker takes the job before the run answer is in: its `jobs` event (IN_PROGRESS) may
    // have gone by before the job was being watched. One status read catches up; later changes come as events.
    void ep.status(id, { signal }).then(
      (now) => alive(id) && setJob((prev) => (prev && prev.id === id && prev.status === 'IN_QUEUE' && now.status === 'IN_PROGRESS' ? { ...prev, status: now.status } : prev)),
      () => {},
    );
    // Chunks as they come (a job that does not stream ends with none).
    void (async () => {
      try {
        for await (const chunk of ep.stream(id, { signal, onProgress: (p) => alive(id) && setJob((prev) => (prev && prev.id === id ? { ...prev, progress: p, status: isTerminalState(prev.status) ? prev.status : 'IN_PROGRESS' } : prev)) })) {
          if (!alive(id)) return;
          setJob((prev) => (prev && prev.id === id ? { ...prev, chunks: [...prev.chunks, chunk].slice(-500), status: isTerminalState(prev.status) ? prev.status : 'IN_PROGRESS' } : prev));
        }
      } catch {
        /* the end comes from waitFor */
      }
    })();
    try {
      const final = await ep.waitFor(id, { signal, onProgress: (p) => alive(id) && update({ progress: p }) });
      if (!alive(id)) return;
      setJob((prev) =>
        prev && prev.id === id
          ? {
              ...prev,
              status: final.status,
              output: final.output,
              error: final.error ?? null,
              delayTime: final.delayTime ?? prev.delayTime,
              executionTime: final.executionTime ?? prev.executionTime,
            }
          : prev,
      );
    } catch (err) {
      if (alive(id)) update({ error: `watching the job failed: ${describeError(err)}` });
    }
  }

  return (
    <>
      <h1>Run a job</h1>
      <div class="playground">
      <form class="card run-form" onSubmit={(e) => void submit(e)} noValidate>
        <div class="field">
          <label for="run-endpoint">Endpoint</label>
          <select id="run-endpoint" value={endpoint} onChange={(e) => navigate(href(['run'], { endpoint: e.currentTarget.value }), true)}>
            {names.length === 0 && endpoint && <option value={endpoint}>{endpoint}</option>}
            {names.map((n) => (
              <option value={n}>{n}</option>
            ))}
          </select>
        </div>
        {endpoints.error && <ErrorBox onRetry={endpoints.reload}>Could not load the endpoints: {endpoints.error}</ErrorBox>}
        {schema.error && <ErrorBox onRetry={schema.reload}>Could not load the input schema ({schema.error}); edit the input as JSON.</ErrorBox>}
        {schema.loading && !schema.data && <Loading what="the input schema" />}
        {!schema.loading && (
          <>
            <div class="tabs" role="tablist" aria-label="Input editor">
              <button type="button" role="tab" id="tab-form" aria-selected={showForm} aria-controls="panel-input" disabled={inputSchema === null} onClick={() => setTab('form')}>
                Form
              </button>
              <button
                type="button"
                role="tab"
                id="tab-json"
                aria-selected={!showForm}
                aria-controls="panel-input"
                onClick={() => {
                  if (tab !== 'json') setJsonText(JSON.stringify(value, null, 2));
                  setTab('json');
                }}
              >
                JSON
              </button>
            </div>
            <div id="panel-input" role="tabpanel" aria-labelledby={showForm ? 'tab-form' : 'tab-json'}>
              {inputSchema === null && schema.data?.note && <p class="muted small">{schema.data.note}</p>}
              {showForm ? (
                <SchemaForm
                  schema={inputSchema}
                  value={value}
                  onChange={(v) => {
                    setValue(v);
                    setJsonText(JSON.stringify(v, null, 2));
                  }}
                />
              ) : (
                <div class="field">
                  <label for="run-json">Input (JSON)</label>
                  <textarea
                    id="run-json"
                    class="mono"
                    rows={12}
                    value={jsonText}
                    aria-invalid={jsonError !== null}
                    aria-describedby="run-json-error"
                    onInput={(e) => {
                      const t = e.currentTarget.value;
                      setJsonText(t);
                      try {
                        setValue(JSON.parse(t));
                        setJsonError(null);
                      } catch (err) {
                        setJsonError(err instanceof Error ? err.message : 'invalid JSON');
                      }
                    }}
                  />
                  <p id="run-json-error" class="error-text">
                    {jsonError ?? ''}
                  </p>
                </div>
              )}
            </div>
          </>
        )}
        <div class="actions">
          <button type="submit" class="primary" disabled={submitting || !endpoint}>
            Run
          </button>
          {submitting && <span class="muted">Submitting…</span>}
        </div>
        {submitError && <ErrorBox>Could not run the job: {submitError}</ErrorBox>}
      </form>
      <section class="card result" aria-live="polite" aria-labelledby="result-h">
        <h2 id="result-h">Result</h2>
        {!job && <p class="muted">Submit the form to run a job; it is shown here live.</p>}
        {job && (
          <>
            <p class="result-line">
              Job{' '}
              <a class="mono" href={jobHref(job.id, job.endpoint)}>
                {job.id}
              </a>{' '}
              <Status status={job.status} />
              {!isTerminalState(job.status) && <span class="live-dot">live</span>}
            </p>
            <p class="small muted">
              Delay {formatDuration(job.delayTime)} · execution {formatDuration(job.executionTime)}
            </p>
            {job.progress !== undefined && !isTerminalState(job.status) && (
              <p>
                Progress: <code class="mono">{displayJson(job.progress, 120, 0)}</code>
              </p>
            )}
            {job.chunks.length > 0 && (
              <details open>
                <summary>Stream chunks ({job.chunks.length})</summary>
                <MediaOutput output={job.chunks} path="chunks" />
                <ol class="chunks mono">
                  {job.chunks.map((c, i) => (
                    <li key={i}>{displayJson(c, 160, 0)}</li>
                  ))}
                </ol>
              </details>
            )}
            {job.error && <JobError error={job.error} />}
            {job.output !== undefined && (
              <>
                <MediaOutput output={job.output} />
                <JsonView value={job.output} summary="Output" open />
              </>
            )}
          </>
        )}
      </section>
      </div>
    </>
  );
}
