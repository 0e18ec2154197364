import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { MailKind, MailMessage, MailVariables } from './mailer.js';

/** A mail's three parts; `text` and `html` are alternatives of one message (multipart/alternative). */
export interface RenderedMail {
  /** One line. */
  subject: string;
  text: string;
  /** A whole document; every variable in it HTML-escaped. */
  html: string;
}

/** Fills one kind of mail with its variables. */
export type MailTemplate = (vars: MailVariables) => RenderedMail;

/** One template per kind: {@link DEFAULT_TEMPLATES}, or those {@link loadTemplates} read. */
export type MailTemplates = Record<MailKind, MailTemplate>;

/** Every kind of mail, in the order the docs list them. */
export const MAIL_KINDS: readonly MailKind[] = [
  'password_reset',
  'verify_email',
  'email_change_confirm',
  'email_change_notice',
  'email_change_taken',
];

type Variable = keyof MailVariables;

/**
 * The placeholders each kind's templates may use. `email_change_taken` has no link (nothing to
 * do) and no other address (it would tell the owner who asked); a placeholder a kind never gets
 * would render empty, so a file that uses one is refused at start like an unknown name.
 */
const VARIABLES: Record<MailKind, readonly Variable[]> = {
  password_reset: ['link', 'email', 'expiresInMinutes', 'appName'],
  verify_email: ['link', 'email', 'expiresInMinutes', 'appName'],
  email_change_confirm: ['link', 'email', 'otherEmail', 'expiresInMinutes', 'appName'],
  email_change_notice: ['link', 'email', 'otherEmail', 'expiresInMinutes', 'appName'],
  email_change_taken: ['email', 'appName'],
};

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * `text` safe in HTML element content and in a quoted attribute value (the five characters of
 * OWASP's XSS prevention cheat sheet, rule 1 and 2).
 * @example escapeHtml('<a@b.c>') // '&lt;a@b.c&gt;'
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ENTITIES[char]!);
}

/** "30 minutes", "1 hour", "2 days": the link's lifetime as the mails say it. */
function lifetime(minutes: number): string {
  const [amount, unit] =
    minutes >= 1440 && minutes % 1440 === 0
      ? [minutes / 1440, 'day']
      : minutes >= 60 && minutes % 60 === 0
        ? [minutes / 60, 'hour']
        : [minutes, 'minute'];
  return `${amount} ${unit}${amount === 1 ? '' : 's'}`;
}

/** The sentence about how long a link works (issue 17: every token is single-use). */
function validity(vars: MailVariables): string {
  return vars.expiresInMinutes === undefined
    ? 'This link works only once.'
    : `This link works for ${lifetime(vars.expiresInMinutes)} and only once.`;
}

/**
 * The default mails' HTML: one centred column, system fonts, the link as a button AND as text
 * (some clients strip buttons; a screen reader reads the button's words), layout tables marked
 * `role="presentation"` so assistive technology does not announce them as data. Inline styles
 * only: mail clients drop `<style>` and external sheets. Every paragraph is escaped here.
 */
function layout(
  vars: MailVariables,
  subject: string,
  parts: { before: readonly string[]; action?: string; after: readonly string[] },
): string {
  const paragraph = (text: string) => `<p style="margin:0 0 16px">${escapeHtml(text)}</p>`;
  const link = escapeHtml(linkOf(vars));
  const action = parts.action
    ? `<p style="margin:24px 0"><a href="${link}" style="display:inline-block;padding:12px 20px;` +
      `background:#1d4ed8;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600">` +
      `${escapeHtml(parts.action)}</a></p>` +
      `<p style="margin:0 0 16px">If the button does not work, paste this link into your browser:` +
      `<br><a href="${link}" style="color:#1d4ed8;word-break:break-all">${link}</a></p>`
    : '';
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escapeHtml(subject)}</title></head>\n` +
    `<body style="margin:0;padding:24px 12px;background:#f3f4f6;color:#111827;` +
    `font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5">` +
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr><td align="center">` +
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;` +
    `background:#ffffff;border-radius:8px"><tr><td style="padding:32px">` +
    `<h1 style="margin:0 0 24px;font-size:20px">${escapeHtml(vars.appName)}</h1>` +
    parts.before.map(paragraph).join('') +
    action +
    parts.after.map(paragraph).join('') +
    `</td></tr></table></td></tr></table></body></html>\n`
  );
}

