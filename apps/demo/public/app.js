// Rotor's demo page: the client SDK's browser bundle, and nothing else.
import { createRotorClient, takeAccountLink } from './rotor-client.js';
import { duration, Timeline, TRIGGERS } from './timeline.js';

// An account mail's link (`/#reset-password=<token>`, issue 17) is read and cut from the address
// bar before any other work or request of this page: the token then never stays in the history, a
// bookmark or a shared screen, and no request can carry it in a URL or a Referer. Only the module's
// imports (this origin's files, fetched without the fragment) load before this line.
const accountLink = takeAccountLink();

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

/** The log, newest first; entries are numbered from the first, so a number stays with its entry. */
let entries = 0;
function log(message) {
  const item = document.createElement('li');
  item.value = ++entries;
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  item.append(time, message);
  // The numbers' column widens with them ("9." → "10."): style.css reads --digits.
  $('log').style.setProperty('--digits', String(String(entries).length));
  $('log').prepend(item);
}

/** A path for the log: the page calls its own origin, so the origin says nothing. */
function path(url) {
  return url.startsWith(location.origin) ? url.slice(location.origin.length) : url;
}

/** Set while the page calls `GET /auth/me` by itself (not for a click), to say so in the log. */
let pageCheck = null;
function caller(url) {
  return pageCheck && path(url) === '/auth/me' ? ` (${pageCheck})` : '';
}

/** `session_expired (reason: idle)`: the error code of a refusal and the server's reason. */
async function refusal(response) {
  const body = await response
    .clone()
    .json()
    .catch(() => ({}));
  const code = typeof body.error === 'string' ? body.error : `HTTP ${response.status}`;
  return { code, text: body.details?.reason ? `${code} (reason: ${body.details.reason})` : code };
}

/** While the page restores its session at load, and what the refresh cookie answered. */
let restoring = false;
let restoredFromCookie = false;
let restoreRefused = null;
/** Set while this page signs in (a form), so that a sign-in of another tab is told apart. */
let signingIn = false;

/**
 * The SDK's fetch, watched: the answers the SDK acts on without an event of its own are logged as
 * they arrive, before the SDK acts on them, so that a cause is logged before its effect (a
 * `401 session_revoked`, then the sign-out it causes; a refused refresh, then the sign-out).
 */
async function watchedFetch(input, init = {}) {
  const response = await fetch(input, init);
  const url = path(input instanceof Request ? input.url : String(input));
  const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  if (url === '/auth/refresh') {
    if (restoring) {
      if (response.ok) restoredFromCookie = true;
      else restoreRefused = await refusal(response);
    } else if (!response.ok) {
      const refused = await refusal(response);
      const note =
        refused.code === 'missing_token'
          ? ' (no refresh cookie left: the browser deletes it when the idle window ends)'
          : '';
      log(`${method} ${url} → ${response.status} ${refused.text}: the refresh is refused${note}`);
    }
  } else if (response.status === 401) {
    const refused = await refusal(response);
    if (refused.code === 'session_revoked' || refused.code === 'session_expired')
      log(`${method} ${url}${caller(url)} → 401 ${refused.text}`);
  }
  return response;
}

// Off by default so seed 003's timeline plays: the access token expires, the next call refreshes,
// and a session left idle past the refresh lifetime ends. `dpop`: the session is bound to a key
// this browser keeps in IndexedDB and cannot export (RFC 9449), so a copied token is useless.
const rotor = createRotorClient({
  baseUrl: '',
  delivery: 'split',
  autoRefresh: params.get('auto') === '1',
  fetch: watchedFetch,
  dpop: true,
});
$('auto-refresh').checked = params.get('auto') === '1';

/** The words for an error: a link that no longer works says what to do; others the server's. */
function errorText(error) {
  if (error?.code === 'invalid_link')
    return 'This link no longer works: it was already used, it expired, or a newer one replaced it. Ask for a new one.';
  return error.message ?? String(error);
}

