/**
 * Generation: the searchers on hand-made logit tables (beam search finds the sequence greedy
 * misses, length penalty, seeded top-p), cached == uncached decoding for greedy, beam and top-p,
 * beam k = 1 == greedy, top-p with p -> 0 == greedy, no leaks, and a tiny model trained to
 * memorize three responses that depend on the HOI inputs only (two of them on the boxes only)
 * generating them exactly.
 */
import { strict as assert } from 'node:assert';
import { initBackend, tf } from '../../../src/backend';
import { ConfigError } from '../../../src/errors';
import { Rng } from '../../../src/data/rng';
import { VlpExplainer, VlpInputs, responseLoss } from '../../../src/models/vlp/explainer';
import { GenerateOptions, generate } from '../../../src/models/vlp/generate';
import { createSearcher, sampleTopP } from '../../../src/models/vlp/search';
import { restoreBackendAfter } from '../../backend/helpers';
import { BOS, EOS, disposeInputs, makeInputs, sharpen, tinyConfig } from './explainer_helpers';

/**
 * Drives a searcher with a fixed next-token table: `table(tokens)` gives the probabilities after a
 * prefix of generated tokens (batch row 0 only).
 */
function runTable(opts: GenerateOptions, vocab: number, table: (tokens: number[]) => number[]): number[] {
  const s = createSearcher(opts, 1, vocab);
  for (let guard = 0; guard < 100; guard++) {
    const logits = new Float32Array(s.rowTokens.flatMap((t) => table(t).map((p) => Math.log(p))));
    if (s.advance(logits) === null) return s.results()[0];
  }
  throw new Error('searcher did not stop');
}

