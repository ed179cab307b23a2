/**
 * The transformer MLP: Linear(C, H) -> GELU (tanh approximation, see activation.ts) ->
 * Linear(H, C) -> Dropout. Parameters (GPT-2 names): `c_fc`, `c_proj`.
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph } from '../../export/onnx_graph';
import { gelu, geluOnnx } from './activation';
import { Dropout } from './dropout';
import { deriveSeed, nextDefaultSeed } from './init';
import { Linear, LinearOptions } from './linear';
import { Module } from './module';

export interface MLPOptions {
  /** Hidden width; default 4 x dim. */
  hidden?: number;
  dropout?: number;
  bias?: boolean;
  seed?: number;
  weightInit?: LinearOptions['weightInit'];
}

export class MLP extends Module {
  readonly c_fc: Linear;
  readonly c_proj: Linear;
  readonly dropout: Dropout;

  constructor(readonly dim: number, opts: MLPOptions = {}) {
    super();
    const hidden = opts.hidden ?? 4 * dim;
    const seed = opts.seed ?? nextDefaultSeed();
    this.c_fc = this.registerModule('c_fc', new Linear(dim, hidden, { bias: opts.bias, seed: deriveSeed(seed, 'c_fc'), weightInit: opts.weightInit }));
    this.c_proj = this.registerModule('c_proj', new Linear(hidden, dim, { bias: opts.bias, seed: deriveSeed(seed, 'c_proj'), weightInit: opts.weightInit }));
    this.dropout = this.registerModule('dropout', new Dropout(opts.dropout ?? 0, { seed: deriveSeed(seed, 'dropout') }));
  }

  /** x: [..., C] -> [..., C]. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.dropout.forward(this.c_proj.forward(gelu(this.c_fc.forward(x)))));
  }

  toOnnx(g: OnnxGraph, x: string): string {
    const h = this.c_fc.toOnnx(g, x);
    return this.c_proj.toOnnx(g, geluOnnx(g.ops(`${this.onnxScope()}/gelu`), h));
  }
}
