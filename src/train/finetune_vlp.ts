/**
 * `finetune vlp`: one flat loop (nanoGPT style) for the VLP explainer:
 *   lr(step) -> forward (teacher forcing) -> response loss -> backward -> clip -> AdamW -> log
 *   -> eval (greedy generation on val) / checkpoint -> stop.
 * Before the loop: the tokenizer (trained on the train split's instructions and responses, or
 * GPT-2's with --init), and the frozen extractor backbone's C5 features of the train and val
 * images, computed once and kept in memory. Batches are functions of (seed, epoch, index) and
 * dropout masks of the step (see `seekDropout`), so `--resume` continues bit for bit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type BackendInfo, initBackend, seedEverything } from '../backend';
import { tf } from '../backend/tf';
import type { VlpConfig } from '../config/vlp';
import { writeResolvedConfig } from '../config/load';
import { readDatasetManifest, readSplit } from '../data/loader';
import type { Split } from '../data/record';
import { Taxonomy } from '../data/taxonomy';
import { disposeVlpBatch, NO_NOISE, type VlpBatch, VlpBatchSource } from '../data/vlp_batches';
import { CheckpointError, ConfigError, DataError } from '../errors';
import { loadExtractor } from '../eval/extractor_eval';
import {
  buildVlpModel, checkExtractorFits, collateSpecOf, describeVlpMetrics, generateExplanations, type PreparedSplit, prepareVlpSplit, scoreExplanations,
  TOKENIZER_FILE, VLP_MODEL_NAME, type VlpMetrics, type VlpRunInfo,
} from '../eval/vlp_eval';
import { log } from '../logger';
import { PointHoiExtractor } from '../models/hoi/point_hoi';
import { Dropout } from '../models/nn/dropout';
import type { Module } from '../models/nn/module';
import { checkVlpModelConfig, type VlpModelConfig } from '../models/vlp/config';
import { responseLoss, type VlpExplainer } from '../models/vlp/explainer';
import { loadGpt2Weights, readGpt2Config, vlpConfigFromGpt2 } from '../models/vlp/gpt2_init';
import { recordTexts, trainTokenizer, VlpTokenizer } from '../models/vlp/tokenizer';
import { Progress } from '../progress';
import { findLatestCheckpoint, markBest, saveCheckpoint } from './checkpoint';
import { applyGradients, assertFiniteStep, isNewBest, RunLog, StopRequest, startOrResume, type TrainableParams, trainableParams } from './loop_common';
import { AdamW } from './optim';
import { lrAt } from './schedule';

export interface FinetuneVlpRequest {
  config: VlpConfig;
  /** Dataset folder (build-dataset output). */
  data: string;
  /** Run folder (or step-N folder) of a trained point_hoi extractor: its frozen backbone gives the visual features. */
  extractor: string;
  /** Run folder: config.yaml, tokenizer.json, metrics.jsonl, tb/, step-N/, last, best. */
  out: string;
  /** A local GPT-2-format folder (config.json, model.safetensors, tokenizer.json) to start the decoder from. */
  init?: string;
  resume?: boolean;
  /** Test hook: called after every optimizer step; `stop()` ends the run as SIGINT would. */
  afterStep?: (info: { step: number; model: VlpExplainer; stop: () => void }) => void;
}

export interface FinetuneSummary {
  out: string;
  steps: number;
  seconds: number;
  /** Optimizer steps per second of this call's training steps (evaluation excluded). */
  stepsPerSecond: number;
  backend: BackendInfo;
  /** Losses of the steps run by this call, in order. */
  losses: number[];
  lastMetrics: VlpMetrics | null;
  best: { step: number; value: number } | null;
  stoppedEarly: boolean;
}

