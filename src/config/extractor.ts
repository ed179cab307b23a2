import { z } from 'zod';
import { BackendConfigSchema, scheduleWithCosineDefaults } from './common';
import { BACKBONE_NAMES } from '../models/backbones/registry';
import { DecodeConfigSchema } from '../models/hoi/decode';
import { LossWeightsSchema } from '../models/hoi/losses';

/**
 * `train extractor` configuration. Files under configs/extractor/ hold only what differs from
 * these defaults (which are a CPU-practical ResNet-18 at 128 px).
 */
export const ExtractorConfigSchema = z
  .object({
    model: z
      .object({
        /** point_hoi: the HOI extractor; image_classifier: the image-level baseline on the same backbone. */
        kind: z.enum(['point_hoi', 'image_classifier']).default('point_hoi'),
        backbone: z.enum(BACKBONE_NAMES).default('resnet18'),
        /** Channel width multiplier of the backbone (1 = torchvision widths). */
        width: z.number().positive().max(4).default(1),
        /** Square input side in pixels, divisible by 32. */
        input_size: z.number().int().positive().multipleOf(32).default(128),
        neck_channels: z.number().int().positive().default(128),
        head_channels: z.number().int().positive().default(64),
      })
      .strict()
      .default({}),
    train: z
      .object({
        batch_size: z.number().int().positive().default(8),
        /** Optimizer steps of the whole run. */
        steps: z.number().int().positive().default(4000),
        seed: z.number().int().min(0).default(0),
        /** Default cosine; `--set train.schedule.lr=1e-3` keeps the other cosine defaults. */
        schedule: scheduleWithCosineDefaults({ lr: 2e-3, warmup_steps: 100, min_lr: 2e-5 }),
        weight_decay: z.number().min(0).default(1e-4),
        betas: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0.9, 0.999]),
        /** Clip gradients to this global norm; 0 = off. */
        grad_clip: z.number().min(0).default(10),
        log_every: z.number().int().positive().default(10),
        /** Validate (mAP, AUC) every N steps and at the end; 0 = only at the end. */
        eval_every: z.number().int().min(0).default(500),
        checkpoint_every: z.number().int().min(0).default(500),
        /** Step folders kept besides `best`. */
        keep_last: z.number().int().min(1).default(2),
        /** Metric that picks `best`: HOI mAP (point_hoi) or image AUC (both kinds). */
        best_metric: z.enum(['map', 'auc']).default('map'),
        /** Validate on at most this many images (null = the whole val split). */
        eval_max_images: z.number().int().positive().nullable().default(null),
      })
      .strict()
      .default({}),
    augment: z
      .object({
        enabled: z.boolean().default(true),
        hflip: z.number().min(0).max(1).default(0.5),
        scale_jitter: z.tuple([z.number().positive(), z.number().positive()]).default([0.75, 1.25]),
        color_jitter: z.number().min(0).max(1).default(0.2),
      })
      .strict()
      .default({}),
    targets: z
      .object({
        max_objects: z.number().int().positive().default(32),
        max_interactions: z.number().int().positive().default(32),
      })
      .strict()
      .default({}),
    loss: LossWeightsSchema.default({}),
    decode: DecodeConfigSchema.default({}),
    backend: BackendConfigSchema,
  })
  .strict();

export type ExtractorConfig = z.infer<typeof ExtractorConfigSchema>;
