import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ERRORS, type RotorErrorCode } from '../errors.js';

/** What a request that never became a request is answered with, by Node's parser error code. */
const ANSWERS: Record<string, { code: RotorErrorCode; message?: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { code: 'request_timeout' },
  HPE_HEADER_OVERFLOW: { code: 'headers_too_large' },
};
const MALFORMED = {
  code: 'invalid_request',
  message: 'The request is not valid HTTP/1.1.',
} as const;

/**
 * Fastify's `clientErrorHandler`: errors Node's HTTP parser raises before there is a request (a slow
 * client cut by the timeouts, oversized headers, bytes that are not HTTP) are answered in the JSON
 * error shape of every other error (docs/api.md, "Errors"), then the connection is closed. Fastify's
 * default answers with a shape of its own.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  // A reset connection is gone: nothing to answer (Node's own rule).
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const answer = (error.code !== undefined && ANSWERS[error.code]) || MALFORMED;
  const { status, message } = ERRORS[answer.code];
  const body = JSON.stringify({ error: answer.code, message: answer.message ?? message });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
