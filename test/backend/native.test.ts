/**
 * Native kernels ('wasm-native': the heavy wasm kernels run by ONNX Runtime) against the cpu
 * backend: every kernel and every graph variant on random shapes (strides 1/2, same/valid/
 * explicit padding, odd sizes, batch 1 and 16), fused epilogues, batched matmuls with
 * broadcasting, a small network's gradients; then the fallback to plain wasm, tensor leaks and
 * the session cache. Tolerance: max |native - cpu| <= 1e-4 * max |cpu|.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describeBackend, disableNativeKernels, initBackend, nativeKernelStats, tf, type BackendInfo } from '../../src/backend';
import { NATIVE_KERNELS, nchwcBlockSize, nativeKernelStatus, nativeSessionCount, setNativeOptions } from '../../src/backend/native';
import { selfTestGraph } from '../../src/backend/native/op_graphs';
import { loadOrtRuntime } from '../../src/backend/native/ort_runtime';
import { chooseBackpropFilterVariant, chooseBackpropInputVariant, chooseConvVariant } from '../../src/backend/native/kernels';
import { log } from '../../src/logger';
import { cpuData, makeRng, ParityTable, relDiff, restoreBackendAfter } from './helpers';

const TOL = 1e-4;
const table = new ParityTable();

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];

interface ConvCase {
  xShape: Shape4;
  filterShape: Shape4;
  strides: [number, number];
  pad: Pad;
  dataFormat: 'NHWC' | 'NCHW';
}

function convInfo(c: ConvCase): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(c.xShape, c.filterShape, c.strides, 1, c.pad, undefined, false,
    c.dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast');
}

function label(c: ConvCase): string {
  const pad = typeof c.pad === 'string' ? c.pad : `explicit${JSON.stringify(c.pad.slice(1, 3))}`;
  return `x[${c.xShape}] f[${c.filterShape}] s${c.strides} ${pad} ${c.dataFormat}`;
}

/**
 * Fixed corners (batch 16, 1x1 stride 2, the 7x7 stem with 3 channels, 15x17 and 31x33 maps, NCHW) and
 * random cases: odd sizes 1-17, filters 1-4, strides 1-2, channels 1-20 (>= 16 reaches the
 * per-tap filter gradient, < 16 the dilated conv), batch 1-3.
 */
function convCases(seed: number, n: number): ConvCase[] {
  const rng = makeRng(seed);
  const out: ConvCase[] = [
    { xShape: [16, 9, 9, 4], filterShape: [3, 3, 4, 6], strides: [1, 1], pad: 'same', dataFormat: 'NHWC' },
    { xShape: [16, 11, 11, 17], filterShape: [3, 3, 17, 5], strides: [2, 2], pad: 'valid', dataFormat: 'NHWC' },
    { xShape: [1, 9, 9, 3], filterShape: [1, 1, 3, 4], strides: [2, 2], pad: 'valid', dataFormat: 'NHWC' },
    { xShape: [2, 23, 23, 3], filterShape: [7, 7, 3, 8], strides: [2, 2], pad: 'same', dataFormat: 'NHWC' },
    { xShape: [1, 15, 17, 18], filterShape: [3, 3, 18, 16], strides: [1, 1], pad: 'same', dataFormat: 'NHWC' },
    { xShape: [1, 31, 33, 3], filterShape: [3, 3, 3, 4], strides: [2, 2], pad: 'same', dataFormat: 'NHWC' },
    { xShape: [1, 5, 5, 2], filterShape: [4, 4, 2, 3], strides: [1, 1], pad: 'same', dataFormat: 'NHWC' },
    { xShape: [2, 3, 9, 7], filterShape: [3, 3, 3, 4], strides: [2, 2], pad: 'same', dataFormat: 'NCHW' },
    { xShape: [1, 2, 6, 6], filterShape: [2, 2, 2, 3], strides: [1, 1], pad: 'valid', dataFormat: 'NCHW' },
  ];
  while (out.length < n) {
    const kh = rng.int(1, 4), kw = rng.int(1, 4);
    const padKind = rng.pick(['same', 'valid', 'explicit'] as const);
    const pad: Pad = padKind !== 'explicit' ? padKind : [[0, 0], [rng.int(0, 2), rng.int(0, 2)], [rng.int(0, 2), rng.int(0, 2)], [0, 0]];
    const ci = rng.pick([1, 3, 5, 16, 20]);
    const c: ConvCase = {
      xShape: [rng.pick([1, 1, 2, 3]), rng.int(1, 17), rng.int(1, 17), ci], filterShape: [kh, kw, ci, rng.int(1, 18)],
      strides: [rng.int(1, 2), rng.int(1, 2)], pad, dataFormat: 'NHWC',
    };
    try {
      const info = convInfo(c);
      if (info.outHeight < 1 || info.outWidth < 1) continue;
    } catch {
      continue;
    }
    out.push(c);
  }
  return out;
}

