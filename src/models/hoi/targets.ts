/**
 * Training targets of the point-based HOI head, built from records whose boxes are already in
 * model-input pixels (what the loader hands out). CenterNet for objects, PPDM for interactions:
 *
 * - every object (persons included: a subject or a victim is an object of category `person`) puts
 *   a Gaussian splat on its category's heatmap at the integer cell of its centre, with
 *   CenterNet's radius rule; where splats of one category overlap the element-wise max is kept;
 * - at that cell: size (w, h) and the sub-cell offset centre - cell, in grid units;
 * - every HOI puts a splat on its verb's heatmap at the cell of the midpoint of the subject and
 *   object centres, with the smaller of the two objects' radii (PPDM); at that cell: the sub-cell
 *   offset of the midpoint and the displacements from the integer cell to both centres.
 *
 * Grid units throughout: a centre (cx, cy) in input pixels is (cx / R, cy / R) on the grid, and
 * the cell (floor(cx / R), floor(cy / R)) is the point whose regressions are trained.
 *
 * - box samples (TTFNet, Liu et al. 2020): every cell of a truncated elliptical Gaussian around an
 *   object's centre cell (radii alpha x half its width / height, alpha = 0.54) is a training
 *   sample of the object's box, weighted by the Gaussian normalised to sum 1 per object; where
 *   areas overlap the smaller object takes the cell. The `box` loss (GIoU) reads size and offset
 *   there, so that cells next to the centre also learn the box (a peak one cell off still decodes
 *   it) and 1 - GIoU, which is scale-free, weighs a 2-pixel error on a thin bat as IoU does.
 *
 * Regression targets are stored per point in fixed-size slots (maxObjects, maxInteractions) with
 * an index (y * w + x, per image) and a mask, as CenterNet does. Heatmap splats are drawn for every
 * object and HOI, also those beyond the slots: a missing splat would teach the detector to miss
 * them.
 */
import { tf } from '../../backend/tf';
import { DataError, ShapeError } from '../../errors';
import type { Box, HoiRecord } from '../../data/record';
import type { PointHoiMaps } from './types';

export interface TargetOptions {
  /** Side S of the square model input, pixels. */
  inputSize: number;
  /** Output stride R; the grid is S / R cells a side. */
  stride: number;
  /** Object categories, heatmap channel order. */
  categories: readonly string[];
  /** Verbs, interaction heatmap channel order. */
  verbs: readonly string[];
  /** Regression slots per image for objects / for HOIs. */
  maxObjects: number;
  maxInteractions: number;
}

/**
 * Targets of a batch as typed arrays (row-major; B = records.length, h = w = S / R, M =
 * maxObjects, N = maxInteractions). Indices are per image (y * w + x); masks are 1 for a filled slot.
 */
export interface PointHoiTargets {
  batchSize: number;
  height: number;
  width: number;
  numCategories: number;
  numVerbs: number;
  maxObjects: number;
  maxInteractions: number;
  /** [B, h, w, C] */
  objectHeatmap: Float32Array;
  /** [B, M, 2] box (w, h), grid units */
  objectSize: Float32Array;
  /** [B, M, 2] centre - cell */
  objectOffset: Float32Array;
  /** [B, M] cell index y * w + x */
  objectIndex: Int32Array;
  /** [B, M] */
  objectMask: Float32Array;
  /** [B, h, w, V] */
  interactionHeatmap: Float32Array;
  /** [B, N, 2] midpoint - cell */
  interactionOffset: Float32Array;
  /** [B, N, 4] subject centre - cell, object centre - cell */
  displacement: Float32Array;
  /** [B, N] */
  interactionIndex: Int32Array;
  /** [B, N] */
  interactionMask: Float32Array;
  /** [B, h, w, 4] box (x1, y1, x2, y2) in grid units of the object a cell samples (0 where none) */
  boxTarget: Float32Array;
  /** [B, h, w] sample weight of each cell (sums to 1 per object unless a smaller one took cells) */
  boxWeight: Float32Array;
  /** Objects / HOIs that had no regression slot left (their splats are drawn). */
  droppedObjects: number;
  droppedInteractions: number;
}

/** The targets as tensors, for the losses; the caller disposes them (`disposeTargetTensors`). */
export interface PointHoiTargetTensors {
  objectHeatmap: tf.Tensor4D;
  objectSize: tf.Tensor3D;
  objectOffset: tf.Tensor3D;
  /** int32 */
  objectIndex: tf.Tensor2D;
  objectMask: tf.Tensor2D;
  interactionHeatmap: tf.Tensor4D;
  interactionOffset: tf.Tensor3D;
  displacement: tf.Tensor3D;
  /** int32 */
  interactionIndex: tf.Tensor2D;
  interactionMask: tf.Tensor2D;
  boxTarget: tf.Tensor4D;
  boxWeight: tf.Tensor3D;
}

