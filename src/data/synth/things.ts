import { Rng } from '../rng';
import { ColoredPoly, hsv } from './person';
import { Rgb, capsulePoly, localPoly, rgb, scaleRgb } from './raster';

/**
 * Object categories other than person, each a distinct shape/colour family. A thing is drawn
 * in a local frame: `u` along its axis (image angle `angle`), `v` across it; lengths are
 * fractions of the reference height H (the holder's, or a person's at that depth).
 *
 * Anchors (where a hand holds it) and axes:
 *   knife  handle centre, axis toward the tip
 *   gun    grip centre, axis toward the muzzle (the grip hangs below the barrel)
 *   bat    handle above the knob, axis toward the barrel end
 *   bottle body centre, axis bottom -> cap;   cup: body centre, axis bottom -> rim
 *   phone  centre, axis along the long side;  bag: top of the handle, axis handle -> bottom
 *   ball   centre (axis only turns the pattern)
 */
export const THING_CATEGORIES = ['knife', 'gun', 'bat', 'bottle', 'cup', 'phone', 'bag', 'ball'] as const;
export type ThingCategory = (typeof THING_CATEGORIES)[number];
export const WEAPONS: readonly ThingCategory[] = ['knife', 'gun', 'bat'];

export interface ThingStyle {
  /** Size multiplier around the category's nominal size (`scale` included). */
  size: number;
  /** The part of `size` that comes from the object_scale option (1 = natural size). */
  scale: number;
  /** Category-specific palette: [main, secondary, detail]. */
  colors: [Rgb, Rgb, Rgb];
  variant: number;
}

export interface ThingSpec {
  category: ThingCategory;
  x: number;
  y: number;
  angle: number;
  H: number;
  /** Flips the local v axis (cup handle side, knife edge side, gun grip side). */
  mirror: 1 | -1;
  style: ThingStyle;
}

function jit(rng: Rng, c: Rgb, a: number): Rgb {
  return rgb(
    ((c >> 16) & 255) + rng.uniform(-a, a),
    ((c >> 8) & 255) + rng.uniform(-a, a),
    (c & 255) + rng.uniform(-a, a),
  );
}

/**
 * Most that the object_scale option enlarges a category: a bat (half a person) or a bag (a fifth)
 * any larger would cross the floor when held low.
 */
export const THING_SCALE_CAP: Record<ThingCategory, number> = {
  knife: 3, gun: 3, bat: 1.25, bottle: 3, cup: 3, phone: 3, bag: 1.4, ball: 3,
};

/** The size factor object_scale gives a category (1 at object_scale 1). */
export function thingScale(category: ThingCategory, objectScale: number): number {
  return Math.min(objectScale, THING_SCALE_CAP[category]);
}

/** Style of a thing; `objectScale` (the object_scale option) multiplies its size. */
export function sampleThingStyle(category: ThingCategory, rng: Rng, objectScale = 1): ThingStyle {
  const scale = thingScale(category, objectScale);
  // x * 1 === x: the default draws exactly the sizes it always did
  const size = rng.uniform(0.9, 1.12) * scale;
  const variant = rng.int(0, 3);
  let colors: [Rgb, Rgb, Rgb];
  switch (category) {
    case 'knife': {
      const blade = jit(rng, rng.pick([0xd0d4d8, 0xbfc5cc, 0xe2e4e6]), 8);
      const handle = jit(rng, rng.pick([0x151515, 0x4a2a14, 0x6b1e1e, 0x2a2a40]), 10);
      colors = [blade, handle, scaleRgb(blade, 0.7)];
      break;
    }
    case 'gun': {
      const body = jit(rng, rng.pick([0x1c1c1e, 0x2b2d30, 0x3a3a36]), 6);
      const grip = rng.chance(0.25) ? jit(rng, 0x5a3820, 10) : scaleRgb(body, 0.8);
      colors = [body, grip, 0x0a0a0a];
      break;
    }
    case 'bat': {
      const wood = jit(rng, rng.pick([0xd2a86a, 0xc08850, 0x8a5a2e, 0x1e1e1e, 0xb0b6bf]), 12);
      colors = [wood, scaleRgb(wood, 0.75), 0x202020];
      break;
    }
    case 'bottle': {
      const glass = jit(rng, rng.pick([0x2e7d32, 0x6d4c1e, 0x9fd3e6, 0x1e5aa8, 0xb0e0b0]), 12);
      colors = [glass, jit(rng, rng.pick([0xf0f0f0, 0xd03030, 0xf0d040]), 10), jit(rng, rng.pick([0xd8d8d8, 0x202020, 0xc03020]), 10)];
      break;
    }
    case 'cup': {
      const c = rng.chance(0.35) ? jit(rng, 0xf4f4f0, 6) : hsv(rng.uniform(0, 360), rng.uniform(0.5, 0.85), rng.uniform(0.6, 0.9));
      colors = [c, scaleRgb(c, 0.8), 0x4a2c1a];
      break;
    }
    case 'phone': {
      const body = jit(rng, rng.pick([0x141416, 0x202024, 0xe8e8ea, 0xc9b28a]), 6);
      const screen = rng.chance(0.6) ? jit(rng, 0x8fc8f0, 15) : jit(rng, 0x30343a, 6);
      colors = [body, screen, 0x000000];
      break;
    }
    case 'bag': {
      const c = jit(rng, rng.pick([0x6b3e1f, 0x1c1c1c, 0x8c1c24, 0x1f2d5a, 0xc2a06a, 0x3f5f3a]), 12);
      colors = [c, scaleRgb(c, 0.72), scaleRgb(c, 1.25)];
      break;
    }
    case 'ball': {
      const pal: Array<[Rgb, Rgb]> = [
        [0xe06a1c, 0x2a1a10], // basketball
        [0xf4f4f4, 0x1a1a1a], // football
        [0xd42a2a, 0xf4f4f4],
        [0xf2c81e, 0x2050c0],
      ];
      const [a, b] = pal[variant];
      colors = [jit(rng, a, 8), jit(rng, b, 6), 0];
      break;
    }
  }
  return { size, scale, colors, variant };
}

