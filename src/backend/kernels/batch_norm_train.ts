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
 * (sums over the N = size / C rows). An epilogue may follow in the same kernel: y = relu(y +
 * residual) (a ResNet block's shortcut and activation); the backward then runs on dz = dy where
 * y > 0, which is also the residual's gradient.
 *
 * When C is a multiple of 4 (every ResNet width here) the passes over the data, the per-channel
 * sums and the outputs (y = max(floor, scale x + r residual + shift), dx = a dz + slope x + bias),
 * are the wasm SIMD loops of ./simd/kernels.wat, four channels at a time on the heap; JavaScript
 * loops otherwise. `npm run bench:bn` times them. `batchNormTrain` is the op: it runs these
 * kernels under tf.customGrad where the backend has them and tfjs's ops otherwise (cpu,
 * tensorflow), so results agree across backends to float rounding
 * (test/backend/batch_norm_train.test.ts).
 */
import { tf } from '../tf';
import { WASM, type TensorInfo, type WasmHeapBackend } from './scope';
import { HeapScratch, heapOffset, simdKernels } from './simd';

export const BATCH_NORM_TRAIN = 'Hoi2anomalyBatchNormTrain';
export const BATCH_NORM_TRAIN_GRAD = 'Hoi2anomalyBatchNormTrainGrad';


function channels(x: TensorInfo): { rows: number; c: number } {
  const c = x.shape[x.shape.length - 1];
  return { rows: tf.util.sizeFromShape(x.shape) / c, c };
}

/**
 * Per-channel sums over the rows of [rows, c] arrays u, w (NHWC: channel fastest), in float64:
 * with a = u - uShift[j], s1[j] = sum a and s2[j] = sum a (w - wShift[j]). Forward: u = w = x,
 * both shifts K (shifted mean and square sums); backward: u = dy unshifted, w = x shifted by the
 * mean. The JavaScript path, for channel counts that are not a multiple of 4 (the wasm SIMD
 * kernels take the others).
 */
function channelSums(
  u: Float32Array, uShift: ArrayLike<number>, w: Float32Array, wShift: ArrayLike<number>, rows: number, c: number,
): { s1: Float64Array; s2: Float64Array } {
  const s1 = new Float64Array(c), s2 = new Float64Array(c);
  for (let k = 0, j = 0, n = rows * c; k < n; k++, j = j + 1 === c ? 0 : j + 1) {
    const a = u[k] - uShift[j];
    s1[j] += a;
    s2[j] += a * (w[k] - wShift[j]);
  }
  return { s1, s2 };
}

interface BatchNormAttrs {
  eps: number;
  /** y = relu(...): the backward kernel takes y and returns the gradient through the ReLU too */
  relu: boolean;
}

export const batchNormTrainConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_TRAIN,
  backendName: WASM,
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { x, gamma, beta, residual } = inputs as Record<string, TensorInfo> & { residual?: TensorInfo };
    const { eps, relu } = attrs as unknown as BatchNormAttrs;
    const b = backend as unknown as WasmHeapBackend;
    const { rows, c } = channels(x);
    const simd = c % 4 === 0 ? simdKernels(backend) : null;
    const floor = relu ? 0 : -Infinity;
    // Outputs and scratch first: allocating may grow the heap and detach earlier views.
    const yInfo = b.makeOutput([...x.shape], 'float32');
    const meanInfo = b.makeOutput([c], 'float32');
    const varInfo = b.makeOutput([c], 'float32');
    // scratch: s1, s2 (float64 [c] each), scale, shift, residual factor (float32 [c] each)
    const scratch = simd === null ? null : new HeapScratch(backend, 7 * c);
    const xs = b.typedArrayFromHeap(x) as Float32Array, g = b.typedArrayFromHeap(gamma) as Float32Array, be = b.typedArrayFromHeap(beta) as Float32Array;
    const meanOut = b.typedArrayFromHeap(meanInfo) as Float32Array, varOut = b.typedArrayFromHeap(varInfo) as Float32Array;
    const shift0 = xs.slice(0, c); // K: the first row
    let s1: Float64Array, s2: Float64Array;
    if (simd !== null && scratch !== null) {
      const xo = heapOffset(backend, x);
      simd.channelSums(xo, xo, xo, xo, rows, c, scratch.at(0), scratch.at(2 * c));
      [s1, s2] = [scratch.f64(0, c), scratch.f64(2 * c, c)];
    } else {
      ({ s1, s2 } = channelSums(xs, shift0, xs, shift0, rows, c));
    }
    const scale = scratch?.f32(4 * c, c) ?? new Float64Array(c), shift = scratch?.f32(5 * c, c) ?? new Float64Array(c);
    for (let j = 0; j < c; j++) {
      const d = s1[j] / rows;
      const mean = shift0[j] + d;
      const variance = Math.max(0, s2[j] / rows - d * d);
      meanOut[j] = mean;
      varOut[j] = variance;
      scale[j] = g[j] / Math.sqrt(variance + eps);
      shift[j] = be[j] - mean * scale[j];
    }
    if (simd !== null && scratch !== null) {
      // y = max(floor, scale x + r residual + shift), r = 1 with a residual, else 0 (w = x)
      scratch.f32(6 * c, c).fill(residual === undefined ? 0 : 1);
      const xo = heapOffset(backend, x);
      simd.channelAffine2(xo, residual === undefined ? xo : heapOffset(backend, residual), scratch.at(4 * c), scratch.at(6 * c), scratch.at(5 * c),
        heapOffset(backend, yInfo), rows, c, floor);
      scratch.free();
    } else {
      const y = b.typedArrayFromHeap(yInfo) as Float32Array;
      const r = residual === undefined ? null : (b.typedArrayFromHeap(residual) as Float32Array);
      for (let i = 0, k = 0; i < rows; i++) {
        for (let j = 0; j < c; j++, k++) y[k] = Math.max(floor, xs[k] * scale[j] + shift[j] + (r === null ? 0 : r[k]));
      }
    }
    return [yInfo, meanInfo, varInfo];
  },
};

