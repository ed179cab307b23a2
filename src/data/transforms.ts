/**
 * Geometric and photometric transforms over one image sample, as pure functions on typed arrays:
 * every function returns a new sample and leaves its input untouched.
 *
 * Conventions
 * - Pixels are RGB, row-major HWC; values on the 0-255 scale until `normalize`.
 * - Boxes are absolute pixels `[x1, y1, x2, y2]` on continuous coordinates: pixel (i, j) covers
 *   [i, i+1) x [j, j+1) and its centre is (i + 0.5, j + 0.5). A transform that maps a point x to
 *   a*x + b maps pixel centres the same way, so boxes and pixels stay aligned exactly.
 * - Resampling is a separable triangle filter (PIL's "bilinear"): plain bilinear interpolation
 *   when enlarging, and a filter widened to the scale factor when shrinking, which averages the
 *   source pixels instead of skipping them (no aliasing at 640 -> 128).
 *
 * Cost: 256x192 letterboxed to 128 is ~0.6 M multiply-adds, 1.2-1.5 ms in Node 20 on this
 * machine; with crop, flip, colour jitter and normalize 2.3-2.8 ms (the loader test logs both).
 */
import { Box } from './record';
import { Rng } from './rng';
import { ShapeError } from '../errors';

export type Pixels = Float32Array | Uint8Array;

export interface Sample<P extends Pixels = Pixels> {
  /** RGB HWC, `width * height * 3` values. */
  image: P;
  width: number;
  height: number;
  boxes: Box[];
}

export interface Letterboxed {
  sample: Sample<Float32Array>;
  /** Model pixels per original pixel (the same on both axes). */
  scale: number;
  /** Padding on the left and at the top, in model pixels (integers). */
  padX: number;
  padY: number;
  /** The image content inside the square, [x0, y0, x1, y1) in model pixels; the rest is fill. */
  content: [number, number, number, number];
}

/** Pad value (0-255 scale) for letterbox borders and zoomed-out crops: YOLO's neutral gray. */
export const DEFAULT_FILL = 114;

function checkSample(s: Sample, op: string): void {
  const n = s.width * s.height * 3;
  if (!(s.width > 0 && s.height > 0) || s.image.length !== n) {
    throw new ShapeError(`${op}: image of ${s.width}x${s.height} RGB needs ${n} values, got ${s.image.length}`);
  }
}

const copyBoxes = (boxes: Box[]): Box[] => boxes.map((b) => [b[0], b[1], b[2], b[3]] as Box);

// ---------------------------------------------------------------------------------------------
// Resampling

/**
 * Taps of a 1-D resampling from `srcLen` source pixels to `dstLen` destination pixels with the
 * affine map dst = src * scale + offset (pixel-centre convention). Out-of-range taps are dropped
 * and the remaining weights renormalised, so edges replicate instead of darkening.
 * Returns per destination pixel the first source index, the tap count, and the weights (packed
 * with a fixed stride `maxTaps`).
 */
interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  stride: number;
}

function computeTaps(srcLen: number, dstLen: number, scale: number, offset: number): Taps {
  const support = scale < 1 ? 1 / scale : 1; // filter half-width in source pixels
  const stride = Math.ceil(2 * support) + 3; // enough for every source pixel within the support
  const start = new Int32Array(dstLen);
  const count = new Int32Array(dstLen);
  const weights = new Float32Array(dstLen * stride);
  for (let i = 0; i < dstLen; i++) {
    const center = (i + 0.5 - offset) / scale; // continuous source coordinate
    // Source pixel j (centre j + 0.5) contributes when |j + 0.5 - center| < support.
    let lo = Math.floor(center - support - 0.5);
    let hi = Math.ceil(center + support - 0.5) + 1; // exclusive
    if (lo < 0) lo = 0;
    if (hi > srcLen) hi = srcLen;
    // Trim taps of zero weight at both ends (a third of them when halving).
    while (lo < hi && 1 - Math.abs(lo + 0.5 - center) / support <= 0) lo++;
    while (hi > lo && 1 - Math.abs(hi - 0.5 - center) / support <= 0) hi--;
    let total = 0;
    let n = 0;
    for (let j = lo; j < hi && n < stride; j++, n++) {
      const w = Math.max(0, 1 - Math.abs(j + 0.5 - center) / support);
      weights[i * stride + n] = w;
      total += w;
    }
    if (total <= 0) {
      // Entirely outside the source (only possible for points past the edge): nearest pixel.
      const j = Math.min(srcLen - 1, Math.max(0, Math.floor(center)));
      start[i] = j;
      count[i] = 1;
      weights[i * stride] = 1;
      continue;
    }
    for (let k = 0; k < n; k++) weights[i * stride + k] /= total;
    start[i] = lo;
    count[i] = n;
  }
  return { start, count, weights, stride };
}

