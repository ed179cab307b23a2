import type { Box } from '../record';
import { ColoredPoly, PersonSpec, Pt, Skeleton, personPolys, skeleton } from './person';
import { Rgb, polygonBounds, polygonCovers, translatePolygon } from './raster';
import { ThingSpec, thingPolys } from './things';

/**
 * Entities: one person or thing of a record, as coloured polygons plus its box. The builders
 * guarantee what the data-loader tests rely on: the pixel at the box centre is painted by the
 * entity itself (people counterbalance with free limbs, thin things turn slightly until it is).
 */

/** One drawable object of the record: its polygons, main colour and tight box. */
export interface Entity {
  category: string;
  polys: ColoredPoly[];
  /** The main colour (a person's shirt, a knife's blade ...). */
  primary: Rgb;
  box: Box;
}

/**
 * The entity's box: the polygons are translated by less than half a pixel so that the box centre
 * is an integer point k, and the box is stored as k +- a half-size rounded up to 1/4 px. So
 * (x1 + x2) / 2 is exactly k in floating point (and after printing with two decimals), and the
 * box-centre pixel, floor or round alike, is the one the scene builder checked.
 */
export function makeEntity(category: string, polys: ColoredPoly[], primary: Rgb): { e: Entity; dx: number; dy: number } {
  let x1 = Infinity, y1 = Infinity, x2 = -Infinity, y2 = -Infinity;
  for (const p of polys) {
    const b = polygonBounds(p.poly);
    x1 = Math.min(x1, b[0]);
    y1 = Math.min(y1, b[1]);
    x2 = Math.max(x2, b[2]);
    y2 = Math.max(y2, b[3]);
  }
  const cx = (x1 + x2) / 2, cy = (y1 + y2) / 2;
  const kx = Math.round(cx), ky = Math.round(cy);
  const dx = kx - cx, dy = ky - cy;
  for (const p of polys) translatePolygon(p.poly, dx, dy);
  const hw = Math.ceil(((x2 - x1) / 2) * 4) / 4, hh = Math.ceil(((y2 - y1) / 2) * 4) / 4;
  return { e: { category, polys, primary, box: [kx - hw, ky - hh, kx + hw, ky + hh] }, dx, dy };
}

/** The pixel holding the box centre, floor((x1+x2)/2), floor((y1+y2)/2), sampled at its centre. */
export function centrePixel(box: Box): [number, number] {
  return [Math.floor((box[0] + box[2]) / 2), Math.floor((box[1] + box[3]) / 2)];
}

/** Whether the entity's own polygons paint its box-centre pixel. */
export function centreCovered(e: Entity): boolean {
  const [px, py] = centrePixel(e.box);
  for (const p of e.polys) if (polygonCovers(p.poly, px + 0.5, py + 0.5)) return true;
  return false;
}

function shiftPt(p: Pt, dx: number, dy: number): Pt {
  return { x: p.x + dx, y: p.y + dy };
}

function shiftSkeleton(sk: Skeleton, dx: number, dy: number): Skeleton {
  const s = (p: Pt): Pt => shiftPt(p, dx, dy);
  const s2 = (a: [Pt, Pt]): [Pt, Pt] => [s(a[0]), s(a[1])];
  return {
    hip: s(sk.hip), neck: s(sk.neck), head: s(sk.head), up: sk.up, side: sk.side,
    shoulder: s2(sk.shoulder), elbow: s2(sk.elbow), hand: s2(sk.hand),
    hipJoint: s2(sk.hipJoint), knee: s2(sk.knee), ankle: s2(sk.ankle), toe: s2(sk.toe),
  };
}

export interface BuiltPerson {
  entity: Entity;
  sk: Skeleton;
  spec: PersonSpec;
}

/** Pose changes of limbs the interaction leaves free, tried in order until the box centre lies on the body. */
const BALANCE_ARMS: Array<[number, number]> = [
  [-0.45, -0.3], [-0.75, -0.6], [-1.05, -0.9], [-1.35, -1.2], [-1.6, -1.5], [0.5, 0.7], [0.9, 1.1],
];
const BALANCE_LEGS = [-0.16, -0.26, -0.36, 0.16, 0.26];

/**
 * Builds a person; if the box centre would fall off the body (an arm or a leg stretched to one
 * side), swings the free back arm and steps with the free back leg to counterbalance -- as
 * people do -- until the body covers the centre pixel.
 */
export function buildPerson(spec: PersonSpec, free: { arm: boolean; leg: boolean }): BuiltPerson {
  const build = (s: PersonSpec): BuiltPerson => {
    const sk = skeleton(s);
    const { e, dx, dy } = makeEntity('person', personPolys(s, sk), s.style.shirt);
    return { entity: e, sk: shiftSkeleton(sk, dx, dy), spec: s };
  };
  const first = build(spec);
  if (centreCovered(first.entity)) return first;
  const withPose = (arm: [number, number] | null, leg: number | null): PersonSpec => ({
    ...spec,
    pose: {
      ...spec.pose,
      arms: arm ? [spec.pose.arms[0], { a1: arm[0], a2: arm[1] }] : spec.pose.arms,
      legs: leg !== null ? [spec.pose.legs[0], { dx: leg, lift: 0 }] : spec.pose.legs,
    },
  });
  const tries: Array<[[number, number] | null, number | null]> = [];
  if (free.arm) for (const a of BALANCE_ARMS) tries.push([a, null]);
  if (free.leg) for (const l of BALANCE_LEGS) tries.push([null, l]);
  if (free.arm && free.leg) {
    for (const l of BALANCE_LEGS.slice(0, 3)) for (const a of BALANCE_ARMS.slice(1, 5)) tries.push([a, l]);
  }
  for (const [a, l] of tries) {
    const b = build(withPose(a, l));
    if (centreCovered(b.entity)) return b;
  }
  return first;
}

/**
 * Builds a thing; if its own shape misses the centre pixel (thin shapes at low resolution),
 * turns it slightly, then enlarges it slightly.
 */
export function buildThing(spec: ThingSpec): Entity {
  const make = (angle: number, grow: number): Entity =>
    makeEntity(
      spec.category,
      thingPolys({ ...spec, angle, style: { ...spec.style, size: spec.style.size * grow } }),
      spec.style.colors[0],
    ).e;
  const first = make(spec.angle, 1);
  if (centreCovered(first)) return first;
  for (const grow of [1, 1.12, 1.25]) {
    for (const d of [0.06, -0.06, 0.12, -0.12, 0.2, -0.2]) {
      const e = make(spec.angle + d, grow);
      if (centreCovered(e)) return e;
    }
  }
  return first;
}
