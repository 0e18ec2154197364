import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { canonicalAddress } from '../lib/ip-address.js';
import { LIMITS, type LimitRule } from '../limits/rules.js';
import { RotorNames } from '../store/naming.js';
import { parseDuration } from './duration.js';

/** Token delivery modes of API.md. */
export type Delivery = 'split' | 'cookies' | 'body';

/** An OAuth client: public without a secret, confidential with one. */
export interface OAuthClient {
  id: string;
  secret?: string;
}

/** A proxy of `ROTOR_TRUST_PROXY`: one address, or a network in CIDR notation (RFC 4632). */
export interface TrustedProxy {
  family: 'ipv4' | 'ipv6';
  address: string;
  /** Leading bits that must match: 32 or 128 for a single address. */
  prefix: number;
}

/**
 * Which entries of `X-Forwarded-For` Rotor believes (`ROTOR_TRUST_PROXY`): the right-most `hops`
 * (the socket's peer counting as the first), or every hop whose address is one of `proxies`. The
 * client address is the first hop, walking leftwards from the socket, that is not trusted.
 * `{ hops: 0 }` trusts nothing: the client is the socket's peer.
 */
export type TrustProxy = { hops: number } | { proxies: TrustedProxy[] };

/** Validated configuration of one Rotor server. Durations are in seconds. */
export interface RotorConfig {
  host: string;
  port: number;
  databaseUrl: string;
  /** PostgreSQL connections per instance. */
  databasePoolSize: number;
  /** PostgreSQL schema of Rotor's tables (`ROTOR_DATABASE_SCHEMA`); undefined: the search_path. */
  databaseSchema: string | undefined;
  /** Put before the name of every table Rotor creates (`ROTOR_TABLE_PREFIX`); '' for none. */
  tablePrefix: string;
  accessTtl: number;
  refreshTtl: number;
  /** Maximum session lifetime in seconds; 0 disables it. */
  sessionMaxAge: number;
  refreshGrace: number;
  /** Live sessions per user (`ROTOR_MAX_SESSIONS`); a login past it ends the least recently used. */
  maxSessions: number;
  issuer: string;
  audience: string;
  allowedOrigins: string[];
  cookieSecure: boolean;
  rateLimit: boolean;
  /** `ROTOR_REDIS_URL`: where login and sign-up limits live instead of the database. */
  redisUrl: string | undefined;
  /** The budgets of the rate limits (`ROTOR_RATE_LIMIT_*`, `N/duration`); blocks as in rules.ts. */
  rateLimits: RateLimitBudgets;
  /** When set, secrets are derived from it instead of being generated and kept in the database. */
  secret: string | undefined;
  /** `ROTOR_METRICS_TOKEN`: when set, `GET /metrics` wants it as a bearer token. */
  metricsToken: string | undefined;
  /**
   * `ROTOR_ADMIN_TOKEN`: the bearer token of the admin API (`/admin/*`: login tickets, users for
   * an external sign-in); unset, there is no admin API. At least 32 characters.
   */
  adminToken: string | undefined;
  /** `ROTOR_TRUST_PROXY`: the reverse proxies whose `X-Forwarded-For` entries are believed. */
  trustProxy: TrustProxy;
  /** `ROTOR_HEADERS_TIMEOUT`: seconds a client has to send a request's headers. */
  headersTimeoutSeconds: number;
  /** `ROTOR_REQUEST_TIMEOUT`: seconds a client has to send a whole request, headers and body. */
  requestTimeoutSeconds: number;
  /** OAuth 2.0 clients of `/oauth/*` (`ROTOR_OAUTH_CLIENTS`). */
  oauthClients: OAuthClient[];
  /** Seconds that ended sessions and expired rotated tokens are kept before pruning. */
  retention: number;
  /** Seconds audit events are kept (`ROTOR_AUDIT_RETENTION`, default 90 days); 0 keeps them. */
  auditRetention: number;
  /** Rotate the signing key when it is this many seconds old; 0 (default) rotates only on command. */
  keyRotation: number;
  /** Seconds between background pruning passes; 0 disables the job (run `rotor prune` instead). */
  pruneInterval: number;
  logLevel: string;
  /** The account mails (issue 17): how they are sent, what they link to, who must verify. */
  mail: MailConfig;
  /** Sender-constrained tokens (DPoP, RFC 9449; issue 18). */
  dpop: DpopConfig;
}

