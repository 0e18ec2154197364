#!/usr/bin/env node
// The `rotor` command. A committed file rather than dist/cli/main.js: npm links a workspace's bins
// before `prepare` builds dist, and skips a bin whose file does not exist yet, so on a fresh clone
// `npx rotor` found nothing to run. This file always exists; the build only has to have run.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error(
    `rotor: ${fileURLToPath(main)} is missing: run npm run build (or npm install) in the repository first`,
  );
  process.exit(1);
}
await import(main.href);
