/**
 * MaxPoolGrad for the wasm backend, NHWC float32 with a channel count that is a multiple of 4: a
 * wasm SIMD loop (./simd/kernels.wat) over each window, dy going to the window's first maximum as
 * in tfjs and PyTorch. One [8, 64, 64, 64] call (ResNet-18's stem at 128 px) takes 9-14 ms here,
 * 89-164 ms in tfjs-wasm's own kernel and 23-29 ms through ONNX Runtime (MaxPool indices +
 * ScatterElements, which wasm-native used before); `npm run bench:simd`. Other calls go to
 * tfjs-wasm's kernel.
 */
import { tf } from '../tf';
import { WASM, callReplacedKernel, type TensorInfo, type WasmHeapBackend } from './scope';
import { heapOffset, simdKernels } from './simd';

interface MaxPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: WASM,
  kernelFunc: (args) => {
    const { dy, input } = args.inputs as Record<string, TensorInfo>;
    const simd = simdKernels(args.backend);
    if (simd === null || input.shape.length !== 4 || input.shape[3] % 4 !== 0 || input.dtype !== 'float32' || dy.dtype !== 'float32') {
      return callReplacedKernel(tf.MaxPoolGrad, args);
    }
    const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as MaxPoolGradAttrs;
    const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
    const out = (args.backend as unknown as WasmHeapBackend).makeOutput(info.inShape, 'float32');
    simd.maxPoolGrad(heapOffset(args.backend, input), heapOffset(args.backend, dy), heapOffset(args.backend, out),
      info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth,
      info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left);
    return out;
  },
};
