import * as fs from 'node:fs';
import { type BackendInfo, initBackend, seedEverything } from '../backend';
import { tf } from '../backend/tf';
import type { ExtractorConfig } from '../config/extractor';
import { writeResolvedConfig } from '../config/load';
import { DataLoader, readDatasetManifest, readSplit, type Batch } from '../data/loader';
import type { Split } from '../data/record';
import { Taxonomy } from '../data/taxonomy';
import { DataError } from '../errors';
import { type ExtractorMetrics, predictClassifier, predictExtractor, scoreExtractor } from '../eval/extractor_eval';
import { tripletCounts } from '../eval/hoi_map';
import { log } from '../logger';
import { ImageAnomalyClassifier } from '../models/hoi/classifier';
import { compatibleCategories, type DecodeLabels } from '../models/hoi/decode';
import { computeLosses, LOSS_PARTS } from '../models/hoi/losses';
import { POINT_HOI_STRIDE, PointHoiExtractor } from '../models/hoi/point_hoi';
import { buildTargets, disposeTargetTensors, targetsToTensors } from '../models/hoi/targets';
import type { Module } from '../models/nn/module';
import { Progress } from '../progress';
import { markBest, saveCheckpoint } from './checkpoint';
import { applyGradients, assertFiniteStep, isNewBest, RunLog, startOrResume, StopRequest, type TrainableParams, trainableParams } from './loop_common';
import { AdamW } from './optim';
import { lrAt } from './schedule';

/**
 * `train extractor`: one flat loop (nanoGPT style) for the HOI extractor or the image-level
 * classifier baseline:
 *   lr(step) -> forward/backward -> clip -> AdamW step -> log -> eval/checkpoint -> stop.
 * Resuming restores weights, batch-norm statistics, optimizer state and the position in the
 * epoch; the loader's shuffling and augmentation are functions of (seed, epoch, image), so a
 * resumed run sees exactly the batches the uninterrupted run would have seen.
 */
export type ExtractorModel = PointHoiExtractor | ImageAnomalyClassifier;

export interface TrainExtractorRequest {
  config: ExtractorConfig;
  /** Dataset folder (build-dataset output). */
  data: string;
  /** Run folder: config.yaml, metrics.jsonl, tb/, step-N/, last, best. */
  out: string;
  resume?: boolean;
  /** Test hooks: called after every optimizer step; `stop()` ends the run as SIGINT would. */
  afterStep?: (info: { step: number; model: ExtractorModel; stop: () => void }) => void;
}

export interface TrainSummary {
  out: string;
  steps: number;
  seconds: number;
  backend: BackendInfo;
  /** Losses of the steps run by this call, in order. */
  losses: number[];
  lastMetrics: ExtractorMetrics | null;
  best: { step: number; value: number } | null;
  stoppedEarly: boolean;
}

/** What every checkpoint manifest of an extractor run carries besides the weights. */
export interface ExtractorRunInfo {
  kind: ExtractorConfig['model']['kind'];
  categories: string[];
  verbs: string[];
  /** verb -> object categories seen in training (decoding only matches these pairs). */
  compatible: Record<string, string[]>;
  input_size: number;
  taxonomy: object;
  train_config: ExtractorConfig;
}

export function createExtractorModel(cfg: ExtractorConfig, numCategories: number, numVerbs: number): ExtractorModel {
  const m = cfg.model;
  if (m.kind === 'image_classifier') {
    return new ImageAnomalyClassifier({ backbone: m.backbone, width: m.width, inputSize: m.input_size, seed: cfg.train.seed });
  }
  return new PointHoiExtractor({
    backbone: m.backbone, width: m.width, inputSize: m.input_size, numCategories, numVerbs,
    neckChannels: m.neck_channels, headChannels: m.head_channels, seed: cfg.train.seed,
  });
}

