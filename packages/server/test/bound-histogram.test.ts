import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BoundHistogram } from '../src/http/bound-histogram.js';

const options = {
  name: 'rotor_http_request_duration_seconds',
  help: 'HTTP request durations by method, route template and status.',
  labelNames: ['method', 'route', 'status'],
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
};

describe('BoundHistogram', () => {
  it("exposes the same text as prom-client's Histogram for the same observations", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const bound = new BoundHistogram({ ...options, registry: ours });
    const reference = new Histogram({ ...options, registers: [theirs] });
    const observations: [string, string, string, number][] = [
      ['GET', '/auth/me', '200', 0.0004],
      ['GET', '/auth/me', '200', 0.0005],
      ['GET', '/auth/me', '200', 0.003],
      ['GET', '/auth/me', '401', 0.02],
      ['POST', '/auth/login', '200', 0.2],
      ['POST', '/auth/login', '200', 7],
      ['GET', 'unmatched', '404', 0],
    ];
    for (const [method, route, status, value] of observations) {
      bound.series([method, route, status]).observe(value);
      reference.observe({ method, route, status }, value);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // The same series object each time: callers keep it.
    expect(bound.series(['GET', '/auth/me', '200'])).toBe(bound.series(['GET', '/auth/me', '200']));
  });

  it('resets with the registry', async () => {
    const registry = new Registry();
    const bound = new BoundHistogram({ ...options, registry });
    bound.series(['GET', '/healthz', '200']).observe(0.001);
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('/healthz');
  });
});
