/**
 * ResNet backbones: torchvision parameter names and shapes (an independent re-derivation of
 * torchvision's state_dict keys), parameter counts at width 1, the width multiplier, feature
 * shapes at strides 4/8/16/32, init statistics, seeded determinism, the registry, and ONNX
 * parity of features and pooled/fc outputs against onnxruntime-node (eval, <= 1e-4).
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../../src/backend/tf';
import { ConfigError, ShapeError } from '../../../src/errors';
import { OnnxGraph } from '../../../src/export/onnx_graph';
import { BACKBONE_NAMES, Backbone, createBackbone, scaledWidth } from '../../../src/models/backbones/registry';
import { ResNet } from '../../../src/models/backbones/resnet';
import { feed, maxAbsDiff, nhwcToNchw, parityRecord, randn, record, runOrt } from '../nn/parity_helpers';

const TOL = 1e-4;

/**
 * torchvision's parameter (not buffer) names and PyTorch shapes, written from torchvision's
 * resnet.py independently of the implementation: [name, shape] in state_dict order.
 */
function torchvisionParams(depth: 18 | 34 | 50, withFc: boolean): Array<[string, number[]]> {
  const layers = { 18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3] }[depth];
  const bottleneck = depth === 50;
  const exp = bottleneck ? 4 : 1;
  const out: Array<[string, number[]]> = [];
  const bn = (p: string, c: number): void => {
    out.push([`${p}.weight`, [c]], [`${p}.bias`, [c]]);
  };
  out.push(['conv1.weight', [64, 3, 7, 7]]);
  bn('bn1', 64);
  let inplanes = 64;
  [64, 128, 256, 512].forEach((planes, li) => {
    for (let b = 0; b < layers[li]; b++) {
      const p = `layer${li + 1}.${b}`;
      const stride = b === 0 && li > 0 ? 2 : 1;
      if (bottleneck) {
        out.push([`${p}.conv1.weight`, [planes, inplanes, 1, 1]]);
        bn(`${p}.bn1`, planes);
        out.push([`${p}.conv2.weight`, [planes, planes, 3, 3]]);
        bn(`${p}.bn2`, planes);
        out.push([`${p}.conv3.weight`, [planes * 4, planes, 1, 1]]);
        bn(`${p}.bn3`, planes * 4);
      } else {
        out.push([`${p}.conv1.weight`, [planes, inplanes, 3, 3]]);
        bn(`${p}.bn1`, planes);
        out.push([`${p}.conv2.weight`, [planes, planes, 3, 3]]);
        bn(`${p}.bn2`, planes);
      }
      if (b === 0 && (stride !== 1 || inplanes !== planes * exp)) {
        out.push([`${p}.downsample.0.weight`, [planes * exp, inplanes, 1, 1]]);
        bn(`${p}.downsample.1`, planes * exp);
      }
      inplanes = planes * exp;
    }
  });
  if (withFc) out.push(['fc.weight', [1000, 512 * exp]], ['fc.bias', [1000]]);
  return out;
}

const numel = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** Our in-memory shape of a torchvision parameter: conv OIHW -> HWIO, Linear [out,in] -> [in,out]. */
function ourShape(torchShape: number[]): number[] {
  if (torchShape.length === 4) return [torchShape[2], torchShape[3], torchShape[1], torchShape[0]];
  if (torchShape.length === 2) return [torchShape[1], torchShape[0]];
  return torchShape;
}

function checkTorchvisionLayout(m: Backbone, depth: 18 | 34 | 50, withFc: boolean): void {
  const expected = torchvisionParams(depth, withFc);
  const params = m.namedParameters();
  assert.deepEqual([...params.keys()], expected.map(([n]) => n), `resnet${depth}: parameter names and order follow torchvision`);
  for (const [name, shape] of expected) {
    assert.deepEqual(params.get(name)!.shape, ourShape(shape), `${name}: shape`);
  }
  // Buffers: running statistics of every batch norm (torchvision also has num_batches_tracked).
  const bns = expected.filter(([n, s]) => n.endsWith('.weight') && s.length === 1).map(([n]) => n.slice(0, -'.weight'.length));
  const buffers = [...m.namedBuffers().keys()];
  assert.deepEqual(buffers.sort(), bns.flatMap((b) => [`${b}.running_mean`, `${b}.running_var`]).sort());
}

