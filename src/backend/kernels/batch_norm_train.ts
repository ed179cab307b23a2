/**
 * Training-mode batch norm over the last axis as one kernel forward and one kernel backward, for
 * the wasm backend. tfjs builds it from moments + FusedBatchNorm, ~12 kernel calls forward and ~30
 * backward per layer (reductions, broadcasts, reshapes); on a small model those calls, not the
 * arithmetic, are what a step spends (README, "Training step vs PyTorch").
 *
 * Forward  x [..., C], gamma [C], beta [C], eps:
 *   mean = sum x / N,  variance = sum (x - mean)^2 / N  (biased; one pass of float64 sums shifted
 *   by each channel's first value, K: variance = sum (x-K)^2 / N - (sum (x-K) / N)^2, which
 *   keeps the rounding of a two-pass variance while the shift is within a few deviations of the mean),
 *   y = (x - mean) / sqrt(variance + eps) * gamma + beta;            outputs y, mean, variance
 * Backward dy, x, mean, variance, gamma, eps  (xhat = (x - mean) * invstd):
 *   dbeta = sum dy,  dgamma = sum dy * xhat,
 *   dx = gamma * invstd / N * (N dy - dbeta - xhat * dgamma)        outputs dx, dgamma, dbeta
 * (sums over the N = size / C rows). `batchNormTrain` is the op: it runs these kernels under
 * tf.customGrad where the backend has them and tfjs's composite otherwise (cpu, tensorflow), so
 * results agree across backends to float rounding (test/backend/batch_norm_train.test.ts).
 */
import { tf } from '../tf';
import { WASM, type TensorInfo } from './scope';

export const BATCH_NORM_TRAIN = 'Hoi2anomalyBatchNormTrain';
export const BATCH_NORM_TRAIN_GRAD = 'Hoi2anomalyBatchNormTrainGrad';

/** The part of BackendWasm these kernels use. */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): tf.backend_util.TypedArray;
}

function channels(x: TensorInfo): { rows: number; c: number } {
  const c = x.shape[x.shape.length - 1];
  return { rows: tf.util.sizeFromShape(x.shape) / c, c };
}

/**
 * Per-channel sums over the rows of [rows, c] arrays u, w (NHWC: channel fastest), in float64:
 * with a = u - uShift[j], s1[j] = sum a and s2[j] = sum a (w - wShift[j]). Forward: u = w = x,
 * both shifts K (shifted mean and square sums); backward: u = dy unshifted, w = x shifted by the
 * mean. Eight channels at a time in scalar accumulators when c is a multiple of 8 (every ResNet
 * width here): V8 keeps them in registers, ~4.5x faster per element than accumulating into
 * Float64Arrays; rows in chunks of ~32 KB an array, so that the c / 8 channel blocks re-read them
 * from cache (`npm run bench:bn`).
 */
