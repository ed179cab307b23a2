/**
 * Pooling, NHWC in tfjs, NCHW in ONNX: MaxPool2d, AvgPool2d, GlobalAvgPool.
 *
 * Padding as in conv.ts ('same' = ONNX SAME_UPPER). Average pooling divides by the number of
 * in-image values under the window (tfjs does; ONNX count_include_pad = 0, its default).
 * Output sizes round down (ceil_mode = 0).
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph } from '../../export/onnx_graph';
import { Pair, Padding2d, onnxPadding, pair, tfPadding } from './conv';
import { Module, assertShape, fmtShape } from './module';

export interface Pool2dOptions {
  kernelSize: Pair;
  /** Default: the kernel size. */
  stride?: Pair;
  /** Default 'valid'. */
  padding?: Padding2d;
}

abstract class Pool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: Padding2d;

  constructor(opts: Pool2dOptions) {
    super();
    this.kernelSize = pair(opts.kernelSize);
    this.stride = pair(opts.stride ?? opts.kernelSize);
    this.padding = opts.padding ?? 'valid';
  }

  protected check(x: tf.Tensor): void {
    assertShape(x.rank === 4, () => `${this.constructor.name}(${this.onnxScope()}): input [B,H,W,C] expected, got ${fmtShape(x.shape)}`);
  }

  protected onnxAttrs(): { kernel_shape: number[]; strides: number[]; auto_pad?: 'SAME_UPPER'; pads?: number[] } {
    return { kernel_shape: this.kernelSize, strides: this.stride, ...onnxPadding(this.padding, this.kernelSize, this.stride) };
  }
}

export class MaxPool2d extends Pool2d {
  /** x: [B, H, W, C] -> [B, H', W', C]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    this.check(x);
    return tf.maxPool(x, this.kernelSize, this.stride, tfPadding(this.padding));
  }

  toOnnx(g: OnnxGraph, x: string): string {
    return this.onnxOps(g).MaxPool(x, this.onnxAttrs());
  }
}

export class AvgPool2d extends Pool2d {
  /** x: [B, H, W, C] -> [B, H', W', C]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    this.check(x);
    return tf.avgPool(x, this.kernelSize, this.stride, tfPadding(this.padding));
  }

  toOnnx(g: OnnxGraph, x: string): string {
    return this.onnxOps(g).AveragePool(x, { ...this.onnxAttrs(), count_include_pad: 0 });
  }
}

/**
 * Mean over space: [B, H, W, C] -> [B, C] (ONNX: GlobalAveragePool + Flatten), or with
 * `keepDims` [B, 1, 1, C] (ONNX: GlobalAveragePool alone, [B, C, 1, 1]).
 */
export class GlobalAvgPool extends Module {
  readonly keepDims: boolean;

  constructor(opts: { keepDims?: boolean } = {}) {
    super();
    this.keepDims = opts.keepDims ?? false;
  }

  forward(x: tf.Tensor4D): tf.Tensor {
    assertShape(x.rank === 4, () => `GlobalAvgPool(${this.onnxScope()}): input [B,H,W,C] expected, got ${fmtShape(x.shape)}`);
    return tf.mean(x, [1, 2], this.keepDims);
  }

  toOnnx(g: OnnxGraph, x: string): string {
    const o = this.onnxOps(g);
    const y = o.GlobalAveragePool(x); // [B, C, 1, 1]
    return this.keepDims ? y : o.Flatten(y, { axis: 1 }); // [B, C]
  }
}
