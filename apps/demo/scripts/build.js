// Assembles dist/: the page's files plus the client SDK's browser bundle, served as they are.
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const client = dirname(require.resolve('@rotor/client/package.json'));
rmSync('dist', { recursive: true, force: true });
mkdirSync('dist');
cpSync('public', 'dist', { recursive: true });
cpSync(join(client, 'dist/browser/rotor-client.js'), 'dist/rotor-client.js');
console.log('@rotor/demo: dist/ assembled');
