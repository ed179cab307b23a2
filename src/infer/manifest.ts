/**
 * The export folder's `manifest.json`: what a deployment needs besides the ONNX files (classes,
 * verbs, taxonomy, input size, normalization, decoding, verdict threshold) and where the models
 * came from (source checkpoints, parity measured at export). `export onnx` writes it; `explain`
 * reads it for both engines, so the two engines pre- and post-process from the same numbers.
 *
 * Layout of an export folder:
 *   extractor.onnx      input `image` [batch, 3, S, S] float32 NCHW, six NHWC head maps
 *   vlp_prefix.onnx     explainer prefix encoder   (when exported with --vlp)
 *   vlp_decoder.onnx    explainer decoder step     (when exported with --vlp)
 *   tokenizer.json      explainer tokenizer        (when exported with --vlp)
 *   manifest.json       this file
 *
 * With an explainer, `explainer` holds what both explanation engines must agree on: the
 * instruction (text and its left-padded token ids), the HOI slot and instruction sizes, the
 * special token ids, the generation settings, and the extractor checkpoint whose backbone the
 * explainer was trained on (its C5 features are the visual tokens; vlp_prefix.onnx embeds it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { Taxonomy } from '../data/taxonomy';
import { DataError } from '../errors';
import { type DecodeConfig, type DecodeLabels, parseDecodeConfig } from '../models/hoi/decode';

/** Bumped when a key changes meaning; `explain` refuses other versions. */
export const EXPORT_FORMAT_VERSION = 1;
export const EXPORT_MANIFEST_FILE = 'manifest.json';
export const EXTRACTOR_ONNX_FILE = 'extractor.onnx';
export const VLP_PREFIX_ONNX_FILE = 'vlp_prefix.onnx';
export const VLP_DECODER_ONNX_FILE = 'vlp_decoder.onnx';
export const TOKENIZER_FILE = 'tokenizer.json';
/** Input name of extractor.onnx. */
export const EXTRACTOR_INPUT_NAME = 'image';

/**
 * Default verdict threshold on the anomaly score (max over triplets of triplet score x severity
 * weight, see decode.ts): 0.5 calls an image anomalous when a high-severity pair (weight 1) is
 * found with confidence >= 0.5, a medium one (0.6) with >= 0.83, and never for a low one (0.3).
 */
export const DEFAULT_VERDICT_THRESHOLD = 0.5;

const TensorSpecSchema = z
  .object({
    name: z.string().min(1),
    /** Symbolic dims are strings ('batch'). */
    shape: z.array(z.union([z.number().int().nonnegative(), z.string().min(1)])),
    dtype: z.string().min(1),
    layout: z.string().optional(),
  })
  .strict();
export type TensorSpec = z.infer<typeof TensorSpecSchema>;

const ParityRowSchema = z
  .object({
    /** Which sample input: `random` (seeded normal noise) or `images` (real images, preprocessed). */
    input: z.string(),
    batch: z.number().int().positive(),
    output: z.string(),
    max_abs_diff: z.number(),
  })
  .strict();
export type ParityRow = z.infer<typeof ParityRowSchema>;

const ExportedModelSchema = z
  .object({
    file: z.string().min(1),
    /** Registry name of the model (`point_hoi`, ...). */
    model_name: z.string().min(1),
    model_config: z.unknown(),
    inputs: z.array(TensorSpecSchema).min(1),
    outputs: z.array(TensorSpecSchema).min(1),
    /** The step-N folder exported, relative to the export folder (posix separators). */
    source_checkpoint: z.string().min(1),
    /** sha256 of its model.safetensors: the tfjs engine checks it before trusting the path. */
    source_sha256: z.string().regex(/^[0-9a-f]{64}$/),
    step: z.number().int().nonnegative(),
    /** sha256 of the ONNX file. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** Largest |onnxruntime - tfjs| over every output and sample input. */
    max_abs_diff: z.number(),
    parity: z.array(ParityRowSchema),
  })
  .strict();
export type ExportedModel = z.infer<typeof ExportedModelSchema>;