// ---------------------------------------------------------------------------------------------
// CenterNet's Gaussian

/**
 * CenterNet's `gaussian_radius(det_size, min_overlap)`, kept as published: the smallest of the
 * three quadratic roots for "a corner-shifted box still has IoU >= minOverlap". The roots divide
 * by 2 instead of 2a (a known quirk of the original code); every CenterNet-family model,
 * PPDM included, trains with it, so the radii match theirs. Height and width in grid units.
 */
export function gaussianRadius(height: number, width: number, minOverlap = 0.7): number {
  const a1 = 1;
  const b1 = height + width;
  const c1 = (width * height * (1 - minOverlap)) / (1 + minOverlap);
  const r1 = (b1 + Math.sqrt(b1 * b1 - 4 * a1 * c1)) / 2;
  const a2 = 4;
  const b2 = 2 * (height + width);
  const c2 = (1 - minOverlap) * width * height;
  const r2 = (b2 + Math.sqrt(b2 * b2 - 4 * a2 * c2)) / 2;
  const a3 = 4 * minOverlap;
  const b3 = -2 * minOverlap * (height + width);
  const c3 = (minOverlap - 1) * width * height;
  const r3 = (b3 + Math.sqrt(b3 * b3 - 4 * a3 * c3)) / 2;
  return Math.min(r1, r2, r3);
}

/** Integer splat radius of a box of (w, h) grid cells: CenterNet's `max(0, int(gaussian_radius((ceil(h), ceil(w)))))`. */
export function splatRadius(widthCells: number, heightCells: number, minOverlap = 0.7): number {
  return Math.max(0, Math.floor(gaussianRadius(Math.ceil(heightCells), Math.ceil(widthCells), minOverlap)));
}

/**
 * CenterNet's `draw_umich_gaussian`: a (2r+1)^2 Gaussian with sigma = (2r+1) / 6, value 1 at
 * (cx, cy), max-combined into channel `channel` of an [h, w, K] map starting at `base`. Values
 * below float64 eps (times the peak 1) are 0, as in `gaussian2D`.
 */
export function drawGaussian(
  map: Float32Array, base: number, height: number, width: number, channels: number, channel: number,
  cx: number, cy: number, radius: number,
): void {
  const diameter = 2 * radius + 1;
  const sigma = diameter / 6;
  const twoSigma2 = 2 * sigma * sigma;
  const y0 = Math.max(0, cy - radius), y1 = Math.min(height - 1, cy + radius);
  const x0 = Math.max(0, cx - radius), x1 = Math.min(width - 1, cx + radius);
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const dx = x - cx, dy = y - cy;
      let g = Math.exp(-(dx * dx + dy * dy) / twoSigma2);
      if (g < Number.EPSILON) g = 0;
      const i = base + (y * width + x) * channels + channel;
      if (g > map[i]) map[i] = g;
    }
  }
}

/** TTFNet's alpha: the box-sample area spans alpha x the box around its centre. */
export const BOX_SAMPLE_ALPHA = 0.54;

/**
 * TTFNet's box samples of one object into image `b`'s [h, w] weight map and [h, w, 4] target
 * map (both starting at the image's base): a (2rx+1) x (2ry+1) Gaussian (sigma = diameter / 6 per
 * axis, rx = floor(alpha w / 2), ry = floor(alpha h / 2)) around the centre cell, truncated to the
 * grid, normalised to sum 1; every cell it covers takes this object's box (callers draw larger
 * objects first, so the smaller one wins where they overlap).
 */
function drawBoxSamples(
  weight: Float32Array, target: Float32Array, base: number, height: number, width: number,
  gb: GridBox, alpha = BOX_SAMPLE_ALPHA,
): void {
  const rx = Math.floor((alpha * gb.w) / 2), ry = Math.floor((alpha * gb.h) / 2);
  const sx = (2 * rx + 1) / 6, sy = (2 * ry + 1) / 6;
  const y0 = Math.max(0, gb.iy - ry), y1 = Math.min(height - 1, gb.iy + ry);
  const x0 = Math.max(0, gb.ix - rx), x1 = Math.min(width - 1, gb.ix + rx);
  const g = (x: number, y: number): number => Math.exp(-((x - gb.ix) ** 2) / (2 * sx * sx) - ((y - gb.iy) ** 2) / (2 * sy * sy));
  let total = 0;
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) total += g(x, y);
  const box = [gb.cx - gb.w / 2, gb.cy - gb.h / 2, gb.cx + gb.w / 2, gb.cy + gb.h / 2];
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const i = base + y * width + x;
      weight[i] = g(x, y) / total;
      for (let j = 0; j < 4; j++) target[4 * i + j] = box[j];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Targets

