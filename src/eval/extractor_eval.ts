import { tf } from '../backend/tf';
import { type Batch, DataLoader, modelBoxToOriginal, readSplit } from '../data/loader';
import type { Box, HoiRecord, Split } from '../data/record';
import { Taxonomy } from '../data/taxonomy';
import { CheckpointError, DataError } from '../errors';
import { ImageAnomalyClassifier, type ImageClassifierConfigInput } from '../models/hoi/classifier';
import { loadConfig } from '../config/load';
import {
  anomalyScore, type DecodeConfig, DecodeConfigSchema, type DecodeLabels, decodePointHoi, imageMaps, weaponScore,
} from '../models/hoi/decode';
import { POINT_HOI_STRIDE, PointHoiExtractor, type PointHoiConfigInput } from '../models/hoi/point_hoi';
import { POINT_HOI_OUTPUT_KEYS, type PointHoiMaps } from '../models/hoi/types';
import type { Module } from '../models/nn/module';
import { applyToModel, loadCheckpoint, readPointer } from '../train/checkpoint';
import type { ExtractorRunInfo } from '../train/train_extractor';
import { groundTruthFromRecords, type HoiDetection, hoiMap, tripletCounts } from './hoi_map';
import { averagePrecision, rocAuc } from './ranking';

/**
 * Evaluation of the HOI extractor on a dataset split: HOI mAP (HICO-DET protocol), image-level
 * anomaly ROC AUC / AP, the "weapon present" baseline on the same detector's objects, and
 * throughput. Predictions are kept in the `--dump` format so outside tools can re-score them.
 */

/** One image's predictions, boxes in absolute pixels of the original image (the `--dump` format). */
export interface ImagePrediction {
  id: string;
  anomaly_score: number;
  /** "weapon present" baseline: best weapon detection score (point_hoi only). */
  weapon_score?: number;
  hois: Array<{ subject_box: Box; object_box: Box; object_category: string; verb: string; score: number }>;
}

export interface ExtractorMetrics {
  map: number;
  map_rare: number;
  map_non_rare: number;
  auc: number;
  ap: number;
  images: number;
  images_per_s: number;
  baselines: Record<string, { auc: number; ap: number }>;
}

export interface PredictOptions {
  batchSize: number;
  inputSize: number;
  maxImages?: number | null;
}

/** Runs the extractor over a split in eval mode (no augmentation) and decodes every image. */
export function predictExtractor(
  model: PointHoiExtractor,
  datasetDir: string,
  split: Split,
  labels: DecodeLabels,
  decode: DecodeConfig,
  taxonomy: Taxonomy,
  opts: PredictOptions,
): Promise<{ predictions: ImagePrediction[]; seconds: number }> {
  return predictSplit(model, datasetDir, split, opts, async (batch) => {
    const maps = tf.tidy(() => model.predictMaps(batch.images));
    const arrays = {} as Record<(typeof POINT_HOI_OUTPUT_KEYS)[number], Float32Array>;
    for (const key of POINT_HOI_OUTPUT_KEYS) arrays[key] = (await maps[key].data()) as Float32Array;
    const [, h, w, C] = maps.objectHeatmap.shape;
    const V = maps.interactionHeatmap.shape[3];
    for (const key of POINT_HOI_OUTPUT_KEYS) maps[key].dispose();
    return batch.originals.map((original, b) => {
      const imageMap: PointHoiMaps = imageMaps(arrays, { height: h, width: w, numCategories: C, numVerbs: V }, b);
      const { objects, triplets } = decodePointHoi(imageMap, labels, decode);
      return {
        id: original.id,
        anomaly_score: anomalyScore(triplets, taxonomy).score,
        weapon_score: weaponScore(objects, taxonomy.weapons),
        hois: triplets.map((t) => ({
          subject_box: roundBox(modelBoxToOriginal(t.subjectBox, original)),
          object_box: roundBox(modelBoxToOriginal(t.objectBox, original)),
          object_category: t.objectCategory,
          verb: t.verb,
          score: t.score,
        })),
      };
    });
  });
}

