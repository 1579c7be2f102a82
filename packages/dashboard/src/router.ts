// Hash routing (`#/endpoints/echo`, `#/jobs?endpoint=echo&status=FAILED`): the gateway only
// serves `/` and `/assets/*`.
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  /** Decoded path segments: `#/endpoints/echo` → ['endpoints', 'echo']. */
  parts: string[];
  query: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '');
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  const parts = path
    .split('/')
    .filter((p) => p !== '')
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { parts, query: new URLSearchParams(q === -1 ? '' : raw.slice(q + 1)) };
}

/** `href('jobs', id)` → `#/jobs/<id>`; `query` entries that are empty or undefined are left out. */
export function href(parts: readonly string[], query: Record<string, string | undefined | null> = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') params.set(k, v);
  const qs = params.toString();
  return `#/${parts.map(encodeURIComponent).join('/')}${qs ? `?${qs}` : ''}`;
}

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else location.hash = to;
  if (replace) window.dispatchEvent(new HashChangeEvent('hashchange'));
}

export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return parseHash(hash);
}

/** Link to a job's page, with its endpoint when known. */
export function jobHref(id: string, endpoint?: string | null): string {
  return href(['jobs', id], { endpoint: endpoint ?? undefined });
}
