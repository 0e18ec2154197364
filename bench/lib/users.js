// Bench users: registered and signed in over HTTP as a mobile client would (tokens in the body).
import { Agent } from 'node:http';
import { send } from './load.js';

/** Every bench user's password. */
export const PASSWORD = 'correct horse battery staple';

async function post(url, path, body, headers = {}) {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/**
 * Registers `count` users on `url`, each from an address of its own, and signs each in once;
 * returns their sessions' tokens.
 */
export async function signInUsers(url, count, prefix = 'bench') {
  return signInSessions(url, count, prefix, { perUser: 1 });
}

/** One login of `email`: `{accessToken, refreshToken}`. */
export async function signIn(url, email) {
  const json = await post(
    url,
    '/auth/login',
    { email, password: PASSWORD },
    { 'token-delivery': 'body' },
  );
  return { email, accessToken: json.accessToken, refreshToken: json.refreshToken };
}

/**
 * The loopback address of client `i` (127.0.x.y, all of 127.0.0.0/8 is this machine's): the server
 * sees each as another client address, so the per-address limits count each client on its own,
 * as behind real networks, instead of one address taking every budget.
 */
export function clientAddress(i) {
  return `127.0.${1 + Math.floor(i / 250)}.${2 + (i % 250)}`;
}

/** Keep-alive agents by local address, made on first use. */
export function addressAgents() {
  const agents = new Map();
  return {
    of(address) {
      let agent = agents.get(address);
      if (!agent) {
        agent = new Agent({ keepAlive: true, localAddress: address });
        agents.set(address, agent);
      }
      return agent;
    },
    destroy() {
      for (const agent of agents.values()) agent.destroy();
      agents.clear();
    },
  };
}

/**
 * `count` sessions of `ceil(count / perUser)` users, each user registered and signed in on
 * `perUser` devices from an address of its own (`clientAddress`), tokens in the body as a mobile
 * client. Each session remembers its address: refreshed from there, it has not moved. Users are
 * numbered from `firstUser` (their email and address), so calls on one database do not collide.
 */
export async function signInSessions(
  url,
  count,
  prefix,
  { perUser = 8, agents, firstUser = 0 } = {},
) {
  const sessions = [];
  const own = agents ?? addressAgents();
  try {
    for (let user = firstUser; sessions.length < count; user += 1) {
      const email = `${prefix}-${user}@example.test`;
      const address = clientAddress(user);
      const agent = own.of(address);
      await postFrom(agent, url, '/auth/register', { email, password: PASSWORD });
      for (let device = 0; device < perUser && sessions.length < count; device += 1) {
        const json = await postFrom(
          agent,
          url,
          '/auth/login',
          { email, password: PASSWORD },
          { 'token-delivery': 'body' },
        );
        sessions.push({
          email,
          address,
          accessToken: json.accessToken,
          refreshToken: json.refreshToken,
        });
      }
    }
    return sessions;
  } finally {
    if (!agents) own.destroy();
  }
}

async function postFrom(agent, url, path, body, headers = {}) {
  const { status, json } = await send(agent, `${url}${path}`, { method: 'POST', headers, body });
  if (status !== 200 && status !== 201) {
    throw new Error(`${path}: ${status} ${JSON.stringify(json)}`);
  }
  return json;
}
