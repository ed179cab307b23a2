/**
 * Shared fixtures of the explainer tests: a tiny config, seeded inputs (with padded HOI slots and a
 * left-padded instruction), and weights drawn larger than GPT-2's 0.02 so that next-token
 * distributions are peaked (generation comparisons then do not hinge on float noise in near-ties).
 */
import { tf } from '../../../src/backend/tf';
import { Rng } from '../../../src/data/rng';
import { VlpModelConfig, parseVlpModelConfig } from '../../../src/models/vlp/config';
import type { VlpExplainer, VlpInputs } from '../../../src/models/vlp/explainer';

export const PAD = 0;
export const BOS = 1;
export const EOS = 2;

export function tinyConfig(overrides: Partial<VlpModelConfig> = {}): VlpModelConfig {
  return parseVlpModelConfig({
    vocab_size: 17, dim: 16, layers: 2, heads: 2, dropout: 0, max_positions: 40, visual_channels: 6,
    num_categories: 5, num_verbs: 4, max_hois: 3, instruction_length: 4, box_frequencies: 3, ...overrides,
  });
}

/** Seeded inputs for `batch` rows; the last HOI slot of row 0 is padding, the instruction is left-padded. */
export function makeInputs(c: VlpModelConfig, batch: number, seed: number, grid: [number, number] = [2, 3]): VlpInputs {
  const rng = new Rng(seed, 'vlp-inputs');
  const m = c.max_hois;
  const li = c.instruction_length;
  const [hf, wf] = grid;
  const visual = Float32Array.from({ length: batch * hf * wf * c.visual_channels }, () => rng.normal(0, 1));
  const subj: number[] = [];
  const verb: number[] = [];
  const obj: number[] = [];
  const sbox: number[] = [];
  const obox: number[] = [];
  const box = (): number[] => {
    const x1 = rng.uniform(0, 0.6);
    const y1 = rng.uniform(0, 0.6);
    return [x1, y1, x1 + rng.uniform(0.1, 0.4), y1 + rng.uniform(0.1, 0.4)];
  };
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < m; j++) {
      const pad = b === 0 && j === m - 1;
      subj.push(pad ? c.num_categories : 0);
      verb.push(pad ? c.num_verbs : rng.int(0, c.num_verbs - 1));
      obj.push(pad ? c.num_categories : rng.int(1, c.num_categories - 1));
      sbox.push(...(pad ? [0, 0, 0, 0] : box()));
      obox.push(...(pad ? [0, 0, 0, 0] : box()));
    }
  }
  const instr: number[] = [];
  for (let b = 0; b < batch; b++) {
    const n = 2 + (b % (li - 1)); // 2 .. li tokens, left-padded
    for (let j = 0; j < li; j++) instr.push(j < li - n ? PAD : rng.int(3, c.vocab_size - 1));
  }
  return {
    visual: tf.tensor4d(visual, [batch, hf, wf, c.visual_channels]),
    hoiSubject: tf.tensor2d(subj, [batch, m], 'int32'),
    hoiVerb: tf.tensor2d(verb, [batch, m], 'int32'),
    hoiObject: tf.tensor2d(obj, [batch, m], 'int32'),
    hoiSubjectBox: tf.tensor3d(sbox, [batch, m, 4]),
    hoiObjectBox: tf.tensor3d(obox, [batch, m, 4]),
    instruction: tf.tensor2d(instr, [batch, li], 'int32'),
  };
}

export function disposeInputs(inputs: VlpInputs): void {
  tf.dispose(Object.values(inputs));
}

/** Replaces every parameter by N(0, std^2) values (LayerNorm scales: 1 + N(0, 0.1^2)), seeded. */
export function sharpen(model: VlpExplainer, seed: number, std = 0.4): void {
  for (const [name, v] of model.namedParameters()) {
    const rng = new Rng(seed, name);
    const isNorm = /(^|\.)ln_(1|2|f)\./.test(name);
    const data = Float32Array.from({ length: v.size }, () => (isNorm && name.endsWith('weight') ? 1 + rng.normal(0, 0.1) : rng.normal(0, std)));
    tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
  }
}

/**
 * Random response ids [B, T] starting with <bos>, tokens in [3, V); with box_pointer every third
 * token is a pointer token of a real slot (slots below max_hois - 1: row 0's last slot is padding).
 */
export function makeResponse(c: VlpModelConfig, batch: number, length: number, seed: number): tf.Tensor2D {
  const rng = new Rng(seed, 'vlp-response');
  const ids: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < length; t++) {
      if (t === 0) ids.push(BOS);
      else if (c.box_pointer && t % 3 === 2) ids.push(c.vocab_size + rng.int(0, 2 * (c.max_hois - 1) - 1));
      else ids.push(rng.int(3, c.vocab_size - 1));
    }
  }
  return tf.tensor2d(ids, [batch, length], 'int32');
}
