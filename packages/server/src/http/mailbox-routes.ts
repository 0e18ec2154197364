import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RotorError } from '../errors.js';
import { canonicalAddress } from '../lib/ip-address.js';
import type { DevOutbox, OutboxMessage } from '../mail/dev-outbox.js';
import { escapeHtml } from '../mail/templates.js';

/**
 * No script at all, styles only inline, no frames, forms or base: the page shows mail text that
 * anyone who can make Rotor send mail chose in part (an address, an app name).
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; " +
  "frame-ancestors 'none'";

/**
 * Headers a proxy adds. Through a reverse proxy on the same host every client's socket is
 * loopback, so a request that came through one is not taken for the developer's own. `Via` is the
 * header RFC 9110 §7.6.3 requires of every proxy; the rest are what common ones send instead.
 */
const PROXY_HEADERS = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'via',
] as const;

/** A loopback name in `Host`, with any port: `localhost`, `127.x.x.x`, `[::1]`. */
const LOOPBACK_HOST = /^(?:localhost|(127(?:\.\d{1,3}){3})|\[::1\])(?::\d{1,5})?$/i;

/**
 * Whether `request` comes from this machine, as the mailbox requires: the socket's peer is
 * loopback (127.0.0.0/8, `::1`, `::ffff:127.x`), no proxy header is present, and `Host` names a
 * loopback address (so a page on another site cannot read the mailbox through DNS rebinding: its
 * requests carry its own host name).
 */
export function isLoopbackRequest(request: Pick<FastifyRequest, 'socket' | 'headers'>): boolean {
  const peer = request.socket.remoteAddress;
  const address = peer === undefined ? undefined : canonicalAddress(peer);
  if (address === undefined || !(address === '::1' || /^127\./.test(address))) return false;
  if (PROXY_HEADERS.some((name) => request.headers[name] !== undefined)) return false;
  const host = LOOPBACK_HOST.exec(request.headers.host ?? '');
  if (host === null) return false;
  // `127.999.0.1` matches the pattern but is no address.
  return host[1] === undefined || canonicalAddress(host[1]) !== undefined;
}

/** Answers 404, as for an unknown path, to anyone but a loopback client. */
async function loopbackOnly(request: FastifyRequest): Promise<void> {
  if (!isLoopbackRequest(request)) throw new RotorError('not_found');
}

/** A message in the JSON answer: the outbox's, with `at` as an ISO 8601 time. */
function toJson(message: OutboxMessage) {
  return {
    id: message.id,
    kind: message.kind,
    to: message.to,
    subject: message.subject,
    text: message.text,
    html: message.html,
    link: message.link ?? null,
    at: new Date(message.atMs).toISOString(),
  };
}

/** One message of the page: its address, subject and time, the link, and the text part. */
function messageHtml(message: OutboxMessage): string {
  const at = new Date(message.atMs).toISOString();
  const link =
    message.link === undefined
      ? ''
      : `<p><a href="${escapeHtml(message.link)}" rel="noreferrer">${escapeHtml(message.link)}</a></p>`;
  return (
    `<article><h2>${escapeHtml(message.subject)}</h2>` +
    `<p class="meta">To ${escapeHtml(message.to)} · <time datetime="${at}">${at}</time> · ` +
    `${escapeHtml(message.kind)}</p>${link}<pre>${escapeHtml(message.text)}</pre></article>`
  );
}

/** The mailbox page: plain HTML, no script (the CSP forbids any). */
function pageHtml(messages: readonly OutboxMessage[]): string {
  const body =
    messages.length === 0
      ? '<p>No mail yet. What Rotor sends while ROTOR_SMTP_URL is unset shows here; reload to see new mail.</p>'
      : messages.map(messageHtml).join('\n');
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>Rotor development mailbox</title><style>` +
    `body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#111827}` +
    `article{border:1px solid #d1d5db;border-radius:6px;padding:0 1rem;margin:1rem 0}` +
    `h2{font-size:1.1rem}.meta{color:#4b5563}a{color:#1d4ed8;word-break:break-all}` +
    `pre{white-space:pre-wrap;background:#f3f4f6;padding:.75rem;border-radius:4px}` +
    `</style></head><body><h1>Development mailbox</h1>` +
    `<p>The latest mails, newest first. Only this machine sees this page.</p>\n${body}\n` +
    `</body></html>\n`
  );
}

/** Headers of both answers: never cached, never a referrer (the links hold tokens). */
function privateAnswer(reply: FastifyReply): FastifyReply {
  return reply
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('x-content-type-options', 'nosniff');
}

/** Pages for people and tests, not API: left out of the OpenAPI document. */
const OPTIONS = { schema: { hide: true }, onRequest: loopbackOnly };

/**
 * The development mailbox of {@link DevOutbox} (issue 17), for loopback clients only
 * ({@link isLoopbackRequest}); anyone else gets Rotor's 404 `not_found`, as for a path that does
 * not exist. `GET /dev/mailbox`: an HTML page, newest first, each mail's address, subject, time,
 * link and text. `GET /dev/mailbox/messages`: `{ messages: [{ id, kind, to, subject, text, html,
 * link (or null), at (ISO 8601) }] }`, newest first, for the demo page and tests.
 * @example await app.register(mailboxRoutes, { outbox });
 */
export async function mailboxRoutes(
  app: FastifyInstance,
  { outbox }: { outbox: DevOutbox },
): Promise<void> {
  app.get('/dev/mailbox', OPTIONS, async (_request, reply) =>
    privateAnswer(reply)
      .type('text/html; charset=utf-8')
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .send(pageHtml(outbox.list())),
  );
  app.get('/dev/mailbox/messages', OPTIONS, async (_request, reply) =>
    privateAnswer(reply).send({ messages: outbox.list().map(toJson) }),
  );
}
