/**
 * The wasm kernels that run in ONNX Runtime when native kernels are on: each plans a tiny graph
 * (./op_graphs.ts) from the kernel's shapes and attributes and runs the cached session on views
 * of the wasm heap (copied when the heap is shared, see ./ort_runtime.ts), its output written
 * into a new wasm tensor. Models, losses,
 * gradients and the training loop see the same tfjs kernels as before.
 *
 * A kernel hands the call to the kernel that was registered before it (the wasm kernel or our
 * composite) when the graph would not pay or is not supported: fewer than `minFlops` FLOPs, a
 * non-float32 or empty tensor, a PReLU activation, a fused NCHW conv, or batch sizes that only
 * tfjs's modulo batching accepts (BatchMatMul of [2, m, k] with [3, k, n]). Such calls give
 * exactly the wasm results.
 */
import { tf } from '../tf';
import { BackendError } from '../../errors';
import { WASM, as4, type PadAttr, type TensorInfo, type WasmHeapBackend } from '../kernels/scope';
import type { NativePlan, OrtRuntime } from './ort_runtime';
import {
  backpropFilterGraph, backpropInputGraph, conv2dGraph, matMulGraph, NATIVE_ACTIVATIONS,
  flippedConvInfo, nchwcSupported, type BackpropFilterVariant, type BackpropInputVariant, type ConvVariant, type Epilogue, type NativeActivation,
} from './op_graphs';

type ConvInfo = tf.backend_util.Conv2DInfo;
type DimRounding = 'floor' | 'round' | 'ceil' | undefined;


export interface NativeKernelContext {
  runtime: OrtRuntime;
  /** The kernels registered before ours, by name: where a call goes that native does not take. */
  fallbacks: Map<string, tf.KernelConfig>;
  /** Smallest 2 * multiply-adds of a call worth a native run (measured; see ./index.ts). */
  minFlops: number;
  /** Forces a forward-conv variant (benchmarks); null: chosen by shape. */
  convVariant: ConvVariant | null;
  /** Forces an input-gradient variant (benchmarks, tests); null: chosen by shape. */
  backpropInputVariant: BackpropInputVariant | null;
}

let context: NativeKernelContext | null = null;

export function setNativeKernelContext(c: NativeKernelContext | null): void {
  context = c;
}

export function nativeKernelContext(): NativeKernelContext | null {
  return context;
}

/** A planned native call: the graph and the tensors to feed it, in the graph's input order. */
interface Call {
  plan: NativePlan;
  inputs: TensorInfo[];
  flops: number;
}

type Planner = (inputs: Record<string, TensorInfo | undefined>, attrs: Record<string, unknown>, c: NativeKernelContext) => Call | null;

function nativeKernel(kernelName: string, planner: Planner): tf.KernelConfig {
  return {
    kernelName,
    backendName: WASM,
    kernelFunc: (args) => {
      const c = context;
      const call = c === null ? null : planner(args.inputs as Record<string, TensorInfo | undefined>, (args.attrs ?? {}) as Record<string, unknown>, c);
      if (c === null || call === null || call.flops < c.minFlops) {
        const fallback = c?.fallbacks.get(kernelName);
        if (fallback === undefined) throw new BackendError(`native kernel ${kernelName}: no wasm kernel to fall back to`);
        return fallback.kernelFunc(args);
      }
      const backend = args.backend as unknown as WasmHeapBackend;
      // The output first: allocating may grow the wasm memory, which detaches earlier views of
      // an unshared heap. The views are taken after it and used before anything else allocates.
      const out = backend.makeOutput(call.plan.outShape, 'float32');
      try {
        const views = call.inputs.map((t) => ({ data: backend.typedArrayFromHeap(t) as Float32Array, shape: t.shape }));
        c.runtime.run(call.plan, views, backend.typedArrayFromHeap(out) as Float32Array, kernelName);
      } catch (e) {
        backend.disposeData(out.dataId);
        throw e;
      }
      return out;
    },
  };
}

/** A float32, non-empty input (int tensors and empty ones stay on wasm). */
function f32(t: TensorInfo | undefined): t is TensorInfo {
  return t !== undefined && t.dtype === 'float32' && t.shape.every((d) => d > 0);
}

