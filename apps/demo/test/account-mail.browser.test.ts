import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type Page,
  type Request,
} from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, loadConfig } from '@rotor/server';
import { freePort } from '@rotor/testkit';
import type { FastifyInstance } from 'fastify';

// Issue 17 in the demo page, in Debian's Chromium: forgot password → development mailbox → reset
// → signed in, every other browser signed out; a used link; verification; email change and undo;
// the mailbox for loopback only. The server keeps mail in its development outbox (ROTOR_SMTP_URL
// unset) and its links point at itself (ROTOR_APP_URL), as with the README's two commands.

/** Debian's Chromium (`apt-get install chromium`); never a browser download. */
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) =>
  existsSync(path),
);
if (!CHROMIUM) {
  const message =
    'Chromium is not installed (/usr/bin/chromium): the browser tests are SKIPPED. apt-get install chromium';
  if (process.env.CI === 'true') throw new Error(`${message}. CI requires it.`);
  console.warn(`\n${'!'.repeat(100)}\n${message}\n${'!'.repeat(100)}\n`);
}

const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'a brand new passphrase';
const dir = mkdtempSync(join(tmpdir(), 'rotor-browser-mail-'));
let browser: Browser;
let counter = 0;

/** A server with the development outbox whose links open its own demo page. */
async function startServer(env: Record<string, string> = {}) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const app = await createServer(
    loadConfig({
      ROTOR_DATABASE_URL: `sqlite:${join(dir, `mail-${port}.db`)}`,
      ROTOR_PORT: String(port),
      ROTOR_APP_URL: `${base}/`,
      ...env,
    }),
    { logger: false },
  );
  await app.listen({ host: '127.0.0.1', port });
  return { app, base };
}

let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  if (!CHROMIUM) return;
  ({ app, base } = await startServer());
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A new page of `context` that fails the test on any script error. */
async function newPage(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => {
    throw error;
  });
  return page;
}

async function open(context: BrowserContext, url = base): Promise<Page> {
  const page = await newPage(context);
  await page.goto(url);
  // Settled: restore() has said signed in or signed out.
  await page.waitForSelector('#signed-in:not([hidden]), #signed-out:not([hidden])');
  return page;
}

const signedIn = (page: Page) =>
  page.waitForSelector('#signed-in', { state: 'visible', timeout: 10_000 });
const signedOut = (page: Page) =>
  page.waitForSelector('#signed-out', { state: 'visible', timeout: 10_000 });
const statusText = (page: Page) => page.locator('#status').innerText();
/** The message's words, one space between its parts (a flex row puts each on its own line). */
const noticeText = async (page: Page) =>
  ((await page.locator('#notice').textContent()) ?? '').replace(/\s+/g, ' ').trim();
const errorText = (page: Page) => page.locator('#error').innerText();

async function signUp(page: Page): Promise<string> {
  const email = `mailbox${++counter}@example.com`;
  await page.waitForSelector('#signed-out', { state: 'visible' });
  await page.locator('#register-email').fill(email);
  await page.locator('#register-password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account and sign in' }).click();
  return email;
}

async function signIn(page: Page, email: string, device: string): Promise<void> {
  await page.waitForSelector('#signed-out', { state: 'visible' });
  await page.locator('#login-email').fill(email);
  await page.locator('#login-password').fill(PASSWORD);
  await page.locator('#login-device').fill(device);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await signedIn(page);
}

type Kind = 'password_reset' | 'verify_email' | 'email_change_confirm' | 'email_change_notice';

/** The newest mail of `kind` to `to` in the outbox, once there (it is sent after the answer). */
async function mailed(to: string, kind: Kind, count = 1, server = app) {
  await server.rotor.whenIdle();
  const mails = () => server.rotor.outbox!.list().filter((m) => m.to === to && m.kind === kind);
  await expect.poll(() => mails().length, { timeout: 5_000 }).toBe(count);
  const mail = mails()[0]!;
  return { link: mail.link!, token: /=([A-Za-z0-9_-]{43})$/.exec(mail.link!)![1]! };
}

/**
 * Opens the development mailbox in a new tab of `page`'s browser (through the page's own link when
 * `viaNotice`), finds `to`'s mail whose link has `action`, and clicks that link: the tab becomes
 * the demo page the link opens. Returns that tab.
 */
