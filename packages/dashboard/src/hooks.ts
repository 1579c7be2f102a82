// Small shared hooks: fetch with loading/error state, the live feed, a ticking clock.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { describeError } from './api.ts';
import { feedState, onFeedState, subscribe } from './admin-events.ts';
import type { FeedMessage, FeedState } from './admin-events.ts';

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  /** The HTTP status of the failure, when it was one. */
  status: number | null;
  loading: boolean;
  reload: () => void;
  set: (update: (previous: T | undefined) => T | undefined) => void;
}

/** Runs `load` when `deps` change and on `reload()`; keeps the last data while reloading. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<number | null>(null);
  const [loading, setLoading] = useState(true);
  const [nonce, setNonce] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    load(controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return;
        setData(value);
        setError(null);
        setStatus(null);
        setLoading(false);
      },
      (err: unknown) => {
        if (controller.signal.aborted) return;
        setError(describeError(err));
        setStatus(typeof err === 'object' && err !== null && typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : null);
        setLoading(false);
      },
    );
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, nonce]);
  const reload = useCallback(() => setNonce((n) => n + 1), []);
  const set = useCallback((update: (previous: T | undefined) => T | undefined) => setData(update), []);
  return { data, error, status, loading, reload, set };
}

/** Calls `handler` (the latest one) for each admin event while mounted. */
export function useAdminEvents(handler: (message: FeedMessage) => void): void {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => subscribe((message) => ref.current(message)), []);
}

export function useFeedState(): FeedState {
  const [state, setState] = useState(feedState());
  useEffect(() => onFeedState(setState), []);
  return state;
}

/** A function that runs `fn` at most once per `ms`, trailing call included. */
export function useThrottled(fn: () => void, ms: number): () => void {
  const ref = useRef(fn);
  ref.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const last = useRef(0);
  useEffect(() => () => {
    if (timer.current) clearTimeout(timer.current);
  }, []);
  return useCallback(() => {
    if (timer.current) return;
    const wait = Math.max(0, last.current + ms - Date.now());
    timer.current = setTimeout(() => {
      timer.current = null;
      last.current = Date.now();
      ref.current();
    }, wait);
  }, [ms]);
}

/** The current time, updated every `ms`. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
