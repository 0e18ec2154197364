/** Times are milliseconds since the Unix epoch, so both dialects compare them the same way. */
export interface UsersTable {
  id: string;
  /** Normalized: trimmed, NFKC, lower case. */
  email: string;
  name: string | null;
  /**
   * argon2id, or a bcrypt hash imported from another system (upgraded at the next login); null
   * for a user without a Rotor password: created for an external sign-in, or mirrored from the
   * app's own user table, which keeps the hash (engine/user-directory.ts).
   */
  password_hash: string | null;
  created_at: number;
  /**
   * Bumped whenever all of the user's sessions end at once (password change, sign out everywhere):
   * a session is only created under the epoch its credentials were verified in.
   */
  session_epoch: number;
  /**
   * When the user last proved the address by a link mailed to it (issue 17): verification, a
   * password reset, an email change's confirmation; null while unproven. An email change that is
   * confirmed sets it to the confirmation's time (the new address was proven by its link).
   */
  email_verified_at: number | null;
}

/** One row per device: the per-device key store of the seeds. */
export interface SessionsTable {
  id: string;
  user_id: string;
  device_name: string | null;
  user_agent: string | null;
  ip: string | null;
  /** The cookie delivery (`split` or `cookies`) that a header-less cookie refresh answers with. */
  delivery: string;
  created_at: number;
  last_used_at: number;
  /** When the session ends if its refresh token is not used: the live token's expiry. */
  idle_expires_at: number;
  /** Hard end regardless of activity; null when the maximum lifetime is disabled. */
  max_expires_at: number | null;
  revoked_at: number | null;
  revoked_reason: string | null;
  /** The OAuth client the session was issued to; null for Rotor's own `/auth` API. */
  client_id: string | null;
  /**
   * RFC 9449: the JWK SHA-256 thumbprint of the key the session was bound to at sign-in; every
   * refresh needs a proof by that key. Null: a Bearer session.
   */
  dpop_jkt: string | null;
}

/** Seed 000's `user_tokens`: hashes of refresh tokens, never the tokens. */
export interface UserTokensTable {
  /** Primary key: a refresh token is only ever looked up by its hash. */
  token_hash: string;
  session_id: string;
  type: string;
  created_at: number;
  expires_at: number;
  rotated_at: number | null;
  successor_hash: string | null;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: string;
  private_jwk: string;
  created_at: number;
  retired_at: number | null;
}

export interface SecretsTable {
  name: string;
  value: string;
  created_at: number;
}

/** Rate-limit state per hashed subject (limits/window.ts): no email or address in clear. */
export interface RateLimitsTable {
  key: string;
  /** JSON array of attempt times (ms), oldest first. */
  events: string;
  expires_at: number;
}

/** The audit log: one row per security event (audit/audit-log.ts). */
export interface EventsTable {
  id: string;
  /** Null for a failed login with an email that has no account. */
  user_id: string | null;
  type: string;
  at: number;
  ip: string | null;
  user_agent: string | null;
  session_id: string | null;
}

/** Single-use login tickets (engine/login-tickets.ts): the ticket's SHA-256, never the ticket. */
export interface LoginTicketsTable {
  ticket_hash: string;
  user_id: string;
  device_name: string | null;
  /** The user's session epoch at issue: a ticket older than a sign-out everywhere is void. */
  session_epoch: number;
  created_at: number;
  expires_at: number;
}

/** Why an account mail's token was issued (engine/email-tokens.ts). */
export type EmailTokenPurpose = 'password_reset' | 'verify_email' | 'email_change' | 'email_undo';

/**
 * Single-use tokens of the account mails (issue 17): the token's SHA-256, never the token. Each
 * row names the address its link was mailed to; an email change's rows also name the new address.
 */
export interface EmailTokensTable {
  token_hash: string;
  user_id: string;
  purpose: EmailTokenPurpose;
  /** The address the link went to: the account's (reset, verify, undo) or the new one (change). */
  email: string;
  /** An email change's new address (purposes `email_change` and `email_undo`); else null. */
  new_email: string | null;
  created_at: number;
  expires_at: number;
}

/** The jtis of accepted DPoP proofs, by hash, until a proof with them would be too old anyway. */
export interface DpopProofsTable {
  key: string;
  expires_at: number;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  user_tokens: UserTokensTable;
  signing_keys: SigningKeysTable;
  secrets: SecretsTable;
  rate_limits: RateLimitsTable;
  events: EventsTable;
  login_tickets: LoginTicketsTable;
  email_tokens: EmailTokensTable;
  dpop_proofs: DpopProofsTable;
}
