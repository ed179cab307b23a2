/**
 * ONNX parity of every layer alone and of a small conv stack: the tfjs forward (NHWC, eval mode)
 * against the exported graph run in onnxruntime-node (NCHW), max abs diff <= 1e-4.
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../../src/backend/tf';
import { Dim, OnnxGraph } from '../../../src/export/onnx_graph';
import {
  AvgPool2d, BatchNorm2d, Conv2d, Conv2dOptions, ConvTranspose2d, ConvTranspose2dOptions, Dropout, Embedding, GELU,
  GlobalAvgPool, LayerNorm, Linear, MLP, MaxPool2d, Module, ReLU, Sequential, Sigmoid, Upsample, UpsampleOptions,
} from '../../../src/models/nn';
import { feed, feedInt64, maxAbsDiff, nhwcToNchw, parityRecord, randInt, randn, record, runOrt, singleIoGraph } from './parity_helpers';

const TOL = 1e-4;

interface ImageModule extends Module {
  forward(x: tf.Tensor4D): tf.Tensor;
  toOnnx(g: OnnxGraph, x: string): string;
}

interface SeqModule extends Module {
  forward(x: tf.Tensor): tf.Tensor;
  toOnnx(g: OnnxGraph, x: string): string;
}

/** Exports `m` alone, runs it at `shapeNhwc`, returns the max abs diff (also recorded). */
async function imageParity(name: string, m: ImageModule, shapeNhwc: number[], seed: number): Promise<number> {
  m.eval();
  const x = randn(shapeNhwc, seed) as tf.Tensor4D;
  const y = tf.tidy(() => {
    const out = m.forward(x);
    return out.rank === 4 ? nhwcToNchw(out) : out;
  });
  const xn = tf.tidy(() => nhwcToNchw(x));
  const c = y.shape[1] as number;
  const outShape: Dim[] = y.rank === 4 ? ['batch', c, 'oh', 'ow'] : ['batch', c];
  const bytes = singleIoGraph(name, ['batch', shapeNhwc[3], 'h', 'w'], outShape, (g, xin) => m.toOnnx(g, xin));
  const out = await runOrt(bytes, { x: feed(xn) });
  assert.deepEqual(out.y.dims, y.shape, `${name}: ONNX output dims`);
  const ref = y.dataSync();
  const diff = maxAbsDiff(out.y.data, ref);
  // A parity test must be able to fail: the output is not trivially constant.
  assert.ok(Math.max(...Array.from(ref, Math.abs)) > 1e-3, `${name}: output is all ~0`);
  tf.dispose([x, y, xn]);
  m.dispose();
  assert.ok(diff <= TOL, `${name}: max abs diff ${diff} > ${TOL}`);
  return record(name, diff);
}

