/**
 * The explainer's ONNX graphs in onnxruntime-node against tfjs (max abs diff <= 1e-4): the
 * `vlp_prefix` graph (logits of the last prefix position and the present k/v of every layer), the
 * `vlp_decoder` step graph carried for three greedy steps on ORT's own caches (same tokens and
 * logits as tfjs), the teacher-forcing graph, dynamic batch / grid size, and the ablation / untied
 * variant whose prefix graph has no box inputs.
 */
import { strict as assert } from 'node:assert';
import * as ort from 'onnxruntime-node';
import { initBackend, tf } from '../../../src/backend';
import { OnnxGraph } from '../../../src/export/onnx_graph';
import { VlpModelConfig } from '../../../src/models/vlp/config';
import { disposePointerMemory, VlpExplainer, VlpInputs } from '../../../src/models/vlp/explainer';
import { VLP_ONNX_NAMES as N, VlpFeedArray, declareVlpPrefixInputs, vlpPrefixFeeds, vlpPrefixInputNames } from '../../../src/models/vlp/explainer_onnx';
import { generate } from '../../../src/models/vlp/generate';
import { argmax } from '../../../src/models/vlp/search';
import { restoreBackendAfter } from '../../backend/helpers';
import { feedInt64, maxAbsDiff, parityRecord, record } from '../nn/parity_helpers';
import { BOS, EOS, disposeInputs, makeInputs, makeResponse, sharpen, tinyConfig } from './explainer_helpers';

const TOL = 1e-4;

type OrtOut = Record<string, { data: Float32Array; dims: number[] }>;

async function session(bytes: Uint8Array): Promise<{ run(feeds: Record<string, VlpFeedArray>): Promise<OrtOut>; inputNames: readonly string[]; release(): Promise<void> }> {
  const s = await ort.InferenceSession.create(bytes);
  return {
    inputNames: s.inputNames,
    async run(feeds) {
      const inputs: Record<string, ort.Tensor> = {};
      for (const [k, f] of Object.entries(feeds)) inputs[k] = new ort.Tensor(f.data instanceof BigInt64Array ? 'int64' : 'float32', f.data, f.dims);
      const res = await s.run(inputs);
      const out: OrtOut = {};
      for (const [k, v] of Object.entries(res)) out[k] = { data: v.data as Float32Array, dims: [...v.dims] };
      return out;
    },
    release: () => s.release(),
  };
}

function graphs(m: VlpExplainer): { prefix: Uint8Array; decoder: Uint8Array } {
  const gp = new OnnxGraph('vlp_prefix');
  m.toOnnxPrefix(gp);
  const gd = new OnnxGraph('vlp_decoder');
  m.toOnnxDecoderStep(gd);
  return { prefix: gp.toModelProto(), decoder: gd.toModelProto() };
}

function values(t: tf.Tensor): Float32Array {
  const v = Float32Array.from(t.dataSync() as Float32Array);
  t.dispose();
  return v;
}

/**
 * Prefix graph + 3 greedy decoder steps on ORT (its presents fed back as pasts) against tfjs
 * encodePrefix + step on the same tokens and against `generate` (greedy); returns the worst diff.
 */
