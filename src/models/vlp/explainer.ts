/**
 * The VLP explainer: a GPT-2-style causal pre-LN decoder conditioned on the image and the detected
 * HOI triplets through a prefix of tokens,
 *
 *   [ visual (Nv = Hf Wf) | HOI (M) | instruction (Li) | response (Tr) ]
 *     `----------------- prefix P, bidirectional ---------'  causal
 *
 * - visual: backbone grid features [B, Hf, Wf, Cv] (frozen, computed outside) -> visual_proj ->
 *   + 2-D sine position encodings (encodings.ts);
 * - HOI: subject + verb + object embeddings (+ box Fourier features through hoi_box_proj), see
 *   hoi_tokens.ts;
 * - text: wte(instruction tokens), wte(response tokens).
 * Every token also gets segment_emb[visual=0 | hoi=1 | text=2] and wpe[absolute position]
 * (positions 0 .. P + Tr - 1 over the whole sequence). The prefix is visible to every position; the
 * response attends causally; the loss (responseLoss) covers response tokens only.
 *
 * Parameter names (checkpoint keys, ONNX initializers), in registration order:
 *   wte.weight [V, C]; wpe.weight [max_positions, C]            (GPT-2 names)
 *   segment_emb.weight [3, C]
 *   visual_proj.weight [Cv, C], visual_proj.bias [C]
 *   hoi_subject_emb.weight [K + 1, C]; hoi_verb_emb.weight [Nverb + 1, C]; hoi_object_emb.weight [K + 1, C]
 *   hoi_box_proj.weight [8 (2F + 1), C], hoi_box_proj.bias [C]   (only with box_encoding)
 *   h.{i}.ln_1 / attn.c_attn / attn.c_proj / ln_2 / mlp.c_fc / mlp.c_proj .weight/.bias (GPT-2 names)
 *   ln_f.weight, ln_f.bias
 *   lm_head.weight [C, V]                                        (only without tie_embeddings)
 * A GPT-2 checkpoint thus loads with strict: false, the prefix layers being new.
 *
 * Generation (generate.ts) runs `encodePrefix` once, then `step` per token with one KVCache per
 * layer. The ONNX graphs are `vlp_prefix` (toOnnxPrefix) and `vlp_decoder` (toOnnxDecoderStep);
 * their interface is documented in explainer_onnx.ts. `toOnnx` emits the teacher-forcing forward.
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph } from '../../export/onnx_graph';
import { causalPrefixBiasOnnx, KVCache } from '../nn/attention';
import { Dropout } from '../nn/dropout';
import { Embedding } from '../nn/embedding';
import { deriveSeed, init, nextDefaultSeed } from '../nn/init';
import { Linear } from '../nn/linear';
import { Module, assertShape, fmtShape } from '../nn/module';
import { LayerNorm } from '../nn/norm';
import { TransformerBlock } from '../nn/transformer_block';
import { VlpModelConfig, checkVlpModelConfig, mlpHidden } from './config';
import { sine2d, sine2dOnnx } from './encodings';
import { declareVlpDecoderInputs, declareVlpOutputs, declareVlpPrefixInputs, VlpPrefixOnnxInputs } from './explainer_onnx';
import { HoiTokenLayers } from './hoi_tokens';

export interface VlpInputs {
  /** [B, Hf, Wf, Cv] NHWC backbone features (the tfjs layout; frozen, computed outside). */
  visual: tf.Tensor4D;
  /** int32 [B, M] category ids; padding slots = num_categories (a learned "none" row). */
  hoiSubject: tf.Tensor2D;
  /** int32 [B, M]; padding = num_verbs. */
  hoiVerb: tf.Tensor2D;
  /** int32 [B, M]; padding = num_categories. */
  hoiObject: tf.Tensor2D;
  /** float32 [B, M, 4] normalized [x1, y1, x2, y2] in 0-1; padding rows zeros. */
  hoiSubjectBox: tf.Tensor3D;
  /** float32 [B, M, 4]. */
  hoiObjectBox: tf.Tensor3D;
  /** int32 [B, Li] instruction tokens LEFT-padded with the pad id to config.instruction_length. */
  instruction: tf.Tensor2D;
}

