/**
 * `quickstart` configuration: the sizes of the whole-pipeline run on the embedded synthetic
 * default, and how they turn into the configs of each stage. Each stage starts from its own
 * YAML (configs/dataset/synth.yaml, configs/extractor/tiny.yaml, configs/vlp/tiny.yaml); the
 * quickstart keys below override the few sizes that set the run time, and `set` lists pass any
 * other key through (`--set extractor.set=[train.batch_size=4]`).
 *
 * configs/quickstart.yaml holds the defaults that fit the 20-minute budget on 2 CPU cores.
 */
import * as path from 'node:path';
import { z } from 'zod';
import { BackendConfigSchema } from '../config/common';
import { type DatasetConfig, DatasetConfigSchema } from '../config/dataset';
import { type ExtractorConfig, ExtractorConfigSchema } from '../config/extractor';
import { loadConfig, type LoadOptions } from '../config/load';
import { type VlpConfig, VlpConfigSchema } from '../config/vlp';
import { packageRoot } from '../data/taxonomy';

const StageSets = z.array(z.string()).default([]);
/** A stage YAML, relative to the package root unless absolute. */
const ConfigPath = z.string().min(1);

export const QuickstartConfigSchema = z
  .object({
    /** Seeds the generator and both training runs. */
    seed: z.number().int().min(0).default(0),
    backend: BackendConfigSchema,
    dataset: z
      .object({
        config: ConfigPath.default('configs/dataset/synth.yaml'),
        num_images: z.number().int().min(1).default(1200),
        /** Rendered image side; null = the dataset config's. */
        image_size: z.number().int().positive().nullable().default(null),
        set: StageSets,
      })
      .strict()
      .default({}),
    extractor: z
      .object({
        config: ConfigPath.default('configs/extractor/tiny.yaml'),
        steps: z.number().int().positive().default(1000),
        /**
         * Model input side (multiple of 32); null = the extractor config's. 128: the synth images'
         * own size, ~1.5x cheaper a step than the tiny config's 160, which keeps the 20-minute budget.
         */
        input_size: z.number().int().positive().multipleOf(32).nullable().default(128),
        set: StageSets,
      })
      .strict()
      .default({}),
    vlp: z
      .object({
        config: ConfigPath.default('configs/vlp/tiny.yaml'),
        steps: z.number().int().positive().default(500),
        set: StageSets,
      })
      .strict()
      .default({}),
    eval: z
      .object({
        split: z.enum(['train', 'val', 'test']).default('test'),
        /** Explainer evaluation: images of the split (greedy generation is the slow part); null = all. */
        vlp_max_images: z.number().int().positive().nullable().default(null),
        /**
         * HOI inputs of the explainer at evaluation: `extractor` (its detections, as in
         * deployment) or `gt` (the annotations: the explainer alone).
         */
        vlp_hoi_source: z.enum(['gt', 'extractor']).default('extractor'),
      })
      .strict()
      .default({}),
    export: z
      .object({
        /** onnxruntime intra-op threads of the parity check. */
        threads: z.number().int().positive().default(2),
      })
      .strict()
      .default({}),
    explain: z
      .object({
        /** Test images explained (annotated PNGs, results.json, index.html). */
        images: z.number().int().positive().default(8),
        engine: z.enum(['onnx', 'tfjs']).default('onnx'),
        threads: z.number().int().positive().default(2),
      })
      .strict()
      .default({}),
  })
  .strict();

export type QuickstartConfig = z.infer<typeof QuickstartConfigSchema>;

/** The embedded default: configs/quickstart.yaml of the package. */
export function defaultQuickstartFile(): string {
  return path.join(packageRoot(), 'configs', 'quickstart.yaml');
}

/** Loads the quickstart config: the embedded file (or `file`), then flags, then --set. */
export function loadQuickstartConfig(opts: LoadOptions = {}): QuickstartConfig {
  return loadConfig(QuickstartConfigSchema, { ...opts, file: opts.file ?? defaultQuickstartFile() });
}

/** The resolved configs of the three stages that take one. */
export interface StageConfigs {
  dataset: DatasetConfig;
  extractor: ExtractorConfig;
  vlp: VlpConfig;
}

function stageFile(file: string): string {
  return path.isAbsolute(file) ? file : path.join(packageRoot(), file);
}

export function resolveStageConfigs(q: QuickstartConfig): StageConfigs {
  const threads = q.backend.threads || undefined;
  return {
    dataset: loadConfig(DatasetConfigSchema, {
      file: stageFile(q.dataset.config),
      flags: { seed: q.seed, num_images: q.dataset.num_images, 'synth.image_size': q.dataset.image_size ?? undefined },
      sets: q.dataset.set,
    }),
    extractor: loadConfig(ExtractorConfigSchema, {
      file: stageFile(q.extractor.config),
      flags: {
        'train.steps': q.extractor.steps, 'train.seed': q.seed, 'model.input_size': q.extractor.input_size ?? undefined,
        'backend.name': q.backend.name, 'backend.threads': threads,
      },
      sets: q.extractor.set,
    }),
    vlp: loadConfig(VlpConfigSchema, {
      file: stageFile(q.vlp.config),
      flags: { 'train.steps': q.vlp.steps, 'train.seed': q.seed, 'backend.name': q.backend.name, 'backend.threads': threads },
      sets: q.vlp.set,
    }),
  };
}
