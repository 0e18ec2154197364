// Takes docs/demo.png: the demo page in Debian's Chromium (as the browser tests drive it), after a
// short life cycle played on a throwaway server with the lifetimes the README suggests
// (`ROTOR_ACCESS_TTL=30s ROTOR_REFRESH_TTL=1m`): sign-in, the access token expires, the next call
// is refused, refreshed and retried; a second device. About 40 s, most of it waiting for the
// token to expire. Run from the repository root: `npm run demo:screenshot`.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { createServer, loadConfig } from '@rotor/server';
import { freePort } from '@rotor/testkit';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) =>
  existsSync(path),
);
if (!CHROMIUM) {
  console.error('Chromium is not installed (/usr/bin/chromium): apt-get install chromium');
  process.exit(1);
}
const out = join(process.cwd(), 'docs', 'demo.png');
const dir = mkdtempSync(join(tmpdir(), 'rotor-screenshot-'));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery';

// The port is known before the server starts: the page's origin must be the allowed one.
const port = await freePort();
// The README's lifetimes, so that the picture shows what a reader who runs them sees.
const app = await createServer(
  loadConfig({
    ROTOR_DATABASE_URL: `sqlite:${join(dir, 'screenshot.db')}`,
    ROTOR_PORT: String(port),
    ROTOR_ACCESS_TTL: '30s',
    ROTOR_REFRESH_TTL: '1m',
  }),
  { logger: false },
);
const base = await app.listen({ host: '127.0.0.1', port });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
});
try {
  // A second device, signed in over the API, for the device list.
  const json = { 'content-type': 'application/json' };
  await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ email: EMAIL, password: PASSWORD, name: 'Ada' }),
  });
  await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { ...json, 'token-delivery': 'body', 'user-agent': 'Phone' },
    body: JSON.stringify({ email: EMAIL, password: PASSWORD, deviceName: 'Phone' }),
  });

  const page = await browser.newPage({ viewport: { width: 1000, height: 1200 } });
  page.on('pageerror', (error) => {
    throw error;
  });
  await page.goto(base);
  await page.locator('#login-email').fill(EMAIL);
  await page.locator('#login-password').fill(PASSWORD);
  await page.locator('#login-device').fill('Laptop');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForSelector('#signed-in', { state: 'visible' });
  await page.getByRole('button', { name: 'Call the API (GET /auth/me)' }).click();
  await page.locator('#log li', { hasText: 'GET /auth/me → 200' }).waitFor();
  // The access token expires (30 s, and the server's 1 s leeway): the next call is refused,
  // refreshed and retried, and the idle window slides forward.
  await sleep(32_500);
  await page.getByRole('button', { name: 'Call the API (GET /auth/me)' }).click();
  await page.locator('#log li', { hasText: 'retried with access token #2' }).waitFor();
  await page.locator('#log li', { hasText: 'GET /auth/me → 200' }).nth(1).waitFor();
  await sleep(4_000);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await app.close();
  rmSync(dir, { recursive: true, force: true });
}
