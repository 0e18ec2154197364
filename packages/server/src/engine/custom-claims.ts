import type { SessionRow, UserRow } from '../store/store.js';

/**
 * The app's claims for an access token (`CreateRotorOptions.claims`, issue 16): roles, a tenant.
 * Called for every access token signed (login, sign-in, ticket, every refresh), so a change of
 * the user's roles reaches the next rotation.
 */
export type ClaimsHook = (subject: {
  user: UserRow;
  session: SessionRow;
}) => Record<string, unknown> | Promise<Record<string, unknown>>;

/**
 * Claims Rotor sets or that carry a meaning verifiers act on (RFC 7519 §4.1, RFC 9068 §2.2,
 * RFC 7800's `cnf`, OpenID's `auth_time`/`acr`/`amr`/`azp`): a hook may not set them.
 */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'sid',
  'email_verified',
  'typ',
  'cnf',
  'client_id',
  'scope',
  'auth_time',
  'acr',
  'amr',
  'azp',
]);

/** Bytes of the custom claims' JSON at most: access tokens travel in every request's header. */
export const MAX_CUSTOM_CLAIMS_BYTES = 4096;

/**
 * Runs the hook and checks its answer: a plain object, no reserved claim, at most
 * {@link MAX_CUSTOM_CLAIMS_BYTES} of JSON. A bad answer is a programming error: a TypeError or
 * RangeError naming the claim or the size, never a token with it.
 */
export async function customClaims(
  hook: ClaimsHook | undefined,
  subject: { user: UserRow; session: SessionRow },
): Promise<Record<string, unknown> | undefined> {
  if (!hook) return undefined;
  const claims = await hook(subject);
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw new TypeError('The claims hook must return an object of claims.');
  }
  for (const name of Object.keys(claims)) {
    if (RESERVED_CLAIMS.has(name)) {
      throw new TypeError(`The claims hook returned "${name}", a claim Rotor owns.`);
    }
  }
  const size = Buffer.byteLength(JSON.stringify(claims));
  if (size > MAX_CUSTOM_CLAIMS_BYTES) {
    throw new RangeError(
      `The claims hook returned ${size} bytes of claims (JSON); at most ${MAX_CUSTOM_CLAIMS_BYTES} fit in an access token.`,
    );
  }
  return claims;
}
