/**
 * The VLP explainer in tfjs: config checks, the pinned parameter list (GPT-2 names for the decoder),
 * the fixed encodings (hand-computed), the prefix/causal mask seen from the outputs, cached
 * decoding against the teacher-forcing forward, the box-encoding ablation, gradients to every
 * parameter, the response loss (hand-computed), dropout modes and tensor leaks.
 */
import { strict as assert } from 'node:assert';
import { initBackend, tf } from '../../../src/backend';
import { ConfigError, ShapeError } from '../../../src/errors';
import { parseVlpModelConfig } from '../../../src/models/vlp/config';
import { boxFourier, sine2d } from '../../../src/models/vlp/encodings';
import { disposePointerMemory, VlpExplainer, VlpInputs, responseLoss } from '../../../src/models/vlp/explainer';
import { restoreBackendAfter } from '../../backend/helpers';
import { maxAbsDiff } from '../nn/parity_helpers';
import { Rng } from '../../../src/data/rng';
import { applyGradients, trainableParams } from '../../../src/train/loop_common';
import { AdamW } from '../../../src/train/optim';
import { BOS, disposeInputs, makeInputs, makeResponse, sharpen, tinyConfig } from './explainer_helpers';

function values(t: tf.Tensor): Float32Array {
  const v = Float32Array.from(t.dataSync() as Float32Array);
  t.dispose();
  return v;
}

/** Logits of row b, position t from [B, T, V] values. */
function at(data: Float32Array, shape: number[], b: number, t: number): Float32Array {
  const [, tt, v] = shape;
  return data.subarray((b * tt + t) * v, (b * tt + t + 1) * v);
}

