/**
 * Evaluation of the VLP explainer on a dataset split: generated explanations scored against the
 * reference responses (BLEU-1..4, ROUGE-L, CIDEr-D) and against the ground truth they should be
 * grounded in (verdict accuracy, triplet precision / recall / F1 at IoU >= 0.5, hallucination
 * rate, attribution accuracy). The HOI inputs come from the ground truth (no noise) or from the
 * run's extractor (`hoiSource`). Also the pieces `finetune vlp` shares: rebuilding the model from a
 * run, preparing a split (tokens, HOI slots, cached visual features) and generating.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../backend/tf';
import type { VlpConfig } from '../config/vlp';
import { readSplit } from '../data/loader';
import type { HoiRecord, Split } from '../data/record';
import { parseResponse } from '../data/response_parser';
import { Taxonomy } from '../data/taxonomy';
import {
  type CollateSpec, collateVlpBatch, computeVisualFeatures, disposeVlpBatch, NO_NOISE, predictedHoiSlots, recordHoiSlots, recordObjects,
  type VisualFeatures, VlpBatchSource, type VlpExample,
} from '../data/vlp_batches';
import { CheckpointError, ConfigError, DataError } from '../errors';
import { log } from '../logger';
import { DecodeConfigSchema, type DecodeLabels } from '../models/hoi/decode';
import { POINT_HOI_STRIDE, PointHoiExtractor } from '../models/hoi/point_hoi';
import type { VlpModelConfig } from '../models/vlp/config';
import { responseLoss, VlpExplainer } from '../models/vlp/explainer';
import { generate } from '../models/vlp/generate';
import { citedResponse, explanationText, pointerSlotsOf } from '../models/vlp/pointer';
import { prepareGpt2Finetune } from '../models/vlp/gpt2_init';
import { recordTexts, VlpTokenizer } from '../models/vlp/tokenizer';
import { Progress } from '../progress';
import { applyToModel, loadCheckpoint, readPointer } from '../train/checkpoint';
import type { ExtractorRunInfo } from '../train/train_extractor';
import { loadExtractor, predictExtractor } from './extractor_eval';
import { scoreFaithfulness } from './faithfulness';
import { captionMetrics } from './text_metrics';

/** What every checkpoint manifest of a `finetune vlp` run carries besides the weights. */
export interface VlpRunInfo {
  categories: string[];
  verbs: string[];
  taxonomy: object;
  /** The tokenizer, relative to the run folder (the parent of step-N/). */
  tokenizer_file: string;
  /** The frozen extractor whose backbone gives the visual features. */
  extractor: { run: string; checkpoint: string; input_size: number; visual_shape: [number, number, number] };
  /** GPT-2 folder the decoder was initialised from (null: trained from scratch) and the LoRA used then. */
  init: string | null;
  lora: { rank: number; alpha: number } | null;
  hoi_inputs: VlpConfig['hoi_inputs'];
  generate: VlpConfig['generate'];
  max_response_length: number;
  train_config: VlpConfig;
}

export const VLP_MODEL_NAME = 'vlp_explainer';
export const TOKENIZER_FILE = 'tokenizer.json';

/** The metrics `eval vlp --json` prints (all fractions in 0-1). */
export interface VlpMetrics {
  bleu1: number;
  bleu2: number;
  bleu3: number;
  bleu4: number;
  rouge_l: number;
  cider_d: number;
  verdict_accuracy: number;
  triplet_precision: number;
  triplet_recall: number;
  triplet_f1: number;
  hallucination_rate: number;
  attribution_accuracy: number;
  /** Mean teacher-forced response loss (nats per token). */
  loss: number;
  images: number;
  images_per_s: number;
}

export const VLP_METRIC_KEYS = [
  'bleu1', 'bleu2', 'bleu3', 'bleu4', 'rouge_l', 'cider_d', 'verdict_accuracy', 'triplet_precision', 'triplet_recall',
  'triplet_f1', 'hallucination_rate', 'attribution_accuracy',
] as const;

/** One generated explanation (the `--dump` format). */
export interface GeneratedExplanation {
  id: string;
  explanation: string;
  verdict: 'anomalous' | 'normal' | null;
}

// ---------------------------------------------------------------------------------------------
// Model

/**
 * The explainer for a model config: from scratch, or shaped for a GPT-2 initialisation (GPT-2 part
 * frozen, LoRA adapters when `lora.rank` > 0). Weights are loaded by the caller.
 */
export function buildVlpModel(config: VlpModelConfig, opts: { seed: number; lora: { rank: number; alpha: number } | null }): VlpExplainer {
  const model = new VlpExplainer(config, { seed: opts.seed });
  if (opts.lora) prepareGpt2Finetune(model, { rank: opts.lora.rank, alpha: opts.lora.alpha, seed: opts.seed });
  return model;
}

