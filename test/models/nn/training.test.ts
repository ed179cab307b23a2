/**
 * Training-mode behaviour: gradients reach every trainable parameter, batch-norm statistics and
 * their momentum update (hand-computed), seeded dropout.
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../../src/backend/tf';
import {
  AvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, Embedding, GlobalAvgPool, LayerNorm, Linear, MaxPool2d, Module,
  ReLU, Sequential, TransformerBlock, Upsample, deriveSeed,
} from '../../../src/models/nn';
import { OnnxGraph } from '../../../src/export/onnx_graph';
import { randInt, randn } from './parity_helpers';

/** Conv stack + transformer on the pooled tokens: every layer type with parameters. */
class Everything extends Module {
  readonly convs: Sequential;
  readonly up: ConvTranspose2d;
  readonly tok: Embedding;
  readonly block: TransformerBlock;
  readonly ln: LayerNorm;
  readonly head: Linear;
  constructor(seed: number) {
    super();
    this.convs = this.registerModule('convs', new Sequential([
      new Conv2d(3, 8, { kernelSize: 3, padding: 'same', seed: deriveSeed(seed, 'c0') }),
      new BatchNorm2d(8),
      new ReLU(),
      new MaxPool2d({ kernelSize: 2 }),
      new Conv2d(8, 8, { kernelSize: 3, stride: 2, padding: 'same', seed: deriveSeed(seed, 'c1') }),
      new Upsample({ scaleFactor: 2, mode: 'bilinear' }),
      new AvgPool2d({ kernelSize: 2 }),
    ]));
    this.up = this.registerModule('up', new ConvTranspose2d(8, 8, { kernelSize: 2, stride: 2, seed: deriveSeed(seed, 'up') }));
    this.tok = this.registerModule('tok', new Embedding(5, 8, { seed: deriveSeed(seed, 'tok') }));
    this.block = this.registerModule('block', new TransformerBlock(8, { numHeads: 2, seed: deriveSeed(seed, 'block') }));
    this.ln = this.registerModule('ln', new LayerNorm(8));
    this.head = this.registerModule('head', new Linear(8, 3, { seed: deriveSeed(seed, 'head') }));
  }
  forward(img: tf.Tensor4D, ids: tf.Tensor2D): tf.Tensor {
    return tf.tidy(() => {
      const f = this.up.forward(this.convs.forward(img) as tf.Tensor4D); // [B, 4, 4, 8] for 8x8 input
      const [b, h, w, c] = f.shape;
      const vis = f.reshape([b, h * w, c]); // [B, HW, C]
      const x = tf.concat([vis, this.tok.forward(ids)], 1) as tf.Tensor3D; // [B, HW + T, C]
      return this.head.forward(this.ln.forward(this.block.forward(x, { prefixLen: h * w })));
    });
  }
  toOnnx(_g: OnnxGraph): string {
    throw new Error('not exported in this test');
  }
}