describe('VLP explainer (tfjs)', function () {
  this.timeout(60000);
  restoreBackendAfter();
  before(async () => {
    // One thread: these models are tiny (per-op overhead dominates) and on a loaded 2-core machine
    // the second thread's synchronization costs more than it brings (measured: 35 vs 200 ms per
    // training step). A wasm backend initialized earlier in the process is kept as it is.
    await initBackend({ name: 'wasm', threads: 1 });
  });

  it('config: defaults, unknown keys and incompatible sizes are ConfigErrors naming the field', () => {
    const c = parseVlpModelConfig({ vocab_size: 10, dim: 8, layers: 1, heads: 2, visual_channels: 4, num_categories: 3, num_verbs: 2 });
    assert.equal(c.dropout, 0.1);
    assert.equal(c.max_positions, 512);
    assert.equal(c.max_hois, 6);
    assert.equal(c.instruction_length, 24);
    assert.equal(c.box_encoding, true);
    assert.equal(c.box_frequencies, 8);
    assert.equal(c.tie_embeddings, true);
    assert.throws(() => parseVlpModelConfig({ ...c, dims: 3 }), (e: Error) => e instanceof ConfigError && /dims/.test(e.message));
    assert.throws(() => parseVlpModelConfig({ ...c, heads: 3 }), (e: Error) => e instanceof ConfigError && /model\.dim: 8 is not divisible by model\.heads = 3/.test(e.message));
    assert.throws(() => parseVlpModelConfig({ ...c, dim: 6, heads: 2 }), (e: Error) => e instanceof ConfigError && /multiple of 4/.test(e.message));
    assert.throws(() => parseVlpModelConfig({ ...c, layers: 0 }), (e: Error) => e instanceof ConfigError && /model\.layers/.test(e.message));
  });

  it('parameter names: GPT-2 names for the decoder, documented names for the prefix layers', () => {
    const m = new VlpExplainer(tinyConfig({ layers: 1 }), { seed: 1 });
    const shapes = [...m.namedParameters()].map(([k, v]) => `${k} [${v.shape}]`);
    assert.deepEqual(shapes, [
      'wte.weight [17,16]', 'wpe.weight [40,16]', 'segment_emb.weight [3,16]',
      'visual_proj.weight [6,16]', 'visual_proj.bias [16]',
      'hoi_subject_emb.weight [6,16]', 'hoi_verb_emb.weight [5,16]', 'hoi_object_emb.weight [6,16]',
      'hoi_box_proj.weight [56,16]', 'hoi_box_proj.bias [16]',
      'h.0.ln_1.weight [16]', 'h.0.ln_1.bias [16]',
      'h.0.attn.c_attn.weight [16,48]', 'h.0.attn.c_attn.bias [48]', 'h.0.attn.c_proj.weight [16,16]', 'h.0.attn.c_proj.bias [16]',
      'h.0.ln_2.weight [16]', 'h.0.ln_2.bias [16]',
      'h.0.mlp.c_fc.weight [16,64]', 'h.0.mlp.c_fc.bias [64]', 'h.0.mlp.c_proj.weight [64,16]', 'h.0.mlp.c_proj.bias [16]',
      'ln_f.weight [16]', 'ln_f.bias [16]',
    ]);
    m.dispose();
    const ablation = new VlpExplainer(tinyConfig({ layers: 1, box_encoding: false, tie_embeddings: false, mlp_hidden: 24 }), { seed: 1 });
    const names = [...ablation.namedParameters().keys()];
    assert.ok(!names.some((n) => n.startsWith('hoi_box_proj')), 'no box projection in the ablation');
    assert.deepEqual(ablation.namedParameters().get('lm_head.weight')?.shape, [16, 17]);
    assert.ok(!names.includes('lm_head.bias'));
    assert.deepEqual(ablation.namedParameters().get('h.0.mlp.c_fc.weight')?.shape, [16, 24]);
    ablation.dispose();
  });

  it('sine2d and boxFourier: hand-computed values and layout', () => {
    // H = 1, W = 2, C = 4 (one frequency, w = 1): y = pi; x = pi/2, 3pi/2. Cell = [sin y, cos y, sin x, cos x].
    const s = sine2d(1, 2, 4);
    const want = [0, -1, 1, 0, 0, -1, -1, 0];
    assert.ok(maxAbsDiff(s, want) < 1e-6, `sine2d ${Array.from(s)}`);
    // A second frequency: C = 8 -> w = [1, 10000^(-1/2) = 0.01]; cell (0, 0) of a 1x1 grid: y = x = pi.
    const s8 = sine2d(1, 1, 8);
    const f = Math.fround(Math.fround(Math.PI) * 0.01);
    assert.ok(maxAbsDiff(s8, [0, Math.sin(f), -1, Math.cos(f), 0, Math.sin(f), -1, Math.cos(f)]) < 1e-6);
    // Box: F = 2, coordinate c -> [c, sin(pi c), sin(2 pi c), cos(pi c), cos(2 pi c)].
    const box = tf.tensor3d([[[0.25, 0.5, 0, 1]]]);
    const enc = boxFourier(box, 2);
    assert.deepEqual(enc.shape, [1, 1, 20]);
    const r = Math.SQRT1_2;
    const wantBox = [0.25, r, 1, r, 0, 0.5, 1, 0, 0, -1, 0, 0, 0, 1, 1, 1, 0, 0, -1, 1];
    assert.ok(maxAbsDiff(values(enc), wantBox) < 1e-6);
    box.dispose();
  });

  it('forward: [B, Tr, V] logits; the prefix is seen by every position, the response causally; no leaks', () => {
    const c = tinyConfig();
    const m = new VlpExplainer(c, { seed: 2 }).eval();
    sharpen(m, 3);
    const inputs = makeInputs(c, 2, 4);
    const resp = makeResponse(c, 2, 5, 5);
    const before = tf.memory().numTensors;
    const base = m.forward(inputs, resp);
    assert.deepEqual(base.shape, [2, 5, 17]);
    const baseV = values(base);
    assert.equal(tf.memory().numTensors, before, 'forward leaves nothing behind');
    const shape = [2, 5, 17];

    // Response token 2 changed: positions 0, 1 unchanged, 2.. changed.
    const resp2 = tf.tidy(() => {
      const d = resp.arraySync();
      d[1][2] = d[1][2] === 3 ? 4 : 3;
      return tf.tensor2d(d, undefined, 'int32');
    });
    const v2 = values(m.forward(inputs, resp2));
    for (const t of [0, 1]) assert.equal(maxAbsDiff(at(baseV, shape, 1, t), at(v2, shape, 1, t)), 0, `position ${t} must not see token 2`);
    for (const t of [2, 3, 4]) assert.ok(maxAbsDiff(at(baseV, shape, 1, t), at(v2, shape, 1, t)) > 1e-3, `position ${t} sees token 2`);
    assert.equal(maxAbsDiff(at(baseV, shape, 0, 4), at(v2, shape, 0, 4)), 0, 'batch rows are independent');

    // A verb of row 1 changed: every response position of row 1 changes (the prefix is visible).
    const verb = tf.tidy(() => {
      const d = inputs.hoiVerb.arraySync();
      d[1][0] = (d[1][0] + 1) % c.num_verbs;
      return tf.tensor2d(d, undefined, 'int32');
    });
    const v3 = values(m.forward({ ...inputs, hoiVerb: verb }, resp));
    for (let t = 0; t < 5; t++) assert.ok(maxAbsDiff(at(baseV, shape, 1, t), at(v3, shape, 1, t)) > 1e-3, `position ${t} sees the HOI tokens`);
    assert.equal(maxAbsDiff(at(baseV, shape, 0, 0), at(v3, shape, 0, 0)), 0);

    // Positions: the sequence uses wpe rows 0 .. P + Tr - 1 exactly (P = 6 + 3 + 4 = 13, Tr = 5).
    const wpe = m.wpe.weight;
    const saved = wpe.clone();
    // (A non-constant vector: LayerNorm would cancel a constant shift.)
    const withRow = (row: number): Float32Array => {
      tf.tidy(() => wpe.assign(tf.add(saved, tf.oneHot(tf.tensor1d([row], 'int32'), c.max_positions).reshape([c.max_positions, 1]).mul(tf.linspace(-3, 3, c.dim)))));
      return values(m.forward(inputs, resp));
    };
    assert.equal(maxAbsDiff(baseV, withRow(18)), 0, 'wpe row P + Tr is unused');
    assert.ok(maxAbsDiff(at(baseV, shape, 0, 4), at(withRow(17), shape, 0, 4)) > 1e-3, 'the last response token is at P + Tr - 1');
    assert.equal(maxAbsDiff(at(baseV, shape, 0, 3), at(withRow(17), shape, 0, 3)), 0);
    assert.ok(maxAbsDiff(at(baseV, shape, 0, 0), at(withRow(0), shape, 0, 0)) > 1e-3, 'the first visual token is at 0');
    wpe.assign(saved);
    saved.dispose();

    // The visual features matter too.
    const vis = tf.tidy(() => tf.add(inputs.visual, 0.5) as tf.Tensor4D);
    const v4 = values(m.forward({ ...inputs, visual: vis }, resp));
    assert.ok(maxAbsDiff(baseV, v4) > 1e-3);
    tf.dispose([resp, resp2, verb, vis]);
    disposeInputs(inputs);
    m.dispose();
  });

  for (const boxPointer of [false, true]) {
  it(`encodePrefix + step with KV caches equals the teacher-forcing forward${boxPointer ? ' (box pointer, pointer tokens fed back)' : ''}`, () => {
    const c = tinyConfig({ tie_embeddings: false, box_pointer: boxPointer });
    const m = new VlpExplainer(c, { seed: 6 }).eval();
    sharpen(m, 7);
    const inputs = makeInputs(c, 3, 8, [3, 2]);
    const T = 6;
    const resp = makeResponse(c, 3, T, 9);
    const full = values(m.forward(inputs, resp)); // [3, T, V (+ 2M)]
    const before = tf.memory().numTensors;
    const caches = m.newCaches();
    const P = m.prefixLength(6);
    assert.equal(P, 6 + 3 + 4);
    const V = m.numLogits;
    assert.equal(V, boxPointer ? 17 + 6 : 17);
    const state = m.encodePrefix(inputs, caches);
    assert.deepEqual(state.logits.shape, [3, V]);
    assert.equal(state.pointer === null, !boxPointer);
    if (state.pointer) {
      // row 0's last slot is padding: its two pointer tokens are ruled out
      assert.deepEqual(Array.from(state.pointer.bias.dataSync()).slice(0, 6).map((v) => v + 0), [0, 0, 0, 0, -1e9, -1e9]);
      assert.ok(values(state.logits.slice([0, 21], [1, 2])).every((v) => v < -1e8));
    }
    state.logits.dispose();
    assert.equal(caches[0].length, P);
    let worst = 0;
    for (let t = 0; t < T; t++) {
      const tok = resp.slice([0, t], [3, 1]);
      const step = values(m.step(tok, caches, P, state.pointer));
      tok.dispose();
      for (let b = 0; b < 3; b++) worst = Math.max(worst, maxAbsDiff(step.subarray(b * V, (b + 1) * V), at(full, [3, T, V], b, t)));
    }
    assert.equal(caches[1].length, P + T);
    assert.ok(worst < 1e-5, `cached steps differ from forward by ${worst}`);
    caches.forEach((k) => k.dispose());
    disposePointerMemory(state.pointer);
    assert.equal(tf.memory().numTensors, before, 'no tensors left behind by prefix + steps');
    // Misuse is a ShapeError that says what to do.
    const empty = m.newCaches();
    const tok = resp.slice([0, 0], [3, 1]);
    assert.throws(() => m.step(tok, empty, P), (e: Error) => e instanceof ShapeError && /call encodePrefix/.test(e.message));
    tf.dispose([tok, resp]);
    disposeInputs(inputs);
    m.dispose();
  });
  }

  it('box encoding: boxes change the output; with box_encoding false they are ignored', () => {
    for (const boxEncoding of [true, false]) {
      const c = tinyConfig({ box_encoding: boxEncoding });
      const m = new VlpExplainer(c, { seed: 10 }).eval();
      sharpen(m, 11);
      const inputs = makeInputs(c, 2, 12);
      const resp = makeResponse(c, 2, 3, 13);
      const moved: VlpInputs = { ...inputs, hoiSubjectBox: tf.tidy(() => tf.add(inputs.hoiSubjectBox, 0.1) as tf.Tensor3D) };
      const d = maxAbsDiff(values(m.forward(inputs, resp)), values(m.forward(moved, resp)));
      if (boxEncoding) assert.ok(d > 1e-3, `boxes must matter (diff ${d})`);
      else assert.equal(d, 0, 'the ablation ignores boxes');
      tf.dispose([resp, moved.hoiSubjectBox]);
      disposeInputs(inputs);
      m.dispose();
    }
  });

  it('gradients reach every trainable parameter (tied and untied head, dropout on; box pointer with the tied head)', () => {
    for (const tie of [true, false]) {
      // the tied variant also carries the box pointer: its response has pointer tokens in and out
      const c = tinyConfig({ tie_embeddings: tie, dropout: 0.1, box_pointer: tie });
      const m = new VlpExplainer(c, { seed: 14 }).train();
      const inputs = makeInputs(c, 2, 15);
      const resp = makeResponse(c, 2, 5, 16);
      const { value, grads } = tf.variableGrads(() => {
        const logits = m.forward(inputs, resp.slice([0, 0], [2, 4]));
        return responseLoss(logits, resp.slice([0, 1], [2, 4]), tf.ones([2, 4]));
      }, m.trainableVariables());
      assert.ok(Number.isFinite(value.dataSync()[0]));
      const byVar = new Map([...m.namedParameters()].map(([k, v]) => [v.name, k]));
      assert.equal(Object.keys(grads).length, m.trainableVariables().length);
      if (tie) assert.ok([...byVar.values()].includes('pointer_key.weight') && [...byVar.values()].includes('pointer_embed.weight'));
      for (const [vname, g] of Object.entries(grads)) {
        const norm = tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]);
        assert.ok(norm > 0, `no gradient reaches ${byVar.get(vname)} (tie ${tie})`);
      }
      tf.dispose([value, ...Object.values(grads), resp]);
      disposeInputs(inputs);
      m.dispose();
    }
  });

  it('responseLoss: hand-computed cross-entropy, masked positions excluded, all-zero mask gives 0', () => {
    const logits = tf.tensor3d([[[0, 0, 0], [1, 2, 3]]]);
    const targets = tf.tensor2d([[0, 2]], undefined, 'int32');
    const ce0 = Math.log(3);
    const ce1 = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) - 3;
    const loss = (mask: number[]): number => {
      const mk = tf.tensor2d([mask]);
      const l = responseLoss(logits, targets, mk);
      const v = l.dataSync()[0];
      tf.dispose([mk, l]);
      return v;
    };
    assert.ok(Math.abs(loss([1, 1]) - (ce0 + ce1) / 2) < 1e-6);
    assert.ok(Math.abs(loss([0, 1]) - ce1) < 1e-6);
    assert.equal(loss([0, 0]), 0);
    const bad = tf.tensor2d([[0, 1, 2]], undefined, 'int32');
    assert.throws(() => responseLoss(logits, bad, tf.ones([1, 2])), ShapeError);
    tf.dispose([logits, targets, bad]);
  });

  it('dropout only in train mode; input errors name the input', () => {
    const c = tinyConfig({ dropout: 0.3 });
    const m = new VlpExplainer(c, { seed: 17 });
    const inputs = makeInputs(c, 1, 18);
    const resp = makeResponse(c, 1, 3, 19);
    m.train();
    assert.ok(maxAbsDiff(values(m.forward(inputs, resp)), values(m.forward(inputs, resp))) > 1e-4, 'train mode drops');
    m.eval();
    assert.equal(maxAbsDiff(values(m.forward(inputs, resp)), values(m.forward(inputs, resp))), 0, 'eval mode is deterministic');
    const shortInstr = tf.zeros([1, 3], 'int32') as tf.Tensor2D;
    assert.throws(() => m.forward({ ...inputs, instruction: shortInstr }, resp), (e: Error) => e instanceof ShapeError && /instruction_length/.test(e.message));
    const badVerb = tf.fill([1, 3], c.num_verbs + 1, 'int32') as tf.Tensor2D;
    assert.throws(() => m.forward({ ...inputs, hoiVerb: badVerb }, resp), (e: Error) => e instanceof ShapeError && /hoiVerb/.test(e.message));
    const nchw = tf.zeros([1, 6, 2, 3]) as tf.Tensor4D;
    assert.throws(() => m.forward({ ...inputs, visual: nchw }, resp), (e: Error) => e instanceof ShapeError && /NHWC/.test(e.message));
    const long = makeResponse(c, 1, 30, 20);
    assert.throws(() => m.forward(inputs, long), (e: Error) => e instanceof ShapeError && /max_positions/.test(e.message));
    tf.dispose([shortInstr, badVerb, nchw, long, resp]);
    disposeInputs(inputs);
    m.dispose();
  });
});

