import type { StoreContext } from './context.js';
import { userRow } from './rows.js';
import type { UserRow } from './store.js';

/** Accounts: the `users` table. */
export interface UserStore {
  /**
   * Inserts a user unless the email is taken, or reserved by a live undo link of another account's
   * email change ({@link UserStore.isEmailReserved}, at `user.created_at`); tells which.
   */
  insertUser(user: UserRow): Promise<boolean>;
  findUserByEmail(email: string): Promise<UserRow | undefined>;
  findUserById(id: string): Promise<UserRow | undefined>;
  /**
   * Sets the password hash and bumps the user's session epoch (no session survives the change);
   * the user's pending login tickets, reset links and email-change confirmations go with it (a
   * hijacker who asked to move the account loses the change when the owner sets a new password).
   */
  updatePasswordHash(userId: string, passwordHash: string): Promise<void>;
  /**
   * Bumps the user's session epoch: a login verified before it may not create a session, nor a
   * login ticket issued before it (the user's pending tickets are deleted).
   */
  bumpSessionEpoch(userId: string): Promise<void>;
  /**
   * Reads a user and holds its row until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite's
   * write lock does the same), so a session created under it cannot race a change of it.
   */
  lockUser(id: string): Promise<UserRow | undefined>;
  /**
   * Rotor's row of a user of the app's own user table (engine/user-directory.ts): inserted when
   * missing, its email and name brought up to date; the password hash stays the directory's, and
   * the session epoch Rotor's. Throws (unique violation) when another user has the email.
   */
  mirrorUser(user: Pick<UserRow, 'id' | 'email' | 'name' | 'created_at'>): Promise<UserRow>;
  /**
   * Replaces a verified hash with a stronger one of the same password (bcrypt → argon2id), only
   * while `oldHash` is still stored; the session epoch stays (the password did not change).
   */
  upgradePasswordHash(userId: string, oldHash: string, newHash: string): Promise<boolean>;
  /** Marks the user's address proven at `at` (ms) (issue 17). */
  setEmailVerified(userId: string, at: number): Promise<void>;
  /**
   * Moves the user to `email`, proven at `verifiedAt`; false, changing nothing, when another user
   * has it (checked first, and the unique index decides a race) or holds it reserved by a live undo
   * link ({@link UserStore.isEmailReserved}, at `verifiedAt`).
   */
  changeEmail(userId: string, email: string, verifiedAt: number): Promise<boolean>;
  /**
   * Whether `email` is reserved at `now` for an account other than `exceptUserId`: an email change
   * moved that account away from it and the undo link mailed to it still works (issue 17). Until
   * the link expires or is used, nobody else may sign up with the address or move to it, or the
   * undo would collide, or hand the account's old address to someone else.
   */
  isEmailReserved(email: string, now: number, exceptUserId?: string): Promise<boolean>;
}