/** A button that runs `run` once per click, for a message's follow-up (send a link again). */
function actionButton({ label, run }) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'secondary';
  button.textContent = label;
  button.addEventListener('click', () => void run());
  return button;
}

/** Shows `error` (cleared when null), with a follow-up button when `action` is given. */
function showError(error, action) {
  $('error').textContent = error ? errorText(error) : '';
  if (error && action) $('error').append(' ', actionButton(action));
}

/**
 * Whether the development mailbox answers this browser: it exists only while the server keeps mail
 * in its outbox (ROTOR_SMTP_URL unset), and answers only this machine (loopback); else 404.
 */
let mailboxCheck = null;
function mailboxAvailable() {
  mailboxCheck ??= fetch('/dev/mailbox', { method: 'HEAD', cache: 'no-store' }).then(
    (response) => response.ok,
    () => false,
  );
  return mailboxCheck;
}

/**
 * A message about the account mails (null hides it); with `mailbox`, a link to the development
 * mailbox when it answers here. The latest call wins, even if an earlier one is still checking.
 */
let notices = 0;
async function notify(text, { mailbox = false } = {}) {
  const seq = ++notices;
  const showMailbox = text !== null && mailbox && (await mailboxAvailable());
  if (seq !== notices) return;
  const notice = $('notice');
  notice.hidden = text === null;
  notice.textContent = text ?? '';
  if (showMailbox) {
    const link = document.createElement('a');
    link.href = '/dev/mailbox';
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    link.textContent = 'Open the development mailbox';
    notice.append(' ', link);
  }
}

/** Asks for the verification link again (answered the same whether the address has an account). */
async function resendVerification(email) {
  showError(null);
  try {
    await rotor.requestEmailVerification(email);
    await notify(`If an account has this address, a link is on its way to ${email}.`, {
      mailbox: true,
    });
  } catch (error) {
    showError(error);
  }
}

/** A login refused with `email_not_verified` (ROTOR_REQUIRE_VERIFIED_EMAIL): what to do next. */
function showUnverified(email) {
  $('error').textContent =
    `Your email address ${email} is not verified yet: follow the link we mailed to it, then sign in.`;
  $('error').append(
    ' ',
    actionButton({ label: 'Send the link again', run: () => resendVerification(email) }),
  );
}

/** The form that asks for a reset link, opened (prefilled with `email` when given). */
function showForgot(email = '') {
  $('forgot-form').hidden = false;
  if (email) $('forgot-email').value = email;
  $('forgot-email').focus();
}

const timeline = new Timeline($('timeline'));

/**
 * Why the user is signed out, in words: the SDK's reason, and the server's `details.reason` (its
 * `detail`) when the server said. `revokedHere` is set when this page revoked its own device.
 */
let revokedHere = false;
function signOutMessage({ reason, detail }) {
  if (reason === 'logout') return 'Signed out.';
  if (reason === 'logout_all') return 'Signed out everywhere: every session of this account ended.';
  if (reason === 'reuse_detected' || detail === 'reuse_detected')
    return 'Signed out for safety: an old refresh token was used again (re-use detected), so the whole session was revoked.';
  if (reason === 'expired') {
    if (detail === 'max_age') return 'Signed out: the session reached its maximum lifetime.';
    if (detail === 'idle' || detail === undefined)
      return 'Signed out: idle too long. The session was not refreshed within its idle window.';
  }
  switch (detail) {
    case 'revoked':
      return revokedHere
        ? 'Signed out: you revoked this device in the device list.'
        : 'Signed out: this device was revoked from another device.';
    case 'logout_all':
      return 'Signed out: someone signed out everywhere from another device.';
    case 'logout':
      return 'Signed out: this session was signed out in another window.';
    case 'password_changed':
      return 'Signed out: the password was changed on another device.';
    case 'password_reset':
      return 'Signed out: the password was reset with a link mailed to this account; every session ended.';
    case 'email_change_undone':
      return 'Signed out: an email change was undone from the old address; every session ended.';
    case 'session_limit':
      return 'Signed out: a newer sign-in ended this least recently used session (too many devices).';
    case 'admin':
      return 'Signed out by an administrator.';
    default:
      return 'Signed out: the session was revoked.';
  }
}
let signedOutBecause = 'Signed out.';

