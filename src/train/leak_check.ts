/**
 * Tensor-leak checks for training loops: run a step a few times to let lazily created state
 * (optimizer moments, caches) appear, then require `tf.memory().numTensors` to stay flat.
 */
import { tf } from '../backend/tf';

export interface TensorGrowth {
  /** numTensors after the warm-up steps. */
  baseline: number;
  /** numTensors after each measured step. */
  counts: number[];
  /** Last count minus baseline. */
  growth: number;
}

/** Runs `step` `warmup` times, then `n` times, recording numTensors after each measured step. */
export async function measureTensorGrowth(step: () => void | Promise<void>, n: number, warmup = 1): Promise<TensorGrowth> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`measureTensorGrowth: n must be an integer >= 1, got ${n}`);
  for (let i = 0; i < warmup; i++) await step();
  const baseline = tf.memory().numTensors;
  const counts: number[] = [];
  for (let i = 0; i < n; i++) {
    await step();
    counts.push(tf.memory().numTensors);
  }
  return { baseline, counts, growth: counts[counts.length - 1] - baseline };
}

export interface NoLeakOptions {
  /** Measured steps (default 3). */
  steps?: number;
  /** Unmeasured steps first (default 1). */
  warmup?: number;
}

/** Throws when the tensor count after any measured step differs from the post-warm-up count. */
export async function assertNoLeak(fn: () => void | Promise<void>, opts: NoLeakOptions = {}): Promise<void> {
  const g = await measureTensorGrowth(fn, opts.steps ?? 3, opts.warmup ?? 1);
  if (g.counts.some((c) => c !== g.baseline)) {
    throw new Error(`tensor leak: numTensors was ${g.baseline} after warm-up, then ${g.counts.join(', ')} after ${g.counts.length} steps (${g.growth >= 0 ? '+' : ''}${g.growth})`);
  }
}
