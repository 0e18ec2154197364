import type { Rotor } from '../rotor.js';

/** Where the background jobs report: a pino logger fits (`app.log`). */
export interface JobLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/**
 * Starts the engine's background jobs, the retention job and the key-rotation schedule, each as
 * configured (an interval of 0 starts none); returns the function that stops them. Started by
 * whoever serves the engine (the Fastify plugin, so the standalone server and every embedding);
 * their timers never keep the process alive.
 * @example const stop = startJobs(rotor, app.log); app.addHook('onClose', async () => stop());
 */
export function startJobs(rotor: Rotor, log: JobLogger): () => void {
  const stops = [schedulePruning(rotor, log), scheduleKeyRotation(rotor, log)];
  return () => {
    for (const stop of stops) stop();
  };
}

/**
 * The retention job: every `ROTOR_PRUNE_INTERVAL`, delete ended sessions and old rotated tokens,
 * logging what went. Instances may run it at once: the deletes are idempotent.
 */
function schedulePruning(rotor: Rotor, log: JobLogger): () => void {
  const interval = rotor.config.pruneInterval;
  if (interval === 0) return () => {};
  return repeat(interval * 1000, async () => {
    try {
      const report = await rotor.prune();
      log.info({ pruned: report }, 'retention: pruned ended sessions and old tokens');
    } catch (error) {
      log.warn({ err: error }, 'retention: pruning failed; will retry');
    }
  });
}

/**
 * The optional key-rotation schedule (`ROTOR_KEY_ROTATION`): when the signing key is that old, a new
 * one takes over. The age is checked after re-reading the keys, so an instance that sees a rotation
 * made elsewhere does not rotate again; two instances rotating in the same instant only publish one
 * extra key, which retires like any other.
 */
function scheduleKeyRotation(rotor: Rotor, log: JobLogger): () => void {
  const age = rotor.config.keyRotation * 1000;
  if (age === 0) return () => {};
  const due = () => rotor.clock.now() - rotor.keys.current.createdAt >= age;
  return repeat(Math.min(60_000, Math.max(250, age / 4)), async () => {
    if (!due()) return;
    try {
      await rotor.keys.reload();
      if (!due()) return;
      const key = await rotor.keys.rotate(rotor.config.accessTtl);
      log.info({ kid: key.kid }, 'signing key rotated on schedule');
    } catch (error) {
      log.warn({ err: error }, 'scheduled key rotation failed; will retry');
    }
  });
}

/**
 * Runs `task` every `ms` in the background, never two at once, without keeping the process alive;
 * returns the function that stops it.
 */
function repeat(ms: number, task: () => Promise<void>): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void task().finally(() => (running = false));
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}
