import type { Clock } from '../clock.js';
import type { Store } from '../store/store.js';

/** What one pruning pass deleted. */
export interface PruneReport {
  /** Sessions (with all their tokens) that ended before the cutoff. */
  sessions: number;
  /** Rotated refresh tokens of live sessions, expired before the cutoff. */
  rotatedTokens: number;
  /** Milliseconds since the epoch: everything that ended before this was eligible. */
  cutoff: number;
  /** Rate-limit states past their expiry (a window after their last attempt and block). */
  rateLimits: number;
  /** Audit events older than the audit retention. */
  events: number;
  /** Login tickets past their minute (issue 16). */
  loginTickets: number;
  /** Links of account mails past their lifetime (issue 17). */
  emailTokens: number;
  /** Records of DPoP proof jtis past their window (issue 18). */
  dpopProofs: number;
}

const BATCH = 500;

/**
 * Deletes what no rule needs any more, in batches of short transactions so that a large backlog
 * never holds a lock for long: sessions that ended (revoked or expired) more than `retention`
 * seconds ago, and rotated tokens whose own expiry is that old. A rotated token is kept until then
 * because presenting it must still be recognized as re-use; once it is past its expiry plus the
 * retention, a replay is answered `invalid_token` instead, and the session it belonged to lives on.
 */
export async function pruneExpired(
  store: Store,
  clock: Clock,
  retention: number,
  /** Seconds audit events are kept; 0 keeps them forever. */
  auditRetention = 0,
): Promise<PruneReport> {
  const cutoff = clock.now() - retention * 1000;
  const report: PruneReport = {
    sessions: 0,
    rotatedTokens: 0,
    cutoff,
    rateLimits: 0,
    events: 0,
    loginTickets: 0,
    emailTokens: 0,
    dpopProofs: 0,
  };
  for (let n = BATCH; n === BATCH;) {
    n = await store.transaction((tx) => tx.pruneEndedSessions(cutoff, BATCH));
    report.sessions += n;
  }
  for (let n = BATCH; n === BATCH;) {
    n = await store.transaction((tx) => tx.pruneRotatedTokens(cutoff, BATCH));
    report.rotatedTokens += n;
  }
  report.rateLimits = await store.pruneRateLimits(clock.now());
  report.loginTickets = await store.pruneLoginTickets(clock.now());
  report.emailTokens = await store.pruneEmailTokens(clock.now());
  report.dpopProofs = await store.pruneDpopProofs(clock.now());
  if (auditRetention > 0) {
    const before = clock.now() - auditRetention * 1000;
    for (let n = BATCH; n === BATCH;) {
      n = await store.pruneEvents(before, BATCH);
      report.events += n;
    }
  }
  return report;
}
