import { existsSync, mkdirSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { freePort } from '@rotor/testkit';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, loadConfig, type KyselyStore } from '@rotor/server';
import type { FastifyInstance } from 'fastify';

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
const SCREENSHOTS = join(process.cwd(), '.tmp', 'screenshots');
const dir = mkdtempSync(join(tmpdir(), 'rotor-browser-'));
let app: FastifyInstance;
let base: string;
let browser: Browser;
let counter = 0;

beforeAll(async () => {
  if (!CHROMIUM) return;
  const port = await freePort();
  // The page's origin is the server's own, so it is allowed; a 2 s access token expires in a test.
  const config = loadConfig({
    ROTOR_DATABASE_URL: `sqlite:${join(dir, 'browser.db')}`,
    ROTOR_PORT: String(port),
    ROTOR_ACCESS_TTL: '2s',
    ROTOR_REFRESH_TTL: '1m',
  });
  app = await createServer(config, { logger: false });
  base = await app.listen({ host: '127.0.0.1', port });
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Past the 2 s access lifetime and the server's 1 s leeway. */
const EXPIRED = 3_200;

async function open(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => {
    throw error;
  });
  await page.goto(base);
  // Settled: restore() has said signed in or signed out.
  await page.waitForSelector('#signed-in:not([hidden]), #signed-out:not([hidden])');
  return page;
}

async function signUp(page: Page): Promise<string> {
  const email = `browser${++counter}@example.com`;
  await page.waitForSelector('#signed-out', { state: 'visible' });
  await page.locator('#register-name').fill('Ada');
  await page.locator('#register-email').fill(email);
  await page.locator('#register-password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account and sign in' }).click();
  await signedIn(page);
  return email;
}

async function signIn(page: Page, email: string, device?: string): Promise<void> {
  await page.waitForSelector('#signed-out', { state: 'visible' });
  await page.locator('#login-email').fill(email);
  await page.locator('#login-password').fill(PASSWORD);
  if (device) await page.locator('#login-device').fill(device);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await signedIn(page);
}

/** Two devices of one account, each its own browser: a phone that signed up, a laptop signed in. */
async function phoneAndLaptop() {
  const phone = await browser.newContext();
  const laptop = await browser.newContext();
  const phonePage = await open(phone);
  const email = await signUp(phonePage);
  const laptopPage = await open(laptop);
  await signIn(laptopPage, email, 'Laptop');
  return { phone, laptop, phonePage, laptopPage, email };
}

const signedIn = (page: Page) =>
  page.waitForSelector('#signed-in', { state: 'visible', timeout: 10_000 });
const signedOut = (page: Page) =>
  page.waitForSelector('#signed-out', { state: 'visible', timeout: 10_000 });
const logText = (page: Page) => page.locator('#log').innerText();
const statusText = (page: Page) => page.locator('#status').innerText();
/** The timeline's access-token bars, oldest first: number and how long each was in use. */
const bars = (page: Page) =>
  page.locator('#timeline .access-bar').evaluateAll((nodes) =>
    nodes.map((node) => ({
      token: Number(node.getAttribute('data-token')),
      livedMs: Number(node.getAttribute('data-lived-ms')),
      live: node.classList.contains('live'),
    })),
  );

/** The log's lines, oldest first (the page shows it newest first). */
const logLines = async (page: Page) => (await page.locator('#log li').allInnerTexts()).reverse();

/**
 * The timeline's labels that are cut off: their box reaches past the SVG's viewBox. The picture
 * scales to the page's width, so anything outside the viewBox is not drawn.
 */
const clippedLabels = (page: Page) =>
  page.locator('#timeline').evaluate((svg: SVGSVGElement) => {
    const view = svg.viewBox.baseVal;
    return Array.from(svg.querySelectorAll('text'))
      .map((text) => ({ text: text.textContent, box: text.getBBox() }))
      .filter(
        ({ box }) =>
          box.width === 0 ||
          box.x < view.x ||
          box.y < view.y ||
          box.x + box.width > view.x + view.width ||
          box.y + box.height > view.y + view.height,
      )
      .map(
        ({ text, box }) => `${text} at x ${box.x.toFixed(1)}..${(box.x + box.width).toFixed(1)}`,
      );
  });