const GenerateSettingsSchema = z
  .object({
    strategy: z.enum(['greedy', 'beam', 'top_p']),
    /** Tokens generated at most (after <bos>, <eos> included). */
    max_length: z.number().int().positive(),
    beam_size: z.number().int().positive(),
    top_p: z.number().positive().max(1),
    temperature: z.number().positive(),
    seed: z.number().int().min(0),
  })
  .strict();
export type GenerateSettings = z.infer<typeof GenerateSettingsSchema>;

const ExplainerSectionSchema = z
  .object({
    /** The instruction `explain` asks with (the dataset's first instruction). */
    instruction: z.string().min(1),
    /** Its token ids, cut to instruction_length and left-padded with the pad id. */
    instruction_ids: z.array(z.number().int().nonnegative()).min(1),
    instruction_length: z.number().int().positive(),
    /** HOI slots: the top max_hois triplets scoring >= hoi_min_score, best first; the rest padding. */
    max_hois: z.number().int().positive(),
    hoi_min_score: z.number().min(0).max(1),
    /** Whether vlp_prefix takes the hoi_*_box inputs (boxes normalized by the image's own width / height). */
    box_encoding: z.boolean(),
    /**
     * Box pointer: logits are [vocab_size | 2 x max_hois pointer tokens]; id vocab_size + 2m (+1)
     * is written as slot m's subject (object) box (models/vlp/pointer.ts). Absent in older exports.
     */
    box_pointer: z.boolean().default(false),
    /** Backbone C5 grid [h, w, c] of the model input: h * w visual tokens. */
    visual_shape: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
    /** Prefix positions P = h w + max_hois + instruction_length; <bos> is fed at position P. */
    prefix_length: z.number().int().positive(),
    max_positions: z.number().int().positive(),
    vocab_size: z.number().int().positive(),
    special_tokens: z.object({ pad: z.number().int().nonnegative(), bos: z.number().int().nonnegative(), eos: z.number().int().nonnegative() }).strict(),
    generate: GenerateSettingsSchema,
    /** The extractor checkpoint whose backbone feeds the explainer (relative, like source_checkpoint). */
    visual_backbone: z.object({ source_checkpoint: z.string().min(1), source_sha256: z.string().regex(/^[0-9a-f]{64}$/), step: z.number().int().nonnegative() }).strict(),
    /** LoRA adapters folded into the exported weights (empty without LoRA). */
    merged_lora: z.array(z.string()),
    /** Greedy tokens of the parity check (onnxruntime = tfjs), per sample row. */
    greedy_check: z.object({ steps: z.number().int().positive(), tokens: z.array(z.array(z.number().int())) }).strict(),
  })
  .strict();
export type ExplainerSection = z.infer<typeof ExplainerSectionSchema>;

const Rgb = z.tuple([z.number(), z.number(), z.number()]);

