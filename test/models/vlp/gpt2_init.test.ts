/**
 * GPT-2-format initialisation on a tiny random checkpoint written by the test: config reading,
 * name/shape checks of the loader (missing, unexpected, mis-shaped, buffers, `transformer.`
 * prefix), freezing + LoRA, a tokenizer.json that @huggingface/tokenizers loads, and a numerical
 * check that our blocks compute GPT-2's forward (a by-hand GPT-2 in plain tf ops, <= 1e-5).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../../../src/backend/tf';
import { CheckpointError, ConfigError } from '../../../src/errors';
import { Embedding, LayerNorm, Linear, Module, TransformerBlock, deriveSeed } from '../../../src/models/nn';
import {
  Gpt2Config, gpt2CheckpointFiles, loadGpt2Weights, prepareGpt2Finetune, readGpt2Config, vlpConfigFromGpt2, writeTinyGpt2Checkpoint,
} from '../../../src/models/vlp/gpt2_init';
import { LoadedTensor, readSafetensors, writeSafetensors } from '../../../src/train/safetensors';

const TOL = 1e-5;
const TINY = { nEmbd: 8, nLayer: 2, nHead: 2, nPositions: 16, seed: 3 };
const VOCAB = 256 + 6 + 1; // bytes, merges, <|endoftext|>

/** Children '0', '1', ... (what `h` is in GPT-2). */
class Blocks extends Module {
  constructor(readonly blocks: TransformerBlock[]) {
    super();
    blocks.forEach((b, i) => this.registerModule(String(i), b));
  }
  forward(): never {
    throw new Error('Blocks: call each block');
  }
  toOnnx(): never {
    throw new Error('Blocks: not exported');
  }
}

/** The decoder's GPT-2 names (wte, wpe, h.i, ln_f) plus a projection GPT-2 does not have. */
class TestDecoder extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: Blocks;
  readonly ln_f: LayerNorm;
  readonly visual_proj: Linear;
  readonly lm_head: Linear | null;

  constructor(opts: { dim: number; layers: number; heads: number; positions: number; vocab: number; untiedHead?: boolean }) {
    super();
    const seed = 99;
    this.wte = this.registerModule('wte', new Embedding(opts.vocab, opts.dim, { seed: deriveSeed(seed, 'wte') }));
    this.wpe = this.registerModule('wpe', new Embedding(opts.positions, opts.dim, { seed: deriveSeed(seed, 'wpe') }));
    const blocks = Array.from({ length: opts.layers }, (_, i) => new TransformerBlock(opts.dim, { numHeads: opts.heads, dropout: 0, seed: deriveSeed(seed, 'h', i) }));
    this.h = this.registerModule('h', new Blocks(blocks));
    this.ln_f = this.registerModule('ln_f', new LayerNorm(opts.dim));
    this.visual_proj = this.registerModule('visual_proj', new Linear(4, opts.dim, { seed: deriveSeed(seed, 'visual_proj') }));
    this.lm_head = opts.untiedHead ? this.registerModule('lm_head', new Linear(opts.dim, opts.vocab, { bias: false, seed: 5 })) : null;
  }

  /** ids [B, T] -> hidden states after ln_f [B, T, C]. */
  forward(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const pos = tf.range(0, ids.shape[1], 1, 'int32').expandDims(0); // [1, T]
      let x = tf.add(this.wte.forward(ids), this.wpe.forward(pos)) as tf.Tensor3D; // [B, T, C]
      for (const b of this.h.blocks) x = b.forward(x);
      return this.ln_f.forward(x) as tf.Tensor3D;
    });
  }

  toOnnx(): never {
    throw new Error('TestDecoder: not exported');
  }
}

function tinyDecoder(overrides: Partial<{ layers: number; positions: number; untiedHead: boolean }> = {}): TestDecoder {
  return new TestDecoder({ dim: TINY.nEmbd, layers: overrides.layers ?? TINY.nLayer, heads: TINY.nHead, positions: overrides.positions ?? TINY.nPositions, vocab: VOCAB, untiedHead: overrides.untiedHead });
}

function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

