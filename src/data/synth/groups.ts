import { Rng } from '../rng';
import { Entity, buildPerson, buildThing } from './entity';
import { BODY, PersonSpec, PersonStyle, Pose, Pt, Skeleton, samplePersonStyle, skeleton, torsoFront } from './person';
import { Poly, ellipsePoly } from './raster';
import { ThingCategory, ThingSpec, ThingStyle, sampleThingStyle } from './things';

/**
 * Interaction groups: one person alone (with or without an object), two people interacting, or
 * an object lying on the floor. A plan draws all its random choices up front; `realize` then
 * lays the group out deterministically at any position and scale, so the scene can try
 * placements without touching the random stream.
 */

/** An HOI between entities of one group (indices into `entities`). */
export interface LocalHoi {
  subject: number;
  object: number;
  verb: string;
}

export interface GroupBuild {
  /** In drawing order. */
  entities: Entity[];
  hois: LocalHoi[];
  /** Floor shadows (multiplied onto the background). */
  shadows: Poly[];
}

export interface GroupPlan {
  /** e.g. `hold:cup`, `stab`, `floor:knife`, `person` (debugging). */
  kind: string;
  /** Must be placed even if it overlaps other groups (it carries the image label or the hard negative). */
  required: boolean;
  /** Lays the group out with its first person's feet at (x, groundY) and reference height H. */
  realize(x: number, groundY: number, H: number): GroupBuild;
}

// ---------------------------------------------------------------- poses

/** Image angle of a direction at elevation e (radians above horizontal) toward facing side f. */
function elevAngle(f: number, e: number): number {
  return Math.atan2(-Math.sin(e), f * Math.cos(e));
}

/** Grip side that hangs below the axis (gun grip, knife edge). */
function mirrorFor(angle: number): 1 | -1 {
  return Math.cos(angle) >= 0 ? 1 : -1;
}

const lerp = (a: number, b: number, t: number): number => a + (b - a) * t;

/** Random numbers drawn at plan time, consumed by realize in a fixed order. */
class Draws {
  private readonly v: number[];
  private i = 0;
  constructor(rng: Rng, n = 24) {
    this.v = Array.from({ length: n }, () => rng.next());
  }
  /** Next uniform in [a, b). */
  u(a: number, b: number): number {
    const t = this.v[this.i % this.v.length];
    this.i++;
    return lerp(a, b, t);
  }
  reset(): void {
    this.i = 0;
  }
}

interface Actor {
  style: PersonStyle;
  facing: 1 | -1;
  /** individual height factor */
  hf: number;
  walking: boolean;
}

function sampleActor(rng: Rng, facing?: 1 | -1): Actor {
  return {
    style: samplePersonStyle(rng),
    facing: facing ?? (rng.chance(0.5) ? 1 : -1),
    hf: rng.uniform(0.92, 1.06),
    walking: rng.chance(0.4),
  };
}

/** Standing or walking legs and relaxed arms. */
function basePose(a: Actor, d: Draws): Pose {
  const stride = a.walking ? d.u(0.09, 0.17) : d.u(0.0, 0.035);
  const swing = a.walking ? d.u(0.1, 0.3) : d.u(0.0, 0.12);
  return {
    lean: d.u(-0.03, 0.05),
    arms: [
      { a1: 0.06 + (a.walking ? -swing : swing), a2: 0.2 + (a.walking ? -swing * 0.5 : swing) },
      { a1: -0.06 - swing, a2: -0.12 - swing * 0.6 },
    ],
    legs: [
      { dx: stride, lift: 0 },
      { dx: -stride, lift: 0 },
    ],
  };
}

function stance(d: Draws, front: [number, number], back: [number, number]): Pose['legs'] {
  return [
    { dx: d.u(front[0], front[1]), lift: 0 },
    { dx: d.u(back[0], back[1]), lift: 0 },
  ];
}

