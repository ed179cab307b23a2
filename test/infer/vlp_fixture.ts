/**
 * A tiny explainer run for the export and explain tests, written the way `finetune vlp` writes
 * one (tokenizer.json beside step-0/, a checkpoint whose manifest carries the run info), over the
 * tiny extractor of fixture.ts: an untrained VlpExplainer (dim 16, 2 layers) whose weights are
 * drawn large (explainer_helpers' `sharpen`), so next-token distributions are peaked and greedy
 * decoding does not hinge on float noise; a BPE tokenizer trained on the dataset's texts. Built in
 * well under a second; one per (process, variant).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../../src/backend/tf';
import { VlpConfigSchema } from '../../src/config/vlp';
import { readSplit } from '../../src/data/loader';
import { buildVlpModel, VLP_MODEL_NAME, type VlpRunInfo, TOKENIZER_FILE } from '../../src/eval/vlp_eval';
import { loadExtractor } from '../../src/eval/extractor_eval';
import { PointHoiExtractor } from '../../src/models/hoi/point_hoi';
import { parseVlpModelConfig } from '../../src/models/vlp/config';
import { recordTexts, trainTokenizer } from '../../src/models/vlp/tokenizer';
import { saveCheckpoint } from '../../src/train/checkpoint';
import { sharpen } from '../models/vlp/explainer_helpers';
import type { TinyRun } from './fixture';

export interface TinyVlpOptions {
  /** Folder name under the fixture root. */
  name: string;
  /** LoRA adapters (as after --init): merged at export. */
  lora?: { rank: number; alpha: number } | null;
  strategy?: 'greedy' | 'beam' | 'top_p';
  maxLength?: number;
  seed?: number;
  /** Cite boxes with pointer tokens (default true, as configs/vlp/tiny.yaml); false: digits. */
  boxPointer?: boolean;
}

/** Writes the run into `<fx.root>/<name>` and returns its folder. */
export function writeTinyVlpRun(fx: TinyRun, opts: TinyVlpOptions): string {
  const run = path.join(fx.root, opts.name);
  const ex = loadExtractor(fx.run);
  const extractor = ex.model as PointHoiExtractor;
  const S = extractor.config.inputSize;
  const c5 = tf.tidy(() => extractor.backbone.forwardFeatures(tf.zeros([1, S, S, 3]) as tf.Tensor4D).c5);
  const visualShape = c5.shape.slice(1) as [number, number, number];
  c5.dispose();
  extractor.dispose();

  const texts = readSplit(fx.data, 'train').flatMap((r) => Object.values(recordTexts(r)));
  const tokenizer = trainTokenizer(texts, { vocabSize: 400 });
  const cfg = VlpConfigSchema.parse({
    model: { dim: 16, layers: 2, heads: 2, dropout: 0, max_positions: 64, max_hois: 3, instruction_length: 24, box_frequencies: 3, box_pointer: opts.boxPointer ?? true },
    hoi_inputs: { min_score: 0 },
    generate: { strategy: opts.strategy ?? 'greedy', max_length: opts.maxLength ?? 12, beam_size: 3 },
    train: { seed: opts.seed ?? 3 },
  });
  const { categories, verbs, taxonomy } = ex.run;
  const modelConfig = parseVlpModelConfig({
    ...cfg.model, mlp_hidden: undefined, vocab_size: tokenizer.vocabSize, visual_channels: visualShape[2], num_categories: categories.length, num_verbs: verbs.length,
  });
  const lora = opts.lora ?? null;
  const model = buildVlpModel(modelConfig, { seed: cfg.train.seed, lora });
  sharpen(model, cfg.train.seed + 100);
  const runInfo: VlpRunInfo = {
    categories, verbs, taxonomy, tokenizer_file: TOKENIZER_FILE,
    extractor: { run: path.resolve(fx.run), checkpoint: path.resolve(ex.dir), input_size: S, visual_shape: visualShape },
    init: null, lora, hoi_inputs: cfg.hoi_inputs, generate: cfg.generate, max_response_length: 32, train_config: cfg,
  };
  fs.mkdirSync(run, { recursive: true });
  tokenizer.save(path.join(run, TOKENIZER_FILE));
  saveCheckpoint(run, 0, { model: model.stateDict(), optimizer: new Map(), manifest: { model_name: VLP_MODEL_NAME, model_config: modelConfig, run: runInfo } });
  model.dispose();
  return run;
}
