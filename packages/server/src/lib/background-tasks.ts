/**
 * Work a request starts but does not wait for (issue 17: the look-up, token and mail behind
 * `POST /auth/password-reset`, so that its answer takes the same time whether the address has an
 * account or not). Each task starts on the next turn of the event loop, after the caller has
 * answered; a task that fails is reported to `onError` (logged), never lost silently and never
 * an unhandled rejection. `idle()` waits for every task started so far (shutdown, tests).
 */
export class BackgroundTasks {
  readonly #running = new Set<Promise<void>>();
  readonly #onError: (error: unknown, name: string) => void;

  constructor(onError: (error: unknown, name: string) => void) {
    this.#onError = onError;
  }

  /** Starts `task` after the current turn; `name` identifies it in the error report. */
  run(name: string, task: () => Promise<void>): void {
    const done: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(task)
      .catch((error: unknown) => this.#onError(error, name))
      .finally(() => this.#running.delete(done));
    this.#running.add(done);
  }

  /** How many tasks have not finished. */
  get pending(): number {
    return this.#running.size;
  }

  /** Resolves when every task started so far, and any they started, has finished. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running]);
  }
}