/** Runs the image-level classifier baseline over a split: anomaly scores only. */
export function predictClassifier(
  model: ImageAnomalyClassifier,
  datasetDir: string,
  split: Split,
  opts: PredictOptions,
): Promise<{ predictions: ImagePrediction[]; seconds: number }> {
  return predictSplit(model, datasetDir, split, opts, async (batch) => {
    const scores = tf.tidy(() => model.predict(batch.images));
    const values = await scores.data();
    scores.dispose();
    return batch.originals.map((o, b) => ({ id: o.id, anomaly_score: values[b], hois: [] }));
  });
}

/** Eval-mode loop shared by both models: batches of a split in order, images disposed here. */
async function predictSplit(
  model: Module,
  datasetDir: string,
  split: Split,
  opts: PredictOptions,
  predictBatch: (batch: Batch) => Promise<ImagePrediction[]>,
): Promise<{ predictions: ImagePrediction[]; seconds: number }> {
  const wasTraining = model.training;
  model.eval();
  const started = Date.now();
  const predictions: ImagePrediction[] = [];
  try {
    for await (const batch of evalBatches(datasetDir, split, opts)) {
      try {
        predictions.push(...(await predictBatch(batch)));
      } finally {
        batch.images.dispose();
      }
    }
  } finally {
    model.train(wasTraining);
  }
  return { predictions, seconds: (Date.now() - started) / 1000 };
}

async function* evalBatches(datasetDir: string, split: Split, opts: PredictOptions) {
  const loader = new DataLoader(datasetDir, { split, batchSize: opts.batchSize, inputSize: opts.inputSize, shuffle: false, augment: false, seed: 0 });
  const limit = opts.maxImages ?? Infinity;
  let seen = 0;
  for await (const batch of loader.epoch(0)) {
    if (seen >= limit) {
      batch.images.dispose();
      break;
    }
    seen += batch.records.length;
    yield batch;
  }
}

/**
 * Scores predictions against the split's records. `trainCounts` (triplet counts of the training
 * split) decides rare (< 10) vs non-rare categories. Images without a prediction are skipped, so
 * a `maxImages` subset is scored on its own ground truth.
 */
export function scoreExtractor(
  predictions: readonly ImagePrediction[],
  records: readonly HoiRecord[],
  trainCounts: Map<string, number>,
  seconds: number,
): ExtractorMetrics {
  const byId = new Map(records.map((r) => [r.id, r]));
  const scored = predictions.filter((p) => byId.has(p.id));
  const gtRecords = scored.map((p) => byId.get(p.id)!);
  const labels = gtRecords.map((r) => r.label === 'anomalous');
  const detections: HoiDetection[] = scored.flatMap((p) =>
    p.hois.map((h) => ({ imageId: p.id, verb: h.verb, objectCategory: h.object_category, subjectBox: h.subject_box, objectBox: h.object_box, score: h.score })),
  );
  const hasHois = scored.some((p) => p.hois.length > 0) || scored.every((p) => p.weapon_score !== undefined);
  const m = hasHois ? hoiMap(detections, groundTruthFromRecords(gtRecords), { trainCounts }) : null;
  const scores = scored.map((p) => p.anomaly_score);
  const baselines: ExtractorMetrics['baselines'] = {};
  if (scored.length > 0 && scored.every((p) => p.weapon_score !== undefined)) {
    const w = scored.map((p) => p.weapon_score!);
    baselines.weapon_present = { auc: rocAuc(w, labels), ap: averagePrecision(w, labels) };
  }
  return {
    map: m?.map ?? NaN,
    map_rare: m?.mapRare ?? NaN,
    map_non_rare: m?.mapNonRare ?? NaN,
    auc: rocAuc(scores, labels),
    ap: averagePrecision(scores, labels),
    images: scored.length,
    images_per_s: seconds > 0 ? scored.length / seconds : NaN,
    baselines,
  };
}

