/**
 * Attention and the transformer block: the causal+prefix mask, ONNX parity (constant and
 * graph-input prefix length, dynamic batch and length), and the key/value cache: step-by-step
 * decoding with the cache equals the full causal forward, in tfjs and in the exported
 * decoder-step graph.
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../../src/backend/tf';
import { OnnxGraph } from '../../../src/export/onnx_graph';
import {
  Embedding, KVCache, LayerNorm, Linear, MASK_VALUE, Module, MultiHeadAttention, TransformerBlock,
  causalPrefixBias, deriveSeed,
} from '../../../src/models/nn';
import { OrtFeed, feed, feedInt64, maxAbsDiff, parityRecord, randInt, randn, record, runOrt } from './parity_helpers';

const TOL = 1e-4;

/** A two-block GPT for the cache tests: wte + wpe -> blocks -> ln_f -> lm_head. */
class TinyLM extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly blocks: TransformerBlock[];
  readonly ln_f: LayerNorm;
  readonly lm_head: Linear;

  constructor(readonly vocab: number, readonly dim: number, readonly heads: number, layers: number, seed: number) {
    super();
    this.wte = this.registerModule('wte', new Embedding(vocab, dim, { seed: deriveSeed(seed, 'wte') }));
    this.wpe = this.registerModule('wpe', new Embedding(32, dim, { seed: deriveSeed(seed, 'wpe') }));
    this.blocks = [];
    for (let i = 0; i < layers; i++) {
      // Weights larger than GPT-2's 0.02 so that attention patterns are far from uniform.
      this.blocks.push(this.registerModule(`h${i}`, new TransformerBlock(dim, { numHeads: heads, seed: deriveSeed(seed, 'h', i) })));
    }
    this.ln_f = this.registerModule('ln_f', new LayerNorm(dim));
    this.lm_head = this.registerModule('lm_head', new Linear(dim, vocab, { seed: deriveSeed(seed, 'lm_head') }));
  }

  /** ids [B, T] int32 -> logits [B, T, V]; positions continue after the caches' length. */
  forward(ids: tf.Tensor2D, opts: { caches?: KVCache[]; prefixLen?: number } = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const past = opts.caches?.[0].length ?? 0;
      const t = ids.shape[1];
      const pos = tf.range(past, past + t, 1, 'int32').expandDims(0); // [1, T]
      let x = tf.add(this.wte.forward(ids), this.wpe.forward(pos)) as tf.Tensor3D; // [B, T, C]
      this.blocks.forEach((b, i) => {
        x = b.forward(x, { cache: opts.caches?.[i], prefixLen: opts.prefixLen });
      });
      return this.lm_head.forward(this.ln_f.forward(x)) as tf.Tensor3D;
    });
  }

  /** ids, position_ids [B, T] int64 -> logits (+ present k/v per layer when `cache`). */
  toOnnx(g: OnnxGraph, ids: string, positionIds?: string, opts: { prefixLen?: number | string; past?: Array<{ key: string; value: string }>; cache?: boolean } = {}): string | string[] {
    const o = g.ops('TinyLM');
    let x = o.Add(this.wte.toOnnx(g, ids), this.wpe.toOnnx(g, positionIds as string));
    const presents: string[] = [];
    this.blocks.forEach((b, i) => {
      if (opts.cache) {
        const r = b.toOnnxWithCache(g, x, { prefixLen: opts.prefixLen, pastKey: opts.past?.[i].key, pastValue: opts.past?.[i].value });
        x = r.y;
        presents.push(r.presentKey, r.presentValue);
      } else {
        x = b.toOnnx(g, x, { prefixLen: opts.prefixLen });
      }
    });
    const logits = this.lm_head.toOnnx(g, this.ln_f.toOnnx(g, x));
    return opts.cache ? [logits, ...presents] : logits;
  }
}

