import type { MetricValueWithName, Registry } from 'prom-client';

/** One series of a {@link BoundHistogram}: what `observe` writes to, bound to its labels. */
export interface HistogramSeries {
  /** Counts `value` (seconds) in its bucket, the sum and the count. */
  observe(value: number): void;
}

interface Series extends HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly counts: number[];
  sum: number;
  count: number;
}

/**
 * A Prometheus histogram whose series are bound to their labels once: `series(...)` is looked up
 * by the caller (per route, method and status) and `observe` then only finds the bucket and adds.
 * prom-client's `Histogram` checks and hashes the labels on every `observe`, its `labels(...)`
 * children too (prom-client 15: the child keeps the labels, not the series), about 2% of a
 * trivial route's time. Registered on a prom-client `Registry`, which formats it like its own
 * (`_bucket` with `le`, `_sum`, `_count`).
 * @example
 * const durations = new BoundHistogram({ name, help, labelNames: ['route'], buckets, registry });
 * durations.series(['/healthz']).observe(0.0004);
 */
export class BoundHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #labelNames: readonly string[];
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, Series>();

  constructor(options: {
    name: string;
    help: string;
    labelNames: readonly string[];
    buckets: readonly number[];
    registry: Registry;
  }) {
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = options.labelNames;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    options.registry.registerMetric(this as never);
  }

  /**
   * The series of these label values (in `labelNames` order), made on first use. Callers keep it
   * (a map per route) rather than calling this per observation.
   */
  series(values: readonly string[]): HistogramSeries {
    const key = values.join('\u0000');
    let series = this.#series.get(key);
    if (series === undefined) {
      const labels = Object.fromEntries(this.#labelNames.map((name, i) => [name, values[i]!]));
      const bounds = this.#bounds;
      const counts = new Array<number>(bounds.length + 1).fill(0);
      series = {
        labels,
        counts,
        sum: 0,
        count: 0,
        observe(value: number) {
          let i = 0;
          while (i < bounds.length && value > bounds[i]!) i += 1;
          counts[i]! += 1;
          this.sum += value;
          this.count += 1;
        },
      };
      this.#series.set(key, series);
    }
    return series;
  }

  /** What the registry formats: each series' cumulative buckets, sum and count. */
  async get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    values: MetricValueWithName<string>[];
    aggregator: 'sum';
  }> {
    const values: MetricValueWithName<string>[] = [];
    const bucket = `${this.name}_bucket`;
    for (const series of this.#series.values()) {
      let cumulative = 0;
      for (const [i, bound] of this.#bounds.entries()) {
        cumulative += series.counts[i]!;
        values.push({
          labels: { le: bound, ...series.labels },
          value: cumulative,
          metricName: bucket,
        });
      }
      values.push({
        labels: { le: '+Inf', ...series.labels },
        value: series.count,
        metricName: bucket,
      });
      values.push({ labels: series.labels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: series.labels, value: series.count, metricName: `${this.name}_count` });
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    };
  }

  /** `registry.resetMetrics()`: every series back to zero. */
  reset(): void {
    this.#series.clear();
  }
}
