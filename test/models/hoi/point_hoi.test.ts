/**
 * PointHoiExtractor (backbone + FPN neck + point head) and the image-level classifier baseline:
 * config validation, parameter names and counts, output shapes, ONNX parity with dynamic batch
 * (onnxruntime-node vs tfjs, eval, <= 1e-4), gradients to every parameter, seeded determinism,
 * no tensor leaks, and the heatmap prior.
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../../src/backend/tf';
import { ConfigError, ShapeError } from '../../../src/errors';
import { ImageAnomalyClassifier, IMAGE_CLASSIFIER_ENTRY } from '../../../src/models/hoi/classifier';
import {
  HEATMAP_PRIOR_BIAS, POINT_HOI_ENTRY, POINT_HOI_OUTPUTS, PointHoiConfigInput, PointHoiConfigSchema, PointHoiExtractor,
  PointHoiOutputs, createExtractor,
} from '../../../src/models/hoi/point_hoi';
import { tidyMaps } from '../../../src/models/hoi/point_head';
import { POINT_HOI_OUTPUT_KEYS } from '../../../src/models/hoi/types';
import { Module } from '../../../src/models/nn';
import { feed, maxAbsDiff, nhwcToNchw, parityRecord, randn, record, runOrt } from '../nn/parity_helpers';

const TOL = 1e-4;

const TINY: PointHoiConfigInput = {
  backbone: 'resnet18', width: 0.25, inputSize: 64, numCategories: 5, numVerbs: 4, neckChannels: 16, headChannels: 16, seed: 1,
};

/** Output channels of the tiny config by key. */
const TINY_CHANNELS: Record<keyof PointHoiOutputs, number> = {
  objectHeatmap: 5, objectSize: 2, objectOffset: 2, interactionHeatmap: 4, interactionOffset: 2, displacement: 4,
};

/** Runs a few training-mode forwards so the batch norms hold non-trivial running statistics. */
function warmBatchNorms(m: Module & { forward(x: tf.Tensor4D): unknown }, size: number): void {
  m.train();
  for (let i = 0; i < 2; i++) {
    const x = randn([2, size, size, 3], 40 + i, 1.5) as tf.Tensor4D;
    tf.tidy(() => {
      m.forward(x);
    });
    x.dispose();
  }
  m.eval();
}

function disposeOutputs(o: PointHoiOutputs): void {
  tf.dispose(POINT_HOI_OUTPUT_KEYS.map((k) => o[k]));
}

/** Checks that every trainable variable gets a finite, non-zero gradient of `loss`. */
function checkGradients(m: Module, loss: () => tf.Scalar): void {
  const vars = m.trainableVariables();
  const names = [...m.namedParameters().keys()];
  assert.equal(vars.length, names.length);
  const { value, grads } = tf.variableGrads(loss, vars);
  assert.ok(Number.isFinite(value.dataSync()[0]), 'finite loss');
  assert.equal(Object.keys(grads).length, vars.length, 'one gradient per variable');
  vars.forEach((v, i) => {
    const g = grads[v.name];
    assert.ok(g, `${names[i]}: gradient present`);
    assert.deepEqual(g.shape, v.shape, `${names[i]}: gradient shape`);
    const d = g.dataSync();
    assert.ok(d.every(Number.isFinite), `${names[i]}: finite gradient`);
    assert.ok(d.some((x) => x !== 0), `${names[i]}: non-zero gradient`);
  });
  tf.dispose([value, ...Object.values(grads)]);
}

