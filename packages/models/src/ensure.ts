import { ModelStore } from './model-store.ts';
import type { PullEvent } from './pull.ts';
import { processModelsSettings } from './settings.ts';

let processStore: ModelStore | undefined;

/**
 * The verified local folder of a model, pulled first if anything is missing: the call a worker's
 * `setup()` makes. Uses this process's settings (`KILN_VOLUME`, else `/runpod-volume` when it
 * exists, else `.kiln/volumes/models` beside the config; the manifest from `KILN_CONFIG` or the
 * nearest `kiln.config.json`). Single-flight per model; other processes on the volume wait for the
 * one that downloads. For explicit settings, build a {@link ModelStore}.
 *
 * @example
 * import { ensure } from '@kiln/models';
 * export default defineWorker({
 *   async setup() {
 *     const dir = await ensure('sam3');
 *     return { model: await loadSam(path.join(dir, 'sam3.pt')) };
 *   },
 *   handler: …,
 * });
 */
export function ensure(name: string, options: { signal?: AbortSignal; onEvent?: (event: PullEvent) => void } = {}): Promise<string> {
  processStore ??= ModelStore.fromSettings(processModelsSettings());
  return processStore.ensure(name, options);
}
