import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  createSmtpMailer,
  DEFAULT_TEMPLATES,
  DevOutbox,
  isLoopbackRequest,
  loadTemplates,
  MAIL_KINDS,
  mailboxRoutes,
  MailQueue,
  ManualClock,
  renderMail,
  RotorError,
  SmtpSendError,
  type MailKind,
  type Mailer,
  type MailMessage,
  type MailVariables,
} from '@rotor/server';

const execFileAsync = promisify(execFile);

// --- A real SMTP server on loopback (smtp-server), parsing what it accepts (mailparser) --------

const USER = 'rotor-mailer';
/** Characters that must be percent-encoded in the URL: the mailer must decode them. */
const PASSWORD = 'p@ss w:rd/%42';
const FROM = 'Rotor Test <no-reply@rotor.test>';
/** 256 bits in base64url, as the engine's tokens will be. */
const TOKEN = 'Qm9ndXNUb2tlbkZvclRlc3RzT25seS0xMjM0NTY3ODkwYWI';

interface Received {
  mail: ParsedMail;
  /** The user the session authenticated as. */
  user: unknown;
}

interface TestSmtp {
  port: number;
  /** Messages accepted, in order. */
  received: Received[];
  /** DATA commands seen, accepted or not. */
  attempts: () => number;
  close: () => Promise<void>;
}

interface SmtpBehaviour {
  /** Refuse the first N messages with a temporary error (451). */
  refuseFirst?: number;
  /** Answer each message after this long. */
  delayMs?: number;
  /** Never answer the message (the client waits). */
  stuck?: boolean;
  /** Called as each message arrives, before any answer. */
  onArrival?: () => void;
}

const servers: TestSmtp[] = [];