describe('VLP generation', function () {
  this.timeout(60000);
  restoreBackendAfter();
  before(async () => {
    // One thread: these models are tiny (per-op overhead dominates) and on a loaded 2-core machine
    // the second thread's synchronization costs more than it brings (measured: 35 vs 200 ms per
    // training step). A wasm backend initialized earlier in the process is kept as it is.
    await initBackend({ name: 'wasm', threads: 1 });
  });

  it('searchers on a hand-made table: beam finds the better sequence, greedy does not', () => {
    // Vocab: 0 = eos, 1 = a, 2 = b. First step: a 0.5, b 0.4, eos 0.1. After a: eos 0.3, a 0.35, b 0.35
    // (flat); after b: eos 0.9. Greedy: a, then a (tie with b, lowest id), ... Beam (k=2): "b eos" has
    // p = 0.36 > any continuation of a (<= 0.5 * 0.35).
    const table = (t: number[]): number[] => {
      if (t.length === 0) return [0.1, 0.5, 0.4];
      if (t[t.length - 1] === 2) return [0.9, 0.05, 0.05];
      return [0.3, 0.35, 0.35];
    };
    const base = { maxLength: 4, bosId: 1, eosId: 0 };
    assert.deepEqual(runTable({ ...base, strategy: 'greedy' }, 3, table), [1, 1, 1, 1]);
    assert.deepEqual(runTable({ ...base, strategy: 'beam', beamSize: 2, lengthPenalty: 0 }, 3, table), [2]);
    assert.deepEqual(runTable({ ...base, strategy: 'beam', beamSize: 1 }, 3, table), [1, 1, 1, 1]);
    // Length penalty: eos right away has p 0.5 (length 1); "a a a eos" has p 0.13 (length 4). Without
    // a penalty the short one wins; with length^3 in the denominator the long one does.
    const early = (t: number[]): number[] => (t.length === 0 ? [0.5, 0.3, 0.2] : t.length < 3 ? [0.2, 0.7, 0.1] : [0.9, 0.05, 0.05]);
    assert.deepEqual(runTable({ ...base, strategy: 'beam', beamSize: 2, lengthPenalty: 0 }, 3, early), []);
    assert.deepEqual(runTable({ ...base, strategy: 'beam', beamSize: 2, lengthPenalty: 3 }, 3, early), [1, 1, 1]);
    // Options are checked.
    assert.throws(() => createSearcher({ ...base, strategy: 'top_p', topP: 0 }, 1, 3), ConfigError);
    assert.throws(() => createSearcher({ ...base, strategy: 'beam', beamSize: 0 }, 1, 3), ConfigError);
    assert.throws(() => createSearcher({ ...base, strategy: 'greedy', eosId: 3 }, 1, 3), ConfigError);
  });

  it('top-p sampling: only the nucleus is sampled, in proportion, reproducibly', () => {
    const logits = [0.5, 0.3, 0.15, 0.05].map(Math.log);
    const counts = [0, 0, 0, 0];
    const rng = new Rng(1, 'test');
    for (let i = 0; i < 4000; i++) counts[sampleTopP(logits, 0.75, 1, rng)]++;
    assert.equal(counts[2] + counts[3], 0, 'outside the 0.75 nucleus {0, 1}');
    assert.ok(Math.abs(counts[0] / 4000 - 0.625) < 0.03, `p(0 | nucleus) = 0.625, got ${counts[0] / 4000}`);
    // Temperature -> 0 concentrates on the argmax; p -> 0 is greedy.
    assert.equal(sampleTopP(logits, 1, 1e-3, new Rng(2)), 0);
    assert.equal(sampleTopP([0, 3, 1], 1e-9, 1, new Rng(3)), 1);
    const a = Array.from({ length: 20 }, (_, i) => sampleTopP(logits, 0.95, 1, new Rng(4, i)));
    const b = Array.from({ length: 20 }, (_, i) => sampleTopP(logits, 0.95, 1, new Rng(4, i)));
    assert.deepEqual(a, b);
  });

  describe('on a random tiny model', () => {
    const c = tinyConfig({ max_positions: 48 });
    let model: VlpExplainer;
    let inputs: VlpInputs;
    before(() => {
      model = new VlpExplainer(c, { seed: 21 });
      sharpen(model, 22, 0.5);
      inputs = makeInputs(c, 3, 23);
    });
    after(() => {
      disposeInputs(inputs);
      model.dispose();
    });
    const base = { maxLength: 12, bosId: BOS, eosId: EOS };

    it('cached and uncached decoding give the same tokens (greedy, beam, top-p)', () => {
      const cases: GenerateOptions[] = [
        { ...base, strategy: 'greedy' },
        { ...base, strategy: 'beam', beamSize: 3 },
        { ...base, strategy: 'beam', beamSize: 2, lengthPenalty: 0.5 },
        { ...base, strategy: 'top_p', topP: 0.9, temperature: 1.5, seed: 7 },
      ];
      let sawEos = false;
      for (const opts of cases) {
        const cached = generate(model, inputs, opts);
        const uncached = generate(model, inputs, { ...opts, useCache: false });
        assert.deepEqual(cached, uncached, `${opts.strategy}: cached ${JSON.stringify(cached)} vs uncached ${JSON.stringify(uncached)}`);
        assert.equal(cached.length, 3);
        for (const row of cached) {
          assert.ok(row.length <= base.maxLength && !row.includes(EOS));
          if (row.length < base.maxLength) sawEos = true;
        }
        // Rows differ: the decoding depends on the inputs.
        assert.ok(new Set(cached.map((r) => r.join(','))).size > 1, `${opts.strategy}: all rows equal ${JSON.stringify(cached)}`);
      }
      assert.ok(sawEos, 'some row stops at <eos> (the stopping path is exercised)');
    });

    it('beam with k = 1 and top-p with p -> 0 equal greedy; seeded sampling is reproducible', () => {
      const greedy = generate(model, inputs, { ...base, strategy: 'greedy' });
      assert.deepEqual(generate(model, inputs, { ...base, strategy: 'beam', beamSize: 1 }), greedy);
      assert.deepEqual(generate(model, inputs, { ...base, strategy: 'top_p', topP: 1e-6, seed: 3 }), greedy);
      const sampled = [1, 2, 3].map((seed) => generate(model, inputs, { ...base, strategy: 'top_p', topP: 1, temperature: 2, seed }));
      assert.ok(sampled.some((s) => JSON.stringify(s) !== JSON.stringify(greedy)), 'sampling at temperature 2 departs from greedy');
      assert.deepEqual(generate(model, inputs, { ...base, strategy: 'top_p', topP: 1, temperature: 2, seed: 2 }), sampled[1], 'same seed, same sample');
    });

    it('no tensors left behind; train mode restored; max_positions checked', () => {
      model.train();
      const before = tf.memory().numTensors;
      for (const strategy of ['greedy', 'beam', 'top_p'] as const) {
        generate(model, inputs, { ...base, strategy, beamSize: 3 });
        generate(model, inputs, { ...base, strategy, beamSize: 2, useCache: false, maxLength: 4 });
      }
      assert.equal(tf.memory().numTensors, before);
      assert.equal(model.training, true);
      assert.equal(model.h.blocks[0].attn.attn_dropout.training, true);
      model.eval();
      assert.throws(() => generate(model, inputs, { ...base, strategy: 'greedy', maxLength: 40 }), /max_positions/);
    });
  });

  it('a tiny model trained on three examples generates each response exactly (HOI- and box-conditioned)', () => {
    const c = tinyConfig({ dim: 32, heads: 2, layers: 2, vocab_size: 12, max_hois: 2, instruction_length: 3, dropout: 0, max_positions: 24, box_frequencies: 4 });
    const m = new VlpExplainer(c, { seed: 31 });
    // Same image and instruction; examples 0 and 2 have the same triplet (person stab knife) with the
    // subject on the left vs the right: only the box encoding tells them apart.
    const none = [c.num_categories, c.num_verbs, c.num_categories];
    const rows = [
      { hoi: [[0, 1, 2], none], sbox: [0.05, 0.1, 0.35, 0.9], response: [3, 4, 5] },
      { hoi: [[0, 2, 3], none], sbox: [0.3, 0.1, 0.6, 0.9], response: [6, 7, 5, 8] },
      { hoi: [[0, 1, 2], none], sbox: [0.6, 0.1, 0.95, 0.9], response: [9, 10] },
    ];
    const B = rows.length;
    const T = 1 + Math.max(...rows.map((r) => r.response.length)) + 1; // bos + tokens + eos
    const shared = makeInputs(c, 1, 32, [2, 2]);
    const tile = <R extends tf.Rank>(t: tf.Tensor<R>): tf.Tensor<R> => tf.tile(t, [B, ...t.shape.slice(1).map(() => 1)]);
    const inputs: VlpInputs = {
      visual: tile(shared.visual),
      instruction: tile(shared.instruction),
      hoiSubject: tf.tensor2d(rows.map((r) => r.hoi.map((h) => h[0])), undefined, 'int32'),
      hoiVerb: tf.tensor2d(rows.map((r) => r.hoi.map((h) => h[1])), undefined, 'int32'),
      hoiObject: tf.tensor2d(rows.map((r) => r.hoi.map((h) => h[2])), undefined, 'int32'),
      hoiSubjectBox: tf.tensor3d(rows.map((r) => [r.sbox, [0, 0, 0, 0]])),
      hoiObjectBox: tf.tensor3d(rows.map(() => [[0.4, 0.4, 0.5, 0.5], [0, 0, 0, 0]])),
    };
    disposeInputs(shared);
    const seqs = rows.map((r) => {
      const s = [BOS, ...r.response, EOS];
      return [...s, ...new Array(T - s.length).fill(0)];
    });
    const ids = tf.tensor2d(seqs, [B, T], 'int32');
    const input = ids.slice([0, 0], [B, T - 1]);
    const target = ids.slice([0, 1], [B, T - 1]);
    const mask = tf.tensor2d(rows.map((r) => Array.from({ length: T - 1 }, (_, t) => (t <= r.response.length ? 1 : 0))));
    const opt = tf.train.adam(0.01);
    const vars = m.trainableVariables();
    m.train();
    const t0 = Date.now();
    let loss = Infinity;
    for (let step = 0; step < 100; step++) {
      const l = opt.minimize(() => responseLoss(m.forward(inputs, input), target, mask), true, vars) as tf.Scalar;
      if (step % 10 === 9 || step === 99) loss = l.dataSync()[0];
      l.dispose();
    }
    const seconds = (Date.now() - t0) / 1000;
    m.eval();
    const want = rows.map((r) => r.response);
    assert.ok(loss < 0.05, `loss after 100 steps: ${loss}`);
    assert.deepEqual(generate(m, inputs, { strategy: 'greedy', maxLength: 8, bosId: BOS, eosId: EOS }), want);
    assert.deepEqual(generate(m, inputs, { strategy: 'beam', beamSize: 3, maxLength: 8, bosId: BOS, eosId: EOS }), want);
    console.log(`      trained 100 steps in ${seconds.toFixed(1)} s, final loss ${loss.toFixed(4)}`);
    opt.dispose();
    tf.dispose([ids, input, target, mask]);
    disposeInputs(inputs);
    m.dispose();
  });
});