export async function trainExtractor(req: TrainExtractorRequest): Promise<TrainSummary> {
  const cfg = req.config;
  const started = Date.now();
  const backend = await initBackend({ name: cfg.backend.name, threads: cfg.backend.threads || undefined });
  seedEverything(cfg.train.seed);

  // -- data
  const manifest = readDatasetManifest(req.data);
  const taxonomy = Taxonomy.fromJSON(manifest.taxonomy);
  const categories: string[] = manifest.categories;
  const verbs: string[] = manifest.verbs;
  const S = cfg.model.input_size;
  const loader = new DataLoader(req.data, {
    split: 'train', batchSize: cfg.train.batch_size, inputSize: S, shuffle: true, augment: cfg.augment.enabled,
    seed: cfg.train.seed, dropLast: true, hflip: cfg.augment.hflip, scaleJitter: cfg.augment.scale_jitter, colorJitter: cfg.augment.color_jitter,
  });
  if (loader.numBatches === 0) {
    throw new DataError(`${req.data}: the train split has ${loader.size} images, fewer than one batch of ${cfg.train.batch_size}`);
  }
  const compatible = compatibleCategories(loader.records);
  const labels: DecodeLabels = { categories, verbs, stride: POINT_HOI_STRIDE, compatible };
  const trainCounts = tripletCounts(loader.records);
  const evalSplit: Split = readSplit(req.data, 'val').length > 0 ? 'val' : 'train';
  const evalRecords = readSplit(req.data, evalSplit);
  if (evalSplit === 'train') log.warn(`${req.data}: the val split is empty; validating on the train split`);

  // -- model, optimizer, run folder
  const model = createExtractorModel(cfg, categories.length, verbs.length);
  const trainable = trainableParams(model);
  const params = trainable.params;
  // Decay weight matrices and kernels only (rank >= 2): biases and norm scales are rank 1.
  const optimizer = new AdamW(params, {
    lr: cfg.train.schedule.lr, betas: cfg.train.betas, weightDecay: cfg.train.weight_decay,
    noDecay: (name) => params.get(name)!.rank < 2,
  });
  const runInfo: ExtractorRunInfo = {
    kind: cfg.model.kind, categories, verbs,
    compatible: Object.fromEntries([...compatible].map(([v, set]) => [v, [...set].sort()])),
    input_size: S, taxonomy: taxonomy.toJSON(), train_config: cfg,
  };
  let { step, best } = startOrResume({ out: req.out, resume: req.resume, model, modelConfig: modelConfigOf(model), optimizer });
  fs.mkdirSync(req.out, { recursive: true });
  writeResolvedConfig(req.out, cfg);
  const runLog = new RunLog(req.out);

  const total = cfg.train.steps;
  const stopRequest = new StopRequest();

  const losses: number[] = [];
  let lastMetrics: ExtractorMetrics | null = null;
  const progress = new Progress(`train ${cfg.model.kind}`, total, 'step');
  progress.tick(step);
  let windowStart = Date.now();
  let windowImages = 0;

  const evaluate = async (): Promise<ExtractorMetrics> => {
    const opts = { batchSize: cfg.train.batch_size, inputSize: S, maxImages: cfg.train.eval_max_images };
    const { predictions, seconds } = model instanceof PointHoiExtractor
      ? await predictExtractor(model, req.data, evalSplit, labels, cfg.decode, taxonomy, opts)
      : await predictClassifier(model, req.data, evalSplit, opts);
    return scoreExtractor(predictions, evalRecords, trainCounts, seconds);
  };
  const save = (metrics: Record<string, number>): void => {
    const optimizerTensors = optimizer.stateDict(); // new tensors (the model's are live variables)
    try {
      saveCheckpoint(req.out, step, {
        model: model.stateDict(),
        optimizer: optimizerTensors,
        manifest: { model_name: modelNameOf(model), model_config: modelConfigOf(model), backend: backend.name, backend_info: backend, metrics, best, run: runInfo },
      }, { keepLast: cfg.train.keep_last });
    } finally {
      for (const t of optimizerTensors.values()) t.dispose();
    }
  };

  try {
    while (step < total && !stopRequest.requested) {
      const epoch = Math.floor(step / loader.numBatches);
      for await (const batch of loader.epoch(epoch, step % loader.numBatches)) {
        const lr = lrAt(step, cfg.train.schedule, total);
        const { loss, parts, gradNorm } = trainStep(model, optimizer, trainable, batch, cfg, labels, lr);
        step++;
        assertFiniteStep(loss, gradNorm, step, req.out);
        losses.push(loss);
        windowImages += batch.records.length;
        let stop = false;
        req.afterStep?.({ step, model, stop: () => (stop = true) });
        if (stop) stopRequest.requested = true;

        if (step % cfg.train.log_every === 0 || step === total) {
          const imagesPerS = windowImages / Math.max(1e-3, (Date.now() - windowStart) / 1000);
          runLog.train(step, { lr, loss, ...parts, grad_norm: gradNorm, images_per_s: imagesPerS, time: (Date.now() - started) / 1000 });
          windowStart = Date.now();
          windowImages = 0;
        }
        progress.tick(1, `loss ${loss.toFixed(3)} (obj ${fmt(parts.loss_object_heatmap)} int ${fmt(parts.loss_interaction_heatmap)}) lr ${lr.toExponential(1)} ${(progress.rate() * cfg.train.batch_size).toFixed(1)} img/s`);

        const atEnd = step === total || stopRequest.requested;
        const evalNow = (cfg.train.eval_every > 0 && step % cfg.train.eval_every === 0) || step === total;
        const saveNow = (cfg.train.checkpoint_every > 0 && step % cfg.train.checkpoint_every === 0) || atEnd;
        let metrics: Record<string, number> = {};
        if (evalNow) {
          lastMetrics = await evaluate();
          metrics = flatMetrics(lastMetrics);
          runLog.eval(step, evalSplit, metrics);
          log.info(`step ${step}: ${evalSplit} ${describeMetrics(lastMetrics)}`);
        }
        if (saveNow) {
          const key = cfg.train.best_metric === 'map' && model instanceof PointHoiExtractor ? 'map' : 'auc';
          const value = evalNow ? metrics[key] : NaN;
          const isBest = isNewBest(value, best);
          if (isBest) best = { step, value };
          save(metrics);
          if (isBest) markBest(req.out, step);
        }
        if (atEnd) break;
      }
    }
  } finally {
    stopRequest.dispose();
    progress.stop();
    runLog.close();
    optimizer.dispose();
    model.dispose();
  }
  return { out: req.out, steps: step, seconds: (Date.now() - started) / 1000, backend, losses, lastMetrics, best, stoppedEarly: step < total };
}

