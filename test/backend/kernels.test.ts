/**
 * Composite wasm kernels against the cpu backend, and every layer expression of the models run
 * forward and backward on wasm against cpu. Inputs are made on cpu, read, and re-created on wasm.
 * Tolerance: max |wasm - cpu| <= 1e-4 * max |cpu|.
 */
import { strict as assert } from 'node:assert';
import { COMPOSITE_WASM_KERNELS, initBackend, tf } from '../../src/backend';
import {
  cpuData, dilateFilter, makeRng, ParityTable, relDiff, restoreBackendAfter, subsampleFilter, valuesOn,
} from './helpers';

const TOL = 1e-4;
const table = new ParityTable();

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];

interface ConvCase {
  label: string;
  xShape: Shape4; // in dataFormat
  filterShape: Shape4; // [kh, kw, ci, co] or depthwise [kh, kw, C, m]
  strides: [number, number];
  dilations: [number, number];
  pad: Pad;
  dataFormat: 'NHWC' | 'NCHW';
}

function convInfo(c: ConvCase, depthwise: boolean): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(c.xShape, c.filterShape, c.strides, c.dilations, c.pad,
    undefined, depthwise, c.dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast');
}

function describe4(c: ConvCase): string {
  const pad = typeof c.pad === 'string' ? c.pad : `explicit${JSON.stringify(c.pad.slice(1, 3))}`;
  return `x[${c.xShape}] f[${c.filterShape}] s${c.strides} d${c.dilations} ${pad} ${c.dataFormat}`;
}

/** Random convolution cases plus fixed ones that hit the corners (crop, 1x1 stride 2, odd sizes). */
function convCases(seed: number, n: number, depthwise: boolean): ConvCase[] {
  const rng = makeRng(seed);
  const fixed: ConvCase[] = [
    { label: 'fixed', xShape: [1, 9, 9, 3], filterShape: [1, 1, 3, depthwise ? 1 : 4], strides: [2, 2], dilations: [1, 1], pad: 'valid', dataFormat: 'NHWC' },
    { label: 'fixed', xShape: [4, 8, 8, 2], filterShape: [3, 3, 2, depthwise ? 2 : 5], strides: [2, 2], dilations: [1, 1], pad: 'same', dataFormat: 'NHWC' },
    { label: 'fixed', xShape: [2, 7, 5, 3], filterShape: [3, 2, 3, depthwise ? 1 : 2], strides: [2, 1], dilations: [1, 1], pad: 'valid', dataFormat: 'NHWC' },
    { label: 'fixed', xShape: [1, 5, 5, 1], filterShape: [4, 4, 1, 1], strides: [1, 1], dilations: [1, 1], pad: 'same', dataFormat: 'NHWC' },
  ];
  if (!depthwise) {
    fixed.push({ label: 'fixed', xShape: [2, 3, 9, 7], filterShape: [3, 3, 3, 4], strides: [2, 2], dilations: [1, 1], pad: 'same', dataFormat: 'NCHW' });
    fixed.push({ label: 'fixed', xShape: [1, 2, 6, 6], filterShape: [2, 2, 2, 3], strides: [1, 1], dilations: [1, 1], pad: 'valid', dataFormat: 'NCHW' });
  } else {
    fixed.push({ label: 'fixed', xShape: [2, 9, 8, 3], filterShape: [3, 3, 3, 2], strides: [1, 1], dilations: [2, 2], pad: 'same', dataFormat: 'NHWC' });
    fixed.push({ label: 'fixed', xShape: [1, 11, 10, 2], filterShape: [2, 3, 2, 1], strides: [1, 1], dilations: [2, 3], pad: 'valid', dataFormat: 'NHWC' });
  }
  const out: ConvCase[] = [];
  while (out.length < n) {
    const kh = rng.int(1, 4), kw = rng.int(1, 4);
    const dil = depthwise && rng.int(0, 3) === 0 ? [rng.int(1, 2), rng.int(1, 2)] as [number, number] : [1, 1] as [number, number];
    const strides: [number, number] = dil[0] > 1 || dil[1] > 1 ? [1, 1] : [rng.int(1, 3), rng.int(1, 3)];
    const padKind = rng.pick(['same', 'valid', 'explicit'] as const);
    const pad: Pad = padKind !== 'explicit' ? padKind
      : [[0, 0], [rng.int(0, 2), rng.int(0, 2)], [rng.int(0, 2), rng.int(0, 2)], [0, 0]];
    const B = rng.pick([1, 1, 2, 3]), H = rng.int(1, 12), W = rng.int(1, 12), C = rng.int(1, 5);
    const co = depthwise ? rng.int(1, 3) : rng.int(1, 5);
    const c: ConvCase = {
      label: 'random', xShape: [B, H, W, C], filterShape: [kh, kw, C, co], strides, dilations: dil, pad, dataFormat: 'NHWC',
    };
    try {
      const info = convInfo(c, depthwise);
      if (info.outHeight < 1 || info.outWidth < 1) continue;
    } catch {
      continue;
    }
    out.push(c);
  }
  return [...fixed, ...out];
}

