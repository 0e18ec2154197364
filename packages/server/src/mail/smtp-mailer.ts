import { createTransport } from 'nodemailer';
import { ConfigError } from '../errors.js';
import type { Mailer, MailMessage } from './mailer.js';

/** Where and as whom {@link createSmtpMailer} sends. */
export interface SmtpMailerOptions {
  /**
   * `ROTOR_SMTP_URL`: `smtp://user:pass@host:587` (STARTTLS when the server offers it) or
   * `smtps://user:pass@host:465` (TLS from the start); user and password percent-encoded. Query
   * parameters are nodemailer's transport options (`?maxConnections=2`, `?requireTLS=true`).
   */
  url: string;
  /** `ROTOR_MAIL_FROM`: the sender, `Name <address>` or a bare address. */
  from: string;
}

/** The failure of one send, its message free of the SMTP password. */
export class SmtpSendError extends Error {
  /** nodemailer's code (`EAUTH`, `ECONNECTION`, `ETIMEDOUT`, `EENVELOPE`, `EMESSAGE`…). */
  readonly code: string | undefined;
  /** The server's reply code when it refused (`535`, `550`…); retried all the same. */
  readonly responseCode: number | undefined;

  constructor(message: string, code: string | undefined, responseCode: number | undefined) {
    super(message);
    this.name = 'SmtpSendError';
    this.code = code;
    this.responseCode = responseCode;
  }
}

/**
 * Timeouts shorter than nodemailer's (2 min to connect, 10 min of silence): a server that hangs
 * holds a slot of the queue's few, and the queue retries anyway.
 */
const TRANSPORT_DEFAULTS = {
  pool: true,
  // The queue sends at most 4 at once (mail-queue.ts); more connections would sit idle.
  maxConnections: 4,
  connectionTimeout: 10_000,
  greetingTimeout: 10_000,
  socketTimeout: 60_000,
  // Rotor's mails are strings: never let a message field make nodemailer read a file or a URL.
  disableFileAccess: true,
  disableUrlAccess: true,
} as const;

/**
 * The production {@link Mailer} (issue 17): a pooled SMTP transport through nodemailer, which
 * sends each message as text and HTML alternatives. `send` rejects with an {@link SmtpSendError}
 * whose message never contains the password (nor its percent-encoded form), and which keeps no
 * `cause` (nodemailer's error carries the transport's state). `close()` ends the pool's
 * connections, even one in the middle of a delivery: call it after `MailQueue.close`, which waited
 * for what could still be sent.
 * @throws ConfigError (`ROTOR_SMTP_URL`) when the URL is not `smtp:` or `smtps:` with a host;
 * (`ROTOR_MAIL_FROM`) when `from` is empty. The URL is never repeated in the message.
 * @example const mailer = createSmtpMailer({ url: 'smtps://rotor:secret@mail.example.com', from: 'Example <no-reply@example.com>' });
 */
export function createSmtpMailer({ url, from }: SmtpMailerOptions): Mailer {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('ROTOR_SMTP_URL', 'is not a URL; write smtp://user:pass@host:587.');
  }
  if (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') {
    throw new ConfigError(
      'ROTOR_SMTP_URL',
      `must start with smtp:// or smtps://, not ${parsed.protocol.slice(0, 20)}//.`,
    );
  }
  if (parsed.hostname === '') {
    throw new ConfigError('ROTOR_SMTP_URL', 'names no host; write smtp://user:pass@host:587.');
  }
  if (from.trim() === '') {
    throw new ConfigError('ROTOR_MAIL_FROM', 'is empty; write Name <no-reply@example.com>.');
  }
  const secrets = secretsOf(parsed);
  const server = `${parsed.hostname}${parsed.port === '' ? '' : `:${parsed.port}`}`;
  const transport = createTransport({ ...TRANSPORT_DEFAULTS, url });

  return {
    async send(message: MailMessage): Promise<void> {
      try {
        await transport.sendMail({
          from,
          to: message.to,
          subject: message.subject,
          text: message.text,
          html: message.html,
        });
      } catch (error) {
        const e = error as { message?: unknown; code?: unknown; responseCode?: unknown };
        throw new SmtpSendError(
          redact(`SMTP ${server} did not take the mail: ${String(e.message)}`, secrets),
          typeof e.code === 'string' ? e.code : undefined,
          typeof e.responseCode === 'number' ? e.responseCode : undefined,
        );
      }
    },
    async close(): Promise<void> {
      transport.close({ force: true });
    },
  };
}

/** The password as the URL spells it and as the server receives it, for {@link redact}. */
function secretsOf(url: URL): string[] {
  if (url.password === '') return [];
  let decoded = url.password;
  try {
    decoded = decodeURIComponent(url.password);
  } catch {
    // A malformed escape: nodemailer gets the text as written, which is already in the list.
  }
  return [...new Set([url.password, decoded])].filter((secret) => secret !== '');
}

/** `text` with every occurrence of each secret replaced. */
function redact(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) result = result.split(secret).join('[redacted]');
  return result;
}