/** Copies the checkpoint folder `src` to a fresh folder with its tensors rewritten by `edit`. */
function editedCheckpoint(root: string, src: string, name: string, edit: (tensors: Map<string, LoadedTensor>) => Map<string, LoadedTensor>): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  for (const f of ['config.json', 'tokenizer.json']) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  const edited = edit(readSafetensors(path.join(src, 'model.safetensors')).tensors);
  const entries = new Map([...edited].map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data as Float32Array }]));
  writeSafetensors(path.join(dir, 'model.safetensors'), entries);
  return dir;
}

/** GPT-2 (HF GPT2Model) by hand from checkpoint tensors: ids [1, T] -> ln_f output [1, T, C]. */
function referenceGpt2(p: (name: string) => tf.Tensor, ids: number[], cfg: Gpt2Config): tf.Tensor {
  return tf.tidy(() => {
    const t = ids.length;
    const c = cfg.nEmbd;
    const nH = cfg.nHead;
    const dH = c / nH;
    const layerNorm = (x: tf.Tensor, prefix: string): tf.Tensor => {
      const mean = tf.mean(x, -1, true);
      const variance = tf.mean(tf.square(tf.sub(x, mean)), -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, cfg.layerNormEpsilon))), p(`${prefix}.weight`)), p(`${prefix}.bias`));
    };
    const conv1d = (x: tf.Tensor, prefix: string): tf.Tensor => tf.add(tf.matMul(x, p(`${prefix}.weight`) as tf.Tensor2D), p(`${prefix}.bias`));
    // gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    const geluNew = (x: tf.Tensor): tf.Tensor => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))));
    const causal = tf.tensor2d(Array.from({ length: t * t }, (_, k) => (k % t <= Math.floor(k / t) ? 1 : 0)), [t, t]).cast('bool'); // [T, T], j <= i
    let x = tf.add(tf.gather(p('wte.weight'), tf.tensor1d(ids, 'int32')), tf.slice(p('wpe.weight'), [0, 0], [t, c])); // [T, C]
    for (let i = 0; i < cfg.nLayer; i++) {
      const h = `h.${i}`;
      const qkv = conv1d(layerNorm(x, `${h}.ln_1`), `${h}.attn.c_attn`); // [T, 3C]
      const [q, k, v] = tf.split(qkv, 3, 1).map((z) => z.reshape([t, nH, dH]).transpose([1, 0, 2])); // [nH, T, dH]
      let scores = tf.div(tf.matMul(q, k, false, true), Math.sqrt(dH)); // [nH, T, T]
      scores = tf.where(causal, scores, tf.fill(scores.shape, -3.4028234663852886e38)); // HF: finfo.min
      const attended = tf.matMul(tf.softmax(scores, -1), v).transpose([1, 0, 2]).reshape([t, c]); // [T, C]
      x = tf.add(x, conv1d(attended, `${h}.attn.c_proj`));
      x = tf.add(x, conv1d(geluNew(conv1d(layerNorm(x, `${h}.ln_2`), `${h}.mlp.c_fc`)), `${h}.mlp.c_proj`));
    }
    return layerNorm(x, 'ln_f').expandDims(0); // [1, T, C]
  });
}

