/**
 * Training-mode batch norm over the last axis as one kernel forward and one kernel backward, for
 * the wasm backend. tfjs builds it from moments + FusedBatchNorm, ~12 kernel calls forward and ~30
 * backward per layer (reductions, broadcasts, reshapes); on a small model those calls, not the
 * arithmetic, are what a step spends (README, "Training step vs PyTorch").
 *
 * Forward  x [..., C], gamma [C], beta [C], eps:
 *   mean = sum x / N,  variance = sum (x - mean)^2 / N  (biased, two passes, float64 sums),
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
    const sum = new Float64Array(c);
    for (let i = 0, k = 0; i < rows; i++) for (let j = 0; j < c; j++, k++) sum[j] += xs[k];
    const mean = new Float64Array(c);
    for (let j = 0; j < c; j++) mean[j] = sum[j] / rows;
    const sq = new Float64Array(c);
    for (let i = 0, k = 0; i < rows; i++) {
      for (let j = 0; j < c; j++, k++) {
        const d = xs[k] - mean[j];
        sq[j] += d * d;
      }
    }
    const scale = new Float64Array(c), shift = new Float64Array(c);
    for (let j = 0; j < c; j++) {
      const variance = sq[j] / rows;
      meanOut[j] = mean[j];
      varOut[j] = variance;
      scale[j] = g[j] / Math.sqrt(variance + eps);
      shift[j] = be[j] - mean[j] * scale[j];
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
    const db = new Float64Array(c), dg = new Float64Array(c);
    for (let i = 0, k = 0; i < rows; i++) {
      for (let j = 0; j < c; j++, k++) {
        db[j] += dys[k];
        dg[j] += dys[k] * (xs[k] - m[j]) * invstd[j];
      }
    }
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