function roundBox(b: Box): Box {
  return b.map((v) => Math.round(v * 100) / 100) as Box;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints -> models, and the `eval extractor` entry point

export interface LoadedExtractor {
  model: PointHoiExtractor | ImageAnomalyClassifier;
  run: ExtractorRunInfo;
  dir: string;
  step: number;
}

/** Rebuilds a trained extractor (or classifier) from a run folder (its best, else last) or a step-N folder. */
export function loadExtractor(checkpoint: string): LoadedExtractor {
  const which = readPointer(checkpoint, 'best') ? 'best' : 'last';
  const ckpt = loadCheckpoint(checkpoint, { which, withOptimizer: false });
  const run = ckpt.manifest.run as ExtractorRunInfo | undefined;
  if (!run || !Array.isArray(run.categories)) throw new CheckpointError(`${ckpt.dir}: not an extractor checkpoint (its manifest has no 'run' section)`);
  const model = ckpt.manifest.model_name === ImageAnomalyClassifier.modelName
    ? new ImageAnomalyClassifier(ckpt.manifest.model_config as ImageClassifierConfigInput)
    : new PointHoiExtractor(ckpt.manifest.model_config as PointHoiConfigInput);
  applyToModel(model.stateDict() as Map<string, tf.Variable>, ckpt);
  model.eval();
  return { model, run, dir: ckpt.dir, step: ckpt.step };
}

export interface EvaluateRequest {
  checkpoint: string;
  data: string;
  split: Split;
  /** A classifier run evaluated on the same split as the image-level baseline. */
  classifier?: string;
  batchSize?: number;
  /** `key=value` overrides of the run's decode config (e.g. nms_threshold=0.6). */
  decodeSets?: string[];
}

export interface EvaluateResult {
  metrics: ExtractorMetrics;
  predictions: ImagePrediction[];
  checkpoint: { dir: string; step: number };
}

export async function evaluateExtractor(req: EvaluateRequest): Promise<EvaluateResult> {
  const loaded = loadExtractor(req.checkpoint);
  const records = readSplit(req.data, req.split);
  if (records.length === 0) throw new DataError(`${req.data}: the ${req.split} split is empty`);
  const trainCounts = tripletCounts(readSplit(req.data, 'train'));
  const opts = { batchSize: req.batchSize ?? 8, inputSize: loaded.run.input_size };
  try {
    let out: { predictions: ImagePrediction[]; seconds: number };
    if (loaded.model instanceof PointHoiExtractor) {
      const labels: DecodeLabels = {
        categories: loaded.run.categories, verbs: loaded.run.verbs, stride: POINT_HOI_STRIDE,
        compatible: new Map(Object.entries(loaded.run.compatible).map(([v, cats]) => [v, new Set(cats)])),
      };
      const taxonomy = Taxonomy.fromJSON(loaded.run.taxonomy);
      const decode = loadConfig(DecodeConfigSchema, { flags: { ...loaded.run.train_config.decode }, sets: req.decodeSets ?? [] });
      out = await predictExtractor(loaded.model, req.data, req.split, labels, decode, taxonomy, opts);
    } else {
      out = await predictClassifier(loaded.model, req.data, req.split, opts);
    }
    const metrics = scoreExtractor(out.predictions, records, trainCounts, out.seconds);
    if (req.classifier) {
      const baseline = await evaluateExtractor({ checkpoint: req.classifier, data: req.data, split: req.split, batchSize: req.batchSize });
      metrics.baselines.image_classifier = { auc: baseline.metrics.auc, ap: baseline.metrics.ap };
    }
    return { metrics, predictions: out.predictions, checkpoint: { dir: loaded.dir, step: loaded.step } };
  } finally {
    loaded.model.dispose();
  }
}
