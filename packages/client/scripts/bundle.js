// Bundles the browser entry into one minified ES module and prints its gzip size (budget: 5 kB;
// 4 kB until DPoP's key and proofs, about 1.2 kB, came in with issue 18).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const outfile = 'dist/browser/rotor-client.js';
await build({
  entryPoints: ['dist/index.js'],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outfile,
  legalComments: 'none',
});
const bytes = readFileSync(outfile);
const gzip = gzipSync(bytes, { level: 9 }).length;
const BUDGET = 5120;
console.log(`@rotor/client browser bundle: ${bytes.length} B, ${gzip} B gzip (budget ${BUDGET} B)`);
if (gzip > BUDGET) {
  console.error(`@rotor/client: the browser bundle is over its ${BUDGET} B gzip budget`);
  process.exit(1);
}
