/**
 * Losses of the point-based HOI head: CenterNet's penalty-reduced focal loss on the two heatmaps
 * and masked L1 on the regressions read at the ground-truth cells. Synchronous tfjs, differentiable,
 * for use inside `tf.variableGrads` / `optimizer.minimize` (and so inside a tidy).
 */
import { z } from 'zod';
import { tf } from '../../backend/tf';
import { ShapeError } from '../../errors';
import type { PointHoiTargetTensors } from './targets';
import type { PointHoiOutputs } from './types';

/** CenterNet clamps sigmoid outputs to [1e-4, 1 - 1e-4]; the same bound on logits is +-logit(1 - 1e-4). */
export const PROB_CLAMP = 1e-4;
const LOGIT_CLAMP = Math.log((1 - PROB_CLAMP) / PROB_CLAMP); // 9.2102...

export const LossWeightsSchema = z
  .object({
    object_heatmap: z.number().min(0).default(1),
    /** 0.1 as in CenterNet / PPDM: sizes are in cells, an order of magnitude above offsets. */
    size: z.number().min(0).default(0.1),
    offset: z.number().min(0).default(1),
    interaction_heatmap: z.number().min(0).default(1),
    interaction_offset: z.number().min(0).default(1),
    displacement: z.number().min(0).default(1),
    /**
     * 1 - GIoU of the box decoded at every TTFNet box sample (cells around each object centre,
     * see targets.ts). 0 = off (CenterNet / PPDM: L1 at the centre cell only).
     */
    box: z.number().min(0).default(0),
    /**
     * How the size error is measured: `absolute` = L1 in cells (CenterNet, PPDM); `relative` = L1
     * divided by the true side (at least 1 cell), so that 2 cells of error on a 2-cell-thin bat
     * count as much as 20 cells on a 20-cell person (IoU is scale-free; absolute L1 is not).
     */
    size_error: z.enum(['absolute', 'relative']).default('absolute'),
  })
  .strict();

export type LossWeights = z.infer<typeof LossWeightsSchema>;
export const DEFAULT_LOSS_WEIGHTS: Readonly<LossWeights> = Object.freeze(LossWeightsSchema.parse({}));

export const LOSS_PARTS = ['object_heatmap', 'size', 'offset', 'interaction_heatmap', 'interaction_offset', 'displacement', 'box'] as const;
export type LossPart = (typeof LOSS_PARTS)[number];

/**
 * Penalty-reduced focal loss (CornerNet / CenterNet, alpha 2, beta 4) from logits:
 *
 *   -1/max(P, 1) * sum( [gt = 1] (1-p)^2 log p + [gt < 1] (1-gt)^4 p^2 log(1-p) ),  P = #(gt = 1)
 *
 * with p = sigmoid(x) clamped to [1e-4, 1-1e-4]. The clamp is applied to the logit (the same thing,
 * since sigmoid is monotonic: zero gradient outside, as CenterNet's clamp), and log p, log(1-p)
 * come from log-sigmoid (-softplus), which stays finite where log(sigmoid(x)) would underflow.
 * Sums run over the whole batch, normalised by the batch's positives, as CenterNet does.
 *
 * One pass over the values computes the loss and its gradient (float64 sums), kept for the
 * backward pass by tf.customGrad: as ~25 tfjs ops it was ~60 small kernel calls per heatmap and
 * step, the slowest part of the extractor step outside the convolutions. `gt` gets no gradient.
 */
export function focalLoss(logits: tf.Tensor, gt: tf.Tensor): tf.Scalar {
  if (!tf.util.arraysEqual(logits.shape, gt.shape)) {
    throw new ShapeError(`focalLoss: logits ${JSON.stringify(logits.shape)} and targets ${JSON.stringify(gt.shape)} differ`);
  }
  const targets = gt.dataSync();
  const loss = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const grad = new Float32Array(x.size);
    const value = focalLossAndGradient(x.dataSync(), targets, grad);
    save([tf.tensor(grad, x.shape, 'float32')]); // kept (as a copy) for the backward pass only while the tape records
    return { value: tf.scalar(value), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, saved[0]) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return tf.tidy('focalLoss', () => (loss as unknown as (x: tf.Tensor) => tf.Scalar)(logits)); // the name tf.profile shows
}

/**
 * The focal loss of `x` against `gt` (the formula above) and, into `grad`, its derivative with
 * respect to each logit: 0 outside the clamp (as tfjs's clipByValue gradient, bounds inclusive);
 * inside, with w = (1 - gt)^4,
 *   d/dx [(1-p)^2 log p]      = (1-p)^2 ((1-p) - 2 p log p)
 *   d/dx [w p^2 log(1-p)]     = w p^2 (2 (1-p) log(1-p) - p)
 * both times -1/max(P, 1). NaN logits give a NaN loss (they are not clamped away).
 */
