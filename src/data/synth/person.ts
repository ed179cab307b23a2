import { Rng } from '../rng';
import {
  Poly, Rgb, capsulePoly, ellipseArcPoly, ellipsePoly, rgb, scaleRgb,
} from './raster';

/**
 * People: a front-facing figure (head, torso, two-segment arms and legs) posed by angles or by
 * two-link inverse kinematics, so a hand or a foot lands exactly on an object or a victim.
 * Every length is a fraction of the person's nominal height H (ground to top of the head).
 */

export interface Pt {
  x: number;
  y: number;
}

/** Body proportions in units of H. */
export const BODY = {
  headRx: 0.052,
  headRy: 0.062,
  /** neck base to head centre along the torso axis */
  headUp: 0.095,
  /** hip centre to neck base */
  torso: 0.33,
  shoulderSide: 0.105,
  shoulderUp: 0.3,
  upperArm: 0.16,
  foreArm: 0.14,
  handR: 0.028,
  fistR: 0.034,
  hipSide: 0.052,
  thigh: 0.245,
  shin: 0.235,
  ankleUp: 0.025,
  foot: 0.065,
} as const;

export interface PersonStyle {
  skin: Rgb;
  shirt: Rgb;
  /** Colour of the forearms: the shirt for long sleeves, else the skin. */
  forearm: Rgb;
  pants: Rgb;
  shoes: Rgb;
  hair: Rgb;
  hairStyle: 'short' | 'long' | 'cap' | 'bald';
  cap: Rgb;
}

const SKINS: Rgb[] = [0xffdbac, 0xf1c27d, 0xe0ac69, 0xc68642, 0xa66a3f, 0x8d5524, 0x5c3a21];
const HAIRS: Rgb[] = [0x1b1410, 0x3b2a1e, 0x6a4a2b, 0xb08040, 0xd8c090, 0x8a8a8a, 0x401818];
const PANTS: Rgb[] = [0x2c3e66, 0x1f2630, 0x4a4a4a, 0xb8a67a, 0x5a4030, 0x3a5a3a, 0x6b7b8c, 0x202020];

function jitter(rng: Rng, c: Rgb, amount: number): Rgb {
  return rgb(
    ((c >> 16) & 255) + rng.uniform(-amount, amount),
    ((c >> 8) & 255) + rng.uniform(-amount, amount),
    (c & 255) + rng.uniform(-amount, amount),
  );
}

/** Colour from hue (degrees), saturation and value in [0, 1]. */
export function hsv(h: number, s: number, v: number): Rgb {
  const c = v * s;
  const hp = (((h % 360) + 360) % 360) / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  let r = 0, g = 0, b = 0;
  if (hp < 1) [r, g, b] = [c, x, 0];
  else if (hp < 2) [r, g, b] = [x, c, 0];
  else if (hp < 3) [r, g, b] = [0, c, x];
  else if (hp < 4) [r, g, b] = [0, x, c];
  else if (hp < 5) [r, g, b] = [x, 0, c];
  else [r, g, b] = [c, 0, x];
  const m = v - c;
  return rgb((r + m) * 255, (g + m) * 255, (b + m) * 255);
}

export function samplePersonStyle(rng: Rng): PersonStyle {
  const skin = jitter(rng, rng.pick(SKINS), 10);
  const shirt = rng.chance(0.15)
    ? hsv(0, 0, rng.uniform(0.1, 0.95)) // black, grey or white shirts
    : hsv(rng.uniform(0, 360), rng.uniform(0.35, 0.9), rng.uniform(0.35, 0.95));
  const longSleeves = rng.chance(0.5);
  const hairStyle = rng.pick(['short', 'short', 'long', 'cap', 'bald'] as const);
  return {
    skin,
    shirt,
    forearm: longSleeves ? shirt : skin,
    pants: jitter(rng, rng.pick(PANTS), 12),
    shoes: jitter(rng, rng.chance(0.7) ? 0x1a1a1a : 0xe8e8e8, 10),
    hair: jitter(rng, rng.pick(HAIRS), 8),
    hairStyle,
    cap: hsv(rng.uniform(0, 360), rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.9)),
  };
}

