// A backend with a sign-in of its own (emailed codes here; SSO works the same way) that hands its
// users to Rotor with login tickets. It does not import Rotor: plain node:http and fetch against
// Rotor's admin API, as a backend written in any language would do it.
import { createServer } from 'node:http';
import { randomInt } from 'node:crypto';

const CODE_TTL_MS = 10 * 60 * 1000;

/**
 * @param {{
 *   rotorUrl: string,
 *   adminToken: string,
 *   sendEmail: (to: string, text: string) => void,
 *   log?: (line: string) => void,
 * }} options `adminToken` is ROTOR_ADMIN_TOKEN: it stays in this process, never in an answer.
 * @returns {import('node:http').Server}
 */
export function createBackend({ rotorUrl, adminToken, sendEmail, log = console.error }) {
  /** @type {Map<string, { code: string, expiresAtMs: number }>} the codes sent, by email */
  const codes = new Map();
  /** @type {Map<string, string>} the backend's own user table: email → Rotor's user id */
  const rotorIds = new Map();

  /** @param {string} path @param {object} body */
  async function admin(path, body) {
    const response = await fetch(`${rotorUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  }

  /** The user's id in Rotor, created there on the first sign-in. @param {string} email */
  async function rotorUserId(email) {
    const known = rotorIds.get(email);
    if (known) return known;
    const { status, body } = await admin('/admin/users', { email });
    // email_taken names the existing account: a lost mapping or a racing first sign-in recovers.
    const id = status === 201 ? body.user.id : body.details?.userId;
    if (!id) throw new Error(`POST /admin/users: ${status} ${body.error}`);
    rotorIds.set(email, id);
    return id;
  }

  /** @type {Record<string, (body: any, request: import('node:http').IncomingMessage) => Promise<[number, object?]>>} */
  const routes = {
    // Step 1: the client asks for a code by email.
    async 'POST /sign-in'({ email }) {
      if (typeof email !== 'string' || !email.includes('@')) return [400, { error: 'bad_email' }];
      const code = String(randomInt(100_000, 1_000_000));
      codes.set(email, { code, expiresAtMs: Date.now() + CODE_TTL_MS });
      sendEmail(email, `Your sign-in code: ${code}`);
      return [202];
    },
    // Step 2: the code checks out, so the backend signs the user in to Rotor with a ticket.
    async 'POST /sign-in/verify'({ email, code }) {
      // A stand-in for your real sign-in: one that ships also limits attempts per email.
      const sent = codes.get(email);
      if (!sent || sent.code !== code || sent.expiresAtMs < Date.now())
        return [401, { error: 'invalid_code' }];
      codes.delete(email);
      try {
        const userId = await rotorUserId(email);
        const { status, body } = await admin('/admin/login-tickets', { userId });
        if (status !== 201) throw new Error(`POST /admin/login-tickets: ${status} ${body.error}`);
        // The client redeems it at Rotor: POST {rotorUrl}/auth/login {"ticket": …}, within 60 s.
        return [200, { rotorUrl, ticket: body.ticket, expiresIn: body.expiresIn }];
      } catch (error) {
        log(`sign-in failed: ${/** @type {Error} */ (error).message}`);
        return [502, { error: 'sign_in_unavailable' }];
      }
    },
    // The backend's own API, for Rotor's access tokens: Rotor's /auth/me checks the session.
    async 'GET /api/whoami'(_body, request) {
      const response = await fetch(`${rotorUrl}/auth/me`, {
        headers: { authorization: request.headers.authorization ?? '' },
      });
      if (!response.ok) return [401, { error: 'unauthenticated' }];
      const { user } = await response.json();
      return [200, { email: user.email, rotorUserId: user.id }];
    },
  };

  return createServer(async (request, response) => {
    const route = routes[`${request.method} ${request.url}`];
    let text = '';
    for await (const chunk of request) text += chunk;
    let body;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      return response.writeHead(400).end();
    }
    const [status, answer] = route ? await route(body, request) : [404, { error: 'not_found' }];
    response.writeHead(status, answer && { 'content-type': 'application/json' });
    response.end(answer && JSON.stringify(answer));
  });
}
