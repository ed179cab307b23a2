/**
 * PointHoiExtractor, registry name `point_hoi`: the HOI extractor of DESIGN "Models" =
 * backbone (ResNet, features c2..c5) -> FPN neck to stride 4 -> point head (PPDM / IP-Net).
 *
 * Input: `images` [B, S, S, 3] NHWC float32, normalized by the data loader (ImageNet mean/std);
 * S divisible by 32 (the config's inputSize; forward accepts any H, W divisible by 32).
 *
 * Outputs (PointHoiOutputs, all NHWC on the grid h = S/4, w = S/4; see point_head.ts):
 *   objectHeatmap       [B, h, w, numCategories]  object centres per category (person included)
 *   objectSize          [B, h, w, 2]              box (width, height), grid units
 *   objectOffset        [B, h, w, 2]              sub-cell offset of the object centre from its cell's corner, [0, 1)
 *   interactionHeatmap  [B, h, w, numVerbs]       interaction points (subject-object midpoints)
 *   interactionOffset   [B, h, w, 2]              sub-cell offset of the interaction point
 *   displacement        [B, h, w, 4]              (dx, dy) from the integer interaction cell to the subject centre, then to the object centre
 * `forward` returns heatmaps as logits (for the focal loss, which wants log-sigmoid), while
 * `predictMaps` and the ONNX graph return them after the sigmoid.
 *
 * ONNX: input `images` NCHW [batch, 3, S, S]; outputs object_heatmap, object_size,
 * object_offset, interaction_heatmap, interaction_offset, displacement, each ending with a
 * Transpose to NHWC [batch, h, w, C], so onnxruntime and tfjs hand the same layout to the one
 * TypeScript decoder.
 *
 * Parameter names: `backbone.*` (torchvision ResNet names), `neck.*`, `head.<branch>.{0,2}.*`.
 */
import { z } from 'zod';
import { tf } from '../../backend/tf';
import { ConfigError } from '../../errors';
import { Dim, OnnxGraph } from '../../export/onnx_graph';
import { BACKBONE_NAMES, Backbone, createBackbone } from '../backbones/registry';
import { Module, assertShape, deriveSeed, fmtShape } from '../nn';
import { FpnNeck } from './neck';
import { POINT_HOI_OUTPUTS, PointHead, PointHoiKey, PointHoiOutputs, tidyMaps } from './point_head';

export { HEATMAP_PRIOR_BIAS, POINT_HOI_OUTPUTS } from './point_head';
export type { PointHoiKey, PointHoiOutputs } from './point_head';

/** Output stride of every map. */
export const POINT_HOI_STRIDE = 4;

export const PointHoiConfigSchema = z
  .object({
    /** Registered backbone name; the paper uses ResNet-50. */
    backbone: z.enum(BACKBONE_NAMES).default('resnet50'),
    /** Backbone width multiplier (CI trains resnet18 at 0.25). */
    width: z.number().positive().max(4).default(1),
    /** Square input side in pixels, divisible by 32 (the feature pyramid halves it five times). */
    inputSize: z.number().int().positive().multipleOf(32, { message: 'inputSize must be divisible by 32 (the stride of c5)' }).default(512),
    /** Object categories of the object heatmap, person included. */
    numCategories: z.number().int().positive(),
    /** Verbs (interaction classes) of the interaction heatmap. */
    numVerbs: z.number().int().positive(),
    /** Channels of the stride-4 neck map. */
    neckChannels: z.number().int().positive().default(128),
    /** Hidden channels of each head branch (CenterNet: 64 for ResNets). */
    headChannels: z.number().int().positive().default(64),
    /** Seed of every initial value. */
    seed: z.number().int().nonnegative().default(0),
  })
  .strict();

/** The resolved config (defaults filled in). */
export type PointHoiConfig = z.infer<typeof PointHoiConfigSchema>;
/** What a caller may pass (defaults optional). */
export type PointHoiConfigInput = z.input<typeof PointHoiConfigSchema>;

/** Validates a model config; a ConfigError names each offending key, what was expected and found. */
export function parseModelConfig<S extends z.ZodTypeAny>(schema: S, raw: unknown, model: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const key = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') return `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    return `${key ? `'${key}'` : '(root)'}: ${issue.message}`;
  });
  throw new ConfigError(`model '${model}' config: ${lines.join('; ')}`);
}

export function parsePointHoiConfig(raw: unknown): PointHoiConfig {
  return parseModelConfig(PointHoiConfigSchema, raw, 'point_hoi');
}

export class PointHoiExtractor extends Module {
  static readonly modelName = 'point_hoi';
  readonly config: PointHoiConfig;
  readonly backbone: Backbone;
  readonly neck: FpnNeck;
  readonly head: PointHead;

  constructor(config: PointHoiConfigInput) {
    super();
    const c = parsePointHoiConfig(config);
    this.config = c;
    this.backbone = this.registerModule('backbone', createBackbone(c.backbone, { width: c.width, seed: deriveSeed(c.seed, 'backbone') }));
    this.neck = this.registerModule('neck', new FpnNeck(this.backbone.featureChannels, c.neckChannels, { seed: deriveSeed(c.seed, 'neck') }));
    this.head = this.registerModule('head', new PointHead(c.neckChannels, {
      numCategories: c.numCategories,
      numVerbs: c.numVerbs,
      headChannels: c.headChannels,
      seed: deriveSeed(c.seed, 'head'),
    }));
  }

