/** Messages between tabs of one origin. */
export type TabMessage =
  | { type: 'state'; state: unknown; accessToken: string | null }
  | { type: 'signed-out'; reason: string; detail?: string };

export interface TabSync {
  /** Runs `fn` while holding the refresh lock of all tabs, or without it after `timeoutMs`. */
  withLock<T>(fn: () => Promise<T>): Promise<T>;
  post(message: TabMessage): void;
  close(): void;
}

/**
 * One tab refreshes at a time (Web Locks), and tells the others (BroadcastChannel). Where locks
 * are missing, refreshes run unlocked: the server's grace window gives racing tabs one successor.
 * A lock not granted within `timeoutMs` (a tab stuck mid-refresh) is given up, never waited on.
 */
export function createTabSync(
  name: string,
  timeoutMs: number,
  onMessage: (m: TabMessage) => void,
): TabSync {
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(name) : undefined;
  if (channel) channel.onmessage = (event: MessageEvent<TabMessage>) => onMessage(event.data);
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  return {
    async withLock(fn) {
      if (!locks) return fn();
      let ran = false;
      try {
        return await locks.request(name, { signal: AbortSignal.timeout(timeoutMs) }, () => {
          ran = true;
          return fn();
        });
      } catch (error) {
        if (ran) throw error;
        return fn(); // the lock timed out or is unavailable: go ahead unlocked
      }
    },
    post: (message) => channel?.postMessage(message),
    close: () => channel?.close(),
  };
}