/** `ROTOR_DPOP`, `ROTOR_DPOP_NONCE` (issue 18). */
export interface DpopConfig {
  /**
   * `ROTOR_DPOP`: `optional` (default) binds a session to the key of a valid proof sent at sign-in
   * and accepts Bearer sessions beside; `required` refuses a login, refresh or token request
   * without a proof; `off` ignores proofs (a session bound before then can no longer refresh).
   */
  mode: 'off' | 'optional' | 'required';
  /** `ROTOR_DPOP_NONCE`: proofs must carry a nonce this server handed out (RFC 9449 §8). */
  nonce: boolean;
}

/** `ROTOR_SMTP_URL`, `ROTOR_MAIL_FROM`, `ROTOR_APP_URL`, `ROTOR_MAIL_TEMPLATES` (issue 17). */
export interface MailConfig {
  /**
   * `ROTOR_SMTP_URL` (`smtp://user:pass@host:587`, `smtps://…`): where mail is sent; unset, mail
   * goes to the development outbox (the log and the loopback-only mailbox page `/dev/mailbox`).
   */
  smtpUrl: string | undefined;
  /** `ROTOR_MAIL_FROM`: the sender, `Name <address>`; its name is the product's name in mails. */
  from: string;
  /**
   * `ROTOR_APP_URL`: the page the mails' links open, with the token in the fragment
   * (`#reset-password=…`); default the issuer's URL, where the demo page is.
   */
  appUrl: string;
  /** `ROTOR_MAIL_TEMPLATES`: a folder of templates replacing the defaults (mail/templates.ts). */
  templatesDir: string | undefined;
  /** `ROTOR_REQUIRE_VERIFIED_EMAIL`: a login with an unproven address is `email_not_verified`. */
  requireVerifiedEmail: boolean;
}

type Env = Record<string, string | undefined>;

export type RateLimitBudgets = Record<keyof typeof LIMITS, LimitRule>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads and validates the `ROTOR_*` variables (API.md, "Configuration"). An invalid value throws a
 * {@link ConfigError} naming the variable, so start-up stops with a clear message.
 * @example const config = loadConfig(process.env);
 */
