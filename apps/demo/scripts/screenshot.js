// Takes docs/demo.png: the demo page in Debian's Chromium (as the browser tests drive it), after a
// short life cycle played on a throwaway server: sign-in, a 401 → refresh → retry, two automatic
// refreshes, a second device. Run from the repository root: `npm run demo:screenshot`.
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
// Short lifetimes so that the picture holds several access tokens; a 4 s token refreshes
// automatically 1 s before it expires.
const app = await createServer(
  loadConfig({
    ROTOR_DATABASE_URL: `sqlite:${join(dir, 'screenshot.db')}`,
    ROTOR_PORT: String(port),
    ROTOR_ACCESS_TTL: '4s',
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
  await sleep(5_300); // the access token expires: the next call is refused, refreshed, retried
  await page.getByRole('button', { name: 'Call the API (GET /auth/me)' }).click();
  await page.locator('#log li', { hasText: 'GET /auth/me → 200' }).waitFor();
  await sleep(1_000);
  await page.locator('#auto-refresh').check(); // then two refreshes shortly before expiry
  await page.locator('#timeline .refresh-tick').nth(2).waitFor({ timeout: 15_000 });
  await page.locator('#auto-refresh').uncheck();
  await sleep(1_200);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await app.close();
  rmSync(dir, { recursive: true, force: true });
}