/** Arm: absolute angles in the facing frame (0 = down, pi/2 = forward, pi = up, -pi/2 = back) or a hand target (image px). */
export type ArmSpec = { a1: number; a2: number } | { x: number; y: number };

/** Leg: foot position in units of H in the facing frame, relative to the hip joint (dx forward) and the ground (lift). */
export interface LegSpec {
  dx: number;
  lift: number;
}

export interface Pose {
  /** Upper-body lean about the hip, radians; positive leans toward the facing side. */
  lean: number;
  /** [front arm (facing side), back arm] */
  arms: [ArmSpec, ArmSpec];
  /** [front leg, back leg] */
  legs: [LegSpec, LegSpec];
  /** The front hand is a fist (punch). */
  fist?: boolean;
}

export interface PersonSpec {
  x: number;
  groundY: number;
  H: number;
  facing: 1 | -1;
  style: PersonStyle;
  pose: Pose;
}

export interface Skeleton {
  hip: Pt;
  neck: Pt;
  head: Pt;
  /** unit vector up the torso, and toward the facing side across it */
  up: Pt;
  side: Pt;
  shoulder: [Pt, Pt];
  elbow: [Pt, Pt];
  hand: [Pt, Pt];
  hipJoint: [Pt, Pt];
  knee: [Pt, Pt];
  ankle: [Pt, Pt];
  toe: [Pt, Pt];
}

const add = (a: Pt, b: Pt, s = 1): Pt => ({ x: a.x + b.x * s, y: a.y + b.y * s });
const dist = (a: Pt, b: Pt): number => Math.hypot(b.x - a.x, b.y - a.y);

/**
 * Two-link IK: from `root` with segment lengths l1, l2 toward `target` (clamped to the reach);
 * `prefer` picks between the two mirror solutions by a score of the middle joint (larger wins).
 */
function solveTwoLink(root: Pt, target: Pt, l1: number, l2: number, prefer: (p: Pt) => number): [Pt, Pt] {
  let dx = target.x - root.x, dy = target.y - root.y;
  let d = Math.hypot(dx, dy);
  if (d < 1e-9) {
    // target on the root: fold straight down
    dx = 0;
    dy = 1;
    d = 1;
  }
  const dc = Math.min(Math.max(d, Math.abs(l1 - l2) + 1e-6), (l1 + l2) * 0.999);
  const alpha = Math.atan2(dy, dx);
  const cosA = Math.min(1, Math.max(-1, (l1 * l1 + dc * dc - l2 * l2) / (2 * l1 * dc)));
  const a = Math.acos(cosA);
  const end: Pt = { x: root.x + (dx / d) * dc, y: root.y + (dy / d) * dc };
  const m1: Pt = { x: root.x + l1 * Math.cos(alpha + a), y: root.y + l1 * Math.sin(alpha + a) };
  const m2: Pt = { x: root.x + l1 * Math.cos(alpha - a), y: root.y + l1 * Math.sin(alpha - a) };
  return [prefer(m1) >= prefer(m2) ? m1 : m2, end];
}

/** Direction of an angle in the facing frame, in image coordinates. */
function dirOf(a: number, f: number): Pt {
  return { x: f * Math.sin(a), y: Math.cos(a) };
}