function convInfoOf(xShape: number[], filterShape: number[], attrs: Record<string, unknown>): ConvInfo {
  const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs as {
    strides: number | [number, number]; pad: PadAttr; dataFormat?: 'NHWC' | 'NCHW';
    dilations?: number | [number, number]; dimRoundingMode?: DimRounding;
  };
  return tf.backend_util.computeConv2DInfo(as4(xShape), as4(filterShape), strides, dilations ?? 1, pad,
    dimRoundingMode, false, tf.backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC'));
}

function convKey(info: ConvInfo): string {
  const p = info.padInfo;
  return `x${info.inShape}|f${info.filterHeight},${info.filterWidth},${info.inChannels},${info.outChannels}` +
    `|s${info.strideHeight},${info.strideWidth}|d${info.dilationHeight},${info.dilationWidth}` +
    `|p${p.top},${p.left},${p.bottom},${p.right}|${info.dataFormat}`;
}

function convFlops(info: ConvInfo): number {
  return 2 * info.batchSize * info.outHeight * info.outWidth * info.outChannels * info.filterHeight * info.filterWidth * info.inChannels;
}

/**
 * Whether ORT's NCHWc conv pays over the im2col GEMM: not for 1x1 filters (a GEMM already; equal
 * or slower), nor when the output has fewer than 4 positions per output channel, where
 * reordering a wide filter every call costs more than the conv (2 threads, batch 8, ms NCHWc /
 * best other: 3x3 conv [8,32,32,32] 1.2 / 2.7, [8,56,56,64] 12.0 / 17.5, [8,8,8,64] 0.33 /
 * 0.75, [8,14,14,256] 9.5 / 13.3; but [8,8,8,256] dx 8.4 / 4.9, [8,4,4,512] 8.7 / 4.2,
 * [8,7,7,512] 15.8 / 11.4). `npm run bench:conv` times every variant and marks the chosen one.
 */
function nchwcPays(info: ConvInfo): boolean {
  const pointwise = info.filterHeight === 1 && info.filterWidth === 1;
  return !pointwise && info.batchSize * info.outHeight * info.outWidth >= 4 * info.outChannels;
}

/**
 * Forward conv variant by shape: ORT's NCHWc kernels where the channels allow them and they pay
 * (see nchwcPays); otherwise ORT's plain Conv at large feature maps, the im2col GEMM at small
 * ones with many channels (7x7x512: 23 vs 84 ms) and for 1x1 filters. A forced 'nchwc' applies
 * where the shape is supported at all.
 */
export function chooseConvVariant(info: ConvInfo, forced: ConvVariant | null, block: number | null = null): ConvVariant {
  if (info.dataFormat !== 'channelsLast') return 'conv';
  const supported = nchwcSupported(info, block);
  if (forced !== null && (forced !== 'nchwc' || supported)) return forced;
  if (supported && nchwcPays(info)) return 'nchwc';
  const pointwise = info.filterHeight === 1 && info.filterWidth === 1;
  return pointwise || info.outHeight * info.outWidth <= 14 * 14 ? 'im2col' : 'conv';
}

/**
 * Stride 1: conv with the flipped filter, through the NCHWc kernels where they apply and pay
 * (as the forward conv), else as im2col on small NHWC feature maps, else ORT's Conv; strided:
 * ConvTranspose. A forced variant applies where the shape allows it.
 */
export function chooseBackpropInputVariant(info: ConvInfo, forced: BackpropInputVariant | null = null, block: number | null = null): BackpropInputVariant {
  const strided = info.strideHeight !== 1 || info.strideWidth !== 1;
  const flipped = info.dataFormat === 'channelsLast' && !strided ? flippedConvInfo(info) : null;
  if (forced !== null) {
    if (forced === 'convT' || (forced === 'flip' && !strided)) return forced;
    if (flipped !== null && (forced === 'flipIm2col' || nchwcSupported(flipped, block))) return forced;
  }
  if (strided) return 'convT';
  if (flipped !== null && nchwcSupported(flipped, block) && nchwcPays(flipped)) return 'flipNchwc';
  const small = info.inHeight * info.inWidth <= 14 * 14;
  return small && flipped !== null ? 'flipIm2col' : 'flip';
}

/**
 * One Gemm per tap, except with few input channels (the 7x7 stem: 3), where the per-tap Gemms
 * are too thin (M = 3) and slicing 49 taps costs more than they do: one dilated conv then.
 */
export function chooseBackpropFilterVariant(info: ConvInfo): BackpropFilterVariant {
  return info.inChannels < 16 ? 'dilconv' : 'taps';
}

function epilogueOf(attrs: Record<string, unknown>, bias: TensorInfo | undefined, prelu: TensorInfo | undefined): Epilogue | null | 'unsupported' {
  const activation = (attrs.activation as string | undefined) ?? 'linear';
  if (prelu !== undefined || !NATIVE_ACTIVATIONS.includes(activation)) return 'unsupported';
  if (bias === undefined && activation === 'linear') return null;
  return { biasShape: bias === undefined ? null : [...bias.shape], activation: activation as NativeActivation, leakyreluAlpha: (attrs.leakyreluAlpha as number | undefined) ?? 0.2 };
}

function epKey(ep: Epilogue | null): string {
  return ep === null ? '' : `|b${ep.biasShape ?? '-'}|${ep.activation}${ep.activation === 'leakyrelu' ? ep.leakyreluAlpha : ''}`;
}

function planConv(inputs: Record<string, TensorInfo | undefined>, attrs: Record<string, unknown>, c: NativeKernelContext, fused: boolean): Call | null {
  const { x, filter, bias, preluActivationWeights } = inputs;
  if (!f32(x) || !f32(filter) || (bias !== undefined && !f32(bias))) return null;
  const ep = fused ? epilogueOf(attrs, bias, preluActivationWeights) : null;
  if (ep === 'unsupported') return null;
  const info = convInfoOf(x.shape, filter.shape, attrs);
  if (ep !== null && info.dataFormat !== 'channelsLast') return null; // bias layout of fused NCHW: left to wasm
  const block = c.runtime.nchwcBlock;
  const variant = chooseConvVariant(info, c.convVariant, block);
  return {
    plan: {
      key: `Conv2D|${variant}|${convKey(info)}${epKey(ep)}`,
      build: () => conv2dGraph(info, variant, ep, block),
      inputNames: ep?.biasShape ? ['x', 'w', 'bias'] : ['x', 'w'],
      outShape: info.outShape,
    },
    inputs: ep?.biasShape ? [x, filter, bias!] : [x, filter],
    flops: convFlops(info),
  };
}

export const nativeConv2DConfig = nativeKernel(tf.Conv2D, (inputs, attrs, c) => planConv(inputs, attrs, c, false));
export const nativeFusedConv2DConfig = nativeKernel(tf.FusedConv2D, (inputs, attrs, c) => planConv(inputs, attrs, c, true));

export const nativeConv2DBackpropInputConfig = nativeKernel(tf.Conv2DBackpropInput, (inputs, attrs, c) => {
  const { dy, filter } = inputs;
  if (!f32(dy) || !f32(filter)) return null;
  const info = convInfoOf(attrs.inputShape as number[], filter.shape, { ...attrs, dilations: 1 });
  const block = c.runtime.nchwcBlock;
  const variant = chooseBackpropInputVariant(info, c.backpropInputVariant, block);
  return {
    plan: {
      key: `Conv2DBackpropInput|${variant}|${convKey(info)}`,
      build: () => backpropInputGraph(info, variant, block),
      inputNames: ['dy', 'w'],
      outShape: info.inShape,
    },
    inputs: [dy, filter],
    flops: convFlops(info),
  };
});

export const nativeConv2DBackpropFilterConfig = nativeKernel(tf.Conv2DBackpropFilter, (inputs, attrs) => {
  const { x, dy } = inputs;
  if (!f32(x) || !f32(dy)) return null;
  const info = convInfoOf(x.shape, attrs.filterShape as number[], { ...attrs, dilations: 1 });
  const variant = chooseBackpropFilterVariant(info);
  return {
    plan: {
      key: `Conv2DBackpropFilter|${variant}|${convKey(info)}`,
      build: () => backpropFilterGraph(info, variant),
      inputNames: ['x', 'dy'],
      outShape: [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels],
    },
    inputs: [x, dy],
    flops: convFlops(info),
  };
});

function planMatMul(inputs: Record<string, TensorInfo | undefined>, attrs: Record<string, unknown>, fused: boolean): Call | null {
  const { a, b, bias, preluActivationWeights } = inputs;
  if (!f32(a) || !f32(b) || (bias !== undefined && !f32(bias))) return null;
  if (a.shape.length < 2 || b.shape.length < 2) return null;
  const ep = fused ? epilogueOf(attrs, bias, preluActivationWeights) : null;
  if (ep === 'unsupported') return null;
  const transposeA = attrs.transposeA === true, transposeB = attrs.transposeB === true;
  const ra = a.shape.length, rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) return null; // the wasm kernel reports the shape error
  let batch: number[];
  try {
    batch = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  } catch {
    return null;
  }
  const outShape = [...batch, m, n];
  const batchSize = batch.reduce((p, d) => p * d, 1);
  return {
    plan: {
      key: `BatchMatMul|a${a.shape}|b${b.shape}|t${transposeA ? 1 : 0}${transposeB ? 1 : 0}${epKey(ep)}`,
      build: () => matMulGraph([...a.shape], [...b.shape], transposeA, transposeB, outShape, ep),
      inputNames: ep?.biasShape ? ['a', 'b', 'bias'] : ['a', 'b'],
      outShape,
    },
    inputs: ep?.biasShape ? [a, b, bias!] : [a, b],
    flops: 2 * batchSize * m * n * k,
  };
}

export const nativeBatchMatMulConfig = nativeKernel(tf.BatchMatMul, (inputs, attrs) => planMatMul(inputs, attrs, false));
export const nativeFusedMatMulConfig = nativeKernel(tf._FusedMatMul, (inputs, attrs) => planMatMul(inputs, attrs, true));

export const NATIVE_KERNELS: readonly tf.KernelConfig[] = [
  nativeConv2DConfig,
  nativeFusedConv2DConfig,
  nativeConv2DBackpropInputConfig,
  nativeConv2DBackpropFilterConfig,
  nativeBatchMatMulConfig,
  nativeFusedMatMulConfig,
];
