import { addressSubject } from '../limits/address-subject.js';

/**
 * The subject of address limits: an IPv6 client counts by its /64 (address-subject.ts); callers
 * without an address (the CLI, an embedding app that passes none) share one subject.
 */
export function limitAddress(ip: string | null | undefined): string {
  return ip ? addressSubject(ip) : 'unknown';
}
