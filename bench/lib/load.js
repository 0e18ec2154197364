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
 * answer. `step` may resolve with the milliseconds it spent on client-side work before sending
 * (making a DPoP proof): they are left out of the latency and reported as `clientMs` (mean per
 * request). Returns requests per second, p50/p99 latency in ms, and `loadCpu`, the CPU this
 * process used meanwhile as a fraction of one core (1 = the load generator was saturated).
 */
export async function closedLoop(clients, seconds, step) {
  const agent = new Agent({ keepAlive: true, maxSockets: clients.length });
  const latencies = [];
  let clientMs = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  try {
    await Promise.all(
      clients.map(async (client) => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          const prepared = (await step(client, agent)) ?? 0;
          latencies.push(performance.now() - t0 - prepared);
          clientMs += prepared;
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return {
    perSecond: (latencies.length * 1000) / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    clientMs: clientMs / latencies.length,
    loadCpu: (used.user + used.system) / 1000 / elapsed,
  };
}