function run(kernel: string, inputs: Record<string, tf.Tensor>, attrs: object): tf.Tensor {
  return tf.engine().runKernel(kernel, inputs as unknown as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor;
}

/** Runs `f` on `backend` and returns its outputs' values (read outside the tidy). */
async function valuesOn(backend: 'cpu' | 'wasm' | 'wasm-native', f: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await initBackend({ name: backend });
  const out = tf.tidy(f);
  const list = Array.isArray(out) ? out : [out];
  const values = list.map((t) => Float32Array.from(t.dataSync() as ArrayLike<number>));
  tf.dispose(list);
  return values;
}

function nativeCalls(kernel: string): number {
  return nativeKernelStats().get(kernel)?.calls ?? 0;
}

function check(name: string, got: Float32Array, ref: Float32Array, what: string): void {
  const d = relDiff(got, ref);
  table.add(name, d);
  assert.ok(d <= TOL, `${name} ${what}: relative difference ${d}`);
}

after(() => {
  process.stdout.write(`\n  native kernel parity, max relative difference wasm-native vs cpu:\n${table.format()}\n`);
});

describe('backend: native kernels (wasm-native) vs cpu', function () {
  restoreBackendAfter();
  this.timeout(60_000);
  let info: BackendInfo;

  before(async () => {
    info = await initBackend({ name: 'wasm-native' });
    setNativeOptions({ minFlops: 0 }); // every call native, however small
  });
  after(() => disableNativeKernels());

  it('reports wasm with native kernels and registers them for wasm', () => {
    assert.equal(info.name, 'wasm');
    assert.match(info.native ?? '', /^onnxruntime-node 1\.30\.\d+ \(\d+ threads?\)$/);
    assert.match(describeBackend(info), /^backend: wasm \(.*; native kernels: onnxruntime-node 1\.30/);
    for (const k of NATIVE_KERNELS) assert.equal(tf.getKernel(k.kernelName, 'wasm'), k, k.kernelName);
  });

  it('Conv2D (both variants), Conv2DBackpropInput, Conv2DBackpropFilter match cpu', async () => {
    const seen = new Set<string>();
    for (const [i, c] of convCases(5, 40).entries()) {
      const ci = convInfo(c);
      const dyShape = ci.outShape;
      const [x, w, dy] = await Promise.all([cpuData(c.xShape, 100 + i), cpuData(c.filterShape, 200 + i), cpuData(dyShape, 300 + i)]);
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: c.dataFormat };
      const compute = (): tf.Tensor[] => [
        run('Conv2D', { x: tf.tensor(x, c.xShape), filter: tf.tensor(w, c.filterShape) }, { ...attrs, dilations: [1, 1] }),
        run('Conv2DBackpropInput', { dy: tf.tensor(dy, dyShape), filter: tf.tensor(w, c.filterShape) }, { ...attrs, inputShape: c.xShape }),
        run('Conv2DBackpropFilter', { x: tf.tensor(x, c.xShape), dy: tf.tensor(dy, dyShape) }, { ...attrs, filterShape: c.filterShape }),
      ];
      const ref = await valuesOn('cpu', compute);
      for (const variant of c.dataFormat === 'NHWC' ? (['conv', 'im2col'] as const) : (['conv'] as const)) {
        await initBackend({ name: 'wasm-native' });
        setNativeOptions({ convVariant: variant });
        const calls = ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'].map(nativeCalls);
        const got = await valuesOn('wasm-native', compute);
        setNativeOptions({ convVariant: null });
        ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'].forEach((k, j) =>
          assert.equal(nativeCalls(k), calls[j] + 1, `${k} ran natively`));
        check(`Conv2D (${variant})`, got[0], ref[0], label(c));
        const dx = chooseBackpropInputVariant(ci, null, nativeKernelStatus()?.nchwcBlock ?? null);
        check(`Conv2DBackpropInput (${dx})`, got[1], ref[1], label(c));
        check(`Conv2DBackpropFilter (${chooseBackpropFilterVariant(ci)})`, got[2], ref[2], label(c));
        seen.add(`fw:${variant}`).add(`dx:${dx}`).add(`dw:${chooseBackpropFilterVariant(ci)}`);
      }
    }
    seen.delete('dx:flipNchwc'); // reached here only where a random case has block-aligned channels; its own test below
    assert.deepEqual([...seen].sort(), ['dw:dilconv', 'dw:taps', 'dx:convT', 'dx:flip', 'dx:flipIm2col', 'fw:conv', 'fw:im2col'],
      'the cases reach every graph variant');
  });

  it('Conv2D with dilation and the shape rule of the forward variant', async () => {
    const xShape: Shape4 = [2, 13, 12, 5], fShape: Shape4 = [3, 2, 5, 4];
    const [x, w] = await Promise.all([cpuData(xShape, 11), cpuData(fShape, 12)]);
    const compute = (): tf.Tensor => tf.conv2d(tf.tensor4d(x, xShape), tf.tensor4d(w, fShape), 1, 'same', 'NHWC', [2, 3]);
    const [ref] = await valuesOn('cpu', compute);
    for (const variant of ['conv', 'im2col'] as const) {
      await initBackend({ name: 'wasm-native' });
      setNativeOptions({ convVariant: variant });
      const [got] = await valuesOn('wasm-native', compute);
      check(`Conv2D dilated (${variant})`, got, ref, `x[${xShape}] f[${fShape}] d2,3`);
    }
    setNativeOptions({ convVariant: null });
    const infoOf = (h: number, k: number): tf.backend_util.Conv2DInfo =>
      tf.backend_util.computeConv2DInfo([8, h, h, 64], [k, k, 64, 64], 1, 1, 'same');
    assert.equal(chooseConvVariant(infoOf(56, 3), null), 'conv');
    assert.equal(chooseConvVariant(infoOf(7, 3), null), 'im2col');
    assert.equal(chooseConvVariant(infoOf(56, 1), null), 'im2col');
  });

  it('ORT NCHWc convs (forward and stride-1 input gradient) match cpu: blocked and 3/4-channel inputs, strides, paddings, batch 1 and 16', async function () {
    const block = nativeKernelStatus()?.nchwcBlock ?? null;
    if (block === null) this.skip(); // the probe found no NCHWc kernels: those variants are never chosen
    const b = block!;
    assert.ok([8, 16].includes(b), `block ${b}`);
    const cases: ConvCase[] = [
      { xShape: [1, 9, 7, b], filterShape: [3, 3, b, b], strides: [1, 1], pad: 'same', dataFormat: 'NHWC' },
      { xShape: [16, 5, 6, 2 * b], filterShape: [3, 3, 2 * b, b], strides: [2, 2], pad: 'valid', dataFormat: 'NHWC' },
      { xShape: [2, 11, 13, 3], filterShape: [7, 7, 3, b], strides: [2, 2], pad: 'same', dataFormat: 'NHWC' },
      { xShape: [1, 6, 5, b], filterShape: [2, 3, b, 2 * b], strides: [1, 1], pad: [[0, 0], [1, 0], [0, 2], [0, 0]], dataFormat: 'NHWC' },
      { xShape: [3, 8, 8, b], filterShape: [1, 1, b, b], strides: [1, 2], pad: 'same', dataFormat: 'NHWC' },
      { xShape: [2, 10, 9, 4], filterShape: [3, 3, 4, b], strides: [1, 1], pad: 'same', dataFormat: 'NHWC' },
      { xShape: [16, 7, 9, 2 * b], filterShape: [3, 3, 2 * b, b], strides: [1, 1], pad: 'valid', dataFormat: 'NHWC' },
    ];
    let dxCases = 0;
    for (const [i, c] of cases.entries()) {
      const ci = convInfo(c);
      const [x, w, dy, bias] = await Promise.all([cpuData(c.xShape, 400 + i), cpuData(c.filterShape, 500 + i), cpuData(ci.outShape, 600 + i), cpuData([c.filterShape[3]], 700 + i)]);
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: c.dataFormat };
      const compute = (): tf.Tensor[] => [
        run('Conv2D', { x: tf.tensor(x, c.xShape), filter: tf.tensor(w, c.filterShape) }, { ...attrs, dilations: [1, 1] }),
        tf.fused.conv2d({ x: tf.tensor4d(x, c.xShape), filter: tf.tensor4d(w, c.filterShape), strides: c.strides, pad: c.pad, bias: tf.tensor1d(bias), activation: 'relu' }),
        run('Conv2DBackpropInput', { dy: tf.tensor(dy, ci.outShape), filter: tf.tensor(w, c.filterShape) }, { ...attrs, inputShape: c.xShape }),
      ];
      const ref = await valuesOn('cpu', compute);
      await initBackend({ name: 'wasm-native' });
      setNativeOptions({ convVariant: 'nchwc', backpropInputVariant: 'flipNchwc' });
      try {
        assert.equal(chooseConvVariant(ci, 'nchwc', b), 'nchwc', label(c));
        const dxVariant = chooseBackpropInputVariant(ci, 'flipNchwc', b);
        const calls = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput'].map(nativeCalls);
        const got = await valuesOn('wasm-native', compute);
        ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput'].forEach((k, j) => assert.equal(nativeCalls(k), calls[j] + 1, `${k} ran natively`));
        check('Conv2D (nchwc)', got[0], ref[0], label(c));
        check('FusedConv2D + bias + relu (nchwc)', got[1], ref[1], label(c));
        check(`Conv2DBackpropInput (${dxVariant})`, got[2], ref[2], label(c));
        if (dxVariant === 'flipNchwc') dxCases++;
      } finally {
        setNativeOptions({ convVariant: null, backpropInputVariant: null });
      }
    }
    assert.ok(dxCases >= 3, `${dxCases} cases reached the NCHWc input gradient`);
    // The shape rule: NCHWc where it pays, im2col for 1x1 and for wide filters on few positions, plain Conv without a block size.
    const infoOf = (h: number, k: number, ch: number): tf.backend_util.Conv2DInfo =>
      tf.backend_util.computeConv2DInfo([8, h, h, ch], [k, k, ch, ch], 1, 1, 'same');
    assert.equal(chooseConvVariant(infoOf(32, 3, 32), null, 16), 'nchwc');
    assert.equal(chooseBackpropInputVariant(infoOf(32, 3, 32), null, 16), 'flipNchwc');
    assert.equal(chooseConvVariant(infoOf(4, 3, 512), null, 16), 'im2col');
    assert.equal(chooseBackpropInputVariant(infoOf(8, 3, 256), null, 16), 'flipIm2col');
    assert.equal(chooseConvVariant(infoOf(32, 1, 32), null, 16), 'im2col');
    assert.equal(chooseConvVariant(infoOf(56, 3, 24), null, 16), 'conv');
    assert.equal(chooseConvVariant(infoOf(56, 3, 32), null, null), 'conv');
  });

  it('the NCHWc block size is checked by a conv, not only probed: a wrong block turns the NCHWc graphs off', function () {
    const block = nativeKernelStatus()?.nchwcBlock ?? null;
    if (block === null) this.skip();
    const runtime = loadOrtRuntime(1, selfTestGraph);
    try {
      assert.deepEqual(nchwcBlockSize(runtime), { block, reason: '' });
      for (const wrong of [4, 8, 16].filter((b) => b !== block)) {
        runtime.probeNchwcBlock = () => ({ block: wrong, reason: '' }); // what a misread probe would say
        const got = nchwcBlockSize(runtime);
        assert.equal(got.block, null, `block ${wrong} must fail the self-test on a block-${block} CPU`);
        assert.match(got.reason, new RegExp(`^block ${wrong}: `));
      }
    } finally {
      runtime.dispose();
    }
  });

  it('FusedConv2D with bias and each supported activation matches cpu; PReLU falls back to wasm', async () => {
    const xShape: Shape4 = [3, 10, 9, 6], fShape: Shape4 = [3, 3, 6, 7];
    const [x, w, b, p] = await Promise.all([cpuData(xShape, 21), cpuData(fShape, 22), cpuData([7], 23), cpuData([7], 24)]);
    for (const activation of ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'] as const) {
      for (const strides of [1, 2] as const) {
        const compute = (): tf.Tensor => tf.fused.conv2d({
          x: tf.tensor4d(x, xShape), filter: tf.tensor4d(w, fShape), strides, pad: 'same', bias: tf.tensor1d(b),
          activation, preluActivationWeights: activation === 'prelu' ? tf.tensor1d(p) : undefined, leakyreluAlpha: 0.15,
        });
        const ref = (await valuesOn('cpu', compute))[0];
        await initBackend({ name: 'wasm-native' });
        const before = nativeCalls('FusedConv2D');
        const [got] = await valuesOn('wasm-native', compute);
        assert.equal(nativeCalls('FusedConv2D'), before + (activation === 'prelu' ? 0 : 1), `${activation}: native iff supported`);
        check('FusedConv2D', got, ref, `${activation} stride ${strides}`);
      }
    }
  });

  it('BatchMatMul and _FusedMatMul match cpu (ranks 2-4, transposes, broadcast batch, bias + relu)', async () => {
    const cases: Array<{ a: number[]; b: number[]; ta: boolean; tb: boolean }> = [
      { a: [16, 33], b: [33, 7], ta: false, tb: false },
      { a: [33, 16], b: [7, 33], ta: true, tb: true },
      { a: [1, 5], b: [5, 1], ta: false, tb: false },
      { a: [3, 9, 4], b: [3, 4, 6], ta: false, tb: false },
      { a: [2, 3, 4, 9], b: [2, 3, 11, 4], ta: true, tb: true },
      { a: [1, 5, 4], b: [3, 4, 6], ta: false, tb: false },
      { a: [2, 3, 5, 4], b: [4, 6], ta: false, tb: false },
      { a: [4, 7, 8], b: [8, 5], ta: false, tb: false },
    ];
    for (const [i, c] of cases.entries()) {
      const [a, b] = await Promise.all([cpuData(c.a, 40 + i), cpuData(c.b, 50 + i)]);
      const compute = (): tf.Tensor => tf.matMul(tf.tensor(a, c.a), tf.tensor(b, c.b), c.ta, c.tb);
      const [ref] = await valuesOn('cpu', compute);
      await initBackend({ name: 'wasm-native' });
      const before = nativeCalls('BatchMatMul');
      const [got] = await valuesOn('wasm-native', compute);
      assert.equal(nativeCalls('BatchMatMul'), before + 1, 'ran natively');
      check('BatchMatMul', got, ref, `a[${c.a}]${c.ta ? 'T' : ''} b[${c.b}]${c.tb ? 'T' : ''}`);
    }
    const [a, b, bias] = await Promise.all([cpuData([12, 20], 60), cpuData([9, 20], 61), cpuData([9], 62)]);
    const fused = (): tf.Tensor => tf.fused.matMul({
      a: tf.tensor2d(a, [12, 20]), b: tf.tensor2d(b, [9, 20]), transposeB: true, bias: tf.tensor1d(bias), activation: 'relu',
    });
    const [ref] = await valuesOn('cpu', fused);
    await initBackend({ name: 'wasm-native' });
    const before = nativeCalls('_FusedMatMul');
    const [got] = await valuesOn('wasm-native', fused);
    assert.equal(nativeCalls('_FusedMatMul'), before + 1, 'ran natively');
    check('_FusedMatMul', got, ref, 'a[12,20] b[9,20]T bias relu');
  });

  it('gradients of a conv + dense network match cpu', async () => {
    const xShape: Shape4 = [4, 12, 12, 3];
    const [x, w1, w2, w3] = await Promise.all([
      cpuData(xShape, 71), cpuData([3, 3, 3, 16], 72), cpuData([3, 3, 16, 20], 73), cpuData([3 * 3 * 20, 5], 74)]);
    const compute = (): tf.Tensor[] => {
      const vars = [tf.tensor4d(w1, [3, 3, 3, 16]), tf.tensor4d(w2, [3, 3, 16, 20]), tf.tensor2d(w3, [180, 5])];
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor): tf.Scalar => {
        const h1 = tf.relu(tf.conv2d(tf.tensor4d(x, xShape), a as tf.Tensor4D, 2, 'same')); // [4, 6, 6, 16]
        const h2 = tf.relu(tf.conv2d(h1, b as tf.Tensor4D, 2, 'same')); // [4, 3, 3, 20]
        const logits = tf.matMul(tf.reshape(h2, [4, 180]), c as tf.Tensor2D); // [4, 5]
        return tf.mean(tf.square(logits));
      };
      const { value, grads } = tf.valueAndGrads(f)(vars);
      return [value, ...grads];
    };
    const ref = await valuesOn('cpu', compute);
    const got = await valuesOn('wasm-native', compute);
    ['loss', 'dL/dw1', 'dL/dw2', 'dL/dw3'].forEach((name, i) => check(`gradient ${name}`, got[i], ref[i], 'conv+dense'));
  });

  it('leaves calls below the FLOP threshold to the wasm kernel', async () => {
    await initBackend({ name: 'wasm-native' });
    const a = tf.randomNormal([16, 16]);
    const before = nativeCalls('BatchMatMul');
    setNativeOptions({ minFlops: 2 * 16 ** 3 + 1 });
    const small = tf.matMul(a, a);
    assert.equal(nativeCalls('BatchMatMul'), before, 'below the threshold: wasm');
    setNativeOptions({ minFlops: 2 * 16 ** 3 });
    const large = tf.matMul(a, a);
    assert.equal(nativeCalls('BatchMatMul'), before + 1, 'at the threshold: native');
    setNativeOptions({ minFlops: 0 });
    assert.ok(relDiff(large.dataSync(), small.dataSync()) <= TOL);
    tf.dispose([a, small, large]);
  });

  it('leaks no tensors and reuses one session per shape', async () => {
    await initBackend({ name: 'wasm-native' });
    const x = tf.randomNormal([2, 8, 8, 4]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 4, 5]) as tf.Tensor4D;
    const step = (): void => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')))([x, w]);
      tf.dispose(g);
    };
    step();
    const tensors = tf.memory().numTensors, ids = tf.backend().numDataIds(), sessions = nativeSessionCount();
    for (let i = 0; i < 5; i++) step();
    assert.equal(tf.memory().numTensors, tensors, 'tensors');
    assert.equal(tf.backend().numDataIds(), ids, 'wasm buffers');
    assert.equal(nativeSessionCount(), sessions, 'sessions');
    tf.dispose([x, w]);
  });

  it('with 1 wasm thread (unshared heap: ORT reads and writes wasm memory in place) matches cpu; the process exits', () => {
    // A child process: the wasm thread count is fixed per process, and this one runs 2.
    const backend = path.resolve(__dirname, '../../src/backend');
    const script = `
      const { initBackend, tf, nativeKernelStats } = require(${JSON.stringify(backend)});
      (async () => {
        const x = () => tf.randomNormal([3, 11, 10, 5], 0, 1, 'float32', 1), w = () => tf.randomNormal([3, 3, 5, 7], 0, 1, 'float32', 2);
        const f = () => tf.grads((a, b) => tf.sum(tf.square(tf.conv2d(a, b, [2, 1], 'same'))))([x(), w()]).concat(tf.conv2d(x(), w(), 1, 'valid'));
        const values = async (name, threads) => {
          const info = await initBackend({ name, threads });
          const out = tf.tidy(f);
          const v = out.map((t) => Array.from(t.dataSync()));
          tf.dispose(out);
          return { info, v };
        };
        const ref = await values('cpu');
        const got = await values('wasm-native', 1);
        const shared = tf.backend().wasm.HEAPU8.buffer instanceof SharedArrayBuffer;
        const rel = got.v.map((g, i) => Math.max(...g.map((a, j) => Math.abs(a - ref.v[i][j]))) / Math.max(...ref.v[i].map(Math.abs)));
        const calls = [...nativeKernelStats()].reduce((n, [, s]) => n + s.calls, 0);
        process.stdout.write(JSON.stringify({ native: got.info.native, threads: got.info.threads, shared, rel, calls }));
      })();`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 40_000, env: { ...process.env, HOI2ANOMALY_LOG: 'warn' } });
    assert.equal(r.status, 0, `child failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { native?: string; threads: number; shared: boolean; rel: number[]; calls: number };
    assert.match(out.native ?? '', /onnxruntime-node 1\.30\.\d+ \(1 thread\)/);
    assert.equal(out.threads, 1);
    assert.equal(out.shared, false, 'the single-threaded wasm heap is a plain ArrayBuffer');
    assert.equal(out.calls, 4, 'the strided conv, its two gradients and the valid conv: native');
    out.rel.forEach((d, i) => {
      table.add('1 wasm thread, in place (conv, dx, dw)', d);
      assert.ok(d <= TOL, `output ${i}: ${d}`);
    });
  });

  it('falls back to plain wasm with one log line when native kernels are unavailable; same results as wasm', async () => {
    const xShape: Shape4 = [2, 9, 9, 6], fShape: Shape4 = [3, 3, 6, 8];
    const [x, w] = await Promise.all([cpuData(xShape, 81), cpuData(fShape, 82)]);
    const compute = (): tf.Tensor[] => {
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'))))(
        [tf.tensor4d(x, xShape), tf.tensor4d(w, fShape)]);
      return [dx, dw, tf.matMul(tf.tensor2d(x.subarray(0, 54), [9, 6]), tf.tensor2d(w.subarray(0, 48), [6, 8]))];
    };
    const plain = await valuesOn('wasm', compute);
    for (const k of NATIVE_KERNELS) assert.notEqual(tf.getKernel(k.kernelName, 'wasm'), k, `plain wasm: ${k.kernelName} is not native`);
    const warnings: string[] = [];
    const warn = log.warn.bind(log);
    const saved = process.env.HOI2ANOMALY_NATIVE;
    process.env.HOI2ANOMALY_NATIVE = 'off';
    disableNativeKernels(); // as in a fresh process: the next request loads ORT again
    log.warn = (m: string): void => { warnings.push(m); };
    let fallback: BackendInfo;
    try {
      fallback = await initBackend({ name: 'wasm-native' });
    } finally {
      log.warn = warn;
      if (saved === undefined) delete process.env.HOI2ANOMALY_NATIVE;
      else process.env.HOI2ANOMALY_NATIVE = saved;
    }
    assert.equal(fallback.name, 'wasm');
    assert.equal(fallback.native, undefined);
    assert.deepEqual(warnings, ['native kernels unavailable (disabled by HOI2ANOMALY_NATIVE=off); using wasm']);
    for (const k of NATIVE_KERNELS) assert.notEqual(tf.getKernel(k.kernelName, 'wasm'), k, `fallback: ${k.kernelName} is not native`);
    const out = tf.tidy(compute);
    const got = out.map((t) => Float32Array.from(t.dataSync()));
    tf.dispose(out);
    got.forEach((g, i) => assert.deepEqual(g, plain[i], `fallback output ${i} identical to plain wasm`));
    // and back on: the next request enables them again
    const again = await initBackend({ name: 'wasm-native' });
    assert.ok(again.native !== undefined, 'native kernels on again');
    for (const k of NATIVE_KERNELS) assert.equal(tf.getKernel(k.kernelName, 'wasm'), k, k.kernelName);
    setNativeOptions({ minFlops: 0 });
  });
});