function focalLossAndGradient(x: ArrayLike<number>, gt: ArrayLike<number>, grad: Float32Array): number {
  let sum = 0;
  let positives = 0;
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    const outside = xi < -LOGIT_CLAMP || xi > LOGIT_CLAMP;
    const xc = xi < -LOGIT_CLAMP ? -LOGIT_CLAMP : xi > LOGIT_CLAMP ? LOGIT_CLAMP : xi;
    // sigmoid and both softplus terms from one exp and one log (1 + e is exact enough in float64
    // for e >= 1e-4: log1p would cost more here, at ~25 ns per Math.exp on this machine)
    const e = Math.exp(-Math.abs(xc));
    const l1p = Math.log(1 + e);
    const r = 1 / (1 + e);
    const p = xc >= 0 ? r : e * r;
    const g = gt[i];
    let value = 0, slope = 0;
    if (g === 1) {
      const logP = -(Math.max(-xc, 0) + l1p), q = 1 - p;
      positives++;
      value = q * q * logP;
      slope = q * q * (q - 2 * p * logP);
    } else if (g < 1) {
      const u = 1 - g, wpp = u * u * u * u * p * p; // (1 - gt)^4 p^2
      const log1mP = -(Math.max(xc, 0) + l1p);
      value = wpp * log1mP;
      slope = wpp * (2 * (1 - p) * log1mP - p);
    }
    sum += value;
    grad[i] = outside ? 0 : slope;
  }
  const scale = -1 / Math.max(positives, 1);
  for (let i = 0; i < grad.length; i++) if (grad[i] !== 0) grad[i] *= scale; // (keeps +0 outside the clamp, not -0)
  return sum * scale;
}

/**
 * Rows of an NHWC map at per-image cell indices: map [B, h, w, K], index [B, M] (y * w + x)
 * -> [B, M, K]. A gather on the [B*h*w, K] view with batch-flat indices, whose gradient
 * (UnsortedSegmentSum) every backend has.
 */
export function gatherAtIndices(map: tf.Tensor4D, index: tf.Tensor2D): tf.Tensor3D {
  const [B, h, w, K] = map.shape;
  if (index.rank !== 2 || index.shape[0] !== B) {
    throw new ShapeError(`gatherAtIndices: index must be [${B}, M], found ${JSON.stringify(index.shape)}`);
  }
  const M = index.shape[1];
  return tf.tidy(() => {
    const flat = tf.reshape(map, [B * h * w, K]); // [B*h*w, K]
    const base = tf.range(0, B * h * w, h * w, 'int32').reshape([B, 1]); // [B, 1]: b * h * w
    const idx = tf.add(tf.cast(index, 'int32'), base).reshape([B * M]); // [B*M]
    return tf.gather(flat, idx).reshape([B, M, K]) as tf.Tensor3D; // [B, M, K]
  });
}

/**
 * Masked L1 of a regression map read at the ground-truth cells (CenterNet's RegL1Loss):
 * sum(|pred - target| * mask) / max(sum(mask) * K, 1), i.e. the mean absolute error per
 * coordinate over the filled slots (0 when there are none). map [B, h, w, K], index/mask [B, M],
 * target [B, M, K]. `relative`: each |pred - target| is divided by max(target, 1) first.
 */
export function regL1Loss(map: tf.Tensor4D, index: tf.Tensor2D, mask: tf.Tensor2D, target: tf.Tensor3D, opts: { relative?: boolean } = {}): tf.Scalar {
  const [B, , , K] = map.shape;
  const M = index.shape[1];
  if (!tf.util.arraysEqual(target.shape, [B, M, K]) || !tf.util.arraysEqual(mask.shape, [B, M])) {
    throw new ShapeError(
      `regL1Loss: expected target [${B}, ${M}, ${K}] and mask [${B}, ${M}] for map ${JSON.stringify(map.shape)}, ` +
        `found ${JSON.stringify(target.shape)} and ${JSON.stringify(mask.shape)}`,
    );
  }
  return tf.tidy(() => {
    const pred = gatherAtIndices(map, index); // [B, M, K]
    const m = tf.expandDims(mask, 2); // [B, M, 1]
    const abs = tf.abs(tf.sub(pred, target)); // [B, M, K]
    const err = tf.sum(tf.mul(opts.relative ? tf.div(abs, tf.maximum(target, 1)) : abs, m));
    return tf.div(err, tf.maximum(tf.mul(tf.sum(mask), K), 1)) as tf.Scalar;
  });
}

/**
 * Weighted 1 - GIoU (Rezatofighi et al. 2019) of the boxes the size and offset maps decode at every
 * cell, against the box each cell samples: at cell (x, y) the box is centred at (x + ox, y + oy)
 * with sides relu(w), relu(h) (grid units; decode reads negative sizes as 0 too). size, offset
 * [B, h, w, 2]; target [B, h, w, 4] (x1, y1, x2, y2); weight [B, h, w]. Returns
 * sum(weight (1 - GIoU)) / sum(weight) (0 without samples). Unions and enclosing areas are held
 * above 1e-6, so cells without a sample (weight 0, empty target) stay finite in both directions.
 */