export function loadConfig(
  env: Env = process.env,
  overrides: Partial<RotorConfig> = {},
): RotorConfig {
  const host = text(env, 'ROTOR_HOST', '127.0.0.1');
  const port = integer(env, 'ROTOR_PORT', 3000, 0, 65535);
  const ownUrl = `http://${urlHost(host)}:${port}`;
  const issuer = text(env, 'ROTOR_ISSUER', ownUrl);
  const config: RotorConfig = {
    host,
    port,
    databaseUrl: databaseUrl(env),
    databasePoolSize: integer(env, 'ROTOR_DATABASE_POOL_SIZE', 10, 1, 1000),
    ...tableNaming(env),
    ...lifetimes(env),
    sessionMaxAge: duration(env, 'ROTOR_SESSION_MAX_AGE', '30d', 0),
    refreshGrace: duration(env, 'ROTOR_REFRESH_GRACE', '10s', 0),
    maxSessions: integer(env, 'ROTOR_MAX_SESSIONS', 100, 1, 100_000),
    issuer,
    audience: text(env, 'ROTOR_AUDIENCE', 'rotor'),
    allowedOrigins: origins(env, defaultOrigins(host, port)),
    cookieSecure: boolean(env, 'ROTOR_COOKIE_SECURE', true),
    rateLimit: onOff(env, 'ROTOR_RATE_LIMIT', true),
    redisUrl: redisUrl(env),
    rateLimits: {
      loginAccount: budget(env, 'ROTOR_RATE_LIMIT_LOGIN', LIMITS.loginAccount),
      // A trusted device gets the account's budget, on its own.
      loginDevice: budget(env, 'ROTOR_RATE_LIMIT_LOGIN', LIMITS.loginDevice),
      loginAddress: budget(env, 'ROTOR_RATE_LIMIT_LOGIN_ADDRESS', LIMITS.loginAddress),
      register: budget(env, 'ROTOR_RATE_LIMIT_REGISTER', LIMITS.register),
      refreshSession: budget(env, 'ROTOR_RATE_LIMIT_REFRESH', LIMITS.refreshSession),
      accountMailEmail: budget(env, 'ROTOR_RATE_LIMIT_ACCOUNT_MAIL', LIMITS.accountMailEmail),
      accountMailAddress: budget(
        env,
        'ROTOR_RATE_LIMIT_ACCOUNT_MAIL_ADDRESS',
        LIMITS.accountMailAddress,
      ),
      refreshAddress: LIMITS.refreshAddress,
    },
    secret: secret(env),
    metricsToken: metricsToken(env),
    adminToken: adminToken(env),
    trustProxy: trustProxy(env),
    ...timeouts(env),
    oauthClients: oauthClients(env),
    retention: duration(env, 'ROTOR_RETENTION', '7d', 0),
    auditRetention: duration(env, 'ROTOR_AUDIT_RETENTION', '90d', 0),
    pruneInterval: duration(env, 'ROTOR_PRUNE_INTERVAL', '1h', 0),
    keyRotation: duration(env, 'ROTOR_KEY_ROTATION', '0', 0),
    logLevel: oneOf(env, 'ROTOR_LOG_LEVEL', 'info', LOG_LEVELS),
    mail: mail(env, issuer),
    dpop: {
      mode: oneOf(env, 'ROTOR_DPOP', 'optional', [
        'off',
        'optional',
        'required',
      ]) as DpopConfig['mode'],
      nonce: onOff(env, 'ROTOR_DPOP_NONCE', false),
    },
  };
  return { ...config, ...overrides };
}

