import { BlockList } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TrustProxy } from '../config/load-config.js';
import { addressFamily, canonicalAddress } from '../lib/ip-address.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The client's IP address by `ROTOR_TRUST_PROXY` (see {@link clientAddressResolver}), computed
     * once per request on first read; `null` when the socket has no peer address (closed).
     */
    readonly clientAddress: string | null;
  }
}

/** What the client address is computed from: the socket's peer and the request's headers. */
export type AddressedRequest = Pick<FastifyRequest, 'socket' | 'headers'>;

/**
 * Builds the function that tells a request's client address under `trust` (the proxies are
 * compiled once). The socket's peer is the first hop; while a hop is a trusted proxy, the next
 * entry of `X-Forwarded-For` leftwards is taken: the first untrusted hop is the client. Entries
 * left of it were written by the client or its proxies and are never believed, whatever they say
 * (RFC 7239 §8.1; MDN, "X-Forwarded-For", "Selecting an IP address": the right-most untrusted
 * entry). An entry that is not an IP address (a name, `unknown`; an address with a port is read
 * as the address) makes the client unknown (`null`), so a session never stores arbitrary text as
 * its IP, and the trusted proxy is never taken for the client. Every hop trusted:
 * the left-most entry. Addresses come back in one spelling (`canonicalAddress`: IPv4-mapped IPv6
 * as IPv4, IPv6 per RFC 5952).
 * @example
 * const addressOf = clientAddressResolver({ hops: 1 });
 * addressOf(request); // '9.9.9.9' for `X-Forwarded-For: evil, 9.9.9.9` through one proxy
 */
export function clientAddressResolver(
  trust: TrustProxy,
): (request: AddressedRequest) => string | null {
  const trusted = trustRule(trust);
  return (request) => {
    const peer = request.socket.remoteAddress;
    if (peer === undefined) return null;
    // The kernel's text is an address; only a zone (%eth0) stops canonicalAddress, and it stays.
    const socket = canonicalAddress(peer) ?? peer;
    if (trusted === undefined) return socket;
    const header = request.headers['x-forwarded-for'];
    if (header === undefined) return socket;
    // Node joins repeated X-Forwarded-For headers with ", "; an array only comes from a caller.
    const entries = (Array.isArray(header) ? header.join(',') : header).split(',');
    let address = socket;
    for (let hop = 0; trusted(address, hop); hop += 1) {
      const entry = entries[entries.length - 1 - hop];
      if (entry === undefined) return address;
      const parsed = forwardedAddress(entry);
      // Not an address: the client is unknown. Never the trusted proxy itself, which may be on
      // loopback (GET /metrics) and would make every such client one (the attack review found
      // `1.2.3.4:5678`, `unknown` and `127.1` turning into 127.0.0.1 behind a local proxy).
      if (parsed === undefined) return null;
      address = parsed;
    }
    return address;
  };
}

/**
 * The address of an `X-Forwarded-For` entry: an IP address, also as proxies that append the port
 * write it (`1.2.3.4:5678`, `[2001:db8::1]:443`, `[2001:db8::1]`; Azure Application Gateway and IIS
 * ARR do), its IPv6 zone dropped (it means nothing off the proxy's link). Undefined for anything
 * else: a name, `unknown`, an obfuscated IPv4 (`127.1`, `0177.0.0.1`, `2130706433`).
 */
function forwardedAddress(entry: string): string | undefined {
  let text = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(text);
  const withPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(text);
  if (bracketed) text = bracketed[1]!;
  else if (withPort) text = withPort[1]!;
  return canonicalAddress(text.replace(/%[^%]*$/, ''));
}

/** Whether the `hop`-th address from the socket (0: the peer) is a trusted proxy; none: no rule. */
function trustRule(trust: TrustProxy): ((address: string, hop: number) => boolean) | undefined {
  if ('hops' in trust) {
    const { hops } = trust;
    return hops === 0 ? undefined : (_address, hop) => hop < hops;
  }
  const proxies = new BlockList();
  for (const { family, address, prefix } of trust.proxies) {
    proxies.addSubnet(address, prefix, family);
  }
  return (address) => proxies.check(address, addressFamily(address));
}

const ADDRESS = Symbol('rotor.clientAddress');

/**
 * Gives every request of `app` a `clientAddress` by `trust`, computed on first read and kept for
 * the rest of the request (most requests never read it). Rotor no longer uses Fastify's
 * `request.ip`: Fastify's `trustProxy` is off, so `request.ip` is the socket's peer.
 */
export function installClientAddress(app: FastifyInstance, trust: TrustProxy): void {
  const addressOf = clientAddressResolver(trust);
  // Declared on every request (as undefined) so the slot does not change the request's shape.
  app.decorateRequest(ADDRESS, undefined);
  app.decorateRequest('clientAddress', {
    getter(this: FastifyRequest & { [ADDRESS]?: string | null }) {
      if (this[ADDRESS] === undefined) this[ADDRESS] = addressOf(this);
      return this[ADDRESS];
    },
  });
}