function shadowOf(x: number, gy: number, H: number): Poly {
  return ellipsePoly(x, gy - 0.005 * H, 0.2 * H, 0.032 * H);
}

function personSpec(a: Actor, x: number, gy: number, H: number, pose: Pose): PersonSpec {
  return { x, groundY: gy, H: H * a.hf, facing: a.facing, style: a.style, pose };
}

// ---------------------------------------------------------------- one person

export type SoloVerb = 'hold' | 'carry' | 'talk_on' | 'throw' | 'kick';

/**
 * One person, with `verb` on a thing of `category`, or standing by (verb null). `objectScale`
 * (the object_scale option) enlarges the thing; offsets between hand and thing grow with it.
 */
export function soloPlan(
  rng: Rng, verb: SoloVerb | null, category: ThingCategory | null, required: boolean, objectScale = 1,
): GroupPlan {
  const a = sampleActor(rng);
  const ts: ThingStyle | null = category ? sampleThingStyle(category, rng, objectScale) : null;
  // the thing's scale factor; every term below that uses it vanishes exactly (x * 1, + 0) at 1
  const k = ts ? ts.scale : 1;
  const d = new Draws(rng);
  const variant = rng.int(0, 1);
  return {
    kind: verb ? `${verb}:${category}` : 'person',
    required,
    realize(x, gy, Href) {
      d.reset();
      const H = Href * a.hf;
      const f = a.facing;
      const pose = basePose(a, d);
      const free = { arm: true, leg: true };
      const base = skeleton(personSpec(a, x, gy, Href, pose));
      const sh = base.shoulder[0];
      let thing: ((p: { sk: Skeleton; H: number }) => ThingSpec) | null = null;
      const T = (cat: ThingCategory, x0: number, y0: number, angle: number, mirror: 1 | -1, Hs: number): ThingSpec => ({
        category: cat, x: x0, y: y0, angle, H: Hs, mirror, style: ts as ThingStyle,
      });
      if (verb === 'hold' && category) {
        const dx = d.u(0.1, 0.2);
        let dy = d.u(0.14, 0.26);
        if (category === 'phone') dy = d.u(0.06, 0.12);
        if (category === 'bag') dy = d.u(0.18, 0.26);
        pose.arms[0] = { x: sh.x + f * dx * H, y: sh.y + dy * H };
        // knife forward (cutting, showing), gun lowered, bat upright or resting tip-down
        const e = category === 'knife' ? d.u(-0.7, 0.5)
          : category === 'gun' ? d.u(-1.45, -0.7)
          : variant === 0 ? d.u(1.2, 1.5) : d.u(-1.5, -1.15);
        thing = ({ sk, H: h }) => {
          const hand = sk.hand[0];
          switch (category) {
            case 'knife':
            case 'gun':
            case 'bat': {
              const ang = elevAngle(f, e);
              return T(category, hand.x, hand.y, ang, mirrorFor(ang), h);
            }
            case 'cup': // the hand at the handle
              return T(category, hand.x + f * 0.035 * k * h, hand.y - 0.01 * k * h, -Math.PI / 2 + d.u(-0.1, 0.1), f > 0 ? -1 : 1, h);
            case 'bag':
              return T(category, hand.x, hand.y, Math.PI / 2 + d.u(-0.1, 0.1), 1, h);
            case 'ball': {
              const r = 0.055 * (ts as ThingStyle).size * h;
              return T(category, hand.x + f * 0.3 * r, hand.y - 0.75 * r, d.u(0, 6.28), 1, h);
            }
            default: // bottle, phone: upright in the hand
              return T(category, hand.x, hand.y - 0.01 * k * h, -Math.PI / 2 + f * d.u(-0.05, 0.3), 1, h);
          }
        };
      } else if (verb === 'carry' && category) {
        if (category === 'bat') {
          // hand at the shoulder, the bat rising beside the head and back over the shoulder
          pose.arms[0] = { x: sh.x + f * d.u(0.03, 0.05) * H, y: sh.y + d.u(0.02, 0.06) * H };
          const ang = elevAngle(f, d.u(1.65, 1.95));
          thing = ({ sk, H: h }) => T('bat', sk.hand[0].x, sk.hand[0].y, ang, 1, h);
        } else if (category === 'ball') {
          const s = (ts as ThingStyle).size;
          const r = 0.055 * s * H;
          const c: Pt = { x: base.hipJoint[0].x + f * (0.06 * H + r), y: base.hip.y - 0.06 * H };
          pose.arms[0] = { x: c.x + f * 0.2 * r, y: c.y + 0.6 * r };
          thing = ({ sk, H: h }) => T('ball', sk.hand[0].x - f * 0.2 * r, sk.hand[0].y - 0.6 * r, 0.3, 1, h);
        } else {
          // bag or bottle hanging from a lowered hand at the side
          const a1 = d.u(0.08, 0.2);
          pose.arms[0] = { a1, a2: a1 + d.u(0.0, 0.12) };
          thing = ({ sk, H: h }) =>
            category === 'bag'
              ? T('bag', sk.hand[0].x, sk.hand[0].y, Math.PI / 2 + d.u(-0.05, 0.05), 1, h)
              : T(category, sk.hand[0].x, sk.hand[0].y + 0.07 * (ts as ThingStyle).size * h, -Math.PI / 2, 1, h);
        }
      } else if (verb === 'talk_on') {
        // a larger phone moves out so that its near edge stays at the cheek (0.039 H: its half-width
        // across the face at natural size), the hand with it
        const out = 0.039 * (k - 1);
        pose.arms[0] = { x: base.head.x + f * (0.045 + out) * H, y: base.head.y + 0.055 * H };
        thing = ({ sk, H: h }) =>
          T('phone', sk.head.x + f * (0.055 + out) * h, sk.head.y + 0.012 * h, -Math.PI / 2 + f * d.u(0.25, 0.45), 1, h);
      } else if (verb === 'throw') {
        pose.legs = stance(d, [0.1, 0.16], [-0.18, -0.1]);
        pose.lean = d.u(-0.08, 0.02);
        pose.arms[0] = { x: sh.x + f * d.u(0.06, 0.16) * H, y: sh.y - d.u(0.24, 0.3) * H };
        pose.arms[1] = { a1: d.u(-1.0, -0.6), a2: d.u(-0.9, -0.4) };
        const fx = d.u(0.14, 0.32), fy = d.u(0.02, 0.14);
        thing = ({ sk, H: h }) => T('ball', sk.hand[0].x + f * fx * h, sk.hand[0].y - fy * h, 0.5, 1, h);
      } else if (verb === 'kick') {
        pose.legs = [
          { dx: d.u(0.2, 0.3), lift: d.u(0.05, 0.14) },
          { dx: d.u(-0.08, -0.02), lift: 0 },
        ];
        pose.lean = d.u(-0.12, -0.03);
        pose.arms = [{ a1: d.u(0.35, 0.7), a2: d.u(0.5, 0.9) }, { a1: d.u(-0.9, -0.45), a2: d.u(-0.8, -0.3) }];
        free.leg = false;
        thing = ({ sk, H: h }) => {
          const r = 0.055 * (ts as ThingStyle).size * h;
          return T('ball', sk.toe[0].x + f * r * 0.95, sk.toe[0].y - r * 0.35, 0.2, 1, h);
        };
      } else if (variant === 1 && !a.walking) {
        // waving with the front arm
        pose.arms[0] = { a1: d.u(2.3, 2.8), a2: d.u(2.8, 3.3) };
      }
      const person = buildPerson(personSpec(a, x, gy, Href, pose), free);
      const entities: Entity[] = [person.entity];
      const hois: LocalHoi[] = [];
      if (thing) {
        entities.push(buildThing(thing({ sk: person.sk, H })));
        hois.push({ subject: 0, object: 1, verb: verb as string });
      }
      return { entities, hois, shadows: [shadowOf(x, gy, H)] };
    },
  };
}

