/**
 * FPN-style neck to stride 4: the point head works on one map at a quarter of the input
 * resolution (CenterNet / PPDM output stride 4).
 *
 *   p5 = lateral_c5(c5)                       // [B, S/32, S/32, N]
 *   p4 = lateral_c4(c4) + up2(p5)             // [B, S/16, S/16, N]
 *   p3 = lateral_c3(c3) + up2(p4)             // [B, S/8,  S/8,  N]
 *   p2 = lateral_c2(c2) + up2(p3)             // [B, S/4,  S/4,  N]
 *   out = relu(bn(conv3x3(p2)))               // [B, S/4,  S/4,  N]
 *
 * Laterals are 1x1 convs with bias; up2 is nearest x2 (exact in ONNX Resize, see upsample.ts);
 * the fuse conv smooths the aliasing of the nearest upsampling. Parameters:
 * `lateral_c{2..5}.{weight,bias}`, `fuse.0.weight`, `fuse.1.*` (batch norm).
 * Feature sizes must halve exactly from level to level: inputs divisible by 32.
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph } from '../../export/onnx_graph';
import type { FeatureChannels, FeatureMaps, FeatureNames } from '../backbones/resnet';
import { BatchNorm2d, Conv2d, Module, ReLU, Sequential, Upsample, assertShape, deriveSeed, fmtShape, init } from '../nn';

export interface FpnNeckOptions {
  seed?: number;
}

export class FpnNeck extends Module {
  readonly lateralC2: Conv2d;
  readonly lateralC3: Conv2d;
  readonly lateralC4: Conv2d;
  readonly lateralC5: Conv2d;
  readonly up: Upsample;
  readonly fuse: Sequential;

  constructor(readonly inChannels: FeatureChannels, readonly outChannels: number, opts: FpnNeckOptions = {}) {
    super();
    const seed = opts.seed ?? 0;
    const lateral = (level: keyof FeatureChannels): Conv2d =>
      new Conv2d(inChannels[level], outChannels, { kernelSize: 1, seed: deriveSeed(seed, 'lateral', level) });
    this.lateralC2 = this.registerModule('lateral_c2', lateral('c2'));
    this.lateralC3 = this.registerModule('lateral_c3', lateral('c3'));
    this.lateralC4 = this.registerModule('lateral_c4', lateral('c4'));
    this.lateralC5 = this.registerModule('lateral_c5', lateral('c5'));
    this.up = this.registerModule('up', new Upsample({ scaleFactor: 2, mode: 'nearest' }));
    this.fuse = this.registerModule('fuse', new Sequential([
      new Conv2d(outChannels, outChannels, {
        kernelSize: 3, padding: 'same', bias: false, seed: deriveSeed(seed, 'fuse'), weightInit: init.heNormal(outChannels * 9),
      }),
      new BatchNorm2d(outChannels),
      new ReLU(),
    ]));
  }

  /** Feature maps -> [B, H/4, W/4, outChannels] (H, W: the input image size). */
  forward(f: FeatureMaps): tf.Tensor4D {
    const b = f.c2.shape[0];
    const halves = (a: tf.Tensor4D, big: tf.Tensor4D): boolean =>
      a.shape[0] === b && 2 * a.shape[1] === big.shape[1] && 2 * a.shape[2] === big.shape[2];
    assertShape(halves(f.c3, f.c2) && halves(f.c4, f.c3) && halves(f.c5, f.c4),
      () => `FpnNeck(${this.onnxScope()}): feature sizes must halve exactly (input side divisible by 32), got c2 ${fmtShape(f.c2.shape)}, c3 ${fmtShape(f.c3.shape)}, c4 ${fmtShape(f.c4.shape)}, c5 ${fmtShape(f.c5.shape)}`);
    return tf.tidy(() => {
      let p = this.lateralC5.forward(f.c5); // [B, H/32, W/32, N]
      p = tf.add(this.lateralC4.forward(f.c4), this.up.forward(p)); // [B, H/16, W/16, N]
      p = tf.add(this.lateralC3.forward(f.c3), this.up.forward(p)); // [B, H/8, W/8, N]
      p = tf.add(this.lateralC2.forward(f.c2), this.up.forward(p)); // [B, H/4, W/4, N]
      return this.fuse.forward(p) as tf.Tensor4D;
    });
  }

  /** NCHW feature names -> NCHW [B, outChannels, H/4, W/4]. */
  toOnnx(g: OnnxGraph, f: FeatureNames): string {
    const o = this.onnxOps(g);
    let p = this.lateralC5.toOnnx(g, f.c5);
    p = o.Add(this.lateralC4.toOnnx(g, f.c4), this.up.toOnnx(g, p));
    p = o.Add(this.lateralC3.toOnnx(g, f.c3), this.up.toOnnx(g, p));
    p = o.Add(this.lateralC2.toOnnx(g, f.c2), this.up.toOnnx(g, p));
    return this.fuse.toOnnx(g, p);
  }
}
