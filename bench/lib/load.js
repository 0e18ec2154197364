// A closed-loop load generator over keep-alive HTTP: each client sends its next request when the
// previous one has answered, as an app's session does, for a fixed time.
import { Agent, request } from 'node:http';
import { percentile } from './stats.js';

/** One request over `agent`; resolves with the status, headers and parsed JSON body. */
export function send(agent, url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, json: JSON.parse(text) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/**
 * Runs `step(client, agent)` in a loop for every client for `seconds`; `step` throws on a wrong
 * answer. Returns requests per second and p50/p99 latency in ms.
 */
export async function closedLoop(clients, seconds, step) {
  const agent = new Agent({ keepAlive: true, maxSockets: clients.length });
  const latencies = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  try {
    await Promise.all(
      clients.map(async (client) => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          await step(client, agent);
          latencies.push(performance.now() - t0);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return {
    perSecond: (latencies.length * 1000) / (performance.now() - started),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}
