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
 *   pointer_embed.weight [C, 2C], .bias; pointer_key.weight [C, 2C], .bias   (only with box_pointer)
 *   lm_head.weight [C, V]                                        (only without tie_embeddings)
 * A GPT-2 checkpoint thus loads with strict: false, the prefix layers being new.
 *
 * Box pointer (`box_pointer`, a copy head): the logits are [V vocabulary | 2M pointer tokens]; pointer
 * id V + 2m + r (r = 0 subject, 1 object) means "the box of slot m's subject / object", which the
 * detokenizer replaces by that box (pointer.ts). Its logit is ln_f(h_t) . key[m, r] (+ -1e9 for padding
 * slots), key = pointer_key(ln_f(prefix output at HOI slot m)) split in two; fed back as an input the
 * token is embedded as pointer_embed(HOI token m) (split in two) instead of a wte row. These three
 * per-image tensors (`PointerMemory`) are what decoding carries besides the k/v caches. The prefix
 * never attends to the response, so teacher forcing (`forward`) and cached decoding see the same keys.
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
import { VlpModelConfig, checkVlpModelConfig, mlpHidden, numLogits } from './config';
import { sine2d, sine2dOnnx } from './encodings';
import { declareVlpDecoderInputs, declareVlpOutputs, declareVlpPrefixInputs, type OnnxPointerMemory, VlpPrefixOnnxInputs } from './explainer_onnx';
import { HoiTokenLayers } from './hoi_tokens';
import { DataType } from '../../export/onnx_proto';

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

/**
 * Per-image tensors of the box pointer (see above), computed with the prefix; `step` needs them.
 * Rows follow the caches' rows (generate.ts gathers both when rows finish or beams reorder).
 */
export interface PointerMemory {
  /** [B, 2M, C] input embeddings of the pointer tokens. */
  embed: tf.Tensor3D;
  /** [B, 2M, C] keys the decoder state is scored against. */
  keys: tf.Tensor3D;
  /** [B, 2M] 0 for real slots, -1e9 for padding slots. */
  bias: tf.Tensor2D;
}

/** What `encodePrefix` returns: logits of the last prefix position and, with box_pointer, the pointer memory. */
export interface PrefixState {
  /** [B, V (+ 2M)] */
  logits: tf.Tensor2D;
  pointer: PointerMemory | null;
}

/** Disposes the pointer memory encodePrefix returned (nothing for null). */
export function disposePointerMemory(pointer: PointerMemory | null): void {
  if (pointer) tf.dispose([pointer.embed, pointer.keys, pointer.bias]);
}