function channelSums(
  u: Float32Array, uShift: Float64Array, w: Float32Array, wShift: Float64Array, rows: number, c: number,
): { s1: Float64Array; s2: Float64Array } {
  const s1 = new Float64Array(c), s2 = new Float64Array(c);
  const n = rows * c;
  if (c % 8 !== 0) {
    for (let k = 0, j = 0; k < n; k++, j = j + 1 === c ? 0 : j + 1) {
      const a = u[k] - uShift[j];
      s1[j] += a;
      s2[j] += a * (w[k] - wShift[j]);
    }
    return { s1, s2 };
  }
  const chunk = Math.max(1, Math.floor(8192 / c)) * c;
  for (let start = 0; start < n; start += chunk) {
    const end = Math.min(n, start + chunk);
    for (let j = 0; j < c; j += 8) {
      const p0 = uShift[j], p1 = uShift[j + 1], p2 = uShift[j + 2], p3 = uShift[j + 3];
      const p4 = uShift[j + 4], p5 = uShift[j + 5], p6 = uShift[j + 6], p7 = uShift[j + 7];
      const q0 = wShift[j], q1 = wShift[j + 1], q2 = wShift[j + 2], q3 = wShift[j + 3];
      const q4 = wShift[j + 4], q5 = wShift[j + 5], q6 = wShift[j + 6], q7 = wShift[j + 7];
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
      let b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0, b6 = 0, b7 = 0;
      for (let k = start + j; k < end; k += c) {
        const e0 = u[k] - p0, e1 = u[k + 1] - p1, e2 = u[k + 2] - p2, e3 = u[k + 3] - p3;
        const e4 = u[k + 4] - p4, e5 = u[k + 5] - p5, e6 = u[k + 6] - p6, e7 = u[k + 7] - p7;
        a0 += e0; a1 += e1; a2 += e2; a3 += e3; a4 += e4; a5 += e5; a6 += e6; a7 += e7;
        b0 += e0 * (w[k] - q0); b1 += e1 * (w[k + 1] - q1); b2 += e2 * (w[k + 2] - q2); b3 += e3 * (w[k + 3] - q3);
        b4 += e4 * (w[k + 4] - q4); b5 += e5 * (w[k + 5] - q5); b6 += e6 * (w[k + 6] - q6); b7 += e7 * (w[k + 7] - q7);
      }
      s1[j] += a0; s1[j + 1] += a1; s1[j + 2] += a2; s1[j + 3] += a3; s1[j + 4] += a4; s1[j + 5] += a5; s1[j + 6] += a6; s1[j + 7] += a7;
      s2[j] += b0; s2[j + 1] += b1; s2[j + 2] += b2; s2[j + 3] += b3; s2[j + 4] += b4; s2[j + 5] += b5; s2[j + 6] += b6; s2[j + 7] += b7;
    }
  }
  return { s1, s2 };
}

export const batchNormTrainConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_TRAIN,
  backendName: WASM,
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { x, gamma, beta } = inputs as Record<string, TensorInfo>;
    const eps = (attrs as unknown as { eps: number }).eps;
    const b = backend as unknown as WasmHeapBackend;
    const { rows, c } = channels(x);
    // Outputs first: allocating may grow the heap and detach earlier views.
    const yInfo = b.makeOutput([...x.shape], 'float32');
    const meanInfo = b.makeOutput([c], 'float32');
    const varInfo = b.makeOutput([c], 'float32');
    const xs = b.typedArrayFromHeap(x) as Float32Array, g = b.typedArrayFromHeap(gamma) as Float32Array, be = b.typedArrayFromHeap(beta) as Float32Array;
    const y = b.typedArrayFromHeap(yInfo) as Float32Array, meanOut = b.typedArrayFromHeap(meanInfo) as Float32Array, varOut = b.typedArrayFromHeap(varInfo) as Float32Array;
    const shift0 = Float64Array.from(xs.subarray(0, c)); // K: the first row
    const { s1, s2 } = channelSums(xs, shift0, xs, shift0, rows, c);
    const scale = new Float64Array(c), shift = new Float64Array(c);
    for (let j = 0; j < c; j++) {
      const d = s1[j] / rows;
      const mean = shift0[j] + d;
      const variance = Math.max(0, s2[j] / rows - d * d);
      meanOut[j] = mean;
      varOut[j] = variance;
      scale[j] = g[j] / Math.sqrt(variance + eps);
      shift[j] = be[j] - mean * scale[j];
    }
    for (let i = 0, k = 0; i < rows; i++) for (let j = 0; j < c; j++, k++) y[k] = xs[k] * scale[j] + shift[j];
    return [yInfo, meanInfo, varInfo];
  },
};

