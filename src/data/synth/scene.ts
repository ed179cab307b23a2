import type { Box, HoiObject } from '../record';
import { Rng } from '../rng';
import { NORMAL_ENTRIES, NormalEntry } from './catalog';
import { Background, sampleBackground, sampleOccluder } from './backdrop';
import { Entity } from './entity';
import { ANOMALY_KINDS, GroupBuild, GroupPlan, anomalyPlan, floorThingPlan, handOverPlan, soloPlan } from './groups';
import { SynthOptions, parseSynthOptions } from './options';
import { ColoredPoly } from './person';
import { Poly } from './raster';
import { ThingCategory } from './things';

/**
 * Sampling one scene: the image label, who does what (interaction groups), where they stand
 * (perspective: people lower in the image are larger), the room or street behind them, an
 * occluder in front, and the photometric effects. Everything comes from one seeded Rng, so a
 * scene depends only on (seed, index, options). render.ts turns the layout into pixels.
 */

export interface Effects {
  /** added after contrast, grey levels */
  brightness: number;
  contrast: number;
  /** per-channel gain (colour of the light) */
  tint: [number, number, number];
  /** light gain g0 + gx * x + gy * y */
  gradient: [number, number, number];
  blurRadius: number;
  blurPasses: number;
  /** Gaussian noise sigma in grey levels */
  noiseSigma: number;
  noiseSeed: number;
}

export interface SceneHoi {
  subject: number;
  object: number;
  verb: string;
}

export type { Background };

export interface SceneLayout {
  width: number;
  height: number;
  anomalous: boolean;
  background: Background;
  /** Furniture, windows, trees ... drawn before the shadows and people. */
  backdrop: ColoredPoly[];
  shadows: Poly[];
  /** People and things in drawing order (far to near). */
  entities: Entity[];
  /** Record id of each entity. */
  entityIds: number[];
  /** Foreground occluders (never over a box-centre pixel). */
  occluders: ColoredPoly[];
  /** The record's objects, by id (persons first). */
  objects: HoiObject[];
  hois: SceneHoi[];
  effects: Effects;
}

const THINGS_NO_WEAPON: ThingCategory[] = ['bottle', 'cup', 'phone', 'bag', 'ball'];
const WEAPON_THINGS: ThingCategory[] = ['knife', 'gun', 'bat'];

function pickEntry(rng: Rng, entries: readonly NormalEntry[]): NormalEntry {
  return entries[rng.weighted(entries.map((e) => e.weight))];
}

function planFor(rng: Rng, e: NormalEntry, required: boolean, objectScale: number): GroupPlan {
  return e.verb === 'hand_over'
    ? handOverPlan(rng, e.object, required, objectScale)
    : soloPlan(rng, e.verb, e.object, required, objectScale);
}

/** Decides the image label and who does what. */
function planGroups(rng: Rng, opts: SynthOptions): { anomalous: boolean; plans: GroupPlan[] } {
  const anomalous = rng.chance(opts.anomalous_ratio);
  let people = rng.int(opts.min_people, opts.max_people);
  if (anomalous && people < 2) people = 2;
  // the hard negative (normal images) or an extra weapon (anomalous images, same rate)
  let weaponMode: 'none' | 'interaction' | 'object' = 'none';
  if (rng.chance(opts.hard_negative_ratio)) weaponMode = rng.chance(0.65) ? 'interaction' : 'object';
  const plans: GroupPlan[] = [];
  let free = people;
  const k = opts.object_scale;
  if (anomalous) {
    plans.push(anomalyPlan(rng, rng.pick(ANOMALY_KINDS), k));
    free -= 2;
  }
  if (weaponMode === 'interaction' && free === 0) weaponMode = 'object';
  if (weaponMode === 'interaction') {
    const entries = NORMAL_ENTRIES.filter((e) => e.weapon && (free >= 2 || e.verb !== 'hand_over'));
    const e = pickEntry(rng, entries);
    plans.push(planFor(rng, e, true, k));
    free -= e.verb === 'hand_over' ? 2 : 1;
  }
  let needNormal = !anomalous && plans.length === 0;
  while (free > 0) {
    if (needNormal || !rng.chance(opts.distractor_people)) {
      const entries = NORMAL_ENTRIES.filter((e) => !e.weapon && (free >= 2 || e.verb !== 'hand_over'));
      const e = pickEntry(rng, entries);
      plans.push(planFor(rng, e, needNormal, k));
      free -= e.verb === 'hand_over' ? 2 : 1;
      needNormal = false;
    } else {
      plans.push(soloPlan(rng, null, null, false));
      free -= 1;
    }
  }
  if (weaponMode === 'object') plans.push(floorThingPlan(rng, rng.pick(WEAPON_THINGS), true, k));
  for (let i = 0; i < 2; i++) {
    if (rng.chance(opts.distractor_objects)) plans.push(floorThingPlan(rng, rng.pick(THINGS_NO_WEAPON), false, k));
  }
  return { anomalous, plans };
}

