import { isIP, SocketAddress } from 'node:net';

/**
 * One spelling per IP address: IPv4 as given (Node's `isIP` refuses leading zeros and other
 * ambiguous forms), IPv6 as `inet_ntop` writes it (RFC 5952: lower case, the longest run of zeros
 * as `::`), and an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, RFC 4291 §2.5.5.2) as the IPv4 address
 * it maps, so a dual-stack socket and an IPv4 one name the same client alike. Returns `undefined` for
 * anything else: a host name, a port (`1.2.3.4:80`), brackets, spaces, or an IPv6 zone (`%eth0`),
 * which means nothing off the link it came from.
 * @example canonicalAddress('2001:DB8:0::1') // '2001:db8::1'
 * @example canonicalAddress('::ffff:127.0.0.1') // '127.0.0.1'
 */
export function canonicalAddress(text: string): string | undefined {
  const family = isIP(text);
  if (family === 4) return text;
  if (family !== 6 || text.includes('%')) return undefined;
  const groups = ipv6Groups(text);
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return new SocketAddress({ address: text, family: 'ipv6' }).address;
}

/**
 * The eight 16-bit groups of an IPv6 address that `isIP` accepted (no zone): `::` expanded, and a
 * dotted IPv4 tail (`::ffff:1.2.3.4`) read as the last two groups (RFC 4291 §2.2).
 */
export function ipv6Groups(address: string): number[] {
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => parseInt(group, 16));
}

/** The `BlockList` family of a canonical address (`canonicalAddress`): IPv6 has colons, IPv4 none. */
export function addressFamily(address: string): 'ipv4' | 'ipv6' {
  return address.includes(':') ? 'ipv6' : 'ipv4';
}