/** Segment ids of segment_emb. */
export const SEGMENT = { visual: 0, hoi: 1, text: 2 } as const;

/** The transformer blocks, registered as `h.0` .. `h.{L-1}` (GPT-2's ModuleList). */
export class TransformerStack extends Module {
  readonly blocks: TransformerBlock[] = [];

  constructor(blocks: TransformerBlock[]) {
    super();
    blocks.forEach((b, i) => this.blocks.push(this.registerModule(String(i), b)));
  }

  /** x [B, T, C] -> [B, T, C]; with caches (one per block) the keys/values are appended. */
  forward(x: tf.Tensor3D, opts: { caches?: KVCache[]; prefixLen: number }): tf.Tensor3D {
    return tf.tidy(() => {
      let y = x;
      this.blocks.forEach((b, i) => {
        y = b.forward(y, { cache: opts.caches?.[i], prefixLen: opts.prefixLen });
      });
      return y;
    });
  }

  /** Without cache; the mask (prefix length: constant or int64 value) is built once for all blocks. */
  toOnnx(g: OnnxGraph, x: string, opts: { prefixLen: number | string }): string {
    const bias = causalPrefixBiasOnnx(g, `${this.onnxScope()}/mask`, x, { prefixLen: opts.prefixLen });
    let y = x;
    for (const b of this.blocks) y = b.toOnnx(g, y, { attnBias: bias });
    return y;
  }

  /** With caches: past k/v per block (absent: empty cache) -> y and the presents per block. */
  toOnnxWithCache(g: OnnxGraph, x: string, opts: { prefixLen: number | string; past?: Array<{ key: string; value: string }> }): { y: string; presents: Array<{ key: string; value: string }> } {
    const bias = causalPrefixBiasOnnx(g, `${this.onnxScope()}/mask`, x, { prefixLen: opts.prefixLen, pastKey: opts.past?.[0].key });
    let y = x;
    const presents: Array<{ key: string; value: string }> = [];
    this.blocks.forEach((b, i) => {
      const r = b.toOnnxWithCache(g, y, { attnBias: bias, pastKey: opts.past?.[i].key, pastValue: opts.past?.[i].value });
      y = r.y;
      presents.push({ key: r.presentKey, value: r.presentValue });
    });
    return { y, presents };
  }
}

