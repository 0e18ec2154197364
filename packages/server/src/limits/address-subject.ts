import { SocketAddress } from 'node:net';
import { canonicalAddress, ipv6Groups } from '../lib/ip-address.js';

/**
 * The subject an address-keyed rate limit counts a client under: an IPv4 address itself, and an
 * IPv6 address's /64 prefix, written `2001:db8:1:2::/64`. A /64 is the smallest network an ISP
 * assigns to one subscriber (RFC 6177 §3, RFC 7421 §1), and every host on it picks its own interface
 * identifier at will (SLAAC privacy addresses, RFC 8981), so one client owns 2^64 addresses: counted
 * per address, it would never reach a limit (OWASP Authentication Cheat Sheet, "Login Throttling").
 * An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is the IPv4 client it maps. Text that is not an IP
 * address (the caller should never pass one) comes back unchanged.
 * @example addressSubject('2001:db8:1:2:3:4:5:6') // '2001:db8:1:2::/64'
 * @example addressSubject('::ffff:203.0.113.5') // '203.0.113.5'
 */
export function addressSubject(ip: string): string {
  const address = canonicalAddress(ip.split('%')[0]!);
  if (address === undefined) return ip;
  if (!address.includes(':')) return address;
  const prefix = ipv6Groups(address)
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':');
  // inet_ntop writes the prefix in its one RFC 5952 spelling (2001:db8:: rather than 2001:db8:0:0::).
  return `${new SocketAddress({ address: `${prefix}::`, family: 'ipv6' }).address}/64`;
}