/**
 * Resamples `src` (w x h) into the rectangle [dx0, dx0+dw) x [dy0, dy0+dh) of `dst` (dstW wide),
 * mapping source point (x, y) to (x * sx + dx0, y * sy + dy0). Horizontal pass first, into a
 * temporary of h x dw, then the vertical pass.
 */
function resampleInto(
  src: Pixels, w: number, h: number,
  dst: Float32Array, dstW: number,
  dx0: number, dy0: number, dw: number, dh: number,
  sx: number, sy: number,
): void {
  const tx = computeTaps(w, dw, sx, 0);
  const ty = computeTaps(h, dh, sy, 0);
  const tmp = new Float32Array(h * dw * 3); // [h, dw, 3]
  for (let y = 0; y < h; y++) {
    const rowIn = y * w * 3;
    const rowOut = y * dw * 3;
    for (let x = 0; x < dw; x++) {
      const s0 = tx.start[x];
      const n = tx.count[x];
      const wo = x * tx.stride;
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < n; k++) {
        const wk = tx.weights[wo + k];
        const p = rowIn + (s0 + k) * 3;
        r += src[p] * wk;
        g += src[p + 1] * wk;
        b += src[p + 2] * wk;
      }
      const o = rowOut + x * 3;
      tmp[o] = r;
      tmp[o + 1] = g;
      tmp[o + 2] = b;
    }
  }
  // Vertical pass row by row: contiguous reads and writes (taps in the outer loop).
  const rowLen = dw * 3;
  for (let y = 0; y < dh; y++) {
    const s0 = ty.start[y];
    const n = ty.count[y];
    const wo = y * ty.stride;
    const out = ((dy0 + y) * dstW + dx0) * 3;
    const end = out + rowLen;
    let w = ty.weights[wo];
    let from = s0 * rowLen - out;
    for (let o = out; o < end; o++) dst[o] = tmp[o + from] * w;
    for (let k = 1; k < n; k++) {
      w = ty.weights[wo + k];
      from = (s0 + k) * rowLen - out;
      for (let o = out; o < end; o++) dst[o] += tmp[o + from] * w;
    }
  }
}

/** Resizes to w x h (bilinear; area-weighted when shrinking). Boxes scale per axis. */
export function resize(sample: Sample, w: number, h: number): Sample<Float32Array> {
  checkSample(sample, 'resize');
  if (!(Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0)) {
    throw new ShapeError(`resize: target size must be positive integers, got ${w}x${h}`);
  }
  const sx = w / sample.width;
  const sy = h / sample.height;
  const out = new Float32Array(w * h * 3);
  resampleInto(sample.image, sample.width, sample.height, out, w, 0, 0, w, h, sx, sy);
  const boxes = sample.boxes.map((b) => [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] as Box);
  return { image: out, width: w, height: h, boxes };
}

/**
 * Fits the image into a size x size square keeping its aspect ratio, centred, the rest filled
 * with `fill`. Model coordinates are `x * scale + padX`, `y * scale + padY`
 * (`unletterboxBox` inverts that). Example: 200x100 to 100 gives scale 0.5, padX 0, padY 25.
 */