/** The account mails' settings (issue 17). */
function mail(env: Env, issuer: string): MailConfig {
  const smtpUrl = raw(env, 'ROTOR_SMTP_URL');
  if (smtpUrl !== undefined && !/^smtps?:\/\/[^/]/.test(smtpUrl)) {
    throw new ConfigError(
      'ROTOR_SMTP_URL',
      `expected smtp://user:password@host:port or smtps://…, got "${smtpUrl.replace(/\/\/[^@/]*@/, '//***@')}"`,
    );
  }
  const from = text(env, 'ROTOR_MAIL_FROM', 'Rotor <no-reply@localhost>');
  if (!/^[^<>\r\n]*<[^<>@\s]+@[^<>@\s]+>$|^[^<>@\s]+@[^<>@\s]+$/.test(from)) {
    throw new ConfigError(
      'ROTOR_MAIL_FROM',
      `expected an address or "Name <address>", got "${from}"`,
    );
  }
  const appUrl = text(env, 'ROTOR_APP_URL', issuer.endsWith('/') ? issuer : `${issuer}/`);
  let parsed: URL;
  try {
    parsed = new URL(appUrl);
  } catch {
    throw new ConfigError('ROTOR_APP_URL', `expected an http(s) URL, got "${appUrl}"`);
  }
  if (!['http:', 'https:'].includes(parsed.protocol) || parsed.hash !== '') {
    throw new ConfigError(
      'ROTOR_APP_URL',
      `expected an http(s) URL without a #fragment (the token goes there), got "${appUrl}"`,
    );
  }
  return {
    smtpUrl,
    from,
    appUrl,
    templatesDir: raw(env, 'ROTOR_MAIL_TEMPLATES'),
    requireVerifiedEmail: boolean(env, 'ROTOR_REQUIRE_VERIFIED_EMAIL', false),
  };
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/** The server's own origin; on loopback both spellings a browser may use. */
function defaultOrigins(host: string, port: number): string[] {
  const own = `http://${urlHost(host)}:${port}`;
  const loopback = ['127.0.0.1', 'localhost', '0.0.0.0', '::', '::1'];
  if (!loopback.includes(host)) return [own];
  return [...new Set([own, `http://localhost:${port}`, `http://127.0.0.1:${port}`])];
}

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** Where Rotor's tables are in a database shared with an application (store/naming.ts). */
function tableNaming(env: Env): { databaseSchema: string | undefined; tablePrefix: string } {
  const databaseSchema = raw(env, 'ROTOR_DATABASE_SCHEMA') || undefined;
  const tablePrefix = raw(env, 'ROTOR_TABLE_PREFIX') ?? '';
  if (databaseSchema !== undefined && databaseUrl(env).startsWith('sqlite:')) {
    throw new ConfigError(
      'ROTOR_DATABASE_SCHEMA',
      'schemas are PostgreSQL only: with SQLite, keep Rotor apart with ROTOR_TABLE_PREFIX (e.g. rotor_)',
    );
  }
  // Checked now, naming the variable, rather than at the first query.
  new RotorNames({ schema: databaseSchema, tablePrefix });
  return { databaseSchema, tablePrefix };
}

function text(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got "${value}"`);
  }
  return Number(value);
}

function duration(env: Env, name: string, fallback: string, min: number): number {
  const value = raw(env, name) ?? fallback;
  const seconds = parseDuration(value);
  if (seconds === undefined || seconds < min) {
    throw new ConfigError(
      name,
      `expected a duration such as 30s, 15m, 7d or a number of seconds${min > 0 ? ' above 0' : ''}, got "${value}"`,
    );
  }
  return seconds;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(name, `expected true or false, got "${value}"`);
}

function onOff(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new ConfigError(name, `expected on or off, got "${value}"`);
}

function oneOf(env: Env, name: string, fallback: string, allowed: string[]): string {
  const value = raw(env, name) ?? fallback;
  if (!allowed.includes(value)) {
    throw new ConfigError(name, `expected one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value;
}

function databaseUrl(env: Env): string {
  const value = text(env, 'ROTOR_DATABASE_URL', 'sqlite:./rotor.db');
  if (value.startsWith('sqlite:')) {
    if (value.length === 'sqlite:'.length) {
      throw new ConfigError(
        'ROTOR_DATABASE_URL',
        'sqlite: needs a file path, e.g. sqlite:./rotor.db',
      );
    }
    return value;
  }
  if (/^postgres(ql)?:\/\//.test(value)) return value;
  throw new ConfigError(
    'ROTOR_DATABASE_URL',
    `expected sqlite:<path> or postgres://…, got "${value.replace(/\/\/[^@/]*@/, '//***@')}"`,
  );
}

function origins(env: Env, fallback: string[]): string[] {
  const value = raw(env, 'ROTOR_ALLOWED_ORIGINS');
  if (value === undefined) return fallback;
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      let url: URL;
      try {
        url = new URL(entry);
      } catch {
        throw new ConfigError(
          'ROTOR_ALLOWED_ORIGINS',
          `"${entry}" is not an origin such as https://app.example.com`,
        );
      }
      if (url.origin === 'null' || url.origin !== entry.replace(/\/$/, '')) {
        throw new ConfigError(
          'ROTOR_ALLOWED_ORIGINS',
          `"${entry}" is not an origin such as https://app.example.com (no path)`,
        );
      }
      return url.origin;
    });
}

/** `N/duration` (`5/15m`): at most N attempts in any window of that length. */
function budget(env: Env, name: string, rule: LimitRule): LimitRule {
  const value = raw(env, name);
  if (value === undefined) return rule;
  const match = /^(\d{1,6})\/(.+)$/.exec(value);
  const seconds = match ? parseDuration(match[2]!) : undefined;
  if (!match || Number(match[1]) < 1 || seconds === undefined || seconds < 1) {
    throw new ConfigError(name, `expected N/duration such as 5/15m, got "${value}"`);
  }
  return { ...rule, limit: Number(match[1]), windowMs: seconds * 1000 };
}

