/**
 * The tiny ONNX graphs that run one tfjs kernel in ONNX Runtime. Weights are graph inputs (the
 * same graph serves every step), shapes are fixed (one session per shape), layouts are tfjs's:
 * tensors NHWC (or NCHW when the kernel says so), filters [kh, kw, in, out], and the graph does
 * the layout changes itself.
 *
 * Variants, chosen per shape by `chooseConvVariant` and friends from measurements on this
 * machine (2 threads, batch 8, ResNet-18 shapes; wasm times for comparison):
 *
 * | kernel               | variant  | graph                                                     |
 * |----------------------|----------|-----------------------------------------------------------|
 * | Conv2D, FusedConv2D  | nchwc    | ReorderInput -> NCHWc Conv (filter reordered in-graph) -> ReorderOutput |
 * |                      | conv     | Transpose -> Conv -> Transpose (+ bias, activation)      |
 * |                      | im2col   | Pad -> kh*kw strided Slices -> Concat -> MatMul (NHWC)   |
 * | Conv2DBackpropInput  | flipNchwc | stride 1: NCHWc conv of dy with the flipped, channel-swapped filter |
 * |                      | flip     | the same conv as ORT's plain Conv                         |
 * |                      | flipIm2col | the same conv as im2col + MatMul (small feature maps)   |
 * |                      | convT    | ConvTranspose (strided)                                   |
 * | Conv2DBackpropFilter | taps     | Pad -> per tap: strided Slice, Gemm(transA) -> Concat     |
 * |                      | dilconv  | Conv of x^T [ci, B, H, W] with dy^T [co, B, oh, ow], dilation = stride (few channels) |
 * | BatchMatMul          | gemm     | rank 2: Gemm(transA, transB) (+ bias, activation)         |
 * |                      | matmul   | rank > 2: Transpose -> MatMul (+ bias, activation)        |
 *
 * ORT's plain Conv on graph-input weights is MLAS's im2col + GEMM: its NCHWc kernels only run
 * where ORT's transformer finds constant weights, so the 'nchwc' graphs call them directly
 * (2-2.5x faster on the extractor's 16-64 channel maps; see nchwcPays in ./kernels.ts).
 * Measured before them (ms, 8x56x56x64 3x3 64->64 stride 1 / 8x7x7x512 3x3 512->512): forward wasm 72 / 63,
 * conv 23 / 84, im2col 47 / 23; dx wasm composite 133 / 152, flip 37 / 53, convT 88 / 82;
 * dw wasm composite 230 / 95, taps 55 / 23 (dilated conv over transposed tensors 104 / 51);
 * the 7x7 stem (8x224x224x3 -> 64, stride 2) dw: wasm 534-806, taps 618-657, dilconv 163.
 * Shared 2-core machine at load 1-12: single numbers are noisy, the orderings were stable.
 * Tried and dropped: dx of strided convs as one batch-wide GEMM + col2im by Pad/Sum, 2-7x slower
 * than ConvTranspose on every ResNet shape but the 1x1 ones (8x8x256 -> 4x4x512: 47 vs 22 ms).
 */
import { tf } from '../tf';
import { BackendError } from '../../errors';
import { OnnxGraph } from '../../export/onnx_graph';

type ConvInfo = tf.backend_util.Conv2DInfo;

/** Activations of the fused kernels that the graphs support (tfjs's names). */
export type NativeActivation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'leakyrelu';
export const NATIVE_ACTIVATIONS: readonly string[] = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu'];

export interface Epilogue {
  /** Shape of the bias added to the output (broadcast as tfjs does), or null. */
  biasShape: number[] | null;
  activation: NativeActivation;
  leakyreluAlpha: number;
}

export type ConvVariant = 'conv' | 'im2col' | 'nchwc';
export type BackpropInputVariant = 'flip' | 'flipIm2col' | 'flipNchwc' | 'convT';

/** ORT's operator domain of its blocked-layout (NCHWc) CPU kernels. */
const NCHWC = { domain: 'com.microsoft.nchwc' };
export type BackpropFilterVariant = 'taps' | 'dilconv';

const NCHW_OF_NHWC = [0, 3, 1, 2];
const NHWC_OF_NCHW = [0, 2, 3, 1];
/** Filter [kh, kw, ci, co] -> ONNX Conv weight [co, ci, kh, kw]. */
const OIHW_OF_HWIO = [3, 2, 0, 1];

function int64(g: OnnxGraph, values: readonly number[]): string {
  return g.constant(values, 'int64');
}

