import type { VerifyError } from '../errors.js';
import type { Verifier } from '../verifier.js';

/** The options every adapter takes beside the verifier. */
export interface AdapterOptions {
  /**
   * The public origin clients address this service at (`https://api.example.com`): the origin of
   * the URL a DPoP proof's `htu` must name (RFC 9449 §4.3). Set it behind a proxy or a load
   * balancer. Without it the origin is the request's protocol and `Host` header, which the client
   * chooses: a proof made for another service at the same path would then pass the URL check.
   */
  publicUrl?: string;
}

/**
 * The public origin of `publicUrl`, checked at start-up.
 * @throws TypeError when it is not an absolute `http(s)` URL without path, query or fragment.
 */
export function publicOriginOf(publicUrl: string | undefined): string | undefined {
  if (publicUrl === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(publicUrl);
  } catch {
    throw new TypeError(
      `publicUrl must be an absolute URL (https://api.example.com): ${publicUrl}`,
    );
  }
  if (!/^https?:$/.test(url.protocol) || url.pathname !== '/' || url.search || url.hash) {
    throw new TypeError(
      `publicUrl must be an origin (scheme, host and port only, e.g. https://api.example.com): ${publicUrl}`,
    );
  }
  return url.origin;
}

/**
 * The URL a request was addressed to: `origin` (the public one, else `protocol://host`) and the
 * request's path and query. A request target in absolute form (`GET http://other/x`) gives only its
 * path: the origin is never the client's to choose when `publicUrl` is set.
 */
export function requestUrlOf(
  origin: string | undefined,
  request: { protocol: string; host: string | undefined; path: string },
): string {
  const path = request.path.startsWith('/') ? request.path : pathOf(request.path);
  return `${origin ?? `${request.protocol}://${request.host ?? ''}`}${path}`;
}

function pathOf(target: string): string {
  try {
    const url = new URL(target);
    return `${url.pathname}${url.search}`;
  } catch {
    return `/${target}`;
  }
}

/**
 * The headers of an adapter's `401`: `WWW-Authenticate` from the error (the DPoP challenge when
 * its scheme is DPoP, RFC 9449 §7.1) and `DPoP-Nonce` when the verifier hands out nonces (§9).
 */
export function challengeHeadersOf(
  error: VerifyError,
  verifier: Pick<Verifier, 'dpopNonce'>,
): Record<string, string> {
  const nonce = verifier.dpopNonce();
  return {
    'WWW-Authenticate': error.wwwAuthenticate,
    ...(nonce !== undefined && { 'DPoP-Nonce': nonce }),
  };
}
