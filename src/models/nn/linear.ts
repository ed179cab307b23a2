/**
 * Linear: y = x W + b over the last axis, any leading dims, with optional LoRA adapters.
 *
 * Parameters: `weight` [in, out] (the layout of tfjs matMul, and of GPT-2's Conv1D checkpoints),
 * `bias` [out]. The ONNX initializers keep the same [in, out] layout: the export is
 * MatMul(x, weight) + bias, valid for inputs of any rank ([B, in], [B, T, in], ...).
 *
 * LoRA (Hu et al. 2021, as PEFT implements it): `enableLora({ rank: r, alpha })` adds
 * `lora_A` [in, r] (kaiming-uniform, PEFT's default) and `lora_B` [r, out] (zeros), and
 *   y = x W + b + ((dropout(x) A) B) * (alpha / r),
 * so the output is unchanged until B moves away from zero. The adapters are trainable whatever the
 * base's flags (fine-tuning freezes the base first, then enables LoRA). The export emits the same
 * MatMul / MatMul / Mul / Add; `mergeLora()` folds W += A B (alpha / r) and drops the adapters, for
 * an export without them.
 */
import { tf } from '../../backend/tf';
import { ConfigError } from '../../errors';
import type { OnnxGraph } from '../../export/onnx_graph';
import { Dropout } from './dropout';
import { InitFn, deriveSeed, init, nextDefaultSeed } from './init';
import { Module, assertShape, fmtShape } from './module';

export interface LinearOptions {
  bias?: boolean;
  seed?: number;
  /** Default: U(-1/sqrt(in), 1/sqrt(in)) (PyTorch). */
  weightInit?: InitFn;
  /** Default: U(-1/sqrt(in), 1/sqrt(in)) (PyTorch). */
  biasInit?: InitFn;
}

export interface LoraOptions {
  /** Inner dimension r of the update A B (>= 1). */
  rank: number;
  /** The update is scaled by alpha / rank. Default: rank (scale 1). */
  alpha?: number;
  /** Dropout on the adapter's input in training mode. Default 0. */
  dropout?: number;
  /** Seed of lora_A's values (default: derived from the layer's seed). */
  seed?: number;
}

/** The adapters of one Linear while LoRA is enabled. */
interface LoraState {
  a: tf.Variable; // [in, r]
  b: tf.Variable; // [r, out]
  rank: number;
  alpha: number;
  /** alpha / rank. */
  scale: number;
  /** Not a registered child: it holds no state, and must disappear with the adapters. */
  dropout: Dropout;
}

export class Linear extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  private readonly seed: number;
  private lora: LoraState | null = null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    super();
    const seed = opts.seed ?? nextDefaultSeed();
    this.seed = seed;
    this.weight = this.registerParameter('weight', { shape: [inFeatures, outFeatures], init: opts.weightInit ?? init.torchDefault(inFeatures), seed });
    this.bias = opts.bias ?? true
      ? this.registerParameter('bias', { shape: [outFeatures], init: opts.biasInit ?? init.torchDefault(inFeatures), seed })
      : null;
  }

  /** The LoRA adapters (A [in, r], B [r, out]) and scale, or null when LoRA is off. */
  get loraAdapters(): { a: tf.Variable; b: tf.Variable; rank: number; alpha: number; scale: number } | null {
    if (!this.lora) return null;
    const { a, b, rank, alpha, scale } = this.lora;
    return { a, b, rank, alpha, scale };
  }

  /**
   * Registers trainable `lora_A` [in, rank] ~ U(-1/sqrt(in), 1/sqrt(in)) and `lora_B` [rank, out] = 0.
   * The output does not change until lora_B is trained.
   */
  enableLora(opts: LoraOptions): void {
    const where = `Linear(${this.paramPath('weight')}).enableLora`;
    if (this.lora) throw new ConfigError(`${where}: LoRA is already enabled (rank ${this.lora.rank})`);
    const { rank } = opts;
    if (!Number.isInteger(rank) || rank < 1) throw new ConfigError(`${where}: lora.rank must be an integer >= 1, got ${rank}`);
    const alpha = opts.alpha ?? rank;
    if (!(Number.isFinite(alpha) && alpha > 0)) throw new ConfigError(`${where}: lora.alpha must be a number > 0, got ${alpha}`);
    const rate = opts.dropout ?? 0;
    if (!(rate >= 0 && rate < 1)) throw new ConfigError(`${where}: lora.dropout must be in [0, 1), got ${rate}`);
    const seed = opts.seed ?? deriveSeed(this.seed, 'lora');
    const a = this.registerParameter('lora_A', { shape: [this.inFeatures, rank], init: init.torchDefault(this.inFeatures), seed }, { trainable: true });
    const b = this.registerParameter('lora_B', { shape: [rank, this.outFeatures], init: init.zeros(), seed }, { trainable: true });
    this.lora = { a, b, rank, alpha, scale: alpha / rank, dropout: new Dropout(rate, { seed: deriveSeed(seed, 'lora_dropout') }) };
  }

  /**
   * Folds the adapters into the base: weight += A B (alpha / rank); then removes and disposes
   * lora_A / lora_B, so the layer is a plain Linear again (same output in eval mode). Does nothing
   * when LoRA is off.
   */
  mergeLora(): void {
    const lora = this.lora;
    if (!lora) return;
    tf.tidy(() => {
      this.weight.assign(tf.add(this.weight, tf.mul(tf.matMul(lora.a, lora.b), lora.scale))); // [in, out]
    });
    this.removeParameter('lora_A');
    this.removeParameter('lora_B');
    lora.a.dispose();
    lora.b.dispose();
    this.lora = null;
  }

  forward(x: tf.Tensor): tf.Tensor {
    assertShape(x.rank >= 1 && x.shape[x.rank - 1] === this.inFeatures,
      () => `Linear(${this.paramPath('weight')}): input [..., ${this.inFeatures}] expected, got ${fmtShape(x.shape)}`);
    return tf.tidy(() => {
      const lead = x.shape.slice(0, -1);
      const x2 = x.reshape([-1, this.inFeatures]); // [N, in]
      let y = tf.matMul(x2, this.weight as tf.Tensor2D); // [N, out]
      if (this.bias) y = tf.add(y, this.bias);
      if (this.lora) {
        const { a, b, scale, dropout } = this.lora;
        dropout.training = this.training;
        const low = tf.matMul(dropout.forward(x2), a as tf.Tensor2D); // [N, r]
        y = tf.add(y, tf.mul(tf.matMul(low, b as tf.Tensor2D), scale)); // [N, out]
      }
      return y.reshape([...lead, this.outFeatures]); // [..., out]
    });
  }

  toOnnx(g: OnnxGraph, x: string): string {
    const o = this.onnxOps(g);
    let y = o.MatMul(x, this.onnxParam(g, 'weight'));
    if (this.bias) y = o.Add(y, this.onnxParam(g, 'bias'));
    if (this.lora) {
      const low = o.MatMul(x, this.onnxParam(g, 'lora_A')); // [..., r]
      const update = o.Mul(o.MatMul(low, this.onnxParam(g, 'lora_B')), g.constant([this.lora.scale], 'float32', [])); // [..., out]
      y = o.Add(y, update);
    }
    return y;
  }
}