async function checkGenerationGraphs(c: VlpModelConfig, m: VlpExplainer, inputs: VlpInputs, label: string): Promise<number> {
  const { prefix, decoder } = graphs(m);
  const sp = await session(prefix);
  const sd = await session(decoder);
  try {
    assert.deepEqual([...sp.inputNames], vlpPrefixInputNames(c));
    const batch = inputs.visual.shape[0];
    const P = m.prefixLength(inputs.visual.shape[1] * inputs.visual.shape[2]);
    const caches = m.newCaches();
    const enc = await sp.run(vlpPrefixFeeds(c, inputs));
    const state = m.encodePrefix(inputs, caches);
    const tfLogits = values(state.logits);
    const V = m.numLogits;
    assert.deepEqual(enc[N.logits].dims, [batch, V]);
    let worst = maxAbsDiff(enc[N.logits].data, tfLogits);
    const pointerFeeds: Record<string, VlpFeedArray> = {};
    if (state.pointer) {
      const p = state.pointer;
      for (const [name, t] of [[N.pointerEmbed, p.embed], [N.pointerKeys, p.keys], [N.pointerBias, p.bias]] as const) {
        assert.deepEqual(enc[name].dims, t.shape);
        worst = Math.max(worst, maxAbsDiff(enc[name].data, t.dataSync()));
        pointerFeeds[name] = enc[name];
      }
    }
    const dH = c.dim / c.heads;
    let past: Record<string, VlpFeedArray> = {};
    for (let i = 0; i < c.layers; i++) {
      const k = enc[N.presentKey(i)];
      assert.deepEqual(k.dims, [batch, c.heads, P, dH]);
      worst = Math.max(worst, maxAbsDiff(k.data, caches[i].k!.dataSync()), maxAbsDiff(enc[N.presentValue(i)].data, caches[i].v!.dataSync()));
      past[N.pastKey(i)] = k;
      past[N.pastValue(i)] = enc[N.presentValue(i)];
    }
    // Three greedy steps from <bos>, each engine on its own cache.
    const ortTokens: number[][] = Array.from({ length: batch }, () => []);
    let feed = new Array<number>(batch).fill(BOS);
    for (let s = 0; s < 3; s++) {
      const position = P + s;
      const out = await sd.run({
        [N.inputIds]: { data: BigInt64Array.from(feed, BigInt), dims: [batch, 1] },
        [N.positionIds]: { data: new BigInt64Array(batch).fill(BigInt(position)), dims: [batch, 1] },
        ...past,
        ...pointerFeeds,
      });
      const tok = tf.tensor2d(feed, [batch, 1], 'int32');
      const tfStep = values(m.step(tok, caches, P, state.pointer));
      tok.dispose();
      worst = Math.max(worst, maxAbsDiff(out[N.logits].data, tfStep));
      past = {};
      for (let i = 0; i < c.layers; i++) {
        assert.deepEqual(out[N.presentKey(i)].dims, [batch, c.heads, position + 1, dH]);
        worst = Math.max(worst, maxAbsDiff(out[N.presentValue(i)].data, caches[i].v!.dataSync()));
        past[N.pastKey(i)] = out[N.presentKey(i)];
        past[N.pastValue(i)] = out[N.presentValue(i)];
      }
      feed = Array.from({ length: batch }, (_, b) => argmax(out[N.logits].data.subarray(b * V, (b + 1) * V)));
      feed.forEach((t, b) => ortTokens[b].push(t));
    }
    caches.forEach((k) => k.dispose());
    disposePointerMemory(state.pointer);
    // The same tokens as tfjs greedy generation (cut at <eos>, which ends a tfjs row).
    const tfTokens = generate(m, inputs, { strategy: 'greedy', maxLength: 3, bosId: BOS, eosId: EOS });
    const cut = ortTokens.map((r) => (r.includes(EOS) ? r.slice(0, r.indexOf(EOS)) : r));
    assert.deepEqual(cut, tfTokens, `${label}: ORT greedy ${JSON.stringify(ortTokens)} vs tfjs ${JSON.stringify(tfTokens)}`);
    return record(label, worst);
  } finally {
    await sp.release();
    await sd.release();
  }
}

