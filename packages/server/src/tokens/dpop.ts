import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  createDpopProofCheck,
  VerifyError,
  type DpopNonces,
  type DpopProof,
  type DpopProofRequest,
  type DpopReplayStore,
} from '@rotor/verify';
import type { Clock } from '../clock.js';
import type { DpopConfig } from '../config/load-config.js';
import { RotorError } from '../errors.js';
import type { Store } from '../store/store.js';

/** Rotor's DPoP (RFC 9449; issue 18): the proof check with its jti store and nonces. */
export interface Dpop {
  readonly mode: DpopConfig['mode'];
  /** Server nonces, when `ROTOR_DPOP_NONCE` is on: the value of the `DPoP-Nonce` header. */
  readonly nonces: DpopNonces | undefined;
  /**
   * Checks a request's proof: the checked proof, or undefined when there is none or DPoP is off.
   * Throws {@link RotorError} `invalid_dpop_proof` or `use_dpop_nonce`.
   */
  check(proof: string | undefined, request: DpopProofRequest): Promise<DpopProof | undefined>;
}

/** A proof is accepted for this long after its `iat` (and this much before, for clock skew). */
export const DPOP_MAX_AGE_SECONDS = 60;
const DPOP_CLOCK_TOLERANCE = 5;
/** A nonce is handed out for one slot, and accepted during it and the next (RFC 9449 §8). */
const NONCE_SLOT_MS = 5 * 60_000;

/**
 * Builds Rotor's DPoP check. A proof's `jti` is claimed in Redis when `redis` is given (the rate
 * limits' `ROTOR_REDIS_URL`), else in the database: either way shared by every instance, so a proof
 * replayed on the other instance is refused too. Nonces are stateless, an HMAC of the time slot
 * under a key derived from the server's secret, so every instance with the same secret accepts the
 * nonces of the others without a write.
 */
export function createDpop(options: {
  config: DpopConfig;
  clock: Clock;
  store: Store;
  /** The server's HMAC key (the refresh-token successor key): nonces are derived from it. */
  secret: Uint8Array;
  redis?: { claimOnce(key: string, ttlMs: number): Promise<boolean> } | undefined;
}): Dpop {
  const { config, clock, store, redis } = options;
  const replay: DpopReplayStore = redis
    ? {
        // The TTL is measured on this instance's clock: a window more, so an instance whose clock
        // lags this one's by up to a minute still finds the jti (the database store has one clock).
        claim: (key, expiresAt) =>
          redis.claimOnce(key, expiresAt * 1000 - clock.now() + DPOP_MAX_AGE_SECONDS * 1000),
      }
    : { claim: (key, expiresAt) => store.claimDpopProof(key, expiresAt * 1000, clock.now()) };
  const nonces = config.nonce ? statelessNonces(options.secret, clock) : undefined;
  const check = createDpopProofCheck({
    replay,
    maxAgeSeconds: DPOP_MAX_AGE_SECONDS,
    clockTolerance: DPOP_CLOCK_TOLERANCE,
    now: () => clock.now() / 1000,
    ...(nonces && { nonces }),
  });
  return {
    mode: config.mode,
    nonces,
    async check(proof, request) {
      if (config.mode === 'off' || proof === undefined) return undefined;
      try {
        return await check(proof, request);
      } catch (error) {
        if (error instanceof VerifyError) {
          const code = error.code === 'use_dpop_nonce' ? 'use_dpop_nonce' : 'invalid_dpop_proof';
          throw new RotorError(code, error.message, { cause: error, scheme: 'DPoP' });
        }
        throw error;
      }
    },
  };
}

function statelessNonces(secret: Uint8Array, clock: Clock): DpopNonces {
  const key = createHmac('sha256', secret).update('rotor dpop nonce').digest();
  const nonceOf = (slot: number) =>
    createHmac('sha256', key).update(String(slot)).digest('base64url').slice(0, 32);
  const slotNow = () => Math.floor(clock.now() / NONCE_SLOT_MS);
  return {
    current: () => nonceOf(slotNow()),
    accepts(nonce) {
      const slot = slotNow();
      const given = Buffer.from(nonce);
      return [slot, slot - 1].some((s) => {
        const expected = Buffer.from(nonceOf(s));
        return given.length === expected.length && timingSafeEqual(given, expected);
      });
    },
  };
}
