import { realClock, type Clock, type ModelsResponse, type ModelView } from '@kiln/protocol';
import { UnknownModelError, type GatewayConfig, type ModelsAccess } from '@kiln/gateway';
import { ModelStore, parseManifest, type ModelsSettings, type ModelStatus, type PullEvent } from '@kiln/models';

/** At most this often (ms) a running pull's progress is sent to subscribers, per model; status changes go at once. */
export const PULL_PROGRESS_INTERVAL_MS = 100;

/** What {@link createModelsAccess} needs of a model store (a real {@link ModelStore} by default). */
export type ModelsAccessStore = Pick<ModelStore, 'manifest' | 'volume' | 'pull' | 'status'>;

/** How one model of a pull that ran elsewhere ended (a `ModelCheck` of `kiln dev`'s start-up check fits). */
export interface ModelOutcome {
  readonly model: string;
  /** Why it could not be obtained. */
  readonly error?: string | undefined;
  /** A manual model's install instructions (it was not installed). */
  readonly instructions?: string | undefined;
}

/** Options of {@link createModelsAccess}. */
export interface ModelsAccessOptions {
  /** The gateway config: its `models` section is the manifest. */
  readonly config: GatewayConfig;
  /** `@kiln/models` settings of this process (volume, kiln.lock, hub and S3 credentials), as `kiln dev` reads them. */
  readonly settings: ModelsSettings;
  /** Paces progress events; default the wall clock. */
  readonly clock?: Clock;
  /** Default: a {@link ModelStore} of the config's manifest on the settings' volume. */
  readonly store?: ModelsAccessStore;
  /** Default {@link PULL_PROGRESS_INTERVAL_MS}. */
  readonly progressIntervalMs?: number;
}

/** The models volume for the dashboard, with what `kiln dev` / `kiln serve` need besides {@link ModelsAccess}. */
export interface DashboardModels extends ModelsAccess {
  /** The volume shown (the settings' volume, the one `kiln models ls` lists). */
  readonly volume: string;
  /**
   * Runs a pull that is not the dashboard's (the start-up check of `kiln dev` / `kiln serve`) as the
   * in-flight pull of `models`: while it runs, `pull()` of one of them joins it instead of starting
   * a second one, and its events show as those models' progress. Models that are not in the
   * manifest, or already being pulled, are left out. Resolves (or rejects) as `run` does.
   */
  track<T extends readonly ModelOutcome[]>(models: readonly string[], run: (onEvent: (event: PullEvent) => void) => Promise<T>): Promise<T>;
  /** Aborts the pulls the dashboard started (their partial files stay for the next pull) and drops subscribers. */
  close(): void;
}

interface Flight {
  /** Bytes fetched so far, per file (a resumed file counts from where it resumed). */
  readonly fetched: Map<string, number>;
  /** Bytes this pull has to fetch, once the source is resolved. */
  totalBytes: number | null;
}

/**
 * The config's models on the models volume, for the gateway's admin API and the dashboard:
 * `list()` is `kiln models ls` as {@link ModelView}s; `pull(name)` starts `kiln models pull name`
 * in the background (one per model at a time; kiln.lock is read, not written, as in `kiln dev`);
 * subscribers get a model's view when a pull starts, resolves its files, progresses (at most every
 * `progressIntervalMs`) and ends. While a pull runs, a view's `status` and `bytes` are those read when
 * it started (the volume is not `stat`ed on every step); `pull.doneBytes` moves. Other processes on the same volume are kept out by
 * `@kiln/models`' per-model lock. Throws what `parseManifest` throws for a broken `models` section.
 *
 * @example
 * const models = createModelsAccess({ config, settings: readModelsSettings(process.env, { config: file }) });
 * const gateway = new Gateway(config, { models });
 * // … on stop:
 * models.close();
 */