/** Logit of a padding slot's pointer tokens. */
export const POINTER_PAD_BIAS = -1e9;

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
  readonly pointer_embed: Linear | null;
  readonly pointer_key: Linear | null;
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
    this.pointer_embed = c.box_pointer ? this.registerModule('pointer_embed', new Linear(c.dim, 2 * c.dim, { seed: s('pointer_embed'), weightInit: init.normal(0.02) })) : null;
    this.pointer_key = c.box_pointer ? this.registerModule('pointer_key', new Linear(c.dim, 2 * c.dim, { seed: s('pointer_key'), weightInit: init.normal(0.02) })) : null;
    this.lm_head = c.tie_embeddings
      ? null
      : this.registerModule('lm_head', new Linear(c.dim, c.vocab_size, { bias: false, seed: s('lm_head'), weightInit: init.normal(0.02) }));
  }

  /** P = Nv + M + Li. */
  prefixLength(visualTokens: number): number {
    return visualTokens + this.config.max_hois + this.config.instruction_length;
  }

  /** Logits per position: V, plus 2 M pointer tokens with box_pointer. */
  get numLogits(): number {
    return numLogits(this.config);
  }

  /** One empty KVCache per layer. */
  newCaches(): KVCache[] {
    return Array.from({ length: this.config.layers }, () => new KVCache());
  }

  // ---- tfjs -------------------------------------------------------------------------------

  /** Teacher forcing: response [B, Tr] int32 (starts with <bos>) -> logits [B, Tr, V (+ 2M)]; logits[t] predict response[t + 1]. */
  forward(inputs: VlpInputs, response: tf.Tensor2D): tf.Tensor3D {
    const { batch, prefixLen, visualTokens } = this.checkInputs(inputs);
    this.checkIds('response', response, batch);
    const tr = response.shape[1];
    this.checkPositions(prefixLen + tr);
    return tf.tidy(() => {
      const hoiTokens = this.hoi.forward(inputs); // [B, M, C]
      const pointerEmbed = this.pointerEmbeddings(hoiTokens);
      const x = this.drop.forward(tf.concat([this.prefixEmbeddings(inputs, hoiTokens), this.textEmbeddings(response, prefixLen, pointerEmbed)], 1)) as tf.Tensor3D; // [B, P + Tr, C]
      const y = this.h.forward(x, { prefixLen }); // [B, P + Tr, C]
      const pointer = this.pointerMemory(inputs, pointerEmbed, y, visualTokens);
      return this.logits(y.slice([0, prefixLen, 0], [batch, tr, this.config.dim]) as tf.Tensor3D, pointer);
    });
  }

  /**
   * Generation: fills `caches` (empty, one per layer) with the prefix; returns logits [B, V (+ 2M)]
   * of the last prefix position and the pointer memory (kept tensors: the caller disposes them).
   */
  encodePrefix(inputs: VlpInputs, caches: KVCache[]): PrefixState {
    const { batch, prefixLen, visualTokens } = this.checkInputs(inputs);
    this.checkCaches(caches);
    assertShape(caches.every((k) => k.length === 0), () => `VlpExplainer.encodePrefix: the caches must be empty, one holds ${Math.max(...caches.map((k) => k.length))} positions`);
    this.checkPositions(prefixLen);
    const out = tf.tidy(() => {
      const hoiTokens = this.hoi.forward(inputs);
      const x = this.drop.forward(this.prefixEmbeddings(inputs, hoiTokens)); // [B, P, C]
      const y = this.h.forward(x, { caches, prefixLen });
      const pointer = this.pointerMemory(inputs, this.pointerEmbeddings(hoiTokens), y, visualTokens);
      const logits = this.logits(y.slice([0, prefixLen - 1, 0], [batch, 1, this.config.dim]) as tf.Tensor3D, pointer);
      const last = logits.reshape([batch, logits.shape[2]]);
      return pointer ? [last, pointer.embed, pointer.keys, pointer.bias] : [last];
    });
    return {
      logits: out[0] as tf.Tensor2D,
      pointer: out.length > 1 ? { embed: out[1] as tf.Tensor3D, keys: out[2] as tf.Tensor3D, bias: out[3] as tf.Tensor2D } : null,
    };
  }

  /**
   * One step: tokens [B, 1] int32 at absolute position = cache length; returns logits [B, V (+ 2M)].
   * With box_pointer, `pointer` is the memory encodePrefix returned (rows gathered like the caches).
   */
  step(tokens: tf.Tensor2D, caches: KVCache[], prefixLength: number, pointer: PointerMemory | null = null): tf.Tensor2D {
    this.checkCaches(caches);
    const position = caches[0].length;
    assertShape(position >= prefixLength && prefixLength > 0,
      () => `VlpExplainer.step: the caches (${position} positions) must hold the prefix (${prefixLength}) first: call encodePrefix`);
    assertShape(tokens.rank === 2 && tokens.shape[1] === 1 && tokens.shape[0] === caches[0].k?.shape[0],
      () => `VlpExplainer.step: tokens [${caches[0].k?.shape[0]}, 1] expected, got ${fmtShape(tokens.shape)}`);
    this.checkIds('tokens', tokens, tokens.shape[0]);
    this.checkPositions(position + 1);
    assertShape(!this.config.box_pointer || (pointer !== null && pointer.embed.shape[0] === tokens.shape[0]),
      () => `VlpExplainer.step: box_pointer needs the pointer memory of encodePrefix with ${tokens.shape[0]} rows, got ${pointer ? pointer.embed.shape[0] : 'none'}`);
    return tf.tidy(() => {
      const x = this.drop.forward(this.textEmbeddings(tokens, position, pointer?.embed ?? null)); // [B, 1, C]
      const logits = this.logits(this.h.forward(x, { caches, prefixLen: prefixLength }), pointer);
      return logits.reshape([tokens.shape[0], logits.shape[2]]) as tf.Tensor2D;
    });
  }

  /** [visual | hoi | instruction] embeddings + wpe[0 .. P-1]: [B, P, C] (before dropout). */
  private prefixEmbeddings(inputs: VlpInputs, hoiTokens: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, hf, wf, cv] = inputs.visual.shape;
      const seg = (k: number): tf.Tensor => this.segment_emb.forward(tf.scalar(k, 'int32')); // [C]
      const vis = tf.add(this.visual_proj.forward(inputs.visual.reshape([b, hf * wf, cv])), tf.tensor2d(sine2d(hf, wf, this.config.dim), [hf * wf, this.config.dim])); // [B, Nv, C]
      const parts = [
        tf.add(vis, seg(SEGMENT.visual)),
        tf.add(hoiTokens, seg(SEGMENT.hoi)), // [B, M, C]
        tf.add(this.wte.forward(inputs.instruction), seg(SEGMENT.text)), // [B, Li, C]
      ];
      const x = tf.concat(parts, 1) as tf.Tensor3D; // [B, P, C]
      return tf.add(x, this.wpe.forward(tf.range(0, x.shape[1], 1, 'int32'))) as tf.Tensor3D; // + [P, C]
    });
  }

  /**
   * wte(ids) + segment text + wpe[start ..]: [B, T, C] (before dropout). With the pointer memory,
   * ids >= V are pointer tokens: their row is pointerEmbed[b, id - V] instead of a wte row.
   */
  private textEmbeddings(ids: tf.Tensor2D, start: number, pointerEmbed: tf.Tensor3D | null): tf.Tensor3D {
    return tf.tidy(() => {
      let x: tf.Tensor;
      if (pointerEmbed) {
        const V = this.config.vocab_size;
        const isText = tf.less(ids, V); // [B, T]
        const words = tf.mul(this.wte.forward(tf.where(isText, ids, tf.zerosLike(ids))), tf.expandDims(tf.cast(isText, 'float32'), -1)); // [B, T, C]
        // one-hot of id - V over the 2M pointer tokens (all zeros for vocabulary ids) @ [B, 2M, C]
        const pick = tf.cast(tf.equal(tf.expandDims(tf.sub(ids, V), -1), tf.range(0, pointerEmbed.shape[1], 1, 'int32')), 'float32'); // [B, T, 2M]
        x = tf.add(words, tf.matMul(pick, pointerEmbed));
      } else {
        x = this.wte.forward(ids);
      }
      x = tf.add(x, this.segment_emb.forward(tf.scalar(SEGMENT.text, 'int32'))); // [B, T, C]
      return tf.add(x, this.wpe.forward(tf.range(start, start + ids.shape[1], 1, 'int32'))) as tf.Tensor3D;
    });
  }

  /** Pointer-token input embeddings: HOI tokens [B, M, C] -> [B, 2M, C] (slot m subject = 2m, object = 2m + 1); null without box_pointer. */
  private pointerEmbeddings(hoiTokens: tf.Tensor3D): tf.Tensor3D | null {
    if (!this.pointer_embed) return null;
    const [b, m, c] = hoiTokens.shape;
    return tf.tidy(() => this.pointer_embed!.forward(hoiTokens).reshape([b, 2 * m, c]) as tf.Tensor3D);
  }

  /**
   * The pointer memory from the pointer embeddings and the transformer output y [B, >= Nv + M, C]:
   * keys at the HOI slots [B, 2M, C] and the bias [B, 2M] (0 for real slots, POINTER_PAD_BIAS for
   * padding slots, subject id = num_categories); null without box_pointer.
   */
  private pointerMemory(inputs: VlpInputs, embed: tf.Tensor3D | null, y: tf.Tensor3D, visualTokens: number): PointerMemory | null {
    if (!this.pointer_key || !embed) return null;
    const [b, , c] = y.shape, m = this.config.max_hois;
    return tf.tidy(() => {
      const keys = this.pointer_key!.forward(this.ln_f.forward(y.slice([0, visualTokens, 0], [b, m, c]))).reshape([b, 2 * m, c]) as tf.Tensor3D;
      const pad = tf.mul(tf.cast(tf.equal(inputs.hoiSubject, this.config.num_categories), 'float32'), POINTER_PAD_BIAS); // [B, M]
      const bias = tf.tile(tf.expandDims(pad, 2), [1, 1, 2]).reshape([b, 2 * m]) as tf.Tensor2D;
      return { embed, keys, bias };
    });
  }

  /** ln_f + LM head (tied to wte.weight, or lm_head) [+ pointer logits]: [B, T, C] -> [B, T, V (+ 2M)]. */
  private logits(hidden: tf.Tensor3D, pointer: PointerMemory | null = null): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, t, c] = hidden.shape;
      const h = this.ln_f.forward(hidden); // [B, T, C]
      const h2 = h.reshape([b * t, c]) as tf.Tensor2D; // [B*T, C]
      const out = this.lm_head ? this.lm_head.forward(h2) : tf.matMul(h2, this.wte.weight as tf.Tensor2D, false, true); // [B*T, V]
      const words = out.reshape([b, t, this.config.vocab_size]) as tf.Tensor3D;
      if (!pointer) return words;
      const scores = tf.add(tf.matMul(h, pointer.keys, false, true), tf.expandDims(pointer.bias, 1)); // [B, T, 2M]
      return tf.concat([words, scores], 2) as tf.Tensor3D;
    });
  }

  // ---- checks -----------------------------------------------------------------------------

  private checkInputs(inputs: VlpInputs): { batch: number; prefixLen: number; visualTokens: number } {
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
    return { batch, prefixLen: this.prefixLength(v.shape[1] * v.shape[2]), visualTokens: v.shape[1] * v.shape[2] };
  }

  private checkIds(name: string, ids: tf.Tensor2D, batch: number): void {
    const vocab = name === 'instruction' ? this.config.vocab_size : this.numLogits;
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

  /** Teacher forcing as ONNX nodes: prefix inputs + response ids [B, Tr] int64 -> logits [B, Tr, V (+ 2M)]. */
  toOnnx(g: OnnxGraph, inputs: VlpPrefixOnnxInputs, responseIds: string): string {
    const o = this.onnxOps(g);
    const i64 = (v: number[]): string => g.constant(v, 'int64');
    const pre = this.prefixEmbeddingsOnnx(g, inputs); // [B, P, C]
    const p = o.Shape(pre.x, { start: 1, end: 2 }); // [1] = P
    const tr = o.Shape(responseIds, { start: 1, end: 2 }); // [1] = Tr
    const positions = o.Range(o.Squeeze(p, i64([0])), o.Squeeze(o.Add(p, tr), i64([0])), g.constant([1], 'int64', [])); // [Tr]
    const embed = this.pointerEmbeddingsOnnx(g, pre.hoiTokens);
    const x = o.Concat([pre.x, this.textEmbeddingsOnnx(g, responseIds, positions, embed)], { axis: 1 }); // [B, P + Tr, C]
    const y = this.h.toOnnx(g, x, { prefixLen: p });
    const resp = o.Slice(y, p, i64([Number.MAX_SAFE_INTEGER]), i64([1])); // [B, Tr, C]
    return this.logitsOnnx(g, resp, this.pointerMemoryOnnx(g, inputs, pre, embed, y));
  }

  /** The `vlp_prefix` graph: declares inputs and outputs (explainer_onnx.ts) and emits the prefix encoder. */
  toOnnxPrefix(g: OnnxGraph): void {
    const io = declareVlpPrefixInputs(g, this.config);
    const o = this.onnxOps(g);
    const pre = this.prefixEmbeddingsOnnx(g, io); // [B, P, C]
    const p = o.Shape(pre.x, { start: 1, end: 2 }); // [1] = P: every position is in the prefix
    const r = this.h.toOnnxWithCache(g, pre.x, { prefixLen: p });
    const pointer = this.pointerMemoryOnnx(g, io, pre, this.pointerEmbeddingsOnnx(g, pre.hoiTokens), r.y);
    declareVlpOutputs(g, this.config, this.lastLogitsOnnx(g, r.y, pointer), r.presents, 'prefix', pointer);
  }

  /** The `vlp_decoder` graph: one token at a given position over past k/v (and the pointer memory) -> logits and presents. */
  toOnnxDecoderStep(g: OnnxGraph): void {
    const io = declareVlpDecoderInputs(g, this.config);
    const x = this.textEmbeddingsOnnx(g, io.inputIds, io.positionIds, io.pointer?.embed ?? null); // [B, 1, C]
    // Response tokens attend causally; every past position is before the new one, so the prefix
    // length does not matter here (the mask is all zeros for one token).
    const r = this.h.toOnnxWithCache(g, x, { prefixLen: 0, past: io.past });
    declareVlpOutputs(g, this.config, this.lastLogitsOnnx(g, r.y, io.pointer), r.presents, 'total', null);
  }

  /** [B, P, C] prefix embeddings, plus the HOI tokens [B, M, C] and the visual token count Nv ([1] int64). */
  private prefixEmbeddingsOnnx(g: OnnxGraph, io: VlpPrefixOnnxInputs): { x: string; hoiTokens: string; visualTokens: string } {
    const o = this.onnxOps(g);
    const c = this.config.dim;
    const i64 = (v: number[]): string => g.constant(v, 'int64');
    const seg = (k: number): string => this.segment_emb.toOnnx(g, g.constant([k], 'int64', [])); // [C]
    const tokens = o.Reshape(o.Transpose(io.visual, { perm: [0, 2, 3, 1] }), i64([0, -1, this.config.visual_channels])); // [B, Hf*Wf, Cv]
    const vis = o.Add(this.visual_proj.toOnnx(g, tokens), sine2dOnnx(g, 'visual_pos', io.visual, c)); // [B, Nv, C]
    const hoiTokens = this.hoi.toOnnx(g, io); // [B, M, C]
    const x = o.Concat([
      o.Add(vis, seg(SEGMENT.visual)),
      o.Add(hoiTokens, seg(SEGMENT.hoi)),
      o.Add(this.wte.toOnnx(g, io.instruction), seg(SEGMENT.text)),
    ], { axis: 1 }); // [B, P, C]
    const p = o.Squeeze(o.Shape(x, { start: 1, end: 2 }), i64([0]));
    const withPositions = o.Add(x, this.wpe.toOnnx(g, o.Range(g.constant([0], 'int64', []), p, g.constant([1], 'int64', [])))); // + [P, C]
    return { x: withPositions, hoiTokens, visualTokens: o.Shape(tokens, { start: 1, end: 2 }) };
  }

  /** ids [B, T] and positions ([T] or [B, T]) int64 [+ pointer embeddings [B, 2M, C]] -> [B, T, C] (as textEmbeddings). */
  private textEmbeddingsOnnx(g: OnnxGraph, ids: string, positions: string, pointerEmbed: string | null): string {
    const o = this.onnxOps(g);
    let x: string;
    if (pointerEmbed) {
      const i64 = (v: number[], dims?: number[]): string => g.constant(v, 'int64', dims);
      const V = i64([this.config.vocab_size], []);
      const isText = o.Less(ids, V); // [B, T]
      const words = o.Mul(this.wte.toOnnx(g, o.Where(isText, ids, i64([0], []))), o.Unsqueeze(o.Cast(isText, { to: DataType.FLOAT }), i64([-1])));
      const slots = o.Squeeze(o.Shape(pointerEmbed, { start: 1, end: 2 }), i64([0])); // 2M
      const pick = o.Cast(o.Equal(o.Unsqueeze(o.Sub(ids, V), i64([-1])), o.Range(i64([0], []), slots, i64([1], []))), { to: DataType.FLOAT }); // [B, T, 2M]
      x = o.Add(words, o.MatMul(pick, pointerEmbed));
    } else {
      x = this.wte.toOnnx(g, ids);
    }
    x = o.Add(x, this.segment_emb.toOnnx(g, g.constant([SEGMENT.text], 'int64', [])));
    return o.Add(x, this.wpe.toOnnx(g, positions));
  }

  /** HOI tokens [B, M, C] -> pointer input embeddings [B, 2M, C]; null without box_pointer. */
  private pointerEmbeddingsOnnx(g: OnnxGraph, hoiTokens: string): string | null {
    if (!this.pointer_embed) return null;
    return this.onnxOps(g).Reshape(this.pointer_embed.toOnnx(g, hoiTokens), g.constant([0, -1, this.config.dim], 'int64'));
  }

  /** The pointer memory as ONNX values: keys from the transformer output y at the HOI slots, bias from the subject ids. */
  private pointerMemoryOnnx(g: OnnxGraph, io: VlpPrefixOnnxInputs, pre: { visualTokens: string }, embed: string | null, y: string): OnnxPointerMemory | null {
    if (!this.pointer_key || !embed) return null;
    const o = this.onnxOps(g);
    const i64 = (v: number[], dims?: number[]): string => g.constant(v, 'int64', dims);
    const m = o.Shape(io.hoiSubject, { start: 1, end: 2 }); // [1] = M
    const hoiOut = o.Slice(y, pre.visualTokens, o.Add(pre.visualTokens, m), i64([1])); // [B, M, C]
    const keys = o.Reshape(this.pointer_key.toOnnx(g, this.ln_f.toOnnx(g, hoiOut)), i64([0, -1, this.config.dim])); // [B, 2M, C]
    const pad = o.Mul(o.Cast(o.Equal(io.hoiSubject, i64([this.config.num_categories], [])), { to: DataType.FLOAT }), g.constant([POINTER_PAD_BIAS], 'float32', [])); // [B, M]
    const u = o.Unsqueeze(pad, i64([2])); // [B, M, 1]
    const bias = o.Reshape(o.Concat([u, u], { axis: 2 }), i64([0, -1])); // [B, 2M]
    return { embed, keys, bias };
  }

  /** ln_f + LM head [+ pointer scores]: [B, T, C] -> [B, T, V (+ 2M)]. */
  private logitsOnnx(g: OnnxGraph, hidden: string, pointer: OnnxPointerMemory | null): string {
    const o = this.onnxOps(g);
    const h = this.ln_f.toOnnx(g, hidden);
    let words: string;
    if (this.lm_head) {
      words = this.lm_head.toOnnx(g, h);
    } else {
      // Tied head: the same initializer as wte's Gather (re-adding a name returns it).
      const w = g.initializer(this.wte.paramPath('weight'), this.wte.weight);
      words = o.MatMul(h, o.Transpose(w, { perm: [1, 0] })); // [B, T, V]
    }
    if (!pointer) return words;
    const scores = o.Add(o.MatMul(h, o.Transpose(pointer.keys, { perm: [0, 2, 1] })), o.Unsqueeze(pointer.bias, g.constant([1], 'int64'))); // [B, T, 2M]
    return o.Concat([words, scores], { axis: 2 });
  }

  /** Logits of the last position: [B, T, C] -> [B, V (+ 2M)]. */
  private lastLogitsOnnx(g: OnnxGraph, hidden: string, pointer: OnnxPointerMemory | null): string {
    const o = this.onnxOps(g);
    const i64 = (v: number[]): string => g.constant(v, 'int64');
    const last = o.Slice(hidden, i64([-1]), i64([Number.MAX_SAFE_INTEGER]), i64([1])); // [B, 1, C]
    return o.Squeeze(this.logitsOnnx(g, last, pointer), i64([1])); // [B, V (+ 2M)]
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