export class VlpExplainer extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly segment_emb: Embedding;
  readonly visual_proj: Linear;
  readonly hoi: HoiTokenLayers;
  readonly drop: Dropout;
  readonly h: TransformerStack;
  readonly ln_f: LayerNorm;
  readonly lm_head: Linear | null;

  constructor(readonly config: VlpModelConfig, opts: { seed?: number } = {}) {
    super();
    checkVlpModelConfig(config);
    const c = config;
    const seed = opts.seed ?? nextDefaultSeed();
    const s = (name: string, ...more: number[]): number => deriveSeed(seed, name, ...more);
    this.wte = this.registerModule('wte', new Embedding(c.vocab_size, c.dim, { seed: s('wte') }));
    // GPT-2 initializes wpe with std 0.01.
    this.wpe = this.registerModule('wpe', new Embedding(c.max_positions, c.dim, { seed: s('wpe'), weightInit: init.normal(0.01) }));
    this.segment_emb = this.registerModule('segment_emb', new Embedding(3, c.dim, { seed: s('segment_emb') }));
    this.visual_proj = this.registerModule('visual_proj', new Linear(c.visual_channels, c.dim, { seed: s('visual_proj') }));
    this.hoi = new HoiTokenLayers(this, c, s('hoi'));
    this.drop = this.registerModule('drop', new Dropout(c.dropout, { seed: s('drop') }));
    const blocks: TransformerBlock[] = [];
    for (let i = 0; i < c.layers; i++) {
      blocks.push(new TransformerBlock(c.dim, {
        numHeads: c.heads, mlpHidden: mlpHidden(c), dropout: c.dropout, seed: s('h', i), weightInit: init.normal(0.02),
      }));
    }
    this.h = this.registerModule('h', new TransformerStack(blocks));
    this.ln_f = this.registerModule('ln_f', new LayerNorm(c.dim));
    this.lm_head = c.tie_embeddings
      ? null
      : this.registerModule('lm_head', new Linear(c.dim, c.vocab_size, { bias: false, seed: s('lm_head'), weightInit: init.normal(0.02) }));
  }

  /** P = Nv + M + Li. */
  prefixLength(visualTokens: number): number {
    return visualTokens + this.config.max_hois + this.config.instruction_length;
  }

  /** One empty KVCache per layer. */
  newCaches(): KVCache[] {
    return Array.from({ length: this.config.layers }, () => new KVCache());
  }

  // ---- tfjs -------------------------------------------------------------------------------

  /** Teacher forcing: response [B, Tr] int32 (starts with <bos>) -> logits [B, Tr, V]; logits[t] predict response[t + 1]. */
  forward(inputs: VlpInputs, response: tf.Tensor2D): tf.Tensor3D {
    const { batch, prefixLen } = this.checkInputs(inputs);
    this.checkIds('response', response, batch);
    const tr = response.shape[1];
    this.checkPositions(prefixLen + tr);
    return tf.tidy(() => {
      const x = this.drop.forward(tf.concat([this.prefixEmbeddings(inputs), this.textEmbeddings(response, prefixLen)], 1)) as tf.Tensor3D; // [B, P + Tr, C]
      const y = this.h.forward(x, { prefixLen }).slice([0, prefixLen, 0], [batch, tr, this.config.dim]) as tf.Tensor3D; // [B, Tr, C]
      return this.logits(y);
    });
  }

  /** Generation: fills `caches` (empty, one per layer) with the prefix; returns logits [B, V] of the last prefix position. */
  encodePrefix(inputs: VlpInputs, caches: KVCache[]): tf.Tensor2D {
    const { batch, prefixLen } = this.checkInputs(inputs);
    this.checkCaches(caches);
    assertShape(caches.every((k) => k.length === 0), () => `VlpExplainer.encodePrefix: the caches must be empty, one holds ${Math.max(...caches.map((k) => k.length))} positions`);
    this.checkPositions(prefixLen);
    return tf.tidy(() => {
      const x = this.drop.forward(this.prefixEmbeddings(inputs)); // [B, P, C]
      const y = this.h.forward(x, { caches, prefixLen });
      return this.logits(y.slice([0, prefixLen - 1, 0], [batch, 1, this.config.dim]) as tf.Tensor3D).reshape([batch, this.config.vocab_size]) as tf.Tensor2D; // [B, V]
    });
  }

  /** One step: tokens [B, 1] int32 at absolute position = cache length; returns logits [B, V]. */
  step(tokens: tf.Tensor2D, caches: KVCache[], prefixLength: number): tf.Tensor2D {
    this.checkCaches(caches);
    const position = caches[0].length;
    assertShape(position >= prefixLength && prefixLength > 0,
      () => `VlpExplainer.step: the caches (${position} positions) must hold the prefix (${prefixLength}) first: call encodePrefix`);
    assertShape(tokens.rank === 2 && tokens.shape[1] === 1 && tokens.shape[0] === caches[0].k?.shape[0],
      () => `VlpExplainer.step: tokens [${caches[0].k?.shape[0]}, 1] expected, got ${fmtShape(tokens.shape)}`);
    this.checkIds('tokens', tokens, tokens.shape[0]);
    this.checkPositions(position + 1);
    return tf.tidy(() => {
      const x = this.drop.forward(this.textEmbeddings(tokens, position)); // [B, 1, C]
      return this.logits(this.h.forward(x, { caches, prefixLen: prefixLength })).reshape([tokens.shape[0], this.config.vocab_size]) as tf.Tensor2D;
    });
  }

  /** [visual | hoi | instruction] embeddings + wpe[0 .. P-1]: [B, P, C] (before dropout). */
  private prefixEmbeddings(inputs: VlpInputs): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, hf, wf, cv] = inputs.visual.shape;
      const seg = (k: number): tf.Tensor => this.segment_emb.forward(tf.scalar(k, 'int32')); // [C]
      const vis = tf.add(this.visual_proj.forward(inputs.visual.reshape([b, hf * wf, cv])), tf.tensor2d(sine2d(hf, wf, this.config.dim), [hf * wf, this.config.dim])); // [B, Nv, C]
      const parts = [
        tf.add(vis, seg(SEGMENT.visual)),
        tf.add(this.hoi.forward(inputs), seg(SEGMENT.hoi)), // [B, M, C]
        tf.add(this.wte.forward(inputs.instruction), seg(SEGMENT.text)), // [B, Li, C]
      ];
      const x = tf.concat(parts, 1) as tf.Tensor3D; // [B, P, C]
      return tf.add(x, this.wpe.forward(tf.range(0, x.shape[1], 1, 'int32'))) as tf.Tensor3D; // + [P, C]
    });
  }

  /** wte(ids) + segment text + wpe[start ..]: [B, T, C] (before dropout). */
  private textEmbeddings(ids: tf.Tensor2D, start: number): tf.Tensor3D {
    return tf.tidy(() => {
      const x = tf.add(this.wte.forward(ids), this.segment_emb.forward(tf.scalar(SEGMENT.text, 'int32'))); // [B, T, C]
      return tf.add(x, this.wpe.forward(tf.range(start, start + ids.shape[1], 1, 'int32'))) as tf.Tensor3D;
    });
  }

  /** ln_f + LM head (tied to wte.weight, or lm_head): [B, T, C] -> [B, T, V]. */
  private logits(hidden: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, t, c] = hidden.shape;
      const h2 = this.ln_f.forward(hidden).reshape([b * t, c]) as tf.Tensor2D; // [B*T, C]
      const out = this.lm_head ? this.lm_head.forward(h2) : tf.matMul(h2, this.wte.weight as tf.Tensor2D, false, true); // [B*T, V]
      return out.reshape([b, t, this.config.vocab_size]) as tf.Tensor3D;
    });
  }

  // ---- checks -----------------------------------------------------------------------------

  private checkInputs(inputs: VlpInputs): { batch: number; prefixLen: number } {
    const c = this.config;
    const v = inputs.visual;
    assertShape(v.rank === 4 && v.dtype === 'float32' && v.shape[3] === c.visual_channels,
      () => `VlpInputs.visual: float32 [B, Hf, Wf, ${c.visual_channels}] (NHWC) expected, got ${v.dtype} ${fmtShape(v.shape)}`);
    const batch = v.shape[0];
    const m = this.hoi.check(inputs, batch);
    assertShape(m === c.max_hois, () => `VlpInputs.hoiSubject: ${c.max_hois} HOI slots (model.max_hois) expected, got ${m}; pad with the "none" ids`);
    this.checkIds('instruction', inputs.instruction, batch);
    assertShape(inputs.instruction.shape[1] === c.instruction_length,
      () => `VlpInputs.instruction: ${c.instruction_length} tokens (model.instruction_length, left-padded) expected, got ${inputs.instruction.shape[1]}`);
    return { batch, prefixLen: this.prefixLength(v.shape[1] * v.shape[2]) };
  }

  private checkIds(name: string, ids: tf.Tensor2D, batch: number): void {
    const vocab = this.config.vocab_size;
    assertShape(ids.rank === 2 && ids.dtype === 'int32' && ids.shape[0] === batch && ids.shape[1] > 0,
      () => `VlpExplainer ${name}: int32 [${batch}, T > 0] expected, got ${ids.dtype} ${fmtShape(ids.shape)}`);
    // Out-of-range ids would read garbage rows silently on wasm.
    const bad = (ids.dataSync() as Int32Array).find((t) => t < 0 || t >= vocab);
    assertShape(bad === undefined, () => `VlpExplainer ${name}: token ids in [0, ${vocab}) expected, found ${bad}`);
  }

  private checkCaches(caches: KVCache[]): void {
    assertShape(caches.length === this.config.layers, () => `VlpExplainer: one KVCache per layer (${this.config.layers}) expected, got ${caches.length}`);
  }

  private checkPositions(total: number): void {
    assertShape(total <= this.config.max_positions,
      () => `VlpExplainer: the sequence needs ${total} positions, model.max_positions is ${this.config.max_positions}`);
  }

  // ---- ONNX -------------------------------------------------------------------------------

  /** Teacher forcing as ONNX nodes: prefix inputs + response ids [B, Tr] int64 -> logits [B, Tr, V]. */
  toOnnx(g: OnnxGraph, inputs: VlpPrefixOnnxInputs, responseIds: string): string {
    const o = this.onnxOps(g);
    const i64 = (v: number[]): string => g.constant(v, 'int64');
    const prefix = this.prefixEmbeddingsOnnx(g, inputs); // [B, P, C]
    const p = o.Shape(prefix, { start: 1, end: 2 }); // [1] = P
    const tr = o.Shape(responseIds, { start: 1, end: 2 }); // [1] = Tr
    const positions = o.Range(o.Squeeze(p, i64([0])), o.Squeeze(o.Add(p, tr), i64([0])), g.constant([1], 'int64', [])); // [Tr]
    const x = o.Concat([prefix, this.textEmbeddingsOnnx(g, responseIds, positions)], { axis: 1 }); // [B, P + Tr, C]
    const y = this.h.toOnnx(g, x, { prefixLen: p });
    const resp = o.Slice(y, p, i64([Number.MAX_SAFE_INTEGER]), i64([1])); // [B, Tr, C]
    return this.logitsOnnx(g, resp);
  }

  /** The `vlp_prefix` graph: declares inputs and outputs (explainer_onnx.ts) and emits the prefix encoder. */
  toOnnxPrefix(g: OnnxGraph): void {
    const io = declareVlpPrefixInputs(g, this.config);
    const o = this.onnxOps(g);
    const x = this.prefixEmbeddingsOnnx(g, io); // [B, P, C]
    const p = o.Shape(x, { start: 1, end: 2 }); // [1] = P: every position is in the prefix
    const r = this.h.toOnnxWithCache(g, x, { prefixLen: p });
    declareVlpOutputs(g, this.config, this.lastLogitsOnnx(g, r.y), r.presents, 'prefix');
  }

  /** The `vlp_decoder` graph: one token at a given position over past k/v -> logits and presents. */
  toOnnxDecoderStep(g: OnnxGraph): void {
    const io = declareVlpDecoderInputs(g, this.config);
    const x = this.textEmbeddingsOnnx(g, io.inputIds, io.positionIds); // [B, 1, C]
    // Response tokens attend causally; every past position is before the new one, so the prefix
    // length does not matter here (the mask is all zeros for one token).
    const r = this.h.toOnnxWithCache(g, x, { prefixLen: 0, past: io.past });
    declareVlpOutputs(g, this.config, this.lastLogitsOnnx(g, r.y), r.presents, 'total');
  }

  private prefixEmbeddingsOnnx(g: OnnxGraph, io: VlpPrefixOnnxInputs): string {
    const o = this.onnxOps(g);
    const c = this.config.dim;
    const i64 = (v: number[]): string => g.constant(v, 'int64');
    const seg = (k: number): string => this.segment_emb.toOnnx(g, g.constant([k], 'int64', [])); // [C]
    const tokens = o.Reshape(o.Transpose(io.visual, { perm: [0, 2, 3, 1] }), i64([0, -1, this.config.visual_channels])); // [B, Hf*Wf, Cv]
    const vis = o.Add(this.visual_proj.toOnnx(g, tokens), sine2dOnnx(g, 'visual_pos', io.visual, c)); // [B, Nv, C]
    const x = o.Concat([
      o.Add(vis, seg(SEGMENT.visual)),
      o.Add(this.hoi.toOnnx(g, io), seg(SEGMENT.hoi)),
      o.Add(this.wte.toOnnx(g, io.instruction), seg(SEGMENT.text)),
    ], { axis: 1 }); // [B, P, C]
    const p = o.Squeeze(o.Shape(x, { start: 1, end: 2 }), i64([0]));
    return o.Add(x, this.wpe.toOnnx(g, o.Range(g.constant([0], 'int64', []), p, g.constant([1], 'int64', [])))); // + [P, C]
  }

  /** ids [B, T] and positions ([T] or [B, T]) int64 -> [B, T, C]. */
  private textEmbeddingsOnnx(g: OnnxGraph, ids: string, positions: string): string {
    const o = this.onnxOps(g);
    const x = o.Add(this.wte.toOnnx(g, ids), this.segment_emb.toOnnx(g, g.constant([SEGMENT.text], 'int64', [])));
    return o.Add(x, this.wpe.toOnnx(g, positions));
  }

  /** ln_f + LM head: [B, T, C] -> [B, T, V]. */
  private logitsOnnx(g: OnnxGraph, hidden: string): string {
    const o = this.onnxOps(g);
    const h = this.ln_f.toOnnx(g, hidden);
    if (this.lm_head) return this.lm_head.toOnnx(g, h);
    // Tied head: the same initializer as wte's Gather (re-adding a name returns it).
    const w = g.initializer(this.wte.paramPath('weight'), this.wte.weight);
    return o.MatMul(h, o.Transpose(w, { perm: [1, 0] })); // [B, T, V]
  }

  /** Logits of the last position: [B, T, C] -> [B, V]. */
  private lastLogitsOnnx(g: OnnxGraph, hidden: string): string {
    const o = this.onnxOps(g);
    const i64 = (v: number[]): string => g.constant(v, 'int64');
    const last = o.Slice(hidden, i64([-1]), i64([Number.MAX_SAFE_INTEGER]), i64([1])); // [B, 1, C]
    return o.Squeeze(this.logitsOnnx(g, last), i64([1])); // [B, V]
  }
}

/**
 * Mean cross-entropy over positions where mask = 1: logits [B, T, V], targets [B, T] int32 (the
 * next tokens: response[:, 1:] for logits of response[:, :-1]), mask [B, T] float32. An all-zero
 * mask gives 0 (not NaN).
 */
export function responseLoss(logits: tf.Tensor3D, targets: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  const [b, t, v] = logits.shape;
  assertShape(targets.rank === 2 && targets.shape[0] === b && targets.shape[1] === t && targets.dtype === 'int32',
    () => `responseLoss: targets int32 [${b}, ${t}] expected, got ${targets.dtype} ${fmtShape(targets.shape)}`);
  assertShape(mask.rank === 2 && mask.shape[0] === b && mask.shape[1] === t,
    () => `responseLoss: mask [${b}, ${t}] expected, got ${fmtShape(mask.shape)}`);
  return tf.tidy(() => {
    const lse = tf.logSumExp(logits, -1); // [B, T]
    const picked = tf.sum(tf.mul(logits, tf.oneHot(targets, v)), -1); // [B, T]
    const m = mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32');
    const total = tf.sum(tf.mul(tf.sub(lse, picked), m));
    return tf.div(total, tf.maximum(tf.sum(m), 1)) as tf.Scalar;
  });
}
