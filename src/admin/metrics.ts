/**
 * The few lines of Prometheus text format (version 0.0.4) sagachart needs: counters, gauges and
 * histograms with labels. Written here rather than with `prom-client` because that would add a
 * runtime dependency and its global default registry for about a hundred lines of text.
 */

type Labels = Readonly<Record<string, string>>;

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelText = (labels: Labels): string => {
  const keys = Object.keys(labels);
  return keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(labels[k] ?? '')}"`).join(',')}}` : '';
};
const keyOf = (labels: Labels): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
const num = (v: number): string => (Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN');

interface Metric {
  render(out: string[]): void;
}

abstract class Family implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
  ) {}
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${this.name} ${this.type}`);
    this.samples(out);
  }
  protected abstract samples(out: string[]): void;
}

/** A counter: only goes up. */
export class Counter extends Family {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(labels);
    const entry = this.#values.get(key);
    if (entry) entry.value += by;
    else this.#values.set(key, { labels, value: by });
  }
  protected samples(out: string[]): void {
    for (const { labels, value } of this.#values.values()) out.push(`${this.name}${labelText(labels)} ${num(value)}`);
  }
}

/** A gauge read when scraped. */
export class Gauge extends Family {
  readonly #read: () => Array<{ labels?: Labels; value: number }>;
  constructor(name: string, help: string, read: () => Array<{ labels?: Labels; value: number }>) {
    super(name, help, 'gauge');
    this.#read = read;
  }
  protected samples(out: string[]): void {
    for (const { labels = {}, value } of this.#read()) out.push(`${this.name}${labelText(labels)} ${num(value)}`);
  }
}

/** A histogram in seconds, with cumulative buckets. */
export class Histogram extends Family {
  readonly #buckets: readonly number[];
  readonly #values = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(name: string, help: string, buckets: readonly number[]) {
    super(name, help, 'histogram');
    this.#buckets = buckets;
  }
  observe(labels: Labels, value: number): void {
    const key = keyOf(labels);
    let entry = this.#values.get(key);
    if (!entry) this.#values.set(key, (entry = { labels, counts: this.#buckets.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.#buckets.length; i++) if (value <= (this.#buckets[i] ?? Infinity)) entry.counts[i] = (entry.counts[i] ?? 0) + 1;
    entry.sum += value;
    entry.count++;
  }
  protected samples(out: string[]): void {
    for (const { labels, counts, sum, count } of this.#values.values()) {
      this.#buckets.forEach((le, i) => out.push(`${this.name}_bucket${labelText({ ...labels, le: num(le) })} ${counts[i] ?? 0}`));
      out.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${count}`);
      out.push(`${this.name}_sum${labelText(labels)} ${num(sum)}`, `${this.name}_count${labelText(labels)} ${count}`);
    }
  }
}

/** Metrics in the order they are rendered. */
export class MetricsRegistry {
  readonly #metrics: Metric[] = [];
  add<M extends Metric>(metric: M): M {
    this.#metrics.push(metric);
    return metric;
  }
  render(): string {
    const out: string[] = [];
    for (const m of this.#metrics) m.render(out);
    return `${out.join('\n')}\n`;
  }
}

/** Buckets from 0.5 ms to 10 s. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
