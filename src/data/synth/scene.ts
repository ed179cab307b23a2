import type { Box, HoiObject } from '../record';
import { Rng } from '../rng';
import { NORMAL_ENTRIES, NormalEntry } from './catalog';
import {
  ANOMALY_KINDS, Entity, GroupBuild, GroupPlan, anomalyPlan, centrePixel, floorThingPlan, handOverPlan,
  soloPlan,
} from './groups';
import { SynthOptions, checkSynthOptions } from './options';
import { ColoredPoly, hsv } from './person';
import { Poly, Rgb, ellipsePoly, mixRgb, polygonBounds, polygonCovers, rectPoly, rgb, scaleRgb } from './raster';
import { ThingCategory } from './things';

/**
 * Sampling one scene: the image label, who does what (interaction groups), where they stand
 * (perspective: people lower in the image are larger), the room or street behind them, an
 * occluder in front, and the photometric effects. Everything comes from one seeded Rng, so a
 * scene depends only on (seed, index, options). render.ts turns the layout into pixels.
 */

export interface Background {
  horizon: number;
  upperTop: Rgb;
  upperBottom: Rgb;
  lowerTop: Rgb;
  lowerBottom: Rgb;
}

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

type Plan = GroupPlan;

const THINGS_NO_WEAPON: ThingCategory[] = ['bottle', 'cup', 'phone', 'bag', 'ball'];
const WEAPON_THINGS: ThingCategory[] = ['knife', 'gun', 'bat'];

function pickEntry(rng: Rng, entries: readonly NormalEntry[]): NormalEntry {
  return entries[rng.weighted(entries.map((e) => e.weight))];
}

function planFor(rng: Rng, e: NormalEntry, required: boolean): Plan {
  return e.verb === 'hand_over'
    ? handOverPlan(rng, e.object, required)
    : soloPlan(rng, e.verb, e.object, required);
}

