import type { FastifyRequest } from 'fastify';
import { storableHeaderText } from '../lib/plain-text.js';
import type { ClientInfo } from '../sessions/context.js';

/**
 * Where a request comes from, as kept on its session and in the audit log: the address (the
 * client's behind a trusted proxy) and the user agent, each stripped of control characters and cut
 * to 512 characters (`storableHeaderText`), so no header value can make the database refuse a write.
 */
export function clientInfoOf(request: FastifyRequest): ClientInfo {
  return {
    ip: storableHeaderText(request.clientAddress),
    userAgent: storableHeaderText(request.headers['user-agent']),
  };
}
