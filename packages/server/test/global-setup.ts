import type { TestProject } from 'vitest/node';
import { findPostgresBin, startPostgres } from '@rotor/testkit';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the test PostgreSQL server; empty when none is available. */
    postgresUrl: string;
  }
}

/**
 * Provides a PostgreSQL server to every test file: `ROTOR_TEST_POSTGRES_URL` when set, otherwise
 * a throwaway server started from the installed binaries. Without PostgreSQL the PostgreSQL half of
 * the suite is skipped, loudly; under `CI=true` that is a failure.
 */
export default async function setup(project: TestProject) {
  const external = process.env.ROTOR_TEST_POSTGRES_URL;
  if (external) {
    project.provide('postgresUrl', external);
    return undefined;
  }
  const bin = findPostgresBin();
  if (!bin) {
    const message =
      'PostgreSQL is not installed (no initdb/pg_ctl found): the PostgreSQL tests are SKIPPED. ' +
      'Install the `postgresql` package or set ROTOR_TEST_POSTGRES_URL.';
    if (process.env.CI === 'true') throw new Error(`${message} CI requires PostgreSQL.`);
    console.warn(`\n${'!'.repeat(100)}\n${message}\n${'!'.repeat(100)}\n`);
    project.provide('postgresUrl', '');
    return undefined;
  }
  const server = await startPostgres(bin);
  project.provide('postgresUrl', server.url);
  return () => server.destroy();
}
