// Rotor's demo page: the client SDK's browser bundle, and nothing else.
import { createRotorClient } from './rotor-client.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// Off by default so seed 003's timeline plays: the access token expires, the next call refreshes,
// and a session left idle past the refresh lifetime ends.
const rotor = createRotorClient({
  baseUrl: '',
  delivery: 'split',
  autoRefresh: params.get('auto') === '1',
});
$('auto-refresh').checked = params.get('auto') === '1';

function log(message) {
  const item = document.createElement('li');
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  item.append(time, message);
  $('log').prepend(item);
}

function showError(error) {
  $('error').textContent = error ? (error.message ?? String(error)) : '';
}

function seconds(ms) {
  return `${Math.max(0, Math.ceil(ms / 1000))} s`;
}

let idleCheckDone = false;
function tick() {
  const state = rotor.state;
  if (!state) return;
  const access = state.accessExpiresAt - Date.now();
  const refresh = state.refreshExpiresAt - Date.now();
  $('access-countdown').textContent = access > 0 ? seconds(access) : 'expired';
  $('access-countdown').classList.toggle('low', access < 10_000);
  $('refresh-countdown').textContent = seconds(refresh);
  $('refresh-countdown').classList.toggle('low', refresh < 10_000);
  // The idle lifetime is over: ask the server, which ends the session and says why.
  if (refresh <= 0 && !idleCheckDone) {
    idleCheckDone = true;
    rotor.me().catch(() => {});
  }
}

function render() {
  const state = rotor.state;
  $('status').textContent = state ? '' : 'Signed out.';
  $('signed-out').hidden = Boolean(state);
  $('signed-in').hidden = !state;
  if (state) {
    $('user-email').textContent = state.user.name
      ? `${state.user.name} (${state.user.email})`
      : state.user.email;
    idleCheckDone = false;
    tick();
  }
}

function deviceItem(session) {
  const item = document.createElement('li');
  const text = document.createElement('div');
  const name = document.createElement('strong');
  name.textContent = session.deviceName ?? 'Unnamed device';
  text.append(name);
  if (session.current) {
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.textContent = 'this device';
    text.append(badge);
  }
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.textContent = `${session.ip ?? 'unknown IP'} · last used ${new Date(session.lastUsedAt).toLocaleTimeString()}`;
  text.append(meta);
  const revoke = document.createElement('button');
  revoke.type = 'button';
  revoke.className = 'secondary';
  revoke.textContent = 'Revoke';
  revoke.setAttribute(
    'aria-label',
    `Revoke ${name.textContent}${session.current ? ' (this device)' : ''}`,
  );
  revoke.dataset.sessionId = session.id;
  revoke.addEventListener('click', async () => {
    try {
      await rotor.revokeSession(session.id);
      log(`revoked device ${name.textContent}`);
      if (session.current) await rotor.me().catch(() => {});
      await loadDevices();
    } catch (error) {
      showError(error);
    }
  });
  item.append(text, revoke);
  return item;
}

// The device list is paged (GET /auth/sessions?limit=&cursor=): the first page, then more on demand.
let devicesCursor = null;
async function loadDevices(more = false) {
  if (!rotor.state) return;
  try {
    const page = await rotor.listSessions({ cursor: more ? devicesCursor : null });
    const items = page.sessions.map(deviceItem);
    if (more) $('devices').append(...items);
    else $('devices').replaceChildren(...items);
    devicesCursor = page.nextCursor;
    $('more-devices').hidden = devicesCursor === null;
  } catch (error) {
    showError(error);
  }
}
$('more-devices').addEventListener('click', () => void loadDevices(true));

rotor.subscribe((event) => {
  if (event.type === 'signed-in')
    log(`signed in; access token valid for ${seconds(event.state.accessExpiresAt - Date.now())}`);
  if (event.type === 'refreshed')
    log(
      `refreshed: new access token for ${seconds(event.state.accessExpiresAt - Date.now())}, refresh token rotated`,
    );
  if (event.type === 'signed-out') log(`signed out: ${event.reason.replace('_', ' ')}`);
  render();
  if (event.type !== 'signed-out') void loadDevices();
});

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(null);
  const form = new FormData(event.target);
  try {
    await rotor.login({
      email: form.get('email'),
      password: form.get('password'),
      ...(form.get('deviceName') && { deviceName: form.get('deviceName') }),
    });
    event.target.reset();
  } catch (error) {
    showError(error);
  }
});

$('register-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(null);
  const form = new FormData(event.target);
  const input = { email: form.get('email'), password: form.get('password') };
  try {
    await rotor.register({ ...input, ...(form.get('name') && { name: form.get('name') }) });
    log(`account created for ${input.email}`);
    await rotor.login(input);
    event.target.reset();
  } catch (error) {
    showError(error);
  }
});

$('call-api').addEventListener('click', async () => {
  showError(null);
  try {
    const response = await rotor.fetch('/auth/me');
    const body = await response.json();
    log(
      `GET /auth/me → ${response.status}${response.ok ? ` (${body.user.email})` : ` ${body.error}`}`,
    );
  } catch (error) {
    showError(error);
  }
});

$('auto-refresh').addEventListener('change', (event) => {
  rotor.setAutoRefresh(event.target.checked);
  log(`automatic refresh ${event.target.checked ? 'on' : 'off'}`);
});

$('logout').addEventListener('click', () => rotor.logout().catch(showError));
$('logout-all').addEventListener('click', () => rotor.logoutAll().catch(showError));

setInterval(tick, 250);
// A reload keeps the user signed in: the refresh cookie buys a new access token.
rotor.restore().then(
  (user) => {
    if (!user) render();
  },
  (error) => {
    render();
    showError(error);
  },
);