/** A serialized graph and the name of its one output. */
export interface BuiltGraph {
  bytes: Uint8Array;
  output: string;
}

function finish(g: OnnxGraph, value: string, shape: number[]): BuiltGraph {
  g.output(value, shape);
  return { bytes: g.toModelProto({ check: false }), output: value };
}

/** Adds the bias and applies the activation, as tfjs's fused kernels do (bias first). */
function epilogue(g: OnnxGraph, y: string, ep: Epilogue | null): string {
  if (ep === null) return y;
  let out = y;
  if (ep.biasShape !== null) out = g.node('Add', [out, 'bias']);
  switch (ep.activation) {
    case 'linear': return out;
    case 'relu': return g.node('Relu', [out]);
    case 'relu6': return g.node('Clip', [out, g.constant([0], 'float32', []), g.constant([6], 'float32', [])]);
    case 'elu': return g.node('Elu', [out], { alpha: 1 });
    case 'sigmoid': return g.node('Sigmoid', [out]);
    case 'leakyrelu': return g.node('LeakyRelu', [out], { alpha: ep.leakyreluAlpha });
  }
}

function declareBias(g: OnnxGraph, ep: Epilogue | null): void {
  if (ep?.biasShape != null) g.input('bias', ep.biasShape);
}

function nhwc(info: ConvInfo): boolean {
  return info.dataFormat === 'channelsLast';
}

function pads(info: ConvInfo): [number, number, number, number] {
  const p = info.padInfo;
  return [p.top, p.left, p.bottom, p.right];
}

/**
 * Conv2D / FusedConv2D forward. Inputs x (tfjs layout), w [kh, kw, ci, co] (+ bias); output
 * info.outShape. 'im2col' and 'nchwc' need NHWC ('nchwc' also `nchwcSupported`, with the
 * runtime's block size); the bias of a fused conv is added in the output layout.
 */
export function conv2dGraph(info: ConvInfo, variant: ConvVariant, ep: Epilogue | null, block: number | null = null): BuiltGraph {
  const g = new OnnxGraph('conv2d');
  g.input('x', info.inShape);
  g.input('w', [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels]);
  declareBias(g, ep);
  const y = variant === 'im2col' ? im2colConv(g, info) : variant === 'nchwc' ? nchwcConv(g, 'x', 'w', info, block) : onnxConv(g, info);
  return finish(g, epilogue(g, y, ep), info.outShape);
}

/**
 * Whether ORT's NCHWc convolution (com.microsoft.nchwc Conv, MLAS's direct blocked kernels) can
 * run this conv: NHWC, no dilation, output channels a multiple of the block size (16 with
 * AVX-512, 8 with AVX2), input channels a multiple of it too or fewer than 8 (then the input
 * stays unblocked NCHW, as ORT's own NCHWc transformer does for a 3-channel stem).
 *
 * ORT applies these kernels by itself only to convs whose weights are constant initializers
 * (its NchwcTransformer reorders them once at load); ours are graph inputs that change every
 * step, so the graph reorders them itself, which is cheap next to the conv but for the widest
 * filters (see chooseConvVariant).
 */
export function nchwcSupported(info: ConvInfo, block: number | null): boolean {
  return block !== null && nhwc(info) && info.dilationHeight === 1 && info.dilationWidth === 1 &&
    info.outChannels % block === 0 && (info.inChannels % block === 0 || info.inChannels < 8);
}

/**
 * y = conv(x, w) through ORT's NCHWc kernels: x NHWC, w the value of a [kh, kw, ci, co] filter;
 * output NHWC. ReorderInput / ReorderOutput convert NHWC to and from the blocked layout
 * [B, C/block, H, W, block] in one pass each; the filter goes to ORT's OIHWBiBo layout
 * [co/block, ci/block, kh, kw, block(ci), block(co)] (OIHWBo [co/block, ci, kh, kw, block(co)]
 * with fewer than 8 input channels), declared with the shape [co, ci, kh, kw] as ORT's
 * transformer declares it.
 */
