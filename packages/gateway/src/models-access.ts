import type { ModelsResponse, ModelView } from '@kiln/protocol';

/**
 * The models volume as the admin API and dashboard see it. The gateway does not depend on
 * `@kiln/models`: whoever starts it (the CLI's `kiln dev` / `kiln serve`) passes an implementation.
 *
 * @example
 * new Gateway(config, { models: createModelsAccess(config, settings) });
 */
export interface ModelsAccess {
  /** The manifest's models with their status on the volume (and a running pull's progress). */
  list(): Promise<ModelsResponse>;
  /**
   * Starts pulling `name` in the background and resolves at once with its view (`pull` set).
   * A pull already running is joined, not started twice. Rejects with `UnknownModelError` for a
   * name the manifest does not have.
   */
  pull(name: string): Promise<ModelView>;
  /** Calls `listener` with a model's view on every progress step and status change; returns the unsubscribe. */
  subscribe(listener: (model: ModelView) => void): () => void;
}
