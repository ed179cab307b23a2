/**
 * BatchNorm2d (NHWC, statistics over batch and space) and LayerNorm (last axis).
 *
 * BatchNorm2d: parameters `weight` (gamma) and `bias` (beta); buffers `running_mean` and
 * `running_var`, as PyTorch names them. Training mode normalizes with the batch statistics (biased
 * variance) and updates the running statistics with momentum m:
 *   running = (1 - m) running + m batch     (running_var takes the unbiased batch variance).
 * The update is a Variable.assign, outside of any gradient. Eval mode (and the ONNX export,
 * BatchNormalization in inference mode) uses the running statistics.
 *
 * LayerNorm: `weight` and `bias` [dim]; exported as opset-17 LayerNormalization(axis=-1).
 */
import { tf } from '../../backend/tf';
import { batchNormTrain, type BatchNormEpilogue } from '../../backend/kernels/batch_norm_train';
import type { OnnxGraph } from '../../export/onnx_graph';
import { init } from './init';
import { Module, assertShape, fmtShape } from './module';

export interface BatchNorm2dOptions {
  eps?: number;
  momentum?: number;
}

export class BatchNorm2d extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  readonly eps: number;
  readonly momentum: number;

  constructor(readonly numFeatures: number, opts: BatchNorm2dOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const c = [numFeatures];
    this.weight = this.registerParameter('weight', { shape: c, init: init.ones(), seed: 0 });
    this.bias = this.registerParameter('bias', { shape: c, init: init.zeros(), seed: 0 });
    this.runningMean = this.registerBuffer('running_mean', { shape: c, init: init.zeros(), seed: 0 });
    this.runningVar = this.registerBuffer('running_var', { shape: c, init: init.ones(), seed: 0 });
  }

  /**
   * x: [B, H, W, C] -> same shape: relu?(bn(x) + residual?). The residual and the ReLU belong to
   * the caller's graph (a ResNet block's shortcut and activation; `toOnnx` emits only the
   * normalization), they are taken here so that training runs them inside the fused kernel.
   */
  forward(x: tf.Tensor4D, epilogue: BatchNormEpilogue = {}): tf.Tensor4D {
    assertShape(x.rank === 4 && x.shape[3] === this.numFeatures,
      () => `BatchNorm2d(${this.paramPath('weight')}): input [B,H,W,${this.numFeatures}] expected, got ${fmtShape(x.shape)}`);
    if (!this.training) {
      return tf.tidy(() => {
        let y: tf.Tensor4D = tf.batchNorm(x, this.runningMean as tf.Tensor1D, this.runningVar as tf.Tensor1D, this.bias as tf.Tensor1D, this.weight as tf.Tensor1D, this.eps);
        if (epilogue.residual !== undefined) y = tf.add(y, epilogue.residual);
        return epilogue.relu ? tf.relu(y) : y;
      });
    }
    const n = x.shape[0] * x.shape[1] * x.shape[2];
    return tf.tidy(() => {
      // one fused kernel each way on wasm; moments + batchNorm elsewhere
      const { y, mean, variance } = batchNormTrain(x, this.weight as tf.Tensor1D, this.bias as tf.Tensor1D, this.eps, epilogue); // [C], [C] (biased)
      const m = this.momentum;
      const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(unbiased, m)));
      return y as tf.Tensor4D;
    });
  }

  /** x: [B, C, H, W] -> same shape. */
  toOnnx(g: OnnxGraph, x: string): string {
    return this.onnxOps(g).BatchNormalization(
      x,
      this.onnxParam(g, 'weight'),
      this.onnxParam(g, 'bias'),
      this.onnxParam(g, 'running_mean'),
      this.onnxParam(g, 'running_var'),
      { epsilon: this.eps },
    );
  }
}

export interface LayerNormOptions {
  eps?: number;
}

export class LayerNorm extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly eps: number;

  constructor(readonly dim: number, opts: LayerNormOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.weight = this.registerParameter('weight', { shape: [dim], init: init.ones(), seed: 0 });
    this.bias = this.registerParameter('bias', { shape: [dim], init: init.zeros(), seed: 0 });
  }

  /** x: [..., dim] -> same shape. */
  forward(x: tf.Tensor): tf.Tensor {
    assertShape(x.rank >= 1 && x.shape[x.rank - 1] === this.dim,
      () => `LayerNorm(${this.paramPath('weight')}): input [..., ${this.dim}] expected, got ${fmtShape(x.shape)}`);
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true); // [..., 1]
      const xhat = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
      return tf.add(tf.mul(xhat, this.weight), this.bias);
    });
  }

  toOnnx(g: OnnxGraph, x: string): string {
    return this.onnxOps(g).LayerNormalization(x, this.onnxParam(g, 'weight'), this.onnxParam(g, 'bias'), { axis: -1, epsilon: this.eps });
  }
}