export function letterbox(sample: Sample, size: number, fill = DEFAULT_FILL): Letterboxed {
  checkSample(sample, 'letterbox');
  if (!(Number.isInteger(size) && size > 0)) throw new ShapeError(`letterbox: size must be a positive integer, got ${size}`);
  const scale = size / Math.max(sample.width, sample.height);
  const newW = Math.min(size, Math.max(1, Math.round(sample.width * scale)));
  const newH = Math.min(size, Math.max(1, Math.round(sample.height * scale)));
  const padX = Math.floor((size - newW) / 2);
  const padY = Math.floor((size - newH) / 2);
  const out = new Float32Array(size * size * 3);
  if (newW < size || newH < size) out.fill(fill);
  resampleInto(sample.image, sample.width, sample.height, out, size, padX, padY, newW, newH, scale, scale);
  const boxes = sample.boxes.map(
    (b) => [b[0] * scale + padX, b[1] * scale + padY, b[2] * scale + padX, b[3] * scale + padY] as Box,
  );
  return {
    sample: { image: out, width: size, height: size, boxes }, scale, padX, padY,
    content: [padX, padY, padX + newW, padY + newH],
  };
}

/** Maps a box from letterboxed model pixels back to the pixels of the letterboxed image. */
export function unletterboxBox(box: Box, scale: number, padX: number, padY: number): Box {
  return [(box[0] - padX) / scale, (box[1] - padY) / scale, (box[2] - padX) / scale, (box[3] - padY) / scale];
}

// ---------------------------------------------------------------------------------------------
// Geometry augmentation

/** Mirrors left-right. A box [x1, y1, x2, y2] becomes [W - x2, y1, W - x1, y2]. */
export function hflip<P extends Pixels>(sample: Sample<P>): Sample<P> {
  checkSample(sample, 'hflip');
  const { width: w, height: h } = sample;
  const src = sample.image;
  const out = (src instanceof Float32Array ? new Float32Array(src.length) : new Uint8Array(src.length)) as P;
  for (let y = 0; y < h; y++) {
    const row = y * w * 3;
    for (let x = 0; x < w; x++) {
      const i = row + x * 3;
      const o = row + (w - 1 - x) * 3;
      out[o] = src[i];
      out[o + 1] = src[i + 1];
      out[o + 2] = src[i + 2];
    }
  }
  const boxes = sample.boxes.map((b) => [w - b[2], b[1], w - b[0], b[3]] as Box);
  return { image: out, width: w, height: h, boxes };
}

export interface ScaleCropOptions {
  /**
   * Zoom range: the crop window is the image size divided by a factor drawn from [lo, hi].
   * Above 1 zooms in (smaller window inside the image); below 1 zooms out (a window larger
   * than the image, the outside filled with `fill`). Zoom-in is limited so that all boxes fit.
   */
  scale: [number, number];
  /** Aspect-ratio jitter of the window (width/height multiplier range); default [1, 1]. */
  aspect?: [number, number];
  /** Largest fraction of a box's width (height) the crop may cut off; default 0.1. */
  maxCut?: number;
  fill?: number;
}

export interface Cropped<P extends Pixels> {
  sample: Sample<P>;
  /** Top-left corner of the window in the input image (negative when zoomed out). */
  x0: number;
  y0: number;
}

/**
 * Random zoom and crop that keeps every box: the window is drawn so that it contains each
 * box up to `maxCut` of its width and height; boxes are then clipped to the window, so none is
 * lost and none is cut by more than `maxCut` per axis. The window has integer corners: pixels are
 * copied, not resampled (the letterbox that follows does the one resampling), and the crop is
 * a pure translation of the coordinates, `x' = x - x0`.
 */
