/**
 * Building blocks for composite wasm kernels: run registered wasm kernels on raw TensorInfos
 * (no engine bookkeeping, no tape) and free every intermediate when the composite returns.
 *
 * A kernel function returns TensorInfos whose data the backend reference-counts; the engine
 * wraps the one we return into the output tensor. Everything else we made must be released with
 * `backend.disposeData`, which `KernelScope.dispose` does.
 */
import { tf } from '../tf';
import { BackendError } from '../../errors';

export type TensorInfo = tf.TensorInfo;
export type ExplicitPadding = tf.backend_util.ExplicitPadding;
export type PadAttr = 'same' | 'valid' | number | ExplicitPadding;

export const WASM = 'wasm';

/** The part of BackendWasm (not imported: its package loads lazily) that our wasm kernels use. */
export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): tf.backend_util.TypedArray;
  disposeData(dataId: tf.DataId): boolean;
}

/** tfjs-wasm's own kernels that ours replaced, by name (./index.ts fills it on registration). */
export const replacedWasmKernels = new Map<string, tf.KernelConfig>();

/** Hands a call that our replacement does not take to tfjs-wasm's own kernel `name`. */
export function callReplacedKernel(name: string, args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  const k = replacedWasmKernels.get(name);
  if (k === undefined) throw new BackendError(`${name}: no tfjs-wasm kernel to fall back to`);
  return k.kernelFunc(args);
}

export class KernelScope {
  private readonly made: TensorInfo[] = [];

  constructor(readonly backend: tf.KernelBackend) {}

