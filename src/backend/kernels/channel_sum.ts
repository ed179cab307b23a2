/**
 * Sum over every axis but the last (NHWC -> per channel: the bias gradient of every conv and
 * dense layer) for the wasm backend, float32. tfjs-wasm's Sum first transposes the reduced axes
 * to the end; here the wasm SIMD `channelSums` (float64 accumulators) reads the rows in place, for
 * channel counts that are a multiple of 4: [8, 32, 32, 32] -> [32] 0.31 ms against 0.90 ms
 * (`npm run bench:simd`). Every other Sum goes to tfjs-wasm's kernel: other axes, other channel
 * counts (a JavaScript loop, since removed, was slower there: [8, 32, 32, 10] 0.29 against
 * 0.18 ms in bench:simd), int32.
 */
import { tf } from '../tf';
import { WASM, callReplacedKernel, type TensorInfo, type WasmHeapBackend } from './scope';
import { HeapScratch, heapOffset, simdKernels } from './simd';

/** Whether `axes` (as given to Sum) are exactly 0 .. rank-2. */
function leadingAxes(axis: number | number[], shape: number[]): boolean {
  const axes = [...new Set(tf.util.parseAxisParam(axis, shape))].sort((a, b) => a - b);
  return shape.length >= 2 && axes.length === shape.length - 1 && axes.every((a, i) => a === i);
}

export const channelSumConfig: tf.KernelConfig = {
  kernelName: tf.Sum,
  backendName: WASM,
  kernelFunc: (args) => {
    const { x } = args.inputs as Record<string, TensorInfo>;
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const c = x.shape[x.shape.length - 1] ?? 0;
    const rows = tf.util.sizeFromShape(x.shape) / Math.max(c, 1);
    const simd = c > 0 && c % 4 === 0 && rows > 0 && x.dtype === 'float32' && leadingAxes(axis, x.shape) ? simdKernels(args.backend) : null;
    if (simd === null) {
      return callReplacedKernel(tf.Sum, args);
    }
    const b = args.backend as unknown as WasmHeapBackend;
    const out = b.makeOutput(keepDims ? [...x.shape.slice(0, -1).map(() => 1), c] : [c], 'float32');
    // scratch: zero shifts (float32 [c]), s1 and s2 (float64 [c] each; s2 = sum x^2 is not used)
    const scratch = new HeapScratch(args.backend, 5 * c);
    scratch.f32(0, c).fill(0);
    const xo = heapOffset(args.backend, x);
    simd.channelSums(xo, scratch.at(0), xo, scratch.at(0), rows, c, scratch.at(c), scratch.at(3 * c));
    (b.typedArrayFromHeap(out) as Float32Array).set(scratch.f64(c, c));
    scratch.free();
    return out;
  },
};