let idleCheckDone = false;
function tick() {
  timeline.draw();
  const state = rotor.state;
  if (!state) return;
  const access = state.accessExpiresAt - Date.now();
  const refresh = state.refreshExpiresAt - Date.now();
  $('access-countdown').textContent = access > 0 ? duration(access) : 'expired';
  $('access-countdown').classList.toggle('low', access < 10_000);
  $('refresh-countdown').textContent = duration(refresh);
  $('refresh-countdown').classList.toggle('low', refresh < 10_000);
  // The idle lifetime is over: ask the server, which ends the session and says why. The log
  // labels the call as the page's own, not a click.
  if (refresh <= 0 && !idleCheckDone) {
    idleCheckDone = true;
    pageCheck = "the page's automatic check: the idle window is over";
    rotor
      .me()
      .then(
        (user) => log(`GET /auth/me (${pageCheck}) → 200 (${user.email}): still signed in`),
        () => {},
      )
      .finally(() => {
        pageCheck = null;
      });
  }
}

/** A reset link's token while its form waits for the new password; null otherwise. */
let resetToken = null;

function render() {
  const state = rotor.state;
  $('status').textContent = state ? '' : signedOutBecause;
  $('status').classList.toggle('ended', !state && signedOutBecause !== 'Signed out.');
  $('timeline-section').hidden = timeline.tokens.length === 0;
  $('reset-section').hidden = resetToken === null;
  $('signed-out').hidden = Boolean(state) || resetToken !== null;
  $('signed-in').hidden = !state;
  $('devices-section').hidden = !state;
  // Shown only when the server says the address is unproven (older servers send no field).
  const unverified = state?.user.emailVerified === false;
  $('verify-banner').hidden = !unverified;
  if (state) {
    $('user-email').textContent = state.user.name
      ? `${state.user.name} (${state.user.email})`
      : state.user.email;
    $('verify-address').textContent = state.user.email;
    $('binding').textContent =
      state.tokenType === 'DPoP'
        ? "Bound to this browser's key (DPoP): a copied token is useless without it."
        : 'Not bound to a key (Bearer tokens).';
    $('binding').classList.toggle('bound', state.tokenType === 'DPoP');
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
  const binding = document.createElement('div');
  binding.className = 'meta binding';
  binding.textContent = !session.dpopBound
    ? 'Not bound to a key (Bearer)'
    : session.current
      ? "Bound to this browser's key (DPoP)"
      : "Bound to its device's key (DPoP)";
  text.append(meta, binding);
  const revoke = document.createElement('button');
  revoke.type = 'button';
  revoke.className = 'secondary';
  // Revoking this very device is a sign-out of this page: the button says so.
  revoke.textContent = session.current ? 'Sign out this device' : 'Revoke';
  revoke.title = session.current
    ? 'Revokes this session: its tokens die now, and this page is signed out'
    : 'Revokes that session: its tokens die now, and its next call finds it signed out';
  revoke.setAttribute(
    'aria-label',
    session.current ? `Sign out this device (${name.textContent})` : `Revoke ${name.textContent}`,
  );
  revoke.dataset.sessionId = session.id;
  revoke.addEventListener('click', async () => {
    try {
      revokedHere = session.current;
      await rotor.revokeSession(session.id);
      log(`revoked device ${name.textContent}${session.current ? ' (this device)' : ''}`);
      if (session.current) {
        pageCheck = 'the page checks its own session';
        await rotor
          .me()
          .catch(() => {})
          .finally(() => {
            pageCheck = null;
          });
      }
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
  timeline.record(event);
  switch (event.type) {
    case 'signed-in': {
      revokedHere = false;
      // At load the page restores the session with POST /auth/refresh: the cookie's refresh
      // token is spent (rotated) and a new access token issued. That is no sign-in.
      const how =
        restoring && restoredFromCookie
          ? 'restored from the refresh cookie (refresh token rotated)'
          : signingIn
            ? 'signed in'
            : 'signed in by another tab';
      log(
        `${how}: access token #1 for ${duration(event.state.accessExpiresAt - Date.now())}, ` +
          `idle window ${duration(event.state.refreshExpiresAt - Date.now())}`,
      );
      break;
    }
    case 'token-refused':
      log(`${event.method} ${path(event.url)}${caller(event.url)} → 401 ${event.code}: refreshing`);
      break;
    case 'refreshed':
      log(
        `refreshed ${TRIGGERS[event.trigger] ?? event.trigger}: access token ` +
          `#${timeline.count} for ${duration(event.state.accessExpiresAt - Date.now())}, ` +
          `refresh token rotated, idle window slides to ${duration(event.state.refreshExpiresAt - Date.now())}`,
      );
      break;
    case 'retrying':
      log(`${event.method} ${path(event.url)} retried with access token #${timeline.count}`);
      break;
    case 'signed-out':
      signedOutBecause = signOutMessage(event);
      // The status line's words; the codes are on the answer logged just before.
      log(signedOutBecause);
      break;
  }
  if (event.type === 'token-refused' || event.type === 'retrying') return;
  render();
  timeline.draw();
  if (event.type !== 'signed-out') void loadDevices();
});

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(null);
  const form = new FormData(event.target);
  signingIn = true;
  try {
    await rotor.login({
      email: form.get('email'),
      password: form.get('password'),
      ...(form.get('deviceName') && { deviceName: form.get('deviceName') }),
    });
    event.target.reset();
  } catch (error) {
    if (error.code === 'email_not_verified') showUnverified(form.get('email'));
    else showError(error);
  } finally {
    signingIn = false;
  }
});

$('register-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(null);
  const form = new FormData(event.target);
  const input = { email: form.get('email'), password: form.get('password') };
  signingIn = true;
  try {
    await rotor.register({ ...input, ...(form.get('name') && { name: form.get('name') }) });
    log(`account created for ${input.email}`);
    event.target.reset();
    await rotor.login(input);
  } catch (error) {
    // With ROTOR_REQUIRE_VERIFIED_EMAIL the account exists now, but signs in only once verified.
    if (error.code === 'email_not_verified') showUnverified(input.email);
    else showError(error);
  } finally {
    signingIn = false;
  }
});

