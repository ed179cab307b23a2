import { DataError } from '../errors';
import type { Box } from './record';

/**
 * Boxes in text (instructions, responses, generated explanations), Shikra style: normalized to
 * 0-1 by the image size, exactly 3 decimals, no spaces: `[0.050,0.120,0.350,0.780]`.
 * 3 decimals bound the round-trip error by 0.0005 * image size (0.13 px on a 256 px image).
 */
export type NormBox = [number, number, number, number];

export const BOX_DECIMALS = 3;

/** One number of a box in text: `0`, `1`, `0.05`, `.5`, `1.000`. */
const NUM = String.raw`(\d+(?:\.\d+)?|\.\d+)`;
const SEP = String.raw`\s*,\s*`;

/**
 * Regex source (no capture groups) of one box in text, lenient about spaces:
 * `[0.050, 0.120 ,0.350,0.780 ]`. Used inside the response parser's template regexes.
 */
export const BOX_PATTERN = String.raw`\[\s*(?:\d+(?:\.\d+)?|\.\d+)(?:\s*,\s*(?:\d+(?:\.\d+)?|\.\d+)){3}\s*\]`;

const BOX_RE = new RegExp(String.raw`\[\s*${NUM}${SEP}${NUM}${SEP}${NUM}${SEP}${NUM}\s*\]`, 'g');

/** Pixel box -> normalized box, clamped to [0, 1]. */
export function normalizeBox(box: Box | readonly number[], width: number, height: number): NormBox {
  checkSize(width, height);
  const [x1, y1, x2, y2] = box;
  return [clamp01(x1 / width), clamp01(y1 / height), clamp01(x2 / width), clamp01(y2 / height)];
}

/** A normalized box as text, e.g. `[0.050,0.120,0.350,0.780]`. */
export function formatNormalized(box: readonly number[]): string {
  if (box.length !== 4) throw new DataError(`box text: expected 4 numbers, found ${box.length}`);
  return `[${box.map((v) => clamp01(v).toFixed(BOX_DECIMALS)).join(',')}]`;
}

/** A pixel box of a `width` x `height` image as text, e.g. `[0.050,0.120,0.350,0.780]`. */
export function formatBox(box: Box, width: number, height: number): string {
  return formatNormalized(normalizeBox(box, width, height));
}

/** Normalized box -> pixel box of a `width` x `height` image. */
export function denormalize(box: readonly number[], width: number, height: number): Box {
  checkSize(width, height);
  return [box[0] * width, box[1] * height, box[2] * width, box[3] * height];
}

/**
 * Every well-formed box in `text`, in order, with its character span [start, end).
 * Strict: a bracketed group of 4 numbers counts only if all lie in [0, 1] and x1 <= x2, y1 <= y2;
 * anything else (pixel boxes, inverted boxes, 3 numbers) is not a box.
 */
export function parseBoxes(text: string): Array<{ box: NormBox; start: number; end: number }> {
  const out: Array<{ box: NormBox; start: number; end: number }> = [];
  for (const m of text.matchAll(BOX_RE)) {
    const box = toBox([m[1], m[2], m[3], m[4]]);
    if (box) out.push({ box, start: m.index, end: m.index + m[0].length });
  }
  return out;
}

/** `text` must be exactly one box (surrounding spaces allowed); null when it is not. */
export function parseBox(text: string): NormBox | null {
  const found = parseBoxes(text);
  if (found.length !== 1) return null;
  const { start, end } = found[0];
  return text.slice(0, start).trim() === '' && text.slice(end).trim() === '' ? found[0].box : null;
}

function toBox(parts: string[]): NormBox | null {
  const v = parts.map(Number);
  if (v.some((x) => !Number.isFinite(x) || x < 0 || x > 1)) return null;
  if (v[0] > v[2] || v[1] > v[3]) return null;
  return [v[0], v[1], v[2], v[3]];
}

function clamp01(v: number): number {
  // `+ 0` turns -0 into 0 so that no box prints as "-0.000"
  return Math.min(1, Math.max(0, v)) + 0;
}

function checkSize(width: number, height: number): void {
  if (!(width > 0 && height > 0 && Number.isFinite(width) && Number.isFinite(height))) {
    throw new DataError(`box text: image size must be positive, found ${width}x${height}`);
  }
}