/**
 * Outputs dx, dgamma, dbeta, and with `relu` also dz: the gradient at the ReLU's input (dy where
 * y > 0, else 0), which is the residual's gradient and what the batch norm backward runs on.
 */
export const batchNormTrainGradConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_TRAIN_GRAD,
  backendName: WASM,
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { dy, x, mean, variance, gamma, y } = inputs as Record<string, TensorInfo> & { y?: TensorInfo };
    const { eps, relu } = attrs as unknown as BatchNormAttrs;
    const b = backend as unknown as WasmHeapBackend;
    const { rows, c } = channels(x);
    const simd = c % 4 === 0 ? simdKernels(backend) : null;
    const dxInfo = b.makeOutput([...x.shape], 'float32');
    const dgInfo = b.makeOutput([c], 'float32');
    const dbInfo = b.makeOutput([c], 'float32');
    const dzInfo = relu ? b.makeOutput([...x.shape], 'float32') : null;
    // scratch: s1, s2 (float64 [c] each), zeros, a, slope, bias (float32 [c] each)
    const scratch = simd === null ? null : new HeapScratch(backend, 8 * c);
    const xs = b.typedArrayFromHeap(x) as Float32Array;
    const m = b.typedArrayFromHeap(mean) as Float32Array, v = b.typedArrayFromHeap(variance) as Float32Array, g = b.typedArrayFromHeap(gamma) as Float32Array;
    const dgOut = b.typedArrayFromHeap(dgInfo) as Float32Array, dbOut = b.typedArrayFromHeap(dbInfo) as Float32Array;
    // dz: dy through the ReLU (in the dz output), or dy itself
    let dz = dy;
    if (dzInfo !== null) {
      if (y === undefined) throw new Error(`${BATCH_NORM_TRAIN_GRAD}: relu needs the forward output y`);
      if (simd !== null) {
        simd.reluGrad(heapOffset(backend, dy), heapOffset(backend, y), heapOffset(backend, dzInfo), rows * c);
      } else {
        const dys = b.typedArrayFromHeap(dy) as Float32Array, ys = b.typedArrayFromHeap(y) as Float32Array, dzs = b.typedArrayFromHeap(dzInfo) as Float32Array;
        for (let k = 0; k < rows * c; k++) dzs[k] = ys[k] > 0 ? dys[k] : 0;
      }
      dz = dzInfo;
    }
    const dzs = b.typedArrayFromHeap(dz) as Float32Array;
    // db = sum dz, dg = sum dz (x - mean) invstd
    let db: Float64Array, dxc: Float64Array;
    if (simd !== null && scratch !== null) {
      scratch.f32(4 * c, c).fill(0);
      simd.channelSums(heapOffset(backend, dz), scratch.at(4 * c), heapOffset(backend, x), heapOffset(backend, mean), rows, c, scratch.at(0), scratch.at(2 * c));
      [db, dxc] = [scratch.f64(0, c), scratch.f64(2 * c, c)];
    } else {
      ({ s1: db, s2: dxc } = channelSums(dzs, new Float64Array(c), xs, m, rows, c));
    }
    const a = scratch?.f32(5 * c, c) ?? new Float64Array(c), slope = scratch?.f32(6 * c, c) ?? new Float64Array(c);
    const bias = scratch?.f32(7 * c, c) ?? new Float64Array(c);
    for (let j = 0; j < c; j++) {
      const invstd = 1 / Math.sqrt(v[j] + eps);
      const dg = dxc[j] * invstd;
      dgOut[j] = dg;
      dbOut[j] = db[j];
      // dx = gamma invstd (dz - db/N - xhat dg/N) = a dz + slope x + bias
      const aj = g[j] * invstd, sj = (-aj * invstd * dg) / rows;
      a[j] = aj;
      slope[j] = sj;
      bias[j] = (-aj * db[j]) / rows - sj * m[j];
    }
    if (simd !== null && scratch !== null) {
      simd.channelAffine2(heapOffset(backend, dz), heapOffset(backend, x), scratch.at(5 * c), scratch.at(6 * c), scratch.at(7 * c),
        heapOffset(backend, dxInfo), rows, c, -Infinity);
      scratch.free();
    } else {
      const dx = b.typedArrayFromHeap(dxInfo) as Float32Array;
      for (let i = 0, k = 0; i < rows; i++) for (let j = 0; j < c; j++, k++) dx[k] = a[j] * dzs[k] + slope[j] * xs[k] + bias[j];
    }
    return dzInfo === null ? [dxInfo, dgInfo, dbInfo] : [dxInfo, dgInfo, dbInfo, dzInfo];
  },
};

