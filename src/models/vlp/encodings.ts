/**
 * Fixed (parameter-free) encodings of the explainer's prefix, each as a tfjs function and its ONNX
 * emission with the same op order:
 *
 * - `sine2d`: DETR-style 2-D sine position encodings of the visual grid. For a grid of H x W cells
 *   and width C (C % 4 == 0), cell (r, c) gets [sin(y w_j), cos(y w_j) | sin(x w_j), cos(x w_j)]
 *   for j < C/4, with y = (r + 0.5) / H * 2 pi, x = (c + 0.5) / W * 2 pi (cell centres, normalized
 *   as DETR's `normalize=True`, so a model trained at one grid size sees the same range at
 *   another) and w_j = 10000^(-j / (C/4)). Layout: y half first, then x; sin block then cos block.
 *   The ONNX graph computes it from the feature map's shape, so H and W stay dynamic.
 * - `boxFourier`: the HOI boxes' positional information. Each normalized coordinate c in [0, 1]
 *   becomes [c, sin(2^k pi c) (k < F), cos(2^k pi c) (k < F)], 2F + 1 features; the 4
 *   coordinates of a box are flattened: [B, M, 4] -> [B, M, 4 (2F + 1)].
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph, OnnxOps } from '../../export/onnx_graph';
import { DataType } from '../../export/onnx_proto';
import { assertShape, fmtShape } from '../nn/module';

export const SINE_TEMPERATURE = 10000;
const TWO_PI = 2 * Math.PI;

/** w_j = T^(-j / (C/4)), j < C/4, as float32. */
function sineFrequencies(dim: number): Float32Array {
  const n = dim / 4;
  return Float32Array.from({ length: n }, (_, j) => Math.pow(SINE_TEMPERATURE, -j / n));
}

/**
 * The 2-D sine encoding [H * W, C] (row-major cells), computed in JavaScript. Each step is rounded
 * to float32 as the ONNX graph computes it (Cast, Add, Div, Mul, Mul, Sin/Cos), so both agree to
 * the sin/cos rounding.
 */
export function sine2d(height: number, width: number, dim: number): Float32Array {
  assertShape(dim % 4 === 0 && height > 0 && width > 0, () => `sine2d: dim % 4 == 0 and a non-empty grid expected, got ${height}x${width}x${dim}`);
  const f = Math.fround;
  const freqs = sineFrequencies(dim);
  const q = dim / 4;
  const axis = (n: number): Float32Array => { // [n, C/2]: sin block then cos block
    const out = new Float32Array(n * 2 * q);
    for (let i = 0; i < n; i++) {
      const p = f(f(f(f(i) + 0.5) / f(n)) * f(TWO_PI));
      for (let j = 0; j < q; j++) {
        const a = f(p * freqs[j]);
        out[i * 2 * q + j] = Math.sin(a);
        out[i * 2 * q + q + j] = Math.cos(a);
      }
    }
    return out;
  };
  const ys = axis(height);
  const xs = axis(width);
  const out = new Float32Array(height * width * dim);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const o = (r * width + c) * dim;
      out.set(ys.subarray(r * 2 * q, (r + 1) * 2 * q), o);
      out.set(xs.subarray(c * 2 * q, (c + 1) * 2 * q), o + 2 * q);
    }
  }
  return out;
}

/** The same encoding as ONNX nodes, from the shape of `featureMap` [N, Cv, H, W]: value [H * W, dim]. */
export function sine2dOnnx(g: OnnxGraph, scope: string, featureMap: string, dim: number): string {
  const o = g.ops(scope);
  const i64 = (v: number[], dims?: number[]): string => g.constant(v, 'int64', dims);
  const f32 = (v: number): string => g.constant([v], 'float32', []);
  const freqs = g.constant(sineFrequencies(dim), 'float32', [dim / 4]);
  const axis = (start: number): { size: string; enc: string } => {
    const size = o.Shape(featureMap, { start, end: start + 1 }); // [1] int64
    const idx = o.Cast(o.Range(i64([0], []), o.Squeeze(size, i64([0])), i64([1], [])), { to: DataType.FLOAT }); // [n]
    const p = o.Mul(o.Div(o.Add(idx, f32(0.5)), o.Cast(size, { to: DataType.FLOAT })), f32(TWO_PI)); // [n]
    const a = o.Mul(o.Unsqueeze(p, i64([1])), freqs); // [n, C/4]
    return { size, enc: o.Concat([o.op('Sin', [a]), o.op('Cos', [a])], { axis: 1 }) }; // [n, C/2]
  };
  const y = axis(2);
  const x = axis(3);
  const grid = o.Concat([y.size, x.size, i64([dim / 2])], { axis: 0 }); // [3] = H, W, C/2
  const yy = o.Expand(o.Unsqueeze(y.enc, i64([1])), grid); // [H, W, C/2]
  const xx = o.Expand(o.Unsqueeze(x.enc, i64([0])), grid); // [H, W, C/2]
  return o.Reshape(o.Concat([yy, xx], { axis: 2 }), i64([-1, dim])); // [H * W, C]
}

/** Features per box: 4 coordinates x (1 + 2F). */
export function boxFourierFeatures(frequencies: number): number {
  return 4 * (2 * frequencies + 1);
}

/** 2^k pi, k < F, as float32. */
function boxFrequencies(frequencies: number): Float32Array {
  return Float32Array.from({ length: frequencies }, (_, k) => Math.pow(2, k) * Math.PI);
}

/** boxes [B, M, 4] float32 -> [B, M, 4 (2F + 1)]. */
export function boxFourier(boxes: tf.Tensor3D, frequencies: number): tf.Tensor3D {
  assertShape(boxes.rank === 3 && boxes.shape[2] === 4 && boxes.dtype === 'float32',
    () => `boxFourier: float32 boxes [B, M, 4] expected, got ${boxes.dtype} ${fmtShape(boxes.shape)}`);
  const [b, m] = boxes.shape;
  return tf.tidy(() => {
    const c = boxes.expandDims(3); // [B, M, 4, 1]
    const a = tf.mul(c, tf.tensor1d(boxFrequencies(frequencies))); // [B, M, 4, F]
    return tf.concat([c, tf.sin(a), tf.cos(a)], 3).reshape([b, m, boxFourierFeatures(frequencies)]) as tf.Tensor3D; // [B, M, 4(2F+1)]
  });
}

/** The same as ONNX nodes: boxes [B, M, 4] -> [B, M, 4 (2F + 1)]. */
export function boxFourierOnnx(o: OnnxOps, boxes: string, frequencies: number): string {
  const g = o.g;
  const c = o.Unsqueeze(boxes, g.constant([3], 'int64')); // [B, M, 4, 1]
  const a = o.Mul(c, g.constant(boxFrequencies(frequencies), 'float32', [frequencies])); // [B, M, 4, F]
  const feats = o.Concat([c, o.op('Sin', [a]), o.op('Cos', [a])], { axis: 3 }); // [B, M, 4, 2F+1]
  return o.Reshape(feats, g.constant([0, 0, boxFourierFeatures(frequencies)], 'int64')); // [B, M, 4(2F+1)]
}
