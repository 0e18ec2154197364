/**
 * The account mails of issue 17 (password reset, email verification, email change). Each kind is
 * rendered from a template (mail/templates.ts) with its variables, then handed to a {@link Mailer}
 * through the {@link MailQueue} (mail/mail-queue.ts), which never blocks the request that asked.
 */
export type MailKind =
  /** A link to set a new password (`POST /auth/password-reset`); 30 minutes. */
  | 'password_reset'
  /** A link that proves the address (`POST /auth/verify-email`); at sign-up and on request. */
  | 'verify_email'
  /** To the new address of an email change: a link that makes the change (`POST /auth/email/confirm`). */
  | 'email_change_confirm'
  /** To the old address of an email change: a notice, with a link that undoes it (`POST /auth/email/undo`). */
  | 'email_change_notice'
  /**
   * To an address asked for in an email change while another account has it: says so to that
   * address's owner, instead of telling the asker (no enumeration by the change form).
   */
  | 'email_change_taken';

/** What a template is filled with. `link` is absent for the kinds without one (`email_change_taken`). */
export interface MailVariables {
  /** The address the mail goes to. */
  email: string;
  /** The link with the token, built on `ROTOR_APP_URL` (the token in the fragment). */
  link?: string;
  /** How long the link works, in minutes. */
  expiresInMinutes?: number;
  /** The other address of an email change (the new one in the notice, the old one in the confirm). */
  otherEmail?: string;
  /** The product name in the mails (`ROTOR_MAIL_FROM`'s display name, else "Rotor"). */
  appName: string;
}

/** A rendered mail. */
export interface MailMessage {
  kind: MailKind;
  to: string;
  subject: string;
  text: string;
  html: string;
}

/**
 * Sends one rendered mail; rejects when it was not accepted (the queue retries). An app that
 * embeds Rotor may supply its own (`CreateRotorOptions.mailer`) instead of SMTP.
 */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
  /** Releases connections (SMTP pool); called once when Rotor closes. */
  close?(): Promise<void>;
}