async function startSmtp(behaviour: SmtpBehaviour = {}): Promise<TestSmtp> {
  const received: Received[] = [];
  let attempts = 0;
  const server = new SMTPServer({
    logger: false,
    // The default certificate is self-signed; plain text on loopback keeps the test about mail.
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: false,
    closeTimeout: 200,
    onAuth(auth, _session, callback) {
      if (auth.username === USER && auth.password === PASSWORD) {
        callback(null, { user: USER });
      } else {
        // Echoes the password it was given, as a careless server might: the mailer must cut it.
        callback(new Error(`Invalid login for ${auth.username} with ${auth.password}`));
      }
    },
    onData(stream, session, callback) {
      attempts += 1;
      const attempt = attempts;
      behaviour.onArrival?.();
      if (behaviour.stuck) {
        stream.resume();
        return;
      }
      void simpleParser(stream).then(async (mail) => {
        if (behaviour.delayMs) await new Promise((r) => setTimeout(r, behaviour.delayMs));
        if (attempt <= (behaviour.refuseFirst ?? 0)) {
          const error = new Error('Try again later') as Error & { responseCode: number };
          error.responseCode = 451;
          callback(error);
          return;
        }
        received.push({ mail, user: session.user });
        callback();
      }, callback);
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  const smtp: TestSmtp = {
    port,
    received,
    attempts: () => attempts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  servers.push(smtp);
  return smtp;
}

function smtpUrl(port: number, password = PASSWORD): string {
  return `smtp://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}`;
}

/** A port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const mailers: Mailer[] = [];
function smtpMailer(url: string): Mailer {
  const mailer = createSmtpMailer({ url, from: FROM });
  mailers.push(mailer);
  return mailer;
}

afterEach(async () => {
  for (const mailer of mailers.splice(0)) await mailer.close?.();
  for (const smtp of servers.splice(0)) await smtp.close();
});

// --- What a queue reported: its log lines and callbacks ----------------------------------------

interface LogLine {
  level: 'info' | 'warn' | 'error';
  fields: object;
  message: string;
}

/** Records a queue's log and callbacks; `until` waits for a condition on them. */
class Observed {
  readonly logs: LogLine[] = [];
  readonly sent: { message: MailMessage; attempts: number }[] = [];
  readonly failed: { message: MailMessage; error: unknown }[] = [];
  #waiters: (() => void)[] = [];

  readonly logger = {
    info: (fields: object, message: string) => this.#log('info', fields, message),
    warn: (fields: object, message: string) => this.#log('warn', fields, message),
    error: (fields: object, message: string) => this.#log('error', fields, message),
  };

  queue(mailer: Mailer, options: { retryDelaysMs?: number[]; concurrency?: number } = {}) {
    return new MailQueue({
      mailer,
      logger: this.logger,
      ...options,
      onSent: (message, attempts) => {
        this.sent.push({ message, attempts });
        this.#changed();
      },
      onFailed: (message, error) => {
        this.failed.push({ message, error });
        this.#changed();
      },
    });
  }

  level(level: LogLine['level']): LogLine[] {
    return this.logs.filter((line) => line.level === level);
  }

  async until(condition: () => boolean): Promise<void> {
    while (!condition()) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  #log(level: LogLine['level'], fields: object, message: string): void {
    this.logs.push({ level, fields, message });
    this.#changed();
  }

  #changed(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

function linkFor(kind: MailKind): string {
  // `&` so the HTML part must escape it.
  return `https://app.rotor.test/account#token=${TOKEN}&kind=${kind}`;
}

function varsFor(kind: MailKind, email: string): MailVariables {
  const vars: MailVariables = { email, appName: 'Rotor Test' };
  if (kind !== 'email_change_taken') {
    vars.link = linkFor(kind);
    vars.expiresInMinutes = 30;
  }
  if (kind === 'email_change_confirm' || kind === 'email_change_notice') {
    vars.otherEmail = 'other@example.org';
  }
  return vars;
}

function message(kind: MailKind = 'password_reset', to = 'alice@example.com'): MailMessage {
  return renderMail(DEFAULT_TEMPLATES, kind, to, varsFor(kind, to));
}

// --- SMTP through the queue ---------------------------------------------------------------------

describe('SMTP mailer and queue, against a real SMTP server', () => {
  it('delivers each kind, authenticated, with the link in the text and escaped in the HTML', async () => {
    const smtp = await startSmtp();
    const observed = new Observed();
    const queue = observed.queue(smtpMailer(smtpUrl(smtp.port)));
    const sentMessages = MAIL_KINDS.map((kind) => message(kind, `${kind}@example.com`));
    for (const m of sentMessages) queue.enqueue(m);
    await observed.until(() => observed.sent.length === MAIL_KINDS.length);

    expect(observed.failed).toEqual([]);
    expect(smtp.received).toHaveLength(MAIL_KINDS.length);
    for (const m of sentMessages) {
      const received = smtp.received.find(
        ({ mail }) => !Array.isArray(mail.to) && mail.to?.value[0]?.address === m.to,
      )!;
      expect(received, m.kind).toBeDefined();
      expect(received.user).toBe(USER);
      expect(received.mail.from?.value[0]?.address).toBe('no-reply@rotor.test');
      expect(received.mail.from?.value[0]?.name).toBe('Rotor Test');
      expect(received.mail.subject).toBe(m.subject);
      expect(received.mail.html).toBe(m.html);
      if (m.kind === 'email_change_taken') {
        expect(received.mail.text).toContain('nothing changed');
        expect(received.mail.text).not.toContain('https://');
      } else {
        const link = linkFor(m.kind);
        expect(received.mail.text).toContain(link);
        expect(received.mail.html).toContain(link.replace('&', '&amp;'));
        expect(received.mail.html).not.toContain(link);
      }
    }
    expect(observed.sent.every(({ attempts }) => attempts === 1)).toBe(true);
    expect(queue.pending).toBe(0);
  });

  it('a wrong password is refused, and the error never shows the password', async () => {
    const smtp = await startSmtp();
    const wrong = 'wr0ng/p@ss%';
    const mailer = smtpMailer(smtpUrl(smtp.port, wrong));
    const error = await mailer.send(message()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SmtpSendError);
    expect((error as SmtpSendError).code).toBe('EAUTH');
    const shown = `${String(error)} ${(error as Error).stack} ${JSON.stringify(error)}`;
    // The server echoed it (see onAuth), so the redaction is what keeps it out.
    expect(shown).toContain('[redacted]');
    expect(shown).not.toContain(wrong);
    expect(shown).not.toContain(encodeURIComponent(wrong));
    expect(smtp.received).toHaveLength(0);
  });

  it('a bad ROTOR_SMTP_URL or ROTOR_MAIL_FROM is a ConfigError that never repeats the URL', () => {
    const attempt = (url: string, from = FROM) => {
      try {
        createSmtpMailer({ url, from });
      } catch (error) {
        return error;
      }
      return undefined;
    };
    for (const url of ['http://u:hunter22@mail.test', 'smtp//u:hunter22@mail.test', 'smtp://']) {
      const error = attempt(url);
      expect(error, url).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).variable).toBe('ROTOR_SMTP_URL');
      expect((error as Error).message).not.toContain('hunter22');
    }
    const error = attempt('smtp://mail.test', ' ');
    expect((error as ConfigError).variable).toBe('ROTOR_MAIL_FROM');
  });

  it('a server that refuses the first two attempts gets the mail on the third', async () => {
    const smtp = await startSmtp({ refuseFirst: 2 });
    const observed = new Observed();
    const queue = observed.queue(smtpMailer(smtpUrl(smtp.port)), { retryDelaysMs: [20, 20, 20] });
    queue.enqueue(message());
    await observed.until(() => observed.sent.length === 1);

    expect(observed.sent[0]!.attempts).toBe(3);
    expect(smtp.attempts()).toBe(3);
    expect(smtp.received).toHaveLength(1);
    expect(observed.level('warn')).toHaveLength(2);
    expect(observed.level('warn')[0]!.fields).toMatchObject({
      kind: 'password_reset',
      toDomain: 'example.com',
      attempts: 1,
      retryInMs: 20,
      err: { code: 'EMESSAGE', responseCode: 451 },
    });
    expect(observed.level('error')).toEqual([]);
    expect(observed.failed).toEqual([]);
  });

  it('a server that is down: every retry fails, then an error line and onFailed, never the link', async () => {
    const port = await closedPort();
    const observed = new Observed();
    const queue = observed.queue(smtpMailer(smtpUrl(port)), { retryDelaysMs: [10, 10] });
    const m = message('password_reset', 'alice.secret@example.com');
    queue.enqueue(m);
    await observed.until(() => observed.failed.length === 1);

    expect(observed.failed[0]!.message).toBe(m);
    expect(observed.level('warn')).toHaveLength(2);
    const errors = observed.level('error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toBe('mail not sent; given up');
    expect(errors[0]!.fields).toMatchObject({
      kind: 'password_reset',
      toDomain: 'example.com',
      attempts: 3,
      err: { code: 'ESOCKET', message: expect.stringContaining('ECONNREFUSED') },
    });
    const log = JSON.stringify(observed.logs);
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain('https://app.rotor.test');
    expect(log).not.toContain('alice.secret');
    expect(log).not.toContain(PASSWORD);
    expect(queue.pending).toBe(0);
  });

  it('a failure quoting the address, the link and the token is logged without them', async () => {
    // An app's own Mailer (CreateRotorOptions.mailer) whose errors quote the whole mail.
    const quoting: Mailer = {
      send: async (m) => {
        throw new Error(`refused ${m.to.toUpperCase()}: ${m.text} (${TOKEN})`);
      },
    };
    const observed = new Observed();
    const queue = observed.queue(quoting, { retryDelaysMs: [] });
    queue.enqueue(message('verify_email', 'bob.private@example.net'));
    await observed.until(() => observed.failed.length === 1);
    const log = JSON.stringify(observed.logs);
    expect(log).toContain('[recipient]');
    expect(log).not.toMatch(/bob\.private/i);
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain('app.rotor.test');
  });

  it('enqueue returns before the server has even received the mail (the request never waits)', async () => {
    const events: string[] = [];
    const smtp = await startSmtp({ delayMs: 2_000, onArrival: () => events.push('received') });
    const observed = new Observed();
    const queue = observed.queue(smtpMailer(smtpUrl(smtp.port)));
    queue.enqueue(message());
    events.push('enqueued');
    expect(queue.pending).toBe(1);
    await observed.until(() => observed.sent.length === 1);
    expect(events).toEqual(['enqueued', 'received']);
    expect(queue.pending).toBe(0);
  });

  it('enqueue never throws, even when the Mailer throws instead of rejecting', async () => {
    const throwing: Mailer = {
      send: () => {
        throw new Error('not even a promise');
      },
    };
    const observed = new Observed();
    const queue = observed.queue(throwing, { retryDelaysMs: [5] });
    expect(() => queue.enqueue(message())).not.toThrow();
    await observed.until(() => observed.failed.length === 1);
    expect(observed.level('warn')).toHaveLength(1);
    expect(observed.level('error')).toHaveLength(1);
  });

  it('sends at most `concurrency` mails at once, in the order they came', async () => {
    const smtp = await startSmtp({ delayMs: 50 });
    const real = smtpMailer(smtpUrl(smtp.port));
    let inFlight = 0;
    let most = 0;
    const started: string[] = [];
    // The real SMTP mailer, counting the sends the queue has open at once.
    const counting: Mailer = {
      async send(m) {
        started.push(m.to);
        inFlight += 1;
        most = Math.max(most, inFlight);
        try {
          await real.send(m);
        } finally {
          inFlight -= 1;
        }
      },
    };
    const observed = new Observed();
    const queue = observed.queue(counting, { concurrency: 2 });
    const addresses = Array.from({ length: 8 }, (_, i) => `user${i}@example.com`);
    for (const to of addresses) queue.enqueue(message('verify_email', to));
    expect(queue.pending).toBe(8);
    await observed.until(() => observed.sent.length === 8);
    expect(most).toBe(2);
    expect(started).toEqual(addresses);
    expect(smtp.received).toHaveLength(8);
  });

  it('close() with a stuck server returns after timeoutMs, logs what it dropped, and gives it up', async () => {
    let arrived!: () => void;
    const arrival = new Promise<void>((resolve) => (arrived = resolve));
    const smtp = await startSmtp({ stuck: true, onArrival: () => arrived() });
    const mailer = smtpMailer(smtpUrl(smtp.port));
    const observed = new Observed();
    const queue = observed.queue(mailer, { concurrency: 1 });
    queue.enqueue(message('password_reset', 'first@example.com'));
    queue.enqueue(message('password_reset', 'second@example.com'));
    await arrival;

    const start = performance.now();
    await queue.close({ timeoutMs: 300 });
    const elapsed = performance.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(5_000);
    const closing = observed.level('error').find((l) => l.message.startsWith('mail queue closed'));
    expect(closing?.fields).toMatchObject({ dropped: 1, stillSending: 1 });
    expect(observed.failed.map(({ message: m }) => m.to)).toEqual(['second@example.com']);

    // Closing the mailer ends the stuck delivery; a failure after close is given up, not retried.
    await mailer.close!();
    await observed.until(() => observed.failed.length === 2);
    expect(observed.failed[1]!.message.to).toBe('first@example.com');
    expect(observed.level('warn')).toEqual([]);

    queue.enqueue(message('verify_email', 'late@example.com'));
    expect(observed.failed[2]!.message.to).toBe('late@example.com');
    expect(smtp.received).toHaveLength(0);
  });

  it('a mail waiting for its retry does not keep the process alive', async () => {
    // A process whose only mail fails and waits ten minutes for its retry still exits at once.
    const script = `
      import { MailQueue } from '@rotor/server';
      const queue = new MailQueue({
        mailer: { send: async () => { throw new Error('down'); } },
        logger: { warn: () => console.log('retry scheduled'), error: () => {} },
        retryDelaysMs: [600000],
      });
      queue.enqueue({ kind: 'verify_email', to: 'a@example.com', subject: 's', text: 't', html: 'h' });
    `;
    const start = performance.now();
    const { stdout } = await execFileAsync(
      process.execPath,
      ['--input-type=module', '-e', script],
      {
        cwd: fileURLToPath(new URL('.', import.meta.url)),
        timeout: 20_000,
      },
    );
    expect(stdout).toContain('retry scheduled');
    expect(performance.now() - start).toBeLessThan(15_000);
  });

  it('close() gives a mail waiting for its retry one last attempt instead of dropping it', async () => {
    const smtp = await startSmtp({ refuseFirst: 1 });
    const observed = new Observed();
    const queue = observed.queue(smtpMailer(smtpUrl(smtp.port)), { retryDelaysMs: [600_000] });
    queue.enqueue(message());
    await observed.until(() => observed.level('warn').length === 1);
    await queue.close({ timeoutMs: 5_000 });
    expect(observed.sent).toHaveLength(1);
    expect(smtp.received).toHaveLength(1);
    expect(observed.level('error')).toEqual([]);
  });
});

// --- Templates ----------------------------------------------------------------------------------

describe('mail templates', () => {
  const hostile = '<script>alert(1)</script>@evil.test';

  it('the defaults escape every variable in HTML and keep it as it is in text', () => {
    for (const kind of MAIL_KINDS) {
      const m = renderMail(DEFAULT_TEMPLATES, kind, hostile, {
        ...varsFor(kind, hostile),
        appName: 'Acme <b>',
      });
      expect(m.html, kind).not.toContain('<script>');
      expect(m.html, kind).not.toContain('<b>');
      expect(m.html, kind).toContain('&lt;script&gt;alert(1)&lt;/script&gt;@evil.test');
      expect(m.text, kind).toContain(hostile);
      expect(m.kind).toBe(kind);
      expect(m.to).toBe(hostile);
    }
  });

  it('the defaults say how long the link works, and what to do if you did not ask', () => {
    const reset = message('password_reset');
    expect(reset.text).toContain('30 minutes');
    expect(reset.text).toContain('If you did not ask, ignore this mail');
    expect(reset.html).toContain('If you did not ask, ignore this mail');
    const verify = message('verify_email');
    expect(verify.text).toContain('If you did not ask, ignore this mail');
    const notice = renderMail(DEFAULT_TEMPLATES, 'email_change_notice', 'old@example.com', {
      ...varsFor('email_change_notice', 'old@example.com'),
      otherEmail: 'new@example.com',
      expiresInMinutes: 60 * 24 * 3,
    });
    expect(notice.text).toContain('to new@example.com');
    expect(notice.text).toContain('undoes the change and signs out every session');
    expect(notice.text).toContain('3 days');
    const taken = message('email_change_taken');
    expect(taken.text).toContain('nothing changed');
    expect(taken.html).not.toContain('<a ');
  });

  describe('from a folder (ROTOR_MAIL_TEMPLATES)', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'rotor-mail-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /** A fresh sub-folder with `files`. */
    function folder(name: string, files: Record<string, string>): string {
      const path = mkdtempSync(join(dir, `${name}-`));
      for (const [file, text] of Object.entries(files)) writeFileSync(join(path, file), text);
      return path;
    }

    it('a file replaces its part of one kind; the rest stays the default', () => {
      const templates = loadTemplates(
        folder('override', {
          'password_reset.subject.txt': 'Reset for {{ appName }}\nnow\n',
          'password_reset.html':
            '<p>Hi {{email}}: <a href="{{link}}">reset</a> ({{expiresInMinutes}} min)</p>',
          'verify_email.txt': 'Verify {{email}} at {{link}}',
        }),
      );
      const vars = varsFor('password_reset', hostile);
      const reset = renderMail(templates, 'password_reset', hostile, vars);
      expect(reset.subject).toBe('Reset for Rotor Test now');
      expect(reset.html).toBe(
        `<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;@evil.test: <a href="${linkFor('password_reset').replace('&', '&amp;')}">reset</a> (30 min)</p>`,
      );
      expect(reset.text).toBe(DEFAULT_TEMPLATES.password_reset(vars).text);
      const verify = renderMail(
        templates,
        'verify_email',
        hostile,
        varsFor('verify_email', hostile),
      );
      expect(verify.text).toBe(`Verify ${hostile} at ${linkFor('verify_email')}`);
      for (const kind of [
        'email_change_confirm',
        'email_change_notice',
        'email_change_taken',
      ] as const) {
        expect(templates[kind]).toBe(DEFAULT_TEMPLATES[kind]);
      }
    });

    it('an unknown placeholder is a ConfigError at load time naming the file', () => {
      const path = folder('unknown', { 'verify_email.txt': 'Your token: {{token}}' });
      expect(() => loadTemplates(path)).toThrow(ConfigError);
      try {
        loadTemplates(path);
      } catch (error) {
        expect((error as ConfigError).variable).toBe('ROTOR_MAIL_TEMPLATES');
        expect((error as Error).message).toContain(join(path, 'verify_email.txt'));
        expect((error as Error).message).toContain('{{token}}');
      }
    });

    it('a placeholder its kind never gets, a misspelt file, or no folder is a ConfigError', () => {
      const cases = [
        folder('nolink', { 'email_change_taken.html': '<a href="{{link}}">x</a>' }),
        folder('typo', { 'pasword_reset.txt': 'Reset at {{link}}' }),
        join(dir, 'does-not-exist'),
      ];
      for (const path of cases) {
        let error: unknown;
        try {
          loadTemplates(path);
        } catch (e) {
          error = e;
        }
        expect(error, path).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).variable).toBe('ROTOR_MAIL_TEMPLATES');
      }
    });
  });
});

// --- The development outbox ---------------------------------------------------------------------

describe('DevOutbox', () => {
  it('keeps the last 50 mails, newest first, and logs each with its link', async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const lines: { line: string; fields: object }[] = [];
    const outbox = new DevOutbox({ clock, log: (line, fields) => lines.push({ line, fields }) });
    for (let i = 0; i < 55; i += 1) {
      clock.advance(1_000);
      await outbox.send(message('password_reset', `user${i}@example.com`));
    }
    const list = outbox.list();
    expect(list).toHaveLength(50);
    expect(list[0]!.to).toBe('user54@example.com');
    expect(list[49]!.to).toBe('user5@example.com');
    expect(list[0]!.atMs).toBe(Date.UTC(2030, 0, 1) + 55_000);
    expect(list[0]!.link).toBe(linkFor('password_reset'));
    expect(outbox.get(list[3]!.id)).toEqual(list[3]);
    expect(lines).toHaveLength(55);
    expect(lines[54]!.line).toContain('user54@example.com');
    expect(lines[54]!.line).toContain(linkFor('password_reset'));
    expect(lines[54]!.line).toContain('Reset your Rotor Test password');
    expect(lines[54]!.fields).toMatchObject({
      kind: 'password_reset',
      link: linkFor('password_reset'),
    });

    await outbox.send(message('email_change_taken', 'owner@example.com'));
    expect(outbox.list()[0]!.link).toBeUndefined();
    expect(outbox.list()).toHaveLength(50);
  });
});

