/**
 * The Module system: pinned parameter paths (checkpoint keys = ONNX initializer names), state
 * dicts and their errors, seeded initialization, train/eval, freezing, disposal, no leaks.
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../../src/backend/tf';
import { CheckpointError, ShapeError } from '../../../src/errors';
import { OnnxGraph } from '../../../src/export/onnx_graph';
import { decodeModel } from '../../../src/export/onnx_proto';
import {
  BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, Embedding, GlobalAvgPool, KVCache, LayerNorm, Linear, MaxPool2d, Module,
  MultiHeadAttention, ReLU, Sequential, TransformerBlock, Upsample, deriveSeed, init,
} from '../../../src/models/nn';
import { Rng } from '../../../src/data/rng';
import { feed, maxAbsDiff, nhwcToNchw, randInt, randn, runOrt } from './parity_helpers';

class Block extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  constructor(c: number, seed: number) {
    super();
    this.conv1 = this.registerModule('conv1', new Conv2d(c, c, { kernelSize: 3, padding: 'same', seed: deriveSeed(seed, 'conv1') }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(c));
    this.conv2 = this.registerModule('conv2', new Conv2d(c, c, { kernelSize: 1, bias: false, seed: deriveSeed(seed, 'conv2') }));
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.relu(tf.add(x, this.conv2.forward(tf.relu(this.bn1.forward(this.conv1.forward(x))))))) as tf.Tensor4D;
  }
  toOnnx(g: OnnxGraph, x: string): string {
    const o = g.ops(this.path());
    return o.Relu(o.Add(x, this.conv2.toOnnx(g, o.Relu(this.bn1.toOnnx(g, this.conv1.toOnnx(g, x))))));
  }
}

class Net extends Module {
  readonly stem: Sequential;
  readonly layer1: Sequential;
  readonly pool: GlobalAvgPool;
  readonly head: Linear;
  constructor(seed: number) {
    super();
    this.stem = this.registerModule('stem', new Sequential([
      new Conv2d(3, 4, { kernelSize: 3, stride: 2, padding: 'same', seed: deriveSeed(seed, 'stem') }),
      new BatchNorm2d(4),
      new ReLU(),
    ]));
    this.layer1 = this.registerModule('layer1', new Sequential([new Block(4, deriveSeed(seed, 'l1', 0)), new Block(4, deriveSeed(seed, 'l1', 1))]));
    this.pool = this.registerModule('pool', new GlobalAvgPool());
    this.head = this.registerModule('head', new Linear(4, 2, { seed: deriveSeed(seed, 'head') }));
  }
  forward(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.head.forward(this.pool.forward(this.layer1.forward(this.stem.forward(x)) as tf.Tensor4D)) as tf.Tensor2D);
  }
  toOnnx(g: OnnxGraph, x: string): string {
    return this.head.toOnnx(g, this.pool.toOnnx(g, this.layer1.toOnnx(g, this.stem.toOnnx(g, x))));
  }
}

const PARAMS = [
  'stem.0.weight', 'stem.0.bias', 'stem.1.weight', 'stem.1.bias',
  'layer1.0.conv1.weight', 'layer1.0.conv1.bias', 'layer1.0.bn1.weight', 'layer1.0.bn1.bias', 'layer1.0.conv2.weight',
  'layer1.1.conv1.weight', 'layer1.1.conv1.bias', 'layer1.1.bn1.weight', 'layer1.1.bn1.bias', 'layer1.1.conv2.weight',
  'head.weight', 'head.bias',
];
const BUFFERS = [
  'stem.1.running_mean', 'stem.1.running_var',
  'layer1.0.bn1.running_mean', 'layer1.0.bn1.running_var',
  'layer1.1.bn1.running_mean', 'layer1.1.bn1.running_var',
];

describe('nn Module', function () {
  this.timeout(30000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('pins the dotted parameter and buffer paths of a nested model', () => {
    const net = new Net(1);
    assert.deepEqual([...net.namedParameters().keys()], PARAMS);
    assert.deepEqual([...net.namedBuffers().keys()], BUFFERS);
    assert.deepEqual([...net.stateDict().keys()], [...PARAMS, ...BUFFERS]);
    assert.equal(net.trainableVariables().length, PARAMS.length);
    assert.deepEqual(net.namedParameters().get('layer1.1.conv1.weight')?.shape, [3, 3, 4, 4]);
    assert.equal(net.layer1.layers[1].path(), 'layer1.1');
    assert.equal((net.layer1.layers[1] as Block).conv2.paramPath('weight'), 'layer1.1.conv2.weight');
    // 3*3*3*4+4 + 4+4 + 2*(3*3*4*4+4 + 4+4 + 4*4) + 4*2+2
    assert.equal(net.numParameters(), 112 + 8 + 2 * (148 + 8 + 16) + 10);
    net.dispose();
  });

  it('pins the GPT-2 style names of a transformer block', () => {
    const b = new TransformerBlock(8, { numHeads: 2, seed: 1 });
    assert.deepEqual([...b.namedParameters().keys()], [
      'ln_1.weight', 'ln_1.bias', 'attn.c_attn.weight', 'attn.c_attn.bias', 'attn.c_proj.weight', 'attn.c_proj.bias',
      'ln_2.weight', 'ln_2.bias', 'mlp.c_fc.weight', 'mlp.c_fc.bias', 'mlp.c_proj.weight', 'mlp.c_proj.bias',
    ]);
    b.dispose();
  });

  it('ONNX initializer names are the state-dict keys, and the nested model matches onnxruntime', async () => {
    const net = new Net(2);
    net.eval();
    const g = new OnnxGraph('net');
    const x = g.input('x', ['batch', 3, 'h', 'w']);
    g.output('logits', ['batch', 2], 'float32', { from: net.toOnnx(g, x) });
    const bytes = g.toModelProto();
    const model = decodeModel(bytes);
    const names = (model.graph?.initializer ?? []).map((t) => t.name ?? '');
    const weights = names.filter((n) => !n.startsWith('const_'));
    assert.deepEqual([...weights].sort(), [...PARAMS, ...BUFFERS].sort());
    // Conv weights are written OIHW: stem.0.weight is [4, 3, 3, 3].
    assert.deepEqual(model.graph?.initializer?.find((t) => t.name === 'stem.0.weight')?.dims, [4, 3, 3, 3]);
    const xt = randn([2, 12, 10, 3], 3);
    const y = tf.tidy(() => net.forward(xt as tf.Tensor4D));
    const xn = tf.tidy(() => nhwcToNchw(xt));
    const out = await runOrt(bytes, { x: feed(xn) });
    assert.ok(maxAbsDiff(out.logits.data, y.dataSync()) <= 1e-4);
    tf.dispose([xt, y, xn]);
    net.dispose();
  });

  it('loadStateDict: round trip, and errors listing missing / unexpected / mismatched keys', () => {
    const a = new Net(3);
    const b = new Net(4);
    const w = (m: Module, k: string): number[] => Array.from(m.stateDict().get(k)!.dataSync());
    assert.notDeepEqual(w(a, 'head.weight'), w(b, 'head.weight'));
    b.loadStateDict(a.stateDict());
    for (const k of [...PARAMS, ...BUFFERS]) assert.deepEqual(w(b, k), w(a, k), k);
    // Loading a module's own state (shared data) keeps the values alive.
    b.loadStateDict(b.stateDict());
    a.loadStateDict(b.stateDict());
    for (const k of [...PARAMS, ...BUFFERS]) assert.deepEqual(w(b, k), w(a, k), k);

    const before = w(b, 'stem.0.bias');
    const partial = new Map(a.stateDict());
    partial.delete('head.bias');
    partial.delete('stem.1.running_var');
    const extra = tf.zeros([3]);
    partial.set('head.extra', extra);
    assert.throws(() => b.loadStateDict(partial), (e: unknown) => {
      assert.ok(e instanceof CheckpointError);
      assert.match(e.message, /missing keys \(2\): head\.bias, stem\.1\.running_var/);
      assert.match(e.message, /unexpected keys \(1\): head\.extra/);
      return true;
    });
    // Non-strict: loads what fits, reports the rest.
    const res = b.loadStateDict(partial, { strict: false });
    assert.deepEqual(res, { missing: ['head.bias', 'stem.1.running_var'], unexpected: ['head.extra'] });

    const wrong = new Map(a.stateDict());
    const bad = tf.zeros([4, 3]);
    wrong.set('head.weight', bad);
    const zeroBias = tf.zeros([4]);
    wrong.set('stem.0.bias', zeroBias);
    assert.throws(() => b.loadStateDict(wrong, { strict: false }), (e: unknown) => {
      assert.ok(e instanceof CheckpointError);
      assert.match(e.message, /shape mismatches \(1\): head\.weight: expected \[4,2\], found \[4,3\]/);
      return true;
    });
    assert.deepEqual(w(b, 'stem.0.bias'), before, 'nothing is assigned when loading fails');
    tf.dispose([extra, bad, zeroBias]);
    a.dispose();
    b.dispose();
  });

  it('seeded initialization: same seed, same weights; other seed, other weights', () => {
    const l1 = new Linear(5, 3, { seed: 42 });
    const l2 = new Linear(5, 3, { seed: 42 });
    const l3 = new Linear(5, 3, { seed: 43 });
    const v = (l: Linear): number[] => Array.from(l.weight.dataSync());
    assert.deepEqual(v(l1), v(l2));
    assert.notDeepEqual(v(l1), v(l3));
    // The values are Rng(42, 'weight') draws in U(-1/sqrt(5), 1/sqrt(5)).
    const rng = new Rng(42, 'weight');
    const bound = 1 / Math.sqrt(5);
    const expect0 = Math.fround(rng.uniform(-bound, bound));
    assert.equal(v(l1)[0], expect0);
    assert.ok(v(l1).every((x) => Math.abs(x) <= bound));
    // Weight and bias of one layer differ (each parameter has its own stream).
    assert.notEqual(v(l1)[0], l1.bias!.dataSync()[0]);
    // Whole models: the same seed gives the same state dict.
    const n1 = new TransformerBlock(8, { numHeads: 2, seed: 7 });
    const n2 = new TransformerBlock(8, { numHeads: 2, seed: 7 });
    for (const [k, t] of n1.stateDict()) assert.deepEqual(Array.from(t.dataSync()), Array.from(n2.stateDict().get(k)!.dataSync()), k);
    // Its two projections are not identical copies.
    assert.notDeepEqual(Array.from(n1.attn.c_proj.weight.dataSync()), Array.from(n1.mlp.c_proj.weight.dataSync()).slice(0, 64));
    // Initializer statistics: N(0, 0.02) embedding.
    const e = new Embedding(100, 50, { seed: 1 });
    const d = Array.from(e.weight.dataSync());
    const mean = d.reduce((s, x) => s + x, 0) / d.length;
    const std = Math.sqrt(d.reduce((s, x) => s + (x - mean) ** 2, 0) / d.length);
    assert.ok(Math.abs(mean) < 0.002 && Math.abs(std - 0.02) < 0.001, `mean ${mean} std ${std}`);
    const u = init.uniform(0.5)([1000], new Rng(1));
    assert.ok(Math.max(...u) <= 0.5 && Math.min(...u) >= -0.5);
    [l1, l2, l3, n1, n2, e].forEach((m) => m.dispose());
  });

  it('train()/eval() reach every module; setTrainable freezes; trainableVariables skips buffers', () => {
    const net = new Net(5);
    net.eval();
    for (const m of net.namedModules().values()) assert.equal(m.training, false);
    net.train();
    for (const m of net.namedModules().values()) assert.equal(m.training, true);
    net.stem.setTrainable(false);
    assert.equal(net.trainableVariables().length, PARAMS.length - 4);
    assert.ok(!net.trainableVariables().includes(net.namedParameters().get('stem.0.weight')!));
    net.dispose();
  });

  it('registration errors and dispose', () => {
    class Twice extends Module {
      constructor() {
        super();
        this.registerModule('a', new ReLU());
        this.registerModule('a', new ReLU());
      }
      forward(): tf.Tensor { return tf.zeros([1]); }
      toOnnx(): string { return ''; }
    }
    assert.throws(() => new Twice(), /'a' is registered twice/);
    const tmp = new Linear(2, 2, { seed: 1 });
    assert.throws(() => tf.tidy(() => { tmp.registerBuffer('x.y', tf.scalar(0)); }), /invalid name 'x.y'/);
    tmp.dispose();
    const lin = new Linear(2, 2, { seed: 1 });
    const seq = new Sequential([lin]);
    assert.throws(() => new Sequential([lin]), /already registered as '0'/);
    seq.dispose();
    const n0 = tf.memory().numTensors;
    const net = new Net(6);
    assert.equal(tf.memory().numTensors, n0 + PARAMS.length + BUFFERS.length);
    net.dispose();
    assert.equal(tf.memory().numTensors, n0);
    assert.throws(() => new Conv2d(2, 2, { kernelSize: 3, stride: 2, dilation: 2 }), /tfjs needs one of them to be 1/);
  });

  it('lazy shape asserts say what was expected and what was found', () => {
    const conv = new Conv2d(3, 4, { kernelSize: 3, seed: 1 });
    const x = tf.zeros([1, 5, 5, 2]) as tf.Tensor4D;
    assert.throws(() => conv.forward(x), (e: unknown) => e instanceof ShapeError && /input \[B,H,W,3\] expected, got \[1,5,5,2\]/.test(e.message));
    const attn = new MultiHeadAttention(8, 2, { seed: 1 });
    const s = tf.zeros([2, 3, 6]) as tf.Tensor3D;
    assert.throws(() => attn.forward(s), /input \[B,T,8\] expected, got \[2,3,6\]/);
    assert.throws(() => new MultiHeadAttention(10, 3), /dim 10 is not divisible by 3 heads/);
    tf.dispose([x, s]);
    conv.dispose();
    attn.dispose();
  });

  it('forward inside tidy leaves no tensors behind (every layer, train and eval)', () => {
    const layers: Array<[string, Module, () => tf.Tensor, unknown?]> = [
      ['Conv2d', new Conv2d(3, 4, { kernelSize: 3, padding: 'same', seed: 1 }), () => randn([2, 6, 6, 3], 1)],
      ['ConvTranspose2d', new ConvTranspose2d(3, 2, { kernelSize: 4, stride: 2, padding: 1, seed: 1 }), () => randn([2, 3, 3, 3], 2)],
      ['BatchNorm2d', new BatchNorm2d(3), () => randn([2, 4, 4, 3], 3)],
      ['LayerNorm', new LayerNorm(5), () => randn([2, 3, 5], 4)],
      ['Linear', new Linear(5, 2, { seed: 1 }), () => randn([2, 3, 5], 5)],
      ['Embedding', new Embedding(7, 3, { seed: 1 }), () => randInt([2, 4], 7, 6)],
      ['MaxPool2d', new MaxPool2d({ kernelSize: 2 }), () => randn([1, 4, 4, 2], 7)],
      ['Upsample', new Upsample({ scaleFactor: 2, mode: 'bilinear' }), () => randn([1, 2, 2, 2], 8)],
      ['Dropout', new Dropout(0.3, { seed: 1 }), () => randn([4, 4], 9)],
      ['MultiHeadAttention', new MultiHeadAttention(8, 2, { seed: 1 }), () => randn([2, 5, 8], 10), { prefixLen: 2 }],
      ['TransformerBlock', new TransformerBlock(8, { numHeads: 2, dropout: 0.1, seed: 1 }), () => randn([2, 5, 8], 11)],
    ];
    for (const [name, m, make, opts] of layers) {
      const x = make();
      for (const mode of [true, false]) {
        m.train(mode);
        const before = tf.memory().numTensors;
        tf.tidy(() => { (m.forward as (x: tf.Tensor, o?: unknown) => tf.Tensor)(x, opts); });
        assert.equal(tf.memory().numTensors, before, `${name} (${mode ? 'train' : 'eval'}) leaked`);
        const y = tf.tidy(() => (m.forward as (x: tf.Tensor, o?: unknown) => tf.Tensor)(x, opts));
        // Identity layers (dropout in eval) return their input itself.
        assert.equal(tf.memory().numTensors, y === x ? before : before + 1, `${name}: only the output survives the tidy`);
        if (y !== x) y.dispose();
      }
      x.dispose();
      m.dispose();
    }
    // The cache keeps exactly its k and v per layer across tidies, and frees them on dispose.
    const attn = new MultiHeadAttention(8, 2, { seed: 2 });
    const cache = new KVCache();
    const x = randn([1, 3, 8], 12);
    const before = tf.memory().numTensors;
    tf.tidy(() => { attn.forward(x as tf.Tensor3D, { cache }); });
    tf.tidy(() => { attn.forward(x.slice([0, 0, 0], [1, 1, 8]) as tf.Tensor3D, { cache }); });
    assert.equal(tf.memory().numTensors, before + 2);
    assert.equal(cache.length, 4);
    cache.dispose();
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
    attn.dispose();
  });
});
