/**
 * Every ONNX Runtime graph variant of the native conv kernels (src/backend/native/op_graphs.ts) on
 * the tiny extractor's and ResNet-18's shapes, batch 8: forward (conv, im2col, nchwc), input
 * gradient (flip, flipIm2col, flipNchwc, convT) and filter gradient (taps, dilconv). The variant
 * that `chooseConvVariant` and friends pick is marked with '*', so the table shows what the shape
 * rules cost or gain. Runs the cached sessions directly on plain Float32Arrays: no tfjs, no copies
 * out of the wasm heap (those come on top in a training step).
 *
 *   node dist/bench/native_conv_bench.js [--threads 2] [--runs 15]
 *
 * Median ms of --runs calls after 3 warm-up calls; the variants of one shape alternate within each
 * round, so that the machine's load hits them alike.
 */
import { nchwcBlockSize } from '../src/backend/native';
import { chooseBackpropFilterVariant, chooseBackpropInputVariant, chooseConvVariant } from '../src/backend/native/kernels';
import {
  backpropFilterGraph, backpropInputGraph, conv2dGraph, flippedConvInfo, nchwcSupported, selfTestGraph,
  type BuiltGraph,
} from '../src/backend/native/op_graphs';
import { loadOrtRuntime, type OrtRuntime } from '../src/backend/native/ort_runtime';
import { tf } from '../src/backend/tf';
import { median, numberArg } from './common';

type ConvInfo = tf.backend_util.Conv2DInfo;
type Shape4 = [number, number, number, number];

function values(shape: number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => (((i + seed) * 2654435761) % 1000) / 1000 - 0.5);
}

interface Variant {
  name: string;
  build: () => BuiltGraph;
  inputs: Array<{ name: string; shape: number[] }>;
  outShape: number[];
}

/** Median ms of each variant, alternating calls. */
function timeVariants(rt: OrtRuntime, key: string, variants: Variant[], runs: number): number[] {
  const calls = variants.map((v, k) => {
    const plan = { key: `${key}|${v.name}`, build: v.build, inputNames: v.inputs.map((i) => i.name), outShape: v.outShape };
    const feeds = v.inputs.map((i, j) => ({ data: values(i.shape, 17 * k + j), shape: i.shape }));
    const out = new Float32Array(v.outShape.reduce((a, b) => a * b, 1));
    return () => rt.run(plan, feeds, out, 'bench');
  });
  const times: number[][] = variants.map(() => []);
  for (let r = 0; r < runs + 3; r++) {
    calls.forEach((call, k) => {
      const t0 = process.hrtime.bigint();
      call();
      if (r >= 3) times[k].push(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  }
  return times.map(median);
}

function row(what: string, names: string[], ms: number[], chosen: string): void {
  const cells = names.map((n, i) => `${n}${n === chosen ? '*' : ''} ${ms[i].toFixed(2)}`);
  console.log(`  ${what.padEnd(6)}${cells.join('   ')}`);
}

function main(): void {
  const threads = numberArg('--threads', 2), runs = numberArg('--runs', 15);
  const rt = loadOrtRuntime(threads, selfTestGraph);
  const { block, reason } = nchwcBlockSize(rt);
  console.log(`ONNX Runtime ${rt.version}, ${threads} threads; NCHWc block ${block ?? `none (${reason})`}; median ms of ${runs} calls; * = the variant the shape rules choose`);
  const cases: Array<[string, Shape4, Shape4, number]> = [
    ['extractor neck/heads 3x3', [8, 32, 32, 32], [3, 3, 32, 32], 1],
    ['extractor stage 1 3x3', [8, 32, 32, 16], [3, 3, 16, 16], 1],
    ['extractor stem 7x7/2', [8, 128, 128, 3], [7, 7, 3, 16], 2],
    ['ResNet-18 stem 7x7/2 (128 px)', [8, 128, 128, 3], [7, 7, 3, 64], 2],
    ['ResNet-18 layer1 (224 px)', [8, 56, 56, 64], [3, 3, 64, 64], 1],
    ['ResNet-18 layer2 down 3x3/2', [8, 32, 32, 64], [3, 3, 64, 128], 2],
    ['ResNet-18 layer2 down 1x1/2', [8, 32, 32, 64], [1, 1, 64, 128], 2],
    ['ResNet-18 layer3 (224 px)', [8, 14, 14, 256], [3, 3, 256, 256], 1],
    ['ResNet-18 layer3 (128 px)', [8, 8, 8, 256], [3, 3, 256, 256], 1],
    ['ResNet-18 layer4 (128 px)', [8, 4, 4, 512], [3, 3, 512, 512], 1],
  ];
  for (const [label, xShape, fShape, stride] of cases) {
    const info: ConvInfo = tf.backend_util.computeConv2DInfo(xShape, fShape, stride, 1, 'same');
    console.log(`${label}: x [${xShape}], filter [${fShape}], stride ${stride}`);
    const x = { name: 'x', shape: info.inShape }, w = { name: 'w', shape: fShape }, dy = { name: 'dy', shape: info.outShape };
    const fwd = (['conv', 'im2col', 'nchwc'] as const).filter((v) => v !== 'nchwc' || nchwcSupported(info, block));
    row('fwd', [...fwd], timeVariants(rt, `${label}|fwd`, fwd.map((v) => ({ name: v, build: () => conv2dGraph(info, v, null, block), inputs: [x, w], outShape: info.outShape })), runs),
      chooseConvVariant(info, null, block));
    const flipped = stride === 1 ? flippedConvInfo(info) : null;
    const dx = (['flip', 'flipIm2col', 'flipNchwc', 'convT'] as const).filter((v) =>
      v === 'convT' || (flipped !== null && (v !== 'flipNchwc' || nchwcSupported(flipped, block))));
    row('dx', [...dx], timeVariants(rt, `${label}|dx`, dx.map((v) => ({ name: v, build: () => backpropInputGraph(info, v, block), inputs: [dy, w], outShape: info.inShape })), runs),
      chooseBackpropInputVariant(info, null, block));
    const dw = ['taps', 'dilconv'] as const;
    row('dw', [...dw], timeVariants(rt, `${label}|dw`, dw.map((v) => ({ name: v, build: () => backpropFilterGraph(info, v), inputs: [x, dy], outShape: fShape })), runs),
      chooseBackpropFilterVariant(info));
  }
  rt.dispose();
}

main();
