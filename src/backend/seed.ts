/**
 * Seeds for tfjs random ops.
 *
 * tfjs has no global seed: every random op (randomNormal, randomUniform, truncatedNormal,
 * dropout, the layers initializers) takes an optional `seed` and falls back to Math.random when
 * it is missing. So reproducible runs pass an explicit seed to *every* random op, taken from here:
 *
 * - `seedEverything(seed)` sets the run's base seed and resets the counter;
 * - `nextSeed()` gives the next seed of the run's sequence (counter-based, so a run that makes the
 *   same random calls in the same order gets the same seeds: dropout masks step after step);
 * - `seedFor('backbone.layer1.0.conv1.weight')` gives a seed that depends only on the base seed
 *   and the name, not on call order, so adding a layer does not change the initial weights of
 *   the others (initializers).
 *
 * The values tfjs draws for a seed are generated in JavaScript (seedrandom's alea), so they are
 * the same on every backend. Careful: tfjs treats a seed of 0 as "no seed" (`seed ? seed :
 * Math.random()`), so a literal 0 gives different numbers on every call. The seeds given here are
 * integers in [1, 2^31).
 */
let baseSeed = 0;
let counter = 0;

/** Sets the base seed of the run and restarts the `nextSeed()` sequence. */
export function seedEverything(seed: number): void {
  if (!Number.isFinite(seed)) throw new RangeError(`seedEverything: seed must be a finite number, got ${seed}`);
  baseSeed = Math.floor(seed) >>> 0;
  counter = 0;
}

/** The base seed given to seedEverything (0 until then). */
export function currentSeed(): number {
  return baseSeed;
}

/** The next seed of the run's sequence: a hash of (base seed, call number). */
export function nextSeed(): number {
  return mix(baseSeed, counter++);
}

/** A seed for a named use (a parameter path, 'dropout', ...), independent of call order. */
export function seedFor(...parts: Array<string | number>): number {
  let h = mix(baseSeed, 0x9e3779b9);
  for (const part of parts) {
    const s = String(part);
    for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i));
    h = mix(h, 0x1f); // separator, so ('ab', 'c') and ('a', 'bc') differ
  }
  return h;
}

/** A stream of seeds of its own (one per data loader, per model, ...). */
export class SeedSequence {
  private n = 0;
  constructor(private readonly seed: number) {}
  next(): number {
    return mix(this.seed >>> 0, this.n++);
  }
}

/** murmur3-style finalizer over (a, b), reduced to a positive int32 (never 0: see above). */
function mix(a: number, b: number): number {
  let h = (Math.imul(a ^ 0x85ebca6b, 0xcc9e2d51) + Math.imul(b, 0x1b873593)) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 1) || 1;
}
