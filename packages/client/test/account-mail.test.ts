import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer, loadConfig } from '@rotor/server';
import {
  createRotorClient,
  RotorClientError,
  takeAccountLink,
  type RotorClient,
  type RotorEvent,
} from '@rotor/client';
import type { FastifyInstance } from 'fastify';

// Issue 17: the SDK's account-mail calls against a real Rotor over HTTP on loopback, the mails read
// from the server's development outbox (ROTOR_SMTP_URL unset), as the demo page's user would.

const dir = mkdtempSync(join(tmpdir(), 'rotor-client-mail-'));
const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'a brand new passphrase';

let app: FastifyInstance;
let base: string;
let counter = 0;
const clients: RotorClient[] = [];

beforeAll(async () => {
  app = await createServer(loadConfig({ ROTOR_DATABASE_URL: `sqlite:${join(dir, 'mail.db')}` }), {
    logger: false,
  });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A body-delivery client (no cookies in Node) and the events it tells its subscribers. */
function newClient(baseUrl = base) {
  const client = createRotorClient({ baseUrl, delivery: 'body', autoRefresh: false });
  clients.push(client);
  const events: RotorEvent[] = [];
  client.subscribe((event) => events.push(event));
  return { client, events };
}

/** A new account, signed in on a new client. */
async function signedIn() {
  const { client, events } = newClient();
  const email = `mail${++counter}@example.com`;
  await client.register({ email, password: PASSWORD });
  await client.login({ email, password: PASSWORD, deviceName: 'vitest' });
  return { client, events, email };
}

type Kind =
  | 'password_reset'
  | 'verify_email'
  | 'email_change_confirm'
  | 'email_change_notice'
  | 'email_change_taken';

/**
 * The token of the newest mail of `kind` to `to` in the outbox, and how many such mails there are.
 * Mail is made after the answer (`whenIdle`) and sent by the queue a moment later: polled.
 */
async function mailed(to: string, kind: Kind, count = 1): Promise<string> {
  await app.rotor.whenIdle();
  const mails = () => app.rotor.outbox!.list().filter((m) => m.to === to && m.kind === kind);
  await expect.poll(() => mails().length, { timeout: 5_000 }).toBe(count);
  const link = mails()[0]!.link!;
  // `${ROTOR_APP_URL}#<action>=<token>`
  return /#[a-z-]+=([A-Za-z0-9_-]{43})$/.exec(link)![1]!;
}

/** The claims of a JWT, decoded (not verified: the server signed it, the test only reads it). */
function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
}

/** The error a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<RotorClientError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RotorClientError);
  return error as RotorClientError;
}

describe('@rotor/client account mails against a real Rotor', () => {
  it('password reset: the link sets the new password, every session ends (a signed-in client hears revoked / password_reset), the new password signs in', async () => {
    const { client: laptop, events: laptopEvents, email } = await signedIn();
    const { client: phone, events: phoneEvents } = newClient();
    await phone.login({ email, password: PASSWORD, deviceName: 'phone' });
    // A third device, signed out, asks for the link and uses it.
    const { client: helper } = newClient();
    await helper.requestPasswordReset(email);
    const token = await mailed(email, 'password_reset');

    // The laptop is signed in as the account and redeems the link itself: it signs out at once.
    const result = await laptop.confirmPasswordReset(token, NEW_PASSWORD);
    expect(result.user).toMatchObject({ email, emailVerified: true });
    expect(result.sessionsEnded).toBe(2);
    expect(laptop.state).toBeNull();
    expect(laptopEvents.at(-1)).toEqual({
      type: 'signed-out',
      reason: 'revoked',
      detail: 'password_reset',
    });
    // The phone learns on its next call, from the server's refusal.
    const answer = await phone.fetch(`${base}/auth/me`);
    expect(answer.status).toBe(401);
    expect(phoneEvents.at(-1)).toEqual({
      type: 'signed-out',
      reason: 'revoked',
      detail: 'password_reset',
    });

    expect((await failure(helper.login({ email, password: PASSWORD }))).code).toBe(
      'invalid_credentials',
    );
    expect((await helper.login({ email, password: NEW_PASSWORD })).email).toBe(email);
    expect(helper.state?.user.email).toBe(email);
    // Single use: the same link again is invalid_link, a 400.
    const again = await failure(helper.confirmPasswordReset(token, 'yet another passphrase'));
    expect([again.code, again.status]).toEqual(['invalid_link', 400]);
    // The helper's session was made after the reset and lives on.
    expect(helper.state).not.toBeNull();
  });

  it('a reset redeemed by a client signed in as someone else leaves that client signed in', async () => {
    const { client: other, events } = await signedIn();
    const { email } = await signedIn();
    await other.requestPasswordReset(email);
    const token = await mailed(email, 'password_reset');
    const result = await other.confirmPasswordReset(token, NEW_PASSWORD);
    expect(result.user.email).toBe(email);
    expect(other.state).not.toBeNull();
    expect(events.map((e) => e.type)).toEqual(['signed-in']);
  });

  it('verifyEmail refreshes a client signed in as the account: state.user.emailVerified and the access token claim email_verified turn true', async () => {
    const { client, events, email } = await signedIn();
    const token = await mailed(email, 'verify_email');
    expect(client.state!.user.emailVerified).toBe(false);
    expect(claims((await client.getAccessToken())!).email_verified).toBe(false);

    const user = await client.verifyEmail(token);
    expect(user).toMatchObject({ email, emailVerified: true });
    expect(events.at(-1)).toMatchObject({ type: 'refreshed', trigger: 'manual' });
    expect(client.state!.user.emailVerified).toBe(true);
    expect(claims((await client.getAccessToken())!).email_verified).toBe(true);
    expect((await client.me()).user.emailVerified).toBe(true);
  });

  it('requestEmailVerification mails a new link that voids the older one', async () => {
    const { client, email } = await signedIn();
    const first = await mailed(email, 'verify_email');
    await client.requestEmailVerification(email);
    const second = await mailed(email, 'verify_email', 2);
    expect(second).not.toBe(first);
    expect((await failure(client.verifyEmail(first))).code).toBe('invalid_link');
    expect(client.state!.user.emailVerified).toBe(false);
    expect((await client.verifyEmail(second)).emailVerified).toBe(true);
    expect(client.state!.user.emailVerified).toBe(true);
  });

  it('changeEmail mails both addresses; confirmEmailChange moves the account and refreshes the client onto the new address', async () => {
    const { client, email } = await signedIn();
    const newEmail = `moved${++counter}@example.com`;
    expect((await failure(client.changeEmail(newEmail, 'not the password'))).code).toBe(
      'invalid_credentials',
    );
    await client.changeEmail(newEmail, PASSWORD);
    const confirm = await mailed(newEmail, 'email_change_confirm');
    await mailed(email, 'email_change_notice');

    const user = await client.confirmEmailChange(confirm);
    expect(user).toMatchObject({ email: newEmail, emailVerified: true });
    // The client stays signed in, its state on the new address, its token saying it is proven.
    expect(client.state!.user.email).toBe(newEmail);
    expect(claims((await client.getAccessToken())!).email_verified).toBe(true);
    const { client: fresh } = newClient();
    expect((await fresh.login({ email: newEmail, password: PASSWORD })).email).toBe(newEmail);
    expect((await failure(client.confirmEmailChange(confirm))).code).toBe('invalid_link');
  });

  it('undoEmailChange takes the account back and signs out every client: here at once, elsewhere on the next call (email_change_undone)', async () => {
    const { client, events, email } = await signedIn();
    const { client: other, events: otherEvents } = newClient();
    await other.login({ email, password: PASSWORD });
    const newEmail = `hijacked${++counter}@example.com`;
    await client.changeEmail(newEmail, PASSWORD);
    await client.confirmEmailChange(await mailed(newEmail, 'email_change_confirm'));
    const undo = await mailed(email, 'email_change_notice');

    const result = await client.undoEmailChange(undo);
    expect(result.user.email).toBe(email);
    expect(result.sessionsEnded).toBe(2);
    expect(client.state).toBeNull();
    expect(events.at(-1)).toEqual({
      type: 'signed-out',
      reason: 'revoked',
      detail: 'email_change_undone',
    });
    expect(await other.refresh()).toBe(false);
    expect(otherEvents.at(-1)).toEqual({
      type: 'signed-out',
      reason: 'revoked',
      detail: 'email_change_undone',
    });
    const { client: owner } = newClient();
    expect((await owner.login({ email, password: PASSWORD })).email).toBe(email);
    expect((await failure(owner.undoEmailChange(undo))).code).toBe('invalid_link');
  });

  it('a made-up or malformed token surfaces as RotorClientError invalid_link, the account untouched', async () => {
    const { client, email } = await signedIn();
    for (const token of ['A'.repeat(43), 'not a token', '']) {
      expect((await failure(client.verifyEmail(token))).code).toBe('invalid_link');
    }
    expect((await failure(client.confirmPasswordReset('B'.repeat(43), NEW_PASSWORD))).code).toBe(
      'invalid_link',
    );
    expect((await client.me()).user).toMatchObject({ email, emailVerified: false });
  });
});

describe('@rotor/client and ROTOR_REQUIRE_VERIFIED_EMAIL', () => {
  let strict: FastifyInstance;
  let strictBase: string;
  beforeAll(async () => {
    strict = await createServer(
      loadConfig({
        ROTOR_DATABASE_URL: `sqlite:${join(dir, 'strict.db')}`,
        ROTOR_REQUIRE_VERIFIED_EMAIL: 'true',
      }),
      { logger: false },
    );
    strictBase = await strict.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(() => strict.close());

  it('login with an unproven address is RotorClientError email_not_verified (403); after verifyEmail it signs in', async () => {
    const { client, events } = newClient(strictBase);
    const email = `strict${++counter}@example.com`;
    await client.register({ email, password: PASSWORD });
    const refused = await failure(client.login({ email, password: PASSWORD }));
    expect([refused.code, refused.status]).toEqual(['email_not_verified', 403]);
    expect(client.state).toBeNull();
    // A wrong password is still a plain invalid_credentials.
    expect((await failure(client.login({ email, password: 'wrong password!' }))).code).toBe(
      'invalid_credentials',
    );

    await strict.rotor.whenIdle();
    const mail = () => strict.rotor.outbox!.list().find((m) => m.to === email);
    await expect.poll(() => mail()?.kind, { timeout: 5_000 }).toBe('verify_email');
    const token = /#verify-email=([A-Za-z0-9_-]{43})$/.exec(mail()!.link!)![1]!;
    expect((await client.verifyEmail(token)).emailVerified).toBe(true);
    expect((await client.login({ email, password: PASSWORD })).emailVerified).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['signed-in']);
  });
});

describe('takeAccountLink', () => {
  const TOKEN = 'abcdefghijklmnopqrstuvwxyz-_ABCDEFGHIJ01234'; // 43 characters

  /** A fake page: its location's parts and a history whose replaceState is recorded. */
  function page(hash: string) {
    const replaceState = vi.fn();
    return {
      page: {
        location: { hash, pathname: '/app/', search: '?tab=2' } as unknown as Location,
        history: { state: { kept: true }, replaceState } as unknown as History,
      },
      replaceState,
    };
  }

  it.each([
    ['reset-password'],
    ['verify-email'],
    ['confirm-email'],
    ['undo-email-change'],
  ] as const)(
    '#%s=<token>: returns the action and token, and replaces the URL with path and query only',
    (action) => {
      const { page: fake, replaceState } = page(`#${action}=${TOKEN}`);
      expect(takeAccountLink(fake)).toEqual({ action, token: TOKEN });
      expect(replaceState).toHaveBeenCalledTimes(1);
      expect(replaceState).toHaveBeenCalledWith({ kept: true }, '', '/app/?tab=2');
    },
  );

  it.each([
    ['', 'no fragment'],
    ['#devices', 'another fragment'],
    [`#login=${TOKEN}`, 'an unknown action'],
    [`#reset-password=${TOKEN.slice(1)}`, 'a 42-character token'],
    [`#reset-password=${TOKEN}x`, 'a 44-character token'],
    [`#reset-password=${TOKEN.slice(1)}!`, 'a character outside base64url'],
    [`#reset-password=${TOKEN}&x=1`, 'anything after the token'],
  ])('%j (%s): null, and the URL is left alone', (hash) => {
    const { page: fake, replaceState } = page(hash);
    expect(takeAccountLink(fake)).toBeNull();
    expect(replaceState).not.toHaveBeenCalled();
  });
});
