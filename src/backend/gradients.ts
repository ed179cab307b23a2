/**
 * Fixes of tfjs 4.22 gradient functions that are wrong, missing or slow on every backend (found
 * by running the training expressions forward and backward, test/backend/kernels.test.ts, and
 * by profiling a conv-net step). Each is checked against a hand-written reference in
 * test/backend/backend.test.ts.
 *
 * - Conv2D: throws for dilations > 1. Here: dilated gradients (stride 1, as the forward needs).
 * - Cumsum: transposes the result when the axis is not the last (wrong shape). Here: a plain
 *   reverse cumsum.
 * - SquaredDifference: no reduction over broadcast axes (wrong shape for a broadcast operand).
 * - Tile: throws for rank > 4 and slices in a loop. Here: reshape + sum per tiled axis.
 * - ResizeBilinear / ResizeNearestNeighbor: the grad kernels ignore halfPixelCenters (all
 *   backends), and the cpu ones are wrong for batch > 1 (nearest) and for non-square images
 *   (bilinear: H and W swapped in the output shape). Here: separable interpolation matrices,
 *   dx = Ah^T dy Aw, the exact adjoint of the forward, when halfPixelCenters or on cpu; the native
 *   kernel otherwise (wasm and tensorflow are right).
 * - FusedBatchNorm: tiles 1/sqrt(var) to the full input shape (wasm Tile was 20% of a conv-net
 *   training step), fails for rank-2/3 inputs with rank-1 statistics, and computes full-size
 *   terms that are not used. Here: broadcasting, per-channel factors out of the sums.
 * - Less, LessEqual, Greater, Equal, NotEqual, Logical*, All, Any: no gradient, so any mask
 *   computed from a variable fails ("gradient function not found"). Here: zero gradients, as
 *   TensorFlow's NotDifferentiable.
 *
 * Still unsupported by tfjs and not patched: gradients of StridedSlice, of `tf.fused.conv2d` with
 * dilations (a customGrad inside the op), of depthwise convolutions with dilations, and of
 * `batchNorm` without an offset (the engine fails on the missing input; layers pass both
 * gamma and beta).
 *
 * This file imports the union package directly (not ./tf) because ./tf installs these fixes.
 */
import * as tf from '@tensorflow/tfjs';

type Tensor = tf.Tensor;
type Tensor4D = tf.Tensor4D;
type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

let installed = false;

