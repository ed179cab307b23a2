/**
 * ImageAnomalyClassifier, registry name `image_classifier`: the ablation baseline of DESIGN
 * "Models" (does HOI guidance help?). Same backbone as the extractor, global average pooling of
 * c5 and one Linear to a single logit: anomalous (1) vs normal (0).
 *
 * Input: `images` [B, S, S, 3] NHWC float32, normalized by the loader; S divisible by 32.
 * Outputs:
 *   forward(images)  -> logit [B]          (for a binary cross-entropy loss)
 *   predict(images)  -> score [B] in (0,1) (sigmoid of the logit)
 * ONNX: input `images` NCHW [batch, 3, S, S]; outputs `anomaly_logit` [batch] and
 * `anomaly_score` [batch].
 * Parameter names: `backbone.*` (torchvision ResNet names), `fc.weight` [C5, 1], `fc.bias` [1].
 */
import { z } from 'zod';
import { tf } from '../../backend/tf';
import { OnnxGraph } from '../../export/onnx_graph';
import { BACKBONE_NAMES, Backbone, createBackbone } from '../backbones/registry';
import { GlobalAvgPool, Linear, Module, assertShape, deriveSeed, fmtShape } from '../nn';
import { ModelEntry, parseModelConfig } from './point_hoi';

export const ImageClassifierConfigSchema = z
  .object({
    backbone: z.enum(BACKBONE_NAMES).default('resnet50'),
    width: z.number().positive().max(4).default(1),
    inputSize: z.number().int().positive().multipleOf(32, { message: 'inputSize must be divisible by 32 (the stride of c5)' }).default(512),
    seed: z.number().int().nonnegative().default(0),
  })
  .strict();

export type ImageClassifierConfig = z.infer<typeof ImageClassifierConfigSchema>;
export type ImageClassifierConfigInput = z.input<typeof ImageClassifierConfigSchema>;

export function parseImageClassifierConfig(raw: unknown): ImageClassifierConfig {
  return parseModelConfig(ImageClassifierConfigSchema, raw, 'image_classifier');
}

export class ImageAnomalyClassifier extends Module {
  static readonly modelName = 'image_classifier';
  readonly config: ImageClassifierConfig;
  readonly backbone: Backbone;
  readonly pool: GlobalAvgPool;
  readonly fc: Linear;

  constructor(config: ImageClassifierConfigInput) {
    super();
    const c = parseImageClassifierConfig(config);
    this.config = c;
    this.backbone = this.registerModule('backbone', createBackbone(c.backbone, { width: c.width, seed: deriveSeed(c.seed, 'backbone') }));
    this.pool = this.registerModule('pool', new GlobalAvgPool());
    this.fc = this.registerModule('fc', new Linear(this.backbone.featureChannels.c5, 1, { seed: deriveSeed(c.seed, 'fc') }));
  }

  /** images [B, S, S, 3] -> logit [B]. */
  forward(images: tf.Tensor4D): tf.Tensor1D {
    assertShape(images.rank === 4 && images.shape[3] === 3 && images.shape[1] % 32 === 0 && images.shape[2] % 32 === 0,
      () => `image_classifier: images [B,S,S,3] NHWC with S divisible by 32 expected, got ${fmtShape(images.shape)}`);
    return tf.tidy(() => {
      const c5 = this.backbone.forwardFeatures(images).c5; // [B, S/32, S/32, C5]
      const pooled = this.pool.forward(c5); // [B, C5]
      return this.fc.forward(pooled).reshape([-1]) as tf.Tensor1D; // [B, 1] -> [B]
    });
  }

  /** images [B, S, S, 3] -> anomaly score [B] = sigmoid(logit). */
  predict(images: tf.Tensor4D): tf.Tensor1D {
    return tf.tidy(() => tf.sigmoid(this.forward(images)));
  }

  /** images: NCHW [B, 3, S, S] -> [logit [B], score [B]] value names. */
  toOnnx(g: OnnxGraph, images: string): string[] {
    const c5 = this.backbone.toOnnxFeatures(g, images).c5;
    const logit2d = this.fc.toOnnx(g, this.pool.toOnnx(g, c5)); // [B, 1]
    const logit = g.node('Squeeze', [logit2d, g.constant([1], 'int64')], {}, { name: 'anomaly_logit/Squeeze', outputs: [g.uniqueName('anomaly_logit')] }); // [B]
    const score = g.node('Sigmoid', [logit], {}, { name: 'anomaly_score/Sigmoid', outputs: [g.uniqueName('anomaly_score')] }); // [B]
    return [logit, score];
  }

  /** The export graph: input `images` [batch, 3, S, S]; outputs anomaly_logit, anomaly_score [batch]. */
  toOnnxGraph(name = ImageAnomalyClassifier.modelName): OnnxGraph {
    const g = new OnnxGraph(name);
    const s = this.config.inputSize;
    const [logit, score] = this.toOnnx(g, g.input('images', ['batch', 3, s, s]));
    g.output(logit, ['batch']);
    g.output(score, ['batch']);
    g.setMetadata('model_name', ImageAnomalyClassifier.modelName);
    g.setMetadata('model_config', JSON.stringify(this.config));
    g.setMetadata('input_layout', 'NCHW');
    return g;
  }
}

export const IMAGE_CLASSIFIER_ENTRY: ModelEntry<ImageClassifierConfig, ImageAnomalyClassifier> = {
  name: ImageAnomalyClassifier.modelName,
  configSchema: ImageClassifierConfigSchema,
  create: (config) => new ImageAnomalyClassifier(parseImageClassifierConfig(config)),
};
