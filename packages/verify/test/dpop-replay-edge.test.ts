import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createDpopProofCheck, MemoryDpopReplayStore } from '@rotor/verify';

/**
 * A proof is accepted while `now <= iat + maxAge + tolerance`; its jti must be remembered at least
 * that long. Remembered only *until* that instant, a proof used at its last accepted moment could
 * be replayed at that same moment: the store already counted it expired (`until > now` false; in
 * Rotor's table `expires_at <= now`, taken over).
 */
describe('DPoP jti window edge', () => {
  it('a proof used at the last moment of its window cannot be replayed at that moment', async () => {
    const iat = 1_900_000_000;
    let now = iat;
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(publicKey);
    const proof = await new SignJWT({
      htm: 'GET',
      htu: 'https://api.example.test/x',
      iat,
      jti: 'j',
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(privateKey);
    const replay = new MemoryDpopReplayStore({ now: () => now });
    const check = createDpopProofCheck({
      replay,
      maxAgeSeconds: 60,
      clockTolerance: 5,
      now: () => now,
    });
    const request = { method: 'GET', urls: ['https://api.example.test/x'] };
    now = iat + 65;
    await expect(check(proof, request)).resolves.toMatchObject({
      jkt: await calculateJwkThumbprint(jwk, 'sha256'),
    });
    await expect(check(proof, request)).rejects.toMatchObject({ code: 'invalid_dpop_proof' });
  });
});