export function giouLoss(size: tf.Tensor4D, offset: tf.Tensor4D, target: tf.Tensor4D, weight: tf.Tensor3D): tf.Scalar {
  const [B, h, w] = weight.shape;
  for (const [name, t, k] of [['size', size, 2], ['offset', offset, 2], ['target', target, 4]] as const) {
    if (!tf.util.arraysEqual(t.shape, [B, h, w, k])) {
      throw new ShapeError(`giouLoss: ${name} must be ${JSON.stringify([B, h, w, k])} for weight ${JSON.stringify(weight.shape)}, found ${JSON.stringify(t.shape)}`);
    }
  }
  return tf.tidy(() => {
    const xs = tf.range(0, w, 1, 'float32').reshape([1, 1, w]);
    const ys = tf.range(0, h, 1, 'float32').reshape([1, h, 1]);
    const [ox, oy] = tf.unstack(offset, 3); // [B, h, w] each
    const [sw, sh] = tf.unstack(tf.relu(size), 3);
    const cx = tf.add(xs, ox), cy = tf.add(ys, oy);
    const halfW = tf.mul(sw, 0.5), halfH = tf.mul(sh, 0.5);
    const px1 = tf.sub(cx, halfW), px2 = tf.add(cx, halfW), py1 = tf.sub(cy, halfH), py2 = tf.add(cy, halfH);
    const [tx1, ty1, tx2, ty2] = tf.unstack(target, 3);
    const iw = tf.relu(tf.sub(tf.minimum(px2, tx2), tf.maximum(px1, tx1)));
    const ih = tf.relu(tf.sub(tf.minimum(py2, ty2), tf.maximum(py1, ty1)));
    const inter = tf.mul(iw, ih);
    const union = tf.maximum(tf.sub(tf.add(tf.mul(sw, sh), tf.mul(tf.sub(tx2, tx1), tf.sub(ty2, ty1))), inter), 1e-6);
    const cw = tf.sub(tf.maximum(px2, tx2), tf.minimum(px1, tx1));
    const ch = tf.sub(tf.maximum(py2, ty2), tf.minimum(py1, ty1));
    const hull = tf.maximum(tf.mul(cw, ch), 1e-6);
    const giou = tf.sub(tf.div(inter, union), tf.div(tf.sub(hull, union), hull));
    const total = tf.sum(weight);
    const err = tf.sum(tf.mul(weight, tf.sub(1, giou)));
    return tf.div(err, tf.maximum(total, 1e-6)) as tf.Scalar;
  });
}

export interface PointHoiLosses {
  /** sum over parts of weight x part */
  total: tf.Scalar;
  /** The unweighted parts, keyed as LOSS_PARTS (for logging). */
  parts: Record<LossPart, tf.Scalar>;
}

/**
 * All losses of a batch. `outputs` are the training-mode outputs (heatmap logits). The returned
 * scalars are new tensors: inside `variableGrads` / a tidy they are tracked as usual.
 */
export function computeLosses(
  outputs: PointHoiOutputs, targets: PointHoiTargetTensors, weights: Readonly<LossWeights> = DEFAULT_LOSS_WEIGHTS,
): PointHoiLosses {
  checkOutputs(outputs, targets);
  const parts: Record<LossPart, tf.Scalar> = {
    object_heatmap: focalLoss(outputs.objectHeatmap, targets.objectHeatmap),
    size: regL1Loss(outputs.objectSize, targets.objectIndex, targets.objectMask, targets.objectSize, { relative: weights.size_error === 'relative' }),
    offset: regL1Loss(outputs.objectOffset, targets.objectIndex, targets.objectMask, targets.objectOffset),
    interaction_heatmap: focalLoss(outputs.interactionHeatmap, targets.interactionHeatmap),
    interaction_offset: regL1Loss(outputs.interactionOffset, targets.interactionIndex, targets.interactionMask, targets.interactionOffset),
    displacement: regL1Loss(outputs.displacement, targets.interactionIndex, targets.interactionMask, targets.displacement),
    // weight 0 (the default): not computed, so that it costs no step time; logged as 0
    box: weights.box > 0 ? giouLoss(outputs.objectSize, outputs.objectOffset, targets.boxTarget, targets.boxWeight) : tf.scalar(0),
  };
  const total = tf.tidy(() => tf.addN(LOSS_PARTS.map((k) => tf.mul(parts[k], weights[k]))) as tf.Scalar);
  return { total, parts };
}

function checkOutputs(o: PointHoiOutputs, t: PointHoiTargetTensors): void {
  const [B, h, w, C] = t.objectHeatmap.shape;
  const V = t.interactionHeatmap.shape[3];
  const expected: Record<keyof PointHoiOutputs, number[]> = {
    objectHeatmap: [B, h, w, C],
    objectSize: [B, h, w, 2],
    objectOffset: [B, h, w, 2],
    interactionHeatmap: [B, h, w, V],
    interactionOffset: [B, h, w, 2],
    displacement: [B, h, w, 4],
  };
  for (const [key, shape] of Object.entries(expected) as [keyof PointHoiOutputs, number[]][]) {
    const got = o[key]?.shape;
    if (got === undefined || !tf.util.arraysEqual(got, shape)) {
      throw new ShapeError(`computeLosses: output '${key}' must be ${JSON.stringify(shape)} to match the targets, found ${JSON.stringify(got)}`);
    }
  }
}
