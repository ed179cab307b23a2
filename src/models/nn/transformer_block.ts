/**
 * A pre-LN transformer block (GPT-2): x + attn(ln_1(x)), then + mlp(ln_2(.)).
 * Parameters: `ln_1`, `attn` (c_attn, c_proj), `ln_2`, `mlp` (c_fc, c_proj).
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph } from '../../export/onnx_graph';
import { AttentionForwardOptions, AttentionOnnxOptions, MultiHeadAttention } from './attention';
import { deriveSeed, nextDefaultSeed } from './init';
import { LinearOptions } from './linear';
import { MLP } from './mlp';
import { Module } from './module';
import { LayerNorm } from './norm';

export interface TransformerBlockOptions {
  numHeads: number;
  /** MLP hidden width; default 4 x dim. */
  mlpHidden?: number;
  dropout?: number;
  causal?: boolean;
  eps?: number;
  seed?: number;
  weightInit?: LinearOptions['weightInit'];
}

export class TransformerBlock extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: MultiHeadAttention;
  readonly ln_2: LayerNorm;
  readonly mlp: MLP;

  constructor(readonly dim: number, opts: TransformerBlockOptions) {
    super();
    const seed = opts.seed ?? nextDefaultSeed();
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(dim, { eps: opts.eps }));
    this.attn = this.registerModule('attn', new MultiHeadAttention(dim, opts.numHeads, {
      causal: opts.causal, dropout: opts.dropout, seed: deriveSeed(seed, 'attn'), weightInit: opts.weightInit,
    }));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(dim, { eps: opts.eps }));
    this.mlp = this.registerModule('mlp', new MLP(dim, {
      hidden: opts.mlpHidden, dropout: opts.dropout, seed: deriveSeed(seed, 'mlp'), weightInit: opts.weightInit,
    }));
  }

  /** x: [B, T, C] -> [B, T, C]. */
  forward(x: tf.Tensor3D, opts: AttentionForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const h = tf.add(x, this.attn.forward(this.ln_1.forward(x) as tf.Tensor3D, opts)); // [B, T, C]
      return tf.add(h, this.mlp.forward(this.ln_2.forward(h))) as tf.Tensor3D;
    });
  }

  toOnnx(g: OnnxGraph, x: string, opts: AttentionOnnxOptions = {}): string {
    const o = this.onnxOps(g);
    const h = o.Add(x, this.attn.toOnnx(g, this.ln_1.toOnnx(g, x), opts));
    return o.Add(h, this.mlp.toOnnx(g, this.ln_2.toOnnx(g, h)));
  }

  /** As MultiHeadAttention.toOnnxWithCache, through the whole block. */
  toOnnxWithCache(g: OnnxGraph, x: string, opts: AttentionOnnxOptions & { pastKey?: string; pastValue?: string } = {}): { y: string; presentKey: string; presentValue: string } {
    const o = this.onnxOps(g);
    const a = this.attn.toOnnxWithCache(g, this.ln_1.toOnnx(g, x), opts);
    const h = o.Add(x, a.y);
    return { y: o.Add(h, this.mlp.toOnnx(g, this.ln_2.toOnnx(g, h))), presentKey: a.presentKey, presentValue: a.presentValue };
  }
}