describe('PointHoiExtractor (point_hoi)', function () {
  this.timeout(60000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('config: defaults, strict keys, divisibility by 32, registry errors', () => {
    const c = PointHoiConfigSchema.parse({ numCategories: 3, numVerbs: 2 });
    assert.deepEqual(c, { backbone: 'resnet50', width: 1, inputSize: 512, numCategories: 3, numVerbs: 2, neckChannels: 128, headChannels: 64, seed: 0 });
    assert.throws(() => new PointHoiExtractor({ ...TINY, heads: 3 } as PointHoiConfigInput), (e: Error) => e instanceof ConfigError && /unknown key\(s\) 'heads'/.test(e.message));
    assert.throws(() => new PointHoiExtractor({ ...TINY, inputSize: 100 }), (e: Error) => e instanceof ConfigError && /'inputSize': inputSize must be divisible by 32/.test(e.message));
    assert.throws(() => new PointHoiExtractor({ ...TINY, backbone: 'vgg16' } as unknown as PointHoiConfigInput), (e: Error) => e instanceof ConfigError && /'backbone'.*resnet18.*resnet34.*resnet50/.test(e.message));
    assert.throws(() => createExtractor('detr_hoi', TINY), (e: Error) => e instanceof ConfigError && /unknown HOI extractor 'detr_hoi'; registered: point_hoi/.test(e.message));
    assert.throws(() => createExtractor('point_hoi', { numVerbs: 2 }), (e: Error) => e instanceof ConfigError && /'numCategories': Required/.test(e.message));
    assert.equal(POINT_HOI_ENTRY.name, 'point_hoi');
    assert.equal(IMAGE_CLASSIFIER_ENTRY.name, 'image_classifier');
    assert.deepEqual(POINT_HOI_OUTPUTS.map((o) => o.key), [...POINT_HOI_OUTPUT_KEYS]);
    assert.deepEqual(POINT_HOI_OUTPUTS.map((o) => o.name),
      ['object_heatmap', 'object_size', 'object_offset', 'interaction_heatmap', 'interaction_offset', 'displacement']);
  });

  it('parameter names (backbone / neck / head) and counts', () => {
    const m = createExtractor('point_hoi', TINY);
    const names = [...m.namedParameters().keys()];
    assert.deepEqual(names.slice(0, 5), ['backbone.conv1.weight', 'backbone.bn1.weight', 'backbone.bn1.bias', 'backbone.layer1.0.conv1.weight', 'backbone.layer1.0.bn1.weight']);
    const neck = names.filter((n) => n.startsWith('neck.'));
    assert.deepEqual(neck, [
      'neck.lateral_c2.weight', 'neck.lateral_c2.bias', 'neck.lateral_c3.weight', 'neck.lateral_c3.bias',
      'neck.lateral_c4.weight', 'neck.lateral_c4.bias', 'neck.lateral_c5.weight', 'neck.lateral_c5.bias',
      'neck.fuse.0.weight', 'neck.fuse.1.weight', 'neck.fuse.1.bias',
    ]);
    const head = names.filter((n) => n.startsWith('head.'));
    assert.equal(head.length, 24);
    assert.deepEqual(head.slice(0, 4), ['head.object_heatmap.0.weight', 'head.object_heatmap.0.bias', 'head.object_heatmap.2.weight', 'head.object_heatmap.2.bias']);
    assert.equal(head[head.length - 1], 'head.displacement.2.bias');
    assert.ok(names.every((n) => /^(backbone|neck|head)\./.test(n)));
    assert.ok(m.namedBuffers().has('neck.fuse.1.running_var') && m.namedBuffers().has('backbone.layer4.1.bn2.running_mean'));
    // Counts by hand. resnet18 at width 0.25 (stages 16, 32, 64, 128), no fc:
    //   stem   7*7*3*16 + 2*16                                               =   2,384
    //   layer1 2 x (2 * 9*16*16 + 4*16)                                      =   9,344
    //   layer2 (9*16*32 + 9*32*32 + 4*32 + 16*32 + 2*32) + (2 * 9*32*32 + 4*32) = 33,088
    //   layer3 (9*32*64 + 9*64*64 + 4*64 + 32*64 + 2*64) + (2 * 9*64*64 + 4*64) = 131,712
    //   layer4 (9*64*128 + 9*128*128 + 4*128 + 64*128 + 2*128) + (2 * 9*128*128 + 4*128) = 525,568
    const backbone = [...m.backbone.namedParameters().values()].reduce((a, v) => a + v.size, 0);
    assert.equal(backbone, 2_384 + 9_344 + 33_088 + 131_712 + 525_568);
    const N = 16;
    const H = 16;
    const lat = (16 + 32 + 64 + 128) * N + 4 * N; // 1x1 laterals with bias
    const fuse = 9 * N * N + 2 * N; // 3x3 no bias + BN
    const branch = (out: number): number => 9 * N * H + H + H * out + out;
    const headCount = branch(5) + branch(2) + branch(2) + branch(4) + branch(2) + branch(4);
    assert.equal(m.numParameters(), backbone + lat + fuse + headCount);
    assert.equal(m.numParameters(), 722_579);
    m.dispose();
  });

  it('output shapes of forward and predictMaps; heatmaps in (0, 1) after the sigmoid', () => {
    const m = new PointHoiExtractor(TINY).eval();
    const x = randn([2, 64, 64, 3], 1) as tf.Tensor4D;
    const raw = tidyMaps(() => m.forward(x));
    const maps = tidyMaps(() => m.predictMaps(x));
    const expected = m.outputShapes(2);
    for (const k of POINT_HOI_OUTPUT_KEYS) {
      assert.deepEqual(raw[k].shape, [2, 16, 16, TINY_CHANNELS[k]], `forward ${k}`);
      assert.deepEqual(maps[k].shape, expected[k], `predictMaps ${k}`);
    }
    // predictMaps = sigmoid(forward) on heatmaps, identity elsewhere.
    const sig = tf.tidy(() => tf.sigmoid(raw.objectHeatmap));
    assert.ok(maxAbsDiff(sig.dataSync(), maps.objectHeatmap.dataSync()) < 1e-7);
    assert.deepEqual(maps.displacement.dataSync(), raw.displacement.dataSync());
    const hm = maps.interactionHeatmap.dataSync();
    assert.ok(hm.every((v) => v > 0 && v < 1));
    // Non-square inputs divisible by 32 work; other sizes and channel counts are ShapeErrors.
    const xr = randn([1, 32, 96, 3], 2) as tf.Tensor4D;
    const r = tidyMaps(() => m.forward(xr));
    assert.deepEqual(r.objectSize.shape, [1, 8, 24, 2]);
    assert.throws(() => m.forward(tf.zeros([1, 48, 48, 3]) as tf.Tensor4D), ShapeError);
    assert.throws(() => m.forward(tf.zeros([1, 64, 64, 1]) as tf.Tensor4D), ShapeError);
    tf.dispose([x, xr, sig]);
    [raw, maps, r].forEach(disposeOutputs);
    m.dispose();
  });

  it('heatmap prior: bias -2.19, initial mean sigmoid ~0.1; regressions start near 0', () => {
    const m = new PointHoiExtractor({ ...TINY, seed: 7 });
    assert.ok(m.namedParameters().get('head.object_heatmap.2.bias')!.dataSync().every((v) => Math.abs(v - HEATMAP_PRIOR_BIAS) < 1e-6));
    assert.ok(m.namedParameters().get('head.interaction_heatmap.2.bias')!.dataSync().every((v) => Math.abs(v - -2.19) < 1e-6));
    assert.ok(m.namedParameters().get('head.displacement.2.bias')!.dataSync().every((v) => v === 0));
    m.train(); // batch statistics: the scale the first training steps see
    const x = randn([2, 64, 64, 3], 3) as tf.Tensor4D;
    const out = tidyMaps(() => m.predictMaps(x));
    for (const k of ['objectHeatmap', 'interactionHeatmap'] as const) {
      const d = out[k].dataSync() as Float32Array;
      const mean = d.reduce((a, b) => a + b, 0) / d.length;
      assert.ok(mean > 0.08 && mean < 0.125, `${k}: initial mean probability ${mean}, expected ~0.1 (sigmoid(-2.19) = 0.1006)`);
    }
    for (const k of ['objectSize', 'objectOffset', 'interactionOffset', 'displacement'] as const) {
      const maxAbs = Math.max(...Array.from(out[k].dataSync(), Math.abs));
      assert.ok(maxAbs < 0.05 && maxAbs > 0, `${k}: initial max |value| ${maxAbs}`);
    }
    tf.dispose(x);
    disposeOutputs(out);
    m.dispose();
  });

  /** Exports, runs batch 1 and batch 2 through one graph (dynamic batch), compares with predictMaps. */
  async function extractorParity(label: string, config: PointHoiConfigInput): Promise<void> {
    const m = new PointHoiExtractor(config);
    const S = m.config.inputSize;
    warmBatchNorms(m, S);
    // Scale up the last 1x1 of every branch (regressions start at ~0.002, heatmaps near the prior)
    // so that all six outputs span O(1) values and a 1e-4 tolerance means something.
    for (const { name, heatmap } of POINT_HOI_OUTPUTS) {
      const w = m.namedParameters().get(`head.${name}.2.weight`)!;
      tf.tidy(() => w.assign(tf.mul(w, heatmap ? 4 : 300)));
    }
    const g = m.toOnnxGraph();
    const model = g.toModelObject();
    assert.deepEqual(model.graph!.input!.map((i) => i.name), ['images']);
    assert.deepEqual(model.graph!.output!.map((o) => o.name), POINT_HOI_OUTPUTS.map((o) => o.name));
    // Each output is produced by a Transpose (NCHW -> NHWC).
    for (const o of POINT_HOI_OUTPUTS) {
      const node = model.graph!.node!.find((n) => n.output!.includes(o.name))!;
      assert.equal(node.op_type, 'Transpose', `${o.name}: produced by ${node.op_type}`);
    }
    // Initializer names include every parameter and buffer path (checkpoint keys = ONNX names).
    const inits = new Set(model.graph!.initializer!.map((t) => t.name));
    for (const k of m.stateDict().keys()) assert.ok(inits.has(k), `initializer ${k}`);
    const bytes = g.toModelProto();
    for (const batch of [1, 2]) {
      const x = randn([batch, S, S, 3], 100 + batch) as tf.Tensor4D;
      const ref = tidyMaps(() => m.predictMaps(x));
      const xn = tf.tidy(() => nhwcToNchw(x));
      const out = await runOrt(bytes, { images: feed(xn) });
      for (const { key, name } of POINT_HOI_OUTPUTS) {
        assert.deepEqual(out[name].dims, ref[key].shape, `${label} ${name} batch ${batch}: dims`);
        const r = ref[key].dataSync();
        assert.ok(Math.max(...Array.from(r, Math.abs)) > 0.1, `${label} ${name}: output is all ~0`);
        const diff = record(`${label} ${name}`, maxAbsDiff(out[name].data, r));
        assert.ok(diff <= TOL, `${label} ${name} batch ${batch}: max abs diff ${diff} > ${TOL}`);
      }
      tf.dispose([x, xn]);
      disposeOutputs(ref);
    }
    m.dispose();
  }

  it('ONNX parity: resnet18 width 0.25, 64 px, batch 1 and 2', async () => {
    await extractorParity('point_hoi resnet18 w0.25', TINY);
  });

  it('ONNX parity: resnet50 width 0.125, 64 px, batch 1 and 2', async () => {
    await extractorParity('point_hoi resnet50 w0.125', { ...TINY, backbone: 'resnet50', width: 0.125, seed: 2 });
  });

  it('gradients reach every trainable parameter (resnet18 and resnet50, tiny)', () => {
    for (const backbone of ['resnet18', 'resnet50'] as const) {
      const m = new PointHoiExtractor({ ...TINY, backbone, width: 0.125, inputSize: 32, neckChannels: 8, headChannels: 8 });
      m.train();
      const x = randn([2, 32, 32, 3], 4) as tf.Tensor4D;
      checkGradients(m, () => {
        const o = m.forward(x);
        // A loss touching every output: heatmap logits and the regressions.
        const parts = POINT_HOI_OUTPUT_KEYS.map((k) => tf.mean(tf.square(tf.sub(o[k], 0.3))));
        return tf.addN(parts) as tf.Scalar;
      });
      x.dispose();
      m.dispose();
    }
  });

  it('seeded: same seed -> identical weights and outputs; another seed differs', () => {
    const x = randn([1, 64, 64, 3], 5) as tf.Tensor4D;
    const run = (seed: number): Float32Array[] => {
      const m = new PointHoiExtractor({ ...TINY, seed }).eval();
      const o = tidyMaps(() => m.predictMaps(x));
      const data = POINT_HOI_OUTPUT_KEYS.map((k) => o[k].dataSync() as Float32Array);
      disposeOutputs(o);
      m.dispose();
      return data;
    };
    const a = run(11);
    const b = run(11);
    const c = run(12);
    a.forEach((d, i) => assert.deepEqual(d, b[i], `${POINT_HOI_OUTPUT_KEYS[i]}: same seed`));
    assert.ok(maxAbsDiff(a[0], c[0]) > 1e-3, 'another seed changes the object heatmap');
    x.dispose();
  });

  it('no tensor leaks: forward / predictMaps inside tf.tidy, train and eval', () => {
    const m = new PointHoiExtractor(TINY);
    const x = randn([2, 64, 64, 3], 6) as tf.Tensor4D;
    for (const mode of [true, false]) {
      m.train(mode);
      for (const f of [(): PointHoiOutputs => m.forward(x), (): PointHoiOutputs => m.predictMaps(x)]) {
        const before = tf.memory().numTensors;
        const out = tidyMaps(f);
        assert.equal(tf.memory().numTensors, before + 6, `train=${mode}: only the six outputs survive`);
        disposeOutputs(out);
        assert.equal(tf.memory().numTensors, before, `train=${mode}: nothing left behind`);
      }
    }
    // forward without an outer tidy also leaves only its outputs behind.
    const before = tf.memory().numTensors;
    const out = m.forward(x);
    assert.equal(tf.memory().numTensors, before + 6);
    disposeOutputs(out);
    x.dispose();
    m.dispose();
  });
});

describe('ImageAnomalyClassifier (image-level baseline)', function () {
  this.timeout(60000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('names, shapes, config errors', () => {
    const m = new ImageAnomalyClassifier({ backbone: 'resnet18', width: 0.25, inputSize: 64, seed: 1 });
    const names = [...m.namedParameters().keys()];
    assert.deepEqual(names.slice(-2), ['fc.weight', 'fc.bias']);
    assert.deepEqual(m.namedParameters().get('fc.weight')!.shape, [128, 1]);
    assert.equal(m.numParameters(), 702_096 + 128 + 1);
    const x = randn([3, 64, 64, 3], 1) as tf.Tensor4D;
    const logit = tf.tidy(() => m.forward(x));
    const score = tf.tidy(() => m.predict(x));
    assert.deepEqual(logit.shape, [3]);
    const sig = tf.tidy(() => tf.sigmoid(logit));
    assert.ok(maxAbsDiff(sig.dataSync(), score.dataSync()) < 1e-7);
    assert.throws(() => new ImageAnomalyClassifier({ backbone: 'resnet18', numClasses: 2 } as never), ConfigError);
    tf.dispose([x, logit, score, sig]);
    m.dispose();
  });

  it('ONNX parity: resnet18 width 0.25, 64 px, batch 1 and 3 (logit and score)', async () => {
    const m = IMAGE_CLASSIFIER_ENTRY.create({ backbone: 'resnet18', width: 0.25, inputSize: 64, seed: 3 });
    warmBatchNorms(m, 64);
    const bytes = m.toOnnxGraph().toModelProto();
    for (const batch of [1, 3]) {
      const x = randn([batch, 64, 64, 3], 200 + batch, 2) as tf.Tensor4D;
      const logit = tf.tidy(() => m.forward(x));
      const score = tf.tidy(() => m.predict(x));
      const xn = tf.tidy(() => nhwcToNchw(x));
      const out = await runOrt(bytes, { images: feed(xn) });
      assert.deepEqual(out.anomaly_logit.dims, [batch]);
      assert.deepEqual(out.anomaly_score.dims, [batch]);
      assert.ok(Math.max(...Array.from(logit.dataSync(), Math.abs)) > 1e-3, 'logit is all ~0');
      const dl = record('image_classifier logit', maxAbsDiff(out.anomaly_logit.data, logit.dataSync()));
      const ds = record('image_classifier score', maxAbsDiff(out.anomaly_score.data, score.dataSync()));
      assert.ok(dl <= TOL && ds <= TOL, `batch ${batch}: logit diff ${dl}, score diff ${ds}`);
      tf.dispose([x, xn, logit, score]);
    }
    m.dispose();
  });

  it('gradients reach every trainable parameter', () => {
    const m = new ImageAnomalyClassifier({ backbone: 'resnet50', width: 0.125, inputSize: 32, seed: 4 });
    m.train();
    const x = randn([2, 32, 32, 3], 8) as tf.Tensor4D;
    const y = tf.tensor1d([1, 0]);
    checkGradients(m, () => tf.losses.sigmoidCrossEntropy(y, m.forward(x)) as tf.Scalar);
    tf.dispose([x, y]);
    m.dispose();
  });

  after(() => {
    const rows = [...parityRecord].map(([k, v]) => `    ${k.padEnd(56)} ${v.toExponential(2)}`);
    if (rows.length > 0) console.log(`  max abs diff, onnxruntime vs tfjs:\n${rows.join('\n')}`);
    parityRecord.clear();
  });
});