$('call-api').addEventListener('click', async () => {
  showError(null);
  try {
    const response = await rotor.fetch('/auth/me');
    const body = await response.json();
    // A refusal that signed the page out is in the log already, before the sign-out it caused.
    if (response.ok) log(`GET /auth/me → 200 (${body.user.email})`);
    else if (rotor.state) log(`GET /auth/me → ${response.status} ${body.error}`);
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

// The account mails (issue 17; docs/api.md, "Account mails").
$('forgot-open').addEventListener('click', () => showForgot($('login-email').value));

$('forgot-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(null);
  const email = new FormData(event.target).get('email');
  try {
    await rotor.requestPasswordReset(email);
    // The same answer whether or not an account has the address: the page cannot tell either.
    await notify('If an account has this address, a link is on its way.', { mailbox: true });
  } catch (error) {
    showError(error);
  }
});

$('reset-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(null);
  const password = new FormData(event.target).get('password');
  let recovered;
  try {
    recovered = await rotor.confirmPasswordReset(resetToken, password);
  } catch (error) {
    // A refused password spends no link: the form stays for another try. A dead link does not.
    if (error.code === 'invalid_link') {
      resetToken = null;
      render();
      showForgot();
    }
    showError(error);
    return;
  }
  resetToken = null;
  event.target.reset();
  const { user, sessionsEnded } = recovered;
  const sessions = sessionsEnded === 1 ? '1 session' : `${sessionsEnded} sessions`;
  log(`password reset with the mailed link: ${sessions} of the account ended`);
  render();
  // The reset signs nobody in (OWASP): the page signs in with the password just typed.
  signingIn = true;
  try {
    await rotor.login({ email: user.email, password });
    await notify(
      `New password set, and you are signed in. Every other session of this account was signed out (${sessions}).`,
    );
  } catch (error) {
    showError(error);
  } finally {
    signingIn = false;
  }
});

$('verify-resend').addEventListener('click', () => {
  if (rotor.state) void resendVerification(rotor.state.user.email);
});

$('change-email-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(null);
  const form = new FormData(event.target);
  const newEmail = form.get('newEmail');
  try {
    await rotor.changeEmail(newEmail, form.get('password'));
    event.target.reset();
    $('change-email').open = false;
    await notify(
      `Almost done: follow the link we mailed to ${newEmail} to confirm the change. Your current address got a notice with a link that undoes it.`,
      { mailbox: true },
    );
  } catch (error) {
    showError(error);
  }
});

