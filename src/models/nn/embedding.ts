/**
 * Embedding: a lookup table, `weight` [numEmbeddings, dim]; ids (int32 in tfjs, int64 in ONNX) of
 * any shape -> [..., dim]. Exported as Gather(weight, ids, axis=0).
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph } from '../../export/onnx_graph';
import { InitFn, init, nextDefaultSeed } from './init';
import { Module, assertShape, fmtShape } from './module';

export interface EmbeddingOptions {
  seed?: number;
  /** Default N(0, 0.02^2) (GPT-2). */
  weightInit?: InitFn;
}

export class Embedding extends Module {
  readonly weight: tf.Variable;

  constructor(readonly numEmbeddings: number, readonly dim: number, opts: EmbeddingOptions = {}) {
    super();
    this.weight = this.registerParameter('weight', {
      shape: [numEmbeddings, dim],
      init: opts.weightInit ?? init.normal(0.02),
      seed: opts.seed ?? nextDefaultSeed(),
    });
  }

  forward(ids: tf.Tensor): tf.Tensor {
    assertShape(ids.dtype === 'int32', () => `Embedding(${this.paramPath('weight')}): int32 ids expected, got ${ids.dtype} ${fmtShape(ids.shape)}`);
    return tf.gather(this.weight, ids, 0); // [..., dim]
  }

  toOnnx(g: OnnxGraph, ids: string): string {
    return this.onnxOps(g).Gather(this.onnxParam(g, 'weight'), ids, { axis: 0 });
  }
}