export function createModelsAccess(options: ModelsAccessOptions): DashboardModels {
  const { config, settings } = options;
  const clock = options.clock ?? realClock;
  const interval = options.progressIntervalMs ?? PULL_PROGRESS_INTERVAL_MS;
  const store = options.store ?? ModelStore.fromSettings(settings, { manifest: parseManifest(config.models, { baseDir: config.baseDir }) });
  const flights = new Map<string, Flight>();
  const errors = new Map<string, string>();
  /** The last status read per model: progress views reuse it instead of `stat`ing the volume 10 times a second. */
  const statuses = new Map<string, ModelStatus>();
  const lastSent = new Map<string, number>();
  const listeners = new Set<(model: ModelView) => void>();
  const closing = new AbortController();

  const viewOf = (status: ModelStatus): ModelView => {
    const flight = flights.get(status.model);
    return {
      name: status.model,
      source: store.manifest[status.model]?.entry.source ?? '',
      status: status.state,
      files: status.files.length,
      bytes: status.bytesPresent,
      totalBytes: status.bytesExpected ?? null,
      pull: flight === undefined ? null : { doneBytes: sum(flight.fetched), totalBytes: flight.totalBytes },
      error: errors.get(status.model) ?? null,
    };
  };
  const statusOf = async (name: string): Promise<ModelStatus> => {
    const [status] = await store.status([name]);
    statuses.set(name, status!);
    return status!;
  };
  const send = (name: string, progressOnly: boolean): void => {
    const status = statuses.get(name);
    if (status === undefined || listeners.size === 0) return;
    const now = clock.now();
    if (progressOnly && now - (lastSent.get(name) ?? -Infinity) < interval) return;
    lastSent.set(name, now);
    const view = viewOf(status);
    for (const listener of listeners) {
      try {
        listener(view);
      } catch {
        // A subscriber's failure (a closed SSE stream) is its own; the others still hear.
      }
    }
  };
  const onEvent = (event: PullEvent): void => {
    const flight = flights.get(event.model);
    if (flight === undefined) return;
    if (event.type === 'resolved') {
      flight.totalBytes = event.bytes ?? null;
      return send(event.model, false);
    }
    if (event.type === 'waiting') return send(event.model, false);
    if (event.phase === 'checking') return;
    flight.fetched.set(event.path, event.bytes - event.resumedFrom);
    send(event.model, true);
  };
  /** Ends a model's flight: its status is read again and sent, with the pull's error if it failed. */
  const land = async (name: string, error: string | undefined): Promise<void> => {
    flights.delete(name);
    if (error === undefined) errors.delete(name);
    else errors.set(name, error);
    if (closing.signal.aborted) return;
    await statusOf(name).catch(() => undefined);
    send(name, false);
  };
  /**
   * Registers flights for `names`, then starts `run` (a microtask later, so that no event of it
   * comes before its flights exist), and sends their starting views. Resolves as `run` does.
   */
  const takeOff = <T extends readonly ModelOutcome[]>(names: readonly string[], run: () => Promise<T>): Promise<T> => {
    const started = names.map((name) => {
      const flight: Flight = { fetched: new Map(), totalBytes: null };
      flights.set(name, flight);
      errors.delete(name);
      return [name, flight] as const;
    });
    const ended = Promise.resolve().then(run);
    void ended.then(
      async (outcomes) => {
        const byModel = new Map(outcomes.map((o) => [o.model, o]));
        await Promise.all(names.map((name) => land(name, outcomeError(byModel.get(name)))));
      },
      async (error: unknown) => {
        await Promise.all(names.map((name) => land(name, messageOf(error))));
      },
    );
    for (const [name, flight] of started) {
      // The view before any event: pulling, nothing fetched yet (unless the pull already ended: its final status is newer).
      void store.status([name]).then(
        ([status]) => {
          if (flights.get(name) !== flight) return;
          statuses.set(name, status!);
          send(name, false);
        },
        () => undefined,
      );
    }
    return ended;
  };

  return {
    volume: store.volume,

    async list(): Promise<ModelsResponse> {
      const all = await store.status();
      for (const status of all) statuses.set(status.model, status);
      return { volume: store.volume, models: all.map(viewOf) };
    },

    async pull(name: string): Promise<ModelView> {
      if (!Object.hasOwn(store.manifest, name)) throw new UnknownModelError(name);
      if (!flights.has(name)) {
        void takeOff([name], async () => {
          const report = await store.pull([name], { signal: closing.signal, writeLockfile: false, onEvent });
          return report.failures.map((f) => ({ model: f.model, error: messageOf(f.error) }));
        });
      }
      return viewOf(statuses.get(name) ?? (await statusOf(name)));
    },

    subscribe(listener: (model: ModelView) => void): () => void {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },

    async track<T extends readonly ModelOutcome[]>(models: readonly string[], run: (onEvent: (event: PullEvent) => void) => Promise<T>): Promise<T> {
      const mine = [...new Set(models)].filter((name) => Object.hasOwn(store.manifest, name) && !flights.has(name));
      return takeOff(mine, () =>
        run((event) => {
          if (mine.includes(event.model)) onEvent(event);
        }),
      );
    },

    close(): void {
      closing.abort(new Error('the gateway is stopping'));
      listeners.clear();
    },
  };
}

function sum(values: Map<string, number>): number {
  let total = 0;
  for (const value of values.values()) total += value;
  return total;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function outcomeError(outcome: ModelOutcome | undefined): string | undefined {
  if (outcome?.error !== undefined) return outcome.error;
  if (outcome?.instructions !== undefined) return `must be installed by hand: ${outcome.instructions}`;
  return undefined;
}
