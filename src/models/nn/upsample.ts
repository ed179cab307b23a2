/**
 * Upsample (resize) by a scale factor or to a fixed size, nearest or bilinear.
 *
 * Coordinate conventions, chosen so that tfjs and ONNX Resize compute the same thing exactly:
 * - bilinear: tfjs resizeBilinear(alignCorners = false, halfPixelCenters = true), source
 *   coordinate (x + 0.5) / scale - 0.5 clamped to the image = ONNX mode 'linear',
 *   coordinate_transformation_mode 'half_pixel' (PyTorch align_corners=False, OpenCV).
 * - nearest: tfjs resizeNearestNeighbor(alignCorners = false, halfPixelCenters = false), source
 *   index floor(x / scale) = ONNX mode 'nearest', coordinate_transformation_mode 'asymmetric',
 *   nearest_mode 'floor' (PyTorch mode='nearest'). Exact for integer scale factors; for a fixed
 *   size whose ratio is not representable in float32 an index can differ where x / scale lands on
 *   an integer.
 * Scale factors export as a constant `scales` input [1, 1, sH, sW] (any batch and image size);
 * a fixed size as `sizes` = concat(shape(x)[0:2], [H, W]).
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph, ResizeAttrs } from '../../export/onnx_graph';
import { Pair, pair } from './conv';
import { Module, assertShape, fmtShape } from './module';

export type UpsampleMode = 'nearest' | 'bilinear';

export interface UpsampleOptions {
  /** Integer factors >= 1 (output = input x factor). Give this or `size`. */
  scaleFactor?: Pair;
  /** Fixed output [H, W]. */
  size?: [number, number];
  /** Default 'nearest'. */
  mode?: UpsampleMode;
}

export class Upsample extends Module {
  readonly scaleFactor: [number, number] | null;
  readonly size: [number, number] | null;
  readonly mode: UpsampleMode;

  constructor(opts: UpsampleOptions) {
    super();
    if ((opts.scaleFactor === undefined) === (opts.size === undefined)) throw new Error('Upsample: give exactly one of scaleFactor and size');
    this.scaleFactor = opts.scaleFactor !== undefined ? pair(opts.scaleFactor) : null;
    // A fractional factor would make ONNX map coordinates by the factor and tfjs by in/out.
    if (this.scaleFactor && this.scaleFactor.some((f) => !Number.isInteger(f) || f < 1)) {
      throw new Error(`Upsample: integer scale factors >= 1 expected, got ${fmtShape(this.scaleFactor)} (use size for other ratios)`);
    }
    this.size = opts.size ?? null;
    this.mode = opts.mode ?? 'nearest';
  }

  outputSize(h: number, w: number): [number, number] {
    if (this.size) return this.size;
    const [sh, sw] = this.scaleFactor as [number, number];
    return [h * sh, w * sw];
  }

  /** x: [B, H, W, C] -> [B, H', W', C]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    assertShape(x.rank === 4, () => `Upsample(${this.onnxScope()}): input [B,H,W,C] expected, got ${fmtShape(x.shape)}`);
    const size = this.outputSize(x.shape[1], x.shape[2]);
    return this.mode === 'bilinear'
      ? tf.image.resizeBilinear(x, size, false, true)
      : tf.image.resizeNearestNeighbor(x, size, false, false);
  }

  /** x: [B, C, H, W] -> [B, C, H', W']. */
  toOnnx(g: OnnxGraph, x: string): string {
    const o = this.onnxOps(g);
    const attrs: ResizeAttrs = this.mode === 'bilinear'
      ? { mode: 'linear', coordinate_transformation_mode: 'half_pixel' }
      : { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' };
    if (this.scaleFactor) {
      const scales = g.constant([1, 1, ...this.scaleFactor], 'float32');
      return o.Resize(x, '', scales, undefined, attrs);
    }
    const bc = o.Shape(x, { start: 0, end: 2 }); // [B, C]
    const sizes = o.Concat([bc, g.constant(this.size as [number, number], 'int64')], { axis: 0 }); // [B, C, H', W']
    return o.Resize(x, '', '', sizes, attrs);
  }
}