// ---------------------------------------------------------------- two people

/**
 * Giver hands a thing to a receiver; HOI (giver, hand_over, thing). A thing enlarged by
 * `objectScale` moves the two people apart so that each hand stays where it was on the thing.
 */
export function handOverPlan(rng: Rng, category: ThingCategory, required: boolean, objectScale = 1): GroupPlan {
  const a = sampleActor(rng);
  const b = sampleActor(rng, a.facing === 1 ? -1 : 1);
  a.walking = false;
  b.walking = false;
  const ts = sampleThingStyle(category, rng, objectScale);
  const d = new Draws(rng);
  return {
    kind: `hand_over:${category}`,
    required,
    realize(x, gy, H) {
      d.reset();
      const f = a.facing;
      const s = ts.size * H;
      // half-gap between the two hands, and the thing's anchor relative to the middle point M
      let gap = 0.03 * s;
      // the thing's half-width between the hands, where they hold its sides (null: they hold it
      // along its axis or by the handle, where the gap grows with the thing)
      let side: number | null = null;
      let angle = -Math.PI / 2;
      let anchorDx: number | null = null;
      let mirror: 1 | -1 = 1;
      switch (category) {
        case 'knife':
          angle = f > 0 ? Math.PI : 0; // tip toward the giver, handle to the receiver
          anchorDx = f * 0.04 * s;
          gap = 0.05 * s;
          mirror = mirrorFor(angle);
          break;
        case 'bat':
          angle = f > 0 ? Math.PI : 0;
          anchorDx = f * 0.15 * s;
          gap = 0.16 * s;
          break;
        case 'bag':
          angle = Math.PI / 2;
          gap = 0.012 * s;
          break;
        case 'ball':
          gap = 0.06 * s;
          side = 0.055 * s;
          break;
        case 'cup':
          mirror = f > 0 ? -1 : 1;
          gap = 0.04 * s;
          side = 0.029 * s;
          break;
        default: // bottle, phone
          gap = 0.035 * s;
          side = (category === 'phone' ? 0.024 : 0.026) * s;
      }
      // object_scale: the hands holding the sides keep their natural distance outside the edges
      // (they do not grow); both terms are exactly 0 at scale 1
      const natural = gap / ts.scale;
      if (side !== null) gap -= (gap - side) * (1 - 1 / ts.scale);
      // and the people step apart by what the gap grew, so each hand stays where it was on the body
      const D = d.u(0.58, 0.72) * H + 2 * (gap - natural);
      const xb = x + f * D;
      const M: Pt = { x: x + (f * D) / 2, y: gy - d.u(0.56, 0.64) * H };
      const anchor: Pt = anchorDx === null ? M : { x: M.x + anchorDx, y: M.y };
      const poseA = basePose(a, d);
      const poseB = basePose(b, d);
      poseA.legs = stance(d, [0.0, 0.1], [-0.1, 0.0]);
      poseB.legs = stance(d, [0.0, 0.08], [-0.08, 0.0]);
      poseA.arms[0] = { x: M.x - f * gap, y: M.y + 0.01 * H };
      poseB.arms[0] = { x: M.x + f * gap, y: M.y + 0.01 * H };
      const pb = buildPerson(personSpec(b, xb, gy, H, poseB), { arm: true, leg: true });
      const pa = buildPerson(personSpec(a, x, gy, H, poseA), { arm: true, leg: true });
      const thing = buildThing({ category, x: anchor.x, y: anchor.y, angle, H, mirror, style: ts });
      return {
        entities: [pb.entity, pa.entity, thing],
        hois: [{ subject: 1, object: 2, verb: 'hand_over' }],
        shadows: [shadowOf(x, gy, H * a.hf), shadowOf(xb, gy, H * b.hf)],
      };
    },
  };
}