/** Grid geometry of a box: centre, its integer cell (clamped to the grid), size, splat radius. */
interface GridBox {
  cx: number;
  cy: number;
  ix: number;
  iy: number;
  w: number;
  h: number;
  radius: number;
}

function gridBox(box: Box, stride: number, gridW: number, gridH: number): GridBox {
  const cx = (box[0] + box[2]) / 2 / stride;
  const cy = (box[1] + box[3]) / 2 / stride;
  const w = (box[2] - box[0]) / stride;
  const h = (box[3] - box[1]) / stride;
  return {
    cx, cy, w, h,
    ix: clampCell(Math.floor(cx), gridW),
    iy: clampCell(Math.floor(cy), gridH),
    radius: splatRadius(w, h),
  };
}

/** A centre on the far border (box touching the right/bottom edge) lands in the last cell. */
function clampCell(i: number, n: number): number {
  return Math.min(n - 1, Math.max(0, i));
}

export function gridSize(inputSize: number, stride: number): number {
  if (!Number.isInteger(inputSize) || !Number.isInteger(stride) || stride < 1 || inputSize % stride !== 0) {
    throw new ShapeError(`point HOI targets: input size ${inputSize} must be a positive multiple of the stride ${stride}`);
  }
  return inputSize / stride;
}

/** Builds the targets of a batch; an unknown category or verb, or a HOI naming a missing object id, is a DataError naming the record. */
export function buildTargets(records: readonly HoiRecord[], opts: TargetOptions): PointHoiTargets {
  const g = gridSize(opts.inputSize, opts.stride);
  const B = records.length, C = opts.categories.length, V = opts.verbs.length;
  const M = opts.maxObjects, N = opts.maxInteractions;
  if (!(Number.isInteger(M) && M >= 1 && Number.isInteger(N) && N >= 1)) {
    throw new ShapeError(`point HOI targets: maxObjects and maxInteractions must be positive integers, found ${M} and ${N}`);
  }
  const catIndex = new Map(opts.categories.map((c, i) => [c, i]));
  const verbIndex = new Map(opts.verbs.map((v, i) => [v, i]));
  const t: PointHoiTargets = {
    batchSize: B, height: g, width: g, numCategories: C, numVerbs: V, maxObjects: M, maxInteractions: N,
    objectHeatmap: new Float32Array(B * g * g * C),
    objectSize: new Float32Array(B * M * 2),
    objectOffset: new Float32Array(B * M * 2),
    objectIndex: new Int32Array(B * M),
    objectMask: new Float32Array(B * M),
    interactionHeatmap: new Float32Array(B * g * g * V),
    interactionOffset: new Float32Array(B * N * 2),
    displacement: new Float32Array(B * N * 4),
    interactionIndex: new Int32Array(B * N),
    interactionMask: new Float32Array(B * N),
    boxTarget: new Float32Array(B * g * g * 4),
    boxWeight: new Float32Array(B * g * g),
    droppedObjects: 0,
    droppedInteractions: 0,
  };

  records.forEach((rec, b) => {
    const geom = new Map<number, GridBox>();
    const boxes: GridBox[] = [];
    rec.objects.forEach((o, k) => {
      const c = catIndex.get(o.category);
      if (c === undefined) {
        throw new DataError(`record '${rec.id}' field 'objects[${k}].category': unknown category '${o.category}', expected one of ${opts.categories.join(', ')}`);
      }
      const gb = gridBox(o.box, opts.stride, g, g);
      geom.set(o.id, gb);
      boxes.push(gb);
      drawGaussian(t.objectHeatmap, b * g * g * C, g, g, C, c, gb.ix, gb.iy, gb.radius);
      if (k >= M) {
        t.droppedObjects++;
        return;
      }
      const s = b * M + k;
      t.objectSize[2 * s] = gb.w;
      t.objectSize[2 * s + 1] = gb.h;
      t.objectOffset[2 * s] = gb.cx - gb.ix;
      t.objectOffset[2 * s + 1] = gb.cy - gb.iy;
      t.objectIndex[s] = gb.iy * g + gb.ix;
      t.objectMask[s] = 1;
    });
    // box samples, larger objects first so that smaller ones take shared cells (stable: ties in record order)
    for (const gb of boxes.sort((p, q) => q.w * q.h - p.w * p.h)) drawBoxSamples(t.boxWeight, t.boxTarget, b * g * g, g, g, gb);

    rec.hois.forEach((hoi, k) => {
      const v = verbIndex.get(hoi.verb);
      if (v === undefined) {
        throw new DataError(`record '${rec.id}' field 'hois[${k}].verb': unknown verb '${hoi.verb}', expected one of ${opts.verbs.join(', ')}`);
      }
      const sub = geom.get(hoi.subject), obj = geom.get(hoi.object);
      if (sub === undefined || obj === undefined) {
        const [field, id] = sub === undefined ? ['subject', hoi.subject] : ['object', hoi.object];
        throw new DataError(`record '${rec.id}' field 'hois[${k}].${field}': no object with id ${id}`);
      }
      const mx = (sub.cx + obj.cx) / 2, my = (sub.cy + obj.cy) / 2;
      const ix = clampCell(Math.floor(mx), g), iy = clampCell(Math.floor(my), g);
      // PPDM: the interaction point is as uncertain as the less certain of its two centres
      drawGaussian(t.interactionHeatmap, b * g * g * V, g, g, V, v, ix, iy, Math.min(sub.radius, obj.radius));
      if (k >= N) {
        t.droppedInteractions++;
        return;
      }
      const s = b * N + k;
      t.interactionOffset[2 * s] = mx - ix;
      t.interactionOffset[2 * s + 1] = my - iy;
      t.displacement[4 * s] = sub.cx - ix;
      t.displacement[4 * s + 1] = sub.cy - iy;
      t.displacement[4 * s + 2] = obj.cx - ix;
      t.displacement[4 * s + 3] = obj.cy - iy;
      t.interactionIndex[s] = iy * g + ix;
      t.interactionMask[s] = 1;
    });
  });
  return t;
}