export const batchNormTrainGradConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_TRAIN_GRAD,
  backendName: WASM,
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { dy, x, mean, variance, gamma } = inputs as Record<string, TensorInfo>;
    const eps = (attrs as unknown as { eps: number }).eps;
    const b = backend as unknown as WasmHeapBackend;
    const { rows, c } = channels(x);
    const dxInfo = b.makeOutput([...x.shape], 'float32');
    const dgInfo = b.makeOutput([c], 'float32');
    const dbInfo = b.makeOutput([c], 'float32');
    const dys = b.typedArrayFromHeap(dy) as Float32Array, xs = b.typedArrayFromHeap(x) as Float32Array;
    const m = b.typedArrayFromHeap(mean) as Float32Array, v = b.typedArrayFromHeap(variance) as Float32Array, g = b.typedArrayFromHeap(gamma) as Float32Array;
    const dx = b.typedArrayFromHeap(dxInfo) as Float32Array, dgOut = b.typedArrayFromHeap(dgInfo) as Float32Array, dbOut = b.typedArrayFromHeap(dbInfo) as Float32Array;
    const invstd = new Float64Array(c);
    for (let j = 0; j < c; j++) invstd[j] = 1 / Math.sqrt(v[j] + eps);
    // db = sum dy, dg = sum dy (x - mean) invstd
    const { s1: db, s2: dxc } = channelSums(dys, new Float64Array(c), xs, Float64Array.from(m), rows, c);
    const dg = dxc.map((v, j) => v * invstd[j]);
    const a = new Float64Array(c), bias = new Float64Array(c), slope = new Float64Array(c);
    for (let j = 0; j < c; j++) {
      dgOut[j] = dg[j];
      dbOut[j] = db[j];
      // dx = gamma invstd (dy - db/N - xhat dg/N) = a dy + slope x + bias
      a[j] = g[j] * invstd[j];
      slope[j] = -a[j] * invstd[j] * dg[j] / rows;
      bias[j] = -a[j] * db[j] / rows - slope[j] * m[j];
    }
    for (let i = 0, k = 0; i < rows; i++) for (let j = 0; j < c; j++, k++) dx[k] = a[j] * dys[k] + slope[j] * xs[k] + bias[j];
    return [dxInfo, dgInfo, dbInfo];
  },
};

/** Whether the current backend has the fused kernels (wasm with registerWasmKernels); HOI2ANOMALY_FUSED_BN=off turns them off (A/B runs). */
export function hasFusedBatchNormTrain(): boolean {
  if (process.env.HOI2ANOMALY_FUSED_BN === 'off') return false;
  return tf.getKernel(BATCH_NORM_TRAIN, tf.getBackend()) !== undefined && tf.getKernel(BATCH_NORM_TRAIN_GRAD, tf.getBackend()) !== undefined;
}

/**
 * Training-mode batch norm over the last axis: y, and the batch mean and biased variance ([C],
 * outside the gradient: for the running statistics). Gradients flow to x, gamma and beta.
 */
export function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  if (!hasFusedBatchNormTrain()) {
    return tf.tidy(() => {
      const axes = x.shape.slice(0, -1).map((_, i) => i);
      const { mean, variance } = tf.moments(x, axes);
      return { y: tf.batchNorm(x, mean, variance, beta, gamma, eps), mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
    });
  }
  const kept: tf.Tensor[] = [];
  // customGrad runs f in a tidy that frees all but y: the statistics are kept past it, then
  // cloned into the caller's scope (so its tidy frees them) and the kept copies disposed.
  const f = tf.customGrad(((xIn: tf.Tensor, gIn: tf.Tensor, bIn: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN, { x: xIn, gamma: gIn, beta: bIn }, { eps } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    save([xIn, mean, variance, gIn]);
    kept.push(tf.keep(mean), tf.keep(variance));
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, m, v, g] = saved;
        return tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, { dy, x: xs, mean: m, variance: v, gamma: g }, { eps } as unknown as tf.NamedAttrMap) as tf.Tensor[];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = f(x, gamma, beta);
  const [mean, variance] = kept.map((t) => t.clone() as tf.Tensor1D);
  tf.dispose(kept);
  return { y, mean, variance };
}
