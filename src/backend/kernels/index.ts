/**
 * Composite wasm kernels for training. tfjs-backend-wasm 4.22 registers 157 kernels; of those the
 * backward passes of our layers need, these are missing (found by running conv, batch norm,
 * dense, layer norm, embedding, attention, GELU, pooling, resizing, conv2dTranspose, reductions,
 * concat/slice/pad/split/stack/tile, elementwise math and focal-loss expressions through
 * tf.grads on wasm; test/backend/kernels.test.ts keeps that list honest):
 *
 * | kernel                               | needed by                         | built from            |
 * |--------------------------------------|-----------------------------------|-----------------------|
 * | Conv2DBackpropFilter                 | conv2d, conv2dTranspose gradients | Transpose + Conv2D    |
 * | DepthwiseConv2dNativeBackpropInput   | depthwiseConv2d gradient          | PadV2 + DepthwiseConv2dNative |
 * | DepthwiseConv2dNativeBackpropFilter  | depthwiseConv2d gradient          | Transpose + DepthwiseConv2dNative |
 * | UnsortedSegmentSum                   | gather (embedding) gradient       | ScatterNd             |
 *
 * and five are replaced for speed: Conv2DBackpropInput (conv2d gradient, conv2dTranspose forward),
 * whose native wasm loop is 10-20x slower than the composite; Identity, which copies on wasm
 * but shares (reference count) on cpu and webgl (./identity.ts); MaxPoolGrad, a wasm SIMD loop
 * (./max_pool_grad.ts), 7-11x faster than tfjs-wasm's (two runs of bench:simd) and ~3x faster than ONNX Runtime's;
 * Sum over all axes but the last with channels in multiples of 4 (bias gradients), one SIMD pass
 * instead of transpose + sum (./channel_sum.ts; other reductions go to tfjs-wasm's Sum);
 * ResizeNearestNeighborGrad of integer upscales as block sums (./resize_nearest_grad.ts).
 *
 * Four more are our own, not tfjs kernels: training-mode batch norm forward and backward as one
 * kernel each (./batch_norm_train.ts), used by BatchNorm2d through `batchNormTrain`, and the
 * optimizer step's AdamW update and global gradient norm (./optimizer_step.ts), used by AdamW and
 * the training loops' gradient clipping.
 *
 * Not registered (not used by training here): Einsum, FFT/complex kernels, ragged and string
 * kernels.
 */
import { tf } from '../tf';
import { conv2DBackpropFilterConfig, conv2DBackpropInputConfig } from './conv2d_backprop';
import { depthwiseBackpropFilterConfig, depthwiseBackpropInputConfig } from './depthwise_backprop';
import { unsortedSegmentSumConfig } from './unsorted_segment_sum';
import { batchNormTrainConfig, batchNormTrainGradConfig } from './batch_norm_train';
import { identityConfig } from './identity';
import { maxPoolGradConfig } from './max_pool_grad';
import { channelSumConfig } from './channel_sum';
import { resizeNearestGradConfig } from './resize_nearest_grad';
import { adamwUpdateConfig, globalNormConfig } from './optimizer_step';
import { WASM, replacedWasmKernels } from './scope';

export const COMPOSITE_WASM_KERNELS: readonly tf.KernelConfig[] = [
  conv2DBackpropInputConfig,
  conv2DBackpropFilterConfig,
  depthwiseBackpropInputConfig,
  depthwiseBackpropFilterConfig,
  unsortedSegmentSumConfig,
  identityConfig,
  batchNormTrainConfig,
  batchNormTrainGradConfig,
  adamwUpdateConfig,
  globalNormConfig,
  maxPoolGradConfig,
  channelSumConfig,
  resizeNearestGradConfig,
];

/** The native wasm kernels that a composite replaced, by name (benchmarks compare against them). */
export { replacedWasmKernels };

/**
 * Registers the composites for the wasm backend; idempotent. Call after the wasm backend package
 * is loaded (it registers its own kernels on load and would warn about, and overwrite, ours).
 */
export function registerWasmKernels(): void {
  for (const config of COMPOSITE_WASM_KERNELS) {
    const existing = tf.getKernel(config.kernelName, WASM);
    if (existing === config) continue;
    if (existing !== undefined) {
      if (!replacedWasmKernels.has(config.kernelName)) replacedWasmKernels.set(config.kernelName, existing);
      tf.unregisterKernel(config.kernelName, WASM);
    }
    tf.registerKernel(config);
  }
}

/** Puts the native kernels back (tests and benchmarks only). */
export function unregisterWasmKernels(): void {
  for (const config of COMPOSITE_WASM_KERNELS) {
    if (tf.getKernel(config.kernelName, WASM) !== config) continue;
    tf.unregisterKernel(config.kernelName, WASM);
    const native = replacedWasmKernels.get(config.kernelName);
    if (native !== undefined) tf.registerKernel(native);
  }
}
