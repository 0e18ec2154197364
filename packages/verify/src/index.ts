/**
 * `@rotor/verify`: verify Rotor access tokens with the JWKS alone, in any Node service.
 * Adapters: `@rotor/verify/fastify`, `@rotor/verify/express`, `@rotor/verify/hono`.
 */
export {
  createVerifier,
  tokenOf,
  type RequestHeaders,
  type RequestTarget,
  type RotorClaims,
  type Verifier,
  type VerifierDpopOptions,
  type VerifierOptions,
} from './verifier.js';
export {
  createAccessTokenCheck,
  type AccessTokenCheck,
  type AccessTokenCheckOptions,
  type TokenHeader,
} from './token-check.js';
export { DPOP_ALGORITHMS, VerifyError, type AuthScheme, type VerifyErrorCode } from './errors.js';
export {
  accessTokenHash,
  createDpopProofCheck,
  MemoryDpopReplayStore,
  type DpopNonces,
  type DpopProof,
  type DpopProofCheck,
  type DpopProofCheckOptions,
  type DpopProofRequest,
  type DpopReplayStore,
} from './dpop.js';
