import { randomUUID } from 'node:crypto';

/**
 * Fastify's `genReqId` for Rotor's server: ids in a UUID's shape (`8-4-4-4-12` hex digits, what
 * logs and `x-request-id` always carried), built as a random prefix drawn once per process (the
 * first 74 random bits of a UUID v4) followed by a counter in the last 12 hex digits. A request id
 * only correlates an answer with its log lines; it authorizes nothing, so it need not be
 * unpredictable, only unique: the random prefix keeps two processes (instances, restarts) apart
 * (a collision in 2^74 per pair), the counter keeps one process's requests apart (2^48 of them).
 * A `randomUUID()` per request cost 4% of a trivial route (docs/benchmarks.md, row 2).
 * @example
 * const genReqId = requestIdGenerator();
 * genReqId(); // 'f3a1c2d4-9b7e-4c1a-8f2e-000000000001'
 */
export function requestIdGenerator(): () => string {
  const prefix = randomUUID().slice(0, 24);
  let counter = 0;
  return () => {
    counter += 1;
    return prefix + counter.toString(16).padStart(12, '0');
  };
}
