import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@rotor/testkit';
import { chromium, type Browser, type Page, type Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, loadConfig } from '@rotor/server';
import type { FastifyInstance } from 'fastify';

/** Debian's Chromium (`apt-get install chromium`); never a browser download. */
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) =>
  existsSync(path),
);
if (!CHROMIUM) {
  const message =
    'Chromium is not installed (/usr/bin/chromium): the DPoP browser tests are SKIPPED. apt-get install chromium';
  if (process.env.CI === 'true') throw new Error(`${message}. CI requires it.`);
  console.warn(`\n${'!'.repeat(100)}\n${message}\n${'!'.repeat(100)}\n`);
}

const PASSWORD = 'correct horse battery';
const dir = mkdtempSync(join(tmpdir(), 'rotor-dpop-browser-'));
let app: FastifyInstance;
let base: string;
let browser: Browser;

beforeAll(async () => {
  if (!CHROMIUM) return;
  const port = await freePort();
  const config = loadConfig({
    ROTOR_DATABASE_URL: `sqlite:${join(dir, 'dpop.db')}`,
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

const signedIn = (page: Page) =>
  page.waitForSelector('#signed-in', { state: 'visible', timeout: 10_000 });

const decode = (part: string) =>
  JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>;
/** The header and claims of a JWT (a DPoP proof, an access token), unverified. */
function jwt(token: string) {
  const [header, claims] = token.split('.');
  return { header: decode(header!), claims: decode(claims!) };
}
/** RFC 7638: the SHA-256 thumbprint of an EC public JWK, the `cnf.jkt` of a bound token. */
function thumbprint(jwk: Record<string, unknown>): string {
  const { crv, kty, x, y } = jwk;
  return createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
}

/** The Rotor requests a page sends, with all their headers. */
function recordRequests(page: Page) {
  const sent: Array<{ method: string; url: string; headers: Record<string, string> }> = [];
  page.on('request', (request: Request) => {
    if (!request.url().startsWith(`${base}/auth/`)) return;
    void request.allHeaders().then((headers) => {
      sent.push({ method: request.method(), url: request.url(), headers });
    });
  });
  return sent;
}

/**
 * The key pair the SDK keeps in this origin's IndexedDB: whether its private key can be exported
 * (the answer of `crypto.subtle.exportKey`), and its public JWK. The same check on a key made
 * extractable is the control: it must export, or the check would prove nothing.
 */
const storedKey = (page: Page) =>
  page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const open = indexedDB.open('rotor-dpop');
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const pair = await new Promise<CryptoKeyPair>((resolve, reject) => {
      const read = db.transaction('keys').objectStore('keys').get('rotor:same-origin');
      read.onsuccess = () => resolve(read.result as CryptoKeyPair);
      read.onerror = () => reject(read.error);
    });
    db.close();
    const exportable = (key: CryptoKey) =>
      crypto.subtle.exportKey('jwk', key).then(
        () => 'exported',
        (error: Error) => error.name,
      );
    const control = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey);
    return {
      extractable: pair.privateKey.extractable,
      algorithm: (pair.privateKey.algorithm as EcKeyAlgorithm).namedCurve,
      exported: await exportable(pair.privateKey),
      control: await exportable(control.privateKey),
      jwk: { kty, crv, x, y } as Record<string, unknown>,
    };
  });

describe.skipIf(!CHROMIUM)('DPoP in the demo page (Chromium)', () => {
  it('binds the session to a non-extractable key kept in IndexedDB; every request carries DPoP; a reload stays signed in and bound to the same key', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (error) => {
      throw error;
    });
    const sent = recordRequests(page);
    await page.goto(base);
    await page.waitForSelector('#signed-out', { state: 'visible' });
    await page.locator('#register-email').fill('dpop-browser@example.com');
    await page.locator('#register-password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account and sign in' }).click();
    await signedIn(page);

    // The key: in IndexedDB, its private half non-extractable (exportKey rejects), the control
    // key made extractable exports.
    const key = await storedKey(page);
    expect(key).toMatchObject({
      extractable: false,
      algorithm: 'P-256',
      exported: 'InvalidAccessError',
      control: 'exported',
    });
    const jkt = thumbprint(key.jwk);

    // The page says so, and so does the server's session list.
    expect(await page.locator('#binding').innerText()).toContain(
      "Bound to this browser's key (DPoP)",
    );
    await expect
      .poll(() => page.locator('#devices').innerText())
      .toContain("Bound to this browser's key (DPoP)");

    // Every request the SDK authenticates: Authorization DPoP, and a proof by that key for it.
    await page.getByRole('button', { name: 'Call the API (GET /auth/me)' }).click();
    await page.waitForFunction(() =>
      document.querySelector('#log')!.textContent!.includes('GET /auth/me → 200'),
    );
    await expect.poll(() => sent.filter((r) => r.url === `${base}/auth/me`).length).toBe(1);
    const login = sent.find((r) => r.url === `${base}/auth/login`)!;
    expect(jwt(login.headers.dpop!).claims).toMatchObject({
      htm: 'POST',
      htu: `${base}/auth/login`,
    });
    const calls = sent.filter((r) => r.headers.authorization !== undefined);
    expect(calls.map((r) => r.url)).toEqual([`${base}/auth/sessions`, `${base}/auth/me`]);
    for (const call of calls) {
      const token = call.headers.authorization!.replace(/^DPoP /, '');
      expect(call.headers.authorization).toBe(`DPoP ${token}`);
      expect((jwt(token).claims.cnf as { jkt: string }).jkt).toBe(jkt);
      const proof = jwt(call.headers.dpop!);
      expect(thumbprint(proof.header.jwk as Record<string, unknown>)).toBe(jkt);
      expect(proof.claims).toMatchObject({
        htm: 'GET',
        htu: call.url.split('?')[0],
        ath: createHash('sha256').update(token).digest('base64url'),
      });
    }

    // A reload: the same key from IndexedDB refreshes the bound session (no sign-in).
    sent.length = 0;
    await page.reload();
    await signedIn(page);
    expect((await storedKey(page)).jwk).toEqual(key.jwk);
    const refresh = sent.find((r) => r.url === `${base}/auth/refresh`)!;
    expect(thumbprint(jwt(refresh.headers.dpop!).header.jwk as Record<string, unknown>)).toBe(jkt);
    expect(await page.locator('#binding').innerText()).toContain(
      "Bound to this browser's key (DPoP)",
    );
    await expect
      .poll(() => page.locator('#devices').innerText())
      .toContain("Bound to this browser's key (DPoP)");
    const listed = sent.find((r) => r.url.startsWith(`${base}/auth/sessions`))!;
    const token = listed.headers.authorization!.replace(/^DPoP /, '');
    expect((jwt(token).claims.cnf as { jkt: string }).jkt).toBe(jkt);
    expect(sent.some((r) => r.url === `${base}/auth/login`)).toBe(false);
    await context.close();
  });
});
