/**
 * Multi-head self-attention with a causal mask that lets every position see a prefix, and a
 * key/value cache for generation.
 *
 * Mask: with prefix length P, query position i sees key position j when j < P or j <= i
 * (positions are absolute: with a cache of length L, the new queries are at L, L+1, ...). The
 * prefix (visual/HOI/instruction tokens) is thus attended bidirectionally, the response causally.
 * `causal: false` gives full attention (no mask). Masked scores get -1e9 added (not -inf): exp
 * underflows to exactly 0 in float32 and a fully masked row cannot produce NaN.
 *
 * Parameters (GPT-2 names): `c_attn` Linear(C, 3C) -> q, k, v; `c_proj` Linear(C, C).
 * Shapes: x [B, T, C] -> [B, T, C]; heads [B, nH, T, dH]; cache k/v [B, nH, L, dH].
 *
 * ONNX: MatMul / Softmax / Transpose / Reshape with the mask computed in the graph from the
 * shapes (Range, LessOrEqual, Less, Or, Where), so one graph serves any batch, length and cache
 * length; P is a constant or an int64 graph input. `toOnnxWithCache` adds past_key/past_value and
 * returns present_key/present_value (the decoder-step graph).
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph } from '../../export/onnx_graph';
import { deriveSeed, nextDefaultSeed } from './init';
import { Dropout } from './dropout';
import { Linear, LinearOptions } from './linear';
import { Module, assertShape, fmtShape } from './module';

export const MASK_VALUE = -1e9;

/** Keys and values of one attention layer for the positions seen so far. */
export class KVCache {
  k: tf.Tensor4D | null = null; // [B, nH, L, dH]
  v: tf.Tensor4D | null = null; // [B, nH, L, dH]

  get length(): number {
    return this.k ? this.k.shape[2] : 0;
  }

  /**
   * Appends k/v [B, nH, T, dH] and returns the whole [B, nH, L+T, dH]. The stored tensors are kept
   * alive past the enclosing tidy; the previous ones are disposed.
   */
  append(k: tf.Tensor4D, v: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D] {
    if (this.k && this.v) {
      assertShape(this.k.shape[0] === k.shape[0] && this.k.shape[1] === k.shape[1] && this.k.shape[3] === k.shape[3],
        () => `KVCache: new keys ${fmtShape(k.shape)} do not fit the cache ${fmtShape(this.k?.shape ?? [])}`);
      const nk = tf.keep(tf.concat([this.k, k], 2));
      const nv = tf.keep(tf.concat([this.v, v], 2));
      this.k.dispose();
      this.v.dispose();
      this.k = nk;
      this.v = nv;
    } else {
      this.k = tf.keep(k.clone());
      this.v = tf.keep(v.clone());
    }
    return [this.k, this.v];
  }

  dispose(): void {
    this.k?.dispose();
    this.v?.dispose();
    this.k = null;
    this.v = null;
  }
}

/**
 * Additive mask [T, L+T]: 0 where query i (absolute L + i) sees key j (j < P or j <= L + i), -1e9
 * elsewhere; null when nothing is masked.
 */
export function causalPrefixBias(queryLen: number, pastLen: number, prefixLen: number): Float32Array | null {
  const total = pastLen + queryLen;
  const out = new Float32Array(queryLen * total);
  let masked = false;
  for (let i = 0; i < queryLen; i++) {
    for (let j = 0; j < total; j++) {
      if (!(j < prefixLen || j <= pastLen + i)) {
        out[i * total + j] = MASK_VALUE;
        masked = true;
      }
    }
  }
  return masked ? out : null;
}

/**
 * The same bias as ONNX nodes, from the shapes of `x` [B, T, C] and `pastKey` [B, nH, L, dH]:
 * returns a float value [T, L+T]. `prefixLen`: a number, or an int64 value name (scalar or [1]).
 */
