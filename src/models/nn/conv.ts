/**
 * Conv2d and ConvTranspose2d, NHWC in tfjs, NCHW in ONNX.
 *
 * Conv2d parameters: `weight` [kH, kW, in, out] in memory (tfjs HWIO), written to ONNX as
 * [out, in, kH, kW] (OIHW); `bias` [out].
 * ConvTranspose2d parameters: `weight` [kH, kW, out, in] in memory (tfjs conv2dTranspose layout),
 * written to ONNX as [in, out, kH, kW] (the ConvTranspose / PyTorch layout); `bias` [out].
 *
 * Padding 'same' follows TensorFlow (the odd extra row/column at the bottom/right), which is ONNX
 * auto_pad SAME_UPPER; explicit ints pad both sides (ONNX pads [pH, pW, pH, pW]).
 * tfjs does not combine stride > 1 with dilation > 1 in one conv2d: rejected at construction.
 */
import { tf } from '../../backend/tf';
import type { ConvAttrs, OnnxGraph } from '../../export/onnx_graph';
import { InitFn, init, nextDefaultSeed } from './init';
import { Module, assertShape, fmtShape } from './module';

export type Pair = number | [number, number];
export type Padding2d = 'same' | 'valid' | Pair;

export function pair(v: Pair): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** tfjs pad argument: 'same' / 'valid' / explicit NHWC padding. */
export function tfPadding(p: Padding2d): 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]] {
  if (p === 'same' || p === 'valid') return p;
  const [ph, pw] = pair(p);
  return [[0, 0], [ph, ph], [pw, pw], [0, 0]];
}

/**
 * ONNX padding attributes for Conv / MaxPool / AveragePool. 'same' at stride 1 pads (k-1)d in
 * total whatever the input size, so it is written as explicit pads (onnxruntime rejects SAME_UPPER
 * with dilation); at stride > 1 the split depends on the input size and SAME_UPPER is used.
 */
export function onnxPadding(p: Padding2d, kernel: [number, number], stride: [number, number], dilation: [number, number] = [1, 1]): { auto_pad?: 'SAME_UPPER'; pads?: number[] } {
  if (p === 'same') {
    if (stride[0] > 1 || stride[1] > 1) return { auto_pad: 'SAME_UPPER' };
    const th = (kernel[0] - 1) * dilation[0];
    const tw = (kernel[1] - 1) * dilation[1];
    return { pads: [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)] };
  }
  if (p === 'valid') return { pads: [0, 0, 0, 0] };
  const [ph, pw] = pair(p);
  return { pads: [ph, pw, ph, pw] };
}

export interface Conv2dOptions {
  kernelSize: Pair;
  stride?: Pair;
  /** Default 'valid'. */
  padding?: Padding2d;
  dilation?: Pair;
  bias?: boolean;
  /** Only 1 is supported. */
  groups?: 1;
  seed?: number;
  /** Default U(-1/sqrt(fanIn), 1/sqrt(fanIn)), fanIn = in kH kW (PyTorch). */
  weightInit?: InitFn;
  biasInit?: InitFn;
}

export class Conv2d extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly dilation: [number, number];
  readonly padding: Padding2d;

  constructor(readonly inChannels: number, readonly outChannels: number, opts: Conv2dOptions) {
    super();
    this.kernelSize = pair(opts.kernelSize);
    this.stride = pair(opts.stride ?? 1);
    this.dilation = pair(opts.dilation ?? 1);
    this.padding = opts.padding ?? 'valid';
    if ((opts.groups ?? 1) !== 1) throw new Error(`Conv2d: groups=${opts.groups} not supported (only 1)`);
    if (Math.max(...this.stride) > 1 && Math.max(...this.dilation) > 1) {
      throw new Error(`Conv2d: stride ${fmtShape(this.stride)} with dilation ${fmtShape(this.dilation)}: tfjs needs one of them to be 1`);
    }
    const [kh, kw] = this.kernelSize;
    const fanIn = inChannels * kh * kw;
    const seed = opts.seed ?? nextDefaultSeed();
    this.weight = this.registerParameter('weight', { shape: [kh, kw, inChannels, outChannels], init: opts.weightInit ?? init.torchDefault(fanIn), seed });
    this.bias = opts.bias ?? true
      ? this.registerParameter('bias', { shape: [outChannels], init: opts.biasInit ?? init.torchDefault(fanIn), seed })
      : null;
  }

  /** x: [B, H, W, in] -> [B, H', W', out]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    assertShape(x.rank === 4 && x.shape[3] === this.inChannels,
      () => `Conv2d(${this.paramPath('weight')}): input [B,H,W,${this.inChannels}] expected, got ${fmtShape(x.shape)}`);
    return tf.tidy(() => {
      const pad = tfPadding(this.padding);
      const dilated = this.dilation[0] > 1 || this.dilation[1] > 1;
      if (this.bias !== null && !dilated) {
        // One FusedConv2D kernel adds the bias: no separate broadcast Add (slow in tfjs-wasm for few
        // channels); the bias gradient is the same Sum. tfjs's fused gradient rejects dilation.
        return tf.fused.conv2d({ x, filter: this.weight as tf.Tensor4D, strides: this.stride, pad, dataFormat: 'NHWC', bias: this.bias });
      }
      const y = tf.conv2d(x, this.weight as tf.Tensor4D, this.stride, pad, 'NHWC', this.dilation);
      return this.bias ? tf.add(y, this.bias) : y;
    });
  }

  /** x: [B, in, H, W] -> [B, out, H', W']. */
  toOnnx(g: OnnxGraph, x: string): string {
    const attrs: ConvAttrs = {
      kernel_shape: this.kernelSize,
      strides: this.stride,
      dilations: this.dilation,
      ...onnxPadding(this.padding, this.kernelSize, this.stride, this.dilation),
    };
    const w = this.onnxParam(g, 'weight', (t) => tf.transpose(t, [3, 2, 0, 1])); // HWIO -> OIHW
    return this.onnxOps(g).Conv(x, w, this.bias ? this.onnxParam(g, 'bias') : undefined, attrs);
  }
}