export function scaleCropJitter<P extends Pixels>(sample: Sample<P>, rng: Rng, opts: ScaleCropOptions): Cropped<P> {
  checkSample(sample, 'scaleCropJitter');
  const { width: W, height: H } = sample;
  const [lo, hi] = opts.scale;
  if (!(lo > 0 && hi >= lo)) throw new ShapeError(`scaleCropJitter: scale range must be 0 < lo <= hi, got [${lo}, ${hi}]`);
  const [alo, ahi] = opts.aspect ?? [1, 1];
  const maxCut = opts.maxCut ?? 0.1;
  const fill = opts.fill ?? DEFAULT_FILL;

  // The region every window must contain: the union of the boxes, each shrunk by maxCut/2 of
  // its size on every side (so at most maxCut of each axis can fall outside).
  const boxes = sample.boxes.map(
    (b) => [clamp(b[0], 0, W), clamp(b[1], 0, H), clamp(b[2], 0, W), clamp(b[3], 0, H)] as Box,
  );
  let rx1 = Infinity, ry1 = Infinity, rx2 = -Infinity, ry2 = -Infinity;
  for (const b of boxes) {
    const cx = ((b[2] - b[0]) * maxCut) / 2;
    const cy = ((b[3] - b[1]) * maxCut) / 2;
    rx1 = Math.min(rx1, b[0] + cx);
    ry1 = Math.min(ry1, b[1] + cy);
    rx2 = Math.max(rx2, b[2] - cx);
    ry2 = Math.max(ry2, b[3] - cy);
  }
  if (boxes.length === 0) { rx1 = W; ry1 = H; rx2 = 0; ry2 = 0; } // no constraint

  const zoom = rng.uniform(lo, hi);
  const aspect = Math.sqrt(rng.uniform(alo, ahi));
  const cw = Math.max(W / zoom * aspect, rx2 - rx1, 1);
  const ch = Math.max(H / zoom / aspect, ry2 - ry1, 1);
  const [x0, w] = drawWindow(rng, W, cw, rx1, rx2);
  const [y0, h] = drawWindow(rng, H, ch, ry1, ry2);
  return { sample: crop(sample, x0, y0, w, h, fill, boxes), x0, y0 };
}

/**
 * An integer window [x0, x0 + len) on an axis of `size` pixels: inside the image when zoomed in,
 * covering the image when zoomed out, and containing [r1, r2] in both cases. `len` is rounded
 * up to an integer, and grown by a pixel when no integer offset satisfies all three.
 */