export const ANOMALY_KINDS = ['point_at', 'stab', 'hit', 'punch', 'kick'] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

/**
 * An assault: A (first person, at x) attacks B. point_at/stab/hit also involve a weapon, giving
 * two HOIs (A, verb, weapon) and (A, verb, B); punch and kick are (A, verb, B) alone.
 */
export function anomalyPlan(rng: Rng, kind: AnomalyKind, objectScale = 1): GroupPlan {
  const a = sampleActor(rng);
  const b = sampleActor(rng, a.facing === 1 ? -1 : 1);
  a.walking = false;
  b.walking = false;
  const weapon: ThingCategory | null = kind === 'point_at' ? 'gun' : kind === 'stab' ? 'knife' : kind === 'hit' ? 'bat' : null;
  const ts = weapon ? sampleThingStyle(weapon, rng, objectScale) : null;
  const d = new Draws(rng, 32);
  const twoHands = rng.chance(0.4);
  const victimVariant = rng.int(0, 1);
  return {
    kind,
    required: true,
    realize(x, gy, H) {
      d.reset();
      const f = a.facing;
      const dist = {
        point_at: d.u(0.95, 1.3), stab: d.u(0.44, 0.52), hit: 0, punch: d.u(0.42, 0.5), kick: d.u(0.44, 0.54),
      }[kind];
      const size = ts ? ts.size : 1;
      const scale = ts ? ts.scale : 1;
      // what object_scale added to the weapon's size (exactly 0 at scale 1): the victim stands
      // further away by what it added to the gun (0.13) or to the knife's grip-to-contact (0.11)
      const grown = size - size / scale;
      const apart = (kind === 'point_at' ? 0.13 : kind === 'stab' ? 0.11 : 0) * grown * H * a.hf;
      // hit: B stands where the bat, swung from above A's front shoulder, reaches B's head
      const D = kind === 'hit' ? (0.185 + 0.395 * size + 0.03 + d.u(-0.02, 0.03)) * H : dist * H + apart;
      const xb = x + f * D;
      // ---- victim B (faces A)
      const poseB = basePose(b, d);
      // the victim's legs (and a back arm that only hangs) may counterbalance
      const freeB = { arm: true, leg: true };
      if (kind === 'point_at') {
        poseB.lean = d.u(-0.12, -0.02);
        if (victimVariant === 0) {
          // hands up
          poseB.arms = [{ a1: d.u(2.3, 2.7), a2: d.u(2.8, 3.1) }, { a1: -d.u(2.3, 2.7), a2: -d.u(2.8, 3.1) }];
          freeB.arm = false;
        } else {
          // a warding hand raised toward the gun
          poseB.arms = [{ a1: d.u(1.9, 2.3), a2: d.u(2.5, 2.9) }, { a1: d.u(-0.3, -0.1), a2: d.u(-0.2, 0.0) }];
        }
      } else if (kind === 'kick' && victimVariant === 0) {
        poseB.lean = d.u(0.12, 0.25); // doubled over
        poseB.arms = [{ a1: d.u(0.5, 0.8), a2: d.u(0.9, 1.3) }, { a1: d.u(0.1, 0.3), a2: d.u(0.6, 1.0) }];
        freeB.arm = false;
      } else {
        poseB.lean = d.u(-0.25, -0.1); // recoiling
        poseB.arms = [{ a1: d.u(1.9, 2.5), a2: d.u(2.5, 3.0) }, { a1: d.u(-1.2, -0.6), a2: d.u(-1.0, -0.4) }];
        poseB.legs = stance(d, [0.02, 0.08], [-0.2, -0.1]);
      }
      const pb = buildPerson(personSpec(b, xb, gy, H, poseB), freeB);
      const sb = pb.sk;
      // ---- attacker A
      const poseA = basePose(a, d);
      const freeA = { arm: true, leg: true };
      const baseA = skeleton(personSpec(a, x, gy, H, poseA));
      const Ha = H * a.hf;
      let weaponSpec: ((sk: Skeleton) => ThingSpec) | null = null;
      if (kind === 'point_at') {
        poseA.legs = stance(d, [0.08, 0.15], [-0.16, -0.08]);
        poseA.lean = d.u(0.0, 0.06);
        const aim = victimVariant === 0 || d.u(0, 1) < 0.5 ? sb.head : { x: sb.neck.x, y: sb.neck.y + 0.05 * H };
        const sh = baseA.shoulder[0];
        const len = Math.hypot(aim.x - sh.x, aim.y - sh.y);
        const reach = (BODY.upperArm + BODY.foreArm + 0.6 * BODY.handR) * Ha;
        const hand: Pt = { x: sh.x + ((aim.x - sh.x) / len) * reach, y: sh.y + ((aim.y - sh.y) / len) * reach };
        poseA.arms[0] = hand;
        weaponSpec = (sk) => {
          const ang = Math.atan2(aim.y - sk.hand[0].y, aim.x - sk.hand[0].x);
          return { category: 'gun', x: sk.hand[0].x, y: sk.hand[0].y, angle: ang, H: Ha, mirror: mirrorFor(ang), style: ts as ThingStyle };
        };
      } else if (kind === 'stab') {
        poseA.legs = stance(d, [0.14, 0.22], [-0.24, -0.16]);
        poseA.lean = d.u(0.05, 0.15);
        const contact = torsoFront(sb, H * b.hf, d.u(0.25, 0.5), x);
        const e = d.u(-0.15, 0.35);
        const ang = elevAngle(f, e);
        const s = size * Ha;
        const grip: Pt = { x: contact.x - Math.cos(ang) * 0.11 * s, y: contact.y - Math.sin(ang) * 0.11 * s };
        poseA.arms[0] = grip;
        weaponSpec = (sk) => ({ category: 'knife', x: sk.hand[0].x, y: sk.hand[0].y, angle: ang, H: Ha, mirror: mirrorFor(ang), style: ts as ThingStyle });
      } else if (kind === 'hit') {
        poseA.legs = stance(d, [0.1, 0.18], [-0.2, -0.1]);
        poseA.lean = d.u(0.0, 0.1);
        const sh = baseA.shoulder[0];
        const grip: Pt = { x: sh.x + f * 0.08 * Ha, y: sh.y - d.u(0.06, 0.14) * Ha };
        const target: Pt = { x: sb.head.x - f * 0.035 * H, y: sb.head.y + d.u(-0.02, 0.05) * H };
        const ang = Math.atan2(target.y - grip.y, target.x - grip.x);
        poseA.arms[0] = grip;
        poseA.arms[1] = { x: grip.x - Math.cos(ang) * 0.03 * Ha, y: grip.y - Math.sin(ang) * 0.03 * Ha + 0.01 * Ha };
        freeA.arm = false;
        weaponSpec = (sk) => {
          const g = sk.hand[0];
          const len = Math.hypot(target.x - g.x, target.y - g.y);
          const a2 = Math.atan2(target.y - g.y, target.x - g.x);
          const st = { ...(ts as ThingStyle), size: Math.min(1.4 * scale, Math.max(0.7 * scale, (len + 0.01 * Ha) / (0.395 * Ha))) };
          return { category: 'bat', x: g.x, y: g.y, angle: a2, H: Ha, mirror: 1, style: st };
        };
      } else if (kind === 'punch') {
        poseA.legs = stance(d, [0.12, 0.2], [-0.22, -0.14]);
        poseA.lean = d.u(0.05, 0.14);
        poseA.fist = true;
        poseA.arms[0] = { x: sb.head.x - f * (BODY.headRx * H * b.hf + BODY.fistR * Ha * 0.6), y: sb.head.y + d.u(-0.01, 0.03) * H };
        if (twoHands) {
          poseA.arms[1] = { x: baseA.head.x + f * 0.06 * Ha, y: baseA.head.y + 0.1 * Ha }; // guard at the chin
          freeA.arm = false;
        }
      } else {
        // kick: the front foot at B's midriff
        poseA.lean = d.u(-0.22, -0.1);
        const target = torsoFront(sb, H * b.hf, d.u(0.05, 0.3), x);
        const standDx = d.u(-0.06, 0.0);
        const hj = baseA.hipJoint[0];
        poseA.legs = [
          { dx: (f * (target.x - hj.x)) / Ha, lift: (gy - target.y) / Ha - BODY.ankleUp },
          { dx: standDx, lift: 0 },
        ];
        poseA.arms = [{ a1: d.u(0.5, 0.9), a2: d.u(0.7, 1.2) }, { a1: d.u(-1.1, -0.6), a2: d.u(-0.9, -0.4) }];
        freeA.leg = false;
      }
      const pa = buildPerson(personSpec(a, x, gy, H, poseA), freeA);
      const entities: Entity[] = [pb.entity, pa.entity];
      const hois: LocalHoi[] = [{ subject: 1, object: 0, verb: kind }];
      if (weaponSpec) {
        entities.push(buildThing(weaponSpec(pa.sk)));
        hois.unshift({ subject: 1, object: 2, verb: kind });
      }
      return { entities, hois, shadows: [shadowOf(x, gy, Ha), shadowOf(xb, gy, H * b.hf)] };
    },
  };
}