/** Registers the fixed gradients once; later calls do nothing. */
export function installGradientFixes(): void {
  if (installed) return;
  installed = true;
  const conv2dOriginal = tf.getGradient(tf.Conv2D);
  tf.registerGradient({
    kernelName: tf.Conv2D,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const { dilations } = attrs as unknown as tf.Conv2DAttrs;
      const [dh, dw] = pair(dilations);
      if (dh === 1 && dw === 1) {
        return conv2dOriginal.gradFunc(dy, saved, attrs);
      }
      const [x, filter] = saved as [Tensor4D, Tensor4D];
      return conv2dDilatedGrad(dy as Tensor4D, x, filter, attrs as unknown as tf.Conv2DAttrs);
    },
  });

  tf.registerGradient({
    kernelName: tf.Cumsum,
    gradFunc: (dy, _saved, attrs) => {
      const { axis, exclusive, reverse } = attrs as unknown as tf.CumsumAttrs;
      return { x: () => tf.cumsum(dy as Tensor, axis, exclusive, !reverse) };
    },
  });

  tf.registerGradient({
    kernelName: tf.SquaredDifference,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b] = saved;
      const g = dy as Tensor;
      return {
        a: () => reduceTo(tf.mul(g, tf.mul(2, tf.sub(a, b))), a.shape),
        b: () => reduceTo(tf.mul(g, tf.mul(2, tf.sub(b, a))), b.shape),
      };
    },
  });

  const batchNormOriginal = tf.getGradient(tf.FusedBatchNorm);
  tf.registerGradient({
    kernelName: tf.FusedBatchNorm,
    inputsToSave: ['x', 'mean', 'variance', 'scale'],
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved as Array<Tensor | undefined> as [Tensor, Tensor, Tensor, Tensor | undefined];
      const axes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
      const scaleAxes = scale == null ? axes : tf.backend_util.getReductionAxes(scale.shape, x.shape);
      const sameStats = tf.util.arraysEqual(mean.shape, variance.shape);
      // Factoring scale out of the sums needs it constant along every reduced axis.
      if (!sameStats || !axes.every((a) => scaleAxes.includes(a))) return batchNormOriginal.gradFunc(dy, saved, attrs);
      return batchNormGrad(dy as Tensor, x, mean, variance, scale, (attrs as unknown as tf.FusedBatchNormAttrs).varianceEpsilon);
    },
  });

  for (const kernelName of [tf.ResizeBilinear, tf.ResizeNearestNeighbor]) {
    const original = tf.getGradient(kernelName);
    const nearest = kernelName === tf.ResizeNearestNeighbor;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['images'],
      gradFunc: (dy, saved, attrs) => {
        const { alignCorners, halfPixelCenters } = attrs as unknown as tf.ResizeBilinearAttrs;
        if (!halfPixelCenters && tf.getBackend() !== 'cpu') return original.gradFunc(dy, saved, attrs);
        const [images] = saved;
        return { images: () => resizeGrad(dy as Tensor4D, images.shape, alignCorners, halfPixelCenters, nearest) };
      },
    });
  }

  // Comparisons and logic: no gradient, like TensorFlow's NotDifferentiable ops.
  const notDifferentiable: Array<[string, string[]]> = [
    [tf.Less, ['a', 'b']], [tf.LessEqual, ['a', 'b']], [tf.Greater, ['a', 'b']], [tf.Equal, ['a', 'b']],
    [tf.NotEqual, ['a', 'b']], [tf.LogicalAnd, ['a', 'b']], [tf.LogicalOr, ['a', 'b']], [tf.LogicalXor, ['a', 'b']],
    [tf.LogicalNot, ['x']], [tf.All, ['x']], [tf.Any, ['x']],
  ];
  for (const [kernelName, inputs] of notDifferentiable) {
    if (tf.getGradient(kernelName) !== undefined) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: inputs,
      gradFunc: (_dy, saved) => Object.fromEntries(inputs.map((name, i) => [name, () => tf.zerosLike(saved[i])])),
    });
  }

  // Mean and Sum: tfjs multiplies dy by a full-size ones(x.shape) built as a JavaScript array on
  // every backward pass (20 ms a step for the batch-norm moments of the tiny extractor); a
  // backend fill gives the same values without that array.
  for (const kernelName of [tf.Mean, tf.Sum]) {
    tf.registerGradient({
      kernelName,
      inputsToSave: ['x'],
      gradFunc: (dy, saved, attrs) => {
        const [x] = saved;
        const axes = tf.util.parseAxisParam((attrs as unknown as tf.SumAttrs).axis, x.shape);
        const expanded = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
        const count = kernelName === tf.Mean ? axes.reduce((n, a) => n * x.shape[a], 1) : 1;
        return {
          x: () => tf.tidy(() => {
            const g = tf.reshape(tf.cast(dy as Tensor, 'float32'), expanded);
            // Fill (a backend kernel) + broadcasting Multiply; wasm's broadcastTo (Tile) is slower still.
            return tf.mul(count === 1 ? g : tf.div(g, count), tf.onesLike(x as Tensor).cast('float32'));
          }),
        };
      },
    });
  }

  tf.registerGradient({
    kernelName: tf.Tile,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { reps } = attrs as unknown as tf.TileAttrs;
      return { x: () => tileGrad(dy as Tensor, x.shape, reps) };
    },
  });
}

function pair(v: number | [number, number] | undefined): [number, number] {
  if (v === undefined) return [1, 1];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** Sums `g` over the axes along which `shape` was broadcast, then reshapes to `shape`. */
function reduceTo(g: Tensor, shape: number[]): Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, g.shape);
  const r = axes.length > 0 ? tf.sum(g, axes) : g;
  return tf.reshape(r, shape);
}

/** Gradient of Tile: for each tiled axis, view dy as [before, reps, size, after] and sum the reps. */
function tileGrad(dy: Tensor, xShape: number[], reps: number[]): Tensor {
  let g = dy;
  const shape = dy.shape.slice();
  for (let i = 0; i < xShape.length; i++) {
    if (reps[i] === 1) continue;
    const before = shape.slice(0, i).reduce((p, n) => p * n, 1);
    const after = shape.slice(i + 1).reduce((p, n) => p * n, 1);
    g = tf.sum(tf.reshape(g, [before, reps[i], xShape[i], after]), 1); // [before, size, after]
    shape[i] = xShape[i];
  }
  return tf.reshape(g, xShape);
}