/** Decides the image label and who does what. */
function planGroups(rng: Rng, opts: SynthOptions): { anomalous: boolean; plans: Plan[] } {
  const anomalous = rng.chance(opts.anomalous_ratio);
  let people = rng.int(opts.min_people, opts.max_people);
  if (anomalous && people < 2) people = 2;
  // the hard negative (normal images) or an extra weapon (anomalous images, same rate)
  let weaponMode: 'none' | 'interaction' | 'object' = 'none';
  if (rng.chance(opts.hard_negative_ratio)) weaponMode = rng.chance(0.65) ? 'interaction' : 'object';
  const plans: Plan[] = [];
  let free = people;
  if (anomalous) {
    plans.push(anomalyPlan(rng, rng.pick(ANOMALY_KINDS)));
    free -= 2;
  }
  if (weaponMode === 'interaction' && free === 0) weaponMode = 'object';
  if (weaponMode === 'interaction') {
    const entries = NORMAL_ENTRIES.filter((e) => e.weapon && (free >= 2 || e.verb !== 'hand_over'));
    const e = pickEntry(rng, entries);
    plans.push(planFor(rng, e, true));
    free -= e.verb === 'hand_over' ? 2 : 1;
  }
  let needNormal = !anomalous && plans.length === 0;
  while (free > 0) {
    if (needNormal || !rng.chance(opts.distractor_people)) {
      const entries = NORMAL_ENTRIES.filter((e) => !e.weapon && (free >= 2 || e.verb !== 'hand_over'));
      const e = pickEntry(rng, entries);
      plans.push(planFor(rng, e, needNormal));
      free -= e.verb === 'hand_over' ? 2 : 1;
      needNormal = false;
    } else {
      plans.push(soloPlan(rng, null, null, false));
      free -= 1;
    }
  }
  if (weaponMode === 'object') plans.push(floorThingPlan(rng, rng.pick(WEAPON_THINGS), true));
  for (let i = 0; i < 2; i++) {
    if (rng.chance(opts.distractor_objects)) plans.push(floorThingPlan(rng, rng.pick(THINGS_NO_WEAPON), false));
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

function perspective(rng: Rng, size: number, horizon: number): Perspective {
  const hMin = Math.max(0.26 * size, 34);
  const gyMax = size * 0.985;
  const k = Math.max(rng.uniform(1.0, 1.35), (1.3 * hMin) / (gyMax - horizon));
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
function placeGroups(rng: Rng, plans: Plan[], P: Perspective): Placed[] {
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

// ---------------------------------------------------------------- background

function jitter(rng: Rng, c: Rgb, a: number): Rgb {
  return rgb(((c >> 16) & 255) + rng.uniform(-a, a), ((c >> 8) & 255) + rng.uniform(-a, a), (c & 255) + rng.uniform(-a, a));
}

const WALLS: Rgb[] = [0xe8dcc8, 0xd0d4d8, 0xc8d8e8, 0xd8e4cc, 0xb86a58, 0xf0f0ea, 0xe6c89a, 0x9aa4b0];
const FLOORS: Rgb[] = [0x8a6038, 0x9a9a96, 0xc8b89a, 0x5a4a3a, 0x7a8a9a, 0xa07850];
const GROUNDS: Rgb[] = [0x5a8a3a, 0x6e6e6a, 0x8a8a84, 0xc8b48a, 0x4a7a30];

function sampleBackground(rng: Rng, S: number, horizon: number, clutter: number): { bg: Background; backdrop: ColoredPoly[] } {
  const indoor = rng.chance(0.7);
  const out: ColoredPoly[] = [];
  const add = (poly: Poly, color: Rgb): void => {
    out.push({ poly, color });
  };
  const rect = (x1: number, y1: number, x2: number, y2: number, c: Rgb): void => add(rectPoly(x1, y1, x2, y2), c);
  let bg: Background;
  if (indoor) {
    const wall = jitter(rng, rng.pick(WALLS), 14);
    const floor = jitter(rng, rng.pick(FLOORS), 14);
    bg = {
      horizon,
      upperTop: scaleRgb(wall, rng.uniform(0.8, 0.95)),
      upperBottom: scaleRgb(wall, rng.uniform(0.98, 1.1)),
      lowerTop: scaleRgb(floor, rng.uniform(0.75, 0.9)),
      lowerBottom: scaleRgb(floor, rng.uniform(1.0, 1.15)),
    };
    // floor boards or tiles in perspective
    const pattern = rng.int(0, 2);
    const line = scaleRgb(floor, 0.72);
    if (pattern > 0) {
      const vx = rng.uniform(0.2, 0.8) * S;
      const n = rng.int(6, 12);
      for (let i = -n; i <= 2 * n; i++) {
        const xb = (i * S) / n;
        const xt = vx + (xb - vx) * 0.3;
        add([xt - 0.3, horizon, xt + 0.3, horizon, xb + 0.7, S, xb - 0.7], line);
      }
      if (pattern === 2) {
        for (let i = 1; i < 8; i++) {
          const y = horizon + (S - horizon) * (i / 8) ** 1.6;
          rect(0, y - 0.5, S, y + 0.5, line);
        }
      }
    }
    rect(0, horizon - 0.014 * S, S, horizon + 0.004 * S, jitter(rng, rng.pick([0xf2f2ee, 0x4a3a2a, 0x303030]), 8));
  } else {
    const ground = jitter(rng, rng.pick(GROUNDS), 14);
    const sky = hsv(rng.uniform(195, 225), rng.uniform(0.25, 0.6), rng.uniform(0.8, 0.98));
    bg = {
      horizon,
      upperTop: scaleRgb(sky, 0.85),
      upperBottom: mixRgb(sky, 0xffffff, 0.4),
      lowerTop: scaleRgb(ground, 0.8),
      lowerBottom: scaleRgb(ground, 1.1),
    };
    // distant buildings or tree line along the horizon
    let x = -rng.uniform(0, 0.1) * S;
    const trees = rng.chance(0.5);
    while (x < S) {
      const w = rng.uniform(0.08, 0.22) * S, h = rng.uniform(0.08, 0.3) * horizon;
      if (trees) add(ellipsePoly(x + w / 2, horizon, w * 0.6, h), jitter(rng, 0x4a6a3a, 16));
      else rect(x, horizon - h, x + w, horizon + 1, jitter(rng, rng.pick([0x9a9aa0, 0xb0a090, 0x8090a0]), 14));
      x += w * rng.uniform(0.7, 1.1);
    }
  }
  // furniture / street furniture standing at the back, behind everyone
  const count = Math.round(clutter * rng.uniform(2, 8));
  const backY = horizon + (0.02 + 0.06 * rng.next()) * (S - horizon);
  for (let i = 0; i < count; i++) {
    const kind = indoor ? rng.int(0, 5) : rng.int(0, 4);
    const cx = rng.uniform(0, 1) * S;
    const c = hsv(rng.uniform(0, 360), rng.uniform(0.1, 0.6), rng.uniform(0.25, 0.9));
    if (indoor && kind === 0) {
      // window
      const w = rng.uniform(0.12, 0.28) * S, h = rng.uniform(0.3, 0.55) * horizon, y = rng.uniform(0.08, 0.3) * horizon;
      const frame = jitter(rng, rng.pick([0xf4f4f0, 0x6a4a2a, 0x404040]), 8);
      rect(cx - w / 2, y, cx + w / 2, y + h, frame);
      rect(cx - w / 2 + 0.012 * S, y + 0.012 * S, cx + w / 2 - 0.012 * S, y + h - 0.012 * S, hsv(rng.uniform(190, 215), 0.3, 0.95));
      rect(cx - 0.006 * S, y, cx + 0.006 * S, y + h, frame);
    } else if (indoor && kind === 1) {
      // picture
      const w = rng.uniform(0.06, 0.16) * S, h = w * rng.uniform(0.6, 1.3), y = rng.uniform(0.1, 0.5) * horizon;
      rect(cx - w / 2, y, cx + w / 2, y + h, jitter(rng, 0x3a2a1a, 10));
      rect(cx - w / 2 + 0.01 * S, y + 0.01 * S, cx + w / 2 - 0.01 * S, y + h - 0.01 * S, c);
    } else if (indoor && kind === 2) {
      // door
      const w = rng.uniform(0.12, 0.18) * S, top = horizon - Math.min(horizon * 0.85, 0.45 * S);
      const col = jitter(rng, rng.pick([0x8a5a30, 0xe8e8e4, 0x5a3a20]), 10);
      rect(cx - w / 2, top, cx + w / 2, horizon + 0.005 * S, col);
      add(ellipsePoly(cx + w * 0.35, (top + horizon) / 2, 0.008 * S + 0.5, 0.008 * S + 0.5), 0xc8b060);
    } else if (indoor && kind === 3) {
      // cabinet with drawers
      const w = rng.uniform(0.14, 0.32) * S, h = rng.uniform(0.1, 0.28) * S;
      const col = jitter(rng, rng.pick([0x8a6040, 0xe0e0dc, 0x606468, 0xb09070]), 10);
      rect(cx - w / 2, backY - h, cx + w / 2, backY, col);
      const n = rng.int(2, 4);
      for (let k = 1; k < n; k++) rect(cx - w / 2, backY - h + (h * k) / n - 0.5, cx + w / 2, backY - h + (h * k) / n + 0.5, scaleRgb(col, 0.7));
    } else if (indoor && kind === 4) {
      // table
      const w = rng.uniform(0.18, 0.35) * S, h = rng.uniform(0.1, 0.16) * S;
      const col = jitter(rng, rng.pick([0x7a5030, 0xd8d0c0, 0x303030]), 10);
      rect(cx - w / 2, backY - h, cx + w / 2, backY - h + 0.025 * S, col);
      rect(cx - w / 2 + 0.01 * S, backY - h, cx - w / 2 + 0.03 * S, backY, scaleRgb(col, 0.8));
      rect(cx + w / 2 - 0.03 * S, backY - h, cx + w / 2 - 0.01 * S, backY, scaleRgb(col, 0.8));
    } else if (indoor) {
      // potted plant
      const w = rng.uniform(0.04, 0.08) * S;
      add([cx - w, backY - 1.4 * w, cx + w, backY - 1.4 * w, cx + 0.7 * w, backY, cx - 0.7 * w, backY], jitter(rng, 0xa05a30, 12));
      add(ellipsePoly(cx, backY - 2.6 * w, 1.6 * w, 1.5 * w), jitter(rng, 0x3a7a30, 16));
    } else if (kind === 0) {
      // tree
      const h = rng.uniform(0.25, 0.5) * S, w = rng.uniform(0.02, 0.04) * S;
      rect(cx - w / 2, backY - h, cx + w / 2, backY, jitter(rng, 0x5a3a20, 10));
      add(ellipsePoly(cx, backY - h, h * 0.35, h * 0.3), jitter(rng, 0x3a6a28, 18));
    } else if (kind === 1) {
      // bench
      const w = rng.uniform(0.15, 0.3) * S, h = 0.06 * S;
      const col = jitter(rng, rng.pick([0x8a6038, 0x2a4a2a, 0x505050]), 10);
      rect(cx - w / 2, backY - h, cx + w / 2, backY - h + 0.02 * S, col);
      rect(cx - w / 2, backY - 2 * h, cx + w / 2, backY - 2 * h + 0.02 * S, col);
      rect(cx - w / 2 + 0.01 * S, backY - 2 * h, cx - w / 2 + 0.025 * S, backY, 0x303030);
      rect(cx + w / 2 - 0.025 * S, backY - 2 * h, cx + w / 2 - 0.01 * S, backY, 0x303030);
    } else if (kind === 2) {
      // parked car
      const w = rng.uniform(0.25, 0.4) * S, h = w * 0.3;
      rect(cx - w / 2, backY - h, cx + w / 2, backY - 0.2 * h, c);
      add([cx - w * 0.3, backY - h, cx + w * 0.2, backY - h, cx + w * 0.1, backY - 1.6 * h, cx - w * 0.2, backY - 1.6 * h], scaleRgb(c, 0.85));
      for (const s of [-1, 1]) add(ellipsePoly(cx + s * w * 0.3, backY - 0.2 * h, 0.12 * w, 0.12 * w), 0x181818);
    } else if (kind === 3) {
      // lamp post
      const h = rng.uniform(0.35, 0.6) * S;
      rect(cx - 0.006 * S - 0.5, backY - h, cx + 0.006 * S + 0.5, backY, 0x2a2a2a);
      add(ellipsePoly(cx, backY - h, 0.025 * S, 0.015 * S), 0xf0e8c0);
    } else {
      // bush
      const w = rng.uniform(0.06, 0.14) * S;
      add(ellipsePoly(cx, backY - w * 0.5, w, w * 0.6), jitter(rng, 0x3e6e2e, 18));
    }
  }
  return { bg, backdrop: out };
}

// ---------------------------------------------------------------- occluder

/**
 * A crate, pillar or plant in front of part of a person or thing. It may hide up to half of a
 * box, never a box-centre pixel (the records' boxes stay amodal, the centre stays visible) and
 * never an interaction point (`keep`: the midpoint of subject and object box centres).
 */
function sampleOccluder(rng: Rng, entities: Entity[], keep: Array<[number, number]>, S: number): ColoredPoly[] {
  if (entities.length === 0) return [];
  const weights = entities.map((e) => (e.category === 'person' ? 3 : 1));
  for (let attempt = 0; attempt < 8; attempt++) {
    const target = entities[rng.weighted(weights)].box;
    const w = target[2] - target[0], h = target[3] - target[1];
    const kind = rng.int(0, 2);
    let polys: ColoredPoly[];
    if (kind === 0) {
      // crate hiding the lower part
      const top = target[3] - h * rng.uniform(0.15, 0.4);
      const x1 = target[0] - w * rng.uniform(-0.2, 0.3), x2 = target[2] + w * rng.uniform(-0.2, 0.3);
      const col = jitter(rng, rng.pick([0xb08850, 0x8a6a40, 0xc8a878]), 12);
      polys = [
        { poly: rectPoly(x1, top, x2, Math.min(S, target[3] + 0.02 * S)), color: col },
        { poly: rectPoly(x1, top, x2, top + Math.max(1, 0.012 * S)), color: scaleRgb(col, 0.7) },
      ];
    } else if (kind === 1) {
      // pillar hiding one side
      const pw = Math.max(2, w * rng.uniform(0.12, 0.22));
      const x1 = rng.chance(0.5) ? target[0] - pw * rng.uniform(0, 0.6) : target[2] - pw * rng.uniform(0.4, 1);
      polys = [{ poly: rectPoly(x1, 0, x1 + pw, S), color: jitter(rng, rng.pick([0xd8d8d0, 0x8a8a88, 0x6a4a30]), 10) }];
    } else {
      // plant in a corner
      const r = Math.max(w, h) * rng.uniform(0.15, 0.3);
      const cx = rng.chance(0.5) ? target[0] : target[2];
      polys = [{ poly: ellipsePoly(cx, target[3] - r * 0.6, r, r * 0.8), color: jitter(rng, 0x3a7a30, 16) }];
    }
    let ok = !keep.some(([x, y]) => polys.some((p) => polygonCovers(p.poly, x, y)));
    for (const e of entities) {
      const [px, py] = centrePixel(e.box);
      if (polys.some((p) => polygonCovers(p.poly, px + 0.5, py + 0.5))) ok = false;
      const ob = polygonBounds(polys[0].poly);
      const iw = Math.min(ob[2], e.box[2]) - Math.max(ob[0], e.box[0]);
      const ih = Math.min(ob[3], e.box[3]) - Math.max(ob[1], e.box[1]);
      const area = (e.box[2] - e.box[0]) * (e.box[3] - e.box[1]);
      if (iw > 0 && ih > 0 && iw * ih > 0.5 * area) ok = false;
      if (!ok) break;
    }
    if (ok) return polys;
  }
  return [];
}

// ---------------------------------------------------------------- the scene

function clipBox(b: Box, S: number): Box {
  const c = (v: number): number => Math.min(S, Math.max(0, v));
  return [c(b[0]), c(b[1]), c(b[2]), c(b[3])];
}

export function layoutScene(seed: number, index: number, opts: SynthOptions): SceneLayout {
  checkSynthOptions(opts);
  const rng = new Rng(seed, 'scene', index);
  const S = opts.image_size;
  const { anomalous, plans } = planGroups(rng, opts);
  const horizon = S * rng.uniform(0.3, 0.46);
  const P = perspective(rng, S, horizon);
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