// ---------------------------------------------------------------- placement

function unionBox(entities: Entity[]): Box {
  const b: Box = [Infinity, Infinity, -Infinity, -Infinity];
  for (const e of entities) {
    b[0] = Math.min(b[0], e.box[0]);
    b[1] = Math.min(b[1], e.box[1]);
    b[2] = Math.max(b[2], e.box[2]);
    b[3] = Math.max(b[3], e.box[3]);
  }
  return b;
}

/** Intersection over the smaller area. */
function overlap(a: Box, b: Box): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const area = (x: Box): number => (x[2] - x[0]) * (x[3] - x[1]);
  return (iw * ih) / Math.min(area(a), area(b));
}

interface Placed {
  build: GroupBuild;
  box: Box;
  groundY: number;
  order: number;
}

interface Perspective {
  size: number;
  horizon: number;
  gyMin: number;
  gyMax: number;
  heightAt(gy: number): number;
}

/**
 * People's height by where their feet are: H = k (gy - horizon), the camera at 1/k of a person's
 * height, between a minimum (far) and a maximum (near) height. By default k is drawn in
 * [1, 1.35] and the feet anywhere from where people are hMin tall down to the bottom edge;
 * with `range` ([far, near] fractions of the image, the person_scale option) k is what makes the
 * people at the bottom edge `near` tall, and the feet stay where people are at least `far` tall.
 */
function perspective(rng: Rng, size: number, horizon: number, range: readonly [number, number] | null): Perspective {
  const hMin = Math.max(0.26 * size, 34);
  const gyMax = size * 0.985;
  // drawn in both modes, so that the rest of the scene (backdrop, effects) is the same
  const k = Math.max(rng.uniform(1.0, 1.35), (1.3 * hMin) / (gyMax - horizon));
  if (range) {
    const far = range[0] * size, near = range[1] * size;
    const kr = near / (gyMax - horizon);
    return {
      size, horizon, gyMin: horizon + far / kr, gyMax,
      heightAt: (gy) => Math.min(Math.max(kr * (gy - horizon), far), near),
    };
  }
  const gyMin = Math.min(horizon + hMin / k, gyMax - 0.05 * size);
  return {
    size, horizon, gyMin, gyMax,
    heightAt: (gy) => Math.min(Math.max(k * (gy - horizon), hMin), 0.72 * size),
  };
}

/**
 * Places groups one by one at random depths, each scaled by perspective, avoiding overlap with
 * groups already placed: required groups take the least-overlapping of their tries, optional
 * ones are dropped if every try overlaps by more than 15%. Later tries shrink the group.
 */
function placeGroups(rng: Rng, plans: GroupPlan[], P: Perspective): Placed[] {
  const S = P.size;
  const placed: Placed[] = [];
  const order = [...plans.keys()].sort((a, b) => Number(plans[b].required) - Number(plans[a].required) || a - b);
  for (const i of order) {
    const plan = plans[i];
    const ref = unionBox(plan.realize(0, 0, 100).entities);
    const [l, t, r, b] = ref.map((v) => v / 100);
    let best: { x: number; gy: number; H: number; score: number } | null = null;
    for (let attempt = 0; attempt < 24; attempt++) {
      let gy = rng.uniform(P.gyMin, P.gyMax);
      // later tries also shrink the group (people differ in size; a crowded image needs it)
      let H = P.heightAt(gy) * Math.max(0.6, 1 - 0.04 * Math.max(0, attempt - 8));
      H = Math.min(H, (S - 3) / (r - l), (S - 3) / (b - t));
      if (t < 0) H = Math.min(H, (gy - 1.5) / -t);
      gy = Math.min(gy, S - 1.5 - b * H);
      const x = rng.uniform(1.5 - l * H, S - 1.5 - r * H);
      const box: Box = [x + l * H, gy + t * H, x + r * H, gy + b * H];
      let score = 0;
      for (const p of placed) score = Math.max(score, overlap(box, p.box));
      if (!best || score < best.score) best = { x, gy, H, score };
      if (score === 0) break;
    }
    if (!best || (!plan.required && best.score > 0.15)) continue;
    let build = plan.realize(best.x, best.gy, best.H);
    let box = unionBox(build.entities);
    // the scaled layout is not exactly linear in H (minimum pixel widths): shift back inside
    const shift = Math.max(0, 0.5 - box[0]) - Math.max(0, box[2] - (S - 0.5));
    if (shift !== 0) {
      build = plan.realize(best.x + shift, best.gy, best.H);
      box = unionBox(build.entities);
    }
    placed.push({ build, box, groundY: best.gy, order: placed.length });
  }
  return placed.sort((a, b) => a.groundY - b.groundY || a.order - b.order);
}

