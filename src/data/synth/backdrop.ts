import { Rng } from '../rng';
import { Entity, centrePixel } from './entity';
import { ColoredPoly, hsv } from './person';
import { Poly, Rgb, ellipsePoly, mixRgb, polygonBounds, polygonCovers, rectPoly, rgb, scaleRgb } from './raster';

/**
 * Behind and in front of the people: wall and floor (indoors) or sky and ground (outdoors) as
 * gradients, furniture or street furniture standing at the back (amount set by `clutter`), and
 * a foreground occluder (crate, pillar, plant) over part of someone.
 */

export interface Background {
  horizon: number;
  upperTop: Rgb;
  upperBottom: Rgb;
  lowerTop: Rgb;
  lowerBottom: Rgb;
}

function jitter(rng: Rng, c: Rgb, a: number): Rgb {
  return rgb(((c >> 16) & 255) + rng.uniform(-a, a), ((c >> 8) & 255) + rng.uniform(-a, a), (c & 255) + rng.uniform(-a, a));
}

const WALLS: Rgb[] = [0xe8dcc8, 0xd0d4d8, 0xc8d8e8, 0xd8e4cc, 0xb86a58, 0xf0f0ea, 0xe6c89a, 0x9aa4b0];
const FLOORS: Rgb[] = [0x8a6038, 0x9a9a96, 0xc8b89a, 0x5a4a3a, 0x7a8a9a, 0xa07850];
const GROUNDS: Rgb[] = [0x5a8a3a, 0x6e6e6a, 0x8a8a84, 0xc8b48a, 0x4a7a30];

export function sampleBackground(rng: Rng, S: number, horizon: number, clutter: number): { bg: Background; backdrop: ColoredPoly[] } {
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
export function sampleOccluder(rng: Rng, entities: Entity[], keep: Array<[number, number]>, S: number): ColoredPoly[] {
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