export interface ConvTranspose2dOptions {
  kernelSize: Pair;
  stride?: Pair;
  /** Rows/columns removed from both sides of the full output (PyTorch `padding`). Default 0. */
  padding?: Pair;
  /** Extra rows/columns at the bottom/right (PyTorch `output_padding`, < stride). Default 0. */
  outputPadding?: Pair;
  bias?: boolean;
  seed?: number;
  weightInit?: InitFn;
  biasInit?: InitFn;
}

/**
 * Transposed convolution (the gradient of Conv2d w.r.t. its input), as PyTorch's ConvTranspose2d:
 * out = (in - 1) stride - 2 padding + kernel + outputPadding.
 */
export class ConvTranspose2d extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly outputPadding: [number, number];

  constructor(readonly inChannels: number, readonly outChannels: number, opts: ConvTranspose2dOptions) {
    super();
    this.kernelSize = pair(opts.kernelSize);
    this.stride = pair(opts.stride ?? 1);
    this.padding = pair(opts.padding ?? 0);
    this.outputPadding = pair(opts.outputPadding ?? 0);
    for (let i = 0; i < 2; i++) {
      if (this.outputPadding[i] >= this.stride[i]) {
        throw new Error(`ConvTranspose2d: outputPadding ${fmtShape(this.outputPadding)} must be smaller than stride ${fmtShape(this.stride)}`);
      }
    }
    const [kh, kw] = this.kernelSize;
    // PyTorch computes fan-in of a transposed conv from weight dim 1 (= out channels).
    const fanIn = outChannels * kh * kw;
    const seed = opts.seed ?? nextDefaultSeed();
    this.weight = this.registerParameter('weight', { shape: [kh, kw, outChannels, inChannels], init: opts.weightInit ?? init.torchDefault(fanIn), seed });
    this.bias = opts.bias ?? true
      ? this.registerParameter('bias', { shape: [outChannels], init: opts.biasInit ?? init.torchDefault(fanIn), seed })
      : null;
  }

  outputSize(h: number, w: number): [number, number] {
    const [kh, kw] = this.kernelSize;
    return [
      (h - 1) * this.stride[0] - 2 * this.padding[0] + kh + this.outputPadding[0],
      (w - 1) * this.stride[1] - 2 * this.padding[1] + kw + this.outputPadding[1],
    ];
  }

  /** x: [B, H, W, in] -> [B, H', W', out]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    assertShape(x.rank === 4 && x.shape[3] === this.inChannels,
      () => `ConvTranspose2d(${this.paramPath('weight')}): input [B,H,W,${this.inChannels}] expected, got ${fmtShape(x.shape)}`);
    const [b, h, w] = x.shape;
    const [oh, ow] = this.outputSize(h, w);
    assertShape(oh > 0 && ow > 0, () => `ConvTranspose2d(${this.paramPath('weight')}): input ${fmtShape(x.shape)} gives an empty output`);
    // The input gradient of a conv with padding p over an input of the output size: the
    // outputPadding rows come from the output shape and land at the bottom/right (PyTorch, ONNX).
    const pad = tfPadding(this.padding);
    return tf.tidy(() => {
      const y = tf.conv2dTranspose(x, this.weight as tf.Tensor4D, [b, oh, ow, this.outChannels], this.stride, pad);
      return this.bias ? tf.add(y, this.bias) : y;
    });
  }

  /** x: [B, in, H, W] -> [B, out, H', W']. */
  toOnnx(g: OnnxGraph, x: string): string {
    const [ph, pw] = this.padding;
    const w = this.onnxParam(g, 'weight', (t) => tf.transpose(t, [3, 2, 0, 1])); // [kH,kW,out,in] -> [in,out,kH,kW]
    return this.onnxOps(g).ConvTranspose(x, w, this.bias ? this.onnxParam(g, 'bias') : undefined, {
      kernel_shape: this.kernelSize,
      strides: this.stride,
      pads: [ph, pw, ph, pw],
      output_padding: this.outputPadding,
    });
  }
}
