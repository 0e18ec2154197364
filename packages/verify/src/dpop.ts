import { createHash } from 'node:crypto';
import {
  calculateJwkThumbprint,
  decodeProtectedHeader,
  EmbeddedJWK,
  jwtVerify,
  type JWK,
} from 'jose';
import { DPOP_ALGORITHMS, VerifyError } from './errors.js';

/**
 * Where the `jti` of every accepted proof is kept for as long as the proof could still be accepted,
 * so that none is accepted twice (RFC 9449 §11.1). Share one between every instance that accepts
 * proofs for the same URLs (a database table, Redis `SET NX`): a replay on the other instance is
 * a replay too.
 */
export interface DpopReplayStore {
  /**
   * Records `key` until `expiresAt` (seconds since the epoch). Resolves `true` when the key was
   * not recorded before (the proof is fresh), `false` when it was (a replay). Must be atomic.
   */
  claim(key: string, expiresAt: number): Promise<boolean>;
}

/**
 * Server-provided nonces (RFC 9449 §8): a check with `nonces` refuses a proof without an accepted
 * `nonce` claim with `use_dpop_nonce`, and the server sends `DPoP-Nonce: current()`.
 */
export interface DpopNonces {
  /** The nonce to hand out now. */
  current(): string;
  /** Whether a proof's `nonce` is one this server handed out and still accepts. */
  accepts(nonce: string): boolean;
}

export interface DpopProofCheckOptions {
  /** Accepted proof algorithms; default {@link DPOP_ALGORITHMS}. Symmetric ones are refused anyway. */
  algorithms?: readonly string[];
  /** How old a proof's `iat` may be, in seconds (default 60). */
  maxAgeSeconds?: number;
  /** Seconds of clock leeway for a proof's `iat` in the future (default 5). */
  clockTolerance?: number;
  /** Seconds since the epoch (default the system clock): injected so the window is testable. */
  now?: () => number;
  /** The `jti` store: {@link MemoryDpopReplayStore} for one process, a shared one for several. */
  replay: DpopReplayStore;
  /** Server nonces; without it, proofs need none. */
  nonces?: DpopNonces;
}

/** What a proof is checked against: the request it came with. */
export interface DpopProofRequest {
  /** The HTTP method (`htm`). */
  method: string;
  /**
   * The URLs the request may have been addressed to (`htu`): the public URL behind a proxy and the
   * one the server sees. Compared without query and fragment, normalized (RFC 9449 §4.3).
   */
  urls: readonly string[];
  /** The access token the request presents: the proof must carry its hash (`ath`, §4.3). */
  accessToken?: string;
}

/** A proof that passed every check. */
export interface DpopProof {
  /** The JWK SHA-256 thumbprint of the proof's key (RFC 7638), base64url: the `cnf.jkt` it binds. */
  jkt: string;
  /** The proof's public key. */
  jwk: JWK;
  jti: string;
  /** Seconds since the epoch. */
  iat: number;
}

/** A proof check: see {@link createDpopProofCheck}. */
export type DpopProofCheck = (proof: string, request: DpopProofRequest) => Promise<DpopProof>;

/** RFC 9449 §4.2 does not bound a proof; 4 KiB holds any public key of the allowed algorithms. */
const MAX_PROOF_LENGTH = 4096;
const MAX_JTI_LENGTH = 256;
/** JWK members only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const SYMMETRIC = /^(HS|none$)/i;

/**
 * Checks a DPoP proof (RFC 9449 §4.3) in the order the RFC lists: one compact JWS, `typ:
 * dpop+jwt`, an asymmetric `alg` from the allow-list, a public `jwk` in the header whose key
 * verified the signature, `htm` and `htu` of this request, `iat` within the window, `ath` of the
 * access token when one is presented, the server's `nonce` when nonces are on, and last `jti`
 * never seen before (so a proof refused for another reason burns nothing).
 * Throws {@link VerifyError} `invalid_dpop_proof`, or `use_dpop_nonce` (§8).
 */
