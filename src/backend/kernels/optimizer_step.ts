/**
 * The optimizer step's two passes over every parameter as one kernel call each, for the wasm
 * backend. Written with tfjs ops, AdamW makes ~14 kernel calls per parameter (mul, add, square,
 * sqrt, div, sub, three assigns) and the global gradient norm ~4 (square, sum, sqrt, stack): on
 * ResNet-18 (62 parameters, 11.7 M values) the two took ~330 ms of a ~1 s wasm-native step, each
 * call a full pass over the wasm heap; on the tiny extractor (95 parameters) ~50 ms.
 *
 * AdamW update  param, grad, expAvg, expAvgSq; attrs beta1, beta2, stepSize = lr / (1 - b1^t),
 *   bc2Sqrt = sqrt(1 - b2^t), eps, decay = 1 - lr wd (1 for no-decay parameters), gradScale
 *   (the clipping coefficient, applied to the gradient as it is read):
 *     g = grad * gradScale
 *     m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
 *     p = p * decay - stepSize * m / (sqrt(v) / bc2Sqrt + eps)        outputs p, m, v
 *   (PyTorch's torch.optim.AdamW, foreach=False), in float32, four values at a time.
 * Global norm  any number of float32 tensors: sqrt(sum of all squares), float64 sums; NaN or
 *   Infinity when some value is not finite.
 * Both are wasm SIMD loops (./simd/kernels.wat) over the tensors where they lie on the heap: a
 * JavaScript loop ran AdamW at 6-18 ns a value, slower than tfjs's 14 SIMD kernel calls on
 * ResNet-18's large tensors.
 *
 * `adamwUpdate` and `globalNorm` are the ops: these kernels where the backend has them, the same
 * formulas as tfjs ops otherwise (cpu, tensorflow); results agree to float rounding
 * (test/backend/optimizer_step.test.ts). HOI2ANOMALY_FUSED_OPTIM=off forces the tfjs ops (A/B runs).
 */
import { tf } from '../tf';
import { WASM, type TensorInfo, type WasmHeapBackend } from './scope';
import { heapOffset, requireSimdKernels, simdKernels } from './simd';

export const ADAMW_UPDATE = 'Hoi2anomalyAdamWUpdate';
export const GLOBAL_NORM = 'Hoi2anomalyGlobalNorm';

export interface AdamWUpdateAttrs {
  beta1: number;
  beta2: number;
  /** lr / (1 - beta1^t) */
  stepSize: number;
  /** sqrt(1 - beta2^t) */
  bc2Sqrt: number;
  eps: number;
  /** 1 - lr * weightDecay, or 1 for a parameter without weight decay */
  decay: number;
  /** factor on the gradient (gradient clipping); 1 for none */
  gradScale: number;
}


export const adamwUpdateConfig: tf.KernelConfig = {
  kernelName: ADAMW_UPDATE,
  backendName: WASM,
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { param, grad, expAvg, expAvgSq } = inputs as Record<string, TensorInfo>;
    const { beta1, beta2, stepSize, bc2Sqrt, eps, decay, gradScale } = attrs as unknown as AdamWUpdateAttrs;
    const simd = requireSimdKernels(backend, ADAMW_UPDATE);
    const b = backend as unknown as WasmHeapBackend;
    const outs = [0, 1, 2].map(() => b.makeOutput([...param.shape], 'float32'));
    const at = (t: TensorInfo): number => heapOffset(backend, t);
    simd.adamw(at(param), at(grad), at(expAvg), at(expAvgSq), at(outs[0]), at(outs[1]), at(outs[2]), tf.util.sizeFromShape(param.shape),
      beta1, 1 - beta1, beta2, 1 - beta2, stepSize, 1 / bc2Sqrt, eps, decay, gradScale);
    return outs;
  },
};

export const globalNormConfig: tf.KernelConfig = {
  kernelName: GLOBAL_NORM,
  backendName: WASM,
  kernelFunc: ({ inputs, backend }) => {
    const simd = requireSimdKernels(backend, GLOBAL_NORM);
    let total = 0;
    for (const t of Object.values(inputs as Record<string, TensorInfo>)) total += simd.sumSquares(heapOffset(backend, t), tf.util.sizeFromShape(t.shape));
    const b = backend as unknown as WasmHeapBackend;
    const out = b.makeOutput([], 'float32');
    b.typedArrayFromHeap(out)[0] = Math.sqrt(total);
    return out;
  },
};

/** The kernel is registered for the current backend and its SIMD module instantiated. */
function hasKernel(name: string): boolean {
  return process.env.HOI2ANOMALY_FUSED_OPTIM !== 'off' && tf.getKernel(name, tf.getBackend()) !== undefined && simdKernels(tf.backend()) !== null;
}

/** One AdamW update of one parameter: new tensors [param, expAvg, expAvgSq] (see the header). */
export function adamwUpdate(param: tf.Tensor, grad: tf.Tensor, expAvg: tf.Tensor, expAvgSq: tf.Tensor, attrs: AdamWUpdateAttrs): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const g = grad.dtype === 'float32' ? grad : grad.cast('float32');
    if (hasKernel(ADAMW_UPDATE)) {
      return tf.engine().runKernel(ADAMW_UPDATE, { param, grad: g, expAvg, expAvgSq }, attrs as unknown as tf.NamedAttrMap) as [tf.Tensor, tf.Tensor, tf.Tensor];
    }
    const { beta1, beta2, stepSize, bc2Sqrt, eps, decay, gradScale } = attrs;
    const scaled = gradScale === 1 ? g : g.mul(gradScale);
    const m = expAvg.mul(beta1).add(scaled.mul(1 - beta1));
    const v = expAvgSq.mul(beta2).add(scaled.square().mul(1 - beta2));
    const denom = v.sqrt().div(bc2Sqrt).add(eps);
    const decayed = decay === 1 ? param : param.mul(decay);
    return [decayed.sub(m.div(denom).mul(stepSize)), m, v];
  });
}

/** sqrt of the sum of squares of every value of `tensors` (0 for none), as a number. */
export function globalNorm(tensors: readonly tf.Tensor[]): number {
  if (tensors.length === 0) return 0;
  const normT = tf.tidy(() => {
    const fs = tensors.map((t) => (t.dtype === 'float32' ? t : t.cast('float32')));
    if (hasKernel(GLOBAL_NORM)) return tf.engine().runKernel(GLOBAL_NORM, fs as unknown as tf.NamedTensorMap) as tf.Tensor;
    return tf.stack(fs.map((t) => tf.norm(t))).norm();
  });
  const norm = normT.dataSync()[0];
  normT.dispose();
  return norm;
}
