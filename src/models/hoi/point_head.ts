/**
 * The point head (PPDM / IP-Net style): six dense branches on the stride-4 neck map, each
 * conv3x3 (+bias) -> ReLU -> conv1x1, as CenterNet's heads.
 *
 * Parameters: `<branch>.0.{weight,bias}` (3x3) and `<branch>.2.{weight,bias}` (1x1), branch in
 * object_heatmap, object_size, object_offset, interaction_heatmap, interaction_offset,
 * displacement.
 *
 * Init (CenterNet): heatmap branches end with bias -2.19, so that sigmoid(logit) ~ 0.1 at the
 * start and the focal loss is not swamped by the background (Lin et al., "prior probability");
 * the 1x1 of the regression branches is N(0, 0.001^2) with zero bias (`fill_fc_weights`), so
 * sizes, offsets and displacements start at ~0. The 3x3 convs keep PyTorch's default init.
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph } from '../../export/onnx_graph';
import { Conv2d, Module, ReLU, Sequential, assertShape, deriveSeed, fmtShape, init } from '../nn';
import type { PointHoiOutputs } from './types';

export type { PointHoiOutputs } from './types';

/** CenterNet's heatmap bias: sigmoid(-2.19) = 0.1006. */
export const HEATMAP_PRIOR_BIAS = -2.19;

/**
 * The maps (PointHoiOutputs, ./types), NHWC on the grid h = H/4, w = W/4 (H, W: input size);
 * grid units (1 cell = 4 input pixels):
 *   objectHeatmap       [B, h, w, numCategories]  object centres per category, person included (logits from forward)
 *   objectSize          [B, h, w, 2]  (w, h) of the box, read at its centre cell
 *   objectOffset        [B, h, w, 2]  (dx, dy) of the centre from its cell's corner, in [0, 1)
 *   interactionHeatmap  [B, h, w, numVerbs]  interaction points (subject-object midpoints) per verb (logits)
 *   interactionOffset   [B, h, w, 2]  sub-cell offset of the interaction point
 *   displacement        [B, h, w, 4]  (dx, dy) from the integer interaction cell to the subject centre, then to the object centre
 */
export type PointHoiKey = keyof PointHoiOutputs;

/** The outputs in their fixed order: tfjs key, ONNX output name, whether it is a heatmap. */
export const POINT_HOI_OUTPUTS: ReadonlyArray<{ key: PointHoiKey; name: string; heatmap: boolean }> = [
  { key: 'objectHeatmap', name: 'object_heatmap', heatmap: true },
  { key: 'objectSize', name: 'object_size', heatmap: false },
  { key: 'objectOffset', name: 'object_offset', heatmap: false },
  { key: 'interactionHeatmap', name: 'interaction_heatmap', heatmap: true },
  { key: 'interactionOffset', name: 'interaction_offset', heatmap: false },
  { key: 'displacement', name: 'displacement', heatmap: false },
];

export interface PointHeadOptions {
  numCategories: number;
  numVerbs: number;
  /** Hidden channels of each branch. */
  headChannels: number;
  seed?: number;
}

export class PointHead extends Module {
  readonly branches: ReadonlyMap<PointHoiKey, Sequential>;
  /** Output channels per key. */
  readonly outChannels: Readonly<Record<PointHoiKey, number>>;

  constructor(readonly inChannels: number, readonly opts: PointHeadOptions) {
    super();
    const seed = opts.seed ?? 0;
    this.outChannels = {
      objectHeatmap: opts.numCategories,
      objectSize: 2,
      objectOffset: 2,
      interactionHeatmap: opts.numVerbs,
      interactionOffset: 2,
      displacement: 4,
    };
    const branches = new Map<PointHoiKey, Sequential>();
    for (const { key, name, heatmap } of POINT_HOI_OUTPUTS) {
      const s = deriveSeed(seed, name);
      const out = this.outChannels[key];
      const branch = new Sequential([
        new Conv2d(inChannels, opts.headChannels, { kernelSize: 3, padding: 'same', seed: deriveSeed(s, 0) }),
        new ReLU(),
        new Conv2d(opts.headChannels, out, heatmap
          ? { kernelSize: 1, seed: deriveSeed(s, 2), biasInit: init.constant(HEATMAP_PRIOR_BIAS) }
          : { kernelSize: 1, seed: deriveSeed(s, 2), weightInit: init.normal(0.001), biasInit: init.zeros() }),
      ]);
      branches.set(key, this.registerModule(name, branch));
    }
    this.branches = branches;
  }

  /** x: [B, h, w, inChannels] -> raw maps (heatmaps as logits), each [B, h, w, C_key]. */
  forward(x: tf.Tensor4D): PointHoiOutputs {
    assertShape(x.rank === 4 && x.shape[3] === this.inChannels,
      () => `PointHead(${this.onnxScope()}): input [B,h,w,${this.inChannels}] expected, got ${fmtShape(x.shape)}`);
    return tidyMaps(() => {
      const out = {} as PointHoiOutputs;
      for (const [key, branch] of this.branches) out[key] = branch.forward(x) as tf.Tensor4D;
      return out;
    });
  }

  /** x: NCHW [B, inChannels, h, w] -> raw NCHW maps by key. */
  toOnnxMaps(g: OnnxGraph, x: string): Record<PointHoiKey, string> {
    const out = {} as Record<PointHoiKey, string>;
    for (const [key, branch] of this.branches) out[key] = branch.toOnnx(g, x);
    return out;
  }

  /** x: NCHW [B, inChannels, h, w] -> raw NCHW maps in POINT_HOI_OUTPUTS order. */
  toOnnx(g: OnnxGraph, x: string): string[] {
    const maps = this.toOnnxMaps(g, x);
    return POINT_HOI_OUTPUTS.map(({ key }) => maps[key]);
  }
}

/** tf.tidy for a function returning the six maps (an interface, which tidy's TensorContainer type does not admit). */
export function tidyMaps(f: () => PointHoiOutputs): PointHoiOutputs {
  return tf.tidy(() => f() as unknown as tf.TensorContainerObject) as unknown as PointHoiOutputs;
}