function nchwcConv(g: OnnxGraph, x: string, w: string, info: ConvInfo, block: number | null): string {
  if (block === null || !nchwcSupported(info, block)) throw new BackendError(`nchwc conv: unsupported shape or no block size (${block})`);
  const { filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co } = info;
  const blocked = ci % block === 0;
  const wBlocked = blocked
    ? g.node('Transpose', [g.node('Reshape', [w, int64(g, [kh, kw, ci / block, block, co / block, block])])], { perm: [4, 2, 0, 1, 3, 5] })
    : g.node('Transpose', [g.node('Reshape', [w, int64(g, [kh, kw, ci, co / block, block])])], { perm: [3, 2, 0, 1, 4] });
  const xIn = blocked ? g.node('ReorderInput', [x], { channels_last: 1 }, NCHWC) : g.node('Transpose', [x], { perm: NCHW_OF_NHWC });
  const y = g.node('Conv', [xIn, g.node('Reshape', [wBlocked, int64(g, [co, ci, kh, kw])])], {
    kernel_shape: [kh, kw], strides: [info.strideHeight, info.strideWidth], dilations: [1, 1], pads: pads(info), group: 1,
  }, NCHWC);
  return g.node('ReorderOutput', [y], { channels: co, channels_last: 1 }, NCHWC);
}

/** Finds the runtime's NCHWc block size: ReorderInput pads 4 channels up to one block. */
export function nchwcProbeGraph(): { bytes: Uint8Array; input: string; output: string } {
  const g = new OnnxGraph('nchwc_probe');
  g.input('x', [1, 1, 1, 4]);
  const y = g.node('ReorderInput', ['x'], { channels_last: 1 }, NCHWC);
  g.output(y, [1, 'block', 1, 1]);
  return { bytes: g.toModelProto({ check: false }), input: 'x', output: y };
}

function onnxConv(g: OnnxGraph, info: ConvInfo): string {
  const x = nhwc(info) ? g.node('Transpose', ['x'], { perm: NCHW_OF_NHWC }) : 'x';
  const w = g.node('Transpose', ['w'], { perm: OIHW_OF_HWIO });
  const y = g.node('Conv', [x, w], {
    kernel_shape: [info.filterHeight, info.filterWidth],
    strides: [info.strideHeight, info.strideWidth],
    dilations: [info.dilationHeight, info.dilationWidth],
    pads: pads(info),
  }); // [B, co, oh, ow]
  return nhwc(info) ? g.node('Transpose', [y], { perm: NHWC_OF_NCHW }) : y;
}

/** x padded NHWC, then tap (u, v) = rows u*dh + i*sh, cols v*dw + j*sw: [B, oh, ow, ci]. */
function tapSlices(g: OnnxGraph, x: string, info: ConvInfo): string[] {
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;
  const taps: string[] = [];
  for (let u = 0; u < kh; u++) {
    for (let v = 0; v < kw; v++) {
      taps.push(g.node('Slice', [x,
        int64(g, [u * dh, v * dw]), int64(g, [u * dh + (oh - 1) * sh + 1, v * dw + (ow - 1) * sw + 1]),
        int64(g, [1, 2]), int64(g, [sh, sw])]));
    }
  }
  return taps;
}

/** x NHWC padded so that every tap's rows and columns exist (bottom/right as far as needed). */
function padForTaps(g: OnnxGraph, x: string, info: ConvInfo): string {
  const { top, left } = info.padInfo;
  const needH = (info.outHeight - 1) * info.strideHeight + (info.filterHeight - 1) * info.dilationHeight + 1;
  const needW = (info.outWidth - 1) * info.strideWidth + (info.filterWidth - 1) * info.dilationWidth + 1;
  const bottom = Math.max(0, needH - info.inHeight - top), right = Math.max(0, needW - info.inWidth - left);
  if (top === 0 && left === 0 && bottom === 0 && right === 0) return x;
  return g.node('Pad', [x, int64(g, [0, top, left, 0, 0, bottom, right, 0])]);
}

function im2colConv(g: OnnxGraph, info: ConvInfo): string {
  const { filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co } = info;
  return im2colMatMul(g, 'x', info, g.node('Reshape', ['w', int64(g, [kh * kw * ci, co])]));
}

/** y = col(x) @ w2, x NHWC, w2 [kh*kw*ci, co] (taps in row-major order, channels fastest). */
function im2colMatMul(g: OnnxGraph, x: string, info: ConvInfo, w2: string): string {
  const { batchSize: B, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co } = info;
  const taps = tapSlices(g, padForTaps(g, x, info), info);
  const col = taps.length === 1 ? taps[0] : g.node('Concat', taps, { axis: 3 }); // [B, oh, ow, kh*kw*ci]
  const col2 = g.node('Reshape', [col, int64(g, [B * oh * ow, kh * kw * ci])]);
  return g.node('Reshape', [g.node('MatMul', [col2, w2]), int64(g, [B, oh, ow, co])]); // [B, oh, ow, co]
}

/**
 * The stride-1 input gradient as a forward conv (dy padded to the "full" size, the filter
 * flipped with in/out swapped): its ConvInfo when that padding is non-negative, else null.
 */