/** The text part: paragraphs separated by a blank line, the link on a line of its own. */
function plain(...paragraphs: readonly string[]): string {
  return `${paragraphs.join('\n\n')}\n`;
}

/** The link a template was given; the kinds with an action always get one (mailer.ts). */
function linkOf(vars: MailVariables): string {
  return vars.link ?? '';
}

/**
 * A mail with one action: a paragraph or more, the link (a button and the address in HTML, its
 * own line in text), then the paragraphs after it.
 */
function withLink(
  vars: MailVariables,
  subject: string,
  before: readonly string[],
  action: string,
  after: readonly string[],
): RenderedMail {
  return {
    subject,
    text: plain(...before, linkOf(vars), ...after),
    html: layout(vars, subject, { before, action, after }),
  };
}

/**
 * Plain, short English mails for each kind. Reset and verify say how long the link works and what
 * to do if you did not ask; the notice to the old address of an email change says where the
 * address goes and that its link undoes the change and signs out every session (issue 17: the
 * defence when a session was hijacked); `email_change_taken` says that nothing changed.
 */
export const DEFAULT_TEMPLATES: MailTemplates = {
  password_reset: (vars) =>
    withLink(
      vars,
      `Reset your ${vars.appName} password`,
      [
        `Someone asked to reset the password of the ${vars.appName} account for ${vars.email}. ` +
          'To choose a new password, open this link:',
      ],
      'Choose a new password',
      [validity(vars), 'If you did not ask, ignore this mail: your password stays as it is.'],
    ),

  verify_email: (vars) =>
    withLink(
      vars,
      `Confirm your email address for ${vars.appName}`,
      [
        `To confirm that ${vars.email} is the address of your ${vars.appName} account, ` +
          'open this link:',
      ],
      'Confirm my address',
      [validity(vars), 'If you did not ask, ignore this mail: nothing changes.'],
    ),

  email_change_confirm: (vars) =>
    withLink(
      vars,
      `Confirm your new email address for ${vars.appName}`,
      [
        `Someone asked to change the email address of a ${vars.appName} account` +
          (vars.otherEmail === undefined ? '' : ` from ${vars.otherEmail}`) +
          ` to ${vars.email}. To make the change, open this link:`,
      ],
      'Confirm the new address',
      [validity(vars), 'If you did not ask, ignore this mail: nothing changes.'],
    ),

  email_change_notice: (vars) =>
    withLink(
      vars,
      `The email address of your ${vars.appName} account is being changed`,
      [
        `The email address of your ${vars.appName} account is being changed from ${vars.email} ` +
          `to ${vars.otherEmail ?? 'another address'}.`,
        'If this was you, there is nothing to do.',
        'If it was not you, open this link: it undoes the change and signs out every session ' +
          'of your account. Then choose a new password.',
      ],
      'Undo the change',
      [validity(vars)],
    ),

  email_change_taken: (vars) => {
    const subject = `Someone tried to use your email address on ${vars.appName}`;
    const body = [
      `Someone tried to move another ${vars.appName} account to this address, ${vars.email}. ` +
        'It already belongs to your account, so nothing changed.',
      'If it was you, sign in with this address instead. If it was not, you can ignore this mail.',
    ];
    return {
      subject,
      text: plain(...body),
      html: layout(vars, subject, { before: body, after: [] }),
    };
  },
};

/**
 * Fills `kind`'s template with `vars` into the message for `to`; the subject is made one line
 * (a template's line breaks would otherwise end the header).
 * @example renderMail(DEFAULT_TEMPLATES, 'password_reset', to, { email: to, link, expiresInMinutes: 30, appName: 'Rotor' })
 */
export function renderMail(
  templates: MailTemplates,
  kind: MailKind,
  to: string,
  vars: MailVariables,
): MailMessage {
  const { subject, text, html } = templates[kind](vars);
  return { kind, to, subject: subject.replace(/\s+/g, ' ').trim(), text, html };
}

