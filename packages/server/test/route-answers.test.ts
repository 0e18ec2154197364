import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createServer, RotorError } from '@rotor/server';
import { tempDir, testConfig } from './helpers.js';

const { dir, cleanup } = tempDir();
afterAll(cleanup);

describe('route answers', () => {
  it('an error code a route did not declare is logged, one it declared is not', async () => {
    const lines: { msg?: string; code?: string }[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as { msg?: string; code?: string });
        done();
      },
    });
    const app = await createServer(await testConfig(dir), { logger: { level: 'warn', stream } });
    try {
      const answers = { success: { 204: null }, errors: ['not_found' as const] };
      app.get('/declared', { config: { answers } }, async () => {
        throw new RotorError('not_found', 'Nothing here.');
      });
      app.get('/undeclared', { config: { answers } }, async () => {
        throw new RotorError('email_taken', 'Taken.');
      });
      expect((await app.inject({ url: '/declared' })).statusCode).toBe(404);
      expect(lines.filter((line) => line.code !== undefined)).toEqual([]);
      expect((await app.inject({ url: '/undeclared' })).statusCode).toBe(409);
      expect(lines.filter((line) => line.msg?.includes('declared answers'))).toMatchObject([
        { code: 'email_taken' },
      ]);
    } finally {
      await app.close();
    }
  });
});