export async function finetuneVlp(req: FinetuneVlpRequest): Promise<FinetuneSummary> {
  const cfg = req.config;
  const started = Date.now();
  const backend = await initBackend({ name: cfg.backend.name, threads: cfg.backend.threads || undefined });
  seedEverything(cfg.train.seed);

  // -- dataset, extractor, tokenizer
  const manifest = readDatasetManifest(req.data);
  const taxonomy = Taxonomy.fromJSON(manifest.taxonomy);
  const categories: string[] = manifest.categories;
  const verbs: string[] = manifest.verbs;
  const evalSplit: Split = readSplit(req.data, 'val').length > 0 ? 'val' : 'train';
  if (evalSplit === 'train') log.warn(`${req.data}: the val split is empty; validating on the train split`);
  const resuming = Boolean(req.resume) && fs.existsSync(req.out) && findLatestCheckpoint(req.out) !== null;
  if (req.resume && !resuming) throw new CheckpointError(`${req.out}: nothing to resume (no complete step-N checkpoint)`);
  const tokenizer = makeTokenizer(req, resuming);

  const extractor = loadExtractor(req.extractor);
  let train: PreparedSplit, val: PreparedSplit;
  try {
    if (!(extractor.model instanceof PointHoiExtractor)) throw new ConfigError(`${req.extractor}: the explainer needs a point_hoi extractor run`);
    checkExtractorFits(extractor.run, req.extractor, categories, verbs);
    const common = {
      data: req.data, extractor: extractor.model, extractorRun: extractor.run, tokenizer, categories, verbs,
      hoiSource: cfg.hoi_inputs.source, minScore: cfg.hoi_inputs.min_score, batchSize: 16, boxPointer: cfg.model.box_pointer,
    };
    log.info(`computing visual features of the train and ${evalSplit} images with ${extractor.dir}`);
    train = await prepareVlpSplit({ ...common, split: 'train' });
    val = await prepareVlpSplit({ ...common, split: evalSplit, maxImages: cfg.train.eval_max_images });
  } finally {
    extractor.model.dispose();
  }
  const visualShape = train.features.shape;

  // -- model, optimizer, run folder
  const modelConfig = resolveModelConfig(cfg, { vocabSize: tokenizer.vocabSize, categories: categories.length, verbs: verbs.length, visualChannels: visualShape[2] }, req.init);
  const prefixLen = visualShape[0] * visualShape[1] + modelConfig.max_hois + modelConfig.instruction_length;
  if (prefixLen + cfg.train.max_response_length > modelConfig.max_positions) {
    throw new ConfigError(`model.max_positions (${modelConfig.max_positions}) < prefix ${prefixLen} (${visualShape[0]}x${visualShape[1]} visual + ${modelConfig.max_hois} HOI + ${modelConfig.instruction_length} instruction) + train.max_response_length ${cfg.train.max_response_length}`);
  }
  const lora = req.init ? { rank: cfg.lora.rank, alpha: cfg.lora.alpha } : null;
  const model = buildVlpModel(modelConfig, { seed: cfg.train.seed, lora });
  if (req.init && !resuming) {
    const r = loadGpt2Weights(model, req.init);
    log.info(`decoder initialised from ${req.init}: ${r.loaded.length} tensors; trained from scratch: ${r.notInCheckpoint.length} (the prefix layers${lora && lora.rank > 0 ? ' and LoRA adapters' : ''})`);
  }
  const trainable = trainableParams(model);
  const optimizer = new AdamW(trainable.params, {
    lr: cfg.train.schedule.lr, betas: cfg.train.betas, weightDecay: cfg.train.weight_decay,
    noDecay: (name) => trainable.params.get(name)!.rank < 2,
  });
  const runInfo: VlpRunInfo = {
    categories, verbs, taxonomy: taxonomy.toJSON(), tokenizer_file: TOKENIZER_FILE,
    extractor: { run: path.resolve(req.extractor), checkpoint: path.resolve(extractor.dir), input_size: extractor.run.input_size, visual_shape: visualShape },
    init: req.init ? path.resolve(req.init) : null, lora, hoi_inputs: cfg.hoi_inputs, generate: cfg.generate,
    max_response_length: cfg.train.max_response_length, train_config: cfg,
  };
  let step: number;
  let best: { step: number; value: number } | null;
  try {
    ({ step, best } = startOrResume({
      out: req.out, resume: req.resume, model, modelConfig, optimizer,
      prepare: (ckpt) => {
        const prev = ckpt.manifest.run as VlpRunInfo | undefined;
        if (prev && prev.init !== runInfo.init) throw new CheckpointError(`${ckpt.dir}: the run was initialised from ${prev.init ?? 'scratch'}, not ${runInfo.init ?? 'scratch'}`);
      },
    }));
  } catch (err) {
    optimizer.dispose();
    model.dispose();
    throw err;
  }
  fs.mkdirSync(req.out, { recursive: true });
  writeResolvedConfig(req.out, cfg);
  if (!resuming) tokenizer.save(path.join(req.out, TOKENIZER_FILE));

  const spec = collateSpecOf(modelConfig, tokenizer, cfg.train.max_response_length);
  const person = Math.max(0, categories.indexOf('person'));
  const h = cfg.hoi_inputs;
  const batches = new VlpBatchSource(train.examples, train.features, spec, {
    batchSize: cfg.train.batch_size, seed: cfg.train.seed, shuffle: true, numVerbs: verbs.length, personCategory: person,
    // extractor predictions are already noisy: no synthetic noise on them
    noise: h.source === 'gt' ? { boxJitter: h.box_jitter, dropProb: h.drop_prob, spuriousProb: h.spurious_prob, shuffle: h.shuffle } : NO_NOISE,
  });
  if (batches.numBatches === 0) throw new DataError(`${req.data}: the train split has ${train.examples.length} images, fewer than one batch of ${cfg.train.batch_size}`);
  const valBatches = new VlpBatchSource(val.examples, val.features, spec, {
    batchSize: cfg.train.batch_size, seed: 0, shuffle: false, noise: NO_NOISE, numVerbs: verbs.length, personCategory: person,
  });
  const generateConfig = { ...cfg.generate, max_length: Math.min(cfg.generate.max_length, modelConfig.max_positions - prefixLen) };
  log.info(`explainer: ${countParams(model, false)} parameters (${countParams(model, true)} trainable), prefix ${prefixLen} tokens, vocabulary ${tokenizer.vocabSize}; ${train.examples.length} train images, ${batches.numBatches} batches an epoch`);

  const total = cfg.train.steps;
  const runLog = new RunLog(req.out);
  const stop = new StopRequest();
  const losses: number[] = [];
  let lastMetrics: VlpMetrics | null = null;
  const progress = new Progress('finetune vlp', total, 'step');
  progress.tick(step);
  let windowStart = Date.now(), windowTokens = 0, trainMs = 0;

  const evaluate = async (): Promise<VlpMetrics> => {
    const { explanations, loss, seconds } = await generateExplanations(model, tokenizer, valBatches, generateConfig, taxonomy);
    return { ...scoreExplanations(explanations, val.records, taxonomy), loss, images_per_s: explanations.length / Math.max(seconds, 1e-9) };
  };
  const save = (metrics: Record<string, number>): void => {
    const optimizerTensors = optimizer.stateDict();
    try {
      saveCheckpoint(req.out, step, {
        model: model.stateDict(), optimizer: optimizerTensors,
        manifest: { model_name: VLP_MODEL_NAME, model_config: modelConfig, backend: backend.name, backend_info: backend, metrics, best, run: runInfo },
      }, { keepLast: cfg.train.keep_last });
    } finally {
      for (const t of optimizerTensors.values()) t.dispose();
    }
  };

  try {
    while (step < total && !stop.requested) {
      const epoch = Math.floor(step / batches.numBatches);
      const lr = lrAt(step, cfg.train.schedule, total);
      const t0 = Date.now();
      const batch = batches.batch(epoch, step % batches.numBatches);
      seekDropout(model, step);
      const { loss, gradNorm, tokens } = trainStep(model, optimizer, trainable, batch, cfg.train.grad_clip, lr);
      trainMs += Date.now() - t0;
      step++;
      assertFiniteStep(loss, gradNorm, step, req.out);
      losses.push(loss);
      windowTokens += tokens;
      let stopNow = false;
      req.afterStep?.({ step, model, stop: () => (stopNow = true) });
      if (stopNow) stop.requested = true;

      if (step % cfg.train.log_every === 0 || step === total) {
        const tokensPerS = windowTokens / Math.max(1e-3, (Date.now() - windowStart) / 1000);
        runLog.train(step, { lr, loss, grad_norm: gradNorm, tokens_per_s: tokensPerS, time: (Date.now() - started) / 1000 });
        windowStart = Date.now();
        windowTokens = 0;
      }
      progress.tick(1, `loss ${loss.toFixed(3)} lr ${lr.toExponential(1)} ${(1000 * losses.length / Math.max(trainMs, 1)).toFixed(2)} step/s`);

      const atEnd = step === total || stop.requested;
      const evalNow = (cfg.train.eval_every > 0 && step % cfg.train.eval_every === 0) || step === total;
      const saveNow = (cfg.train.checkpoint_every > 0 && step % cfg.train.checkpoint_every === 0) || atEnd;
      let metrics: Record<string, number> = {};
      if (evalNow) {
        lastMetrics = await evaluate();
        metrics = { ...lastMetrics };
        runLog.eval(step, evalSplit, metrics);
        log.info(`step ${step}: ${evalSplit} ${describeVlpMetrics(lastMetrics)}`);
      }
      if (saveNow) {
        const value = evalNow ? metrics[cfg.train.best_metric] : NaN;
        const newBest = isNewBest(value, best);
        if (newBest) best = { step, value };
        save(metrics);
        if (newBest) markBest(req.out, step);
      }
    }
  } finally {
    stop.dispose();
    progress.stop();
    runLog.close();
    optimizer.dispose();
    model.dispose();
  }
  return {
    out: req.out, steps: step, seconds: (Date.now() - started) / 1000, stepsPerSecond: (1000 * losses.length) / Math.max(trainMs, 1),
    backend, losses, lastMetrics, best, stoppedEarly: step < total,
  };
}

