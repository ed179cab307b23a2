/**
 * The wasm SIMD kernels of src/backend/kernels against what they replaced, on wasm:
 *   - the optimizer step of the tiny extractor's and ResNet-18's parameters (global gradient
 *     norm + clipping coefficient + AdamW): our two kernels vs tfjs ops (HOI2ANOMALY_FUSED_OPTIM=off);
 *   - MaxPoolGrad (3x3, stride 2, same) of ResNet-18's stem pool at 128 px and of the tiny
 *     extractor's: our loop vs tfjs-wasm's own kernel;
 *   - Sum over the leading axes (a conv's bias gradient) and ResizeNearestNeighborGrad of the
 *     neck's 2x upsample, tiny extractor shapes: ours vs tfjs-wasm's own kernels.
 * (Batch norm has its own, `npm run bench:bn`.)
 *
 *   node dist/bench/simd_kernels_bench.js [--threads 2] [--runs 7]
 *
 * Median ms of --runs rounds after 2 warm-up rounds; both variants alternate within each round, so
 * that the machine's load hits them alike.
 */
import { initBackend, registerWasmKernels, unregisterWasmKernels } from '../src/backend';
import { tf } from '../src/backend/tf';
import { SYNTH_CATEGORIES, SYNTH_VERBS } from '../src/data/synth';
import { createBackbone } from '../src/models/backbones/registry';
import { PointHoiExtractor } from '../src/models/hoi/point_hoi';
import { clipCoefficient, globalNorm } from '../src/train/clip';
import { trainableParams } from '../src/train/loop_common';
import { AdamW } from '../src/train/optim';
import { median, numberArg } from './common';

/** Median ms of `a` and `b` over `runs` alternating rounds (2 warm-up rounds first). */
function alternate(runs: number, a: () => void, b: () => void): [number, number] {
  const ta: number[] = [], tb: number[] = [];
  for (let r = 0; r < runs + 2; r++) {
    for (const [f, t] of [[a, ta], [b, tb]] as const) {
      const t0 = process.hrtime.bigint();
      f();
      if (r >= 2) t.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  return [median(ta), median(tb)];
}

function optimizerRow(name: string, params: Map<string, tf.Variable>, runs: number): void {
  const opt = new AdamW(params, { lr: 1e-3, weightDecay: 1e-4, noDecay: (n) => params.get(n)!.rank < 2 });
  const grads = new Map([...params].map(([k, p]) => [k, tf.randomNormal(p.shape, 0, 1, 'float32', 7)]));
  const step = (fused: boolean) => (): void => {
    process.env.HOI2ANOMALY_FUSED_OPTIM = fused ? 'on' : 'off';
    const norm = globalNorm([...grads.values()]);
    opt.step(grads, 1e-3, clipCoefficient(norm, 1)); // random gradients: clipped, as a hot run is
  };
  const [ours, ops] = alternate(runs, step(true), step(false));
  delete process.env.HOI2ANOMALY_FUSED_OPTIM;
  let values = 0;
  for (const p of params.values()) values += p.size;
  console.log(`${`optimizer step, ${name}`.padEnd(44)}${`${params.size} tensors, ${(values / 1e6).toFixed(2)} M`.padEnd(26)}${ours.toFixed(1).padStart(9)}${ops.toFixed(1).padStart(10)}${(ops / ours).toFixed(1).padStart(9)}x`);
  tf.dispose([...grads.values()]);
  opt.dispose();
}

/** One kernel call with our kernels registered against tfjs-wasm's own (alternating rounds). */
function replacedKernelRow(what: string, shape: number[], runs: number, kernel: string, inputs: tf.NamedTensorMap, attrs: object, digits = 1): void {
  const call = (): void => {
    const out = tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
    out.dataSync();
    out.dispose();
  };
  const [ours, wasm] = alternate(runs, () => { registerWasmKernels(); call(); }, () => { unregisterWasmKernels(); call(); });
  registerWasmKernels();
  console.log(`${what.padEnd(44)}${JSON.stringify(shape).padEnd(26)}${ours.toFixed(digits).padStart(9)}${wasm.toFixed(digits).padStart(10)}${(wasm / ours).toFixed(1).padStart(9)}x`);
}

function maxPoolGradRow(shape: [number, number, number, number], runs: number): void {
  const x = tf.relu(tf.randomNormal(shape, 0, 1, 'float32', 3)); // ties at 0, as after a ReLU
  const dy = tf.randomNormal([shape[0], shape[1] / 2, shape[2] / 2, shape[3]], 0, 1, 'float32', 4);
  replacedKernelRow('MaxPoolGrad 3x3/2', shape, runs, tf.MaxPoolGrad, { dy, input: x, output: x }, { filterSize: 3, strides: 2, pad: 'same' });
  tf.dispose([x, dy]);
}

async function main(): Promise<void> {
  const threads = numberArg('--threads', 2), runs = numberArg('--runs', 7);
  await initBackend({ name: 'wasm', threads });
  console.log(`wasm SIMD kernels vs what they replaced, wasm ${threads} threads, median ms of ${runs} rounds`);
  console.log(`${'what'.padEnd(44)}${'size'.padEnd(26)}${'ours'.padStart(9)}${'before'.padStart(10)}${'ratio'.padStart(10)}`);
  const extractor = new PointHoiExtractor({
    backbone: 'resnet18', width: 0.25, inputSize: 128, numCategories: SYNTH_CATEGORIES.length, numVerbs: SYNTH_VERBS.length,
    neckChannels: 32, headChannels: 32, seed: 0,
  });
  optimizerRow('tiny extractor', trainableParams(extractor).params, runs);
  extractor.dispose();
  const resnet = createBackbone('resnet18', { width: 1, seed: 0, numClasses: 1000 });
  optimizerRow('ResNet-18', trainableParams(resnet).params, runs);
  resnet.dispose();
  console.log('("before": tfjs ops, HOI2ANOMALY_FUSED_OPTIM=off)');
  for (const shape of [[8, 64, 64, 16], [8, 64, 64, 64]] as [number, number, number, number][]) maxPoolGradRow(shape, runs);
  console.log('("before": tfjs-wasm\'s own MaxPoolGrad kernel; wasm-native sent it to ONNX Runtime, 23-29 ms for [8,64,64,64])');
  const biasGrad = tf.randomNormal([8, 32, 32, 32], 0, 1, 'float32', 5); // other channel counts stay on tfjs-wasm's Sum
  replacedKernelRow('Sum over axes 0-2 (bias gradient)', biasGrad.shape, runs, tf.Sum, { x: biasGrad }, { axis: [0, 1, 2], keepDims: false }, 2);
  biasGrad.dispose();
  const images = tf.zeros([8, 16, 16, 32]), up = tf.randomNormal([8, 32, 32, 32], 0, 1, 'float32', 6);
  replacedKernelRow('ResizeNearestNeighborGrad 2x', [8, 32, 32, 32], runs, tf.ResizeNearestNeighborGrad, { images, dy: up }, { alignCorners: false, halfPixelCenters: false }, 2);
  tf.dispose([images, up]);
  console.log('("before": tfjs-wasm\'s own Sum and ResizeNearestNeighborGrad kernels)');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