describe('VLP explainer box pointer learns to point (tfjs)', function () {
  this.timeout(120000);
  restoreBackendAfter();
  before(async () => {
    await initBackend({ name: 'wasm', threads: 1 });
  });

  /**
   * The task of a citation: the response names a verb (token 3 + v) and must then point at the
   * subject of the slot holding that verb; 3 slots with distinct random verbs in random order, so
   * chance is 1/6 of the pointer tokens (1/3 with the right role). Learning it needs the pointer
   * keys to carry the slot's content, not its position.
   */
  function task(c: ReturnType<typeof tinyConfig>, batch: number, rng: Rng): { inputs: VlpInputs; response: tf.Tensor2D; target: number[] } {
    const base = makeInputs(c, batch, rng.int(0, 1e6));
    const verbs: number[] = [], response: number[] = [], target: number[] = [];
    for (let b = 0; b < batch; b++) {
      const order = [0, 1, 2, 3];
      rng.shuffle(order);
      verbs.push(...order.slice(0, 3));
      const m = rng.int(0, 2);
      response.push(BOS, 3 + order[m], c.vocab_size + 2 * m);
      target.push(c.vocab_size + 2 * m);
    }
    tf.dispose([base.hoiVerb, base.hoiSubject, base.hoiObject]);
    const inputs: VlpInputs = {
      ...base,
      hoiVerb: tf.tensor2d(verbs, [batch, 3], 'int32'),
      hoiSubject: tf.zeros([batch, 3], 'int32') as tf.Tensor2D,
      hoiObject: tf.ones([batch, 3], 'int32') as tf.Tensor2D,
    };
    return { inputs, response: tf.tensor2d(response, [batch, 3], 'int32'), target };
  }

  it('pointer accuracy on held-out inputs rises from chance to > 0.9 in 300 steps (measured: loss 1.10 at step 100, 2e-4 at 300)', () => {
    const c = tinyConfig({ box_pointer: true, dropout: 0 });
    const m = new VlpExplainer(c, { seed: 21 }).train();
    const trainable = trainableParams(m);
    const optimizer = new AdamW(trainable.params, { lr: 0.002, weightDecay: 0 });
    const rng = new Rng(5, 'pointer-task');
    const accuracy = (): number => {
      const t = task(c, 64, new Rng(99, 'held-out'));
      const logits = m.forward(t.inputs, t.response); // [64, 3, V + 6]
      const picked = tf.tidy(() => tf.argMax(logits.slice([0, 1, 0], [64, 1, m.numLogits]).reshape([64, m.numLogits]), 1).dataSync() as Int32Array);
      tf.dispose([logits, t.response]);
      disposeInputs(t.inputs);
      return picked.filter((p, b) => p === t.target[b]).length / 64;
    };
    const before = accuracy();
    const counts: number[] = [];
    for (let step = 0; step < 300; step++) {
      const t = task(c, 32, rng);
      const { value, grads } = tf.variableGrads(() => {
        const logits = m.forward(t.inputs, t.response.slice([0, 0], [32, 2]));
        const mask = tf.tensor2d(Array.from({ length: 32 }, () => [0, 1]), [32, 2]); // the loss on the pointer only
        return responseLoss(logits, t.response.slice([0, 1], [32, 2]), mask);
      }, trainable.vars);
      applyGradients(optimizer, trainable, grads, value.dataSync()[0], 1, 0.002);
      tf.dispose([value, t.response]);
      disposeInputs(t.inputs);
      counts.push(tf.memory().numTensors);
    }
    const after = accuracy();
    assert.ok(before < 0.5, `untrained accuracy ${before}`);
    assert.ok(after > 0.9, `pointer accuracy ${before} -> ${after}`);
    assert.ok(counts.every((n) => n === counts[0]), 'tensor count flat across steps');
    optimizer.dispose();
    m.dispose();
  });
});
