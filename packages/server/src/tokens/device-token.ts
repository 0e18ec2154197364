import { hkdfSync, randomBytes } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';

/** The `typ` of device tokens: never accepted where an access token is expected, nor the reverse. */
const DEVICE_TOKEN_TYPE = 'rotor-device+jwt';
/** How long a device stays trusted after its last successful sign-in: 180 days, in seconds. */
export const DEVICE_TOKEN_TTL_SECONDS = 180 * 24 * 60 * 60;
/** Longer strings are not looked at (a device token is about 200 characters). */
const MAX_LENGTH = 1024;

/**
 * OWASP's "device cookies" (Authentication Cheat Sheet, "Slow down online guessing attacks with
 * device cookies"): a successful sign-in leaves the client a token, signed by the server, that
 * names the account and a random nonce. A later sign-in to that account presenting it is charged
 * to the nonce's own rate-limit budget instead of the account's, so an attacker guessing the
 * password from elsewhere cannot lock the owner out; a stolen device token buys the thief only
 * that device's own small budget. HS256 JWTs (jose) under a key derived from the server's HMAC key.
 *
 * A device token carries the user's session epoch (users.session_epoch) and is void once it moves:
 * a password change or a sign-out everywhere withdraws the trust of every device along with its
 * sessions, so tokens gathered while the old password was known buy no guesses at the new one.
 */
export class DeviceTokens {
  readonly #key: Uint8Array;

  constructor(hmacKey: Uint8Array) {
    this.#key = new Uint8Array(hkdfSync('sha256', hmacKey, 'rotor', 'device_token', 32));
  }

  /**
   * A new device token for `user` at its current session epoch, valid
   * {@link DEVICE_TOKEN_TTL_SECONDS} from `nowSeconds`.
   */
  issue(user: { id: string; session_epoch: number }, nowSeconds: number): Promise<string> {
    return new SignJWT({ epoch: user.session_epoch })
      .setProtectedHeader({ alg: 'HS256', typ: DEVICE_TOKEN_TYPE })
      .setSubject(user.id)
      .setJti(randomBytes(16).toString('base64url'))
      .setIssuedAt(nowSeconds)
      .setExpirationTime(nowSeconds + DEVICE_TOKEN_TTL_SECONDS)
      .sign(this.#key);
  }

  /**
   * The nonce of `token` if it is a valid, unexpired device token of `user` at its current session
   * epoch; undefined for anything else (a bad token is simply no trust, never an error).
   */
  async nonceFor(
    token: string,
    user: { id: string; session_epoch: number },
    nowSeconds: number,
  ): Promise<string | undefined> {
    if (token.length > MAX_LENGTH) return undefined;
    try {
      const { payload } = await jwtVerify(token, this.#key, {
        algorithms: ['HS256'],
        typ: DEVICE_TOKEN_TYPE,
        subject: user.id,
        currentDate: new Date(nowSeconds * 1000),
        requiredClaims: ['jti', 'exp'],
      });
      if (payload.epoch !== user.session_epoch) return undefined;
      return typeof payload.jti === 'string' ? payload.jti : undefined;
    } catch {
      return undefined;
    }
  }
}
