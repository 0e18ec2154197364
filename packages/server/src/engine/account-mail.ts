import type { MailQueue } from '../mail/mail-queue.js';
import type { MailKind, MailVariables } from '../mail/mailer.js';
import { renderMail, type MailTemplates } from '../mail/templates.js';
import type { EmailTokenPurpose } from '../store/schema.js';
import { EMAIL_TOKEN_TTL_MINUTES, LINK_ACTIONS } from './email-tokens.js';

/** What the account flows mail with: templates, the queue, and where links point. */
export interface AccountMail {
  /**
   * Renders `kind` for `to` and queues it; returns at once (the queue sends and retries; a request
   * never waits for SMTP, and its answer cannot tell whether sending worked).
   */
  send(kind: MailKind, to: string, vars?: Omit<MailVariables, 'email' | 'appName'>): void;
  /** The link of a token: `${ROTOR_APP_URL}#<action>=<token>` and how long it works. */
  link(purpose: EmailTokenPurpose, token: string): { link: string; expiresInMinutes: number };
}

/**
 * The {@link AccountMail} of one Rotor: `appUrl` is `ROTOR_APP_URL`, `appName` the display name of
 * `ROTOR_MAIL_FROM` ("Rotor" when it has none).
 */
export function createAccountMail(options: {
  templates: MailTemplates;
  queue: MailQueue;
  appUrl: string;
  appName: string;
}): AccountMail {
  const { templates, queue, appUrl, appName } = options;
  return {
    send(kind, to, vars = {}) {
      queue.enqueue(renderMail(templates, kind, to, { ...vars, email: to, appName }));
    },
    link(purpose, token) {
      return {
        link: `${appUrl}#${LINK_ACTIONS[purpose]}=${token}`,
        expiresInMinutes: EMAIL_TOKEN_TTL_MINUTES[purpose],
      };
    },
  };
}

/** The display name of a `Name <address>` sender, for the mails' wording. */
export function senderName(from: string): string {
  const name = /^\s*"?([^"<]*?)"?\s*</.exec(from)?.[1]?.trim();
  return name || 'Rotor';
}
