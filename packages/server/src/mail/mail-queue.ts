import type { Mailer, MailKind, MailMessage } from './mailer.js';

/** Where the queue reports, pino-shaped (`app.log` fits). */
export interface MailQueueLogger {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  info?(fields: object, message: string): void;
}

/** What {@link MailQueue} is built with. */
export interface MailQueueOptions {
  mailer: Mailer;
  logger: MailQueueLogger;
  /**
   * The wait before each retry, in ms; one attempt more than there are delays. Default
   * `[1_000, 5_000, 30_000, 120_000, 600_000]`: six attempts over about 13 minutes, enough for a
   * mail server's restart or a short outage, not so long that a reset link (30 minutes) arrives dead.
   */
  retryDelaysMs?: readonly number[];
  /** At most this many sends at once; the rest wait in order. Default 4. */
  concurrency?: number;
  /** Called once a mail was accepted, with the number of attempts it took (metrics hook here). */
  onSent?(message: MailMessage, attempts: number): void;
  /** Called once a mail is given up: every attempt failed, or the queue closed before it went. */
  onFailed?(message: MailMessage, error: unknown): void;
}

/** The default of {@link MailQueueOptions.retryDelaysMs}. */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [1_000, 5_000, 30_000, 120_000, 600_000];

interface Job {
  message: MailMessage;
  /** Attempts made so far. */
  attempts: number;
}

/**
 * Sends mail in the background so that the request that asked for it never waits for the mail
 * server, and its answer cannot tell whether sending worked (issue 17: no enumeration by answer or
 * by timing). {@link enqueue} returns at once and never throws; sends run at most `concurrency` at a
 * time, in order; a failed send is retried after each of `retryDelaysMs`, logged at warn each time
 * and at error when given up. Log lines carry the kind and the recipient's domain, never the local
 * part, the link or the token, nor the error's words about them.
 *
 * Mail lives in memory until sent: a crash or a stop past `close`'s timeout loses queued mail,
 * which was then logged as queued but never as sent; the user asks again (every link is
 * single-use and short-lived anyway). A database outbox would keep it, but the link holds the
 * token in clear, and the store keeps only its hash (issue 17); storing the mail would undo that.
 * Timers never keep the process alive.
 * @example
 * const queue = new MailQueue({ mailer, logger: app.log });
 * queue.enqueue(renderMail(templates, 'password_reset', email, vars)); // returns at once
 * await queue.close({ timeoutMs: 5_000 }); // on shutdown
 */
