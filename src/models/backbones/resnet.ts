/**
 * ResNet-18 / 34 (BasicBlock) and ResNet-50 (Bottleneck, torchvision v1.5: stride on the 3x3),
 * with torchvision's structure and parameter names so that a converted torchvision checkpoint
 * loads by name:
 *
 *   conv1.weight  bn1.{weight,bias,running_mean,running_var}
 *   layer{1..4}.{i}.conv{1,2[,3]}.weight  layer{1..4}.{i}.bn{1,2[,3]}.*
 *   layer{1..4}.0.downsample.0.weight (1x1 conv)  layer{1..4}.0.downsample.1.* (batch norm)
 *   fc.{weight,bias}  (only with numClasses > 0)
 *
 * Layouts differ from PyTorch in memory (conv weights HWIO, Linear weight [in, out]); a converter
 * transposes (OIHW -> HWIO, [out, in] -> [in, out]). Padding is torchvision's explicit symmetric
 * padding (7x7/s2 pad 3, 3x3 pad 1, max pool 3x3/s2 pad 1), not TF 'same', which would put the
 * stride-2 padding on the bottom/right only and change what pretrained filters see.
 *
 * Width multiplier: stage widths 64, 128, 256, 512 times `width`, rounded to a multiple of 8
 * (minimum 8); the stem has the width of stage 1. Bottleneck outputs are 4 x the stage width.
 *
 * Init (torchvision): conv weights N(0, 2 / fan_out) (kaiming_normal_, mode fan_out, relu), batch
 * norms ones/zeros, fc PyTorch default. All values seeded by `seed` and the parameter path.
 *
 * Features: c2 = layer1 (stride 4), c3 = layer2 (8), c4 = layer3 (16), c5 = layer4 (32); for an
 * input side S divisible by 32 they are exactly S/4, S/8, S/16, S/32.
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph } from '../../export/onnx_graph';
import {
  BatchNorm2d, Conv2d, GlobalAvgPool, Linear, MaxPool2d, Module, Padding2d, Sequential, assertShape, deriveSeed, fmtShape, init,
} from '../nn';

/** Feature maps by level; NHWC tensors in tfjs. (A type alias: tf.tidy accepts it as a TensorContainer.) */
export type FeatureMaps = {
  /** [B, H/4, W/4, C2] */
  c2: tf.Tensor4D;
  /** [B, H/8, W/8, C3] */
  c3: tf.Tensor4D;
  /** [B, H/16, W/16, C4] */
  c4: tf.Tensor4D;
  /** [B, H/32, W/32, C5] */
  c5: tf.Tensor4D;
};

export type FeatureLevel = keyof FeatureMaps;
export const FEATURE_LEVELS: readonly FeatureLevel[] = ['c2', 'c3', 'c4', 'c5'];
export const FEATURE_STRIDES: Readonly<Record<FeatureLevel, number>> = { c2: 4, c3: 8, c4: 16, c5: 32 };

/** Channels of each feature level. */
export type FeatureChannels = Record<FeatureLevel, number>;
/** ONNX value names of each feature level (NCHW). */
export type FeatureNames = Record<FeatureLevel, string>;

/** The surface every backbone offers (timm's forward_features, as a dict of levels). */
export interface Backbone extends Module {
  readonly name: string;
  readonly featureChannels: FeatureChannels;
  /** Pooled features [B, C5] (or fc logits [B, numClasses] when built with a classifier). */
  forward(x: tf.Tensor4D): tf.Tensor2D;
  /** x: [B, H, W, 3] NHWC -> feature maps at strides 4, 8, 16, 32. */
  forwardFeatures(x: tf.Tensor4D): FeatureMaps;
  /** x: NCHW [B, 3, H, W] value name -> NCHW feature value names. */
  toOnnxFeatures(g: OnnxGraph, x: string): FeatureNames;
  toOnnx(g: OnnxGraph, x: string): string;
}

export type ResNetDepth = 18 | 34 | 50;

export interface ResNetOptions {
  /** Width multiplier (default 1): stage widths round(64 w / 8) * 8, at least 8. */
  width?: number;
  /** > 0 adds torchvision's `fc` (pooled -> numClasses logits). Default 0: no classifier. */
  numClasses?: number;
  /** Seed of every initial value (default 0). */
  seed?: number;
  /** Input channels (default 3). */
  inChannels?: number;
}

const BASE_WIDTHS = [64, 128, 256, 512] as const;

const ARCH: Readonly<Record<ResNetDepth, { block: 'basic' | 'bottleneck'; layers: [number, number, number, number] }>> = {
  18: { block: 'basic', layers: [2, 2, 2, 2] },
  34: { block: 'basic', layers: [3, 4, 6, 3] },
  50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
};