/**
 * Batch norm y = (x - mean) * r * scale + offset, r = 1/sqrt(variance + eps), statistics of the
 * shape of `mean` broadcast over the reduced axes:
 *   dx = dy * r * scale               dmean = -r * scale * S(dy)
 *   dvariance = -r^3/2 * scale * S(dy * (x - mean))   dscale = r * S(dy * (x - mean))
 *   doffset = S(dy)                   with S the sum over the reduced axes.
 * Full-size work: one product for dx, one for dy * (x - mean) (shared), and two sums.
 */
function batchNormGrad(dy: Tensor, x: Tensor, mean: Tensor, variance: Tensor, scale: Tensor | undefined,
  eps: number): Record<string, () => Tensor> {
  const s = scale ?? tf.scalar(1);
  const r = tf.rsqrt(tf.add(variance, eps)); // shape of mean
  // Shared by several inputs' gradients, so made here: the engine runs each input's thunk in a
  // tidy of its own, which would free a tensor cached by the first thunk.
  const sumDy = reduceTo(dy, mean.shape);
  const sumDyXm = reduceTo(tf.mul(dy, tf.sub(x, mean)), mean.shape);
  const getSumDy = (): Tensor => sumDy;
  const getSumDyXm = (): Tensor => sumDyXm;
  const grads: Record<string, () => Tensor> = {
    x: () => tf.reshape(tf.mul(dy, tf.mul(r, s)), x.shape),
    mean: () => tf.reshape(tf.mul(tf.neg(tf.mul(r, s)), getSumDy()), mean.shape),
    variance: () => tf.reshape(tf.mul(tf.mul(-0.5, tf.pow(r, 3)), tf.mul(s, getSumDyXm())), mean.shape),
    offset: () => tf.reshape(getSumDy(), mean.shape),
  };
  if (scale != null) {
    grads.scale = () => tf.util.sizeFromShape(scale.shape) === tf.util.sizeFromShape(mean.shape)
      ? tf.reshape(tf.mul(r, getSumDyXm()), scale.shape)
      : reduceTo(tf.mul(dy, tf.mul(tf.sub(x, mean), r)), scale.shape);
  }
  return grads;
}

/**
 * The [outSize, inSize] matrix A of a 1-D resize as tfjs computes it (cpu kernels'
 * formulas), so that y = A x along that axis. Nearest: one 1 per row; bilinear: weights
 * (1 - f, f) on floor / ceil of the source coordinate.
 */
