// Fetches of kiln's admin API with the API key, and the key itself: kept in sessionStorage,
// asked for (by the app's key form) whenever the gateway answers 401.
import { kiln, UnauthorizedError } from '@kiln/client';
import type { KilnClient } from '@kiln/client';

const KEY_STORAGE = 'kiln.apiKey';

function storage(): Storage | null {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

let apiKey: string | null = storage()?.getItem(KEY_STORAGE) ?? null;
let authNeeded = false;
const authListeners = new Set<() => void>();

export function getApiKey(): string | null {
  return apiKey;
}

/** Whether the page should show the key form. */
export function isAuthNeeded(): boolean {
  return authNeeded;
}

/** Stores the key and tells every listener (pages refetch, the event feed reconnects). */
export function setApiKey(key: string): void {
  apiKey = key === '' ? null : key;
  if (apiKey === null) storage()?.removeItem(KEY_STORAGE);
  else storage()?.setItem(KEY_STORAGE, apiKey);
  authNeeded = false;
  for (const listener of authListeners) listener();
}

/** Called on any 401: the key is missing or wrong. */
export function requireAuth(): void {
  if (authNeeded) return;
  authNeeded = true;
  for (const listener of authListeners) listener();
}

export function onAuthChange(listener: () => void): () => void {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}

export function authHeaders(): Record<string, string> {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

/** A non-2xx answer of the admin API, with the server's message when it sent one. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/** GET (or another method of) an admin API path such as `/kiln/v1/endpoints`; throws ApiError. */
export async function api<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders() };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method: init.method ?? 'GET',
      headers,
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    });
  } catch (cause) {
    if (cause instanceof DOMException && cause.name === 'AbortError') throw cause;
    throw new ApiError(0, `cannot reach the gateway (${cause instanceof Error ? cause.message : String(cause)})`);
  }
  const text = await response.text();
  let body: unknown = undefined;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = text;
  }
  if (response.status === 401) requireAuth();
  if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, body));
  return body as T;
}

function errorMessage(status: number, body: unknown): string {
  if (typeof body === 'object' && body !== null) {
    const record = body as Record<string, unknown>;
    const message = record['error'] ?? record['message'];
    if (typeof message === 'string') return `${status}: ${message}`;
    if (typeof message === 'object' && message !== null && typeof (message as Record<string, unknown>)['message'] === 'string') {
      return `${status}: ${(message as Record<string, unknown>)['message'] as string}`;
    }
  }
  if (typeof body === 'string' && body !== '' && body.length < 300) return `${status}: ${body}`;
  return `HTTP ${status}`;
}

/** `encodeURIComponent` for path segments. */
export const seg = encodeURIComponent;

/** The RunPod client API of this gateway, with the current key. */
export function client(): KilnClient {
  return kiln({ baseUrl: `${location.origin}/v2`, ...(apiKey ? { apiKey } : {}) });
}

/** A caught error in words (a 401 also asks for the key). */
export function describeError(error: unknown): string {
  if (error instanceof UnauthorizedError) requireAuth();
  if (error instanceof Error) return error.message;
  return String(error);
}