/** Whether the current backend has the fused kernels (wasm with registerWasmKernels); HOI2ANOMALY_FUSED_BN=off turns them off (A/B runs). */
export function hasFusedBatchNormTrain(): boolean {
  if (process.env.HOI2ANOMALY_FUSED_BN === 'off') return false;
  return tf.getKernel(BATCH_NORM_TRAIN, tf.getBackend()) !== undefined && tf.getKernel(BATCH_NORM_TRAIN_GRAD, tf.getBackend()) !== undefined;
}

/** What follows the normalization inside the same kernel: y = relu?(bn(x) + residual?). */
export interface BatchNormEpilogue {
  /** added after the affine transform (a ResNet block's shortcut); same shape as x */
  residual?: tf.Tensor;
  /** max(0, .) last */
  relu?: boolean;
}

/**
 * Training-mode batch norm over the last axis: y = relu?(bn(x) + residual?), and the batch mean
 * and biased variance ([C], outside the gradient: for the running statistics). Gradients flow to
 * x, gamma, beta and the residual.
 */
export function batchNormTrain(
  x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number, epilogue: BatchNormEpilogue = {},
): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const relu = epilogue.relu ?? false;
  const residual = epilogue.residual;
  if (residual !== undefined && !tf.util.arraysEqual(residual.shape, x.shape)) {
    throw new Error(`batchNormTrain: residual shape [${residual.shape}] differs from the input's [${x.shape}]`);
  }
  if (!hasFusedBatchNormTrain()) {
    return tf.tidy(() => {
      const axes = x.shape.slice(0, -1).map((_, i) => i);
      const { mean, variance } = tf.moments(x, axes);
      let y = tf.batchNorm(x, mean, variance, beta, gamma, eps);
      if (residual !== undefined) y = tf.add(y, residual);
      if (relu) y = tf.relu(y);
      return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
    });
  }
  const attrs = { eps, relu } as unknown as tf.NamedAttrMap;
  const kept: tf.Tensor[] = [];
  // customGrad runs f in a tidy that frees all but y: the statistics are kept past it, then
  // cloned into the caller's scope (so its tidy frees them) and the kept copies disposed.
  const f = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xIn, gIn, bIn, rIn] = args as tf.Tensor[];
    const inputs: tf.NamedTensorMap = rIn === undefined ? { x: xIn, gamma: gIn, beta: bIn } : { x: xIn, gamma: gIn, beta: bIn, residual: rIn };
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAIN, inputs, attrs) as tf.Tensor[];
    save(relu ? [xIn, mean, variance, gIn, y] : [xIn, mean, variance, gIn]);
    kept.push(tf.keep(mean), tf.keep(variance));
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, m, v, g, ys] = saved;
        const gradInputs: tf.NamedTensorMap = { dy, x: xs, mean: m, variance: v, gamma: g };
        if (relu) gradInputs.y = ys;
        const [dx, dg, db, dz] = tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, gradInputs, attrs) as tf.Tensor[];
        if (rIn !== undefined) return [dx, dg, db, dz ?? dy.clone()]; // the residual's gradient: dy through the ReLU
        if (dz !== undefined) dz.dispose();
        return [dx, dg, db];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = residual === undefined ? f(x, gamma, beta) : (f as unknown as (...t: tf.Tensor[]) => tf.Tensor)(x, gamma, beta, residual);
  const [mean, variance] = kept.map((t) => t.clone() as tf.Tensor1D);
  tf.dispose(kept);
  return { y, mean, variance };
}