/** Uploads the targets; the caller disposes the result (`disposeTargetTensors`). */
export function targetsToTensors(t: PointHoiTargets): PointHoiTargetTensors {
  const { batchSize: B, height: h, width: w, numCategories: C, numVerbs: V, maxObjects: M, maxInteractions: N } = t;
  return {
    objectHeatmap: tf.tensor4d(t.objectHeatmap, [B, h, w, C]),
    objectSize: tf.tensor3d(t.objectSize, [B, M, 2]),
    objectOffset: tf.tensor3d(t.objectOffset, [B, M, 2]),
    objectIndex: tf.tensor2d(t.objectIndex, [B, M], 'int32'),
    objectMask: tf.tensor2d(t.objectMask, [B, M]),
    interactionHeatmap: tf.tensor4d(t.interactionHeatmap, [B, h, w, V]),
    interactionOffset: tf.tensor3d(t.interactionOffset, [B, N, 2]),
    displacement: tf.tensor3d(t.displacement, [B, N, 4]),
    interactionIndex: tf.tensor2d(t.interactionIndex, [B, N], 'int32'),
    interactionMask: tf.tensor2d(t.interactionMask, [B, N]),
    boxTarget: tf.tensor4d(t.boxTarget, [B, h, w, 4]),
    boxWeight: tf.tensor3d(t.boxWeight, [B, h, w]),
  };
}

export function disposeTargetTensors(t: PointHoiTargetTensors): void {
  for (const x of Object.values(t) as tf.Tensor[]) x.dispose();
}

/**
 * The maps a perfect model would output for image `b`: heatmaps = the target heatmaps (as
 * probabilities), regressions written at the target cells and 0 elsewhere. Decoding them must
 * give back the ground truth (the round-trip test), and they are an upper bound in evaluation.
 */
export function oracleMaps(t: PointHoiTargets, b: number): PointHoiMaps {
  const { height: h, width: w, numCategories: C, numVerbs: V, maxObjects: M, maxInteractions: N } = t;
  if (!(Number.isInteger(b) && b >= 0 && b < t.batchSize)) throw new ShapeError(`oracleMaps: image ${b} outside the batch of ${t.batchSize}`);
  const hw = h * w;
  const maps: PointHoiMaps = {
    height: h, width: w, numCategories: C, numVerbs: V,
    objectHeatmap: t.objectHeatmap.slice(b * hw * C, (b + 1) * hw * C),
    objectSize: new Float32Array(hw * 2),
    objectOffset: new Float32Array(hw * 2),
    interactionHeatmap: t.interactionHeatmap.slice(b * hw * V, (b + 1) * hw * V),
    interactionOffset: new Float32Array(hw * 2),
    displacement: new Float32Array(hw * 4),
  };
  for (let k = 0; k < M; k++) {
    const s = b * M + k;
    if (t.objectMask[s] === 0) continue;
    const i = t.objectIndex[s];
    for (let j = 0; j < 2; j++) {
      maps.objectSize[2 * i + j] = t.objectSize[2 * s + j];
      maps.objectOffset[2 * i + j] = t.objectOffset[2 * s + j];
    }
  }
  for (let k = 0; k < N; k++) {
    const s = b * N + k;
    if (t.interactionMask[s] === 0) continue;
    const i = t.interactionIndex[s];
    for (let j = 0; j < 2; j++) maps.interactionOffset[2 * i + j] = t.interactionOffset[2 * s + j];
    for (let j = 0; j < 4; j++) maps.displacement[4 * i + j] = t.displacement[4 * s + j];
  }
  return maps;
}