describe('vlp gpt2_init: GPT-2-format checkpoints', function () {
  this.timeout(30000);
  let root: string;
  let ckpt: string;

  before(async () => {
    await tf.setBackend('cpu');
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt2-init-'));
    ckpt = path.join(root, 'tiny');
    writeTinyGpt2Checkpoint(ckpt, TINY);
  });
  after(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('writes the three files; readGpt2Config reads them; vlpConfigFromGpt2 maps the keys', () => {
    const files = gpt2CheckpointFiles(ckpt);
    assert.equal(files.tokenizer, path.join(ckpt, 'tokenizer.json'));
    const cfg = readGpt2Config(ckpt);
    assert.deepEqual(cfg, { nEmbd: 8, nLayer: 2, nHead: 2, nPositions: 16, vocabSize: VOCAB, layerNormEpsilon: 1e-5, nInner: null });
    assert.deepEqual(vlpConfigFromGpt2(cfg), { dim: 8, layers: 2, heads: 2, max_positions: 16, vocab_size: VOCAB, mlp_hidden: 32 });
    assert.equal(vlpConfigFromGpt2({ ...cfg, nInner: 20 }).mlp_hidden, 20);
    assert.throws(() => vlpConfigFromGpt2({ ...cfg, layerNormEpsilon: 1e-6 }), (e: Error) => e instanceof CheckpointError && /layer_norm_epsilon = 0.000001: the decoder.s LayerNorm uses 0.00001/.test(e.message));
    const tensors = readSafetensors(files.weights).tensors;
    assert.deepEqual(tensors.get('transformer.wte.weight')?.shape, [VOCAB, 8]);
    assert.deepEqual(tensors.get('transformer.h.1.attn.c_attn.weight')?.shape, [8, 24]);
    assert.deepEqual(tensors.get('transformer.h.0.attn.bias')?.shape, [1, 1, 16, 16]);
  });

  it('readGpt2Config names the file and the field that is missing or invalid', () => {
    const bad = (name: string, edit: (c: Record<string, unknown>) => void): string => {
      const dir = path.join(root, name);
      fs.mkdirSync(dir);
      const c = JSON.parse(fs.readFileSync(path.join(ckpt, 'config.json'), 'utf8')) as Record<string, unknown>;
      edit(c);
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c));
      return dir;
    };
    const noHead = bad('cfg-no-head', (c) => delete c.n_head);
    assert.throws(() => readGpt2Config(noHead), (e: Error) => e instanceof CheckpointError && e.message === `${path.join(noHead, 'config.json')}: field 'n_head': expected an integer > 0, found nothing`);
    assert.throws(() => readGpt2Config(bad('cfg-relu', (c) => { c.activation_function = 'relu'; })), /field 'activation_function': expected gelu_new or gelu_pytorch_tanh .*found "relu"/);
    assert.throws(() => readGpt2Config(bad('cfg-frac', (c) => { c.n_embd = 7.5; })), /field 'n_embd': expected an integer > 0, found 7.5/);
    assert.throws(() => readGpt2Config(bad('cfg-heads', (c) => { c.n_head = 3; })), /'n_embd' \(8\) is not divisible by field 'n_head' \(3\)/);
    assert.equal(readGpt2Config(bad('cfg-nctx', (c) => { delete c.n_positions; c.n_ctx = 12; })).nPositions, 12);
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    assert.throws(() => readGpt2Config(empty), (e: Error) => e instanceof CheckpointError && e.message.startsWith(`${path.join(empty, 'config.json')}: file not found`));
    assert.throws(() => gpt2CheckpointFiles(noHead), /missing model\.safetensors, tokenizer\.json/);
  });

  it('loads every tensor by name (values equal), ignores the mask buffers, reports the rest, leaks nothing', () => {
    const model = tinyDecoder();
    const numTensors = tf.memory().numTensors;
    const r = loadGpt2Weights(model, ckpt);
    assert.equal(tf.memory().numTensors, numTensors);
    const ckptTensors = readSafetensors(path.join(ckpt, 'model.safetensors')).tensors;
    const gpt2Names = [...model.namedParameters().keys()].filter((n) => !n.startsWith('visual_proj.'));
    assert.equal(gpt2Names.length, 2 + 12 * 2 + 2);
    assert.deepEqual(r.loaded, gpt2Names);
    assert.deepEqual(r.notInCheckpoint, ['visual_proj.weight', 'visual_proj.bias']);
    assert.deepEqual(r.ignored.sort(), ['transformer.h.0.attn.bias', 'transformer.h.0.attn.masked_bias', 'transformer.h.1.attn.bias', 'transformer.h.1.attn.masked_bias']);
    for (const name of gpt2Names) {
      assert.deepEqual(values(model.namedParameters().get(name) as tf.Tensor), Array.from(ckptTensors.get(`transformer.${name}`)?.data ?? []), name);
    }
    model.dispose();
  });

  it('accepts names without the transformer. prefix; fills an untied lm_head with wte transposed', () => {
    const plain = editedCheckpoint(root, ckpt, 'no-prefix', (t) => new Map([...t].map(([k, v]) => [k.replace(/^transformer\./, ''), v])));
    const a = tinyDecoder();
    const b = tinyDecoder({ untiedHead: true });
    loadGpt2Weights(a, ckpt);
    const r = loadGpt2Weights(b, plain);
    assert.ok(r.loaded.includes('lm_head.weight'));
    assert.ok(r.ignored.includes('h.0.attn.bias'));
    assert.deepEqual(values(b.ln_f.weight), values(a.ln_f.weight));
    assert.deepEqual(values(b.lm_head?.weight as tf.Tensor), values(tf.tidy(() => tf.transpose(a.wte.weight))));
    a.dispose();
    b.dispose();
  });

  it('a shape mismatch names the parameter and both shapes, and assigns nothing', () => {
    const model = tinyDecoder({ positions: 8 });
    const before = values(model.wte.weight);
    assert.throws(() => loadGpt2Weights(model, ckpt), (e: Error) => e instanceof CheckpointError
      && e.message.includes("shape/dtype mismatches (1): wpe.weight: model [8,8], checkpoint 'transformer.wpe.weight' [16,8]")
      && e.message.startsWith(path.join(ckpt, 'model.safetensors')));
    assert.deepEqual(values(model.wte.weight), before);
    model.dispose();
  });

  it('lists tensors missing from the checkpoint and tensors the model lacks (first 10 + count)', () => {
    const partial = editedCheckpoint(root, ckpt, 'partial', (t) => {
      t.delete('transformer.h.1.mlp.c_fc.bias');
      t.delete('transformer.ln_f.weight');
      return t;
    });
    const model = tinyDecoder();
    assert.throws(() => loadGpt2Weights(model, partial), (e: Error) => e instanceof CheckpointError
      && e.message.includes('missing from the checkpoint (2): h.1.mlp.c_fc.bias, ln_f.weight') && !e.message.includes('not in the model'));
    model.dispose();
    const oneLayer = tinyDecoder({ layers: 1 });
    assert.throws(() => loadGpt2Weights(oneLayer, ckpt), (e: Error) => e instanceof CheckpointError
      && /not in the model \(12\): transformer\.h\.1\.ln_1\.weight, transformer\.h\.1\.ln_1\.bias, (transformer\.h\.1\.[a-z_.0-9]+, ){8}\.\.\. \(12 in all\)/.test(e.message));
    oneLayer.dispose();
  });

  it('our decoder computes what GPT-2 computes (hand-written GPT-2 forward, <= 1e-5)', () => {
    const model = tinyDecoder();
    loadGpt2Weights(model, ckpt);
    model.eval();
    const raw = new Map([...readSafetensors(path.join(ckpt, 'model.safetensors')).tensors].map(([k, t]) => [k, tf.tensor(t.data, t.shape, 'float32')]));
    const p = (name: string): tf.Tensor => {
      const t = raw.get(`transformer.${name}`);
      if (!t) throw new Error(`no tensor ${name}`);
      return t;
    };
    const ids = [71, 258, 5]; // 'G', the merge 'Ġthe', a control byte
    const cfg = readGpt2Config(ckpt);
    const expected = referenceGpt2(p, ids, cfg);
    const idsT = tf.tensor2d([ids], [1, 3], 'int32');
    const actual = model.forward(idsT);
    assert.deepEqual(actual.shape, [1, 3, 8]);
    const diff = Math.max(...values(tf.tidy(() => tf.abs(tf.sub(actual, expected)))));
    assert.ok(diff <= TOL, `max abs diff ${diff} > ${TOL}`);
    // Causality is part of what is compared: the first position must not see the others.
    const first = model.forward(tf.tensor2d([ids.slice(0, 1)], [1, 1], 'int32'));
    assert.ok(Math.max(...values(tf.tidy(() => tf.abs(tf.sub(first, actual.slice([0, 0, 0], [1, 1, 8])))))) <= TOL);
    const spread = Math.max(...values(expected)) - Math.min(...values(expected));
    assert.ok(spread > 1, `the reference output is nearly constant (${spread})`);
    tf.dispose([...raw.values(), expected, idsT, actual, first]);
    model.dispose();
  });

  it('prepareGpt2Finetune: base frozen; only adapters and non-GPT-2 parameters train; output unchanged', () => {
    const frozenOnly = tinyDecoder();
    assert.deepEqual(prepareGpt2Finetune(frozenOnly, { rank: 0 }).trainable, ['visual_proj.weight', 'visual_proj.bias']);
    frozenOnly.dispose();

    const model = tinyDecoder();
    loadGpt2Weights(model, ckpt);
    model.eval();
    const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
    const before = model.forward(ids);
    const { trainable } = prepareGpt2Finetune(model, { rank: 2, alpha: 4 });
    const adapters = [0, 1].flatMap((i) => ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'].flatMap((t) => [`h.${i}.${t}.lora_A`, `h.${i}.${t}.lora_B`]));
    assert.deepEqual(trainable.slice().sort(), [...adapters, 'visual_proj.weight', 'visual_proj.bias'].sort());
    assert.equal(model.trainableVariables().length, trainable.length);
    assert.deepEqual(model.namedParameters().get('h.1.mlp.c_fc.lora_A')?.shape, [8, 2]);
    assert.deepEqual(model.namedParameters().get('h.1.mlp.c_fc.lora_B')?.shape, [2, 32]);
    const after = model.forward(ids);
    assert.equal(Math.max(...values(tf.tidy(() => tf.abs(tf.sub(before, after))))), 0);
    // Loading again still works with adapters present: they are reported, not required.
    assert.deepEqual(loadGpt2Weights(model, ckpt).notInCheckpoint.filter((n) => n.includes('lora_')).length, adapters.length);
    tf.dispose([ids, before, after]);
    model.dispose();

    const some = tinyDecoder();
    const r = prepareGpt2Finetune(some, { rank: 1, targets: ['attn.c_attn'] });
    assert.deepEqual(r.trainable.filter((n) => n.includes('lora_')), ['h.0.attn.c_attn.lora_A', 'h.0.attn.c_attn.lora_B', 'h.1.attn.c_attn.lora_A', 'h.1.attn.c_attn.lora_B']);
    some.dispose();
  });

  it('prepareGpt2Finetune rejects bad options with ConfigError', () => {
    const model = tinyDecoder();
    assert.throws(() => prepareGpt2Finetune(model, { rank: 2, targets: ['attn.q_proj'] }), (e: Error) => e instanceof ConfigError && /lora\.targets: unknown 'attn\.q_proj' \(known: attn\.c_attn, attn\.c_proj, mlp\.c_fc, mlp\.c_proj\)/.test(e.message));
    assert.throws(() => prepareGpt2Finetune(model, { rank: -1 }), /lora\.rank: expected an integer >= 0/);
    model.dispose();
    const notGpt2 = new Linear(2, 2, { seed: 1 });
    assert.throws(() => prepareGpt2Finetune(notGpt2, { rank: 1 }), /has no GPT-2 parameters/);
    notGpt2.dispose();
  });

  it('tokenizer.json is a byte-level BPE that @huggingface/tokenizers loads', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Tokenizer } = require('@huggingface/tokenizers') as { Tokenizer: new (json: object, cfg: object) => {
      encode(text: string, o?: object): { ids: number[]; tokens: string[] };
      decode(ids: number[], o?: object): string;
      token_to_id(t: string): number | undefined;
    } };
    const tok = new Tokenizer(JSON.parse(fs.readFileSync(path.join(ckpt, 'tokenizer.json'), 'utf8')) as object, {});
    const enc = tok.encode('the then a cat<|endoftext|>', { add_special_tokens: false });
    assert.deepEqual(enc.tokens, ['t', 'he', 'Ġthe', 'n', 'Ġa', 'Ġ', 'c', 'a', 't', '<|endoftext|>']);
    assert.equal(tok.token_to_id('<|endoftext|>'), VOCAB - 1);
    assert.ok(enc.ids.every((id) => id >= 0 && id < VOCAB));
    assert.equal(tok.decode(enc.ids, { skip_special_tokens: true }), 'the then a cat');
  });
});
