// Small shared pieces: status text with colour, inline errors, loading notes.
import type { ComponentChildren } from 'preact';

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT']);

export function isTerminal(status: string | undefined | null): boolean {
  return status !== undefined && status !== null && TERMINAL.has(status);
}

/** A job status as RunPod spells it (the text is the signal; the colour only helps). */
export function Status({ status, id }: { status: string; id?: string }) {
  return (
    <span class={`status status-${status.toLowerCase()}`} id={id}>
      {status}
    </span>
  );
}

export function ErrorBox({ children, onRetry }: { children: ComponentChildren; onRetry?: () => void }) {
  return (
    <div class="error-box" role="alert">
      <span>{children}</span>
      {onRetry && (
        <button type="button" class="small" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return <p class="muted">Loading {what}…</p>;
}

export function Mono({ children }: { children: ComponentChildren }) {
  return <code class="mono">{children}</code>;
}