export function skeleton(p: PersonSpec): Skeleton {
  const { H, facing: f, pose } = p;
  const legLen = (BODY.thigh + BODY.shin) * 0.97;
  // the hip sits as high as the standing legs allow: a wide stance lowers it
  let v = Infinity;
  for (const leg of pose.legs) {
    if (leg.lift > 0.02) continue;
    const dx = Math.min(Math.abs(leg.dx), 0.85 * legLen);
    v = Math.min(v, Math.sqrt(legLen * legLen - dx * dx));
  }
  if (!Number.isFinite(v)) v = legLen;
  const hip: Pt = { x: p.x, y: p.groundY - (BODY.ankleUp + v) * H };
  const up: Pt = { x: f * Math.sin(pose.lean), y: -Math.cos(pose.lean) };
  const side: Pt = { x: f * Math.cos(pose.lean), y: Math.sin(pose.lean) };
  const neck = add(hip, up, BODY.torso * H);
  const head = add(neck, up, BODY.headUp * H);
  const shoulderMid = add(hip, up, BODY.shoulderUp * H);
  const shoulder: [Pt, Pt] = [
    add(shoulderMid, side, BODY.shoulderSide * H),
    add(shoulderMid, side, -BODY.shoulderSide * H),
  ];
  const elbow: Pt[] = [];
  const hand: Pt[] = [];
  for (let i = 0; i < 2; i++) {
    const spec = pose.arms[i];
    const l1 = BODY.upperArm * H, l2 = (BODY.foreArm + 0.6 * BODY.handR) * H;
    if ('a1' in spec) {
      const e = add(shoulder[i], dirOf(spec.a1, f), l1);
      elbow.push(e);
      hand.push(add(e, dirOf(spec.a2, f), l2));
    } else {
      const [e, h] = solveTwoLink(shoulder[i], spec, l1, l2, (m) => m.y); // elbow down
      elbow.push(e);
      hand.push(h);
    }
  }
  const hipJoint: [Pt, Pt] = [
    { x: hip.x + f * BODY.hipSide * H, y: hip.y },
    { x: hip.x - f * BODY.hipSide * H, y: hip.y },
  ];
  const knee: Pt[] = [];
  const ankle: Pt[] = [];
  const toe: Pt[] = [];
  for (let i = 0; i < 2; i++) {
    const leg = pose.legs[i];
    const target: Pt = {
      x: hipJoint[i].x + f * leg.dx * H,
      y: p.groundY - (BODY.ankleUp + leg.lift) * H,
    };
    // knee bends forward
    const [k, a] = solveTwoLink(hipJoint[i], target, BODY.thigh * H, BODY.shin * H, (m) => f * m.x);
    knee.push(k);
    ankle.push(a);
    // the foot is perpendicular to the shin: forward when standing, toes up in a kick
    const sl = Math.max(1e-9, dist(k, a));
    const sx = (a.x - k.x) / sl, sy = (a.y - k.y) / sl;
    const score = (x: number, y: number): number => f * x - 0.5 * y;
    const fwd: Pt = score(-sy, sx) >= score(sy, -sx) ? { x: -sy, y: sx } : { x: sy, y: -sx };
    toe.push(add(a, fwd, BODY.foot * H));
  }
  return {
    hip, neck, head, up, side, shoulder,
    elbow: [elbow[0], elbow[1]],
    hand: [hand[0], hand[1]],
    hipJoint,
    knee: [knee[0], knee[1]],
    ankle: [ankle[0], ankle[1]],
    toe: [toe[0], toe[1]],
  };
}

export interface ColoredPoly {
  poly: Poly;
  color: Rgb;
}

/** Minimum capsule radius in pixels, so limbs stay visible at 64-128 px. */
const MIN_R = 0.9;

function limb(a: Pt, b: Pt, r0: number, r1: number): Poly {
  return capsulePoly(a.x, a.y, Math.max(MIN_R, r0), b.x, b.y, Math.max(MIN_R, r1));
}