export function causalPrefixBiasOnnx(g: OnnxGraph, scope: string, x: string, opts: { pastKey?: string; prefixLen?: number | string } = {}): string {
  const o = g.ops(scope);
  const i64 = (v: number[], dims?: number[]): string => g.constant(v, 'int64', dims);
  const t = o.Shape(x, { start: 1, end: 2 }); // [1] = T
  const past = opts.pastKey ? o.Shape(opts.pastKey, { start: 2, end: 3 }) : i64([0]); // [1] = L
  const total = o.Add(past, t); // [1] = L + T
  const axis0 = i64([0]);
  const one = i64([1], []);
  const kpos = o.Range(i64([0], []), o.Squeeze(total, axis0), one); // [L+T]
  const qpos = o.Range(o.Squeeze(past, axis0), o.Squeeze(total, axis0), one); // [T]
  const qcol = o.Unsqueeze(qpos, i64([1])); // [T, 1]
  let visible = o.LessOrEqual(kpos, qcol); // [T, L+T]
  const p = opts.prefixLen ?? 0;
  if (typeof p === 'string' || p > 0) {
    const pv = typeof p === 'string' ? p : i64([p], []);
    visible = o.Or(visible, o.Less(kpos, pv));
  }
  return o.Where(visible, g.constant([0], 'float32', []), g.constant([MASK_VALUE], 'float32', [])); // [T, L+T]
}

export interface MultiHeadAttentionOptions {
  /** Default true (causal + prefix mask); false: every position sees every position. */
  causal?: boolean;
  /** Dropout on attention weights and on the output. Default 0. */
  dropout?: number;
  bias?: boolean;
  seed?: number;
  /** Initializers of both projections (default PyTorch's). */
  weightInit?: LinearOptions['weightInit'];
}

export interface AttentionForwardOptions {
  /** Appends this call's keys/values and attends over the whole cache. */
  cache?: KVCache;
  /** Length P of the bidirectional prefix (must arrive in the first call). Default 0. */
  prefixLen?: number;
}

export interface AttentionOnnxOptions {
  prefixLen?: number | string;
  /** A precomputed bias [T, L+T] (e.g. from causalPrefixBiasOnnx), shared by all layers. */
  attnBias?: string;
}

export class MultiHeadAttention extends Module {
  readonly c_attn: Linear;
  readonly c_proj: Linear;
  readonly attn_dropout: Dropout;
  readonly resid_dropout: Dropout;
  readonly headDim: number;
  readonly causal: boolean;

  constructor(readonly dim: number, readonly numHeads: number, opts: MultiHeadAttentionOptions = {}) {
    super();
    assertShape(dim % numHeads === 0, () => `MultiHeadAttention: dim ${dim} is not divisible by ${numHeads} heads`);
    this.headDim = dim / numHeads;
    this.causal = opts.causal ?? true;
    const seed = opts.seed ?? nextDefaultSeed();
    const lin = (name: string): LinearOptions => ({ bias: opts.bias, seed: deriveSeed(seed, name), weightInit: opts.weightInit });
    this.c_attn = this.registerModule('c_attn', new Linear(dim, 3 * dim, lin('c_attn')));
    this.c_proj = this.registerModule('c_proj', new Linear(dim, dim, lin('c_proj')));
    this.attn_dropout = this.registerModule('attn_dropout', new Dropout(opts.dropout ?? 0, { seed: deriveSeed(seed, 'attn_dropout') }));
    this.resid_dropout = this.registerModule('resid_dropout', new Dropout(opts.dropout ?? 0, { seed: deriveSeed(seed, 'resid_dropout') }));
  }