/** Relative luminance (0 black, 1 white) of an element's computed `fill`. */
const fillLuminance = (page: Page, selector: string) =>
  page.locator(selector).evaluate((node) => {
    // Any CSS colour (color-mix too) to sRGB bytes, through a canvas.
    const canvas = document.createElement('canvas').getContext('2d')!;
    canvas.fillStyle = getComputedStyle(node).fill;
    canvas.fillRect(0, 0, 1, 1);
    const [r, g, b] = [...canvas.getImageData(0, 0, 1, 1).data].map((v) => {
      const c = v / 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
  });

/** Rotations and state of the user's sessions, read on the server. */
async function serverView(email: string) {
  const db = (app.rotor.store as KyselyStore).db;
  const sessions = await db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .select(['sessions.id', 'sessions.revoked_at', 'sessions.revoked_reason'])
    .where('users.email', '=', email)
    .execute();
  const rotated = await db
    .selectFrom('user_tokens')
    .select('token_hash')
    .where('session_id', 'in', sessions.length ? sessions.map((s) => s.id) : [''])
    .where('rotated_at', 'is not', null)
    .execute();
  return { sessions, rotations: rotated.length };
}

describe.skipIf(!CHROMIUM)('the demo page in Chromium', () => {
  it('signs up and signs in through the forms; a reload keeps the user signed in', async () => {
    const context = await browser.newContext();
    const page = await open(context);
    // The first load's POST /auth/refresh is refused (no cookie): the log says what it was.
    expect(await logLines(page)).toEqual([
      expect.stringMatching(
        /no session to restore: POST \/auth\/refresh → 401 missing_token \(no refresh cookie\)/,
      ),
    ]);
    const email = await signUp(page);
    expect(await page.locator('#user-email').innerText()).toContain(email);
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await signedOut(page);
    await signIn(page, email, 'Test laptop');
    expect((await logLines(page)).at(-1)).toMatch(/signed in: access token #1 for \d+ s/);
    await page.reload();
    await signedIn(page);
    expect(await page.locator('#user-email').innerText()).toContain(email);
    // A reload signs nobody in: the refresh cookie restored the session, and was rotated.
    expect(await logLines(page)).toEqual([
      expect.stringMatching(
        /restored from the refresh cookie \(refresh token rotated\): access token #1 for 2 s, idle window 1 min$/,
      ),
    ]);
    expect(await page.locator('#devices').innerText()).toContain('Test laptop');
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.setViewportSize({ width: 1000, height: 860 });
    // docs/demo.png is taken by `npm run demo:screenshot` (apps/demo/scripts/screenshot.js).
    await page.screenshot({ path: join(SCREENSHOTS, 'signed-in.png') });
    await context.close();
  });

  it('after the access token expires, the next call succeeds through a silent refresh: the log shows 401 → refresh → retry, the timeline a second bar', async () => {
    const context = await browser.newContext();
    const page = await open(context);
    const email = await signUp(page);
    const before = await serverView(email);
    await page.locator('#timeline .access-bar').first().waitFor();
    const first = await bars(page);
    expect(first).toMatchObject([{ token: 1, live: true }]);
    await sleep(1_000);
    // The live bar grows as its token is lived.
    expect((await bars(page))[0]!.livedMs).toBeGreaterThan(first[0]!.livedMs + 500);
    await sleep(EXPIRED - 1_000);
    await page.getByRole('button', { name: 'Call the API (GET /auth/me)' }).click();
    await page.waitForFunction(() =>
      document.querySelector('#log')!.textContent!.includes('GET /auth/me → 200'),
    );
    // The log is newest first: read it oldest first, each step in the order it happened.
    const lines = (await page.locator('#log li').allInnerTexts()).reverse();
    const step = (pattern: RegExp) => lines.findIndex((line) => pattern.test(line));
    const steps = [
      step(/GET \/auth\/me → 401 token_expired/),
      step(/refreshed after 401 token_expired: access token #2 for \d+ s, refresh token rotated/),
      step(/GET \/auth\/me retried with access token #2/),
      step(/GET \/auth\/me → 200/),
    ];
    expect(steps.every((index) => index >= 0)).toBe(true);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect((await serverView(email)).rotations).toBe(before.rotations + 1);
    // The timeline: a second bar, live; the first ended expired; one refresh tick, after a 401.
    await expect
      .poll(async () => (await bars(page)).map((b) => [b.token, b.live]))
      .toEqual([
        [1, false],
        [2, true],
      ]);
    expect(await page.locator('#timeline .refresh-tick').getAttribute('data-trigger')).toBe(
      'token_expired',
    );
    expect(await page.locator('#timeline .refused-mark').textContent()).toContain(
      '401 token_expired',
    );
    expect(await page.locator('#timeline .tl-expired').count()).toBe(1);
    await context.close();
  });

  it('with the default lifetimes, durations read as people say them: 14 min 59 s, 6 d 23 h', async () => {
    const port = await freePort();
    const defaults = await createServer(
      loadConfig({
        ROTOR_DATABASE_URL: `sqlite:${join(dir, 'defaults.db')}`,
        ROTOR_PORT: String(port),
      }),
      { logger: false },
    );
    const url = await defaults.listen({ host: '127.0.0.1', port });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(url);
      await signUp(page);
      // Not 899 s and 604799 s.
      await expect
        .poll(() => page.locator('#access-countdown').innerText())
        .toMatch(/^1[45] min( \d{1,2} s)?$/);
      expect(await page.locator('#refresh-countdown').innerText()).toMatch(/^(6 d 23 h|7 d)$/);
      expect(await logText(page)).toMatch(/access token #1 for 1[45] min.*idle window [67] d/);
      const ends = await page.locator('#timeline .tl-window-text').textContent();
      expect(ends).toMatch(/^ends in (6 d 23 h|7 d) →$/);
      // Seconds into a 15 min token its bar is nearly all unlived, pale: its label is dark there.
      expect(await page.locator('#timeline .tl-bar-text').getAttribute('class')).toContain(
        'on-life',
      );
      expect(await fillLuminance(page, '#timeline .tl-bar-text')).toBeLessThan(0.2);
      // A second tab restores at once: this tab's ↻ comes a moment after its sign-in dot, which
      // at this scale is the same pixel. The two symbols do not overlap.
      const other = await context.newPage();
      await other.goto(url);
      await signedIn(other);
      await page.locator('#timeline .refresh-tick').waitFor();
      const symbols = await page.locator('#timeline').evaluate((svg) =>
        Array.from(svg.querySelectorAll('circle.tl-start, circle.tl-rotate')).map((c) => ({
          cx: Number(c.getAttribute('cx')),
          r: Number(c.getAttribute('r')),
        })),
      );
      expect(symbols).toHaveLength(2);
      expect(Math.abs(symbols[1]!.cx - symbols[0]!.cx)).toBeGreaterThanOrEqual(
        symbols[0]!.r + symbols[1]!.r,
      );
      expect(await clippedLabels(page)).toEqual([]);
      // Past ten log entries the numbers ("10.", "11.") keep all their digits in view.
      for (let i = 0; i < 10; i++) {
        await page.getByRole('button', { name: 'Call the API (GET /auth/me)' }).click();
      }
      await expect.poll(() => page.locator('#log li').count()).toBeGreaterThanOrEqual(12);
      const room = await page.locator('#log').evaluate((list) => {
        const style = getComputedStyle(list);
        const canvas = document.createElement('canvas').getContext('2d')!;
        canvas.font = `${style.fontSize} ${style.fontFamily}`;
        const top = list.querySelector('li')!;
        return {
          number: (top as HTMLLIElement).value,
          padding: parseFloat(style.paddingLeft),
          needed: canvas.measureText(`${(top as HTMLLIElement).value}. `).width,
        };
      });
      expect(room.number).toBeGreaterThanOrEqual(10);
      expect(room.padding).toBeGreaterThanOrEqual(room.needed);
    } finally {
      await context.close();
      await defaults.close();
    }
  });

  it("left idle past the refresh lifetime, the page's automatic check shows the whole chain: 401 → refresh refused → signed out, idle too long", async () => {
    const port = await freePort();
    const short = await createServer(
      loadConfig({
        ROTOR_DATABASE_URL: `sqlite:${join(dir, 'idle.db')}`,
        ROTOR_PORT: String(port),
        ROTOR_ACCESS_TTL: '2s',
        ROTOR_REFRESH_TTL: '4s',
      }),
      { logger: false },
    );
    const url = await short.listen({ host: '127.0.0.1', port });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      page.on('pageerror', (error) => {
        throw error;
      });
      await page.goto(url);
      await signUp(page);
      // Nobody clicks: at the idle deadline the page checks the session by itself.
      await signedOut(page);
      expect(await statusText(page)).toMatch(/^Signed out: idle too long\./);
      const lines = await logLines(page);
      const from = lines.findIndex((line) => line.includes("the page's automatic check"));
      // The server refuses the refresh as session_expired, or the browser has already dropped
      // the cookie, whose Max-Age is the idle window: missing_token. Either way, in this order.
      expect(lines.slice(from)).toEqual([
        expect.stringMatching(
          /GET \/auth\/me \(the page's automatic check: the idle window is over\) → 401 token_expired: refreshing$/,
        ),
        expect.stringMatching(
          /POST \/auth\/refresh → 401 (session_expired \(reason: idle\)|missing_token): the refresh is refused/,
        ),
        expect.stringMatching(/Signed out: idle too long\. [^()]*$/),
      ]);
      // The frozen timeline: the 401 mark sits at its right edge, its label still whole.
      expect(await page.locator('#timeline .refused-mark').textContent()).toBe('401 token_expired');
      expect(await page.locator('#timeline .tl-window-text').textContent()).toBe('session ended');
      expect(await clippedLabels(page)).toEqual([]);
    } finally {
      await context.close();
      await short.close();
    }
  });

  it('two tabs whose access tokens expired call at once: both stay signed in, one rotation, no re-use', async () => {
    const context = await browser.newContext();
    const first = await open(context);
    const email = await signUp(first);
    const second = await open(context); // restores from the cookie and tells the first tab
    await signedIn(second);
    await sleep(500);
    const before = await serverView(email);
    await sleep(EXPIRED);
    await Promise.all(
      [first, second].map((page) =>
        page.getByRole('button', { name: 'Call the API (GET /auth/me)' }).click(),
      ),
    );
    for (const page of [first, second]) {
      await page.waitForFunction(() =>
        document.querySelector('#log')!.textContent!.includes('GET /auth/me → 200'),
      );
    }
    const after = await serverView(email);
    // One rotation (the tab lock held), at most two (inside the grace window); never a re-use.
    expect(after.rotations - before.rotations).toBeGreaterThanOrEqual(1);
    expect(after.rotations - before.rotations).toBeLessThanOrEqual(2);
    expect(after.sessions.every((s) => s.revoked_at === null)).toBe(true);
    await context.close();
  });

  it('signing out in one tab signs out the other', async () => {
    const context = await browser.newContext();
    const first = await open(context);
    await signUp(first);
    const second = await open(context);
    await signedIn(second);
    await first.getByRole('button', { name: 'Sign out', exact: true }).click();
    await signedOut(second);
    expect((await logLines(second)).at(-1)).toMatch(/Signed out\.$/);
    expect(await statusText(second)).toBe('Signed out.');
    await second.reload();
    await signedOut(second);
    await context.close();
  });

  it('no token is readable from JavaScript or stored: document.cookie, localStorage, sessionStorage', async () => {
    const context = await browser.newContext();
    const page = await open(context);
    await signUp(page);
    const exposed = await page.evaluate(() => ({
      cookie: document.cookie,
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
    }));
    expect(exposed).toEqual({ cookie: '', local: '{}', session: '{}' });
    const cookies = await context.cookies();
    const refresh = cookies.find((c) => c.name === 'rotor_refresh');
    expect(refresh).toMatchObject({
      httpOnly: true,
      secure: true,
      sameSite: 'Strict',
      path: '/auth',
    });
    expect(cookies.some((c) => c.name === 'rotor_access')).toBe(false);
    await context.close();
  });

  it('a page from another origin cannot refresh the session: 403 csrf_rejected', async () => {
    const context = await browser.newContext();
    const page = await open(context);
    const email = await signUp(page);
    const before = await serverView(email);
    // A second server on another port: same site (cookies are sent), another origin.
    const evil: Server = createHttpServer((_request, response) => {
      response.setHeader('content-type', 'text/html');
      response.end(
        `<script>fetch(${JSON.stringify(`${base}/auth/refresh`)}, { method: 'POST', credentials: 'include' })</script>`,
      );
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const attacker = await context.newPage();
      // The browser hides a CORS-blocked response from the page and from Playwright's events; the
      // DevTools protocol still shows what went over the wire.
      const cdp = await context.newCDPSession(attacker);
      await cdp.send('Network.enable');
      // ExtraInfo events may come before or after the request they belong to: join them by id.
      const urls = new Map<string, string>();
      const sent = new Map<string, Record<string, string>>();
      const statuses = new Map<string, number>();
      cdp.on('Network.requestWillBeSent', (event) => urls.set(event.requestId, event.request.url));
      cdp.on('Network.requestWillBeSentExtraInfo', (event) =>
        sent.set(event.requestId, event.headers as Record<string, string>),
      );
      cdp.on('Network.responseReceivedExtraInfo', (event) =>
        statuses.set(event.requestId, event.statusCode),
      );
      const refreshId = () => [...urls].find(([, url]) => url.endsWith('/auth/refresh'))?.[0] ?? '';
      await attacker.goto(`http://127.0.0.1:${(evil.address() as { port: number }).port}/`);
      await expect.poll(() => statuses.get(refreshId()), { timeout: 5_000 }).toBe(403);
      const headers = Object.fromEntries(
        Object.entries(sent.get(refreshId()) ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
      );
      // SameSite=Strict does not stop it (same site, other port): the Origin check does.
      expect(headers['cookie']).toContain('rotor_refresh=');
      expect(headers['origin']).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(headers['origin']).not.toBe(base);
      expect((await serverView(email)).rotations).toBe(before.rotations);
      // The victim's session is untouched and still refreshes from its own origin.
      await page.reload();
      await signedIn(page);
    } finally {
      evil.close();
    }
    await context.close();
  });

  it('revoking a device from the list signs that tab out on its next call', async () => {
    const { phone, laptop, phonePage, laptopPage } = await phoneAndLaptop();
    await phonePage.reload(); // the device list now shows both
    await signedIn(phonePage);
    await phonePage.getByRole('button', { name: 'Revoke Laptop', exact: true }).click();
    await phonePage.waitForFunction(
      () => !document.querySelector('#devices')!.textContent!.includes('Laptop'),
    );
    await laptopPage.getByRole('button', { name: 'Call the API (GET /auth/me)' }).click();
    await signedOut(laptopPage);
    // The refusal, then the sign-out it caused, in words (no raw codes on the sign-out line).
    const lines = await logLines(laptopPage);
    expect(lines.slice(-2)).toEqual([
      expect.stringMatching(/GET \/auth\/me → 401 session_revoked \(reason: revoked\)$/),
      expect.stringMatching(/Signed out: this device was revoked from another device\.$/),
    ]);
    expect(await statusText(laptopPage)).toBe(
      'Signed out: this device was revoked from another device.',
    );
    // The timeline stays, frozen at the end of the session.
    expect(await laptopPage.locator('#timeline-section').isVisible()).toBe(true);
    expect(await laptopPage.locator('#timeline .tl-window-text').textContent()).toBe(
      'session ended',
    );
    await signedIn(phonePage);
    await Promise.all([phone.close(), laptop.close()]);
  });

  it("the current device's revoke button says it signs this device out, and does", async () => {
    const context = await browser.newContext();
    const page = await open(context);
    const email = await signUp(page);
    await page.reload();
    await signedIn(page);
    const own = page.locator('#devices li', { hasText: 'this device' }).getByRole('button');
    await expect.poll(() => own.innerText()).toBe('Sign out this device');
    // The device name the server gave it, from its user agent.
    expect(await own.getAttribute('aria-label')).toMatch(/^Sign out this device \(.+\)$/);
    expect(await page.locator('#devices-note').innerText()).toMatch(/Sign out this device/);
    await own.click();
    await signedOut(page);
    expect(await statusText(page)).toBe('Signed out: you revoked this device in the device list.');
    expect((await serverView(email)).sessions.map((s) => s.revoked_reason)).toEqual(['revoked']);
    await context.close();
  });

  it('signing out everywhere says so here, and the other device says why on its next call', async () => {
    const { phone, laptop, phonePage, laptopPage } = await phoneAndLaptop();
    await phonePage.getByRole('button', { name: 'Sign out everywhere' }).click();
    await signedOut(phonePage);
    expect(await statusText(phonePage)).toBe(
      'Signed out everywhere: every session of this account ended.',
    );
    expect((await logLines(phonePage)).at(-1)).toMatch(
      /Signed out everywhere: every session of this account ended\.$/,
    );
    await laptopPage.getByRole('button', { name: 'Call the API (GET /auth/me)' }).click();
    await signedOut(laptopPage);
    expect(await statusText(laptopPage)).toBe(
      'Signed out: someone signed out everywhere from another device.',
    );
    expect((await logLines(laptopPage)).slice(-2)).toEqual([
      expect.stringMatching(/GET \/auth\/me → 401 session_revoked \(reason: logout_all\)$/),
      expect.stringMatching(/Signed out: someone signed out everywhere from another device\.$/),
    ]);
    await Promise.all([phone.close(), laptop.close()]);
  });
});
