/**
 * Linear: y = x W + b over the last axis, any leading dims.
 *
 * Parameters: `weight` [in, out] (the layout of tfjs matMul, and of GPT-2's Conv1D checkpoints),
 * `bias` [out]. The ONNX initializers keep the same [in, out] layout: the export is
 * MatMul(x, weight) + bias, valid for inputs of any rank ([B, in], [B, T, in], ...).
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph } from '../../export/onnx_graph';
import { InitFn, init, nextDefaultSeed } from './init';
import { Module, assertShape, fmtShape } from './module';

export interface LinearOptions {
  bias?: boolean;
  seed?: number;
  /** Default: U(-1/sqrt(in), 1/sqrt(in)) (PyTorch). */
  weightInit?: InitFn;
  /** Default: U(-1/sqrt(in), 1/sqrt(in)) (PyTorch). */
  biasInit?: InitFn;
}

export class Linear extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    super();
    const seed = opts.seed ?? nextDefaultSeed();
    this.weight = this.registerParameter('weight', { shape: [inFeatures, outFeatures], init: opts.weightInit ?? init.torchDefault(inFeatures), seed });
    this.bias = opts.bias ?? true
      ? this.registerParameter('bias', { shape: [outFeatures], init: opts.biasInit ?? init.torchDefault(inFeatures), seed })
      : null;
  }

  forward(x: tf.Tensor): tf.Tensor {
    assertShape(x.rank >= 1 && x.shape[x.rank - 1] === this.inFeatures,
      () => `Linear(${this.paramPath('weight')}): input [..., ${this.inFeatures}] expected, got ${fmtShape(x.shape)}`);
    return tf.tidy(() => {
      const lead = x.shape.slice(0, -1);
      const x2 = x.reshape([-1, this.inFeatures]); // [N, in]
      let y = tf.matMul(x2, this.weight as tf.Tensor2D); // [N, out]
      if (this.bias) y = tf.add(y, this.bias);
      return y.reshape([...lead, this.outFeatures]); // [..., out]
    });
  }

  toOnnx(g: OnnxGraph, x: string): string {
    const o = this.onnxOps(g);
    const y = o.MatMul(x, this.onnxParam(g, 'weight'));
    return this.bias ? o.Add(y, this.onnxParam(g, 'bias')) : y;
  }
}