async function followMailboxLink(
  page: Page,
  to: string,
  action: string,
  { viaNotice = false } = {},
): Promise<Page> {
  let mailbox: Page;
  if (viaNotice) {
    const opened = page.context().waitForEvent('page');
    await page.getByRole('link', { name: 'Open the development mailbox' }).click();
    mailbox = await opened;
    mailbox.on('pageerror', (error) => {
      throw error;
    });
    await mailbox.waitForLoadState();
  } else {
    mailbox = await newPage(page.context());
    await mailbox.goto(`${base}/dev/mailbox`);
  }
  expect(mailbox.url()).toBe(`${base}/dev/mailbox`);
  const link = mailbox
    .locator('article', { hasText: `To ${to}` })
    .locator(`a[href*="#${action}="]`)
    .first();
  await link.click();
  await mailbox.waitForURL(`${base}/`);
  return mailbox;
}

/** The claims of a JWT, decoded only to be read. */
function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
}

/** `GET path` over node:http with a chosen `Host` header (fetch does not let one set it). */
function getWithHost(
  path: string,
  host: string,
  method = 'GET',
): Promise<{ status: number; type: string; body: string }> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: Number(port), path, method, headers: { host } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers['content-type'] ?? ''),
            body,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(!CHROMIUM)('account mails in the demo page (Chromium)', () => {
  it('forgot password → mailbox → link → new password: signed in on the third browser, the phone and the laptop signed out; the token stays out of every URL and Referer', async () => {
    // A phone signs up, a laptop signs in: two browsers of one account.
    const phone = await browser.newContext();
    const laptop = await browser.newContext();
    const phonePage = await open(phone);
    const email = await signUp(phonePage);
    await signedIn(phonePage);
    const laptopPage = await open(laptop);
    await signIn(laptopPage, email, 'Laptop');

    // A third browser, everything it requests recorded.
    const third = await browser.newContext();
    const requests: Request[] = [];
    third.on('request', (request) => requests.push(request));
    // Where the page's address bar stood when each of its API calls left: the link's token must be
    // gone before the first one (takeAccountLink() is the page's first work), not merely by the end.
    const addressAtCall: string[] = [];
    await third.route(`${base}/auth/**`, async (route) => {
      const frame = route.request().frame();
      addressAtCall.push(await frame.evaluate(() => location.href).catch(() => frame.url()));
      await route.continue();
    });
    const page = await open(third);
    await page.getByRole('button', { name: 'Forgot password?' }).click();
    await page.locator('#forgot-email').fill(email);
    await page.getByRole('button', { name: 'Send the reset link' }).click();
    await expect
      .poll(() => noticeText(page))
      .toMatch(
        /^If an account has this address, a link is on its way\. Open the development mailbox$/,
      );
    const { token } = await mailed(email, 'password_reset');

    const linkPage = await followMailboxLink(page, email, 'reset-password', { viaNotice: true });
    // The token left the address bar as the page loaded.
    expect(linkPage.url()).toBe(`${base}/`);
    expect(await linkPage.evaluate(() => location.hash)).toBe('');
    await linkPage.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    expect(await linkPage.locator('#signed-out').isHidden()).toBe(true);
    await linkPage.getByLabel(/New password/).fill(NEW_PASSWORD);
    await linkPage.getByRole('button', { name: 'Set the new password and sign in' }).click();
    await signedIn(linkPage);
    expect(await linkPage.locator('#user-email').innerText()).toBe(email);
    await expect
      .poll(() => noticeText(linkPage))
      .toBe(
        'New password set, and you are signed in. Every other session of this account was signed out (2 sessions).',
      );
    expect(await linkPage.locator('#reset-section').isHidden()).toBe(true);

    // The phone and the laptop learn on their next call, and say why.
    for (const other of [phonePage, laptopPage]) {
      await other.getByRole('button', { name: 'Call the API (GET /auth/me)' }).click();
      await signedOut(other);
      expect(await statusText(other)).toBe(
        'Signed out: the password was reset with a link mailed to this account; every session ended.',
      );
    }

    // What left the third browser: only this server's origin, the token in no URL and no Referer,
    // and in one body only, the confirmation's.
    expect(requests.length).toBeGreaterThan(5);
    const seen = await Promise.all(
      requests.map(async (request) => ({
        url: request.url(),
        method: request.method(),
        referer: (await request.allHeaders())['referer'] ?? '',
        body: request.postData() ?? '',
      })),
    );
    expect(seen.filter(({ url }) => !url.startsWith(`${base}/`))).toEqual([]);
    // no-referrer holds on every page the browser showed (demo and mailbox): no Referer at all,
    // so not even a future page's URL with a token in its query could leak through one.
    expect(seen.filter(({ referer }) => referer !== '')).toEqual([]);
    expect(addressAtCall.length).toBeGreaterThan(2);
    expect(addressAtCall.filter((href) => href.includes('#'))).toEqual([]);
    expect(
      seen.filter(({ url, referer }) => url.includes(token) || referer.includes(token)),
    ).toEqual([]);
    expect(
      seen.filter(({ body }) => body.includes(token)).map(({ method, url }) => `${method} ${url}`),
    ).toEqual([`POST ${base}/auth/password-reset/confirm`]);
    // The page and its files say no-referrer themselves, as every answer of Rotor does.
    for (const path of ['/', '/demo/app.js', '/demo/rotor-client.js']) {
      const answer = await fetch(`${base}${path}`);
      expect([path, answer.headers.get('referrer-policy')]).toEqual([path, 'no-referrer']);
    }
    await Promise.all([phone.close(), laptop.close(), third.close()]);
  });

  it('a reset link used in one browser and opened in a second: the second says the link no longer works and signs nobody in', async () => {
    const owner = await browser.newContext();
    const ownerPage = await open(owner);
    const email = await signUp(ownerPage);
    await signedIn(ownerPage);
    await ownerPage.getByRole('button', { name: 'Sign out', exact: true }).click();
    await signedOut(ownerPage);
    await ownerPage.getByRole('button', { name: 'Forgot password?' }).click();
    // The forgot form takes the address typed in the sign-in form, if any; here it is typed.
    await ownerPage.locator('#forgot-email').fill(email);
    await ownerPage.getByRole('button', { name: 'Send the reset link' }).click();
    const { link } = await mailed(email, 'password_reset');

    const used = await newPage(owner);
    await used.goto(link);
    await used.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    await used.getByLabel(/New password/).fill(NEW_PASSWORD);
    await used.getByRole('button', { name: 'Set the new password and sign in' }).click();
    await signedIn(used);

    const second = await browser.newContext();
    const page = await newPage(second);
    await page.goto(link);
    expect(page.url()).toBe(`${base}/`);
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    await page.getByLabel(/New password/).fill('an attacker passphrase');
    await page.getByRole('button', { name: 'Set the new password and sign in' }).click();
    await expect
      .poll(() => errorText(page))
      .toBe(
        'This link no longer works: it was already used, it expired, or a newer one replaced it. Ask for a new one.',
      );
    // Not signed in; the form to ask for a new link is there instead of the dead one.
    await signedOut(page);
    expect(await page.locator('#signed-in').isHidden()).toBe(true);
    expect(await page.locator('#reset-section').isHidden()).toBe(true);
    expect(await page.locator('#forgot-form').isVisible()).toBe(true);
    expect(await second.cookies()).toEqual([]);
    // The owner's new password is the one that works.
    const fresh = await open(second);
    await fresh.locator('#login-email').fill(email);
    await fresh.locator('#login-password').fill('an attacker passphrase');
    await fresh.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect.poll(() => errorText(fresh)).toBe('The email or password is incorrect.');
    await Promise.all([owner.close(), second.close()]);
  });

  it('verification: a banner while the address is unproven; the mailed link removes it in both tabs, and the new access token says email_verified', async () => {
    const context = await browser.newContext();
    const page = await open(context);
    const email = await signUp(page);
    await signedIn(page);
    const banner = page.locator('#verify-banner');
    await banner.waitFor();
    expect(await banner.innerText()).toMatch(
      new RegExp(
        `^Verify your email: we sent a link to ${email.replace('.', '\\.')}\\.\\s+Send it again$`,
      ),
    );
    // "Send it again" mails a second link.
    await page.getByRole('button', { name: 'Send it again' }).click();
    await expect.poll(() => noticeText(page)).toMatch(/a link is on its way to/);
    await mailed(email, 'verify_email', 2);

    // The link opens in another tab of this browser; its page is signed in from the cookie first.
    const mailbox = await newPage(context);
    const refreshes: string[] = [];
    mailbox.on('response', async (response) => {
      if (response.url() === `${base}/auth/refresh` && response.ok()) {
        refreshes.push(((await response.json()) as { accessToken: string }).accessToken);
      }
    });
    await mailbox.goto(`${base}/dev/mailbox`);
    await mailbox
      .locator('article', { hasText: `To ${email}` })
      .locator('a[href*="#verify-email="]')
      .first()
      .click();
    await mailbox.waitForURL(`${base}/`);
    await expect.poll(() => noticeText(mailbox)).toBe(`Email verified: ${email} is proven.`);
    await signedIn(mailbox);
    expect(await mailbox.locator('#verify-banner').isHidden()).toBe(true);
    // The restore's token was issued before the link was used; the refresh after it says verified.
    await expect.poll(() => refreshes.length).toBe(2);
    expect(refreshes.map((jwt) => claims(jwt).email_verified)).toEqual([false, true]);
    // The first tab heard the new state from the second: its banner is gone too.
    await banner.waitFor({ state: 'hidden' });
    await context.close();
  });

  it('change email, confirm from the new address, undo from the old: the account is back, every session signed out, the forgot form ready', async () => {
    const context = await browser.newContext();
    const page = await open(context);
    const email = await signUp(page);
    await signedIn(page);
    const newEmail = `moved${++counter}@example.com`;
    await page.getByText('Change email').click();
    await page.getByLabel('New email').fill(newEmail);
    await page.locator('#change-email-password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Send the confirmation link' }).click();
    await expect
      .poll(() => noticeText(page))
      .toBe(
        `Almost done: follow the link we mailed to ${newEmail} to confirm the change. Your current address got a notice with a link that undoes it. Open the development mailbox`,
      );
    await mailed(newEmail, 'email_change_confirm');
    const confirmed = await followMailboxLink(page, newEmail, 'confirm-email');
    await expect
      .poll(() => noticeText(confirmed))
      .toBe(`Email changed: this account's address is now ${newEmail}.`);
    await expect.poll(() => confirmed.locator('#user-email').innerText()).toBe(newEmail);

    await mailed(email, 'email_change_notice');
    const undone = await followMailboxLink(page, email, 'undo-email-change');
    await expect
      .poll(() => noticeText(undone))
      .toBe(
        'Your address is back; every session was signed out. Reset your password now: whoever changed the address knew it.',
      );
    await signedOut(undone);
    expect(await statusText(undone)).toBe(
      'Signed out: an email change was undone from the old address; every session ended.',
    );
    expect(await undone.locator('#forgot-email').inputValue()).toBe(email);
    expect(await undone.locator('#forgot-form').isVisible()).toBe(true);
    // The first tab heard the sign-out too.
    await signedOut(page);
    await context.close();
  });

  it('with ROTOR_REQUIRE_VERIFIED_EMAIL, a sign-in before verifying says so and offers to send the link again', async () => {
    const strict = await startServer({ ROTOR_REQUIRE_VERIFIED_EMAIL: 'true' });
    const context = await browser.newContext();
    try {
      const page = await newPage(context);
      await page.goto(strict.base);
      await signedOut(page);
      const email = await signUp(page);
      const expected = `Your email address ${email} is not verified yet: follow the link we mailed to it, then sign in. Send the link again`;
      await expect.poll(() => errorText(page)).toBe(expected);
      expect(await page.locator('#signed-in').isHidden()).toBe(true);
      await page.getByRole('button', { name: 'Send the link again' }).click();
      await expect.poll(() => noticeText(page)).toMatch(/a link is on its way/);
      await mailed(email, 'verify_email', 2, strict.app);
      // The sign-in form says the same.
      await page.locator('#login-email').fill(email);
      await page.locator('#login-password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await expect.poll(() => errorText(page)).toBe(expected);
    } finally {
      await context.close();
      await strict.app.close();
    }
  });

  it('the mailbox answers 404 JSON to a request with a non-loopback Host header', async () => {
    for (const path of ['/dev/mailbox', '/dev/mailbox/messages']) {
      const own = await getWithHost(path, new URL(base).host);
      expect([path, own.status]).toEqual([path, 200]);
      for (const method of ['GET', 'HEAD']) {
        const evil = await getWithHost(path, 'evil.example', method);
        expect([path, method, evil.status]).toEqual([path, method, 404]);
        expect(evil.type).toMatch(/^application\/json/);
        if (method === 'GET') expect(JSON.parse(evil.body)).toMatchObject({ error: 'not_found' });
        expect(evil.body).not.toContain('@example.com');
      }
    }
  });
});
