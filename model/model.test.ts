import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const hasSpin = spawnSync('spin', ['-V']).status === 0;

// docs/protocol.md: CI installs Spin (.ci/run); elsewhere the test is skipped when Spin is missing.
describe('the model of the refresh protocol (docs/protocol.md)', () => {
  it.skipIf(!hasSpin && !process.env.CI)(
    'verifies every configuration with the fixes on, and finds each fix’s violation with it off',
    () => {
      const run = spawnSync(process.execPath, [join(root, 'model/check.mjs')], {
        cwd: root,
        encoding: 'utf8',
      });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    },
    900_000,
  );
});