function run(kernel: string, inputs: Record<string, tf.Tensor>, attrs: object): tf.Tensor {
  return tf.engine().runKernel(kernel, inputs as unknown as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor;
}

after(() => {
  process.stdout.write(`\n  backend parity, max relative difference wasm vs cpu:\n${table.format()}\n`);
});

describe('backend: composite wasm kernels vs cpu', function () {
  restoreBackendAfter();
  this.timeout(60_000);

  before(async () => {
    await initBackend({ name: 'wasm' });
  });

  it('registers every composite for wasm', () => {
    const names = COMPOSITE_WASM_KERNELS.map((k) => k.kernelName).sort();
    assert.deepEqual(names, ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'DepthwiseConv2dNativeBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput', 'Hoi2anomalyAdamWUpdate', 'Hoi2anomalyBatchNormTrain', 'Hoi2anomalyBatchNormTrainGrad',
      'Hoi2anomalyGlobalNorm', 'Identity', 'MaxPoolGrad', 'ResizeNearestNeighborGrad', 'Sum', 'UnsortedSegmentSum']);
    for (const k of COMPOSITE_WASM_KERNELS) assert.equal(tf.getKernel(k.kernelName, 'wasm'), k, k.kernelName);
  });

  it('Conv2DBackpropInput and Conv2DBackpropFilter match cpu (strides 1-3, same/valid/explicit, NHWC/NCHW)', async () => {
    for (const [i, c] of convCases(11, 44, false).entries()) {
      const info = convInfo(c, false);
      const dyShape = info.outShape;
      const [x, w, dy] = await Promise.all([cpuData(c.xShape, 100 + i), cpuData(c.filterShape, 200 + i), cpuData(dyShape, 300 + i)]);
      const compute = (): tf.Tensor[] => [
        run('Conv2DBackpropInput', { dy: tf.tensor(dy, dyShape), filter: tf.tensor(w, c.filterShape) },
          { strides: c.strides, pad: c.pad, dataFormat: c.dataFormat, inputShape: c.xShape }),
        run('Conv2DBackpropFilter', { x: tf.tensor(x, c.xShape), dy: tf.tensor(dy, dyShape) },
          { strides: c.strides, pad: c.pad, dataFormat: c.dataFormat, filterShape: c.filterShape }),
      ];
      const ref = await valuesOn('cpu', compute);
      const got = await valuesOn('wasm', compute);
      const dIn = relDiff(got[0], ref[0]), dFi = relDiff(got[1], ref[1]);
      table.add('Conv2DBackpropInput', dIn);
      table.add('Conv2DBackpropFilter', dFi);
      assert.ok(dIn <= TOL, `Conv2DBackpropInput ${describe4(c)}: ${dIn}`);
      assert.ok(dFi <= TOL, `Conv2DBackpropFilter ${describe4(c)}: ${dFi}`);
    }
  });

  it('DepthwiseConv2dNativeBackpropInput / Filter match cpu (multiplier 1-3, strides, dilations)', async () => {
    for (const [i, c] of convCases(23, 22, true).entries()) {
      const info = convInfo(c, true);
      const dyShape = info.outShape;
      const [x, w, dy] = await Promise.all([cpuData(c.xShape, 400 + i), cpuData(c.filterShape, 500 + i), cpuData(dyShape, 600 + i)]);
      const attrs = { strides: c.strides, dilations: c.dilations, pad: c.pad };
      const got = await valuesOn('wasm', () => [
        run('DepthwiseConv2dNativeBackpropInput', { dy: tf.tensor(dy, dyShape), filter: tf.tensor(w, c.filterShape) },
          { ...attrs, inputShape: c.xShape }),
        run('DepthwiseConv2dNativeBackpropFilter', { x: tf.tensor(x, c.xShape), dy: tf.tensor(dy, dyShape) },
          { ...attrs, filterShape: c.filterShape }),
      ]);
      // The cpu kernels ignore dilations; the reference runs them on the zero-filled dilated filter.
      const dl = dilateFilter(w, c.filterShape, c.dilations);
      const ref = await valuesOn('cpu', () => [
        run('DepthwiseConv2dNativeBackpropInput', { dy: tf.tensor(dy, dyShape), filter: tf.tensor(dl.w, dl.shape) },
          { strides: c.strides, dilations: 1, pad: c.pad, inputShape: c.xShape }),
        run('DepthwiseConv2dNativeBackpropFilter', { x: tf.tensor(x, c.xShape), dy: tf.tensor(dy, dyShape) },
          { strides: c.strides, dilations: 1, pad: c.pad, filterShape: dl.shape }),
      ]);
      const refFilter = subsampleFilter(ref[1], dl.shape, c.dilations, c.filterShape[0], c.filterShape[1]);
      const dIn = relDiff(got[0], ref[0]), dFi = relDiff(got[1], refFilter);
      table.add('DepthwiseConv2dNativeBackpropInput', dIn);
      table.add('DepthwiseConv2dNativeBackpropFilter', dFi);
      assert.ok(dIn <= TOL, `DepthwiseConv2dNativeBackpropInput ${describe4(c)}: ${dIn}`);
      assert.ok(dFi <= TOL, `DepthwiseConv2dNativeBackpropFilter ${describe4(c)}: ${dFi}`);
    }
  });

  it('UnsortedSegmentSum matches cpu (repeats, rank-2 ids, ids out of range dropped)', async () => {
    const rng = makeRng(37);
    const cases: Array<{ xShape: number[]; idShape: number[]; numSegments: number; outOfRange: boolean }> = [
      { xShape: [12, 5], idShape: [12], numSegments: 4, outOfRange: false },
      { xShape: [7], idShape: [7], numSegments: 3, outOfRange: false },
      { xShape: [3, 4, 6], idShape: [3, 4], numSegments: 5, outOfRange: false },
      { xShape: [9, 2, 3], idShape: [9], numSegments: 6, outOfRange: true },
      { xShape: [1, 8], idShape: [1], numSegments: 1, outOfRange: false },
    ];
    for (let i = 0; i < 5; i++) {
      cases.push({ xShape: [rng.int(1, 40), rng.int(1, 16)], idShape: [], numSegments: rng.int(1, 30), outOfRange: i === 4 });
    }
    for (const [i, c] of cases.entries()) {
      const idShape = c.idShape.length > 0 ? c.idShape : [c.xShape[0]];
      const n = idShape.reduce((p, d) => p * d, 1);
      const ids = Int32Array.from({ length: n }, () =>
        c.outOfRange && rng.int(0, 3) === 0 ? rng.pick([-1, c.numSegments, c.numSegments + 3]) : rng.int(0, c.numSegments - 1));
      const x = await cpuData(c.xShape, 700 + i);
      const compute = (flat: boolean) => (): tf.Tensor => {
        // The cpu kernel takes rank-1 ids only: its reference sees the ids and rows flattened.
        const shape = flat ? [n, ...c.xShape.slice(idShape.length)] : c.xShape;
        const idT: tf.Tensor = tf.tensor(ids, flat ? [n] : idShape, 'int32');
        return tf.unsortedSegmentSum(tf.tensor(x, shape), idT as tf.Tensor1D, c.numSegments);
      };
      const [ref] = await valuesOn('cpu', compute(true));
      const [got] = await valuesOn('wasm', compute(false));
      const d = relDiff(got, ref);
      table.add('UnsortedSegmentSum', d);
      assert.ok(d <= TOL, `UnsortedSegmentSum x[${c.xShape}] ids[${idShape}] n=${c.numSegments}: ${d}`);
    }
  });

  it('Identity shares data by reference count: clones outlive the original, variables stay apart', async () => {
    await initBackend({ name: 'wasm' });
    const backend = tf.backend();
    const ids0 = backend.numDataIds();
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.clone(x);
    assert.equal(backend.numDataIds(), ids0 + 1, 'one buffer for x and its clone');
    x.dispose();
    assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]);
    const v = tf.variable(y);
    const t2 = tf.tensor1d([7, 8, 9]);
    v.assign(t2);
    t2.dispose();
    assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3], 'assign does not write into the shared buffer');
    assert.deepEqual(Array.from(v.dataSync()), [7, 8, 9]);
    tf.dispose([y, v]);
    assert.equal(backend.numDataIds(), ids0);
  });

  it('leaks no tensors and no wasm data ids', async () => {
    await initBackend({ name: 'wasm' });
    const backend = tf.backend();
    const once = (): void => {
      const x = tf.randomNormal([2, 9, 7, 3], 0, 1, 'float32', 1);
      const w = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 2);
      const dy = tf.randomNormal([2, 5, 4, 4], 0, 1, 'float32', 3);
      const dw = tf.randomNormal([3, 3, 3, 2], 0, 1, 'float32', 4);
      const ddy = tf.randomNormal([2, 5, 4, 6], 0, 1, 'float32', 5);
      const outs = [
        run('Conv2DBackpropInput', { dy, filter: w }, { strides: 2, pad: 'same', dataFormat: 'NHWC', inputShape: [2, 9, 7, 3] }),
        run('Conv2DBackpropFilter', { x, dy }, { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 3, 4] }),
        run('Conv2DBackpropInput', { dy: tf.transpose(dy, [0, 3, 1, 2]), filter: w },
          { strides: 2, pad: 'same', dataFormat: 'NCHW', inputShape: [2, 3, 9, 7] }),
        run('DepthwiseConv2dNativeBackpropInput', { dy: ddy, filter: dw }, { strides: 2, dilations: 1, pad: 'same', inputShape: [2, 9, 7, 3] }),
        run('DepthwiseConv2dNativeBackpropFilter', { x, dy: ddy }, { strides: 2, dilations: 1, pad: 'same', filterShape: [3, 3, 3, 2] }),
        tf.unsortedSegmentSum(tf.reshape(x, [6, 63]), tf.tensor1d([0, 1, 1, 5, 2, 0], 'int32'), 4), // id 5 dropped
        tf.unsortedSegmentSum(tf.reshape(x, [6, 63]), tf.tensor1d([0, 1, 1, 3, 2, 0], 'int32'), 4),
        tf.clone(x), // Identity: shares x's data
      ];
      tf.dispose(outs);
      tf.dispose([x, w, dy, dw, ddy]);
    };
    once(); // first use may allocate lasting state (operator caches)
    const tensors = tf.memory().numTensors;
    const dataIds = backend.numDataIds();
    for (let i = 0; i < 3; i++) tf.tidy(once);
    assert.equal(tf.memory().numTensors, tensors, 'engine tensors');
    assert.equal(backend.numDataIds(), dataIds, 'wasm data ids');
  });
});

