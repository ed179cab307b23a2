/**
 * The ONNX interface of the explainer's two generation graphs: input/output names, dims and dtypes
 * (what `export onnx` writes into the manifest and what the ONNX Runtime engine feeds), and the
 * conversion of tfjs VlpInputs into feed arrays. The graphs themselves are emitted by
 * VlpExplainer.toOnnxPrefix / toOnnxDecoderStep (explainer.ts), which declare their I/O here.
 *
 * `vlp_prefix` (prefix encoder):
 *   visual            float32 [batch, Cv, height, width]  backbone features, NCHW
 *   hoi_subject       int64   [batch, hois]               category ids (num_categories = padding)
 *   hoi_verb          int64   [batch, hois]               verb ids (num_verbs = padding)
 *   hoi_object        int64   [batch, hois]
 *   hoi_subject_box   float32 [batch, hois, 4]            normalized x1,y1,x2,y2 (only with box_encoding)
 *   hoi_object_box    float32 [batch, hois, 4]            (only with box_encoding)
 *   instruction       int64   [batch, instruction]        left-padded instruction tokens
 *   -> logits             float32 [batch, vocab]          at the last prefix position
 *                                 ([batch, vocab + 2 hois] with box_pointer)
 *      present_key_i      float32 [batch, heads, prefix, head_dim]   for i < layers
 *      present_value_i    float32 [batch, heads, prefix, head_dim]
 *      pointer_embed      float32 [batch, 2 hois, dim]    (only with box_pointer)
 *      pointer_keys       float32 [batch, 2 hois, dim]    (only with box_pointer)
 *      pointer_bias       float32 [batch, 2 hois]         (only with box_pointer: 0, or -1e9 for padding)
 * `vlp_decoder` (one decoding step):
 *   input_ids         int64   [batch, 1]                  the token at the current position
 *   position_ids      int64   [batch, 1]                  its absolute position (= past length)
 *   past_key_i        float32 [batch, heads, past, head_dim]
 *   past_value_i      float32 [batch, heads, past, head_dim]
 *   pointer_embed, pointer_keys, pointer_bias              the prefix's (only with box_pointer)
 *   -> logits [batch, vocab (+ 2 hois)], present_key_i / present_value_i [batch, heads, past + 1, head_dim]
 * Batch, grid size, number of HOI slots, instruction and cache lengths are all dynamic.
 */
import { tf } from '../../backend/tf';
import type { Dim, OnnxGraph } from '../../export/onnx_graph';
import type { VlpModelConfig } from './config';

export const VLP_PREFIX_GRAPH = 'vlp_prefix';
export const VLP_DECODER_GRAPH = 'vlp_decoder';

export const VLP_ONNX_NAMES = {
  visual: 'visual',
  hoiSubject: 'hoi_subject',
  hoiVerb: 'hoi_verb',
  hoiObject: 'hoi_object',
  hoiSubjectBox: 'hoi_subject_box',
  hoiObjectBox: 'hoi_object_box',
  instruction: 'instruction',
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  logits: 'logits',
  pastKey: (layer: number): string => `past_key_${layer}`,
  pastValue: (layer: number): string => `past_value_${layer}`,
  presentKey: (layer: number): string => `present_key_${layer}`,
  presentValue: (layer: number): string => `present_value_${layer}`,
  pointerEmbed: 'pointer_embed',
  pointerKeys: 'pointer_keys',
  pointerBias: 'pointer_bias',
} as const;

/** The box pointer's per-image values (PointerMemory of explainer.ts) as ONNX value names. */
export interface OnnxPointerMemory {
  embed: string;
  keys: string;
  bias: string;
}

/** Input value names of the prefix graph (box inputs only with box_encoding). */
export interface VlpPrefixOnnxInputs {
  visual: string;
  hoiSubject: string;
  hoiVerb: string;
  hoiObject: string;
  hoiSubjectBox?: string;
  hoiObjectBox?: string;
  instruction: string;
}

/** The prefix graph's input names, in declaration order. */
export function vlpPrefixInputNames(c: VlpModelConfig): string[] {
  const n = VLP_ONNX_NAMES;
  return [n.visual, n.hoiSubject, n.hoiVerb, n.hoiObject, ...(c.box_encoding ? [n.hoiSubjectBox, n.hoiObjectBox] : []), n.instruction];
}