describe('nn layers: ONNX parity (onnxruntime-node vs tfjs, eval)', function () {
  this.timeout(60000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  const convCases: Array<[string, number, number, Conv2dOptions, number[]]> = [
    ['Conv2d k3 s1 same', 3, 8, { kernelSize: 3, padding: 'same', seed: 1 }, [2, 9, 7, 3]],
    ['Conv2d k3 s2 same (odd size: pad bottom/right)', 4, 6, { kernelSize: 3, stride: 2, padding: 'same', seed: 2 }, [2, 9, 8, 4]],
    ['Conv2d k3 d2 same', 3, 5, { kernelSize: 3, dilation: 2, padding: 'same', seed: 3 }, [1, 10, 9, 3]],
    ['Conv2d k[5,3] s[2,1] pad[2,1] no bias', 3, 4, { kernelSize: [5, 3], stride: [2, 1], padding: [2, 1], bias: false, seed: 4 }, [2, 11, 8, 3]],
    ['Conv2d k4 s1 same (even kernel: pad 1 top, 2 bottom)', 2, 3, { kernelSize: 4, padding: 'same', seed: 12 }, [1, 7, 6, 2]],
    ['Conv2d k2 s2 valid', 2, 3, { kernelSize: 2, stride: 2, seed: 5 }, [3, 8, 6, 2]],
    ['Conv2d 1x1', 6, 4, { kernelSize: 1, seed: 6 }, [2, 5, 5, 6]],
  ];
  for (const [name, cin, cout, opts, shape] of convCases) {
    it(name, async () => {
      await imageParity(name, new Conv2d(cin, cout, opts), shape, 10);
    });
  }

  const convTCases: Array<[string, number, number, ConvTranspose2dOptions, number[], number[]]> = [
    ['ConvTranspose2d k4 s2 p1 (x2)', 4, 3, { kernelSize: 4, stride: 2, padding: 1, seed: 7 }, [2, 5, 4, 4], [10, 8]],
    ['ConvTranspose2d k3 s2 p1 op1 (x2)', 3, 5, { kernelSize: 3, stride: 2, padding: 1, outputPadding: 1, seed: 8 }, [2, 4, 5, 3], [8, 10]],
    ['ConvTranspose2d k3 s1 p0 no bias', 2, 2, { kernelSize: 3, bias: false, seed: 9 }, [1, 4, 4, 2], [6, 6]],
  ];
  for (const [name, cin, cout, opts, shape, outHw] of convTCases) {
    it(name, async () => {
      const m = new ConvTranspose2d(cin, cout, opts);
      assert.deepEqual(m.outputSize(shape[1], shape[2]), outHw);
      await imageParity(name, m, shape, 11);
    });
  }

  it('BatchNorm2d eval with non-trivial running stats', async () => {
    const m = new BatchNorm2d(5, { eps: 1e-3 });
    const state = new Map<string, tf.Tensor>([
      ['weight', randn([5], 1, 0.5).add(1)],
      ['bias', randn([5], 2, 0.5)],
      ['running_mean', randn([5], 3, 2)],
      ['running_var', randn([5], 4).abs().add(0.2)],
    ]);
    m.loadStateDict(state);
    tf.dispose([...state.values()]);
    // Hand check of one value against the formula before the parity run.
    const x = tf.tensor4d([1, 2, 3, 4, 5], [1, 1, 1, 5]);
    const y = m.eval().forward(x).dataSync();
    const [g, b, mu, v] = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => m.stateDict().get(k)!.dataSync());
    for (let c = 0; c < 5; c++) {
      const expect = (c + 1 - mu[c]) / Math.sqrt(v[c] + 1e-3) * g[c] + b[c];
      assert.ok(Math.abs(y[c] - expect) < 1e-5, `BN channel ${c}: ${y[c]} vs ${expect}`);
    }
    x.dispose();
    await imageParity('BatchNorm2d (eval, running stats)', m, [3, 4, 5, 5], 12);
  });

  const poolCases: Array<[string, () => ImageModule, number[]]> = [
    ['MaxPool2d k3 s2 same', () => new MaxPool2d({ kernelSize: 3, stride: 2, padding: 'same' }), [2, 9, 8, 3]],
    ['MaxPool2d k2 valid', () => new MaxPool2d({ kernelSize: 2 }), [2, 8, 6, 3]],
    ['MaxPool2d k3 s1 same', () => new MaxPool2d({ kernelSize: 3, stride: 1, padding: 'same' }), [1, 5, 6, 2]],
    ['MaxPool2d k3 s1 pad1', () => new MaxPool2d({ kernelSize: 3, stride: 1, padding: 1 }), [1, 5, 6, 2]],
    ['AvgPool2d k3 s2 same (odd size)', () => new AvgPool2d({ kernelSize: 3, stride: 2, padding: 'same' }), [2, 9, 7, 3]],
    ['AvgPool2d k3 s1 pad1 (count excludes pad)', () => new AvgPool2d({ kernelSize: 3, stride: 1, padding: 1 }), [1, 5, 6, 2]],
    ['AvgPool2d k2 valid', () => new AvgPool2d({ kernelSize: 2 }), [2, 6, 6, 4]],
    ['GlobalAvgPool -> [B, C]', () => new GlobalAvgPool(), [3, 5, 4, 6]],
    ['GlobalAvgPool keepDims', () => new GlobalAvgPool({ keepDims: true }), [2, 5, 4, 6]],
  ];
  for (const [name, make, shape] of poolCases) {
    it(name, async () => {
      await imageParity(name, make(), shape, 13);
    });
  }

  const upCases: Array<[string, UpsampleOptions, number[]]> = [
    ['Upsample nearest x2', { scaleFactor: 2, mode: 'nearest' }, [2, 4, 5, 3]],
    ['Upsample nearest x[3,2]', { scaleFactor: [3, 2], mode: 'nearest' }, [1, 3, 4, 2]],
    ['Upsample nearest size [6,9] from [4,6]', { size: [6, 9], mode: 'nearest' }, [2, 4, 6, 2]],
    ['Upsample bilinear x2 (half_pixel)', { scaleFactor: 2, mode: 'bilinear' }, [2, 4, 5, 3]],
    ['Upsample bilinear x[4,3]', { scaleFactor: [4, 3], mode: 'bilinear' }, [1, 3, 3, 2]],
    ['Upsample bilinear size [9,3] from [6,4] (up and down)', { size: [9, 3], mode: 'bilinear' }, [2, 6, 4, 2]],
  ];
  for (const [name, opts, shape] of upCases) {
    it(name, async () => {
      await imageParity(name, new Upsample(opts), shape, 14);
    });
  }

  it('Upsample bilinear x2 matches hand-computed half-pixel values', () => {
    // 1-D row [0, 10] upsampled x2 with half-pixel centers: [0, 2.5, 7.5, 10].
    const m = new Upsample({ scaleFactor: 2, mode: 'bilinear' });
    const y = tf.tidy(() => m.forward(tf.tensor4d([0, 10], [1, 1, 2, 1])));
    assert.deepEqual(Array.from(y.dataSync()), [0, 2.5, 7.5, 10, 0, 2.5, 7.5, 10]);
    y.dispose();
  });

  it('ReLU and Sigmoid', async () => {
    await imageParity('ReLU', new ReLU(), [2, 3, 4, 5], 15);
    await imageParity('Sigmoid', new Sigmoid(), [2, 3, 4, 5], 16);
  });

  /** Sequence layers: x [B, T, C] in both frameworks. */
  async function seqParity(name: string, m: SeqModule, shape: number[], seed: number): Promise<number> {
    m.eval();
    const x = randn(shape, seed, 2);
    const y = tf.tidy(() => m.forward(x));
    const lead = shape.length === 3 ? ['batch', 'seq'] : ['batch'];
    const bytes = singleIoGraph(name, [...lead, shape[shape.length - 1]], [...lead, y.shape[y.rank - 1]], (g, xin) => m.toOnnx(g, xin));
    const out = await runOrt(bytes, { x: feed(x) });
    assert.deepEqual(out.y.dims, y.shape);
    const diff = maxAbsDiff(out.y.data, y.dataSync());
    tf.dispose([x, y]);
    m.dispose();
    assert.ok(diff <= TOL, `${name}: max abs diff ${diff} > ${TOL}`);
    return record(name, diff);
  }

  it('Linear on [B, C] and [B, T, C]', async () => {
    await seqParity('Linear [B,C]', new Linear(7, 5, { seed: 20 }), [3, 7], 21);
    await seqParity('Linear [B,T,C]', new Linear(6, 9, { seed: 22 }), [2, 5, 6], 23);
    await seqParity('Linear no bias', new Linear(6, 4, { bias: false, seed: 24 }), [2, 3, 6], 25);
  });

  it('LayerNorm (opset-17 LayerNormalization)', async () => {
    const m = new LayerNorm(8);
    const w = randn([8], 30, 0.5).add(1);
    const b = randn([8], 31, 0.5);
    m.loadStateDict({ weight: w, bias: b });
    tf.dispose([w, b]);
    await seqParity('LayerNorm', m, [2, 5, 8], 32);
  });

  it('GELU (tanh form, decomposed) and MLP', async () => {
    // Hand values of the tanh approximation: gelu(1) = 0.841192, gelu(-2) = -0.045402.
    const v = tf.tidy(() => new GELU().forward(tf.tensor1d([1, -2, 0]))).dataSync();
    assert.ok(Math.abs(v[0] - 0.841192) < 1e-5 && Math.abs(v[1] + 0.045402) < 1e-5 && v[2] === 0, `gelu values ${v}`);
    await seqParity('GELU', new GELU(), [2, 4, 6], 33);
    await seqParity('MLP (c_fc, GELU, c_proj)', new MLP(8, { seed: 34 }), [2, 5, 8], 35);
  });

  it('Embedding (Gather, int64 ids)', async () => {
    const m = new Embedding(11, 6, { seed: 40 });
    const ids = randInt([2, 7], 11, 41);
    const y = m.forward(ids);
    const g = new OnnxGraph('embedding');
    const x = g.input('ids', ['batch', 'seq'], 'int64');
    g.output('y', ['batch', 'seq', 6], 'float32', { from: m.toOnnx(g, x) });
    const out = await runOrt(g.toModelProto(), { ids: feedInt64(ids) });
    assert.deepEqual(out.y.dims, [2, 7, 6]);
    const diff = record('Embedding', maxAbsDiff(out.y.data, y.dataSync()));
    assert.equal(diff, 0);
    tf.dispose([ids, y]);
    m.dispose();
  });

  it('Dropout: identity in eval and in the export', async () => {
    const m = new Dropout(0.5, { seed: 1 });
    m.eval();
    const x = randn([2, 3], 50);
    assert.equal(m.forward(x), x);
    const g = new OnnxGraph('dropout');
    const xin = g.input('x', ['batch', 3]);
    assert.equal(m.toOnnx(g, xin), xin);
    g.output('y', ['batch', 3], 'float32', { from: m.toOnnx(g, xin) });
    const out = await runOrt(g.toModelProto(), { x: feed(x) });
    assert.equal(record('Dropout (eval)', maxAbsDiff(out.y.data, x.dataSync())), 0);
    x.dispose();
  });

  it('a conv stack (conv-bn-relu-pool-conv-bn-relu-upsample-convT-sigmoid) at batch 1 and 3', async () => {
    const net = new Sequential([
      new Conv2d(3, 8, { kernelSize: 3, padding: 'same', seed: 60 }),
      new BatchNorm2d(8),
      new ReLU(),
      new MaxPool2d({ kernelSize: 2 }),
      new Conv2d(8, 6, { kernelSize: 3, stride: 2, padding: 'same', seed: 61 }),
      new BatchNorm2d(6),
      new ReLU(),
      new Upsample({ scaleFactor: 2, mode: 'bilinear' }),
      new ConvTranspose2d(6, 4, { kernelSize: 4, stride: 2, padding: 1, seed: 62 }),
      new Upsample({ scaleFactor: 2, mode: 'nearest' }),
      new AvgPool2d({ kernelSize: 3, stride: 2, padding: 'same' }),
      new Conv2d(4, 2, { kernelSize: 1, seed: 63 }),
      new Sigmoid(),
    ]);
    // Non-trivial running statistics: a few training-mode passes.
    net.train();
    for (let s = 0; s < 3; s++) tf.tidy(() => { net.forward(randn([4, 16, 16, 3], 70 + s, 1.5).add(0.3)); });
    net.eval();
    const rm = net.stateDict().get('1.running_mean')!.dataSync();
    assert.ok(Math.max(...Array.from(rm, Math.abs)) > 1e-3, 'BN running mean moved');

    const g = new OnnxGraph('stack');
    const x = g.input('x', ['batch', 3, 'h', 'w']);
    g.output('y', ['batch', 2, 'oh', 'ow'], 'float32', { from: net.toOnnx(g, x) });
    const bytes = g.toModelProto();
    for (const batch of [1, 3]) {
      const xt = randn([batch, 16, 16, 3], 80 + batch);
      const y = tf.tidy(() => nhwcToNchw(net.forward(xt as tf.Tensor4D)));
      const xn = tf.tidy(() => nhwcToNchw(xt));
      const out = await runOrt(bytes, { x: feed(xn) });
      assert.deepEqual(out.y.dims, [batch, 2, 16, 16]);
      const diff = record(`conv stack (batch ${batch})`, maxAbsDiff(out.y.data, y.dataSync()));
      assert.ok(diff <= TOL, `batch ${batch}: max abs diff ${diff}`);
      tf.dispose([xt, y, xn]);
    }
    net.dispose();
  });

  after(() => {
    const rows = [...parityRecord].map(([k, v]) => `    ${k.padEnd(56)} ${v.toExponential(2)}`);
    console.log(`  max abs diff, onnxruntime vs tfjs:\n${rows.join('\n')}`);
    parityRecord.clear();
  });
});
