// Row 1 of `npm run bench`: access-token verification in process, Rotor's path against the
// physical limit (raw node:crypto: Ed25519 verify + decode + parse + claim checks) and the
// libraries a user would pick instead. Interleaved rounds in one run; median and spread as ratios.
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { createVerifier as createFastJwtVerifier } from 'fast-jwt';
import {
  createLocalJWKSet,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  jwtVerify,
  SignJWT,
} from 'jose';
import { createVerifier } from '@rotor/verify';

const ISSUER = 'https://auth.example.test';
const AUDIENCE = 'rotor';

/** Runs `fn` for about `ms` milliseconds (awaiting it when it returns a promise); ops per second. */
async function measure(fn, ms) {
  let ops = 0;
  const started = performance.now();
  let now = started;
  while (now - started < ms) {
    for (let i = 0; i < 64; i += 1) {
      const result = fn();
      if (result && typeof result.then === 'function') await result;
    }
    ops += 64;
    now = performance.now();
  }
  return (ops * 1000) / (now - started);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export async function benchVerify({ rounds = 7, ms = 300 } = {}) {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'EdDSA' };
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ sid: 'session-1', jti: 'jti-1' })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k1' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject('user-1')
    .setIssuedAt(now)
    .setExpirationTime(now + 900)
    .sign(privateKey);

  const keyObject = createPublicKey({ key: jwk, format: 'jwk' });
  const [headerPart, payloadPart, signaturePart] = token.split('.');
  const rotor = createVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwksUri: `${ISSUER}/.well-known/jwks.json`,
    keys: createLocalJWKSet({ keys: [jwk] }),
  });
  const rotorUncached = createVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwksUri: `${ISSUER}/.well-known/jwks.json`,
    keys: createLocalJWKSet({ keys: [jwk] }),
    cacheSize: 0,
  });
  const pem = await exportSPKI(publicKey);
  const fastJwt = createFastJwtVerifier({
    key: pem,
    algorithms: ['EdDSA'],
    allowedIss: ISSUER,
    allowedAud: AUDIENCE,
  });
  const fastJwtCached = createFastJwtVerifier({
    key: pem,
    algorithms: ['EdDSA'],
    allowedIss: ISSUER,
    allowedAud: AUDIENCE,
    cache: 1000,
  });

  const candidates = {
    // The limit: what any verifier must at least do.
    'raw node:crypto': () => {
      const header = JSON.parse(Buffer.from(headerPart, 'base64url').toString());
      const ok = cryptoVerify(
        null,
        Buffer.from(`${headerPart}.${payloadPart}`),
        keyObject,
        Buffer.from(signaturePart, 'base64url'),
      );
      const payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString());
      if (
        !ok ||
        header.alg !== 'EdDSA' ||
        payload.iss !== ISSUER ||
        payload.exp <= Date.now() / 1000
      ) {
        throw new Error('invalid');
      }
      return payload;
    },
    '@rotor/verify, uncached': () => rotorUncached.verify(token),
    '@rotor/verify, cached (same token)': () => rotor.verify(token),
    'jose.jwtVerify': () =>
      jwtVerify(token, keyObject, { algorithms: ['EdDSA'], issuer: ISSUER, audience: AUDIENCE }),
    'fast-jwt': () => fastJwt(token),
    'fast-jwt, cached (same token)': () => fastJwtCached(token),
  };

  // Warm up every candidate (JIT, key imports) before measuring.
  for (const fn of Object.values(candidates)) await measure(fn, 100);
  const results = Object.fromEntries(Object.keys(candidates).map((name) => [name, []]));
  for (let round = 0; round < rounds; round += 1) {
    for (const [name, fn] of Object.entries(candidates)) results[name].push(await measure(fn, ms));
  }
  const raw = median(results['raw node:crypto']);
  return Object.entries(results).map(([name, values]) => ({
    name,
    opsPerSecond: median(values),
    ratio: median(values) / raw,
    spread: [Math.min(...values) / raw, Math.max(...values) / raw],
  }));
}
