import { systemClock, type Clock } from '../clock.js';
import type { Store } from './store.js';

/** How often the offset to the database's clock is measured again (clocks drift slowly). */
const MEASURE_INTERVAL_MS = 10_000;

/**
 * This process's clock set to the database's: every instance of a deployment then reads one time,
 * for everything it signs and judges (access tokens' `iat`/`exp`, session expiry, revocation times,
 * limit windows), not only for the refresh decision, which reads the database's clock itself
 * (`SessionContext.decisionTime`). Without it an instance whose clock lags 30 s accepted access
 * tokens of a session 30 s after it ended, and refused fresh ones as "issued in the future"
 * (attack review of issue 15).
 *
 * The offset is measured at start and every 10 s: one `clock_timestamp()` read, its round trip
 * halved. A failed measurement keeps the last offset. Where the database has no clock of its own
 * (SQLite: one process per file) the process's clock is returned as it is.
 */
export async function databaseClock(
  store: Store,
  base: Clock = systemClock,
): Promise<Clock & { close(): void }> {
  let offset = 0;
  async function measure(): Promise<boolean> {
    const before = base.now();
    const database = await store.databaseNow();
    if (database === undefined) return false;
    offset = database - (before + base.now()) / 2;
    return true;
  }
  if (!(await measure())) return { now: () => base.now(), close: () => {} };
  const timer = setInterval(() => {
    measure().catch(() => {});
  }, MEASURE_INTERVAL_MS).unref();
  return { now: () => Math.round(base.now() + offset), close: () => clearInterval(timer) };
}
