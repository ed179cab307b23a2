/**
 * Dropout: in training, zeroes each value with probability `rate` and scales the rest by
 * 1/(1 - rate); identity in eval mode and in the ONNX export (no node is emitted).
 *
 * Seeded: call k draws its mask from tfjs randomUniform seeded with Rng(seed, 'dropout', k), so a
 * run is reproducible and masks differ from step to step.
 */
import { tf } from '../../backend/tf';
import { Rng } from '../../data/rng';
import type { OnnxGraph } from '../../export/onnx_graph';
import { nextDefaultSeed } from './init';
import { Module } from './module';

export class Dropout extends Module {
  readonly seed: number;
  private calls = 0;

  constructor(readonly rate: number, opts: { seed?: number } = {}) {
    super();
    if (!(rate >= 0 && rate < 1)) throw new Error(`Dropout: rate in [0, 1) expected, got ${rate}`);
    this.seed = opts.seed ?? nextDefaultSeed();
  }

  /** Makes the next call draw mask number `call` (a resumed run sets where the masks continue). */
  seek(call: number): void {
    if (!(Number.isInteger(call) && call >= 0)) throw new Error(`Dropout.seek: a call index >= 0 expected, got ${call}`);
    this.calls = call;
  }

  forward<T extends tf.Tensor>(x: T): T {
    if (!this.training || this.rate === 0) return x;
    const seed = new Rng(this.seed, 'dropout', this.calls++).nextU32();
    return tf.tidy(() => {
      const keep = tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', seed), this.rate);
      return tf.mul(x, tf.mul(tf.cast(keep, 'float32'), 1 / (1 - this.rate))) as T;
    });
  }

  toOnnx(_g: OnnxGraph, x: string): string {
    return x;
  }
}
