#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import pino from 'pino';
import { loadConfig, type RotorConfig } from '../config/load-config.js';
import { ConfigError, RotorError } from '../errors.js';
import { createServer } from '../http/create-server.js';
import { endLog, flushLogSync } from '../http/server-log.js';
import { presentEvent, presentSessionRecord, presentUser } from '../http/presenters.js';
import { createRotor, type Rotor } from '../rotor.js';
import { MAX_PAGE_LIMIT, type Page, type PageRequest } from '../lib/paging.js';
import { migrate } from '../store/open-store.js';
import { VERSION } from '../version.js';

/** `rotor`: serve, migrate and administer users and sessions. */
export function buildCli(env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command('rotor')
    .description('Rotor: access and refresh tokens done right.')
    .version(VERSION)
    .showHelpAfterError();

  program
    .command('serve')
    .description('Start the HTTP server (ROTOR_HOST:ROTOR_PORT; see ROTOR_* variables).')
    .action(async () => serve(loadConfig(env)));

  program
    .command('migrate')
    .description(
      'Apply pending database migrations to ROTOR_DATABASE_URL (in ROTOR_DATABASE_SCHEMA, with ROTOR_TABLE_PREFIX) and exit.',
    )
    .action(async () => {
      const config = loadConfig(env);
      const applied = await migrate({
        url: config.databaseUrl,
        schema: config.databaseSchema,
        tablePrefix: config.tablePrefix,
      });
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    });

  program
    .command('prune')
    .description(
      'Delete sessions that ended, and rotated tokens that expired, more than ROTOR_RETENTION ago.',
    )
    .action(async () => {
      await withRotor(env, async (rotor) => {
        const report = await rotor.prune();
        console.log(
          JSON.stringify({ pruned: { ...report, cutoff: new Date(report.cutoff).toISOString() } }),
        );
      });
    });

  const keys = program.command('keys').description('Manage the signing keys of access tokens.');
  keys
    .command('list')
    .description('List the published keys: the signing key and retired keys still in the JWKS.')
    .action(async () => {
      await withRotor(env, async (rotor) => {
        const current = rotor.keys.current.kid;
        const rows = rotor.keys.list().map((key) => ({
          kid: key.kid,
          alg: key.alg,
          createdAt: new Date(key.createdAt).toISOString(),
          signing: key.kid === current,
          retiresAt: key.retiresAt === null ? null : new Date(key.retiresAt).toISOString(),
        }));
        console.log(JSON.stringify({ keys: rows }, null, 2));
      });
    });
  keys
    .command('rotate')
    .description(
      'Create a new signing key; the old one stays in the JWKS until the tokens it signed expire.',
    )
    .option(
      '--retire-now',
      'a leaked key: retire every other key at once; tokens they signed stop working on every instance within a second, and clients refresh',
    )
    .action(async (options: { retireNow?: boolean }) => {
      await withRotor(env, async (rotor) => {
        const key = await rotor.keys.rotate(rotor.config.accessTtl, {
          retireNow: options.retireNow === true,
        });
        console.log(
          JSON.stringify({
            rotated: { kid: key.kid, createdAt: new Date(key.createdAt).toISOString() },
            ...(options.retireNow && { retired: 'now' }),
          }),
        );
      });
    });

  const users = program.command('users').description('Manage user accounts.');
  users
    .command('create')
    .description('Create a user account.')
    .requiredOption('--email <email>', 'email address')
    .option('--password <password>', 'password (8 to 256 characters); or set ROTOR_USER_PASSWORD')
    .option('--name <name>', 'display name')
    .action(async (options: { email: string; password?: string; name?: string }) => {
      const password = options.password ?? env.ROTOR_USER_PASSWORD;
      if (!password)
        throw new RotorError('invalid_request', 'give --password or set ROTOR_USER_PASSWORD');
      await withRotor(env, async (rotor) => {
        const user = await rotor.register({
          email: options.email,
          password,
          name: options.name ?? null,
          sendVerification: false,
        });
        console.log(JSON.stringify({ user: presentUser(user) }, null, 2));
      });
    });

  users
    .command('send-reset')
    .description(
      'Mail a password reset link (30 minutes) to a user, as if they had asked; without ROTOR_SMTP_URL the link is logged.',
    )
    .requiredOption('--email <email>', 'email of the user')
    .action(async (options: { email: string }) => {
      await withRotor(env, async (rotor) => {
        const user = await findUser(rotor, options.email);
        await rotor.requestPasswordReset({ email: user.email });
        // The look-up, the token and the mail run after the request is admitted; wait for them
        // (close() then waits for the queue to hand the mail over).
        await rotor.whenIdle();
        console.log(JSON.stringify({ passwordReset: { email: user.email, expiresInMinutes: 30 } }));
      });
    });

  program
    .command('events')
    .description("List a user's recent security events (the audit log), newest first.")
    .requiredOption('--email <email>', 'email of the user')
    .option('--limit <n>', 'how many events', '50')
    .action(async (options: { email: string; limit: string }) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
        throw new RotorError('invalid_request', '--limit must be a whole number from 1 to 10000');
      }
      await withRotor(env, async (rotor) => {
        const user = await findUser(rotor, options.email);
        const events = await collect((page) => rotor.listEvents(user.id, page), limit);
        console.log(JSON.stringify({ events: events.map(presentEvent) }, null, 2));
      });
    });

  const sessions = program
    .command('sessions')
    .description("Inspect and revoke a user's device sessions.");
  sessions
    .command('list')
    .description('List the live sessions of a user, newest first.')
    .requiredOption('--email <email>', 'email of the user')
    .action(async (options: { email: string }) => {
      await withRotor(env, async (rotor) => {
        const user = await findUser(rotor, options.email);
        const list = await collect((page) => rotor.listSessions(user.id, page), Infinity);
        // No `current`: the command line is signed in to none of the sessions.
        console.log(JSON.stringify({ sessions: list.map(presentSessionRecord) }, null, 2));
      });
    });
  sessions
    .command('revoke')
    .description('Revoke one session of a user (--id) or all of them (--all).')
    .requiredOption('--email <email>', 'email of the user')
    .option('--id <id>', 'the session to revoke')
    .option('--all', 'revoke every session of the user')
    .action(async (options: { email: string; id?: string; all?: boolean }) => {
      if (!options.id === !options.all) {
        throw new RotorError('invalid_request', 'give exactly one of --id ID or --all');
      }
      await withRotor(env, async (rotor) => {
        const user = await findUser(rotor, options.email);
        if (options.all) {
          // An operator's act: the devices are told `admin`, not that the user signed out.
          const count = await rotor.logoutAll(user.id, CLI_CLIENT, 'admin');
          console.log(`revoked ${count} session(s)`);
        } else {
          const revoked = await rotor.revokeSession(user.id, options.id!, CLI_CLIENT);
          console.log(`${revoked ? 'revoked' : 'already revoked:'} session ${options.id}`);
        }
      });
    });

  return program;
}