function drawWindow(rng: Rng, size: number, length: number, r1: number, r2: number): [number, number] {
  for (let len = Math.ceil(length - 1e-9); ; len++) {
    let lo = Math.min(0, size - len);
    let hi = Math.max(0, size - len);
    if (r2 > r1) {
      lo = Math.max(lo, Math.ceil(r2 - len - 1e-9));
      hi = Math.min(hi, Math.floor(r1 + 1e-9));
    }
    if (lo <= hi) return [rng.int(lo, hi), len];
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * Cuts the window [x0, x0+w) x [y0, y0+h) (integers, may extend past the image: filled with
 * `fill`); boxes are translated and clipped to the window.
 */
export function crop<P extends Pixels>(
  sample: Sample<P>, x0: number, y0: number, w: number, h: number, fill = DEFAULT_FILL, boxes = sample.boxes,
): Sample<P> {
  const { width: W, height: H } = sample;
  const src = sample.image;
  const out = (src instanceof Float32Array ? new Float32Array(w * h * 3) : new Uint8Array(w * h * 3)) as P;
  const ix0 = Math.max(0, x0), ix1 = Math.min(W, x0 + w); // source columns inside the image
  if (ix0 > x0 || ix1 < x0 + w || y0 < 0 || y0 + h > H) out.fill(fill);
  if (ix1 > ix0) {
    for (let y = Math.max(0, y0); y < Math.min(H, y0 + h); y++) {
      const from = (y * W + ix0) * 3;
      out.set(src.subarray(from, from + (ix1 - ix0) * 3), ((y - y0) * w + (ix0 - x0)) * 3);
    }
  }
  const moved = boxes.map(
    (b) => [clamp(b[0] - x0, 0, w), clamp(b[1] - y0, 0, h), clamp(b[2] - x0, 0, w), clamp(b[3] - y0, 0, h)] as Box,
  );
  return { image: out, width: w, height: h, boxes: moved };
}

// ---------------------------------------------------------------------------------------------
// Photometric

export interface ColorJitterOptions {
  /** Brightness factor drawn from [1 - b, 1 + b]. */
  brightness: number;
  /** Contrast factor drawn from [1 - c, 1 + c]: blend with the image's mean gray. */
  contrast: number;
  /** Saturation factor drawn from [1 - s, 1 + s]: blend with each pixel's gray. */
  saturation: number;
  /**
   * Only pixels in this rectangle [x0, y0, x1, y1) are changed and measured (e.g. the content
   * of a letterboxed image, so that padding stays constant); default the whole image.
   */
  region?: [number, number, number, number];
}

/**
 * Random brightness, contrast and saturation (torchvision's definitions, in that order), values
 * clamped to 0-255. Geometry and boxes are unchanged. Factors are drawn even when a strength is
 * 0, so the random stream does not depend on the options.
 */
export function colorJitter(sample: Sample, rng: Rng, opts: ColorJitterOptions): Sample<Float32Array> {
  checkSample(sample, 'colorJitter');
  const fb = 1 + rng.uniform(-opts.brightness, opts.brightness);
  const fc = 1 + rng.uniform(-opts.contrast, opts.contrast);
  const fs = 1 + rng.uniform(-opts.saturation, opts.saturation);
  const { width: W, height: H } = sample;
  const [rx0, ry0, rx1, ry1] = opts.region ?? [0, 0, W, H];
  const x0 = clamp(Math.floor(rx0), 0, W), x1 = clamp(Math.ceil(rx1), 0, W);
  const y0 = clamp(Math.floor(ry0), 0, H), y1 = clamp(Math.ceil(ry1), 0, H);
  const out = Float32Array.from(sample.image);
  const n = (x1 - x0) * (y1 - y0);
  if (n === 0) return { image: out, width: W, height: H, boxes: copyBoxes(sample.boxes) };

  // Brightness then contrast are affine in the pixel value: v -> (v*fb - m)*fc + m with m the
  // mean gray after brightness (= fb * mean gray before). Compute the mean first, then one pass.
  let grayMean = 0;
  for (let y = y0; y < y1; y++) {
    for (let i = (y * W + x0) * 3, e = (y * W + x1) * 3; i < e; i += 3) {
      grayMean += 0.299 * out[i] + 0.587 * out[i + 1] + 0.114 * out[i + 2];
    }
  }
  // torchvision clamps after brightness before measuring; with fb <= 1 + b that rarely matters.
  const m = Math.min(255, (grayMean / n) * fb);
  const a = fb * fc;
  const c0 = (1 - fc) * m;
  for (let y = y0; y < y1; y++) {
    for (let i = (y * W + x0) * 3, e = (y * W + x1) * 3; i < e; i += 3) {
      const r = clamp(out[i] * a + c0, 0, 255);
      const g = clamp(out[i + 1] * a + c0, 0, 255);
      const b = clamp(out[i + 2] * a + c0, 0, 255);
      const gray = (1 - fs) * (0.299 * r + 0.587 * g + 0.114 * b);
      out[i] = clamp(r * fs + gray, 0, 255);
      out[i + 1] = clamp(g * fs + gray, 0, 255);
      out[i + 2] = clamp(b * fs + gray, 0, 255);
    }
  }
  return { image: out, width: W, height: H, boxes: copyBoxes(sample.boxes) };
}

/** ImageNet statistics on 0-1 pixels. */
export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

/** (v / 255 - mean) / std per channel, as float32. */
export function normalize(
  sample: Sample, mean: [number, number, number] = IMAGENET_MEAN, std: [number, number, number] = IMAGENET_STD,
): Sample<Float32Array> {
  checkSample(sample, 'normalize');
  const src = sample.image;
  const out = new Float32Array(src.length);
  normalizeInto(src, out, 0, mean, std);
  return { image: out, width: sample.width, height: sample.height, boxes: copyBoxes(sample.boxes) };
}

/** `normalize` writing into `dst` at `offset` (the loader fills a batch buffer this way). */
export function normalizeInto(
  src: Pixels, dst: Float32Array, offset: number,
  mean: [number, number, number] = IMAGENET_MEAN, std: [number, number, number] = IMAGENET_STD,
): void {
  const a0 = 1 / (255 * std[0]), a1 = 1 / (255 * std[1]), a2 = 1 / (255 * std[2]);
  const b0 = -mean[0] / std[0], b1 = -mean[1] / std[1], b2 = -mean[2] / std[2];
  for (let i = 0; i < src.length; i += 3) {
    dst[offset + i] = src[i] * a0 + b0;
    dst[offset + i + 1] = src[i + 1] * a1 + b1;
    dst[offset + i + 2] = src[i + 2] * a2 + b2;
  }
}