/** Declares the prefix graph's inputs. */
export function declareVlpPrefixInputs(g: OnnxGraph, c: VlpModelConfig): VlpPrefixOnnxInputs {
  const n = VLP_ONNX_NAMES;
  const ids = (name: string): string => g.input(name, ['batch', 'hois'], 'int64');
  const io: VlpPrefixOnnxInputs = {
    visual: g.input(n.visual, ['batch', c.visual_channels, 'height', 'width'], 'float32'),
    hoiSubject: ids(n.hoiSubject),
    hoiVerb: ids(n.hoiVerb),
    hoiObject: ids(n.hoiObject),
    instruction: '',
  };
  if (c.box_encoding) {
    io.hoiSubjectBox = g.input(n.hoiSubjectBox, ['batch', 'hois', 4], 'float32');
    io.hoiObjectBox = g.input(n.hoiObjectBox, ['batch', 'hois', 4], 'float32');
  }
  io.instruction = g.input(n.instruction, ['batch', 'instruction'], 'int64');
  return io;
}

/** Declares the decoder-step graph's inputs: token, position, the past k/v of every layer (and the pointer memory). */
export function declareVlpDecoderInputs(g: OnnxGraph, c: VlpModelConfig): {
  inputIds: string; positionIds: string; past: Array<{ key: string; value: string }>; pointer: OnnxPointerMemory | null;
} {
  const n = VLP_ONNX_NAMES;
  const kv: Dim[] = ['batch', c.heads, 'past', c.dim / c.heads];
  const past: Array<{ key: string; value: string }> = [];
  const inputIds = g.input(n.inputIds, ['batch', 1], 'int64');
  const positionIds = g.input(n.positionIds, ['batch', 1], 'int64');
  for (let i = 0; i < c.layers; i++) past.push({ key: g.input(n.pastKey(i), kv), value: g.input(n.pastValue(i), kv) });
  const pointer = c.box_pointer
    ? { embed: g.input(n.pointerEmbed, ['batch', 'pointers', c.dim]), keys: g.input(n.pointerKeys, ['batch', 'pointers', c.dim]), bias: g.input(n.pointerBias, ['batch', 'pointers']) }
    : null;
  return { inputIds, positionIds, past, pointer };
}

/** Declares logits [batch, vocab (+ pointers)], the presents of every layer and (prefix graph) the pointer memory as graph outputs. */
export function declareVlpOutputs(
  g: OnnxGraph, c: VlpModelConfig, logits: string, presents: Array<{ key: string; value: string }>, cacheDim: string, pointer: OnnxPointerMemory | null,
): void {
  const n = VLP_ONNX_NAMES;
  const kv: Dim[] = ['batch', c.heads, cacheDim, c.dim / c.heads];
  g.output(n.logits, ['batch', c.box_pointer ? 'vocab_and_pointers' : c.vocab_size], 'float32', { from: logits });
  presents.forEach((p, i) => {
    g.output(n.presentKey(i), kv, 'float32', { from: p.key });
    g.output(n.presentValue(i), kv, 'float32', { from: p.value });
  });
  if (pointer) {
    g.output(n.pointerEmbed, ['batch', 'pointers', c.dim], 'float32', { from: pointer.embed });
    g.output(n.pointerKeys, ['batch', 'pointers', c.dim], 'float32', { from: pointer.keys });
    g.output(n.pointerBias, ['batch', 'pointers'], 'float32', { from: pointer.bias });
  }
}

/** A feed array for ONNX Runtime: float32 or int64 data with dims. */
export interface VlpFeedArray {
  data: Float32Array | BigInt64Array;
  dims: number[];
}

/** The tfjs inputs as what the prefix graph reads (visual NHWC -> NCHW, ids int32 -> int64). */
export function vlpPrefixFeeds(c: VlpModelConfig, inputs: {
  visual: tf.Tensor4D; hoiSubject: tf.Tensor2D; hoiVerb: tf.Tensor2D; hoiObject: tf.Tensor2D;
  hoiSubjectBox: tf.Tensor3D; hoiObjectBox: tf.Tensor3D; instruction: tf.Tensor2D;
}): Record<string, VlpFeedArray> {
  const n = VLP_ONNX_NAMES;
  const ids = (t: tf.Tensor): VlpFeedArray => ({ data: BigInt64Array.from(t.dataSync() as Int32Array, (v) => BigInt(v)), dims: [...t.shape] });
  const floats = (t: tf.Tensor): VlpFeedArray => ({ data: Float32Array.from(t.dataSync() as Float32Array), dims: [...t.shape] });
  const nchw = tf.transpose(inputs.visual, [0, 3, 1, 2]); // [N, Cv, H, W]
  const feeds: Record<string, VlpFeedArray> = {
    [n.visual]: floats(nchw),
    [n.hoiSubject]: ids(inputs.hoiSubject),
    [n.hoiVerb]: ids(inputs.hoiVerb),
    [n.hoiObject]: ids(inputs.hoiObject),
    [n.instruction]: ids(inputs.instruction),
  };
  nchw.dispose();
  if (c.box_encoding) {
    feeds[n.hoiSubjectBox] = floats(inputs.hoiSubjectBox);
    feeds[n.hoiObjectBox] = floats(inputs.hoiObjectBox);
  }
  return feeds;
}
