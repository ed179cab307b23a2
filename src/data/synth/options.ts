import { z } from 'zod';
import { ConfigError } from '../../errors';

/**
 * Options of the procedural scene generator (the `synth` source). Every probability and
 * strength is in [0, 1]; 0 turns the effect off. Keys are snake_case like the dataset YAML.
 */
export const SynthOptionsSchema = z
  .object({
    /** Square image side in pixels. */
    image_size: z.number().int().min(64).max(1024).default(256),
    /** People per image, drawn uniformly in [min_people, max_people]; anomalous images need 2. */
    min_people: z.number().int().min(1).max(4).default(1),
    max_people: z.number().int().min(1).max(4).default(4),
    /** Probability that an image is anomalous (one assault staged between two people). */
    anomalous_ratio: z.number().min(0).max(1).default(0.5),
    /**
     * Probability that a normal image shows a knife, gun or bat: in a normal interaction (hold,
     * carry, hand_over) or lying around. Anomalous images get the same extra weapon with the same
     * probability, so "a weapon is present" scores an image AUC of about 0.5 + 0.5 * 0.4 * (1 - r)
     * (0.68 at the default 0.4): presence alone cannot separate the classes.
     */
    hard_negative_ratio: z.number().min(0).max(1).default(0.4),
    /** Probability that each person beyond the staged interactions stands by with no interaction. */
    distractor_people: z.number().min(0).max(1).default(0.35),
    /** Probability of each of two slots for an object lying on the floor with no interaction. */
    distractor_objects: z.number().min(0).max(1).default(0.4),
    /** Amount of background furniture (cabinets, tables, windows, trees, benches ...). */
    clutter: z.number().min(0).max(1).default(0.5),
    /** Strength of global brightness/contrast/tint changes and a linear light gradient. */
    lighting: z.number().min(0).max(1).default(0.5),
    /** Probability (and strength) of a box blur. */
    blur: z.number().min(0).max(1).default(0.3),
    /** Strength of additive Gaussian pixel noise (sigma up to 14 grey levels at 1). */
    noise: z.number().min(0).max(1).default(0.3),
    /** Probability of a foreground occluder over part of a person or object. */
    occlusion: z.number().min(0).max(1).default(0.2),
    /**
     * Size of every thing (knife, gun, bottle, cup, phone, ball; bat and bag up to a cap) relative
     * to the person holding it, or to a person at its depth for things lying on the floor; 1 is
     * the natural size. The poses follow: the thing stays in the hand, at the foot, between the
     * two hands or against the victim, and the people stand further apart as it grows. The bat
     * grows at most 1.25x and the bag at most 1.4x (already a half and a fifth of a person: any
     * longer and they would cross the floor in the hand). 1.5-2 keeps small things legible at
     * 96-128 px.
     */
    object_scale: z.number().min(0.5).max(3).default(1),
    /**
     * People's height as fractions [far, near] of the image height: the farthest people (feet
     * highest in the image) are `far` tall, the nearest (feet at the bottom edge) `near`, in
     * between by perspective from the scene's horizon. Groups that do not fit without overlapping
     * are dropped (fewer people when they are large), so e.g. [0.5, 0.8] frames 1-3 people large.
     * null keeps the default wide-angle perspective: people 0.26 (or 34 px) to 0.72 of the image
     * height, most of them near the small end.
     */
    person_scale: z
      .tuple([z.number().min(0.15).max(0.95), z.number().min(0.15).max(0.95)])
      .nullable()
      .default(null),
  })
  .strict();

export type SynthOptions = z.infer<typeof SynthOptionsSchema>;

/** Checks what the schema cannot express field by field; throws ConfigError naming the keys. */
export function checkSynthOptions(opts: SynthOptions): void {
  if (opts.min_people > opts.max_people) {
    throw new ConfigError(
      `synth options: min_people (${opts.min_people}) must be <= max_people (${opts.max_people})`,
    );
  }
  if (opts.person_scale && opts.person_scale[0] > opts.person_scale[1]) {
    throw new ConfigError(
      `synth options: person_scale [far, near] needs far <= near, found [${opts.person_scale.join(', ')}]`,
    );
  }
  if (opts.anomalous_ratio > 0 && opts.max_people < 2) {
    throw new ConfigError(
      `synth options: anomalous_ratio ${opts.anomalous_ratio} needs max_people >= 2 ` +
        `(an assault involves two people), found max_people ${opts.max_people}`,
    );
  }
}

/** Parses raw options (defaults filled in, unknown keys rejected) and checks them: ConfigError on failure. */
export function parseSynthOptions(raw: unknown = {}): SynthOptions {
  const parsed = SynthOptionsSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const key = i.path.join('.') || '(root)';
      return `${key}: ${i.message}`;
    });
    throw new ConfigError(`synth options: ${issues.join('; ')}`);
  }
  checkSynthOptions(parsed.data);
  return parsed.data;
}
