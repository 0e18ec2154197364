import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import {
  addressSubject,
  clientAddressResolver,
  ConfigError,
  loadConfig,
  type AddressedRequest,
} from '@rotor/server';
import { PASSWORD, registerUser, startTestServer, tempDir } from '../helpers.js';

const { dir, cleanup } = tempDir();
const servers: FastifyInstance[] = [];
afterAll(async () => {
  await Promise.all(servers.map((app) => app.close()));
  cleanup();
});

/** A Rotor server with `env`, listening on 127.0.0.1: the client address comes off a real socket. */
async function listening(env: Record<string, string> = {}) {
  const { app } = await startTestServer(dir, env);
  servers.push(app);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base };
}

/** Logs in over HTTP with `forwardedFor` and returns the IP the new session stored. */
async function sessionIp(
  { app, base }: { app: FastifyInstance; base: string },
  forwardedFor: string,
): Promise<string | null> {
  const email = await registerUser(app);
  const login = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'token-delivery': 'body',
      'x-forwarded-for': forwardedFor,
    },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  expect(login.status).toBe(200);
  const { accessToken } = (await login.json()) as { accessToken: string };
  const list = await fetch(`${base}/auth/sessions`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  const { sessions } = (await list.json()) as { sessions: { ip: string | null }[] };
  expect(sessions).toHaveLength(1);
  return sessions[0]!.ip;
}

describe('ROTOR_TRUST_PROXY over HTTP (the session stores the client address)', () => {
  it('trusting no proxy (the default), X-Forwarded-For is ignored: the socket address is stored', async () => {
    const server = await listening();
    expect(await sessionIp(server, '1.2.3.4')).toBe('127.0.0.1');
  });

  it('behind one trusted hop, the right-most entry is the client: "evil, 9.9.9.9" stores 9.9.9.9', async () => {
    const server = await listening({ ROTOR_TRUST_PROXY: '1' });
    expect(await sessionIp(server, 'evil, 9.9.9.9')).toBe('9.9.9.9');
  });

  it('spoofed left-most entries never win, even when they name a trusted proxy', async () => {
    const hops = await listening({ ROTOR_TRUST_PROXY: '1' });
    expect(await sessionIp(hops, '1.1.1.1, 127.0.0.1, 9.9.9.9')).toBe('9.9.9.9');
    // The client wrote "6.6.6.6, 10.0.0.9"; two proxies of 10/8 appended 203.0.113.7 and 10.1.2.3.
    const list = await listening({ ROTOR_TRUST_PROXY: '10.0.0.0/8,127.0.0.1' });
    expect(await sessionIp(list, '6.6.6.6, 10.0.0.9, 203.0.113.7, 10.1.2.3')).toBe('203.0.113.7');
  });

  it('a right-most entry that is not an IP address makes the client unknown, never the proxy itself', async () => {
    const server = await listening({ ROTOR_TRUST_PROXY: '1' });
    for (const entry of [
      '<script>alert(1)</script>',
      'unknown',
      '',
      '127.1',
      '0177.0.0.1',
      '2130706433',
    ]) {
      expect(await sessionIp(server, `9.9.9.9, ${entry}`)).toBeNull();
    }
  });

  it('an entry written with a port (or in brackets, or with a zone) is read as its address', async () => {
    const server = await listening({ ROTOR_TRUST_PROXY: '1' });
    expect(await sessionIp(server, 'evil, 198.51.100.7:4444')).toBe('198.51.100.7');
    expect(await sessionIp(server, '[2001:db8::1]:443')).toBe('2001:db8::1');
    expect(await sessionIp(server, '[2001:db8::2]')).toBe('2001:db8::2');
    expect(await sessionIp(server, '2001:db8::3%eth0')).toBe('2001:db8::3');
  });

  it('a list of proxy CIDRs is walked through several hops, IPv6 included', async () => {
    const server = await listening({
      ROTOR_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1, 2001:db8:ffff::/48',
    });
    expect(await sessionIp(server, '2001:DB8:1:2:0:0:0:7, 2001:db8:ffff::1, 10.0.0.2')).toBe(
      '2001:db8:1:2::7',
    );
  });

  it('the OAuth token endpoint stores the same client address', async () => {
    const { app } = await startTestServer(dir, {
      ROTOR_TRUST_PROXY: '10.0.0.0/8',
      ROTOR_OAUTH_CLIENTS: '[{"id":"mobile"}]',
    });
    servers.push(app);
    const email = await registerUser(app);
    const token = await app.inject({
      method: 'POST',
      url: '/oauth/token',
      remoteAddress: '10.0.0.1',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-forwarded-for': 'evil, 198.51.100.4',
      },
      payload: new URLSearchParams({
        grant_type: 'password',
        client_id: 'mobile',
        username: email,
        password: PASSWORD,
      }).toString(),
    });
    expect(token.statusCode).toBe(200);
    const sessions = await app.inject({
      method: 'GET',
      url: '/auth/sessions',
      headers: { authorization: `Bearer ${token.json().access_token}` },
    });
    expect(sessions.json().sessions[0].ip).toBe('198.51.100.4');
  });
});