export function resizeMatrix(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean,
  nearest: boolean): Float32Array {
  const a = new Float32Array(outSize * inSize);
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const ratio = effIn / effOut;
  for (let r = 0; r < outSize; r++) {
    if (nearest) {
      const frac = halfPixelCenters ? ratio * (r + 0.5) : ratio * r;
      let src = Math.min(inSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
      if (halfPixelCenters) src = Math.max(0, src);
      a[r * inSize + src] = 1;
    } else {
      const frac = halfPixelCenters ? ratio * (r + 0.5) - 0.5 : ratio * r;
      const lo = Math.max(0, Math.floor(frac));
      const hi = Math.min(inSize - 1, Math.ceil(frac));
      const f = frac - lo;
      a[r * inSize + lo] += 1 - f;
      a[r * inSize + hi] += f;
    }
  }
  return a;
}

function transposed(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

/**
 * Gradient of a resize, y = Ah x Aw^T per image and channel: dx = Ah^T dy Aw, two matMuls.
 * Costs O(inSize) per element, against O(1) for the grad kernels: used only where those are
 * wrong.
 */
function resizeGrad(dy: Tensor4D, imagesShape: number[], alignCorners: boolean, halfPixelCenters: boolean,
  nearest: boolean): Tensor {
  return tf.tidy(() => {
    const [B, H, W, C] = imagesShape;
    const [, oh, ow] = dy.shape;
    const ahT = tf.tensor2d(transposed(resizeMatrix(H, oh, alignCorners, halfPixelCenters, nearest), oh, H), [H, oh]);
    const awT = tf.tensor2d(transposed(resizeMatrix(W, ow, alignCorners, halfPixelCenters, nearest), ow, W), [W, ow]);
    const rows = tf.reshape(tf.transpose(dy, [1, 0, 2, 3]), [oh, B * ow * C]); // [oh, B*ow*C]
    const h = tf.reshape(tf.matMul(ahT, rows), [H, B, ow, C]); // rows resized back: [H, B, ow, C]
    const cols = tf.reshape(tf.transpose(h, [2, 1, 0, 3]), [ow, B * H * C]); // [ow, B*H*C]
    const w = tf.reshape(tf.matMul(awT, cols), [W, B, H, C]);
    return tf.transpose(w, [1, 2, 0, 3]); // [B, H, W, C]
  });
}

/**
 * Pads (positive) or crops (negative) rows and columns of an NHWC tensor. Returns the padding
 * that is still to apply, so that a convolution can take it as explicit padding without a copy.
 */
function cropForConv(x: Tensor4D, top: number, bottom: number, left: number, right: number): {
  x: Tensor4D; pad: tf.backend_util.ExplicitPadding;
} {
  let out = x;
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [b, h, w, c] = x.shape;
    const t = Math.max(0, -top), l = Math.max(0, -left);
    const hh = h - t - Math.max(0, -bottom), ww = w - l - Math.max(0, -right);
    out = tf.slice(x, [0, t, l, 0], [b, hh, ww, c]);
  }
  const pad: tf.backend_util.ExplicitPadding =
    [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]];
  return { x: out, pad };
}

/**
 * Gradients of a stride-1 dilated convolution (NHWC), dilation d, filter [kh, kw, ci, co]:
 * - dx = dilated conv of dy, padded to the "full" size, with the flipped filter with in/out
 *   channels swapped: dx[i] = sum_k dy[i + p - k*d] w[k].
 * - dw = conv over batch-as-channels: x^T [ci, H, W, B] with dy^T [oh, ow, B, co] as the filter,
 *   the output stride being d: dw[k] = sum_o x[o + k*d - p] dy[o]; result [ci, kh, kw, co].
 */
function conv2dDilatedGrad(dy: Tensor4D, x: Tensor4D, filter: Tensor4D, attrs: tf.Conv2DAttrs): {
  x: () => Tensor; filter: () => Tensor;
} {
  const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs;
  if (dataFormat === 'NCHW') {
    throw new Error('conv2d gradient with dilations > 1: only dataFormat NHWC is supported, got NCHW');
  }
  const [sh, sw] = pair(strides);
  if (sh !== 1 || sw !== 1) {
    throw new Error(`conv2d gradient with dilations > 1 needs strides 1, got [${sh}, ${sw}]`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape, filter.shape, strides, dilations, pad as Pad, dimRoundingMode, false, 'channelsLast');
  const [dh, dw] = pair(dilations);
  const { inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;
  const kEffH = info.effectiveFilterHeight, kEffW = info.effectiveFilterWidth;
  const { top, left } = info.padInfo;
  return {
    x: () => tf.tidy(() => {
      const t = kEffH - 1 - top, l = kEffW - 1 - left;
      const p = cropForConv(dy, t, H + kEffH - 1 - oh - t, l, W + kEffW - 1 - ow - l);
      const wFlip = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]); // [kh, kw, co, ci]
      return tf.conv2d(p.x, wFlip as Tensor4D, 1, p.pad, 'NHWC', [dh, dw]);
    }),
    filter: () => tf.tidy(() => {
      const xT = tf.transpose(x, [3, 1, 2, 0]); // [ci, H, W, B]
      const needH = oh + (kh - 1) * dh, needW = ow + (kw - 1) * dw;
      const p = cropForConv(xT, top, needH - H - top, left, needW - W - left);
      const f = tf.transpose(dy, [1, 2, 0, 3]); // [oh, ow, B, co]
      const out = tf.conv2d(p.x, f as Tensor4D, [dh, dw], p.pad, 'NHWC', 1); // [ci, kh, kw, co]
      return tf.transpose(out, [1, 2, 0, 3]); // [kh, kw, ci, co]
    }),
  };
}