/** How the audit log names revocations made from the command line. */
const CLI_CLIENT = { ip: null, userAgent: 'rotor cli' };

async function withRotor(
  env: NodeJS.ProcessEnv,
  fn: (rotor: Rotor) => Promise<void>,
): Promise<void> {
  // Beside a running server: the server holds the SQLite file, a command only visits it.
  const config = loadConfig(env);
  const rotor = await createRotor(config, {
    sqliteServerLock: false,
    // Logs (the development outbox's links, mail that failed) go to stderr: stdout is the
    // command's JSON answer.
    log: pino({ level: config.logLevel }, pino.destination(2)),
  });
  try {
    await fn(rotor);
  } finally {
    await rotor.close();
  }
}

/**
 * Up to `max` items of a paged list, read page by page: an operator sees the whole list (or as much
 * of it as `--limit` asks for), while no single read is larger than an HTTP client's.
 */
async function collect<T>(
  list: (page: PageRequest) => Promise<Page<T>>,
  max: number,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<T> = await list({
      limit: Math.min(MAX_PAGE_LIMIT, max - items.length),
      cursor,
    });
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null && items.length < max);
  return items;
}

async function findUser(rotor: Rotor, email: string) {
  const user = await rotor.findUserByEmail(email);
  if (!user) throw new RotorError('not_found', `no user with email ${email}`);
  return user;
}

/**
 * Starts the server and stops it gracefully on SIGTERM or SIGINT: in-flight requests finish, and
 * every log line is written before the process exits (the log is asynchronous, server-log.ts). A
 * crash (an uncaught exception, an unhandled rejection) writes a `fatal` line and what the log
 * still held, synchronously, then exits 1.
 */
async function serve(config: RotorConfig): Promise<void> {
  const app = await createServer(config);
  const crash = (error: unknown, what: string) => {
    app.log.fatal({ err: error }, what);
    flushLogSync(app.log);
    process.exit(1);
  };
  process.on('uncaughtException', (error) => crash(error, 'uncaught exception'));
  process.on('unhandledRejection', (reason) => crash(reason, 'unhandled rejection'));
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    // The database is open and timers may run: close, so the process exits with the message.
    await app.close();
    throw listenError(error, config);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    const exit = (code: number) => endLog(app.log).then(() => process.exit(code));
    app.close().then(
      () => exit(0),
      (error: unknown) => {
        app.log.error({ err: error }, 'shutdown failed');
        return exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/**
 * The errors of `listen` a user meets first, as a setting to change: Node's own message
 * (`listen EADDRINUSE: address already in use 127.0.0.1:3000`) names neither the variable nor
 * what to do.
 */
function listenError(error: unknown, config: RotorConfig): unknown {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  const where = `port ${config.port} on ${config.host}`;
  if (code === 'EADDRINUSE') {
    return new ConfigError(
      'ROTOR_PORT',
      `${where} is already in use (another Rotor, or another program): stop it, or set ROTOR_PORT to a free port`,
    );
  }
  if (code === 'EACCES') {
    return new ConfigError(
      'ROTOR_PORT',
      `${where} needs privileges this process lacks (ports below 1024): set ROTOR_PORT to 1024 or above`,
    );
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
    return new ConfigError('ROTOR_HOST', `${config.host} is not an address of this machine`);
  }
  return error;
}

/** Runs the CLI; errors print one line naming the problem (no stack trace) and exit 1. */
export async function main(argv: string[] = process.argv): Promise<void> {
  const program = buildCli();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    if (error instanceof ConfigError) {
      console.error(`rotor: invalid configuration: ${error.message}`);
    } else if (error instanceof RotorError) {
      console.error(`rotor: ${error.code}: ${error.message}`);
    } else {
      console.error(`rotor: ${error instanceof Error ? error.message : String(error)}`);
    }
    process.exitCode = 1;
  }
}

await main();