export function createDpopProofCheck(options: DpopProofCheckOptions): DpopProofCheck {
  const algorithms = (options.algorithms ?? DPOP_ALGORITHMS).filter((alg) => !SYMMETRIC.test(alg));
  const maxAge = options.maxAgeSeconds ?? 60;
  const tolerance = options.clockTolerance ?? 5;
  const now = options.now ?? (() => Date.now() / 1000);

  return async (proof, request) => {
    if (typeof proof !== 'string' || proof.length === 0 || proof.length > MAX_PROOF_LENGTH) {
      throw invalidProof('The DPoP proof is missing or too long.');
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(proof);
    } catch (cause) {
      throw invalidProof('The DPoP proof is not a JWS.', cause);
    }
    const jwk = header.jwk;
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
      throw invalidProof('The DPoP proof has no public key (jwk) in its header.');
    }
    if (PRIVATE_MEMBERS.some((member) => member in jwk)) {
      throw invalidProof('The DPoP proof carries a private or symmetric key; send the public key.');
    }
    if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) {
      throw invalidProof(`The DPoP proof's algorithm must be one of ${algorithms.join(', ')}.`);
    }
    const current = now();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: [...algorithms],
        // iat is judged below against the injected clock, with the proof's own window.
        currentDate: new Date(current * 1000),
        clockTolerance: tolerance,
      }));
    } catch (cause) {
      const reason = cause instanceof Error ? ` (${cause.message})` : '';
      throw invalidProof(`The DPoP proof does not verify${reason}.`, cause);
    }
    const { htm, htu, iat, jti, ath, nonce } = payload;
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) {
      throw invalidProof('The DPoP proof needs a jti.');
    }
    if (htm !== request.method) throw invalidProof('The DPoP proof is for another HTTP method.');
    if (typeof htu !== 'string' || !request.urls.some((url) => sameTarget(htu, url))) {
      throw invalidProof('The DPoP proof is for another URL.');
    }
    if (typeof iat !== 'number' || !Number.isFinite(iat)) {
      throw invalidProof('The DPoP proof needs an iat.');
    }
    if (iat > current + tolerance || iat < current - maxAge - tolerance) {
      throw invalidProof('The DPoP proof was not made just now (iat); make a new one.');
    }
    if (request.accessToken !== undefined) {
      if (ath !== accessTokenHash(request.accessToken)) {
        throw invalidProof('The DPoP proof is not for this access token (ath).');
      }
    }
    if (options.nonces && (typeof nonce !== 'string' || !options.nonces.accepts(nonce))) {
      throw new VerifyError(
        'use_dpop_nonce',
        'Make the DPoP proof again with the nonce given in DPoP-Nonce.',
        {
          scheme: 'DPoP',
        },
      );
    }
    const jkt = await calculateJwkThumbprint(jwk as JWK, 'sha256');
    // Keyed by the key too: nobody but the key's holder can use up (or pre-claim) its jtis.
    const replayKey = createHash('sha256').update(`${jkt}.${jti}`).digest('base64url');
    // Kept past the last instant the proof is accepted (`iat + maxAge + tolerance`, inclusive):
    // a store that counts a record expired at that instant would take a replay made in it.
    if (!(await options.replay.claim(replayKey, Math.floor(iat + maxAge + tolerance) + 1))) {
      throw invalidProof('This DPoP proof was used before; make a new one for every request.');
    }
    return { jkt, jwk: jwk as JWK, jti, iat };
  };
}

/** `ath` (RFC 9449 §4.2): base64url of the SHA-256 of the access token's ASCII. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

/**
 * `jti`s in this process's memory, dropped when they expire: for one instance, tests and
 * development. Several instances need a shared store.
 */
export class MemoryDpopReplayStore implements DpopReplayStore {
  readonly #seen = new Map<string, number>();
  readonly #now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? (() => Date.now() / 1000);
  }

  async claim(key: string, expiresAt: number): Promise<boolean> {
    const current = this.#now();
    const until = this.#seen.get(key);
    if (until !== undefined && until > current) return false;
    // Entries are in insertion order, and expiries nearly so: drop the expired ones at the front.
    for (const [seen, expiry] of this.#seen) {
      if (expiry > current) break;
      this.#seen.delete(seen);
    }
    this.#seen.set(key, expiresAt);
    return true;
  }
}

/** RFC 9449 §4.3 step 9: scheme, host and path compared after normalization; no query, fragment. */
function sameTarget(htu: string, url: string): boolean {
  let a: URL;
  let b: URL;
  try {
    a = new URL(htu);
    b = new URL(url);
  } catch {
    return false;
  }
  return a.origin === b.origin && a.pathname === b.pathname;
}

function invalidProof(message: string, cause?: unknown): VerifyError {
  return new VerifyError('invalid_dpop_proof', message, { cause, scheme: 'DPoP' });
}