/** The file names a template folder may hold: `<kind>.subject.txt`, `<kind>.txt`, `<kind>.html`. */
const PARTS = { subject: '.subject.txt', text: '.txt', html: '.html' } as const;

const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;

/**
 * One template file compiled once: its `{{name}}` placeholders checked against the kind's
 * variables (a ConfigError naming the file otherwise), then a function that fills them, escaping
 * the values for HTML when `escape` is set. A variable the engine did not pass renders empty.
 */
function compile(
  source: string,
  file: string,
  kind: MailKind,
  escape: boolean,
): (vars: MailVariables) => string {
  const allowed = VARIABLES[kind];
  for (const [, raw] of source.matchAll(PLACEHOLDER)) {
    const name = raw!.trim();
    if (!(allowed as readonly string[]).includes(name)) {
      throw new ConfigError(
        'ROTOR_MAIL_TEMPLATES',
        `${file}: unknown placeholder {{${name.slice(0, 40)}}}; ${kind} mails have ` +
          `${allowed.map((v) => `{{${v}}}`).join(', ')}.`,
      );
    }
  }
  return (vars) =>
    source.replace(PLACEHOLDER, (_match, raw: string) => {
      const value = vars[raw.trim() as Variable];
      const text = value === undefined ? '' : String(value);
      return escape ? escapeHtml(text) : text;
    });
}

/**
 * The templates of `dir` (`ROTOR_MAIL_TEMPLATES`) over {@link DEFAULT_TEMPLATES}: for each kind,
 * `<kind>.subject.txt`, `<kind>.txt` and `<kind>.html` each replace that part of the default when
 * present. Placeholders: `{{link}}`, `{{email}}`, `{{otherEmail}}`, `{{expiresInMinutes}}`,
 * `{{appName}}` (HTML-escaped in `.html` files, as they are), as far as the kind has them
 * (`email_change_taken` has no link and no other address). Read synchronously, once, at start.
 * @throws ConfigError (`ROTOR_MAIL_TEMPLATES`) when `dir` is not a readable folder, a file uses an
 * unknown placeholder, or a `.txt`/`.html` file names no kind and part (a misspelt name would
 * otherwise fall back to the default without a word); the message names the file.
 * @example const templates = loadTemplates('/etc/rotor/mail'); // password_reset.html, …
 */
export function loadTemplates(dir: string): MailTemplates {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
    names = readdirSync(dir);
  } catch (error) {
    throw new ConfigError(
      'ROTOR_MAIL_TEMPLATES',
      `cannot read the folder ${dir}: ${(error as Error).message}`,
    );
  }
  const known = new Set(
    MAIL_KINDS.flatMap((kind) => Object.values(PARTS).map((suffix) => kind + suffix)),
  );
  for (const name of names) {
    if (/\.(txt|html)$/.test(name) && !known.has(name)) {
      throw new ConfigError(
        'ROTOR_MAIL_TEMPLATES',
        `${join(dir, name)}: not a template name; use <kind>.subject.txt, <kind>.txt or ` +
          `<kind>.html with a kind among ${MAIL_KINDS.join(', ')}.`,
      );
    }
  }
  const read = (kind: MailKind, part: keyof typeof PARTS) => {
    const name = kind + PARTS[part];
    if (!names.includes(name)) return undefined;
    const file = join(dir, name);
    let source: string;
    try {
      source = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
    } catch (error) {
      throw new ConfigError(
        'ROTOR_MAIL_TEMPLATES',
        `cannot read ${file}: ${(error as Error).message}`,
      );
    }
    return compile(source, file, kind, part === 'html');
  };

  const templates = { ...DEFAULT_TEMPLATES };
  for (const kind of MAIL_KINDS) {
    const subject = read(kind, 'subject');
    const text = read(kind, 'text');
    const html = read(kind, 'html');
    if (!subject && !text && !html) continue;
    const fallback = DEFAULT_TEMPLATES[kind];
    templates[kind] = (vars) => {
      const base = fallback(vars);
      return {
        subject: subject ? subject(vars) : base.subject,
        text: text ? text(vars) : base.text,
        html: html ? html(vars) : base.html,
      };
    };
  }
  return templates;
}