describe('ResNet backbones (torchvision layout)', function () {
  this.timeout(60000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('registry: the three names, unknown names listed in the error', () => {
    assert.deepEqual([...BACKBONE_NAMES], ['resnet18', 'resnet34', 'resnet50']);
    assert.throws(() => createBackbone('resnet101'), (e: Error) =>
      e instanceof ConfigError && /unknown backbone 'resnet101'; registered backbones: resnet18, resnet34, resnet50/.test(e.message));
    assert.throws(() => createBackbone('resnet18', { width: 0 }), ConfigError);
  });

  it('width multiplier: round(base * w / 8) * 8, at least 8', () => {
    assert.deepEqual([64, 128, 256, 512].map((b) => scaledWidth(b, 1)), [64, 128, 256, 512]);
    assert.deepEqual([64, 128, 256, 512].map((b) => scaledWidth(b, 0.25)), [16, 32, 64, 128]);
    assert.deepEqual([64, 128, 256, 512].map((b) => scaledWidth(b, 0.1)), [8, 16, 24, 48]); // 6.4, 12.8, 25.6, 51.2
    assert.deepEqual([64, 128, 256, 512].map((b) => scaledWidth(b, 0.01)), [8, 8, 8, 8]);
    const r18 = createBackbone('resnet18', { width: 0.25 });
    assert.deepEqual(r18.featureChannels, { c2: 16, c3: 32, c4: 64, c5: 128 });
    assert.deepEqual(r18.namedParameters().get('conv1.weight')!.shape, [7, 7, 3, 16]);
    r18.dispose();
    const r50 = createBackbone('resnet50', { width: 0.125 });
    assert.deepEqual(r50.featureChannels, { c2: 32, c3: 64, c4: 128, c5: 256 });
    assert.deepEqual(r50.namedParameters().get('layer1.0.downsample.0.weight')!.shape, [1, 1, 8, 32]);
    r50.dispose();
  });

  it('resnet18 width 1: torchvision names, shapes and 11,689,512 parameters with fc (11,176,512 without)', () => {
    // Counts from the torchvision shapes alone, without allocating.
    assert.equal(torchvisionParams(18, true).reduce((a, [, s]) => a + numel(s), 0), 11_689_512);
    assert.equal(torchvisionParams(18, false).reduce((a, [, s]) => a + numel(s), 0), 11_176_512);
    const m = createBackbone('resnet18', { numClasses: 1000, seed: 0 });
    assert.deepEqual([...m.namedParameters().keys()].slice(0, 10), [
      'conv1.weight', 'bn1.weight', 'bn1.bias',
      'layer1.0.conv1.weight', 'layer1.0.bn1.weight', 'layer1.0.bn1.bias',
      'layer1.0.conv2.weight', 'layer1.0.bn2.weight', 'layer1.0.bn2.bias',
      'layer1.1.conv1.weight',
    ]);
    assert.equal(m.namedParameters().size, 62);
    assert.equal(m.numParameters(), 11_689_512);
    checkTorchvisionLayout(m, 18, true);
    assert.ok(m.namedParameters().has('layer2.0.downsample.0.weight') && !m.namedParameters().has('layer1.0.downsample.0.weight'));
    // Init: conv N(0, 2 / fan_out) (torchvision kaiming_normal_, fan_out = 64 * 7 * 7), BN ones / zeros.
    const w = m.namedParameters().get('conv1.weight')!.dataSync() as Float32Array;
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    const expectStd = Math.sqrt(2 / (64 * 49)); // 0.02525
    assert.ok(Math.abs(std - expectStd) / expectStd < 0.03 && Math.abs(mean) < 0.001, `conv1 std ${std} (expected ${expectStd}), mean ${mean}`);
    assert.ok(m.namedParameters().get('bn1.weight')!.dataSync().every((v) => v === 1));
    assert.ok(m.namedParameters().get('bn1.bias')!.dataSync().every((v) => v === 0));
    m.dispose();
    const noFc = createBackbone('resnet18');
    assert.equal(noFc.numParameters(), 11_176_512);
    assert.equal(noFc.namedParameters().size, 60);
    checkTorchvisionLayout(noFc, 18, false);
    noFc.dispose();
  });

  it('resnet50 width 1: torchvision names and shapes, 23,508,032 parameters without fc', () => {
    assert.equal(torchvisionParams(50, false).reduce((a, [, s]) => a + numel(s), 0), 23_508_032);
    assert.equal(torchvisionParams(50, true).reduce((a, [, s]) => a + numel(s), 0), 25_557_032);
    const m = createBackbone('resnet50');
    assert.deepEqual([...m.namedParameters().keys()].slice(0, 12), [
      'conv1.weight', 'bn1.weight', 'bn1.bias',
      'layer1.0.conv1.weight', 'layer1.0.bn1.weight', 'layer1.0.bn1.bias',
      'layer1.0.conv2.weight', 'layer1.0.bn2.weight', 'layer1.0.bn2.bias',
      'layer1.0.conv3.weight', 'layer1.0.bn3.weight', 'layer1.0.bn3.bias',
    ]);
    assert.equal(m.namedParameters().size, 159);
    assert.equal(m.numParameters(), 23_508_032);
    assert.deepEqual(m.featureChannels, { c2: 256, c3: 512, c4: 1024, c5: 2048 });
    checkTorchvisionLayout(m, 50, false);
    m.dispose();
  });

  it('resnet34 tiny: torchvision names at width 0.25 (same keys as width 1)', () => {
    const m = createBackbone('resnet34', { width: 0.25 });
    const names = [...m.namedParameters().keys()];
    assert.deepEqual(names, torchvisionParams(34, false).map(([n]) => n));
    assert.equal(names.length, 108);
    m.dispose();
  });

  it('feature maps at strides 4, 8, 16, 32 (square and non-square inputs), pooled forward', () => {
    const cases: Array<[string, number, number[]]> = [['resnet18', 0.25, [2, 64, 96, 3]], ['resnet34', 0.125, [1, 64, 64, 3]], ['resnet50', 0.125, [2, 32, 64, 3]]];
    for (const [name, width, shape] of cases) {
      const m = createBackbone(name, { width, seed: 1 });
      const x = randn(shape, 2) as tf.Tensor4D;
      const f = tf.tidy(() => m.forwardFeatures(x));
      const [b, h, w] = shape;
      assert.deepEqual(f.c2.shape, [b, h / 4, w / 4, m.featureChannels.c2], `${name} c2`);
      assert.deepEqual(f.c3.shape, [b, h / 8, w / 8, m.featureChannels.c3], `${name} c3`);
      assert.deepEqual(f.c4.shape, [b, h / 16, w / 16, m.featureChannels.c4], `${name} c4`);
      assert.deepEqual(f.c5.shape, [b, h / 32, w / 32, m.featureChannels.c5], `${name} c5`);
      const pooled = tf.tidy(() => m.forward(x));
      assert.deepEqual(pooled.shape, [b, m.featureChannels.c5]);
      tf.dispose([x, pooled, f.c2, f.c3, f.c4, f.c5]);
      m.dispose();
    }
  });

  it('torchvision padding arithmetic on a side not divisible by 32 (72 -> 18, 9, 5, 3)', () => {
    // conv1 7x7/s2 pad 3: floor((72 + 6 - 7) / 2) + 1 = 36; max pool 3x3/s2 pad 1: 18; then
    // 3x3/s2 pad 1: 9, 5, 3 (TF 'same' would agree here, but pads bottom/right only).
    const m = createBackbone('resnet18', { width: 0.125 });
    const x = randn([1, 72, 72, 3], 3) as tf.Tensor4D;
    const f = tf.tidy(() => m.forwardFeatures(x));
    assert.deepEqual([f.c2, f.c3, f.c4, f.c5].map((t) => t.shape[1]), [18, 9, 5, 3]);
    tf.dispose([x, f.c2, f.c3, f.c4, f.c5]);
    assert.throws(() => m.forwardFeatures(tf.zeros([1, 32, 32, 1]) as tf.Tensor4D), ShapeError);
    m.dispose();
  });

  it('seeded: same seed -> same weights, another seed -> different weights', () => {
    const a = createBackbone('resnet18', { width: 0.25, seed: 3 });
    const b = createBackbone('resnet18', { width: 0.25, seed: 3 });
    const c = createBackbone('resnet18', { width: 0.25, seed: 4 });
    const pb = b.namedParameters();
    const pc = c.namedParameters();
    for (const [k, v] of a.namedParameters()) {
      assert.deepEqual(v.dataSync(), pb.get(k)!.dataSync(), `${k}: same seed`);
    }
    // Convs differ with the seed, and two convs of one model differ from each other.
    assert.ok(maxAbsDiff(a.namedParameters().get('layer1.0.conv1.weight')!.dataSync(), pc.get('layer1.0.conv1.weight')!.dataSync()) > 0.01);
    assert.ok(maxAbsDiff(a.namedParameters().get('layer1.0.conv1.weight')!.dataSync(), a.namedParameters().get('layer1.0.conv2.weight')!.dataSync()) > 0.01);
    a.dispose();
    b.dispose();
    c.dispose();
  });

  /** Trains the batch norms a little (non-trivial running statistics), then compares in eval mode. */
  async function featureParity(name: string, width: number, numClasses: number, shape: number[]): Promise<void> {
    const m = createBackbone(name, { width, numClasses, seed: 5 }) as ResNet;
    m.train();
    for (let i = 0; i < 2; i++) {
      const xs = randn([2, shape[1], shape[2], 3], 20 + i, 1.5) as tf.Tensor4D;
      tf.dispose(tf.tidy(() => m.forward(xs)));
      xs.dispose();
    }
    m.eval();
    const g = new OnnxGraph(`${name}_features`);
    const input = g.input('x', ['batch', 3, shape[1], shape[2]]);
    const names = m.toOnnxFeatures(g, input);
    for (const level of ['c2', 'c3', 'c4', 'c5'] as const) g.output(level, ['batch', m.featureChannels[level], 'h', 'w'], 'float32', { from: names[level] });
    g.output('y', ['batch', numClasses > 0 ? numClasses : m.featureChannels.c5], 'float32', { from: m.toOnnx(g, input) });
    const bytes = g.toModelProto();
    const x = randn(shape, 7) as tf.Tensor4D;
    const ref = tf.tidy(() => {
      const f = m.forwardFeatures(x);
      return { c2: nhwcToNchw(f.c2), c3: nhwcToNchw(f.c3), c4: nhwcToNchw(f.c4), c5: nhwcToNchw(f.c5), y: m.forward(x) };
    });
    const xn = tf.tidy(() => nhwcToNchw(x));
    const out = await runOrt(bytes, { x: feed(xn) });
    for (const k of ['c2', 'c3', 'c4', 'c5', 'y'] as const) {
      assert.deepEqual(out[k].dims, ref[k].shape, `${name} ${k}: dims`);
      const r = ref[k].dataSync();
      assert.ok(Math.max(...Array.from(r, Math.abs)) > 1e-2, `${name} ${k}: output is all ~0`);
      const diff = record(`${name} w${width} ${k}`, maxAbsDiff(out[k].data, r));
      assert.ok(diff <= TOL, `${name} ${k}: max abs diff ${diff} > ${TOL}`);
    }
    tf.dispose([x, xn, ...Object.values(ref)]);
    m.dispose();
  }

  it('ONNX parity: resnet18 width 0.25 features + pooled (batch 2, 64x96)', async () => {
    await featureParity('resnet18', 0.25, 0, [2, 64, 96, 3]);
  });

  it('ONNX parity: resnet34 width 0.125 with a 10-class fc (batch 1, 64x64)', async () => {
    await featureParity('resnet34', 0.125, 10, [1, 64, 64, 3]);
  });

  it('ONNX parity: resnet50 width 0.125 features + pooled (batch 2, 64x64)', async () => {
    await featureParity('resnet50', 0.125, 0, [2, 64, 64, 3]);
  });

  after(() => {
    const rows = [...parityRecord].map(([k, v]) => `    ${k.padEnd(56)} ${v.toExponential(2)}`);
    if (rows.length > 0) console.log(`  max abs diff, onnxruntime vs tfjs:\n${rows.join('\n')}`);
    parityRecord.clear();
  });
});