  /** Runs the wasm kernel `name`; its output is freed at the end of the composite. */
  run(name: string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}): TensorInfo {
    const kernel = tf.getKernel(name, WASM);
    if (kernel === undefined) {
      throw new BackendError(`composite wasm kernel needs kernel '${name}', which is not registered for wasm`);
    }
    const out = kernel.kernelFunc({
      inputs: inputs as tf.NamedTensorInfoMap,
      backend: this.backend,
      attrs: attrs as unknown as tf.NamedAttrMap,
    });
    if (Array.isArray(out)) {
      for (const t of out) this.made.push(t);
      throw new BackendError(`composite wasm kernel: '${name}' returned ${out.length} outputs, expected one`);
    }
    this.made.push(out);
    return out;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run(tf.Reshape, { x }, { shape });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run(tf.Transpose, { x }, { perm });
  }

  reverse(x: TensorInfo, dims: number[]): TensorInfo {
    return this.run(tf.Reverse, { x }, { dims });
  }

  sum(x: TensorInfo, axis: number[]): TensorInfo {
    return this.run(tf.Sum, { x }, { axis, keepDims: false });
  }

  /** Concat takes its inputs as an array, as tfjs passes them. */
  concat(xs: TensorInfo[], axis: number): TensorInfo {
    return this.run(tf.Concat, xs as unknown as Record<string, TensorInfo>, { axis });
  }

  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    return this.run(tf.Slice, { x }, { begin, size });
  }

  /**
   * Inserts `s - 1` zeros after every row / column of an NHWC tensor (a "dilated" gradient):
   * [B, h, w, C] -> [B, h * sh, w * sw, C], the last sh - 1 rows and sw - 1 columns being zero.
   * Done as reshape [B, h, 1, w, 1, C] + zero padding of the unit axes: one copy.
   */
  dilateRowsCols(x: TensorInfo, sh: number, sw: number): TensorInfo {
    if (sh === 1 && sw === 1) return x;
    const [b, h, w, c] = x.shape;
    const x6 = this.reshape(x, [b, h, 1, w, 1, c]);
    const padded = this.run(tf.PadV2, { x: x6 }, {
      paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]],
      constantValue: 0,
    });
    return this.reshape(padded, [b, h * sh, w * sw, c]);
  }

  /**
   * Crops the rows / columns that a negative padding asks to remove (NHWC) and returns the
   * non-negative padding left to apply, to be passed to the convolution as explicit padding
   * (XNNPACK pads on the fly, which saves a copy).
   */
  cropForConv(x: TensorInfo, top: number, bottom: number, left: number, right: number): {
    x: TensorInfo; pad: ExplicitPadding;
  } {
    let out = x;
    if (top < 0 || bottom < 0 || left < 0 || right < 0) {
      const [b, h, w, c] = x.shape;
      const t = Math.max(0, -top), l = Math.max(0, -left);
      const hh = h - t - Math.max(0, -bottom), ww = w - l - Math.max(0, -right);
      out = this.slice(x, [0, t, l, 0], [b, hh, ww, c]);
    }
    return {
      x: out,
      pad: [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]],
    };
  }

  /** A new int32 / float32 tensor on the wasm heap holding `values`, freed with the scope. */
  constant(shape: number[], dtype: 'int32' | 'float32', values: Int32Array | Float32Array): TensorInfo {
    const out = (this.backend as unknown as WasmHeapBackend).makeOutput(shape, dtype, undefined, values);
    this.made.push(out);
    return out;
  }

  /**
   * The sub-filter of taps (a + k*sh, b + m*sw) of a filter [kh, kw, ci, co], flipped in space
   * with its channels swapped: out[u, v, o, i] = w[a + (ma-1-u)*sh, b + (mb-1-v)*sw, i, o], as
   * the input gradient of a (strided) convolution needs; (a, b) = (0, 0) and stride 1 give the
   * whole filter flipped. One pass in JavaScript: the wasm Reverse and StridedSlice kernels took
   * 150-200 ms for 3x3x512x512, several times the convolution they feed (about 30 ms).
   */
  flipSwapFilter(filter: TensorInfo, a = 0, b = 0, sh = 1, sw = 1): TensorInfo {
    const [kh, kw, ci, co] = filter.shape;
    const ma = Math.ceil((kh - a) / sh), mb = Math.ceil((kw - b) / sw);
    const w = this.backend.readSync(filter.dataId) as Float32Array;
    const out = new Float32Array(ma * mb * ci * co);
    for (let u = 0; u < ma; u++) {
      for (let v = 0; v < mb; v++) {
        const src = ((a + (ma - 1 - u) * sh) * kw + (b + (mb - 1 - v) * sw)) * ci * co; // [ci, co] block of the source tap
        const dst = (u * mb + v) * co * ci; // [co, ci] block of the output tap
        for (let i = 0; i < ci; i++) {
          const row = src + i * co;
          for (let o = 0; o < co; o++) out[dst + o * ci + i] = w[row + o];
        }
      }
    }
    return this.constant([ma, mb, co, ci], 'float32', out);
  }

  /** Takes `t` out of the scope: the caller owns it (the composite's output). */
  keep(t: TensorInfo): TensorInfo {
    const i = this.made.lastIndexOf(t);
    if (i >= 0) {
      this.made.splice(i, 1);
      return t;
    }
    // An input passed through unchanged: hand the engine its own copy.
    const copy = this.run(tf.Identity, { x: t });
    this.made.pop();
    return copy;
  }

  dispose(): void {
    for (const t of this.made) this.backend.disposeData(t.dataId);
    this.made.length = 0;
  }
}

/** A kernel config for the wasm backend whose function runs `body` in a KernelScope. */
export function compositeKernel(
  kernelName: string,
  body: (scope: KernelScope, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown>) => TensorInfo,
): tf.KernelConfig {
  return {
    kernelName,
    backendName: WASM,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const scope = new KernelScope(backend as tf.KernelBackend);
      try {
        return scope.keep(body(scope, inputs as Record<string, TensorInfo>, (attrs ?? {}) as Record<string, unknown>));
      } finally {
        scope.dispose();
      }
    },
  };
}

/** `[a, a]` for a number, the pair otherwise. */
export function pair(v: number | number[] | undefined, dflt = 1): [number, number] {
  if (v === undefined || v === null) return [dflt, dflt];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

export function as4(shape: number[]): [number, number, number, number] {
  if (shape.length !== 4) throw new BackendError(`expected a rank-4 shape, got [${shape.join(', ')}]`);
  return [shape[0], shape[1], shape[2], shape[3]];
}