/** A stage width under a width multiplier: round(base * width / 8) * 8, at least 8. */
export function scaledWidth(base: number, width: number): number {
  if (!(Number.isFinite(width) && width > 0)) throw new Error(`ResNet: width multiplier must be a positive number, got ${width}`);
  return Math.max(8, Math.round((base * width) / 8) * 8);
}

/** Conv without bias, torchvision kaiming_normal_(mode='fan_out') init. */
function conv(inC: number, outC: number, k: number, stride: number, padding: Padding2d, seed: number): Conv2d {
  return new Conv2d(inC, outC, { kernelSize: k, stride, padding, bias: false, seed, weightInit: init.heNormal(outC * k * k) });
}

/** 1x1 conv (stride s) + batch norm on the shortcut, as torchvision's `downsample`. */
function downsample(inC: number, outC: number, stride: number, seed: number): Sequential {
  return new Sequential([conv(inC, outC, 1, stride, 'valid', seed), new BatchNorm2d(outC)]);
}

/** conv3x3 - bn - relu - conv3x3 - bn, + shortcut, relu. Output channels = planes. */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(readonly inChannels: number, readonly planes: number, readonly stride: number, seed: number) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inChannels, planes, 3, stride, 1, deriveSeed(seed, 'conv1')));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, 1, 1, deriveSeed(seed, 'conv2')));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample = stride !== 1 || inChannels !== planes
      ? this.registerModule('downsample', downsample(inChannels, planes, stride, deriveSeed(seed, 'downsample')))
      : null;
  }

  get outChannels(): number {
    return this.planes;
  }

  /** x: [B, H, W, in] -> [B, H/stride, W/stride, planes]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const y = this.bn1.forward(this.conv1.forward(x), { relu: true });
      const identity = this.downsample ? (this.downsample.forward(x) as tf.Tensor4D) : x;
      return this.bn2.forward(this.conv2.forward(y), { residual: identity, relu: true }); // relu(bn2(.) + identity)
    });
  }

  /** x: [B, in, H, W] -> [B, planes, H/stride, W/stride]. */
  toOnnx(g: OnnxGraph, x: string): string {
    const o = this.onnxOps(g);
    let y = o.Relu(this.bn1.toOnnx(g, this.conv1.toOnnx(g, x)));
    y = this.bn2.toOnnx(g, this.conv2.toOnnx(g, y));
    const identity = this.downsample ? this.downsample.toOnnx(g, x) : x;
    return o.Relu(o.Add(y, identity));
  }
}

/** conv1x1 - bn - relu - conv3x3 (stride) - bn - relu - conv1x1 (x4) - bn, + shortcut, relu. */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(readonly inChannels: number, readonly planes: number, readonly stride: number, seed: number) {
    super();
    const out = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule('conv1', conv(inChannels, planes, 1, 1, 'valid', deriveSeed(seed, 'conv1')));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, stride, 1, deriveSeed(seed, 'conv2')));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.conv3 = this.registerModule('conv3', conv(planes, out, 1, 1, 'valid', deriveSeed(seed, 'conv3')));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(out));
    this.downsample = stride !== 1 || inChannels !== out
      ? this.registerModule('downsample', downsample(inChannels, out, stride, deriveSeed(seed, 'downsample')))
      : null;
  }

  get outChannels(): number {
    return this.planes * Bottleneck.expansion;
  }

  /** x: [B, H, W, in] -> [B, H/stride, W/stride, 4 planes]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let y = this.bn1.forward(this.conv1.forward(x), { relu: true });
      y = this.bn2.forward(this.conv2.forward(y), { relu: true });
      const identity = this.downsample ? (this.downsample.forward(x) as tf.Tensor4D) : x;
      return this.bn3.forward(this.conv3.forward(y), { residual: identity, relu: true }); // relu(bn3(.) + identity)
    });
  }

  /** x: [B, in, H, W] -> [B, 4 planes, H/stride, W/stride]. */
  toOnnx(g: OnnxGraph, x: string): string {
    const o = this.onnxOps(g);
    let y = o.Relu(this.bn1.toOnnx(g, this.conv1.toOnnx(g, x)));
    y = o.Relu(this.bn2.toOnnx(g, this.conv2.toOnnx(g, y)));
    y = this.bn3.toOnnx(g, this.conv3.toOnnx(g, y));
    const identity = this.downsample ? this.downsample.toOnnx(g, x) : x;
    return o.Relu(o.Add(y, identity));
  }
}

export class ResNet extends Module implements Backbone {
  readonly name: string;
  readonly depth: ResNetDepth;
  readonly width: number;
  readonly numClasses: number;
  readonly inChannels: number;
  /** Widths of the four stages before expansion (64, 128, 256, 512 at width 1). */
  readonly stageWidths: [number, number, number, number];
  readonly featureChannels: FeatureChannels;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly maxpool: MaxPool2d;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  readonly avgpool: GlobalAvgPool;
  readonly fc: Linear | null;

