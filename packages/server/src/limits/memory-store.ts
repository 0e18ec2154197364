import type { LimitStore } from './limiter.js';
import type { LimitState } from './window.js';

/**
 * Limit states in this process's memory, bounded (oldest out). For limits that need not be shared:
 * refresh per session, where a runaway client is stopped by any instance it reaches. `update` runs
 * `change` synchronously, so it is atomic within the process.
 */
export class MemoryLimitStore implements LimitStore {
  readonly #states = new Map<string, LimitState>();
  readonly #capacity: number;

  constructor(capacity = 100_000) {
    this.#capacity = capacity;
  }

  async update(key: string, change: (state: LimitState | undefined) => LimitState): Promise<void> {
    const next = change(this.#states.get(key));
    this.#states.delete(key);
    if (this.#states.size >= this.#capacity) {
      this.#states.delete(this.#states.keys().next().value!);
    }
    this.#states.set(key, next);
  }
}
