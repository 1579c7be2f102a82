import {
  formatBytes,
  ManualModelError,
  ModelStore,
  parseManifest,
  type Manifest,
  type ModelsSettings,
  type PullEvent,
} from '@kiln/models';
import type { GatewayConfig } from '@kiln/gateway';

/**
 * How one model fared at gateway start-up:
 * - `verified`: the volume's record vouches for every file (a few `stat`s; nothing read or hashed);
 * - `checked`: files were already there but unrecorded, and were hashed and accepted;
 * - `pulled`: files were fetched (downloaded or copied from a `file:` source);
 * - `manual`: a person must install it (`kiln models add`); `instructions` says how;
 * - `failed`: it could not be obtained; `error` says why.
 */
export type ModelCheckState = 'verified' | 'checked' | 'pulled' | 'manual' | 'failed';

/** One model the config's endpoints list, after {@link checkEndpointModels}. */
export interface ModelCheck {
  readonly model: string;
  readonly state: ModelCheckState;
  /** The endpoints that list it. */
  readonly endpoints: readonly string[];
  /** Its folder on the volume the endpoints' workers use. */
  readonly path: string;
  readonly bytesTransferred: number;
  readonly instructions?: string;
  readonly error?: string;
}

/** What {@link checkEndpointModels} needs besides the gateway config. */
export interface ModelCheckOptions {
  /** `@kiln/models` settings of this process (volume, kiln.lock, hub and S3 credentials). */
  readonly settings: ModelsSettings;
  readonly signal?: AbortSignal;
  /** Pull progress, e.g. a progress bar's feed. */
  readonly onEvent?: (event: PullEvent) => void;
}

/**
 * Pulls or verifies every model the config's endpoints list, on the volume each endpoint's workers
 * will look in (the endpoint's `models` volume when it declares one, else the settings' volume), so
 * that workers' `ensure()` finds them verified. A model that cannot be obtained does not stop the
 * others: it comes back as `manual` or `failed`. kiln.lock is read but not written (`kiln models
 * pull` records resolutions). A model verified earlier costs a few `stat`s: the volume's record vouches for it.
 *
 * @example
 * const checks = await checkEndpointModels(config, { settings: readModelsSettings(process.env, { config: file }) });
 * for (const check of checks) console.error(formatModelCheck(check));
 */
export async function checkEndpointModels(config: GatewayConfig, options: ModelCheckOptions): Promise<ModelCheck[]> {
  const manifest: Manifest = parseManifest(config.models, { baseDir: config.baseDir });
  const { settings } = options;
  // volume → model → endpoints listing it
  const byVolume = new Map<string, Map<string, string[]>>();
  for (const [endpoint, settingsOfEndpoint] of Object.entries(config.endpoints)) {
    if (settingsOfEndpoint.models.length === 0) continue;
    const volume = settingsOfEndpoint.volumes['models']?.local ?? settings.volume;
    const models = byVolume.get(volume) ?? new Map<string, string[]>();
    byVolume.set(volume, models);
    for (const model of settingsOfEndpoint.models) models.set(model, [...(models.get(model) ?? []), endpoint]);
  }

  const checks: ModelCheck[] = [];
  for (const [volume, models] of byVolume) {
    const store = ModelStore.fromSettings({ ...settings, volume }, { manifest });
    // Which models read or fetched anything: a model verified by its record emits no event at all.
    const touched = new Set<string>();
    const report = await store.pull([...models.keys()], {
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      writeLockfile: false,
      onEvent: (event) => {
        touched.add(event.model);
        options.onEvent?.(event);
      },
    });
    for (const result of report.results) {
      const state: ModelCheckState = result.outcome === 'pulled' ? 'pulled' : touched.has(result.model) ? 'checked' : 'verified';
      checks.push({ model: result.model, state, endpoints: models.get(result.model) ?? [], path: result.path, bytesTransferred: result.bytesTransferred });
    }
    for (const failure of report.failures) {
      const base = { model: failure.model, endpoints: models.get(failure.model) ?? [], path: store.path(failure.model), bytesTransferred: 0 };
      if (failure.error instanceof ManualModelError) checks.push({ ...base, state: 'manual', instructions: failure.error.instructions });
      else checks.push({ ...base, state: 'failed', error: failure.error instanceof Error ? failure.error.message : String(failure.error) });
    }
  }
  return checks.sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0));
}

/**
 * One line about a model check, for people.
 *
 * @example
 * formatModelCheck(check); // 'flite: verified (volume record, nothing re-read)  /repo/examples/.kiln/volumes/models/flite'
 */
export function formatModelCheck(check: ModelCheck): string {
  const users = `needed by ${check.endpoints.join(', ')}`;
  switch (check.state) {
    case 'verified':
      return `${check.model}: verified (volume record, nothing re-read)  ${check.path}`;
    case 'checked':
      return `${check.model}: verified (files hashed)  ${check.path}`;
    case 'pulled':
      return `${check.model}: pulled ${formatBytes(check.bytesTransferred)}  ${check.path}`;
    case 'manual':
      return `${check.model}: NOT INSTALLED, must be installed by hand (${users}): ${check.instructions || 'see the model\'s instructions in the config'}; then: kiln models add ${check.model} PATH`;
    case 'failed':
      return `${check.model}: UNAVAILABLE (${users}): ${check.error ?? 'unknown error'}`;
  }
}
