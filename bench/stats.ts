/**
 * Order statistics for benchmark samples. Medians and percentiles use the nearest-rank method on a
 * sorted copy, so every figure reported is a value that was actually measured.
 */

/** Min, median and max of a set of samples (rounds or runs). */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Latency percentiles over many samples. */
export interface LatencySummary extends Spread {
  p90: number;
  p99: number;
}

function sorted(samples: readonly number[]): number[] {
  if (samples.length === 0) throw new RangeError('stats: no samples');
  return [...samples].sort((a, b) => a - b);
}

function rank(ascending: readonly number[], p: number): number {
  const index = Math.min(ascending.length - 1, Math.max(0, Math.ceil((p / 100) * ascending.length) - 1));
  return ascending[index]!;
}

/** The `p`-th percentile (0–100), nearest rank. */
export function percentile(samples: readonly number[], p: number): number {
  return rank(sorted(samples), p);
}

/** The median (nearest rank: the lower middle value for an even count). */
export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** Median with min and max. */
export function spread(samples: readonly number[]): Spread {
  const s = sorted(samples);
  return { median: rank(s, 50), min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

/** Median, p90, p99, min and max. */
export function latencySummary(samples: readonly number[]): LatencySummary {
  const s = sorted(samples);
  return { median: rank(s, 50), p90: rank(s, 90), p99: rank(s, 99), min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

/** Element-wise `a[i] / b[i]` of two same-length series (per-round ratios). */
export function pairwiseRatios(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) throw new RangeError(`pairwiseRatios: ${a.length} vs ${b.length} samples`);
  return a.map((x, i) => x / b[i]!);
}
