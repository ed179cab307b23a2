/**
 * Backbone registry (timm's create_model): `createBackbone('resnet18', { width: 0.25, seed: 1 })`.
 * Every entry returns a `Backbone`: forwardFeatures -> { c2, c3, c4, c5 } at strides 4..32,
 * featureChannels, toOnnxFeatures, and forward (pooled features).
 */
import { ConfigError } from '../../errors';
import { Backbone, ResNet, ResNetOptions } from './resnet';

export type { Backbone, FeatureChannels, FeatureLevel, FeatureMaps, FeatureNames } from './resnet';
export { FEATURE_LEVELS, FEATURE_STRIDES, ResNet, scaledWidth } from './resnet';

export interface BackboneOptions {
  /** Width multiplier (default 1). */
  width?: number;
  /** Seed of the initial values (default 0). */
  seed?: number;
  /** > 0 adds a classifier (torchvision `fc`); default 0. */
  numClasses?: number;
}

/** Registered names, as a tuple (for z.enum in model configs). */
export const BACKBONE_NAMES = ['resnet18', 'resnet34', 'resnet50'] as const;
export type BackboneName = (typeof BACKBONE_NAMES)[number];

const BACKBONES: Readonly<Record<BackboneName, (o: ResNetOptions) => Backbone>> = {
  resnet18: (o) => new ResNet(18, o),
  resnet34: (o) => new ResNet(34, o),
  resnet50: (o) => new ResNet(50, o),
};

export function isBackboneName(name: string): name is BackboneName {
  return Object.prototype.hasOwnProperty.call(BACKBONES, name);
}

/** Builds a registered backbone; an unknown name is a ConfigError listing the known ones. */
export function createBackbone(name: BackboneName | string, opts: BackboneOptions = {}): Backbone {
  if (!isBackboneName(name)) {
    throw new ConfigError(`unknown backbone '${name}'; registered backbones: ${BACKBONE_NAMES.join(', ')}`);
  }
  if (opts.width !== undefined && !(Number.isFinite(opts.width) && opts.width > 0)) {
    throw new ConfigError(`backbone '${name}': width must be a positive number, got ${opts.width}`);
  }
  return BACKBONES[name]({ width: opts.width, seed: opts.seed, numClasses: opts.numClasses });
}
