/**
 * Shapes shared by the point-based HOI head (PPDM / IP-Net / CenterNet style), its targets, its
 * losses and its decoding. All maps are NHWC at output stride R (grid h = w = S / R).
 */
import type { tf } from '../../backend/tf';

/**
 * What the point-based HOI model returns for a batch. Units are grid cells (1 cell = R input
 * pixels) unless noted.
 *
 * | key | shape | content |
 * |---|---|---|
 * | objectHeatmap | [B, h, w, C] | object-centre scores per category (logits in training, sigmoid in inference) |
 * | objectSize | [B, h, w, 2] | box (w, h) in grid units, read at a centre |
 * | objectOffset | [B, h, w, 2] | sub-cell offset (dx, dy) of the centre from the cell's corner, in [0, 1) (up to 1 on the far border) |
 * | interactionHeatmap | [B, h, w, V] | interaction-point scores per verb (logits / sigmoid) |
 * | interactionOffset | [B, h, w, 2] | sub-cell offset of the interaction point |
 * | displacement | [B, h, w, 4] | (dx, dy) from the integer interaction point to the subject centre, then to the object centre |
 */
// A type alias, not an interface, so that tf.tidy accepts it as a TensorContainer.
export type PointHoiOutputs = {
  objectHeatmap: tf.Tensor4D;
  objectSize: tf.Tensor4D;
  objectOffset: tf.Tensor4D;
  interactionHeatmap: tf.Tensor4D;
  interactionOffset: tf.Tensor4D;
  displacement: tf.Tensor4D;
};

/** The output keys in a fixed order (export names, dumps). */
export const POINT_HOI_OUTPUT_KEYS = [
  'objectHeatmap', 'objectSize', 'objectOffset', 'interactionHeatmap', 'interactionOffset', 'displacement',
] as const satisfies readonly (keyof PointHoiOutputs)[];

/**
 * One image's output maps as plain arrays (what `await t.data()` or ONNX Runtime gives), row-major
 * NHWC without the batch axis: element (y, x, k) of a map with K channels is at (y * width + x) * K + k.
 * Heatmaps hold probabilities (after the sigmoid). Decoding (./decode) reads only these, so the
 * tfjs and ONNX engines share it.
 */
export interface PointHoiMaps {
  /** Grid height h and width w. */
  height: number;
  width: number;
  /** C: object categories. */
  numCategories: number;
  /** V: verbs. */
  numVerbs: number;
  /** [h, w, C] */
  objectHeatmap: Float32Array;
  /** [h, w, 2] */
  objectSize: Float32Array;
  /** [h, w, 2] */
  objectOffset: Float32Array;
  /** [h, w, V] */
  interactionHeatmap: Float32Array;
  /** [h, w, 2] */
  interactionOffset: Float32Array;
  /** [h, w, 4] */
  displacement: Float32Array;
}