/** One optimizer step; every tensor it makes (the batch's included) is disposed before it returns. */
function trainStep(
  model: VlpExplainer, optimizer: AdamW, trainable: TrainableParams, batch: VlpBatch, gradClip: number, lr: number,
): { loss: number; gradNorm: number; tokens: number } {
  let lossT: tf.Scalar, rawGrads: tf.NamedTensorMap;
  let tokens: number;
  try {
    ({ value: lossT, grads: rawGrads } = tf.variableGrads(
      () => responseLoss(model.forward(batch.inputs, batch.response), batch.targets, batch.mask),
      trainable.vars,
    ));
    tokens = batch.mask.shape[0] * batch.mask.shape[1];
  } finally {
    disposeVlpBatch(batch);
  }
  const loss = lossT.dataSync()[0];
  lossT.dispose();
  const gradNorm = applyGradients(optimizer, trainable, rawGrads, loss, gradClip, lr);
  return { loss, gradNorm, tokens };
}

/**
 * Dropout draws its k-th mask from (seed, k), k counting the module's forward calls since it was
 * built. A resumed run builds the model anew, so the counters are set from the step (each module
 * runs at most DROPOUT_CALLS_PER_STEP times a step) to give the uninterrupted run's masks.
 */
const DROPOUT_CALLS_PER_STEP = 16;
function seekDropout(model: Module, step: number): void {
  for (const m of model.namedModules().values()) {
    if (m instanceof Dropout) m.seek(step * DROPOUT_CALLS_PER_STEP);
  }
}