// ---------------------------------------------------------------- the scene

function clipBox(b: Box, S: number): Box {
  const c = (v: number): number => Math.min(S, Math.max(0, v));
  return [c(b[0]), c(b[1]), c(b[2]), c(b[3])];
}

export function layoutScene(seed: number, index: number, options: SynthOptions): SceneLayout {
  // re-validated on every call (about 20 us): a hand-made options object gets its defaults and checks
  const opts = parseSynthOptions(options);
  const rng = new Rng(seed, 'scene', index);
  const S = opts.image_size;
  const { anomalous, plans } = planGroups(rng, opts);
  const horizon = S * rng.uniform(0.3, 0.46);
  const P = perspective(rng, S, horizon, opts.person_scale);
  const { bg, backdrop } = sampleBackground(rng, S, horizon, opts.clutter);
  const placed = placeGroups(rng, plans, P);

  const entities: Entity[] = [];
  const shadows: Poly[] = [];
  const hois: SceneHoi[] = [];
  const hoiEntity: Array<{ s: number; o: number; verb: string }> = [];
  for (const g of placed) {
    const base = entities.length;
    entities.push(...g.build.entities);
    shadows.push(...g.build.shadows);
    for (const h of g.build.hois) hoiEntity.push({ s: base + h.subject, o: base + h.object, verb: h.verb });
  }
  // record ids: persons first, then things, each in drawing order
  const entityIds = new Array<number>(entities.length);
  let next = 0;
  entities.forEach((e, i) => {
    if (e.category === 'person') entityIds[i] = next++;
  });
  entities.forEach((e, i) => {
    if (e.category !== 'person') entityIds[i] = next++;
  });
  const objects: HoiObject[] = new Array(entities.length);
  entities.forEach((e, i) => {
    objects[entityIds[i]] = { id: entityIds[i], category: e.category, box: clipBox(e.box, S) };
  });
  for (const h of hoiEntity) hois.push({ subject: entityIds[h.s], object: entityIds[h.o], verb: h.verb });

  const centre = (b: Box): [number, number] => [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
  const keep = hois.map((h): [number, number] => {
    const [sx, sy] = centre(objects[h.subject].box), [ox, oy] = centre(objects[h.object].box);
    return [(sx + ox) / 2, (sy + oy) / 2];
  });
  const occluders = rng.chance(opts.occlusion) ? sampleOccluder(rng, entities, keep, S) : [];

  const L = opts.lighting;
  const theta = rng.uniform(0, 2 * Math.PI);
  const amp = L * rng.uniform(0, 0.5);
  const gx = (amp * Math.cos(theta)) / S, gy = (amp * Math.sin(theta)) / S;
  const blurPasses = rng.chance(opts.blur) ? (rng.chance(opts.blur) ? 2 : 1) : 0;
  const effects: Effects = {
    brightness: L * rng.uniform(-45, 30),
    contrast: 1 + L * rng.uniform(-0.35, 0.15),
    tint: [1 + L * rng.uniform(-0.08, 0.08), 1 + L * rng.uniform(-0.08, 0.08), 1 + L * rng.uniform(-0.08, 0.08)],
    // centred on the image middle: mean gain 1
    gradient: [1 - gx * (S / 2) - gy * (S / 2), gx, gy],
    blurRadius: Math.max(1, Math.round((S / 256) * rng.uniform(0.7, 1.3))),
    blurPasses,
    noiseSigma: opts.noise * rng.uniform(0.15, 1) * 14,
    noiseSeed: rng.nextU32(),
  };
  return {
    width: S, height: S, anomalous, background: bg, backdrop, shadows, entities, entityIds, occluders,
    objects, hois, effects,
  };
}