export interface LoadedVlp {
  model: VlpExplainer;
  tokenizer: VlpTokenizer;
  run: VlpRunInfo;
  /** The step-N folder. */
  dir: string;
  step: number;
}

/** Rebuilds a fine-tuned explainer (eval mode) and its tokenizer from a run folder (best, else last) or a step-N folder. */
export function loadVlp(checkpoint: string): LoadedVlp {
  const which = fs.existsSync(path.join(checkpoint, 'best')) && readPointer(checkpoint, 'best') ? 'best' : 'last';
  const ckpt = loadCheckpoint(checkpoint, { which, withOptimizer: false });
  const run = ckpt.manifest.run as VlpRunInfo | undefined;
  if (ckpt.manifest.model_name !== VLP_MODEL_NAME || !run || !Array.isArray(run.categories)) {
    throw new CheckpointError(`${ckpt.dir}: not an explainer checkpoint (model '${ckpt.manifest.model_name}'; \`finetune vlp\` writes '${VLP_MODEL_NAME}' with a 'run' section)`);
  }
  const tokenizerFile = path.join(path.dirname(ckpt.dir), run.tokenizer_file);
  if (!fs.existsSync(tokenizerFile)) throw new CheckpointError(`${ckpt.dir}: its tokenizer ${tokenizerFile} is missing (it lives in the run folder, beside step-N/)`);
  const tokenizer = VlpTokenizer.fromFile(tokenizerFile);
  const model = buildVlpModel(ckpt.manifest.model_config as VlpModelConfig, { seed: run.train_config.train.seed, lora: run.lora });
  try {
    applyToModel(model.stateDict() as Map<string, tf.Variable>, ckpt);
  } catch (err) {
    model.dispose();
    throw err;
  }
  model.eval();
  return { model, tokenizer, run, dir: ckpt.dir, step: ckpt.step };
}

// ---------------------------------------------------------------------------------------------
// Splits

export interface PreparedSplit {
  records: HoiRecord[];
  examples: VlpExample[];
  features: VisualFeatures;
}

export interface PrepareSplitRequest {
  data: string;
  split: Split;
  extractor: PointHoiExtractor;
  extractorRun: ExtractorRunInfo;
  tokenizer: VlpTokenizer;
  categories: string[];
  verbs: string[];
  hoiSource: 'gt' | 'extractor';
  /** source=extractor: keep triplets scoring at least this. */
  minScore: number;
  maxImages?: number | null;
  batchSize: number;
  /** Tokenize responses for a box-pointer explainer (pieces split at the boxes, citations kept). */
  boxPointer: boolean;
}

/**
 * Tokens, HOI slots and C5 features of the first `maxImages` images of a split. With
 * hoiSource=extractor the extractor's decoded triplets replace the ground truth.
 */
export async function prepareVlpSplit(req: PrepareSplitRequest): Promise<PreparedSplit> {
  const all = readSplit(req.data, req.split);
  const records = req.maxImages ? all.slice(0, req.maxImages) : all;
  const inputSize = req.extractorRun.input_size;
  const features = await computeVisualFeatures(req.extractor, req.data, req.split, { inputSize, batchSize: req.batchSize, maxImages: req.maxImages });
  let predicted: Map<string, HoiSlotSource> | null = null;
  if (req.hoiSource === 'extractor') {
    const run = req.extractorRun;
    const labels: DecodeLabels = {
      categories: run.categories, verbs: run.verbs, stride: POINT_HOI_STRIDE,
      compatible: new Map(Object.entries(run.compatible).map(([v, cats]) => [v, new Set(cats)])),
    };
    const decode = DecodeConfigSchema.parse(run.train_config.decode ?? {});
    const { predictions } = await predictExtractor(req.extractor, req.data, req.split, labels, decode, Taxonomy.fromJSON(run.taxonomy), {
      batchSize: req.batchSize, inputSize, maxImages: req.maxImages,
    });
    predicted = new Map(predictions.map((p) => [p.id, p.hois]));
  }
  const examples = records.map((rec): VlpExample => {
    const { instruction, response } = recordTexts(rec);
    const hois = predicted
      ? predictedHoiSlots(predicted.get(rec.id) ?? [], rec, req.categories, req.verbs, req.minScore)
      : recordHoiSlots(rec, req.categories, req.verbs);
    const objects = recordObjects(rec, req.categories);
    if (!req.boxPointer) return { id: rec.id, instruction: req.tokenizer.encode(instruction), response: req.tokenizer.encode(response), hois, objects };
    const cited = citedResponse(req.tokenizer, response, objects);
    return { id: rec.id, instruction: req.tokenizer.encode(instruction), response: cited.ids, citations: cited.citations, hois, objects };
  });
  return { records, examples, features };
}