/** The tokenizer: the run's own when resuming, GPT-2's with --init, else trained on the train split. */
function makeTokenizer(req: FinetuneVlpRequest, resuming: boolean): VlpTokenizer {
  const own = path.join(req.out, TOKENIZER_FILE);
  if (resuming) {
    if (!fs.existsSync(own)) throw new CheckpointError(`${req.out}: ${TOKENIZER_FILE} is missing, the run cannot be resumed`);
    return VlpTokenizer.fromFile(own);
  }
  if (req.init) return VlpTokenizer.fromFile(path.join(req.init, TOKENIZER_FILE));
  const texts: string[] = [];
  for (const rec of readSplit(req.data, 'train')) {
    const t = recordTexts(rec);
    texts.push(t.instruction, t.response);
  }
  const tok = trainTokenizer(texts, { vocabSize: req.config.tokenizer.vocab_size, minFrequency: req.config.tokenizer.min_frequency });
  log.info(`tokenizer trained on ${texts.length} train texts: vocabulary ${tok.vocabSize}`);
  return tok;
}

/** The model config: the architecture keys of the run config plus the sizes the data (and a GPT-2 checkpoint) dictate. */
export function resolveModelConfig(
  cfg: VlpConfig, sizes: { vocabSize: number; categories: number; verbs: number; visualChannels: number }, init?: string,
): VlpModelConfig {
  const { mlp_hidden, ...arch } = cfg.model;
  const config: VlpModelConfig = {
    ...arch,
    ...(mlp_hidden !== null ? { mlp_hidden } : {}),
    vocab_size: sizes.vocabSize, num_categories: sizes.categories, num_verbs: sizes.verbs, visual_channels: sizes.visualChannels,
  };
  if (init) {
    const g = vlpConfigFromGpt2(readGpt2Config(init));
    if (g.vocab_size < sizes.vocabSize) throw new ConfigError(`${init}: GPT-2 vocab_size ${g.vocab_size} is smaller than its tokenizer's ${sizes.vocabSize}`);
    Object.assign(config, g);
  }
  checkVlpModelConfig(config);
  return config;
}

function countParams(model: Module, trainableOnly: boolean): number {
  let n = 0;
  for (const v of model.namedParameters().values()) if (!trainableOnly || v.trainable) n += v.size;
  return n;
}
