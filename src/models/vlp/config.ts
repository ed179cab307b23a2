/**
 * The explainer's model configuration (`model:` of configs/vlp/*.yaml): the decoder size, the
 * vocabulary, and what the HOI-conditioned prefix looks like. Keys are snake_case like the other
 * configs; unknown keys are rejected (`.strict()`).
 *
 * Cross-field rules (dim divisible by heads and by 4 for the 2-D sine encoding) cannot live in a
 * plain z.object without turning it into a ZodEffects (which other schemas embed and extend), so
 * they are checked by `checkVlpModelConfig`, which `parseVlpModelConfig` and the VlpExplainer
 * constructor both call.
 */
import { z } from 'zod';
import { ConfigError } from '../../errors';

const posInt = () => z.number().int().positive();

export const VlpModelConfigSchema = z
  .object({
    /** Token vocabulary size (the tokenizer's, special tokens included). */
    vocab_size: posInt(),
    /** Model width C. */
    dim: posInt(),
    /** Transformer blocks. */
    layers: posInt(),
    /** Attention heads; dim must be divisible by heads. */
    heads: posInt(),
    /** MLP hidden width; default 4 * dim (GPT-2). */
    mlp_hidden: posInt().optional(),
    /** Dropout on embeddings, attention weights and residual branches (training only). */
    dropout: z.number().min(0).lt(1).default(0.1),
    /** Rows of the absolute position table `wpe`: prefix + response must fit. */
    max_positions: posInt().default(512),
    /** Channels Cv of the backbone feature map given as `visual`. */
    visual_channels: posInt(),
    /** Object categories; id num_categories is the learned "no HOI" padding row. */
    num_categories: posInt(),
    /** Verbs; id num_verbs is the padding row. */
    num_verbs: posInt(),
    /** HOI token slots M (triplets beyond it are dropped by the caller, highest scores kept). */
    max_hois: posInt().default(6),
    /** Instruction tokens Li (left-padded to this length). */
    instruction_length: posInt().default(24),
    /** Fourier encodings of the subject/object boxes in the HOI tokens (false: ablation). */
    box_encoding: z.boolean().default(true),
    /** Frequencies F of the box encoding: sin/cos(2^k pi c), k < F, per coordinate c. */
    box_frequencies: posInt().max(16).default(8),
    /**
     * Cite boxes by pointing (a copy head): besides the V vocabulary logits the decoder scores
     * 2 * max_hois pointer tokens, id V + 2m = "the subject box of HOI slot m", V + 2m + 1 = "its
     * object box", and the detokenizer writes that slot's box. false: boxes are generated digit by
     * digit from the vocabulary.
     */
    box_pointer: z.boolean().default(false),
    /** LM head = wte.weight transposed (GPT-2); false: a separate `lm_head` Linear without bias. */
    tie_embeddings: z.boolean().default(true),
  })
  .strict();

export type VlpModelConfig = z.infer<typeof VlpModelConfigSchema>;

/** Throws ConfigError when fields that are valid one by one do not fit together. */
export function checkVlpModelConfig(c: VlpModelConfig, where = 'model'): void {
  if (c.dim % c.heads !== 0) {
    throw new ConfigError(`${where}.dim: ${c.dim} is not divisible by ${where}.heads = ${c.heads}`);
  }
  if (c.dim % 4 !== 0) {
    throw new ConfigError(`${where}.dim: must be a multiple of 4 (the 2-D sine encoding splits it in y/x and sin/cos), got ${c.dim}`);
  }
  const prefixWithoutVisual = c.max_hois + c.instruction_length;
  if (prefixWithoutVisual + 2 > c.max_positions) {
    throw new ConfigError(`${where}.max_positions: ${c.max_positions} cannot hold max_hois (${c.max_hois}) + instruction_length (${c.instruction_length}) + a response`);
  }
}

/** Parses and checks a raw config object; errors name the offending field. */
export function parseVlpModelConfig(raw: unknown, where = 'model'): VlpModelConfig {
  const r = VlpModelConfigSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${[where, ...i.path].join('.')}: ${i.message}`);
    throw new ConfigError(`invalid VLP model config: ${issues.join('; ')}`);
  }
  checkVlpModelConfig(r.data, where);
  return r.data;
}

/** Logits per position: the vocabulary, plus 2 pointer tokens per HOI slot with box_pointer. */
export function numLogits(c: VlpModelConfig, slots = c.max_hois): number {
  return c.vocab_size + (c.box_pointer ? 2 * slots : 0);
}

/** MLP hidden width after defaults. */
export function mlpHidden(c: VlpModelConfig): number {
  return c.mlp_hidden ?? 4 * c.dim;
}
