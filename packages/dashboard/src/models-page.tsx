// The models volume: each model's status and size, and a Pull button with live progress.
import { useRef, useState } from 'preact/hooks';
import type { ModelView, ModelsResponse } from '@kiln/protocol';
import { api, describeError, seg } from './api.ts';
import { formatBytes } from './format.ts';
import { useAdminEvents, useLoad } from './hooks.ts';
import { ErrorBox, Loading, Table } from './ui.tsx';

function PullProgress({ model }: { model: ModelView }) {
  if (!model.pull) return null;
  const id = `pull-${model.name.replace(/\W/g, '_')}`;
  const total = model.pull.totalBytes ?? model.totalBytes;
  const pct = total ? Math.min(100, Math.round((model.pull.doneBytes / total) * 100)) : null;
  return (
    <div class="pull">
      <label for={id} class="small">
        Pulling {model.name}: {formatBytes(model.pull.doneBytes)}
        {total ? ` of ${formatBytes(total)} (${pct}%)` : ''}
      </label>
      {total ? <progress id={id} max={total} value={model.pull.doneBytes} /> : <progress id={id} />}
    </div>
  );
}

export function ModelsPage() {
  const models = useLoad((signal) => api<ModelsResponse>('/kiln/v1/models', { signal }), []);
  const [pullErrors, setPullErrors] = useState<Record<string, string>>({});
  const [starting, setStarting] = useState<Record<string, boolean>>({});
  // `model` events seen per model: a pull's answer older than an event must not undo it.
  const seen = useRef<Record<string, number>>({});
  useAdminEvents((m) => {
    if (m.event === 'open') models.reload();
    if (m.event !== 'model') return;
    const next = m.data.model;
    seen.current[next.name] = (seen.current[next.name] ?? 0) + 1;
    models.set((prev) => {
      if (!prev) return prev;
      const found = prev.models.some((x) => x.name === next.name);
      return { ...prev, models: found ? prev.models.map((x) => (x.name === next.name ? next : x)) : [...prev.models, next] };
    });
    if (next.pull) setStarting((s) => ({ ...s, [next.name]: false }));
  });

  async function pull(name: string) {
    setStarting((s) => ({ ...s, [name]: true }));
    setPullErrors((e) => ({ ...e, [name]: '' }));
    const before = seen.current[name] ?? 0;
    try {
      // 202 with the model, its pull just started.
      const model = await api<ModelView>(`/kiln/v1/models/${seg(name)}/pull`, { method: 'POST' });
      if ((seen.current[name] ?? 0) !== before) return; // the feed already told more
      models.set((prev) => (prev ? { ...prev, models: prev.models.map((x) => (x.name === name ? model : x)) } : prev));
    } catch (err) {
      setPullErrors((e) => ({ ...e, [name]: describeError(err) }));
    } finally {
      setStarting((s) => ({ ...s, [name]: false }));
    }
  }

  return (
    <>
      <h1>Models</h1>
      {models.status === 404 ? (
        <p class="notice">This gateway has no models volume: its config declares no models, so there is nothing to pull.</p>
      ) : (
        models.error && <ErrorBox onRetry={models.reload}>Could not load the models: {models.error}</ErrorBox>
      )}
      {!models.data && !models.error && <Loading what="models" />}
      {models.data && (
        <>
          <p class="muted">
            Volume <span class="mono">{models.data.volume}</span>
          </p>
          <Table
            class="models"
            caption="Models of the manifest on the volume"
            columns={['Model', 'Status', 'Size', 'Files', 'Source', 'Pull']}
            empty={models.data.models.length === 0 ? 'No models.' : null}
          >
            {models.data.models.map((m) => (
              <tr data-model={m.name} key={m.name}>
                <td class="mono">{m.name}</td>
                <td>
                  <span class={`model-status model-${m.status}`}>{m.status}</span>
                  {m.error && <div class="small error-text">{m.error}</div>}
                </td>
                <td>
                  {formatBytes(m.bytes)}
                  {m.totalBytes !== null && m.totalBytes !== m.bytes ? ` of ${formatBytes(m.totalBytes)}` : ''}
                </td>
                <td>{m.files}</td>
                <td class="mono small break">{m.source}</td>
                <td class="pull-cell">
                  <button type="button" aria-label={`Pull ${m.name}`} disabled={m.pull !== null || starting[m.name] === true} onClick={() => void pull(m.name)}>
                    {m.pull ? 'Pulling…' : 'Pull'}
                  </button>
                  <PullProgress model={m} />
                  {pullErrors[m.name] && <div class="small error-text">{pullErrors[m.name]}</div>}
                </td>
              </tr>
            ))}
          </Table>
        </>
      )}
    </>
  );
}
