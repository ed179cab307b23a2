import { z } from 'zod';
import { SynthOptionsSchema } from '../data/synth/options';

/**
 * `build-dataset` configuration. YAML files under configs/dataset/ hold only what differs
 * from these defaults.
 */
export const SplitFractionsSchema = z
  .object({
    train: z.number().min(0).max(1).default(0.8),
    val: z.number().min(0).max(1).default(0.1),
    test: z.number().min(0).max(1).default(0.1),
  })
  .strict()
  .refine((s) => Math.abs(s.train + s.val + s.test - 1) < 1e-9, { message: 'train + val + test must sum to 1' });

export const DatasetConfigSchema = z
  .object({
    /** Seeds the generator, the split hash and the instruction phrasing. */
    seed: z.number().int().min(0).default(0),
    /** Images to generate (synth source only). */
    num_images: z.number().int().min(1).default(2000),
    splits: SplitFractionsSchema.default({}),
    /** Taxonomy YAML; null = the built-in threat taxonomy (configs/taxonomy/threat.yaml). */
    taxonomy: z.string().nullable().default(null),
    /** Worker threads for synth rendering; 0 = one per CPU core. */
    workers: z.number().int().min(0).max(64).default(0),
    /** Real sources: symlink the images into the dataset (fast) or copy them (self-contained). */
    images: z.enum(['link', 'copy']).default('link'),
    synth: SynthOptionsSchema.default({}),
    hico_det: z
      .object({
        /** Names file for verb ids (one per line, 1-based); null = the 117 HICO-DET verbs. */
        verb_names: z.string().nullable().default(null),
        /** Names file for object ids (`id name` per line); null = COCO-91 ids. */
        object_names: z.string().nullable().default(null),
        /** A second HOIA file whose images form the test split (e.g. test_hico.json). */
        test_annotations: z.string().nullable().default(null),
      })
      .strict()
      .default({}),
    odgt: z
      .object({
        /** Allowed object tags, one per line; null = whatever the file uses. */
        categories: z.string().nullable().default(null),
        /** Allowed interactions, one per line; null = whatever the file uses. */
        verbs: z.string().nullable().default(null),
        test_annotations: z.string().nullable().default(null),
      })
      .strict()
      .default({}),
  })
  .strict();

export type DatasetConfig = z.infer<typeof DatasetConfigSchema>;