export class MailQueue {
  readonly #mailer: Mailer;
  readonly #logger: MailQueueLogger;
  readonly #retryDelaysMs: readonly number[];
  readonly #concurrency: number;
  readonly #onSent: MailQueueOptions['onSent'];
  readonly #onFailed: MailQueueOptions['onFailed'];
  /** Ready to send, in order. */
  readonly #waiting: Job[] = [];
  /** Waiting for a retry, by their timer. */
  readonly #retrying = new Map<NodeJS.Timeout, Job>();
  #inFlight = 0;
  /** Called whenever a send ends, so `close` can see the queue empty. */
  #onSettled: (() => void) | undefined;
  /** Set by `close`: no new mail, no new retry. */
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: MailQueueOptions) {
    this.#mailer = options.mailer;
    this.#logger = options.logger;
    this.#retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
    this.#onSent = options.onSent;
    this.#onFailed = options.onFailed;
  }

  /** Mails not yet sent nor given up: waiting, sending, or waiting for a retry. */
  get pending(): number {
    return this.#waiting.length + this.#inFlight + this.#retrying.size;
  }

  /**
   * Queues `message` and returns at once: never throws, never awaits the network. After `close`
   * the mail is given up (logged at error, `onFailed`).
   */
  enqueue(message: MailMessage): void {
    try {
      if (this.#closed) {
        this.#logger.error(fieldsOf(message), 'mail not queued: the mail queue is closed');
        this.#report(() => this.#onFailed?.(message, new Error('The mail queue is closed.')));
        return;
      }
      this.#waiting.push({ message, attempts: 0 });
      this.#pump();
    } catch {
      // A logger or a callback that throws must not reach the request that asked for the mail.
    }
  }

  /**
   * Stops taking mail and waits, up to `timeoutMs`, for the queue to empty: mails waiting for a
   * retry get one last attempt now instead of their timer, and a failure is no longer retried.
   * Whatever is still waiting or sending then is dropped (`onFailed` for those that never went),
   * its count logged at error; never waits longer. Call `Mailer.close` after it. Idempotent.
   */
  close({ timeoutMs }: { timeoutMs: number }): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = this.#close(timeoutMs);
    }
    return this.#closing;
  }

  async #close(timeoutMs: number): Promise<void> {
    for (const [timer, job] of this.#retrying) {
      clearTimeout(timer);
      this.#waiting.push(job);
    }
    this.#retrying.clear();
    this.#pump();
    if (this.pending > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        timer.unref();
        this.#onSettled = () => {
          if (this.pending > 0) return;
          clearTimeout(timer);
          resolve();
        };
      });
      this.#onSettled = undefined;
    }
    const dropped = this.#waiting.splice(0);
    if (dropped.length + this.#inFlight > 0) {
      this.#logger.error(
        { dropped: dropped.length, stillSending: this.#inFlight, timeoutMs },
        'mail queue closed before every mail was sent',
      );
    }
    for (const { message } of dropped) {
      this.#report(() => this.#onFailed?.(message, new Error('The mail queue closed first.')));
    }
  }

  /** Starts sends while there is room. */
  #pump(): void {
    while (this.#inFlight < this.#concurrency && this.#waiting.length > 0) {
      const job = this.#waiting.shift()!;
      this.#inFlight += 1;
      void this.#attempt(job);
    }
  }

  async #attempt(job: Job): Promise<void> {
    job.attempts += 1;
    try {
      // Through a promise: a custom Mailer that throws instead of rejecting fails the same way.
      await Promise.resolve().then(() => this.#mailer.send(job.message));
      this.#logger.info?.({ ...fieldsOf(job.message), attempts: job.attempts }, 'mail sent');
      this.#report(() => this.#onSent?.(job.message, job.attempts));
    } catch (error) {
      this.#failed(job, error);
    } finally {
      this.#inFlight -= 1;
      this.#pump();
      this.#onSettled?.();
    }
  }

  /** Schedules the next attempt, or gives the mail up after the last one or once closing. */
  #failed(job: Job, error: unknown): void {
    const fields = { ...fieldsOf(job.message), attempts: job.attempts, err: safeError(error, job) };
    const delayMs = this.#retryDelaysMs[job.attempts - 1];
    if (delayMs === undefined || this.#closed) {
      this.#logger.error(fields, 'mail not sent; given up');
      this.#report(() => this.#onFailed?.(job.message, error));
      return;
    }
    this.#logger.warn({ ...fields, retryInMs: delayMs }, 'mail not sent; will retry');
    const timer = setTimeout(() => {
      this.#retrying.delete(timer);
      this.#waiting.push(job);
      this.#pump();
    }, delayMs);
    timer.unref();
    this.#retrying.set(timer, job);
  }

  /** Runs a caller's callback; its failure is logged, never thrown into the queue. */
  #report(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.#logger.warn({ err: { message: String(error) } }, 'mail queue callback failed');
    }
  }
}

/** The fields of every log line about `message`: its kind and the recipient's domain only. */
function fieldsOf(message: MailMessage): { kind: MailKind; toDomain: string } {
  const at = message.to.lastIndexOf('@');
  return { kind: message.kind, toDomain: at === -1 ? '' : message.to.slice(at + 1).toLowerCase() };
}

/** A run of 32 or more base64url characters: a token (256 bits are 43), whatever quotes it. */
const TOKEN_LIKE = /[A-Za-z0-9_-]{32,}/g;

/**
 * A send error as logged: its name, codes and words, with the recipient's address (in any case),
 * every URL and anything token-like cut out (a server's refusal may quote the address; a custom
 * Mailer's error may quote the mail), and at most 300 characters.
 */
function safeError(error: unknown, job: Job): object {
  const e = (error ?? {}) as { name?: unknown; message?: unknown; code?: unknown };
  const responseCode = (error as { responseCode?: unknown } | null)?.responseCode;
  let message = String(e.message ?? error);
  if (job.message.to !== '') {
    const to = job.message.to.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    message = message.replace(new RegExp(to, 'gi'), '[recipient]');
  }
  message = message
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S*/gi, '[link]')
    .replace(TOKEN_LIKE, '[redacted]')
    .slice(0, 300);
  return {
    name: typeof e.name === 'string' ? e.name : undefined,
    code: typeof e.code === 'string' ? e.code : undefined,
    responseCode: typeof responseCode === 'number' ? responseCode : undefined,
    message,
  };
}