  /** Channels of each output. */
  get outputChannels(): Readonly<Record<PointHoiKey, number>> {
    return this.head.outChannels;
  }

  /** NHWC shape of each output for a batch and an input side (default: the config's). */
  outputShapes<B extends Dim>(batch: B, inputSize = this.config.inputSize): Record<PointHoiKey, [B, number, number, number]> {
    const s = inputSize / POINT_HOI_STRIDE;
    const out = {} as Record<PointHoiKey, [B, number, number, number]>;
    for (const { key } of POINT_HOI_OUTPUTS) out[key] = [batch, s, s, this.outputChannels[key]];
    return out;
  }

  private checkImages(images: tf.Tensor4D): void {
    assertShape(images.rank === 4 && images.shape[3] === 3 && images.shape[1] % 32 === 0 && images.shape[2] % 32 === 0,
      () => `point_hoi: images [B,S,S,3] NHWC with S divisible by 32 expected (config inputSize ${this.config.inputSize}), got ${fmtShape(images.shape)}`);
  }

  /** images [B, S, S, 3] -> raw maps: heatmaps as logits (training, losses). */
  forward(images: tf.Tensor4D): PointHoiOutputs {
    this.checkImages(images);
    return tidyMaps(() => {
      const features = this.backbone.forwardFeatures(images); // c2 [B,S/4,S/4,C2] ... c5 [B,S/32,S/32,C5]
      const x = this.neck.forward(features); // [B, S/4, S/4, neckChannels]
      return this.head.forward(x);
    });
  }

  /** images [B, S, S, 3] -> inference maps: heatmaps after the sigmoid (what the ONNX graph returns). */
  predictMaps(images: tf.Tensor4D): PointHoiOutputs {
    return tidyMaps(() => {
      const raw = this.forward(images);
      const out = { ...raw };
      for (const { key, heatmap } of POINT_HOI_OUTPUTS) if (heatmap) out[key] = tf.sigmoid(raw[key]);
      return out;
    });
  }

  /**
   * images: NCHW [B, 3, S, S] value name -> the six NHWC inference maps, in POINT_HOI_OUTPUTS
   * order, named object_heatmap, ... (suffixed if the graph already holds those names).
   */
  toOnnx(g: OnnxGraph, images: string): string[] {
    const o = this.onnxOps(g);
    const features = this.backbone.toOnnxFeatures(g, images);
    const x = this.neck.toOnnx(g, features);
    const maps = this.head.toOnnxMaps(g, x);
    return POINT_HOI_OUTPUTS.map(({ key, name, heatmap }) => {
      const v = heatmap ? o.Sigmoid(maps[key]) : maps[key];
      // [B, C, h, w] -> [B, h, w, C], the tfjs layout.
      return g.node('Transpose', [v], { perm: [0, 2, 3, 1] }, { name: `${name}/Transpose`, outputs: [g.uniqueName(name)] });
    });
  }

  /**
   * The complete export graph: input `images` [batch, 3, S, S], the six outputs [batch, h, w, C]
   * (dynamic batch), metadata with the model name, config and layouts.
   */
  toOnnxGraph(name = PointHoiExtractor.modelName, inputName = 'images'): OnnxGraph {
    const g = new OnnxGraph(name);
    const s = this.config.inputSize;
    const images = g.input(inputName, ['batch', 3, s, s]);
    const outs = this.toOnnx(g, images);
    const shapes = this.outputShapes('batch');
    POINT_HOI_OUTPUTS.forEach(({ key }, i) => g.output(outs[i], shapes[key]));
    g.setMetadata('model_name', PointHoiExtractor.modelName);
    g.setMetadata('model_config', JSON.stringify(this.config));
    g.setMetadata('input_layout', 'NCHW');
    g.setMetadata('output_layout', 'NHWC');
    g.setMetadata('output_stride', String(POINT_HOI_STRIDE));
    g.setMetadata('heatmaps', 'sigmoid');
    return g;
  }
}

/** A registry entry: name, config schema, constructor from an unvalidated config. */
export interface ModelEntry<C, M extends Module> {
  readonly name: string;
  readonly configSchema: z.ZodType<C, z.ZodTypeDef, unknown>;
  create(config: unknown): M;
}

export const POINT_HOI_ENTRY: ModelEntry<PointHoiConfig, PointHoiExtractor> = {
  name: PointHoiExtractor.modelName,
  configSchema: PointHoiConfigSchema,
  create: (config) => new PointHoiExtractor(parsePointHoiConfig(config)),
};

/** HOI extractors by registry name (the set-prediction head will join `point_hoi` here). */
export const HOI_EXTRACTORS = { point_hoi: POINT_HOI_ENTRY } as const;
export type HoiExtractorName = keyof typeof HOI_EXTRACTORS;

/** Builds a registered extractor; unknown names are a ConfigError listing the known ones. */
export function createExtractor(name: string, config: unknown): PointHoiExtractor {
  if (!Object.prototype.hasOwnProperty.call(HOI_EXTRACTORS, name)) {
    throw new ConfigError(`unknown HOI extractor '${name}'; registered: ${Object.keys(HOI_EXTRACTORS).join(', ')}`);
  }
  return HOI_EXTRACTORS[name as HoiExtractorName].create(config);
}
