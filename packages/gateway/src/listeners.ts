/**
 * The subscribers of one kind of news. Each `add` is its own subscription, so the same function
 * added twice is called twice and each returned unsubscribe removes only its own.
 *
 * @example
 * const listeners = new Listeners<[jobId: string]>();
 * const off = listeners.add((jobId) => changed.add(jobId));
 * listeners.emit('job-1');
 * off();
 */
export class Listeners<Args extends unknown[]> {
  readonly #entries = new Set<(...args: Args) => void>();

  /** Calls `listener` on every `emit` until the returned function is called. */
  add(listener: (...args: Args) => void): () => void {
    // A wrapper, so adding the same function twice gives two independent subscriptions.
    const entry = (...args: Args) => listener(...args);
    this.#entries.add(entry);
    return () => void this.#entries.delete(entry);
  }

  /** Calls every listener, synchronously, in the order they were added. */
  emit(...args: Args): void {
    for (const entry of this.#entries) entry(...args);
  }

  /** How many subscriptions are open. */
  get size(): number {
    return this.#entries.size;
  }
}
