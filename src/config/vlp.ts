/**
 * `finetune vlp` configuration: the explainer's architecture (minus the sizes that come from the
 * data: vocabulary, categories, verbs, visual channels), its tokenizer, how HOI inputs are made
 * (ground truth with noise, or the extractor's predictions), the training loop, generation and
 * LoRA. Files under configs/vlp/ hold only what differs from these defaults.
 */
import { z } from 'zod';
import { BackendConfigSchema, scheduleWithCosineDefaults } from './common';

export const VlpArchitectureSchema = z
  .object({
    /** Model width (embedding size). */
    dim: z.number().int().positive().default(128),
    layers: z.number().int().positive().default(3),
    heads: z.number().int().positive().default(4),
    /** Hidden width of the MLPs; null = 4 * dim. */
    mlp_hidden: z.number().int().positive().nullable().default(null),
    dropout: z.number().min(0).max(0.9).default(0.1),
    /** Longest prefix + response the position table covers. */
    max_positions: z.number().int().positive().default(256),
    /** HOI slots of the prefix; an image's HOIs beyond this are cut. */
    max_hois: z.number().int().positive().default(6),
    /** Instruction tokens of the prefix (left-padded, longer instructions keep their first tokens). */
    instruction_length: z.number().int().positive().default(24),
    /** Fourier encodings of the HOI boxes; false = the ablation without positional information. */
    box_encoding: z.boolean().default(true),
    box_frequencies: z.number().int().positive().default(8),
    /** Cite boxes by pointing at an HOI slot's subject or object (copy head) instead of generating digits. */
    box_pointer: z.boolean().default(false),
    tie_embeddings: z.boolean().default(true),
  })
  .strict();

export const VlpConfigSchema = z
  .object({
    model: VlpArchitectureSchema.default({}),
    tokenizer: z
      .object({
        /** BPE vocabulary trained on the train split (ignored with --init: GPT-2's is used). */
        vocab_size: z.number().int().min(64).default(1000),
        min_frequency: z.number().int().positive().default(2),
      })
      .strict()
      .default({}),
    hoi_inputs: z
      .object({
        /** gt: the records' HOIs (with the noise below while training); extractor: its predictions. */
        source: z.enum(['gt', 'extractor']).default('gt'),
        /** Std of the per-coordinate box noise, as a fraction of the box's width / height. */
        box_jitter: z.number().min(0).max(1).default(0.05),
        /** Probability that a ground-truth HOI is left out of the inputs (a missed detection). */
        drop_prob: z.number().min(0).max(1).default(0.1),
        /** Probability that one spurious HOI (a random verb on the image's objects) is added. */
        spurious_prob: z.number().min(0).max(1).default(0.1),
        /** Shuffle the order of an image's HOI slots (the extractor orders by score, not by record). */
        shuffle: z.boolean().default(false),
        /** source=extractor: keep predicted triplets scoring at least this. */
        min_score: z.number().min(0).max(1).default(0.3),
      })
      .strict()
      .default({}),
    train: z
      .object({
        batch_size: z.number().int().positive().default(16),
        steps: z.number().int().positive().default(3000),
        seed: z.number().int().min(0).default(0),
        schedule: scheduleWithCosineDefaults({ lr: 1e-3, warmup_steps: 100, min_lr: 1e-5 }),
        weight_decay: z.number().min(0).default(0.01),
        betas: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0.9, 0.98]),
        /** Clip gradients to this global norm; 0 = off. */
        grad_clip: z.number().min(0).default(1),
        log_every: z.number().int().positive().default(10),
        /** Validate (generation on val) every N steps and at the end; 0 = only at the end. */
        eval_every: z.number().int().min(0).default(500),
        checkpoint_every: z.number().int().min(0).default(500),
        keep_last: z.number().int().min(1).default(2),
        /** Metric that picks `best`. */
        best_metric: z.enum(['triplet_f1', 'verdict_accuracy', 'bleu4']).default('triplet_f1'),
        /** Validate on at most this many images (null = the whole val split). */
        eval_max_images: z.number().int().positive().nullable().default(100),
        /** Response tokens (including <bos>) kept for training; longer responses are cut. */
        max_response_length: z.number().int().positive().default(160),
      })
      .strict()
      .default({}),
    generate: z
      .object({
        strategy: z.enum(['greedy', 'beam', 'top_p']).default('greedy'),
        /** Tokens generated at most (after <bos>). */
        max_length: z.number().int().positive().default(160),
        beam_size: z.number().int().positive().default(4),
        top_p: z.number().positive().max(1).default(0.9),
        temperature: z.number().positive().default(1),
        seed: z.number().int().min(0).default(0),
      })
      .strict()
      .default({}),
    lora: z
      .object({
        /** With --init: rank of the LoRA adapters on the frozen GPT-2 (0 = no adapters). */
        rank: z.number().int().min(0).default(8),
        /** LoRA scale numerator (scale = alpha / rank). */
        alpha: z.number().positive().default(16),
      })
      .strict()
      .default({}),
    backend: BackendConfigSchema,
  })
  .strict();

export type VlpConfig = z.infer<typeof VlpConfigSchema>;
export type VlpArchitecture = z.infer<typeof VlpArchitectureSchema>;