/** Acts on an account mail's link: the reset form waits for a password; the others act at once. */
async function followLink({ action, token }) {
  showError(null);
  if (action === 'reset-password') {
    resetToken = token;
    render();
    $('reset-password').focus();
    return;
  }
  try {
    if (action === 'verify-email') {
      // Signed in as the account, the SDK refreshes: the banner goes, the token says verified.
      const user = await rotor.verifyEmail(token);
      log(`email verified: ${user.email}`);
      await notify(`Email verified: ${user.email} is proven.`);
    } else if (action === 'confirm-email') {
      const user = await rotor.confirmEmailChange(token);
      log(`email changed to ${user.email}`);
      await notify(`Email changed: this account's address is now ${user.email}.`);
    } else if (action === 'undo-email-change') {
      const { user, sessionsEnded } = await rotor.undoEmailChange(token);
      log(`email change undone: back to ${user.email}, ${sessionsEnded} session(s) ended`);
      // Whoever changed the address knew the password: the form to replace it, ready.
      showForgot(user.email);
      await notify(
        'Your address is back; every session was signed out. Reset your password now: whoever changed the address knew it.',
      );
    }
  } catch (error) {
    showError(error);
  }
}

// A link pasted into this tab while it is open changes only the fragment: no load, so no
// takeAccountLink() at the top. The same steps here.
window.addEventListener('hashchange', () => {
  const link = takeAccountLink();
  if (link) void followLink(link);
});
// The reset form needs no session check: shown at once.
if (accountLink?.action === 'reset-password') void followLink(accountLink);

setInterval(tick, 250);
// A reload keeps the user signed in: the refresh cookie buys a new access token. Without a live
// session the refresh is refused (401); the browser's console shows that expected 401 as "Failed
// to load resource", and the log says what it was.
restoring = true;
rotor
  .restore()
  .then(
    (user) => {
      if (user) return;
      const why =
        restoreRefused?.code === 'missing_token'
          ? 'no refresh cookie'
          : 'the refresh cookie’s session is over';
      log(
        `no session to restore: POST /auth/refresh → 401 ${restoreRefused?.text ?? ''} (${why}). ` +
          'Sign in or create an account.',
      );
      render();
    },
    (error) => {
      render();
      showError(error);
    },
  )
  .finally(() => {
    restoring = false;
    // After the restore, so that a page signed in as the account hears what the link did to it
    // (verified: refreshed; undone: signed out).
    if (accountLink && accountLink.action !== 'reset-password') void followLink(accountLink);
  });