describe('nn training mode', function () {
  this.timeout(30000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('gradients reach every trainable parameter (tf.variableGrads)', () => {
    const m = new Everything(1);
    m.train();
    const img = randn([2, 8, 8, 3], 1);
    const ids = randInt([2, 3], 5, 2) as tf.Tensor2D;
    const vars = m.trainableVariables();
    const names = [...m.namedParameters().keys()];
    assert.equal(vars.length, names.length);
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(m.forward(img as tf.Tensor4D, ids))) as tf.Scalar, vars);
    assert.ok(Number.isFinite(value.dataSync()[0]));
    const byId = new Map(vars.map((v, i) => [v.name, names[i]]));
    assert.equal(Object.keys(grads).length, vars.length);
    for (const [id, g] of Object.entries(grads)) {
      const v = vars.find((x) => x.name === id)!;
      assert.deepEqual(g.shape, v.shape, `${byId.get(id)}: gradient shape`);
      const d = g.dataSync();
      assert.ok(d.every(Number.isFinite), `${byId.get(id)}: finite gradient`);
      assert.ok(d.some((x) => x !== 0), `${byId.get(id)}: non-zero gradient`);
    }
    tf.dispose([value, img, ids, ...Object.values(grads)]);
    m.dispose();
  });

  it('Conv2d with bias (one FusedConv2D kernel; dilated: conv + add) has the values and gradients of conv + add', async () => {
    for (const [label, opts] of [
      ['k3 s2 same', { kernelSize: 3, stride: 2, padding: 'same' as const }],
      ['k1 valid', { kernelSize: 1 }],
      ['k3 d2 same (dilated: tfjs has no fused gradient for it)', { kernelSize: 3, dilation: 2, padding: 'same' as const }],
    ] as const) {
      const conv = new Conv2d(3, 4, { ...opts, seed: 5 });
      const x = randn([2, 7, 6, 3], 9) as tf.Tensor4D;
      const upstream = randn(conv.forward(x).shape, 10);
      const loss = (f: () => tf.Tensor) => (): tf.Scalar => tf.sum(tf.mul(f(), upstream));
      const vars = [conv.weight, conv.bias!];
      const fused = tf.variableGrads(loss(() => conv.forward(x)), vars);
      const ref = tf.variableGrads(loss(() => tf.add(tf.conv2d(x, conv.weight as tf.Tensor4D, conv.stride, opts.padding ?? 'valid', 'NHWC', conv.dilation), conv.bias!)), vars);
      const maxDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
      assert.ok(Math.abs(fused.value.dataSync()[0] - ref.value.dataSync()[0]) < 1e-4, `${label}: loss`);
      for (const v of vars) assert.ok(maxDiff(fused.grads[v.name], ref.grads[v.name]) < 1e-4, `${label}: gradient of ${v.name}`);
      const names = (await tf.profile(() => conv.forward(x))).kernels.map((k) => k.name).filter((n) => !n.endsWith('__op')); // not the custom-gradient scope
      const dilated = 'dilation' in opts;
      assert.deepEqual(names, dilated ? ['Conv2D', 'Add'] : ['FusedConv2D'], `${label}: kernels ${names}`);
      tf.dispose([x, upstream, fused.value, ref.value, ...Object.values(fused.grads), ...Object.values(ref.grads)]);
      conv.dispose();
    }
  });

  it('BatchNorm2d training: batch statistics and the momentum update (hand-computed)', () => {
    const bn = new BatchNorm2d(2, { momentum: 0.1, eps: 1e-5 });
    bn.train();
    // Channel 0 values 1, 2, 3, 6 (mean 3, biased var 3.5, unbiased 14/3); channel 1 all 4.
    const x = tf.tensor4d([1, 4, 2, 4, 3, 4, 6, 4], [2, 1, 2, 2]);
    const y = tf.tidy(() => bn.forward(x)).dataSync();
    const s = Math.sqrt(3.5 + 1e-5);
    const expectY = [(1 - 3) / s, 0, (2 - 3) / s, 0, 0, 0, (6 - 3) / s, 0];
    y.forEach((v, i) => assert.ok(Math.abs(v - expectY[i]) < 1e-5, `y[${i}] = ${v}, expected ${expectY[i]}`));
    const rm = Array.from(bn.runningMean.dataSync());
    const rv = Array.from(bn.runningVar.dataSync());
    assert.ok(Math.abs(rm[0] - 0.3) < 1e-6 && Math.abs(rm[1] - 0.4) < 1e-6, `running_mean ${rm}`);
    assert.ok(Math.abs(rv[0] - (0.9 + 0.1 * 14 / 3)) < 1e-6 && Math.abs(rv[1] - 0.9) < 1e-6, `running_var ${rv}`);
    // Eval uses the running statistics: (1 - 0.3) / sqrt(rv0).
    bn.eval();
    const ye = tf.tidy(() => bn.forward(x)).dataSync();
    assert.ok(Math.abs(ye[0] - (1 - 0.3) / Math.sqrt(rv[0] + 1e-5)) < 1e-5);
    assert.deepEqual(Array.from(bn.runningMean.dataSync()), rm, 'eval does not update the statistics');
    // The update is not part of any gradient and leaves the buffers out of trainableVariables.
    assert.equal(bn.trainableVariables().length, 2);
    x.dispose();
    bn.dispose();
  });

  it('Dropout: seeded masks, new mask per call, scaling 1/(1-p)', () => {
    const x = tf.ones([100, 100]);
    const masks = (seed: number): number[][] => {
      const d = new Dropout(0.25, { seed });
      return [0, 1].map(() => {
        const y = tf.tidy(() => d.forward(x));
        const v = Array.from(y.dataSync());
        y.dispose();
        return v;
      });
    };
    const [a1, a2] = masks(7);
    const [b1] = masks(7);
    const [c1] = masks(8);
    assert.deepEqual(a1, b1, 'same seed, same first mask');
    assert.notDeepEqual(a1, a2, 'the mask changes from call to call');
    assert.notDeepEqual(a1, c1, 'another seed, another mask');
    const kept = a1.filter((v) => v !== 0);
    assert.ok(kept.every((v) => Math.abs(v - 1 / 0.75) < 1e-6), 'kept values scaled by 1/(1-p)');
    const dropRate = 1 - kept.length / a1.length;
    assert.ok(Math.abs(dropRate - 0.25) < 0.02, `drop rate ${dropRate}`);
    x.dispose();
  });

  it('GlobalAvgPool and the pooling layers have no parameters', () => {
    for (const m of [new GlobalAvgPool(), new MaxPool2d({ kernelSize: 2 }), new AvgPool2d({ kernelSize: 2 }), new Upsample({ scaleFactor: 2 })]) {
      assert.equal(m.namedParameters().size, 0);
    }
  });
});