type HoiSlotSource = Parameters<typeof predictedHoiSlots>[0];

/** Checks that an extractor run suits a dataset (same categories and verbs, point_hoi). */
export function checkExtractorFits(run: ExtractorRunInfo, dir: string, categories: string[], verbs: string[]): void {
  if (run.kind !== 'point_hoi') throw new ConfigError(`${dir}: the explainer needs a point_hoi extractor run, this is a '${run.kind}' run`);
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (!same(run.categories, categories) || !same(run.verbs, verbs)) {
    throw new DataError(`${dir}: the extractor was trained on other categories/verbs than the dataset's:\n  extractor ${run.categories.join(',')} | ${run.verbs.join(',')}\n  dataset   ${categories.join(',')} | ${verbs.join(',')}`);
  }
}

/** The collation sizes of a model config and tokenizer. */
export function collateSpecOf(config: VlpModelConfig, tokenizer: VlpTokenizer, maxResponseLength: number): CollateSpec {
  return {
    numCategories: config.num_categories, numVerbs: config.num_verbs, maxHois: config.max_hois, instructionLength: config.instruction_length,
    maxResponseLength, padId: tokenizer.padId, bosId: tokenizer.bosId, eosId: tokenizer.eosId,
    pointerVocab: config.box_pointer ? config.vocab_size : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Generation and scoring

/**
 * Generates an explanation per example, in order (eval mode), and measures the teacher-forced
 * loss on the same batches. Every tensor is disposed before it returns.
 */
export async function generateExplanations(
  model: VlpExplainer, tokenizer: VlpTokenizer, source: VlpBatchSource, gen: VlpConfig['generate'], taxonomy: Taxonomy, opts: { progress?: boolean } = {},
): Promise<{ explanations: GeneratedExplanation[]; loss: number; seconds: number }> {
  const wasTraining = model.training;
  model.eval();
  const started = Date.now();
  const explanations: GeneratedExplanation[] = [];
  const progress = opts.progress ? new Progress('explain', source.examples.length, 'img') : null;
  let lossSum = 0, lossTokens = 0;
  try {
    for (let i = 0; i < source.numBatches; i++) {
      const items = source.items(0, i);
      const batch = collateVlpBatch(items, source.features.shape, source.spec);
      try {
        // mean loss x token count, so that batches weigh by their tokens
        const lossT = tf.tidy(() => {
          const tokens = batch.mask.sum();
          return tf.stack([responseLoss(model.forward(batch.inputs, batch.response), batch.targets, batch.mask).mul(tokens), tokens]);
        });
        const [sum, count] = await lossT.data();
        lossT.dispose();
        lossSum += sum;
        lossTokens += count;
        const ids = generate(model, batch.inputs, {
          strategy: gen.strategy, maxLength: gen.max_length, beamSize: gen.beam_size, topP: gen.top_p, temperature: gen.temperature,
          seed: gen.seed, bosId: tokenizer.bosId, eosId: tokenizer.eosId, useCache: true,
        });
        ids.forEach((seq, b) => {
          const text = explanationText(tokenizer, seq, tokenizer.eosId, pointerSlotsOf(model.config, items[b].hois));
          explanations.push({ id: batch.ids[b], explanation: text, verdict: parseResponse(text, taxonomy).verdict });
        });
        progress?.tick(batch.ids.length);
      } finally {
        disposeVlpBatch(batch);
      }
    }
  } finally {
    progress?.stop();
    model.train(wasTraining);
  }
  return { explanations, loss: lossTokens > 0 ? lossSum / lossTokens : NaN, seconds: (Date.now() - started) / 1000 };
}

/** Scores explanations against their records (ids must match) and the reference responses. */
export function scoreExplanations(explanations: readonly GeneratedExplanation[], records: readonly HoiRecord[], taxonomy: Taxonomy): Omit<VlpMetrics, 'loss' | 'images_per_s'> {
  const byId = new Map(records.map((r) => [r.id, r]));
  const scored = explanations.map((e) => {
    const record = byId.get(e.id);
    if (!record) throw new DataError(`explanation for image '${e.id}', which is not in the split`);
    return { e, record };
  });
  const caption = captionMetrics(scored.map((s) => s.e.explanation), scored.map((s) => [recordTexts(s.record).response]));
  const faith = scoreFaithfulness(scored.map((s) => ({ generated: s.e.explanation, record: s.record })), taxonomy);
  return {
    bleu1: caption.bleu1, bleu2: caption.bleu2, bleu3: caption.bleu3, bleu4: caption.bleu4, rouge_l: caption.rougeL, cider_d: caption.ciderD,
    verdict_accuracy: faith.verdict_accuracy, triplet_precision: faith.triplet_precision, triplet_recall: faith.triplet_recall, triplet_f1: faith.triplet_f1,
    hallucination_rate: faith.hallucination_rate, attribution_accuracy: faith.attribution_accuracy, images: scored.length,
  };
}

/** One line for logs: the headline metrics in percent. */
export function describeVlpMetrics(m: VlpMetrics): string {
  const pct = (v: number): string => (Number.isFinite(v) ? (100 * v).toFixed(1) : 'n/a');
  return `verdict ${pct(m.verdict_accuracy)}, triplet F1 ${pct(m.triplet_f1)} (P ${pct(m.triplet_precision)} R ${pct(m.triplet_recall)}), `
    + `BLEU-4 ${pct(m.bleu4)}, ROUGE-L ${pct(m.rouge_l)}, CIDEr-D ${Number.isFinite(m.cider_d) ? m.cider_d.toFixed(2) : 'n/a'}, `
    + `hallucination ${pct(m.hallucination_rate)}, attribution ${pct(m.attribution_accuracy)}, loss ${Number.isFinite(m.loss) ? m.loss.toFixed(3) : 'n/a'} on ${m.images} images`;
}

// ---------------------------------------------------------------------------------------------
// `eval vlp`

export interface EvaluateVlpRequest {
  checkpoint: string;
  data: string;
  split: Split;
  /** Default: the source the run was trained with. */
  hoiSource?: 'gt' | 'extractor';
  maxImages?: number | null;
  batchSize?: number;
  /** Another extractor run folder than the one the manifest names (e.g. after moving runs). */
  extractor?: string;
}

export interface EvaluateVlpResult {
  metrics: VlpMetrics;
  explanations: GeneratedExplanation[];
  checkpoint: { dir: string; step: number };
  hoiSource: 'gt' | 'extractor';
}

export async function evaluateVlp(req: EvaluateVlpRequest): Promise<EvaluateVlpResult> {
  const loaded = loadVlp(req.checkpoint);
  const { run, model, tokenizer } = loaded;
  const hoiSource = req.hoiSource ?? run.hoi_inputs.source;
  const batchSize = req.batchSize ?? 16;
  try {
    const extractorDir = req.extractor ?? run.extractor.checkpoint;
    if (!fs.existsSync(extractorDir)) {
      throw new CheckpointError(`${loaded.dir}: its extractor checkpoint ${extractorDir} is missing (pass --extractor RUN to use another)`);
    }
    const ex = loadExtractor(extractorDir);
    let prepared: PreparedSplit;
    try {
      if (!(ex.model instanceof PointHoiExtractor)) throw new ConfigError(`${extractorDir}: not a point_hoi extractor run`);
      checkExtractorFits(ex.run, extractorDir, run.categories, run.verbs);
      prepared = await prepareVlpSplit({
        data: req.data, split: req.split, extractor: ex.model, extractorRun: ex.run, tokenizer, categories: run.categories, verbs: run.verbs,
        hoiSource, minScore: run.hoi_inputs.min_score, maxImages: req.maxImages, batchSize, boxPointer: model.config.box_pointer,
      });
    } finally {
      ex.model.dispose();
    }
    if (prepared.records.length === 0) throw new DataError(`${req.data}: the ${req.split} split is empty`);
    const shape = prepared.features.shape;
    if (shape.some((d, i) => d !== run.extractor.visual_shape[i])) {
      throw new CheckpointError(`${extractorDir}: visual features [${shape}] do not match the [${run.extractor.visual_shape}] the explainer was trained on`);
    }
    const taxonomy = Taxonomy.fromJSON(run.taxonomy);
    const source = new VlpBatchSource(prepared.examples, prepared.features, collateSpecOf(model.config, tokenizer, run.max_response_length), {
      batchSize, seed: 0, shuffle: false, noise: NO_NOISE, numVerbs: run.verbs.length, personCategory: Math.max(0, run.categories.indexOf('person')),
    });
    const { explanations, loss, seconds } = await generateExplanations(model, tokenizer, source, run.generate, taxonomy, { progress: true });
    const metrics: VlpMetrics = { ...scoreExplanations(explanations, prepared.records, taxonomy), loss, images_per_s: explanations.length / Math.max(seconds, 1e-9) };
    log.debug(`eval vlp: ${explanations.length} images in ${seconds.toFixed(1)} s`);
    return { metrics, explanations, checkpoint: { dir: loaded.dir, step: loaded.step }, hoiSource };
  } finally {
    model.dispose();
  }
}