describe('attention and transformer block', function () {
  this.timeout(60000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('causalPrefixBias: j < P or j <= L + i', () => {
    const M = MASK_VALUE;
    // T = 4, no cache, P = 2: rows 0 and 1 see the prefix {0, 1}; row 2 sees 0..2; row 3 all.
    assert.deepEqual(Array.from(causalPrefixBias(4, 0, 2) ?? []), [
      0, 0, M, M,
      0, 0, M, M,
      0, 0, 0, M,
      0, 0, 0, 0,
    ]);
    // T = 2 after a cache of 3, P = 0: row 0 (position 3) sees 0..3; row 1 sees all five.
    assert.deepEqual(Array.from(causalPrefixBias(2, 3, 0) ?? []), [0, 0, 0, 0, M, 0, 0, 0, 0, 0]);
    // One new position after the cache: nothing to mask.
    assert.equal(causalPrefixBias(1, 5, 2), null);
  });

  it('the mask in tfjs: the prefix is bidirectional, the rest causal', () => {
    const attn = new MultiHeadAttention(8, 2, { seed: 1 });
    attn.eval();
    const x = randn([1, 6, 8], 2);
    // Change position 4 (after the prefix of 3) and position 1 (inside it).
    const edit = (pos: number): tf.Tensor => tf.tidy(() => {
      const d = x.arraySync() as number[][][];
      d[0][pos] = d[0][pos].map((v) => v + 1);
      return tf.tensor(d);
    });
    const base = tf.tidy(() => attn.forward(x as tf.Tensor3D, { prefixLen: 3 })).arraySync() as number[][][];
    const x4 = edit(4);
    const x1 = edit(1);
    const y4 = tf.tidy(() => attn.forward(x4 as tf.Tensor3D, { prefixLen: 3 })).arraySync() as number[][][];
    const y1 = tf.tidy(() => attn.forward(x1 as tf.Tensor3D, { prefixLen: 3 })).arraySync() as number[][][];
    const rowDiff = (a: number[][][], b: number[][][], i: number): number => maxAbsDiff(a[0][i], b[0][i]);
    for (let i = 0; i < 4; i++) assert.equal(rowDiff(base, y4, i), 0, `row ${i} must not see position 4`);
    assert.ok(rowDiff(base, y4, 4) > 1e-3 && rowDiff(base, y4, 5) > 1e-3);
    // Position 0 sees position 1 because both are in the prefix.
    assert.ok(rowDiff(base, y1, 0) > 1e-3, 'prefix position 0 sees prefix position 1');
    tf.dispose([x, x4, x1]);
    attn.dispose();
  });

  async function attentionParity(name: string, attn: MultiHeadAttention, prefix: number | 'input', prefixValues: number[], shapes: number[][]): Promise<void> {
    attn.eval();
    const g = new OnnxGraph('attention');
    const x = g.input('x', ['batch', 'seq', attn.dim]);
    const p = prefix === 'input' ? g.input('prefix_len', [], 'int64') : prefix;
    g.output('y', ['batch', 'seq', attn.dim], 'float32', { from: attn.toOnnx(g, x, { prefixLen: p }) });
    const bytes = g.toModelProto();
    for (const shape of shapes) {
      for (const pv of prefixValues) {
        const xt = randn(shape, shape[0] * 100 + shape[1] + pv);
        const y = tf.tidy(() => attn.forward(xt as tf.Tensor3D, { prefixLen: pv }));
        const feeds: Record<string, OrtFeed> = prefix === 'input' ? { x: feed(xt), prefix_len: { data: BigInt64Array.of(BigInt(pv)), dims: [] } } : { x: feed(xt) };
        const out = await runOrt(bytes, feeds);
        assert.deepEqual(out.y.dims, shape);
        const diff = record(name, maxAbsDiff(out.y.data, y.dataSync()));
        assert.ok(diff <= TOL, `${name} ${shape} P=${pv}: ${diff}`);
        tf.dispose([xt, y]);
      }
    }
  }

  it('MultiHeadAttention ONNX parity: constant prefix, batch 1 and 3, two lengths', async () => {
    const attn = new MultiHeadAttention(12, 3, { seed: 3, weightInit: undefined });
    await attentionParity('MultiHeadAttention (causal, P=3)', attn, 3, [3], [[1, 7, 12], [3, 5, 12]]);
    attn.dispose();
  });

  it('MultiHeadAttention ONNX parity: prefix length as an int64 graph input', async () => {
    const attn = new MultiHeadAttention(8, 2, { seed: 4 });
    await attentionParity('MultiHeadAttention (P as input)', attn, 'input', [0, 2, 6], [[2, 6, 8]]);
    attn.dispose();
  });

  it('MultiHeadAttention ONNX parity: non-causal', async () => {
    const attn = new MultiHeadAttention(8, 4, { seed: 5, causal: false });
    await attentionParity('MultiHeadAttention (full)', attn, 0, [0], [[2, 5, 8]]);
    attn.dispose();
  });

  it('TransformerBlock (LN -> MHA causal+prefix -> residual -> LN -> MLP) ONNX parity, batch 1 and 3', async () => {
    const block = new TransformerBlock(16, { numHeads: 4, seed: 6 });
    block.eval();
    const g = new OnnxGraph('block');
    const x = g.input('x', ['batch', 'seq', 16]);
    g.output('y', ['batch', 'seq', 16], 'float32', { from: block.toOnnx(g, x, { prefixLen: 2 }) });
    const bytes = g.toModelProto();
    for (const shape of [[1, 6, 16], [3, 9, 16]]) {
      const xt = randn(shape, 7 + shape[0]);
      const y = tf.tidy(() => block.forward(xt as tf.Tensor3D, { prefixLen: 2 }));
      const out = await runOrt(bytes, { x: feed(xt) });
      assert.deepEqual(out.y.dims, shape);
      const diff = record(`TransformerBlock (batch ${shape[0]})`, maxAbsDiff(out.y.data, y.dataSync()));
      assert.ok(diff <= TOL, `block ${shape}: ${diff}`);
      tf.dispose([xt, y]);
    }
    block.dispose();
  });

  it('KV cache: prefix then step-by-step decoding equals the full causal forward (tfjs)', () => {
    const lm = new TinyLM(13, 16, 4, 2, 8);
    lm.eval();
    const [B, P, T] = [2, 4, 9];
    const ids = randInt([B, T], 13, 9) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const full = tf.tidy(() => lm.forward(ids, { prefixLen: P })); // [B, T, V]
    const caches = [new KVCache(), new KVCache()];
    const steps: tf.Tensor[] = [];
    steps.push(tf.tidy(() => lm.forward(ids.slice([0, 0], [B, P]), { caches, prefixLen: P })));
    for (let t = P; t < T; t++) steps.push(tf.tidy(() => lm.forward(ids.slice([0, t], [B, 1]), { caches, prefixLen: P })));
    assert.equal(caches[0].length, T);
    assert.deepEqual(caches[1].k?.shape, [B, 4, T, 4]);
    const cached = tf.concat(steps, 1);
    const diff = record('KV cache vs full forward (tfjs)', maxAbsDiff(cached.dataSync(), full.dataSync()));
    assert.ok(diff < 1e-5, `cached decoding differs by ${diff}`);
    // A cache that ignored the prefix rule would differ: the prefix must matter.
    const noPrefix = tf.tidy(() => lm.forward(ids));
    assert.ok(maxAbsDiff(noPrefix.dataSync(), full.dataSync()) > 1e-3);
    tf.dispose([full, cached, noPrefix, ...steps]);
    caches.forEach((c) => c.dispose());
    assert.equal(tf.memory().numTensors, before, 'no tensors left behind by cached decoding');
    // The prefix must arrive in one call.
    const c2 = [new KVCache(), new KVCache()];
    tf.tidy(() => { lm.forward(ids.slice([0, 0], [B, 2]), { caches: c2, prefixLen: P }); });
    assert.throws(() => tf.tidy(() => lm.forward(ids.slice([0, 2], [B, 1]), { caches: c2, prefixLen: P })), /prefix \(4\) must arrive in one call/);
    c2.forEach((c) => c.dispose());
    ids.dispose();
    lm.dispose();
  });

  it('KV cache export: prefix-encoder and decoder-step graphs match tfjs', async () => {
    const lm = new TinyLM(11, 8, 2, 2, 10);
    lm.eval();
    const [B, P, T] = [3, 5, 8];
    const ids = randInt([B, T], 11, 11) as tf.Tensor2D;
    const full = tf.tidy(() => lm.forward(ids, { prefixLen: P })); // [B, T, V]

    // Prefix encoder: ids [B, P] -> logits + present k/v (no past inputs).
    const ge = new OnnxGraph('prefix_encoder');
    const eIds = ge.input('input_ids', ['batch', 'seq'], 'int64');
    const ePos = ge.input('position_ids', [1, 'seq'], 'int64');
    const eOut = lm.toOnnx(ge, eIds, ePos, { prefixLen: P, cache: true }) as string[];
    ge.output('logits', ['batch', 'seq', 11], 'float32', { from: eOut[0] });
    for (let i = 0; i < 2; i++) {
      ge.output(`present_key_${i}`, ['batch', 2, 'seq', 4], 'float32', { from: eOut[1 + 2 * i] });
      ge.output(`present_value_${i}`, ['batch', 2, 'seq', 4], 'float32', { from: eOut[2 + 2 * i] });
    }
    // Decoder step: one token with past k/v of any length.
    const gd = new OnnxGraph('decoder_step');
    const dIds = gd.input('input_ids', ['batch', 1], 'int64');
    const dPos = gd.input('position_ids', [1, 1], 'int64');
    const past = [0, 1].map((i) => ({
      key: gd.input(`past_key_${i}`, ['batch', 2, 'past', 4]),
      value: gd.input(`past_value_${i}`, ['batch', 2, 'past', 4]),
    }));
    const dOut = lm.toOnnx(gd, dIds, dPos, { prefixLen: P, past, cache: true }) as string[];
    gd.output('logits', ['batch', 1, 11], 'float32', { from: dOut[0] });
    for (let i = 0; i < 2; i++) {
      gd.output(`present_key_${i}`, ['batch', 2, 'total', 4], 'float32', { from: dOut[1 + 2 * i] });
      gd.output(`present_value_${i}`, ['batch', 2, 'total', 4], 'float32', { from: dOut[2 + 2 * i] });
    }
    const encBytes = ge.toModelProto();
    const decBytes = gd.toModelProto();

    const posFeed = (start: number, n: number) => ({ data: BigInt64Array.from({ length: n }, (_, k) => BigInt(start + k)), dims: [1, n] });
    const prefixIds = ids.slice([0, 0], [B, P]);
    const enc = await runOrt(encBytes, { input_ids: feedInt64(prefixIds), position_ids: posFeed(0, P) });
    const fullData = full.arraySync() as number[][][];
    const sliceLogits = (t0: number, n: number): number[] => fullData.flatMap((row) => row.slice(t0, t0 + n).flat());
    let worst = maxAbsDiff(enc.logits.data, sliceLogits(0, P));
    // Greedy-free check: feed the true next tokens, carrying the ONNX presents as the next pasts.
    let kv = [0, 1].map((i) => ({ k: enc[`present_key_${i}`], v: enc[`present_value_${i}`] }));
    assert.deepEqual(kv[0].k.dims, [B, 2, P, 4]);
    for (let t = P; t < T; t++) {
      const feeds: Record<string, OrtFeed> = {
        input_ids: feedInt64(ids.slice([0, t], [B, 1])),
        position_ids: posFeed(t, 1),
      };
      kv.forEach((c, i) => {
        feeds[`past_key_${i}`] = c.k;
        feeds[`past_value_${i}`] = c.v;
      });
      const step = await runOrt(decBytes, feeds);
      worst = Math.max(worst, maxAbsDiff(step.logits.data, sliceLogits(t, 1)));
      kv = [0, 1].map((i) => ({ k: step[`present_key_${i}`], v: step[`present_value_${i}`] }));
    }
    assert.deepEqual(kv[1].v.dims, [B, 2, T, 4]);
    // The final ONNX cache equals the tfjs cache after the same tokens.
    const caches = [new KVCache(), new KVCache()];
    tf.tidy(() => { lm.forward(ids, { caches, prefixLen: P }); });
    worst = Math.max(worst, maxAbsDiff(kv[1].k.data, caches[1].k!.dataSync()), maxAbsDiff(kv[0].v.data, caches[0].v!.dataSync()));
    record('prefix-encoder + decoder-step graphs vs full forward', worst);
    assert.ok(worst <= TOL, `decoder graphs differ by ${worst}`);
    caches.forEach((c) => c.dispose());
    tf.dispose([ids, full, prefixIds]);
    lm.dispose();
  });

  after(() => {
    const rows = [...parityRecord].map(([k, v]) => `    ${k.padEnd(56)} ${v.toExponential(2)}`);
    console.log(`  max abs diff:\n${rows.join('\n')}`);
    parityRecord.clear();
  });
});