describe('clientAddressResolver', () => {
  const request = (remoteAddress: string | undefined, forwardedFor?: string | string[]) =>
    ({
      socket: { remoteAddress },
      headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
    }) as unknown as AddressedRequest;
  const trusting = (value: string) =>
    clientAddressResolver(loadConfig({ ROTOR_TRUST_PROXY: value }).trustProxy);

  it('names an IPv4 client of a dual-stack socket by its IPv4 address', () => {
    expect(trusting('0')(request('::ffff:203.0.113.5'))).toBe('203.0.113.5');
    expect(trusting('0')(request('2001:DB8::5', '9.9.9.9'))).toBe('2001:db8::5');
  });

  it('judges an IPv4-mapped proxy as its IPv4 address', () => {
    expect(trusting('127.0.0.1')(request('::ffff:127.0.0.1', '198.51.100.4'))).toBe('198.51.100.4');
  });

  it('counts hops from the socket: 2 hops take the second entry from the right', () => {
    expect(trusting('2')(request('10.0.0.1', '6.6.6.6, 198.51.100.4, 10.0.0.2'))).toBe(
      '198.51.100.4',
    );
  });

  it('reads repeated X-Forwarded-For headers as one list', () => {
    expect(trusting('1')(request('10.0.0.1', ['6.6.6.6', '198.51.100.4']))).toBe('198.51.100.4');
  });

  it('takes the left-most entry when every hop is a trusted proxy', () => {
    expect(trusting('3')(request('10.0.0.1', '198.51.100.4'))).toBe('198.51.100.4');
    expect(trusting('10.0.0.0/8')(request('10.0.0.1', '10.0.0.2, 10.0.0.3'))).toBe('10.0.0.2');
  });

  it('drops an IPv6 zone from a forwarded entry; an entry that is no address makes the client unknown', () => {
    expect(trusting('1')(request('10.0.0.1', 'fe80::1%eth0'))).toBe('fe80::1');
    expect(trusting('1')(request('127.0.0.1', 'unknown'))).toBeNull();
  });

  it('answers null when the socket has no peer address', () => {
    expect(trusting('1')(request(undefined, '9.9.9.9'))).toBeNull();
  });
});

describe('ROTOR_TRUST_PROXY at start-up', () => {
  it.each([
    'true',
    'TRUE',
    'yes',
    'on',
    'evil',
    '10.0.0.0/33',
    '2001:db8::/129',
    '101',
    ',',
    // Wider than a /8 or a /7 trusts clients, not proxies: `true` in other words.
    '0.0.0.0/0',
    '::/0',
    '127.0.0.1/0',
    '10.0.0.0/7',
  ])('refuses %s with a message naming the safe forms', (value) => {
    let error: unknown;
    try {
      loadConfig({ ROTOR_TRUST_PROXY: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe('ROTOR_TRUST_PROXY');
    if (!value.includes('/')) {
      expect((error as ConfigError).message).toMatch(/hops.*\(e\.g\. 1\).*CIDR.*10\.0\.0\.0\/8/);
    }
  });

  it('accepts a hop count, a list of addresses and CIDRs, and false or 0 for none', () => {
    expect(loadConfig({}).trustProxy).toEqual({ hops: 0 });
    expect(loadConfig({ ROTOR_TRUST_PROXY: 'false' }).trustProxy).toEqual({ hops: 0 });
    expect(loadConfig({ ROTOR_TRUST_PROXY: '0' }).trustProxy).toEqual({ hops: 0 });
    expect(loadConfig({ ROTOR_TRUST_PROXY: '2' }).trustProxy).toEqual({ hops: 2 });
    expect(loadConfig({ ROTOR_TRUST_PROXY: '10.0.0.0/8, ::1, fd00::/8' }).trustProxy).toEqual({
      proxies: [
        { family: 'ipv4', address: '10.0.0.0', prefix: 8 },
        { family: 'ipv6', address: '::1', prefix: 128 },
        { family: 'ipv6', address: 'fd00::', prefix: 8 },
      ],
    });
  });
});

describe('addressSubject (the subject of address rate limits)', () => {
  it.each([
    ['203.0.113.5', '203.0.113.5'],
    ['::ffff:203.0.113.5', '203.0.113.5'],
    ['::FFFF:cb00:7105', '203.0.113.5'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:DB8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8::/64'],
    ['2001:db8:0:0:1::', '2001:db8::/64'],
    ['::1', '::/64'],
    ['fe80::1%eth0', 'fe80::/64'],
  ])('%s counts as %s', (ip, subject) => {
    expect(addressSubject(ip)).toBe(subject);
  });

  it('counts every address of one /64 as one client, and a neighbouring /64 apart', () => {
    const privacy = ['2001:db8:1:2:a:b:c:d', '2001:db8:1:2::ffff', '2001:db8:1:2:1234::1'];
    expect(new Set(privacy.map(addressSubject)).size).toBe(1);
    expect(addressSubject('2001:db8:1:3::1')).not.toBe(addressSubject(privacy[0]!));
  });

  it('returns text that is not an IP address unchanged', () => {
    expect(addressSubject('unknown')).toBe('unknown');
  });
});
