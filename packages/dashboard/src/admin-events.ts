// The live feed: `GET /kiln/v1/events` read with fetch (EventSource cannot send Authorization),
// one connection shared by every page, reconnected with backoff. Listeners also hear `open`
// after each (re)connect so they can refetch what they may have missed.
import { SseParser } from '@kiln/client';
import type { AdminEvent } from '@kiln/protocol';
import { authHeaders, isAuthNeeded, onAuthChange, requireAuth } from './api.ts';

export type FeedMessage = AdminEvent | { event: 'open'; data: null };
export type FeedState = 'connecting' | 'live' | 'offline' | 'unauthorized';

type Listener = (message: FeedMessage) => void;

const listeners = new Set<Listener>();
const stateListeners = new Set<(state: FeedState) => void>();
let state: FeedState = 'connecting';
let controller: AbortController | null = null;
let retryTimer: ReturnType<typeof setTimeout> | null = null;
let attempt = 0;

const KNOWN = new Set(['jobs', 'workers', 'metrics', 'model']);

function setState(next: FeedState): void {
  if (state === next) return;
  state = next;
  for (const listener of stateListeners) listener(state);
}

export function feedState(): FeedState {
  return state;
}

export function onFeedState(listener: (state: FeedState) => void): () => void {
  stateListeners.add(listener);
  return () => stateListeners.delete(listener);
}

/** Hears every admin event (and `open`); the connection lives while anyone listens. */
export function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  if (!controller && !retryTimer) connect();
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) disconnect();
  };
}

function dispatch(message: FeedMessage): void {
  for (const listener of [...listeners]) {
    try {
      listener(message);
    } catch (error) {
      console.error('admin event listener failed', error);
    }
  }
}

function disconnect(): void {
  controller?.abort();
  controller = null;
  if (retryTimer) clearTimeout(retryTimer);
  retryTimer = null;
}

function scheduleReconnect(delay: number): void {
  if (listeners.size === 0) return;
  retryTimer = setTimeout(() => {
    retryTimer = null;
    connect();
  }, delay);
}

function connect(): void {
  const own = new AbortController();
  controller = own;
  setState('connecting');
  const parser = new SseParser();
  void (async () => {
    try {
      const response = await fetch('/kiln/v1/events', { headers: { accept: 'text/event-stream', ...authHeaders() }, signal: own.signal, cache: 'no-store' });
      if (response.status === 401) {
        setState('unauthorized');
        requireAuth();
        controller = null;
        return; // reconnects when a key is entered
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      attempt = 0;
      setState('live');
      dispatch({ event: 'open', data: null });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const parsed of parser.push(value)) {
          if (!KNOWN.has(parsed.type)) continue;
          let data: unknown;
          try {
            data = JSON.parse(parsed.data);
          } catch {
            continue;
          }
          dispatch({ event: parsed.type, data } as AdminEvent);
        }
      }
      throw new Error('the event stream ended');
    } catch {
      if (own.signal.aborted) return;
      controller = null;
      setState('offline');
      scheduleReconnect(parser.retryMs ?? backoffMs(attempt++));
    }
  })();
}

/** The delay before reconnect number `attempt` (0-based): 1 s doubling to 15 s, with ±20 % jitter. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(15_000, 1000 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.8 + 0.4 * random()));
}

// A new key: start over with it.
onAuthChange(() => {
  if (listeners.size === 0 || isAuthNeeded()) return;
  disconnect();
  attempt = 0;
  connect();
});