/** One layer expression: input shapes and a function of the inputs whose gradients are compared. */
interface Expr {
  name: string;
  shapes: number[][];
  f: (...xs: tf.Tensor[]) => tf.Tensor;
}

const lowerTriangle = (t: number): tf.Tensor => tf.linalg.bandPart(tf.ones([t, t]), -1, 0);

const EXPRESSIONS: Expr[] = [
  { name: 'conv2d stride 1 same', shapes: [[2, 7, 6, 3], [3, 3, 3, 4]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same') },
  { name: 'conv2d stride 2 valid', shapes: [[2, 9, 8, 3], [3, 3, 3, 4]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'valid') },
  { name: 'conv2d stride 2 same, odd size', shapes: [[1, 11, 7, 2], [4, 4, 2, 3]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same') },
  { name: 'conv2d dilation 2', shapes: [[2, 9, 8, 3], [3, 3, 3, 4]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same', 'NHWC', 2) },
  { name: 'conv2d dilation 2 valid', shapes: [[1, 10, 9, 2], [2, 3, 2, 3]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid', 'NHWC', [2, 3]) },
  {
    name: 'fused conv2d + bias + relu', shapes: [[2, 8, 8, 3], [3, 3, 3, 4], [4]],
    f: (x, w, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 2, pad: 'same', bias: b, activation: 'relu' }),
  },
  {
    name: 'depthwise conv2d', shapes: [[2, 8, 7, 3], [3, 3, 3, 2]],
    f: (x, w) => tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'),
  },
  {
    name: 'conv2dTranspose (upsampling)', shapes: [[2, 4, 5, 4], [3, 3, 3, 4]],
    f: (x, w) => tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, [2, 8, 10, 3], 2, 'same'),
  },
  {
    name: 'batch norm (training: moments)', shapes: [[4, 5, 5, 3], [3], [3]],
    f: (x, g, b) => {
      const m = tf.moments(x, [0, 1, 2]);
      return tf.batchNorm(x, m.mean, m.variance, b, g, 1e-5);
    },
  },
  { name: 'dense: matMul + add', shapes: [[6, 5], [5, 4], [4]], f: (x, w, b) => tf.add(tf.matMul(x, w), b) },
  {
    name: 'fused dense + relu', shapes: [[6, 5], [5, 4], [4]],
    f: (x, w, b) => tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b, activation: 'relu' }),
  },
  {
    name: 'layer norm', shapes: [[2, 5, 8], [8], [8]],
    f: (x, g, b) => {
      const m = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(x, m.mean), tf.sqrt(tf.add(m.variance, 1e-5))), g), b);
    },
  },
  {
    name: 'embedding (gather)', shapes: [[10, 6]],
    f: (table) => tf.gather(table, tf.tensor2d([[0, 3, 3, 9], [1, 0, 7, 3]], [2, 4], 'int32')),
  },
  {
    name: 'causal attention (batchMatMul, softmax, where mask)', shapes: [[2, 5, 8], [8, 8], [8, 8], [8, 8]],
    f: (x, wq, wk, wv) => {
      const [B, T, C] = x.shape;
      const nH = 2, dH = C / nH;
      const heads = (t: tf.Tensor): tf.Tensor => tf.transpose(tf.reshape(t, [B, T, nH, dH]), [0, 2, 1, 3]); // [B, nH, T, dH]
      const x2 = tf.reshape(x, [B * T, C]);
      const q = heads(tf.matMul(x2, wq)), k = heads(tf.matMul(x2, wk)), v = heads(tf.matMul(x2, wv));
      const att = tf.div(tf.matMul(q, k, false, true), Math.sqrt(dH)); // [B, nH, T, T]
      const mask = tf.cast(lowerTriangle(T), 'bool');
      const masked = tf.where(tf.broadcastTo(mask, att.shape), att, tf.fill(att.shape, -1e9));
      const y = tf.matMul(tf.softmax(masked), v); // [B, nH, T, dH]
      return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, C]);
    },
  },
  {
    name: 'GELU tanh form', shapes: [[3, 7]],
    f: (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))))),
  },
  { name: 'GELU erf form', shapes: [[3, 7]], f: (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2)))) },
  { name: 'relu, sigmoid, leakyRelu, elu, selu, relu6', shapes: [[4, 6]], f: (x) => tf.addN([tf.relu(x), tf.sigmoid(x), tf.leakyRelu(x, 0.1), tf.elu(x), tf.selu(x), tf.relu6(x)]) },
  { name: 'max pool 3x3 stride 2 same', shapes: [[2, 9, 8, 3]], f: (x) => tf.maxPool(x as tf.Tensor4D, 3, 2, 'same') },
  { name: 'avg pool 2x2 stride 2 valid', shapes: [[2, 9, 8, 3]], f: (x) => tf.avgPool(x as tf.Tensor4D, 2, 2, 'valid') },
  { name: 'resizeNearestNeighbor (upsample)', shapes: [[2, 4, 5, 3]], f: (x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [8, 10]) },
  { name: 'resizeBilinear (upsample)', shapes: [[2, 4, 5, 3]], f: (x) => tf.image.resizeBilinear(x as tf.Tensor4D, [7, 11]) },
  { name: 'resizeBilinear alignCorners', shapes: [[1, 5, 4, 2]], f: (x) => tf.image.resizeBilinear(x as tf.Tensor4D, [9, 7], true) },
  {
    name: 'mean/sum/max/min reductions', shapes: [[2, 5, 4, 3]],
    f: (x) => tf.addN([tf.sum(tf.mean(x, [1, 2])), tf.sum(tf.max(x, -1)), tf.min(x), tf.sum(tf.sum(x, 0)), tf.sum(tf.logSumExp(x, -1))]),
  },
  {
    name: 'concat, slice, pad, mirrorPad', shapes: [[2, 6, 5, 3]],
    f: (x) => {
      const s = tf.slice(x, [0, 1, 1, 0], [-1, 3, 3, -1]);
      const c = tf.concat([x, tf.pad(s, [[0, 0], [1, 2], [0, 2], [0, 0]])], -1);
      return tf.mirrorPad(c as tf.Tensor4D, [[0, 0], [1, 1], [2, 0], [0, 0]], 'reflect');
    },
  },
  {
    name: 'split, stack, tile (rank 5), unstack', shapes: [[2, 4, 3, 4]],
    f: (x) => {
      const [a, b] = tf.split(x, 2, -1);
      const st = tf.tile(tf.stack([a, tf.mul(b, 2)], 1), [1, 2, 1, 1, 2]);
      return tf.stack(tf.unstack(st, 2).map((t, i) => tf.mul(t, i + 1)));
    },
  },
  {
    name: 'log, exp, sqrt, pow, abs, clipByValue', shapes: [[3, 8]],
    f: (x) => tf.addN([
      tf.log(tf.add(tf.abs(x), 1)), tf.exp(tf.mul(x, 0.3)), tf.sqrt(tf.add(tf.square(x), 1)),
      tf.pow(tf.add(tf.abs(x), 1), 1.5), tf.clipByValue(x, -0.5, 0.5), tf.log1p(tf.abs(x)), tf.rsqrt(tf.add(tf.abs(x), 1)),
    ]),
  },
  {
    name: 'focal loss (heatmap, CornerNet form)', shapes: [[2, 6, 6, 3]],
    f: (logits) => {
      const gt = tf.tidy(() => tf.div(tf.add(tf.range(0, logits.size), 0).reshape(logits.shape).mod(7), 6)); // in [0, 1]
      const p = tf.clipByValue(tf.sigmoid(logits), 1e-4, 1 - 1e-4);
      const pos = tf.cast(tf.equal(gt, 1), 'float32');
      const posLoss = tf.mul(tf.mul(tf.log(p), tf.pow(tf.sub(1, p), 2)), pos);
      const negLoss = tf.mul(tf.mul(tf.mul(tf.log(tf.sub(1, p)), tf.pow(p, 2)), tf.pow(tf.sub(1, gt), 4)), tf.sub(1, pos));
      return tf.div(tf.neg(tf.add(tf.sum(posLoss), tf.sum(negLoss))), tf.maximum(tf.sum(pos), 1));
    },
  },
  { name: 'L1 / smooth L1 with mask', shapes: [[5, 4], [5, 4]], f: (a, b) => tf.sum(tf.where(tf.less(tf.abs(tf.sub(a, b)), 1), tf.mul(0.5, tf.square(tf.sub(a, b))), tf.sub(tf.abs(tf.sub(a, b)), 0.5))) },
  { name: 'softmax cross-entropy + logSoftmax', shapes: [[6, 5]], f: (x) => tf.add(tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 1], 'int32'), 5), x), tf.sum(tf.logSoftmax(x))) },
  { name: 'cumsum (axis 1, and exclusive reverse)', shapes: [[2, 5, 4]], f: (x) => tf.add(tf.cumsum(x, 1), tf.cumsum(x, 2, true, true)) },
  { name: 'squaredDifference broadcast', shapes: [[3, 4], [4]], f: (a, b) => tf.squaredDifference(a, b) },
  { name: 'maximum, minimum, atan2, prelu', shapes: [[3, 5], [5]], f: (x, a) => tf.addN([tf.maximum(x, tf.mul(x, 0.3)), tf.minimum(x, 0.2), tf.atan2(x, tf.add(tf.abs(x), 1)), tf.prelu(x, a)]) },
  { name: 'softplus, logSigmoid, tanh, sin, cos', shapes: [[3, 5]], f: (x) => tf.addN([tf.softplus(x), tf.logSigmoid(x), tf.tanh(x), tf.sin(x), tf.cos(x)]) },
];

