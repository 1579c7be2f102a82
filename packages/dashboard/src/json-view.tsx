// JSON shown in a collapsible <details>, long strings shortened.
import { displayJson } from './format.ts';

export function JsonView({ value, summary, open = false }: { value: unknown; summary: string; open?: boolean }) {
  return (
    <details class="json" open={open}>
      <summary>{summary}</summary>
      <pre class="mono">{displayJson(value)}</pre>
    </details>
  );
}