  /** x: [B, T, C] -> [B, T, C]. */
  forward(x: tf.Tensor3D, opts: AttentionForwardOptions = {}): tf.Tensor3D {
    assertShape(x.rank === 3 && x.shape[2] === this.dim,
      () => `MultiHeadAttention(${this.onnxScope()}): input [B,T,${this.dim}] expected, got ${fmtShape(x.shape)}`);
    const [b, t, c] = x.shape;
    const nH = this.numHeads;
    const dH = this.headDim;
    const cache = opts.cache;
    const past = cache?.length ?? 0;
    const prefixLen = opts.prefixLen ?? 0;
    assertShape(past === 0 || past >= prefixLen,
      () => `MultiHeadAttention(${this.onnxScope()}): the prefix (${prefixLen}) must arrive in one call; the cache holds ${past}`);
    return tf.tidy(() => {
      const qkv = this.c_attn.forward(x); // [B, T, 3C]
      const [q, k, v] = tf.split(qkv, 3, 2); // [B, T, C] each
      const heads = (z: tf.Tensor): tf.Tensor4D => z.reshape([b, t, nH, dH]).transpose([0, 2, 1, 3]) as tf.Tensor4D; // [B, nH, T, dH]
      let kh = heads(k);
      let vh = heads(v);
      if (cache) [kh, vh] = cache.append(kh, vh); // [B, nH, L+T, dH]
      let att = tf.mul(tf.matMul(heads(q), kh, false, true), 1 / Math.sqrt(dH)); // [B, nH, T, L+T]
      if (this.causal) {
        const bias = causalPrefixBias(t, past, prefixLen);
        if (bias) att = tf.add(att, tf.tensor2d(bias, [t, past + t])); // [T, L+T] broadcast
      }
      att = this.attn_dropout.forward(tf.softmax(att, -1));
      const y = tf.matMul(att, vh) // [B, nH, T, dH]
        .transpose([0, 2, 1, 3]) // [B, T, nH, dH]
        .reshape([b, t, c]); // [B, T, C]
      return this.resid_dropout.forward(this.c_proj.forward(y)) as tf.Tensor3D;
    });
  }

  /** x: [B, T, C] -> [B, T, C] (no cache). */
  toOnnx(g: OnnxGraph, x: string, opts: AttentionOnnxOptions = {}): string {
    return this.emit(g, x, opts).y;
  }

  /**
   * With a cache: past_key/past_value [B, nH, L, dH] (omit both for the first call) ->
   * y [B, T, C], present_key/present_value [B, nH, L+T, dH].
   */
  toOnnxWithCache(g: OnnxGraph, x: string, opts: AttentionOnnxOptions & { pastKey?: string; pastValue?: string } = {}): { y: string; presentKey: string; presentValue: string } {
    if ((opts.pastKey === undefined) !== (opts.pastValue === undefined)) throw new Error('toOnnxWithCache: give both pastKey and pastValue, or neither');
    const past = opts.pastKey !== undefined ? { key: opts.pastKey, value: opts.pastValue as string } : undefined;
    return this.emit(g, x, opts, past);
  }

  private emit(g: OnnxGraph, x: string, opts: AttentionOnnxOptions, past?: { key: string; value: string }): { y: string; presentKey: string; presentValue: string } {
    const o = this.onnxOps(g);
    const i64 = (v: number[]): string => g.constant(v, 'int64');
    const c = this.dim;
    const qkv = this.c_attn.toOnnx(g, x); // [B, T, 3C]
    const [q, k, v] = o.Split(qkv, i64([c, c, c]), { axis: 2 }, 3); // [B, T, C] each
    const headShape = i64([0, 0, this.numHeads, this.headDim]);
    const heads = (z: string): string => o.Transpose(o.Reshape(z, headShape), { perm: [0, 2, 1, 3] }); // [B, nH, T, dH]
    let kh = heads(k);
    let vh = heads(v);
    if (past) {
      kh = o.Concat([past.key, kh], { axis: 2 }); // [B, nH, L+T, dH]
      vh = o.Concat([past.value, vh], { axis: 2 });
    }
    const kT = o.Transpose(kh, { perm: [0, 1, 3, 2] }); // [B, nH, dH, L+T]
    let att = o.Mul(o.MatMul(heads(q), kT), g.constant([1 / Math.sqrt(this.headDim)], 'float32', [])); // [B, nH, T, L+T]
    if (this.causal) {
      const bias = opts.attnBias ?? causalPrefixBiasOnnx(g, `${this.onnxScope()}/mask`, x, { pastKey: past?.key, prefixLen: opts.prefixLen });
      att = o.Add(att, bias);
    }
    att = o.Softmax(att, { axis: -1 });
    let y = o.MatMul(att, vh); // [B, nH, T, dH]
    y = o.Reshape(o.Transpose(y, { perm: [0, 2, 1, 3] }), i64([0, 0, c])); // [B, T, C]
    y = this.c_proj.toOnnx(g, y);
    return { y, presentKey: kh, presentValue: vh };
  }
}
