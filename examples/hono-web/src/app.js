// A Hono web app with Rotor inside it: Rotor's routes under /rotor, a server-rendered page and a
// JSON route of the app's own that read the same session (the `rotor_access` cookie, or a bearer
// token for API clients). Rotor keeps the passwords and sessions; the app only asks who is calling.
import { Hono } from 'hono';
import { html } from 'hono/html';
import { getConnInfo } from '@hono/node-server/conninfo';
import { createWebHandler } from '@rotor/server/web';

/**
 * @param {{ config: import('@rotor/server').RotorConfig }} options Rotor's configuration; its
 *   `issuer` should end in `/rotor`, the prefix Rotor is mounted at.
 * @returns {Promise<{ app: Hono, rotor: import('@rotor/server/web').WebHandler }>}
 */
export async function createApp({ config }) {
  const rotor = await createWebHandler({ config, prefix: '/rotor' });
  const app = new Hono();

  // The peer address feeds Rotor's rate limits by address (and ROTOR_TRUST_PROXY).
  app.all('/rotor/*', (c) =>
    rotor.handler(c.req.raw, { remoteAddress: getConnInfo(c).remote.address }),
  );

  app.get('/', async (c) => {
    const caller = await rotor.getSession(c.req.raw.headers);
    if (caller) {
      return c.html(
        page(
          html`<p>Signed in as <b>${caller.user.email}</b>.</p>
            <button
              onclick="fetch('/rotor/auth/logout', { method: 'POST' }).then(() => location.reload())"
            >
              Sign out
            </button>`,
        ),
      );
    }
    // The refresh cookie is scoped to /rotor/auth, so this page cannot see it: the browser tries a
    // refresh itself, and comes back signed in when its session is still alive.
    return c.html(
      page(
        html`<p><a href="/sign-in">Sign in</a></p>
          <script>
            fetch('/rotor/auth/refresh', { method: 'POST' }).then((r) => r.ok && location.reload());
          </script>`,
      ),
    );
  });

  app.get('/sign-in', (c) =>
    c.html(
      page(
        html`<form id="f">
            <input name="email" type="email" placeholder="email" required />
            <input name="password" type="password" placeholder="password" required />
            <button>Sign in</button>
          </form>
          <script>
            const f = document.querySelector('form');
            f.onsubmit = async (event) => {
              event.preventDefault();
              const response = await fetch('/rotor/auth/login', {
                method: 'POST',
                headers: { 'content-type': 'application/json', 'token-delivery': 'cookies' },
                body: JSON.stringify(Object.fromEntries(new FormData(f))),
              });
              if (response.ok) location.href = '/';
              else alert((await response.json()).message);
            };
          </script>`,
      ),
    ),
  );

  app.get('/api/me', async (c) => {
    const caller = await rotor.getSession(c.req.raw.headers);
    if (!caller) {
      c.header('WWW-Authenticate', 'Bearer');
      return c.json({ error: 'unauthenticated' }, 401);
    }
    const { user, session } = caller;
    return c.json({ user: { id: user.id, email: user.email }, sessionId: session.id });
  });

  return { app, rotor };
}

/** @param {unknown} body */
const page = (body) =>
  html`<!doctype html>
    <html>
      <head>
        <title>Hono + Rotor</title>
      </head>
      <body>
        ${body}
      </body>
    </html>`;
