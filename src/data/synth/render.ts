import { Rng } from '../rng';
import { Canvas, boxBlur, createCanvas, fillPolygon, fillVerticalGradient, shadePolygon } from './raster';
import type { SceneLayout } from './scene';

/**
 * Draws a scene layout: background gradients, backdrop, floor shadows, people and things far
 * to near, the occluder, then the camera: blur (optics), lighting (brightness, contrast, tint,
 * gradient) and Gaussian noise (sensor). Cost at 256 px: about 1 ms of drawing plus the effects.
 */

/** Gaussian samples shared by every scene (seeded, so identical everywhere). */
const NOISE_TABLE = (() => {
  const rng = new Rng('synth-noise-table');
  const t = new Float32Array(4096);
  for (let i = 0; i < t.length; i++) t[i] = rng.normal();
  return t;
})();

export interface RenderOptions {
  /** Also fill an owner map: the record id painting each pixel (-1 background, -2 occluder). */
  withIds?: boolean;
}

export function renderLayout(layout: SceneLayout, opts: RenderOptions = {}): Canvas {
  const c = createCanvas(layout.width, layout.height, opts.withIds ?? false);
  const bg = layout.background;
  fillVerticalGradient(c, 0, Math.ceil(bg.horizon), bg.upperTop, bg.upperBottom);
  fillVerticalGradient(c, Math.ceil(bg.horizon), layout.height, bg.lowerTop, bg.lowerBottom);
  for (const p of layout.backdrop) fillPolygon(c, p.poly, p.color, -1);
  for (const s of layout.shadows) shadePolygon(c, s, 0.72);
  layout.entities.forEach((e, i) => {
    const id = layout.entityIds[i];
    for (const p of e.polys) fillPolygon(c, p.poly, p.color, id);
  });
  for (const p of layout.occluders) fillPolygon(c, p.poly, p.color, -2);
  const fx = layout.effects;
  boxBlur(c, fx.blurRadius, fx.blurPasses);
  applyLightAndNoise(c, layout);
  return c;
}

/** One pass: v' = clamp(((v - 128) * contrast + 128 + brightness) * tint[ch] * gain(x, y) + noise). */
function applyLightAndNoise(c: Canvas, layout: SceneLayout): void {
  const fx = layout.effects;
  const [g0, gx, gy] = fx.gradient;
  const identity =
    fx.brightness === 0 && fx.contrast === 1 && gx === 0 && gy === 0 && g0 === 1 &&
    fx.tint[0] === 1 && fx.tint[1] === 1 && fx.tint[2] === 1;
  const sigma = fx.noiseSigma;
  if (identity && sigma === 0) return;
  const w = c.width, h = c.height;
  // a clamped view rounds (half to even) and clamps on store: no branches per value
  const out = new Uint8ClampedArray(c.rgb.buffer, c.rgb.byteOffset, c.rgb.length);
  const src = c.rgb;
  const off = 128 - 128 * fx.contrast + fx.brightness;
  const m0 = fx.contrast * fx.tint[0], m1 = fx.contrast * fx.tint[1], m2 = fx.contrast * fx.tint[2];
  const o0 = off * fx.tint[0], o1 = off * fx.tint[1], o2 = off * fx.tint[2];
  // xorshift32 indexes a Gaussian table (scaled once per image): a Box-Muller per value costs ~5x more
  let s = fx.noiseSeed | 0 || 0x9e3779b9;
  const table = new Float32Array(NOISE_TABLE.length);
  for (let i = 0; i < table.length; i++) table[i] = sigma * NOISE_TABLE[i];
  let o = 0;
  for (let y = 0; y < h; y++) {
    const rowGain = g0 + gy * y;
    for (let x = 0; x < w; x++, o += 3) {
      const gain = rowGain + gx * x;
      let n0 = 0, n1 = 0, n2 = 0;
      if (sigma > 0) {
        s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
        n0 = table[s & 4095];
        n1 = table[(s >>> 10) & 4095];
        n2 = table[(s >>> 20) & 4095];
      }
      out[o] = (src[o] * m0 + o0) * gain + n0;
      out[o + 1] = (src[o + 1] * m1 + o1) * gain + n1;
      out[o + 2] = (src[o + 2] * m2 + o2) * gain + n2;
    }
  }
}
