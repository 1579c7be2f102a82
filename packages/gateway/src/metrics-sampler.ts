import type { Clock, MetricsResponse, MetricsSample } from '@kiln/protocol';
import type { JobStore } from './job-store.ts';
import { Listeners } from './listeners.ts';
import type { WorkerInfo } from './worker-registry.ts';

/** How often each endpoint is sampled. */
export const METRICS_INTERVAL_MS = 5000;
/** How much history is kept in memory, per endpoint. */
export const METRICS_WINDOW_MS = 3_600_000;

/** Told of each new sample of an endpoint. */
export type MetricsListener = (endpoint: string, sample: MetricsSample) => void;

/** What a {@link MetricsSampler} reads. */
export interface MetricsSamplerOptions {
  store: Pick<JobStore, 'counts'>;
  /** The endpoints to sample. */
  endpoints: readonly string[];
  /** An endpoint's registered workers. */
  listWorkers(endpoint: string): readonly WorkerInfo[];
  clock: Clock;
  /** Default {@link METRICS_INTERVAL_MS}. */
  intervalMs?: number;
  /** Default {@link METRICS_WINDOW_MS}. */
  windowMs?: number;
  /** Where a failed sample is reported (the loop goes on). */
  log?: { error(message: string, fields?: object): void };
}

/**
 * Samples each endpoint's load every `intervalMs` on the clock (jobs in queue and in progress,
 * live and running workers) and keeps the last hour in memory, for the dashboard's charts and its
 * live feed. Nothing is persisted: a restarted gateway starts with an empty history.
 *
 * @example
 * const sampler = new MetricsSampler({ store, endpoints: ['tts'], listWorkers: (ep) => registry.list(ep), clock });
 * sampler.start();
 * const off = sampler.subscribe((endpoint, sample) => send(endpoint, sample));
 * sampler.history('tts'); // { intervalMs: 5000, samples: [...] }
 * await sampler.stop();
 */
export class MetricsSampler {
  readonly intervalMs: number;
  readonly #options: MetricsSamplerOptions;
  readonly #windowMs: number;
  readonly #samples = new Map<string, MetricsSample[]>();
  readonly #listeners = new Listeners<Parameters<MetricsListener>>();
  #stopping: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: MetricsSamplerOptions) {
    this.#options = options;
    this.intervalMs = options.intervalMs ?? METRICS_INTERVAL_MS;
    this.#windowMs = options.windowMs ?? METRICS_WINDOW_MS;
    for (const endpoint of options.endpoints) this.#samples.set(endpoint, []);
  }

  /** Takes a sample now, then one every `intervalMs`, until `stop()`. Starting twice does nothing. */
  start(): void {
    if (this.#loop) return;
    const stopping = new AbortController();
    this.#stopping = stopping;
    this.#loop = (async () => {
      while (!stopping.signal.aborted) {
        try {
          await this.sample();
        } catch (err) {
          this.#options.log?.error(`metrics sample failed: ${err instanceof Error ? err.message : String(err)}`);
        }
        await this.#options.clock.sleep(this.intervalMs, stopping.signal);
      }
    })();
  }

  /** Ends the sampling loop; resolves once a sample in progress is done. History stays readable. */
  async stop(): Promise<void> {
    this.#stopping?.abort();
    await this.#loop;
    this.#loop = undefined;
  }

  /** Samples every endpoint once, now (the loop calls this; tests may too). */
  async sample(): Promise<void> {
    const { store, listWorkers, clock } = this.#options;
    for (const [endpoint, samples] of this.#samples) {
      const counts = await store.counts(endpoint);
      const live = listWorkers(endpoint).filter((w) => w.state !== 'stopped');
      const t = clock.now();
      const sample: MetricsSample = {
        t,
        inQueue: counts.inQueue,
        inProgress: counts.inProgress,
        workers: live.length,
        running: live.filter((w) => w.state === 'running').length,
      };
      samples.push(sample);
      let old = 0;
      while (old < samples.length && samples[old]!.t < t - this.#windowMs) old++;
      if (old > 0) samples.splice(0, old);
      this.#listeners.emit(endpoint, sample);
    }
  }

  /** The samples of the last hour, oldest first (empty for an endpoint it does not sample). */
  history(endpoint: string): MetricsResponse {
    return { intervalMs: this.intervalMs, samples: [...(this.#samples.get(endpoint) ?? [])] };
  }

  /** Calls `listener` with every new sample; returns the unsubscribe. */
  subscribe(listener: MetricsListener): () => void {
    return this.#listeners.add(listener);
  }

  /** How many listeners are subscribed (for tests). */
  get subscribers(): number {
    return this.#listeners.size;
  }
}