/** Nominal half-extent along the axis from the anchor, in units of H (for placing things). */
export const THING_REACH: Record<ThingCategory, number> = {
  knife: 0.17, gun: 0.13, bat: 0.42, bottle: 0.06, cup: 0.035, phone: 0.048, bag: 0.2, ball: 0.055,
};

/** The thing's polygons in drawing order. */
export function thingPolys(t: ThingSpec): ColoredPoly[] {
  const s = t.H * t.style.size;
  /** a width fraction of H, but at least `px` pixels */
  const w = (frac: number, px: number): number => Math.max(frac, px / s);
  const [c0, c1, c2] = t.style.colors;
  const P = (local: number[], color: Rgb): ColoredPoly => ({
    poly: localPoly(local, t.x, t.y, t.angle, s, t.mirror),
    color,
  });
  /** capsule in local coordinates */
  const C = (u0: number, v0: number, r0: number, u1: number, v1: number, r1: number, color: Rgb): ColoredPoly => {
    const ca = Math.cos(t.angle), sa = Math.sin(t.angle), m = t.mirror;
    const X = (u: number, v: number): number => t.x + (u * ca - v * m * sa) * s;
    const Y = (u: number, v: number): number => t.y + (u * sa + v * m * ca) * s;
    return { poly: capsulePoly(X(u0, v0), Y(u0, v0), r0 * s, X(u1, v1), Y(u1, v1), r1 * s), color };
  };
  switch (t.category) {
    case 'knife': {
      const bw = w(0.015, 1.3);
      const hr = w(0.012, 1.0);
      return [
        C(-0.035, 0, hr, 0.03, 0, hr, c1),
        P([0.026, -1.35 * bw, 0.036, -1.35 * bw, 0.036, 1.35 * bw, 0.026, 1.35 * bw], c2),
        P([0.034, -bw, 0.13, -bw, 0.17, -0.55 * bw, 0.125, bw, 0.034, bw], c0),
      ];
    }
    case 'gun': {
      const k = w(1, 2.4 / (0.035 * s)); // keep the slide >= 2.4 px tall
      return [
        P([-0.012 * k, -0.033 * k, 0.023 * k, -0.033 * k, 0.013 * k, 0.03 * k, -0.022 * k, 0.025 * k], c1),
        P([0.015 * k, -0.035 * k, 0.075 * k, -0.035 * k, 0.07 * k, -0.01 * k, 0.015 * k, 0.0], c0),
        P([-0.02 * k, -0.068 * k, 0.13 * k, -0.068 * k, 0.13 * k, -0.033 * k, -0.02 * k, -0.033 * k], c0),
        P([0.11 * k, -0.066 * k, 0.13 * k, -0.066 * k, 0.13 * k, -0.06 * k, 0.11 * k, -0.06 * k], c2),
      ];
    }
    case 'bat': {
      const r0 = w(0.0105, 1.0), r1 = w(0.026, 1.6);
      return [
        C(-0.028, 0, w(0.016, 1.3), -0.028, 0, w(0.016, 1.3), c2),
        C(-0.025, 0, r0, 0.395, 0, r1, c0),
        C(0.3, 0, r1 * 0.97, 0.395, 0, r1 * 0.97, t.style.variant === 0 ? c1 : c0),
      ];
    }
    case 'bottle': {
      const bw = w(0.026, 1.6), nw = w(0.01, 0.9);
      return [
        P([-0.06, -bw, 0.045, -bw, 0.07, -nw, 0.1, -nw, 0.1, nw, 0.07, nw, 0.045, bw, -0.06, bw], c0),
        P([-0.022, -bw, 0.018, -bw, 0.018, bw, -0.022, bw], c1),
        P([0.098, -nw * 1.2, 0.115, -nw * 1.2, 0.115, nw * 1.2, 0.098, nw * 1.2], c2),
      ];
    }
    case 'cup': {
      const hw = w(0.027, 1.6);
      const hr = w(0.0055, 0.7);
      return [
        C(0.02, hw, hr, 0.014, hw + 0.02, hr, c1),
        C(0.014, hw + 0.02, hr, -0.014, hw + 0.018, hr, c1),
        C(-0.014, hw + 0.018, hr, -0.02, hw - 0.002, hr, c1),
        P([-0.035, -hw * 0.85, 0.035, -hw * 1.08, 0.035, hw * 1.08, -0.035, hw * 0.85], c0),
        P([0.028, -hw * 0.98, 0.035, -hw * 1.08, 0.035, hw * 1.08, 0.028, hw * 0.98], c2),
      ];
    }
    case 'phone': {
      const hw = w(0.024, 1.4), hl = w(0.048, 2.2), e = Math.min(hw, hl) * 0.25;
      return [
        P([-hl + e, -hw, hl - e, -hw, hl, -hw + e, hl, hw - e, hl - e, hw, -hl + e, hw, -hl, hw - e, -hl, -hw + e], c0),
        P([-hl * 0.8, -hw * 0.75, hl * 0.84, -hw * 0.75, hl * 0.84, hw * 0.75, -hl * 0.8, hw * 0.75], c1),
      ];
    }
    case 'bag': {
      const hr = w(0.0075, 0.8);
      const out: ColoredPoly[] = [
        C(0.055, -0.05, hr, 0.004, -0.028, hr, c1),
        C(0.004, -0.028, hr, 0.004, 0.028, hr, c1),
        C(0.004, 0.028, hr, 0.055, 0.05, hr, c1),
        P([0.05, -0.085, 0.05, 0.085, 0.2, 0.1, 0.2, -0.1], c0),
      ];
      if (t.style.variant % 2 === 0) out.push(P([0.05, -0.085, 0.05, 0.085, 0.1, 0.09, 0.1, -0.09], c2));
      else out.push(P([0.12, -0.05, 0.12, 0.05, 0.17, 0.05, 0.17, -0.05], c1));
      return out;
    }
    case 'ball': {
      const r = w(0.055, 1.8);
      const n = Math.max(12, Math.min(64, Math.ceil((2 * Math.PI * r * s) / 2.5)));
      const out: ColoredPoly[] = [P(circleLocal(r, n), c0)];
      const lr = w(r * 0.07, 0.5);
      if (t.style.variant === 0) {
        out.push(C(-r * 0.95, 0, lr, r * 0.95, 0, lr, c1), C(0, -r * 0.95, lr, 0, r * 0.95, lr, c1));
      } else if (t.style.variant === 1) {
        out.push(P(circleLocal(r * 0.35, 5), c1));
        for (let i = 0; i < 5; i++) {
          const a = (2 * Math.PI * i) / 5 + 0.3;
          out.push(P(circleLocal(r * 0.14, 5, Math.cos(a) * r * 0.75, Math.sin(a) * r * 0.75), c1));
        }
      } else {
        out.push(P([-r * 0.95, -r * 0.12, r * 0.95, -r * 0.12, r * 0.95, r * 0.12, -r * 0.95, r * 0.12], c1));
      }
      return out;
    }
  }
}

/** A regular n-gon of radius r around (cu, cv), in local units. */
function circleLocal(r: number, n: number, cu = 0, cv = 0): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = (2 * Math.PI * i) / n - Math.PI / 2;
    out.push(cu + r * Math.cos(a), cv + r * Math.sin(a));
  }
  return out;
}