describe('backend: layer expressions backward on wasm vs cpu', function () {
  restoreBackendAfter();
  this.timeout(60_000);

  for (const [i, e] of EXPRESSIONS.entries()) {
    it(e.name, async () => {
      const inputs = await Promise.all(e.shapes.map((s, j) => cpuData(s, 1000 + 10 * i + j)));
      // Weighted sum of squares: a scalar whose gradient involves every output element.
      const compute = (): tf.Tensor[] => {
        const xs = inputs.map((v, j) => tf.tensor(v, e.shapes[j]));
        const loss = (...a: tf.Tensor[]): tf.Scalar => {
          const y = e.f(...a);
          const weights = tf.sin(tf.reshape(tf.range(0, y.size, 1, 'float32'), y.shape));
          return tf.sum(tf.mul(tf.add(y, 0.5), tf.mul(y, weights)));
        };
        const { value, grads } = tf.valueAndGrads(loss)(xs);
        return [value, ...grads];
      };
      const ref = await valuesOn('cpu', compute);
      const got = await valuesOn('wasm', compute);
      for (let j = 0; j < ref.length; j++) {
        const d = relDiff(got[j], ref[j]);
        table.add(`expr: ${e.name}`, d);
        assert.ok(d <= TOL, `${e.name}: ${j === 0 ? 'value' : `gradient ${j - 1}`} differs by ${d}`);
      }
    });
  }
});