  constructor(depth: ResNetDepth, opts: ResNetOptions = {}) {
    super();
    const arch = ARCH[depth];
    if (!arch) throw new Error(`ResNet: depth ${String(depth)} not supported (18, 34, 50)`);
    this.depth = depth;
    this.name = `resnet${depth}`;
    this.width = opts.width ?? 1;
    this.numClasses = opts.numClasses ?? 0;
    this.inChannels = opts.inChannels ?? 3;
    const seed = opts.seed ?? 0;
    if (!Number.isInteger(this.numClasses) || this.numClasses < 0) throw new Error(`ResNet: numClasses must be an integer >= 0, got ${this.numClasses}`);
    this.stageWidths = BASE_WIDTHS.map((b) => scaledWidth(b, this.width)) as [number, number, number, number];
    const stem = this.stageWidths[0];
    const expansion = arch.block === 'basic' ? BasicBlock.expansion : Bottleneck.expansion;

    this.conv1 = this.registerModule('conv1', conv(this.inChannels, stem, 7, 2, 3, deriveSeed(seed, 'conv1')));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(stem));
    this.maxpool = this.registerModule('maxpool', new MaxPool2d({ kernelSize: 3, stride: 2, padding: 1 }));
    let inC = stem;
    const makeLayer = (index: number): Sequential => {
      const planes = this.stageWidths[index];
      const blocks: Module[] = [];
      for (let i = 0; i < arch.layers[index]; i++) {
        const stride = i === 0 && index > 0 ? 2 : 1;
        const s = deriveSeed(seed, `layer${index + 1}`, i);
        const block = arch.block === 'basic' ? new BasicBlock(inC, planes, stride, s) : new Bottleneck(inC, planes, stride, s);
        inC = block.outChannels;
        blocks.push(block);
      }
      return new Sequential(blocks as BasicBlock[]);
    };
    this.layer1 = this.registerModule('layer1', makeLayer(0));
    this.layer2 = this.registerModule('layer2', makeLayer(1));
    this.layer3 = this.registerModule('layer3', makeLayer(2));
    this.layer4 = this.registerModule('layer4', makeLayer(3));
    this.avgpool = this.registerModule('avgpool', new GlobalAvgPool());
    this.fc = this.numClasses > 0
      ? this.registerModule('fc', new Linear(inC, this.numClasses, { seed: deriveSeed(seed, 'fc') }))
      : null;
    const [w1, w2, w3, w4] = this.stageWidths.map((w) => w * expansion);
    this.featureChannels = { c2: w1, c3: w2, c4: w3, c5: w4 };
  }

  /** x: [B, H, W, inChannels] -> { c2 [B,H/4,W/4,C2], c3 /8, c4 /16, c5 /32 }. */
  forwardFeatures(x: tf.Tensor4D): FeatureMaps {
    assertShape(x.rank === 4 && x.shape[3] === this.inChannels,
      () => `${this.name}${this.path() ? ` (${this.path()})` : ''}: input [B,H,W,${this.inChannels}] expected, got ${fmtShape(x.shape)}`);
    // One tidy for the four outputs: tf.tidy keeps tensors returned in an object.
    return tf.tidy(() => {
      const stem = this.maxpool.forward(this.bn1.forward(this.conv1.forward(x), { relu: true }));
      const c2 = this.layer1.forward(stem) as tf.Tensor4D;
      const c3 = this.layer2.forward(c2) as tf.Tensor4D;
      const c4 = this.layer3.forward(c3) as tf.Tensor4D;
      const c5 = this.layer4.forward(c4) as tf.Tensor4D;
      return { c2, c3, c4, c5 };
    });
  }

  /** x: [B, H, W, 3] -> pooled c5 [B, C5], or fc logits [B, numClasses] with a classifier. */
  forward(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const pooled = this.avgpool.forward(this.forwardFeatures(x).c5) as tf.Tensor2D; // [B, C5]
      return this.fc ? (this.fc.forward(pooled) as tf.Tensor2D) : pooled;
    });
  }

  /** x: NCHW [B, 3, H, W] -> NCHW feature value names. */
  toOnnxFeatures(g: OnnxGraph, x: string): FeatureNames {
    const o = this.onnxOps(g);
    const stem = this.maxpool.toOnnx(g, o.Relu(this.bn1.toOnnx(g, this.conv1.toOnnx(g, x))));
    const c2 = this.layer1.toOnnx(g, stem);
    const c3 = this.layer2.toOnnx(g, c2);
    const c4 = this.layer3.toOnnx(g, c3);
    const c5 = this.layer4.toOnnx(g, c4);
    return { c2, c3, c4, c5 };
  }

  /** x: NCHW [B, 3, H, W] -> [B, C5] (or [B, numClasses]). */
  toOnnx(g: OnnxGraph, x: string): string {
    const pooled = this.avgpool.toOnnx(g, this.toOnnxFeatures(g, x).c5);
    return this.fc ? this.fc.toOnnx(g, pooled) : pooled;
  }
}