describe('VLP explainer ONNX export (onnxruntime-node)', function () {
  this.timeout(60000);
  restoreBackendAfter();
  before(async () => {
    // One thread: see explainer.test.ts.
    await initBackend({ name: 'wasm', threads: 1 });
  });

  it('vlp_prefix + vlp_decoder match tfjs (logits, present k/v) over 3 greedy steps; batch and grid dynamic', async () => {
    const c = tinyConfig();
    const m = new VlpExplainer(c, { seed: 41 }).eval();
    sharpen(m, 42);
    for (const [batch, grid] of [[1, [2, 3]], [3, [3, 3]]] as Array<[number, [number, number]]>) {
      const inputs = makeInputs(c, batch, 43 + batch, grid);
      const worst = await checkGenerationGraphs(c, m, inputs, `prefix + 3 decoder steps (batch ${batch}, grid ${grid.join('x')})`);
      assert.ok(worst <= TOL, `batch ${batch}: ${worst}`);
      disposeInputs(inputs);
    }
    m.dispose();
  });

  it('ablation (box_encoding false) with an untied head: no box inputs, same parity', async () => {
    const c = tinyConfig({ box_encoding: false, tie_embeddings: false, layers: 3 });
    const m = new VlpExplainer(c, { seed: 51 }).eval();
    sharpen(m, 52);
    assert.deepEqual(vlpPrefixInputNames(c), ['visual', 'hoi_subject', 'hoi_verb', 'hoi_object', 'instruction']);
    const inputs = makeInputs(c, 2, 53);
    const worst = await checkGenerationGraphs(c, m, inputs, 'prefix + 3 decoder steps (no boxes, untied)');
    assert.ok(worst <= TOL, `${worst}`);
    disposeInputs(inputs);
    m.dispose();
  });

  it('box pointer: prefix outputs and decoder inputs pointer_*, same parity with pointer tokens chosen greedily', async () => {
    const c = tinyConfig({ box_pointer: true });
    const m = new VlpExplainer(c, { seed: 71 }).eval();
    sharpen(m, 72);
    // make pointer tokens win the greedy steps, so that the decoder embeds them too
    const key = m.namedParameters().get('pointer_key.weight')!;
    tf.tidy(() => key.assign(tf.mul(key, 3)));
    const inputs = makeInputs(c, 2, 73);
    const worst = await checkGenerationGraphs(c, m, inputs, 'prefix + 3 decoder steps (box pointer)');
    assert.ok(worst <= TOL, `${worst}`);
    const tokens = generate(m, inputs, { strategy: 'greedy', maxLength: 3, bosId: BOS, eosId: EOS });
    assert.ok(tokens.flat().some((t) => t >= c.vocab_size), `no pointer token chosen: ${JSON.stringify(tokens)}`);
    assert.ok(!tokens[0].some((t) => t === c.vocab_size + 4 || t === c.vocab_size + 5), 'row 0 points at its padding slot');
    disposeInputs(inputs);
    m.dispose();
  });

  for (const boxPointer of [false, true]) {
  it(`teacher-forcing graph (toOnnx) matches forward${boxPointer ? ' (box pointer)' : ''}`, async () => {
    const c = tinyConfig({ box_pointer: boxPointer });
    const m = new VlpExplainer(c, { seed: 61 }).eval();
    sharpen(m, 62);
    const g = new OnnxGraph('vlp_forward');
    const io = declareVlpPrefixInputs(g, c);
    const resp = g.input('response_ids', ['batch', 'response'], 'int64');
    g.output('logits', ['batch', 'response', m.numLogits], 'float32', { from: m.toOnnx(g, io, resp) });
    const s = await session(g.toModelProto());
    try {
      const inputs = makeInputs(c, 2, 63, [2, 2]);
      const response = makeResponse(c, 2, 5, 64);
      const out = await s.run({ ...vlpPrefixFeeds(c, inputs), response_ids: feedInt64(response) as VlpFeedArray });
      assert.deepEqual(out.logits.dims, [2, 5, m.numLogits]);
      const diff = record('teacher forcing (toOnnx vs forward)', maxAbsDiff(out.logits.data, values(m.forward(inputs, response))));
      assert.ok(diff <= TOL, `${diff}`);
      response.dispose();
      disposeInputs(inputs);
    } finally {
      await s.release();
    }
    m.dispose();
  });
  }

  after(() => {
    const rows = [...parityRecord].map(([k, v]) => `    ${k.padEnd(56)} ${v.toExponential(2)}`);
    console.log(`  max abs diff:\n${rows.join('\n')}`);
    parityRecord.clear();
  });
});