/** The person's polygons in drawing order (legs, pelvis, torso, head, arms). */
export function personPolys(p: PersonSpec, sk: Skeleton): ColoredPoly[] {
  const { H, style: st } = p;
  const out: ColoredPoly[] = [];
  const legOrder = [1, 0];
  for (const i of legOrder) {
    out.push({ poly: limb(sk.hipJoint[i], sk.knee[i], 0.043 * H, 0.034 * H), color: st.pants });
    out.push({ poly: limb(sk.knee[i], sk.ankle[i], 0.034 * H, 0.027 * H), color: st.pants });
    out.push({ poly: limb(sk.ankle[i], sk.toe[i], 0.024 * H, 0.02 * H), color: st.shoes });
  }
  // pelvis (pants), not leaning
  const hx = sk.hip.x, hy = sk.hip.y;
  out.push({
    poly: [hx - 0.098 * H, hy - 0.03 * H, hx + 0.098 * H, hy - 0.03 * H, hx + 0.092 * H, hy + 0.055 * H, hx - 0.092 * H, hy + 0.055 * H],
    color: st.pants,
  });
  // torso outline in (side, up) units relative to the hip centre
  const torso = [
    -0.095, -0.015, 0.095, -0.015, 0.1, 0.15, 0.125, 0.27, 0.115, 0.315, 0.085, 0.335,
    0.035, 0.345, -0.035, 0.345, -0.085, 0.335, -0.115, 0.315, -0.125, 0.27, -0.1, 0.15,
  ];
  const tp: Poly = [];
  for (let i = 0; i < torso.length; i += 2) {
    const s = torso[i] * H, u = torso[i + 1] * H;
    tp.push(hx + sk.side.x * s + sk.up.x * u, hy + sk.side.y * s + sk.up.y * u);
  }
  out.push({ poly: tp, color: st.shirt });
  // belt line keeps shirt and pants apart visually
  out.push({
    poly: limb(
      { x: hx - 0.094 * H, y: hy - 0.012 * H }, { x: hx + 0.094 * H, y: hy - 0.012 * H }, 0.009 * H, 0.009 * H,
    ),
    color: scaleRgb(st.pants, 0.6),
  });
  // neck and head
  out.push({ poly: limb(sk.neck, add(sk.neck, sk.up, 0.05 * H), 0.024 * H, 0.024 * H), color: scaleRgb(st.skin, 0.92) });
  const rx = BODY.headRx * H, ry = BODY.headRy * H;
  // rotate the head with the lean: up = (0, -1) rotated by headAngle
  const headAngle = Math.atan2(sk.up.x, -sk.up.y);
  if (st.hairStyle === 'long') {
    const c = add(sk.head, sk.up, -0.03 * H);
    out.push({ poly: ellipsePoly(c.x, c.y, rx * 1.18, ry * 1.35, headAngle), color: st.hair });
  }
  out.push({ poly: ellipsePoly(sk.head.x, sk.head.y, rx, ry, headAngle), color: st.skin });
  // hair or cap: the upper part of a slightly larger ellipse, in the head frame (t from pi to 2 pi is "up")
  const hc = add(sk.head, sk.up, 0.012 * H);
  if (st.hairStyle === 'short' || st.hairStyle === 'long') {
    out.push({ poly: ellipseArcPoly(hc.x, hc.y, rx * 1.08, ry * 1.0, headAngle, Math.PI - 0.25, 2 * Math.PI + 0.25), color: st.hair });
  } else if (st.hairStyle === 'cap') {
    out.push({ poly: ellipseArcPoly(hc.x, hc.y, rx * 1.08, ry * 0.95, headAngle, Math.PI - 0.05, 2 * Math.PI + 0.05), color: st.cap });
    out.push({ poly: limb(hc, add(hc, sk.side, 0.1 * H), 0.012 * H, 0.01 * H), color: scaleRgb(st.cap, 0.8) });
  }
  // an eye on the facing side shows where the person looks
  const eyeR = 0.009 * H;
  if (eyeR >= 0.5) {
    const e = add(add(sk.head, sk.side, 0.03 * H), sk.up, 0.004 * H);
    out.push({ poly: ellipsePoly(e.x, e.y, Math.max(0.7, eyeR), Math.max(0.7, eyeR)), color: 0x181818 });
  }
  // arms: back first, the acting front arm on top
  for (const i of [1, 0]) {
    const handR = (i === 0 && p.pose.fist ? BODY.fistR : BODY.handR) * H;
    out.push({ poly: limb(sk.shoulder[i], sk.elbow[i], 0.03 * H, 0.026 * H), color: st.shirt });
    out.push({ poly: limb(sk.elbow[i], sk.hand[i], 0.025 * H, 0.02 * H), color: st.forearm });
    const hr = Math.max(1, handR);
    out.push({ poly: ellipsePoly(sk.hand[i].x, sk.hand[i].y, hr, hr), color: i === 0 && p.pose.fist ? scaleRgb(st.skin, 0.9) : st.skin });
  }
  return out;
}

/** Torso-front point at a fraction t (0 = hip, 1 = neck) of the torso, on the side nearest `towardX`. */
export function torsoFront(sk: Skeleton, H: number, t: number, towardX: number): Pt {
  const c = add(sk.hip, sk.up, t * BODY.torso * H);
  const halfW = (0.095 + 0.02 * t) * H;
  const s = Math.sign(towardX - c.x) || 1;
  return { x: c.x + s * halfW, y: c.y };
}