// --- The mailbox routes -------------------------------------------------------------------------

describe('mailbox routes (loopback only)', () => {
  let app: FastifyInstance;
  let outbox: DevOutbox;
  let port: number;

  beforeAll(async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    outbox = new DevOutbox({ clock, log: () => {} });
    await outbox.send(message('verify_email', 'first@example.com'));
    clock.advance(60_000);
    await outbox.send(
      renderMail(DEFAULT_TEMPLATES, 'password_reset', 'second@example.com', {
        ...varsFor('password_reset', 'second@example.com'),
        appName: '<script>alert(1)</script>',
      }),
    );
    app = Fastify({ logger: false });
    // Rotor's error handler answers RotorError in the JSON shape of API.md; the same, minimal.
    app.setErrorHandler((error, _request, reply) => {
      const e = error instanceof RotorError ? error : new RotorError('internal_error');
      return reply.code(e.status).send({ error: e.code, message: e.message });
    });
    await app.register(mailboxRoutes, { outbox });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
  });
  afterAll(() => app.close());

  it('lists the messages as JSON, newest first, to a loopback client', async () => {
    const response = await app.inject({
      url: '/dev/mailbox/messages',
      headers: { host: '127.0.0.1:3000' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['referrer-policy']).toBe('no-referrer');
    const { messages } = response.json() as { messages: Record<string, unknown>[] };
    expect(messages.map((m) => m.to)).toEqual(['second@example.com', 'first@example.com']);
    expect(messages[0]).toMatchObject({
      kind: 'password_reset',
      link: linkFor('password_reset'),
      at: '2030-01-01T00:01:00.000Z',
    });
    expect(Object.keys(messages[0]!).sort()).toEqual(
      ['at', 'html', 'id', 'kind', 'link', 'subject', 'text', 'to'].sort(),
    );
  });

  it('shows an HTML page with no script, the link clickable, everything escaped', async () => {
    const response = await app.inject({ url: '/dev/mailbox', headers: { host: 'localhost:8080' } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.headers['content-security-policy']).toContain(
      "default-src 'none'; style-src 'unsafe-inline'",
    );
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['referrer-policy']).toBe('no-referrer');
    const page = response.body;
    expect(page).not.toContain('<script');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    const href = linkFor('password_reset').replace('&', '&amp;');
    expect(page).toContain(`<a href="${href}" rel="noreferrer">`);
    expect(page.indexOf('second@example.com')).toBeLessThan(page.indexOf('first@example.com'));
  });

  it('answers loopback peers in every spelling, with a loopback Host', async () => {
    const allowed = [
      { remoteAddress: '127.0.0.1', host: 'localhost' },
      { remoteAddress: '127.0.0.2', host: '127.0.0.1:9000' },
      { remoteAddress: '::1', host: '[::1]:8080' },
      { remoteAddress: '::ffff:127.0.0.1', host: 'LOCALHOST:3000' },
    ];
    for (const { remoteAddress, host } of allowed) {
      const response = await app.inject({
        url: '/dev/mailbox/messages',
        remoteAddress,
        headers: { host },
      });
      expect(response.statusCode, `${remoteAddress} ${host}`).toBe(200);
    }
  });

  it('answers 404 not_found to a remote peer, through a proxy, or under another Host', async () => {
    const refused: { remoteAddress?: string; headers: Record<string, string> }[] = [
      { remoteAddress: '203.0.113.5', headers: { host: 'localhost' } },
      { remoteAddress: '::ffff:203.0.113.5', headers: { host: 'localhost' } },
      { remoteAddress: '10.0.0.1', headers: { host: '127.0.0.1' } },
      { headers: { host: 'localhost', 'x-forwarded-for': '127.0.0.1' } },
      { headers: { host: 'localhost', forwarded: 'for=127.0.0.1' } },
      { headers: { host: 'localhost', 'x-real-ip': '127.0.0.1' } },
      { headers: { host: 'localhost', via: '1.1 proxy' } },
      { headers: { host: 'evil.example' } },
      { headers: { host: 'evil.example:80' } },
      { headers: { host: 'localhost.evil.example' } },
      { headers: { host: '127.0.0.1.nip.io' } },
      { headers: { host: '127.999.0.1' } },
      { headers: { host: '[::2]:80' } },
    ];
    for (const { remoteAddress, headers } of refused) {
      for (const url of ['/dev/mailbox', '/dev/mailbox/messages']) {
        const response = await app.inject({
          url,
          headers,
          ...(remoteAddress && { remoteAddress }),
        });
        expect(response.statusCode, `${url} ${JSON.stringify({ remoteAddress, headers })}`).toBe(
          404,
        );
        expect(response.json()).toMatchObject({ error: 'not_found' });
        expect(response.body).not.toContain('example.com');
      }
    }
  });

  it('over real HTTP on loopback: 200 with Host 127.0.0.1:port, 404 otherwise', async () => {
    const get = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port, path: '/dev/mailbox/messages', headers },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const ok = await get({ host: `127.0.0.1:${port}` });
    expect(ok.status).toBe(200);
    expect((JSON.parse(ok.body) as { messages: unknown[] }).messages).toHaveLength(2);
    const rebound = await get({ host: `evil.example:${port}` });
    expect(rebound.status).toBe(404);
    expect(JSON.parse(rebound.body)).toMatchObject({ error: 'not_found' });
    const proxied = await get({ host: `localhost:${port}`, 'x-forwarded-for': '198.51.100.7' });
    expect(proxied.status).toBe(404);
  });

  it('isLoopbackRequest reads the socket peer, not a header', () => {
    const request = (remoteAddress: string | undefined, headers: Record<string, string>) => ({
      socket: { remoteAddress } as never,
      headers,
    });
    expect(isLoopbackRequest(request('127.0.0.1', { host: 'localhost' }))).toBe(true);
    expect(isLoopbackRequest(request(undefined, { host: 'localhost' }))).toBe(false);
    expect(isLoopbackRequest(request('192.0.2.1', { host: 'localhost' }))).toBe(false);
    expect(isLoopbackRequest(request('127.0.0.1', {}))).toBe(false);
  });
});