/** One optimizer step; every tensor it makes is disposed before it returns. */
function trainStep(
  model: ExtractorModel, optimizer: AdamW, trainable: TrainableParams, batch: Batch,
  cfg: ExtractorConfig, labels: DecodeLabels, lr: number,
): { loss: number; parts: Record<string, number>; gradNorm: number } {
  const { vars } = trainable;
  let partsT: tf.Tensor | null = null;
  let lossT: tf.Scalar;
  let rawGrads: tf.NamedTensorMap;
  if (model instanceof PointHoiExtractor) {
    const targets = targetsToTensors(buildTargets(batch.records, {
      inputSize: cfg.model.input_size, stride: POINT_HOI_STRIDE, categories: labels.categories, verbs: labels.verbs,
      maxObjects: cfg.targets.max_objects, maxInteractions: cfg.targets.max_interactions,
    }));
    try {
      ({ value: lossT, grads: rawGrads } = tf.variableGrads(() => {
        const l = computeLosses(model.forward(batch.images), targets, cfg.loss);
        partsT = tf.keep(tf.stack(LOSS_PARTS.map((k) => l.parts[k]))); // [parts]
        return l.total;
      }, vars));
    } finally {
      disposeTargetTensors(targets);
    }
  } else {
    const y = tf.tensor1d(batch.records.map((r) => (r.label === 'anomalous' ? 1 : 0)));
    try {
      ({ value: lossT, grads: rawGrads } = tf.variableGrads(
        () => tf.losses.sigmoidCrossEntropy(y, model.forward(batch.images)) as tf.Scalar,
        vars,
      ));
    } finally {
      y.dispose();
    }
  }
  batch.images.dispose();
  const loss = lossT.dataSync()[0];
  lossT.dispose();
  const partValues = partsT ? Array.from((partsT as tf.Tensor).dataSync()) : [];
  (partsT as tf.Tensor | null)?.dispose();
  // A non-finite loss or gradient skips the update: the caller stops with the step number.
  const gradNorm = applyGradients(optimizer, trainable, rawGrads, loss, cfg.train.grad_clip, lr);
  const parts: Record<string, number> = {};
  partValues.forEach((v, i) => (parts[`loss_${LOSS_PARTS[i]}`] = v));
  return { loss, parts, gradNorm };
}

export function modelNameOf(model: Module): string {
  return model instanceof PointHoiExtractor ? PointHoiExtractor.modelName : ImageAnomalyClassifier.modelName;
}

export function modelConfigOf(model: ExtractorModel): unknown {
  return model.config;
}

export function flatMetrics(m: ExtractorMetrics): Record<string, number> {
  const out: Record<string, number> = { map: m.map, map_rare: m.map_rare, map_non_rare: m.map_non_rare, auc: m.auc, ap: m.ap, images_per_s: m.images_per_s };
  for (const [name, b] of Object.entries(m.baselines)) {
    out[`${name}_auc`] = b.auc;
    out[`${name}_ap`] = b.ap;
  }
  return out;
}

export function describeMetrics(m: ExtractorMetrics): string {
  const pct = (v: number): string => (Number.isFinite(v) ? (100 * v).toFixed(2) : 'n/a');
  const base = Object.entries(m.baselines).map(([n, b]) => `${n} AUC ${pct(b.auc)}`).join(', ');
  return `mAP ${pct(m.map)} (rare ${pct(m.map_rare)}, non-rare ${pct(m.map_non_rare)}), AUC ${pct(m.auc)}, AP ${pct(m.ap)}${base ? `; ${base}` : ''} on ${m.images} images`;
}

function fmt(v: number | undefined): string {
  return v === undefined ? '-' : v.toFixed(2);
}