export function flippedConvInfo(info: ConvInfo): ConvInfo | null {
  const { inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;
  const pt = kh - 1 - info.padInfo.top, pl = kw - 1 - info.padInfo.left;
  const pb = H + kh - 1 - oh - pt, pr = W + kw - 1 - ow - pl;
  if (pt < 0 || pl < 0 || pb < 0 || pr < 0) return null;
  return tf.backend_util.computeConv2DInfo([info.batchSize, oh, ow, info.outChannels], [kh, kw, info.outChannels, info.inChannels],
    1, 1, [[0, 0], [pt, pb], [pl, pr], [0, 0]], undefined, false, 'channelsLast');
}

/**
 * Conv2DBackpropInput: inputs dy (info.outShape), w [kh, kw, ci, co]; output info.inShape.
 * 'flip' (stride 1): dx = conv(dy, w flipped in space, in/out swapped), padded to the "full" size
 * (negative padding crops dy first). 'convT': ONNX ConvTranspose, whose weight [co, ci, kh, kw]
 * is the forward conv's; output_padding covers the rows a floor division dropped.
 */
export function backpropInputGraph(info: ConvInfo, variant: BackpropInputVariant, block: number | null = null): BuiltGraph {
  const g = new OnnxGraph('conv2d_backprop_input');
  g.input('dy', info.outShape);
  g.input('w', [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels]);
  const { inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;
  const { top, left } = info.padInfo;
  const flipW = (): string => g.node('Slice', ['w', int64(g, [-1, -1]), int64(g, [-2147483648, -2147483648]), int64(g, [0, 1]), int64(g, [-1, -1])]);
  if (variant === 'flipIm2col' || variant === 'flipNchwc') {
    const flipped = flippedConvInfo(info);
    if (flipped === null || !nhwc(info)) throw new BackendError(`${variant}: needs NHWC and non-negative full padding`);
    const wSwapped = g.node('Transpose', [flipW()], { perm: [0, 1, 3, 2] }); // [kh, kw, co, ci]: the flipped conv's filter
    if (variant === 'flipNchwc') return finish(g, nchwcConv(g, 'dy', wSwapped, flipped, block), info.inShape);
    const w2 = g.node('Reshape', [wSwapped, int64(g, [kh * kw * info.outChannels, info.inChannels])]);
    return finish(g, im2colMatMul(g, 'dy', flipped, w2), info.inShape);
  }
  let dx: string;
  let dy = nhwc(info) ? g.node('Transpose', ['dy'], { perm: NCHW_OF_NHWC }) : 'dy'; // [B, co, oh, ow]
  if (variant === 'flip') {
    const wf = flipW();
    const wT = g.node('Transpose', [wf], { perm: [2, 3, 0, 1] }); // [ci, co, kh, kw]: Conv weight [M=ci, C=co]
    const pt = kh - 1 - top, pl = kw - 1 - left;
    const pb = H + kh - 1 - oh - pt, pr = W + kw - 1 - ow - pl;
    if (pt < 0 || pl < 0 || pb < 0 || pr < 0) {
      const t = Math.max(0, -pt), l = Math.max(0, -pl);
      dy = g.node('Slice', [dy, int64(g, [t, l]), int64(g, [oh - Math.max(0, -pb), ow - Math.max(0, -pr)]), int64(g, [2, 3])]);
    }
    dx = g.node('Conv', [dy, wT], {
      kernel_shape: [kh, kw], strides: [1, 1], pads: [Math.max(0, pt), Math.max(0, pl), Math.max(0, pb), Math.max(0, pr)],
    });
  } else {
    const { strideHeight: sh, strideWidth: sw } = info;
    const needH = sh * (oh - 1) + kh - top - H, needW = sw * (ow - 1) + kw - left - W;
    dx = g.node('ConvTranspose', [dy, g.node('Transpose', ['w'], { perm: OIHW_OF_HWIO })], {
      kernel_shape: [kh, kw],
      strides: [sh, sw],
      pads: [top, left, Math.max(0, needH), Math.max(0, needW)],
      output_padding: [Math.max(0, -needH), Math.max(0, -needW)],
    }); // [B, ci, H, W]
  }
  return finish(g, nhwc(info) ? g.node('Transpose', [dx], { perm: NHWC_OF_NCHW }) : dx, info.inShape);
}

/**
 * Conv2DBackpropFilter: inputs x (info.inShape), dy (info.outShape); output [kh, kw, ci, co].
 * dw[u, v] = x_tap(u, v)^T @ dy over all output positions: one Gemm (transA) per tap, each with
 * the long dimension B*oh*ow as its inner dimension, which is what a GEMM does best.
 */
export function backpropFilterGraph(info: ConvInfo, variant: BackpropFilterVariant): BuiltGraph {
  const g = new OnnxGraph('conv2d_backprop_filter');
  g.input('x', info.inShape);
  g.input('dy', info.outShape);
  const { batchSize: B, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw, inChannels: ci, outChannels: co } = info;
  const x = nhwc(info) ? 'x' : g.node('Transpose', ['x'], { perm: NHWC_OF_NCHW });
  const dy = nhwc(info) ? 'dy' : g.node('Transpose', ['dy'], { perm: NHWC_OF_NCHW });
  const n = B * oh * ow;
  if (variant === 'dilconv') {
    return finish(g, g.node('Transpose', [dilatedFilterConv(g, x, dy, info)], { perm: [2, 3, 0, 1] }), [kh, kw, ci, co]);
  }
  const dy2 = g.node('Reshape', [dy, int64(g, [n, co])]);
  const perTap = tapSlices(g, padForTaps(g, x, info), info)
    .map((tap) => g.node('Gemm', [g.node('Reshape', [tap, int64(g, [n, ci])]), dy2], { transA: 1 })); // [ci, co]
  const all = perTap.length === 1 ? perTap[0] : g.node('Concat', perTap, { axis: 0 }); // [kh*kw*ci, co]
  return finish(g, g.node('Reshape', [all, int64(g, [kh, kw, ci, co])]), [kh, kw, ci, co]);
}

/**
 * dw as one convolution with batch and channels swapped: x^T [ci, B, H, W] convolved with
 * dy^T [co, B, oh, ow] as the filter, stride 1, dilation = the forward stride: [ci, co, kh, kw].
 * Rows the forward conv never reached are cropped first (ONNX pads cannot be negative).
 */
function dilatedFilterConv(g: OnnxGraph, xNhwc: string, dyNhwc: string, info: ConvInfo): string {
  const { inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const bottom = (oh - 1) * sh + kh - H - top, right = (ow - 1) * sw + kw - W - left;
  let x = g.node('Transpose', [xNhwc], { perm: [3, 0, 1, 2] }); // [ci, B, H, W]
  if (bottom < 0 || right < 0) x = g.node('Slice', [x, int64(g, [0, 0]), int64(g, [H + Math.min(0, bottom), W + Math.min(0, right)]), int64(g, [2, 3])]);
  const f = g.node('Transpose', [dyNhwc], { perm: [3, 0, 1, 2] }); // [co, B, oh, ow]
  return g.node('Conv', [x, f], {
    kernel_shape: [oh, ow], dilations: [sh, sw], strides: [1, 1], pads: [top, left, Math.max(0, bottom), Math.max(0, right)],
  }); // [ci, co, kh, kw]
}

/**
 * BatchMatMul / _FusedMatMul: inputs a, b (+ bias) as tfjs gives them; output outShape. Rank 2
 * is one Gemm with its transpose flags; higher ranks transpose the last two axes and MatMul
 * (which broadcasts the batch axes as tfjs does).
 */
export function matMulGraph(aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean,
  outShape: number[], ep: Epilogue | null): BuiltGraph {
  const g = new OnnxGraph('batch_matmul');
  g.input('a', aShape);
  g.input('b', bShape);
  declareBias(g, ep);
  let y: string;
  if (aShape.length === 2 && bShape.length === 2) {
    y = g.node('Gemm', ['a', 'b'], { transA: transposeA ? 1 : 0, transB: transposeB ? 1 : 0 });
  } else {
    const swapLast = (rank: number): number[] => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
    const a = transposeA ? g.node('Transpose', ['a'], { perm: swapLast(aShape.length) }) : 'a';
    const b = transposeB ? g.node('Transpose', ['b'], { perm: swapLast(bShape.length) }) : 'b';
    y = g.node('MatMul', [a, b]);
  }
  return finish(g, epilogue(g, y, ep), outShape);
}

/** The runtime's self-test: c = a @ b, a [2, 3], b [3, 2]. */
export function selfTestGraph(): Uint8Array {
  const g = new OnnxGraph('self_test');
  g.input('a', [2, 3]);
  g.input('b', [3, 2]);
  g.node('MatMul', ['a', 'b'], {}, { outputs: ['c'] });
  g.output('c', [2, 2]);
  return g.toModelProto({ check: false });
}