export const ExportManifestSchema = z
  .object({
    format_version: z.literal(EXPORT_FORMAT_VERSION),
    created: z.string(),
    created_with: z.object({ hoi2anomaly: z.string(), tfjs: z.string(), onnxruntime_node: z.string() }).strict(),
    opset: z.number().int().positive(),
    /** Largest allowed |onnxruntime - tfjs| at export. */
    parity_tolerance: z.number().positive(),
    models: z
      .object({
        extractor: ExportedModelSchema,
        vlp_prefix: ExportedModelSchema.optional(),
        vlp_decoder: ExportedModelSchema.optional(),
      })
      .strict(),
    /** tokenizer.json beside the manifest, or null without an explainer. */
    tokenizer: z.string().nullable(),
    /** Explainer settings; present exactly when vlp_prefix / vlp_decoder are. */
    explainer: ExplainerSectionSchema.optional(),
    /** Heatmap channel order. */
    categories: z.array(z.string().min(1)).min(1),
    verbs: z.array(z.string().min(1)).min(1),
    /** verb -> object categories it was trained with (decoding matches only these pairs). */
    compatible: z.record(z.array(z.string())),
    taxonomy: z.record(z.unknown()),
    /** Square model input side S in pixels. */
    input_size: z.number().int().positive(),
    /** Per-channel mean / std on 0-1 RGB: input = (pixel / 255 - mean) / std. */
    mean: Rgb,
    std: Rgb,
    preprocess: z
      .object({
        layout: z.literal('NCHW'),
        color: z.literal('RGB'),
        /** Fit the longer side to S keeping the aspect ratio, centred, padded with `fill`. */
        resize: z.literal('letterbox'),
        /** Pad value on the 0-255 scale, before normalization. */
        fill: z.number(),
        /** Resampling of the letterbox (PIL-style triangle filter, see data/transforms.ts). */
        filter: z.string(),
      })
      .strict(),
    /** Output stride of the maps: grid cell x stride = input pixels. */
    output_stride: z.number().int().positive(),
    decode: z.record(z.unknown()),
    verdict: z
      .object({
        threshold: z.number().min(0).max(1),
        /** How it was chosen: `default`, `user` (--threshold at export) or `calibrated` (--calibrate-on DATA). */
        source: z.enum(['default', 'user', 'calibrated']),
        /** Where a calibrated threshold comes from: the val split of a dataset, with its TPR / FPR there. */
        calibration: z.object({ data: z.string(), split: z.literal('val'), images: z.number().int(), tpr: z.number(), fpr: z.number() }).strict().optional(),
        rule: z.string(),
      })
      .strict(),
  })
  .strict();
export type ExportManifest = z.infer<typeof ExportManifestSchema>;

/** Reads and validates `<dir>/manifest.json`; problems are a DataError naming the key. */
export function readExportManifest(dir: string): ExportManifest {
  const file = path.join(dir, EXPORT_MANIFEST_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const reason = fs.existsSync(file) ? `malformed JSON (${(err as Error).message})` : 'not found (is this an export folder written by `export onnx`?)';
    throw new DataError(`${file}: ${reason}`, { cause: err });
  }
  const version = (raw as { format_version?: unknown } | null)?.format_version;
  if (version !== EXPORT_FORMAT_VERSION) {
    throw new DataError(`${file}: format_version ${JSON.stringify(version)}, this build reads format_version ${EXPORT_FORMAT_VERSION}`);
  }
  const parsed = ExportManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `'${i.path.join('.') || '(root)'}': ${i.message}`);
    throw new DataError(`${file}: invalid export manifest: ${issues.join('; ')}`);
  }
  const problem = explainerProblem(parsed.data);
  if (problem) throw new DataError(`${file}: invalid export manifest: ${problem}`);
  return parsed.data;
}

/** The explainer keys come all together or not at all; returns what is wrong, or null. */
export function explainerProblem(m: ExportManifest): string | null {
  const parts = { 'models.vlp_prefix': m.models.vlp_prefix, 'models.vlp_decoder': m.models.vlp_decoder, tokenizer: m.tokenizer ?? undefined, explainer: m.explainer };
  const present = Object.entries(parts).filter(([, v]) => v !== undefined).map(([k]) => k);
  if (present.length === 0 || present.length === 4) {
    const e = m.explainer;
    if (e && e.instruction_ids.length !== e.instruction_length) return `'explainer.instruction_ids': ${e.instruction_ids.length} ids, instruction_length is ${e.instruction_length}`;
    return null;
  }
  const missing = Object.keys(parts).filter((k) => !present.includes(k));
  return `an explainer needs ${Object.keys(parts).join(', ')}; found ${present.join(', ')} without ${missing.join(', ')}`;
}

/** What decoding needs, built once from a manifest. */
export interface ManifestContext {
  labels: DecodeLabels;
  decode: DecodeConfig;
  taxonomy: Taxonomy;
}

export function manifestContext(m: ExportManifest): ManifestContext {
  return {
    labels: {
      categories: m.categories,
      verbs: m.verbs,
      stride: m.output_stride,
      compatible: new Map(Object.entries(m.compatible).map(([verb, cats]) => [verb, new Set(cats)])),
    },
    decode: parseDecodeConfig(m.decode, 'manifest.json decode'),
    taxonomy: Taxonomy.fromJSON(m.taxonomy),
  };
}
