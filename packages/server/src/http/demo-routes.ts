import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/** The page may load only its own files and talk only to this server: XSS has nowhere to go. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** Pages and files, not API: left out of the OpenAPI document. */
const HIDDEN = { schema: { hide: true } };

/** The folder of the demo page's built files, or undefined when `@rotor/demo` is not installed. */
export function findDemoDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('@rotor/demo/package.json')), 'dist');
  } catch {
    return undefined;
  }
}

/**
 * Serves the demo page at `/` and its files under `/demo/`, read once at start (no build step at run
 * time), and the client SDK's browser bundle at `/sdk/rotor-client.js` for pages of your own.
 */
export async function demoRoutes(app: FastifyInstance, { dir }: { dir: string }): Promise<void> {
  const file = (name: string) => ({
    body: readFileSync(join(dir, name)),
    type: TYPES[name.split('.').pop()!]!,
  });
  const index = file('index.html');
  const assets = new Map(
    ['app.js', 'timeline.js', 'style.css', 'rotor-client.js'].map((name) => [name, file(name)]),
  );

  app.get('/', HIDDEN, async (_request, reply) =>
    reply
      .type(index.type)
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('cache-control', 'no-cache')
      .send(index.body),
  );
  app.get<{ Params: { name: string } }>('/demo/:name', HIDDEN, async (request, reply) => {
    const asset = assets.get(request.params.name);
    if (!asset) return reply.callNotFound();
    return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
  });
  app.get('/sdk/rotor-client.js', HIDDEN, async (_request, reply) => {
    const asset = assets.get('rotor-client.js')!;
    return reply.type(asset.type).header('cache-control', 'public, max-age=300').send(asset.body);
  });
}
