import type { HoiObject } from '../record';
import { SynthOptions } from './options';
import { renderLayout } from './render';
import { layoutScene } from './scene';

/**
 * The `synth` source: procedural scenes of people interacting with things, half of them (by
 * default) staging an assault. Public surface: categories, verbs, the interaction catalogue and
 * `generateScene`. Internals for tests and tools: ./scene (layoutScene), ./render (renderLayout).
 */
export { SYNTH_CATEGORIES, SYNTH_INTERACTIONS, SYNTH_VERBS } from './catalog';
export type { SynthCategory, SynthInteraction, SynthVerb } from './catalog';
export { SynthOptionsSchema, checkSynthOptions, parseSynthOptions } from './options';
export type { SynthOptions } from './options';

export interface SynthScene {
  width: number;
  height: number;
  /** Persons first (ids 0..), then things; boxes absolute pixels [x1, y1, x2, y2], amodal. */
  objects: HoiObject[];
  /** (subject person id, verb, object id); assaults give (A, verb, weapon) and (A, verb, victim). */
  hois: Array<{ subject: number; object: number; verb: string }>;
  /** RGB, row-major HWC, length width * height * 3. */
  pixels: Uint8Array;
  /** True exactly when the scene stages an assault (point_at, stab, hit, punch, kick a person). */
  anomalous: boolean;
}

/**
 * One scene, a pure function of (seed, index, opts): byte-identical pixels and objects on every
 * platform (seeded Rng, IEEE double maths, no Math.random or clock). `opts` must be parsed
 * (SynthOptionsSchema or parseSynthOptions) so that defaults are filled in.
 */
export function generateScene(seed: number, index: number, opts: SynthOptions): SynthScene {
  const layout = layoutScene(seed, index, opts);
  const canvas = renderLayout(layout);
  return {
    width: layout.width,
    height: layout.height,
    objects: layout.objects,
    hois: layout.hois,
    pixels: canvas.rgb,
    anomalous: layout.anomalous,
  };
}