function redisUrl(env: Env): string | undefined {
  const value = raw(env, 'ROTOR_REDIS_URL');
  if (value !== undefined && !/^rediss?:\/\/./.test(value)) {
    throw new ConfigError(
      'ROTOR_REDIS_URL',
      `expected redis://host:port or rediss://…, got "${value}"`,
    );
  }
  return value;
}

function secret(env: Env): string | undefined {
  const value = raw(env, 'ROTOR_SECRET');
  if (value !== undefined && value.length < 32) {
    throw new ConfigError(
      'ROTOR_SECRET',
      'must be at least 32 characters (e.g. `openssl rand -base64 32`)',
    );
  }
  return value;
}

function metricsToken(env: Env): string | undefined {
  const value = raw(env, 'ROTOR_METRICS_TOKEN');
  if (value !== undefined && value.length < 16) {
    throw new ConfigError('ROTOR_METRICS_TOKEN', 'must be at least 16 characters');
  }
  return value;
}

/** The admin API's bearer token: it starts sessions of any user, so no guessable one. */
function adminToken(env: Env): string | undefined {
  const value = raw(env, 'ROTOR_ADMIN_TOKEN');
  if (value !== undefined && value.length < 32) {
    throw new ConfigError(
      'ROTOR_ADMIN_TOKEN',
      `must be at least 32 characters (it signs in any user), got ${value.length}; generate one with \`openssl rand -base64 32\``,
    );
  }
  return value;
}

const TRUST_PROXY_FORMS =
  'expected a number of proxy hops in front of Rotor (e.g. 1), or a comma-separated list of the ' +
  "proxies' addresses and CIDRs (e.g. 10.0.0.0/8,127.0.0.1,fd00::/8)";

/**
 * `ROTOR_TRUST_PROXY`. `true` is refused: it meant the left-most `X-Forwarded-For` entry, which the
 * client writes itself, so every address limit could be dodged and any text stored as a session's
 * IP (RFC 7239 §8.1: forwarding headers cannot be relied on past the proxies one runs; MDN,
 * "X-Forwarded-For", "Selecting an IP address"). `false` and `0` keep their meaning: trust nothing.
 */
function trustProxy(env: Env): TrustProxy {
  const name = 'ROTOR_TRUST_PROXY';
  const value = raw(env, name);
  if (value === undefined || value.toLowerCase() === 'false') return { hops: 0 };
  if (/^\d+$/.test(value)) {
    if (Number(value) > 100) throw new ConfigError(name, `${TRUST_PROXY_FORMS}, got "${value}"`);
    return { hops: Number(value) };
  }
  if (['true', 'yes', 'on'].includes(value.toLowerCase())) {
    throw new ConfigError(
      name,
      `"${value}" would believe whatever the client writes in X-Forwarded-For; ${TRUST_PROXY_FORMS}`,
    );
  }
  const proxies = value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry): TrustedProxy => {
      const match = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry);
      const address = match ? canonicalAddress(match[1]!) : undefined;
      if (!match || address === undefined) {
        throw new ConfigError(
          name,
          `"${entry}" is not an IP address or CIDR; ${TRUST_PROXY_FORMS}`,
        );
      }
      // An IPv4-mapped address (::ffff:10.0.0.0/104) is judged as the IPv4 network it maps.
      const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
      const bits = family === 'ipv4' ? 32 : 128;
      const mapped = isIP(match[1]!) === 6 && family === 'ipv4' ? 96 : 0;
      const prefix = match[2] === undefined ? bits : Number(match[2]) - mapped;
      // A network wider than a /8 (IPv4) or the /7 of unique local addresses (IPv6) is no list of
      // proxies: 0.0.0.0/0 or ::/0 believes every client's X-Forwarded-For, as `true` did.
      const widest = family === 'ipv4' ? 8 : 7;
      if (prefix < widest || prefix > bits) {
        throw new ConfigError(
          name,
          `"${entry}": the prefix length must be ${widest} to ${bits} (a wider network trusts clients, not proxies)`,
        );
      }
      return { family, address, prefix };
    });
  if (proxies.length === 0) throw new ConfigError(name, `${TRUST_PROXY_FORMS}, got "${value}"`);
  return { proxies };
}

