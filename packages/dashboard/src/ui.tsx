// Small shared pieces: status text with colour, inline errors, loading notes.
import type { ComponentChildren } from 'preact';

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

/**
 * A data table: a caption, one header row of `columns`, then the rows given as children; when
 * `empty` is set (there are no rows) it is shown in one full-width row instead.
 */
export function Table(props: { class?: string; caption: ComponentChildren; captionClass?: string; columns: readonly string[]; empty?: string | null; children?: ComponentChildren }) {
  const { columns, empty } = props;
  return (
    <table class={props.class ? `table ${props.class}` : 'table'}>
      <caption class={props.captionClass}>{props.caption}</caption>
      <thead>
        <tr>
          {columns.map((column) => (
            <th scope="col" key={column}>
              {column}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {empty ? (
          <tr>
            <td colSpan={columns.length} class="muted">
              {empty}
            </td>
          </tr>
        ) : (
          props.children
        )}
      </tbody>
    </table>
  );
}
