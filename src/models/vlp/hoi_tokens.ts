/**
 * HOI tokens: one token per detected (subject, verb, object) triplet,
 *
 *   token = hoi_subject_emb[s] + hoi_verb_emb[v] + hoi_object_emb[o]
 *           (+ hoi_box_proj([fourier(subject box), fourier(object box)])   when box_encoding)
 *
 * The box term is the paper's "positional information": without it two people doing different
 * things are indistinguishable tokens and the explanation can attach an action to the wrong
 * person. With `box_encoding: false` (the ablation) the box inputs are ignored and
 * `hoi_box_proj` does not exist.
 *
 * Padding slots use id num_categories / num_verbs: each table has one extra learned "none" row.
 * The layers are registered on the explainer itself (flat names `hoi_subject_emb`, ... as the
 * explainer's parameter list documents), so this file holds the computation over them rather than a
 * module of its own.
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph } from '../../export/onnx_graph';
import { Embedding } from '../nn/embedding';
import { deriveSeed } from '../nn/init';
import { Linear } from '../nn/linear';
import { Module, assertShape, fmtShape } from '../nn/module';
import type { VlpModelConfig } from './config';
import { boxFourier, boxFourierFeatures, boxFourierOnnx } from './encodings';

/** The HOI inputs of one batch (tfjs): ids int32 [B, M], boxes float32 [B, M, 4]. */
export interface HoiTensors {
  hoiSubject: tf.Tensor2D;
  hoiVerb: tf.Tensor2D;
  hoiObject: tf.Tensor2D;
  hoiSubjectBox: tf.Tensor3D;
  hoiObjectBox: tf.Tensor3D;
}

/** The same inputs as ONNX value names (ids int64); boxes absent without box encoding. */
export interface HoiOnnxValues {
  hoiSubject: string;
  hoiVerb: string;
  hoiObject: string;
  hoiSubjectBox?: string;
  hoiObjectBox?: string;
}

/** The layers of the HOI tokens, owned (registered) by the explainer. */
export class HoiTokenLayers {
  readonly subject: Embedding;
  readonly verb: Embedding;
  readonly object: Embedding;
  /** null when box_encoding is false. */
  readonly boxProj: Linear | null;
  readonly boxFrequencies: number;

  /** Creates the layers and registers them on `owner` as hoi_subject_emb, hoi_verb_emb, hoi_object_emb, hoi_box_proj. */
  constructor(owner: Module, readonly config: VlpModelConfig, seed: number) {
    const c = config;
    const emb = (name: string, rows: number): Embedding => owner.registerModule(name, new Embedding(rows, c.dim, { seed: deriveSeed(seed, name) }));
    this.subject = emb('hoi_subject_emb', c.num_categories + 1);
    this.verb = emb('hoi_verb_emb', c.num_verbs + 1);
    this.object = emb('hoi_object_emb', c.num_categories + 1);
    this.boxFrequencies = c.box_frequencies;
    this.boxProj = c.box_encoding
      ? owner.registerModule('hoi_box_proj', new Linear(2 * boxFourierFeatures(c.box_frequencies), c.dim, { seed: deriveSeed(seed, 'hoi_box_proj') }))
      : null;
  }

  /** Shape and id-range checks of the inputs: ShapeError naming the input. */
  check(h: HoiTensors, batch: number): number {
    const m = h.hoiSubject.shape[1];
    const c = this.config;
    for (const [name, t, hi] of [['hoiSubject', h.hoiSubject, c.num_categories], ['hoiVerb', h.hoiVerb, c.num_verbs], ['hoiObject', h.hoiObject, c.num_categories]] as const) {
      assertShape(t.rank === 2 && t.dtype === 'int32' && t.shape[0] === batch && t.shape[1] === m,
        () => `VlpInputs.${name}: int32 [${batch}, ${m}] expected, got ${t.dtype} ${fmtShape(t.shape)}`);
      // Out-of-range ids would read garbage rows silently on wasm; B x M ints are cheap to check.
      const bad = (t.dataSync() as Int32Array).find((v) => v < 0 || v > hi);
      assertShape(bad === undefined, () => `VlpInputs.${name}: ids in [0, ${hi}] expected (${hi} = padding), found ${bad}`);
    }
    if (this.boxProj) {
      for (const [name, t] of [['hoiSubjectBox', h.hoiSubjectBox], ['hoiObjectBox', h.hoiObjectBox]] as const) {
        assertShape(t.rank === 3 && t.dtype === 'float32' && t.shape[0] === batch && t.shape[1] === m && t.shape[2] === 4,
          () => `VlpInputs.${name}: float32 [${batch}, ${m}, 4] expected, got ${t.dtype} ${fmtShape(t.shape)}`);
      }
    }
    return m;
  }

  /** -> [B, M, C]. */
  forward(h: HoiTensors): tf.Tensor3D {
    return tf.tidy(() => {
      let tok = tf.add(tf.add(this.subject.forward(h.hoiSubject), this.verb.forward(h.hoiVerb)), this.object.forward(h.hoiObject)); // [B, M, C]
      if (this.boxProj) {
        const feats = tf.concat([boxFourier(h.hoiSubjectBox, this.boxFrequencies), boxFourier(h.hoiObjectBox, this.boxFrequencies)], 2); // [B, M, 8(2F+1)]
        tok = tf.add(tok, this.boxProj.forward(feats));
      }
      return tok as tf.Tensor3D;
    });
  }

  /** The same as ONNX nodes: -> [B, M, C]. */
  toOnnx(g: OnnxGraph, h: HoiOnnxValues): string {
    const o = g.ops('hoi_tokens');
    let tok = o.Add(o.Add(this.subject.toOnnx(g, h.hoiSubject), this.verb.toOnnx(g, h.hoiVerb)), this.object.toOnnx(g, h.hoiObject)); // [B, M, C]
    if (this.boxProj) {
      if (h.hoiSubjectBox === undefined || h.hoiObjectBox === undefined) throw new Error('HoiTokenLayers.toOnnx: box inputs are required with box_encoding');
      const feats = o.Concat([boxFourierOnnx(o, h.hoiSubjectBox, this.boxFrequencies), boxFourierOnnx(o, h.hoiObjectBox, this.boxFrequencies)], { axis: 2 });
      tok = o.Add(tok, this.boxProj.toOnnx(g, feats));
    }
    return tok;
  }
}