/** A unique index refused the write (PostgreSQL 23505, SQLite's constraint error). */
function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** The {@link UserStore} over Kysely. */
export function userStore({ db, postgres, changed }: StoreContext): UserStore {
  // A login ticket is a sign-in verified when issued: one issued before the epoch moved is void.
  const deleteLoginTickets = async (userId: string) => {
    await db.deleteFrom('login_tickets').where('user_id', '=', userId).execute();
  };
  // A reset link is void once the password changes (issue 17), whoever changed it; so is a pending
  // email change: whoever asked for it knew the old password (a hijacker the owner locks out by
  // resetting it). Undo links stay: they are the old address's defence.
  const deletePasswordResets = async (userId: string) => {
    await db
      .deleteFrom('email_tokens')
      .where('user_id', '=', userId)
      .where('purpose', 'in', ['password_reset', 'email_change'])
      .execute();
  };
  const isEmailReserved = async (email: string, now: number, exceptUserId?: string) => {
    let query = db
      .selectFrom('email_tokens')
      .select('user_id')
      .where('purpose', '=', 'email_undo')
      .where('email', '=', email)
      .where('expires_at', '>', now);
    if (exceptUserId !== undefined) query = query.where('user_id', '!=', exceptUserId);
    return (await query.executeTakeFirst()) !== undefined;
  };
  return {
    isEmailReserved,

    async insertUser(user) {
      // The undo link was made while the old address was still its account's, so it is committed
      // before the address is free: this check cannot miss it.
      if (await isEmailReserved(user.email, user.created_at)) return false;
      const result = await db
        .insertInto('users')
        .values(user)
        .onConflict((oc) => oc.column('email').doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    },

    async findUserByEmail(email) {
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where('email', '=', email)
        .executeTakeFirst();
      return row && userRow(row);
    },

    async findUserById(id) {
      const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      return row && userRow(row);
    },

    async updatePasswordHash(userId, passwordHash) {
      await db
        .updateTable('users')
        .set((eb) => ({
          password_hash: passwordHash,
          session_epoch: eb('session_epoch', '+', 1),
        }))
        .where('id', '=', userId)
        .execute();
      await deleteLoginTickets(userId);
      await deletePasswordResets(userId);
      changed((l) => l.user(userId));
    },

    async bumpSessionEpoch(userId) {
      await db
        .updateTable('users')
        .set((eb) => ({ session_epoch: eb('session_epoch', '+', 1) }))
        .where('id', '=', userId)
        .execute();
      await deleteLoginTickets(userId);
      changed((l) => l.user(userId));
    },

    async lockUser(id) {
      let query = db.selectFrom('users').selectAll().where('id', '=', id);
      if (postgres) {
        query = query.forUpdate();
      } else {
        // SQLite locks the whole database for a writer; a write that changes nothing takes that
        // lock now, so no other process commits between this read and the transaction's writes.
        await db.updateTable('users').set({ id }).where('id', '=', id).execute();
      }
      const row = await query.executeTakeFirst();
      return row && userRow(row);
    },

    async mirrorUser(mirror) {
      await db
        .insertInto('users')
        .values({ ...mirror, password_hash: null, session_epoch: 0, email_verified_at: null })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
      const row = userRow(
        await db
          .selectFrom('users')
          .selectAll()
          .where('id', '=', mirror.id)
          .executeTakeFirstOrThrow(),
      );
      // Written only when the directory's values moved: a write of a user notifies every
      // instance's session cache (PostgreSQL trigger), which a login need not cost.
      if (row.email === mirror.email && row.name === mirror.name) return row;
      await db
        .updateTable('users')
        .set({ email: mirror.email, name: mirror.name })
        .where('id', '=', mirror.id)
        .execute();
      changed((l) => l.user(mirror.id));
      return { ...row, email: mirror.email, name: mirror.name };
    },

    async upgradePasswordHash(userId, oldHash, newHash) {
      const result = await db
        .updateTable('users')
        .set({ password_hash: newHash })
        .where('id', '=', userId)
        .where('password_hash', '=', oldHash)
        .executeTakeFirst();
      const upgraded = Number(result.numUpdatedRows) === 1;
      if (upgraded) changed((l) => l.user(userId));
      return upgraded;
    },

    async setEmailVerified(userId, at) {
      await db
        .updateTable('users')
        .set({ email_verified_at: at })
        .where('id', '=', userId)
        .execute();
      changed((l) => l.user(userId));
    },

    async changeEmail(userId, email, verifiedAt) {
      const holder = await db
        .selectFrom('users')
        .select('id')
        .where('email', '=', email)
        .executeTakeFirst();
      if (holder && holder.id !== userId) return false;
      if (await isEmailReserved(email, verifiedAt, userId)) return false;
      try {
        await db
          .updateTable('users')
          .set({ email, email_verified_at: verifiedAt })
          .where('id', '=', userId)
          .execute();
      } catch (error) {
        if (isUniqueViolation(error)) return false;
        throw error;
      }
      changed((l) => l.user(userId));
      return true;
    },
  };
}