// ---------------------------------------------------------------- a thing on the floor

/** A thing lying (or standing) on the floor with no interaction; `objectScale` enlarges it. */
export function floorThingPlan(rng: Rng, category: ThingCategory, required: boolean, objectScale = 1): GroupPlan {
  const ts = sampleThingStyle(category, rng, objectScale);
  const flip = rng.chance(0.5);
  const tilt = rng.uniform(-0.2, 0.2);
  const upright = rng.chance(0.6);
  return {
    kind: `floor:${category}`,
    required,
    realize(x, gy, H) {
      const s = ts.size * H;
      let y = gy, angle = 0, mirror: 1 | -1 = 1;
      switch (category) {
        case 'knife':
          angle = (flip ? Math.PI : 0) + tilt * 0.3;
          y = gy - 0.02 * s;
          mirror = mirrorFor(angle);
          break;
        case 'gun':
          angle = flip ? Math.PI : 0;
          y = gy - 0.035 * s;
          mirror = mirrorFor(angle);
          break;
        case 'bat':
          angle = (flip ? Math.PI : 0) + tilt * 0.15;
          y = gy - 0.028 * s;
          break;
        case 'bottle':
          angle = upright ? -Math.PI / 2 : flip ? Math.PI : 0;
          y = upright ? gy - 0.06 * s : gy - 0.027 * s;
          break;
        case 'cup':
          angle = -Math.PI / 2;
          y = gy - 0.035 * s;
          mirror = flip ? 1 : -1;
          break;
        case 'phone':
          angle = (flip ? Math.PI : 0) + tilt;
          y = gy - 0.03 * s;
          break;
        case 'bag':
          angle = Math.PI / 2;
          y = gy - 0.2 * s;
          break;
        case 'ball':
          angle = tilt * 5;
          y = gy - 0.055 * s;
          break;
      }
      const e = buildThing({ category, x, y, angle, H, mirror, style: ts });
      const w = (e.box[2] - e.box[0]) / 2;
      return {
        entities: [e],
        hois: [],
        shadows: [ellipsePoly((e.box[0] + e.box[2]) / 2, gy, w * 1.05, Math.max(1, 0.02 * H))],
      };
    },
  };
}