/**
 * `ROTOR_HEADERS_TIMEOUT` and `ROTOR_REQUEST_TIMEOUT`: how long a client may take to send a request.
 * Without them a client sending one byte every few seconds holds a socket open for as long as it
 * likes (slowloris; CWE-400, OWASP Denial of Service Cheat Sheet). Rotor's requests are small: headers
 * of a few hundred bytes, bodies of at most 64 KiB. 10 s for the headers leaves a mobile link with
 * seconds of latency and a retransmission or two room to spare; 30 s for the whole request carries
 * 64 KiB at about 20 kbit/s, slower than any link a person would use a login form on.
 */
function timeouts(env: Env): Pick<RotorConfig, 'headersTimeoutSeconds' | 'requestTimeoutSeconds'> {
  const headersTimeoutSeconds = duration(env, 'ROTOR_HEADERS_TIMEOUT', '10s', 1);
  const requestTimeoutSeconds = duration(env, 'ROTOR_REQUEST_TIMEOUT', '30s', 1);
  // Node refuses a headers timeout longer than the request timeout (the headers are part of it).
  if (headersTimeoutSeconds > requestTimeoutSeconds) {
    throw new ConfigError(
      'ROTOR_HEADERS_TIMEOUT',
      `must not be longer than ROTOR_REQUEST_TIMEOUT (${requestTimeoutSeconds}s), got ${headersTimeoutSeconds}s`,
    );
  }
  return { headersTimeoutSeconds, requestTimeoutSeconds };
}

/**
 * `ROTOR_ACCESS_TTL` and `ROTOR_REFRESH_TTL`. An access token outliving the refresh token makes no
 * working setup: the session's idle expiry passes while its access token is still valid, so the
 * first refresh a client makes is `session_expired`, and a revoked-by-idleness session keeps
 * passing stateless verifiers for the rest of the access token's life. Equal is allowed.
 */
function lifetimes(env: Env): Pick<RotorConfig, 'accessTtl' | 'refreshTtl'> {
  const accessTtl = duration(env, 'ROTOR_ACCESS_TTL', '15m', 1);
  const refreshTtl = duration(env, 'ROTOR_REFRESH_TTL', '7d', 1);
  if (accessTtl > refreshTtl) {
    throw new ConfigError(
      'ROTOR_ACCESS_TTL',
      `must not be longer than ROTOR_REFRESH_TTL (${refreshTtl}s), got ${accessTtl}s: sessions would end idle while their access tokens still worked`,
    );
  }
  return { accessTtl, refreshTtl };
}

function oauthClients(env: Env): OAuthClient[] {
  const name = 'ROTOR_OAUTH_CLIENTS';
  const value = raw(env, name);
  if (value === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new ConfigError(
      name,
      'expected a JSON array such as [{"id":"mobile"},{"id":"api","secret":"…"}]',
    );
  }
  if (!Array.isArray(parsed)) throw new ConfigError(name, 'expected a JSON array of clients');
  const ids = new Set<string>();
  return parsed.map((entry: unknown, index) => {
    const client = entry as { id?: unknown; secret?: unknown };
    if (
      typeof client !== 'object' ||
      client === null ||
      typeof client.id !== 'string' ||
      !/^[\x21-\x7e]{1,100}$/.test(client.id)
    ) {
      throw new ConfigError(
        name,
        `entry ${index}: "id" must be 1 to 100 printable ASCII characters`,
      );
    }
    if (ids.has(client.id))
      throw new ConfigError(name, `entry ${index}: duplicate id "${client.id}"`);
    ids.add(client.id);
    if (client.secret === undefined) return { id: client.id };
    if (typeof client.secret !== 'string' || client.secret.length < 16) {
      throw new ConfigError(
        name,
        `entry ${index} ("${client.id}"): "secret" must be a string of at least 16 characters`,
      );
    }
    return { id: client.id, secret: client.secret };
  });
}
