/**
 * Learning-rate schedules as pure functions of the step (nanoGPT's `get_lr`), so that a resumed
 * run computes exactly the rates the uninterrupted run would have.
 *
 * Steps are 0-based indices of optimizer updates. Warm-up is linear and never yields a zero rate:
 * step s < warmup_steps gets `lr * (s + 1) / warmup_steps`, so step 0 already learns and step
 * `warmup_steps - 1` reaches `lr`. After warm-up:
 *   - `cosine`: `min_lr + (lr - min_lr) * 0.5 * (1 + cos(pi * p))`, p = (s - W) / (T - W)
 *     clamped to [0, 1], where T = `total_steps`; at s >= T the rate stays at `min_lr`.
 *   - `step`: `lr * gamma^k`, k = number of milestones <= s (PyTorch's MultiStepLR, with
 *     milestones as absolute steps).
 *   - `constant`: `lr`.
 */
import { z } from 'zod';

const base = {
  /** Peak learning rate (reached at the end of warm-up). */
  lr: z.number().positive(),
  /** Linear warm-up length in steps (0 = none). */
  warmup_steps: z.number().int().nonnegative().default(0),
};

export const CosineScheduleSchema = z
  .object({
    kind: z.literal('cosine'),
    ...base,
    /** Step at which the cosine reaches `min_lr`; defaults to the run's total steps. */
    total_steps: z.number().int().positive().optional(),
    /** Floor of the cosine (nanoGPT uses lr / 10; 0 = decay to zero). */
    min_lr: z.number().nonnegative().default(0),
  })
  .strict();

export const StepScheduleSchema = z
  .object({
    kind: z.literal('step'),
    ...base,
    /** Absolute steps at which the rate is multiplied by `gamma`; strictly increasing. */
    milestones: z.array(z.number().int().positive()).default([]),
    gamma: z.number().positive().max(1).default(0.1),
  })
  .strict();

export const ConstantScheduleSchema = z
  .object({
    kind: z.literal('constant'),
    ...base,
  })
  .strict();

export const ScheduleConfigSchema = z
  .discriminatedUnion('kind', [CosineScheduleSchema, StepScheduleSchema, ConstantScheduleSchema])
  .superRefine((cfg, ctx) => {
    if (cfg.kind === 'cosine') {
      if (cfg.min_lr > cfg.lr) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['min_lr'], message: `min_lr (${cfg.min_lr}) must not exceed lr (${cfg.lr})` });
      }
      if (cfg.total_steps !== undefined && cfg.total_steps <= cfg.warmup_steps) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['total_steps'], message: `total_steps (${cfg.total_steps}) must exceed warmup_steps (${cfg.warmup_steps})` });
      }
    }
    if (cfg.kind === 'step') {
      for (let i = 1; i < cfg.milestones.length; i++) {
        if (cfg.milestones[i] <= cfg.milestones[i - 1]) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['milestones', i], message: `milestones must be strictly increasing, found ${cfg.milestones[i - 1]} then ${cfg.milestones[i]}` });
        }
      }
    }
  });

export type ScheduleConfig = z.infer<typeof ScheduleConfigSchema>;
/** What a config file may hold (defaults not yet applied). */
export type ScheduleConfigInput = z.input<typeof ScheduleConfigSchema>;

/**
 * The learning rate for 0-based step `step`. `totalSteps` is the run's length, used by `cosine`
 * when the config leaves `total_steps` out.
 */
export function lrAt(step: number, cfg: ScheduleConfig, totalSteps?: number): number {
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`lrAt: step must be an integer >= 0, got ${step}`);
  const w = cfg.warmup_steps;
  if (step < w) return (cfg.lr * (step + 1)) / w;
  switch (cfg.kind) {
    case 'constant':
      return cfg.lr;
    case 'step': {
      let k = 0;
      for (const m of cfg.milestones) if (step >= m) k++;
      return cfg.lr * Math.pow(cfg.gamma, k);
    }
    case 'cosine': {
      const total = cfg.total_steps ?? totalSteps;
      if (total === undefined) throw new RangeError('lrAt: cosine schedule needs total_steps (in the config or as the run length)');
      if (total <= w) throw new RangeError(`lrAt: total_steps (${total}) must exceed warmup_steps (${w})`);
      const p = Math.min(1, (step - w) / (total - w));
      return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1 + Math.cos(Math.PI * p));
    }
  }
}
