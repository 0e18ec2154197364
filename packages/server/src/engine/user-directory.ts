import type { Clock } from '../clock.js';
import { normalizeEmail } from '../accounts/email.js';
import type { PasswordHasher } from '../passwords/passwords.js';
import type { Store, UserRow } from '../store/store.js';

/** A user of the app's own user table, as its {@link UserDirectory} reports it. */
export interface DirectoryUser {
  /** Stable and unique: Rotor's sessions, events and access tokens (`sub`) name the user by it. */
  id: string;
  email: string;
  name?: string | null;
  /** argon2id or bcrypt (`$2a$`/`$2b$`/`$2y$`); null when the user has no password. */
  passwordHash: string | null;
}

/**
 * The app's own user table (`CreateRotorOptions.users`, issue 16): Rotor finds users and their
 * password hashes there instead of in its own `users` table, and writes new hashes back (a
 * password change, a bcrypt hash upgraded to argon2id). Rotor keeps a mirror row per directory
 * user (id, email, name; never the hash) so sessions, the session epoch and foreign keys work.
 */
export interface UserDirectory {
  /** The user a login names (what the user typed in the login's `email` field), if any. */
  findByLogin(login: string): Promise<DirectoryUser | undefined>;
  findById(id: string): Promise<DirectoryUser | undefined>;
  /** Stores `hash` (argon2id, PHC string) as the user's new password hash. */
  updatePasswordHash(id: string, hash: string): Promise<void>;
}

/** Where users are found: Rotor's own table, or the app's directory beside its mirror rows. */
export interface UserSourceContext {
  store: Store;
  clock: Clock;
  users?: UserDirectory | undefined;
}

/** A user a login names, with the hash its password is verified against. */
export interface LoginAccount {
  /** Rotor's row (for a directory user, the mirror). */
  user: UserRow;
  passwordHash: string | null;
}

/** The account `login` names: by normalized email in Rotor's table, or the directory's answer. */
export async function findLoginAccount(
  ctx: UserSourceContext,
  login: string,
): Promise<LoginAccount | undefined> {
  if (!ctx.users) {
    const user = await ctx.store.findUserByEmail(normalizeEmail(login));
    return user && { user, passwordHash: user.password_hash };
  }
  const found = await ctx.users.findByLogin(login);
  return found && { user: await mirrorDirectoryUser(ctx, found), passwordHash: found.passwordHash };
}

/** The account of a user id, from wherever users live; undefined for an unknown id. */
export async function findAccountById(
  ctx: UserSourceContext,
  id: string,
): Promise<LoginAccount | undefined> {
  if (!ctx.users) {
    const user = await ctx.store.findUserById(id);
    return user && { user, passwordHash: user.password_hash };
  }
  const found = await ctx.users.findById(id);
  return found && { user: await mirrorDirectoryUser(ctx, found), passwordHash: found.passwordHash };
}

/**
 * Rotor's mirror row of a directory user, created or brought up to date. A directory answer
 * without an id or an email is the app's bug: a TypeError says so rather than a login failing
 * for no visible reason.
 */
export async function mirrorDirectoryUser(
  ctx: UserSourceContext,
  found: DirectoryUser,
): Promise<UserRow> {
  if (typeof found.id !== 'string' || found.id === '' || typeof found.email !== 'string') {
    throw new TypeError('UserDirectory answered a user without a string id and email.');
  }
  return ctx.store.mirrorUser({
    id: found.id,
    email: normalizeEmail(found.email),
    name: found.name?.trim() || null,
    created_at: ctx.clock.now(),
  });
}

/**
 * After a successful verification: replaces a bcrypt hash with an argon2id one of the same
 * password, in Rotor's table or through the directory. Returns the user row to start the session
 * with (Rotor's row carries the new hash, which `startSession` compares against).
 */
export async function upgradeWeakHash(
  ctx: UserSourceContext & { passwords: PasswordHasher },
  account: LoginAccount,
  password: string,
): Promise<UserRow> {
  const { user, passwordHash } = account;
  if (passwordHash === null || !ctx.passwords.needsRehash(passwordHash)) return user;
  const upgraded = await ctx.passwords.hash(password);
  if (ctx.users) {
    await ctx.users.updatePasswordHash(user.id, upgraded);
    return user;
  }
  // Conditional: a password change that committed meanwhile keeps its hash; then this login
  // fails in startSession as any login verified against an old password does.
  const done = await ctx.store.upgradePasswordHash(user.id, passwordHash, upgraded);
  return done ? { ...user, password_hash: upgraded } : user;
}
