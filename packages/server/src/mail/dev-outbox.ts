import type { Clock } from '../clock.js';
import { newId } from '../lib/ids.js';
import type { Mailer, MailKind, MailMessage } from './mailer.js';

/** A mail the {@link DevOutbox} kept. */
export interface OutboxMessage {
  /** A new random id (UUID). */
  id: string;
  /** When it was sent, in ms since the epoch, from the outbox's clock. */
  atMs: number;
  kind: MailKind;
  to: string;
  subject: string;
  text: string;
  html: string;
  /** The first `http(s)` link of the text part (the one the default templates carry), if any. */
  link: string | undefined;
}

/** Where the outbox announces each mail: one line and its fields (a pino logger's `info` fits). */
export type OutboxLog = (
  line: string,
  fields: { kind: MailKind; to: string; subject: string; link: string | undefined },
) => void;

/** What the outbox is built with. */
export interface DevOutboxOptions {
  clock: Clock;
  log: OutboxLog;
  /** How many messages it keeps; the oldest go first. Default 50. */
  capacity?: number;
}

/** An http(s) URL in text, up to the first space or a closing bracket. */
const LINK = /https?:\/\/[^\s<>"')\]]+/;

/**
 * The development {@link Mailer}, Rotor's default while `ROTOR_SMTP_URL` is unset (issue 17: "the
 * demo's forgot password works with two README commands"): nothing leaves the process. Each mail
 * is kept in memory (the last 50) for the loopback-only mailbox page (http/mailbox-routes.ts) and
 * announced through `log` with its address, subject and link, so the developer can open the link
 * from the server's log. Not for production: the log then holds working tokens.
 * @example const outbox = new DevOutbox({ clock: systemClock, log: (line, fields) => app.log.info(fields, line) });
 */
export class DevOutbox implements Mailer {
  readonly #clock: Clock;
  readonly #log: OutboxLog;
  readonly #capacity: number;
  /** Oldest first; {@link list} reverses. */
  readonly #messages: OutboxMessage[] = [];

  constructor({ clock, log, capacity = 50 }: DevOutboxOptions) {
    this.#clock = clock;
    this.#log = log;
    this.#capacity = capacity;
  }

  /** Keeps `message` (dropping the oldest beyond the capacity) and logs it; never rejects. */
  async send(message: MailMessage): Promise<void> {
    const link = LINK.exec(message.text)?.[0]?.replace(/[.,;:!?]+$/, '');
    const kept: OutboxMessage = {
      id: newId(),
      atMs: this.#clock.now(),
      kind: message.kind,
      to: message.to,
      subject: message.subject,
      text: message.text,
      html: message.html,
      link,
    };
    this.#messages.push(kept);
    if (this.#messages.length > this.#capacity) this.#messages.shift();
    this.#log(
      `mail to ${message.to}: "${message.subject}"${link === undefined ? '' : ` ${link}`}`,
      { kind: message.kind, to: message.to, subject: message.subject, link },
    );
  }

  /** The kept messages, newest first. */
  list(): OutboxMessage[] {
    return [...this.#messages].reverse();
  }

  /** One kept message by id. */
  get(id: string): OutboxMessage | undefined {
    return this.#messages.find((message) => message.id === id);
  }
}
