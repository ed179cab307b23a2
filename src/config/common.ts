/**
 * Config sections shared by the training commands (extractor, explainer, quickstart): the compute
 * backend and the learning-rate schedule with cosine defaults that a partial `--set` keeps.
 */
import { z } from 'zod';
import { BACKEND_NAMES, type BackendName } from '../backend';
import { ScheduleConfigSchema } from '../train/schedule';

export const BackendConfigSchema = z
  .object({
    /** auto = tensorflow > wasm-native > cpu; wasm-native runs the heavy wasm kernels in ONNX Runtime. */
    name: z.enum(BACKEND_NAMES as unknown as [BackendName, ...BackendName[]]).default('auto'),
    /** wasm threads; 0 = one per core. */
    threads: z.number().int().min(0).default(0),
  })
  .strict()
  .default({});

/**
 * A schedule section: absent or cosine, the given cosine defaults are filled in (so that
 * `--set train.schedule.lr=1e-3` keeps the rest); other kinds are given whole.
 */
export function scheduleWithCosineDefaults(defaults: { lr: number; warmup_steps: number; min_lr: number }) {
  const cosine = { kind: 'cosine', ...defaults } as const;
  return z.preprocess((v: unknown) => {
    if (v === undefined) return { ...cosine };
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const kind = (v as { kind?: unknown }).kind;
      if (kind === undefined || kind === 'cosine') return { ...cosine, ...v };
    }
    return v;
  }, ScheduleConfigSchema);
}
