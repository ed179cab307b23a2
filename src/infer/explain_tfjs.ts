/**
 * The explainer on tfjs: the source explainer run the manifest names (loadVlp, LoRA adapters
 * folded in as at export) and the extractor checkpoint whose backbone it was trained on; per image,
 * backbone C5 of the extractor's input -> `generate` with the manifest's settings. The HOI slots,
 * instruction and generation options are the ones the ONNX engine uses (explainer_inputs.ts).
 *
 * `explainerVisual` and `vlpInputsOf` are also the tfjs reference of `export onnx`'s parity check.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../backend/tf';
import { DataError } from '../errors';
import { loadExtractor } from '../eval/extractor_eval';
import { loadVlp } from '../eval/vlp_eval';
import { PointHoiExtractor } from '../models/hoi/point_hoi';
import type { VlpExplainer, VlpInputs } from '../models/vlp/explainer';
import { generate } from '../models/vlp/generate';
import { mergeAllLora } from '../models/vlp/lora';
import type { VlpTokenizer } from '../models/vlp/tokenizer';
import { MODEL_FILE } from '../train/checkpoint';
import { sha256File } from './engines';
import type { ExplainerInput, ExplanationEngine } from './explainer_hook';
import { type ExplainerArrays, explainerArrays, explainerGenerateOptions, explainerSlots, explainerText } from './explainer_inputs';
import type { ExplainerSection, ExportManifest } from './manifest';

/** Backbone C5 of a batch of extractor inputs: images [n, 3, S, S] NCHW -> [n, h, w, C] NHWC. */
export function explainerVisual(extractor: PointHoiExtractor, images: Float32Array, n: number): tf.Tensor4D {
  const S = extractor.config.inputSize;
  return tf.tidy(() => {
    const nhwc = tf.transpose(tf.tensor4d(images, [n, 3, S, S], 'float32'), [0, 2, 3, 1]) as tf.Tensor4D; // [n, S, S, 3]
    return extractor.backbone.forwardFeatures(nhwc).c5; // [n, S/32, S/32, C5]
  });
}

/** VlpInputs over `visual` (kept by the caller) from the host arrays; dispose with disposeVlpInputs. */
export function vlpInputsOf(visual: tf.Tensor4D, a: ExplainerArrays): VlpInputs {
  const n = a.batch;
  const M = a.hoiSubject.length / n, Li = a.instruction.length / n;
  return {
    visual,
    hoiSubject: tf.tensor2d(a.hoiSubject, [n, M], 'int32'),
    hoiVerb: tf.tensor2d(a.hoiVerb, [n, M], 'int32'),
    hoiObject: tf.tensor2d(a.hoiObject, [n, M], 'int32'),
    hoiSubjectBox: tf.tensor3d(a.hoiSubjectBox, [n, M, 4]),
    hoiObjectBox: tf.tensor3d(a.hoiObjectBox, [n, M, 4]),
    instruction: tf.tensor2d(a.instruction, [n, Li], 'int32'),
  };
}

/** Disposes the tensors vlpInputsOf made (not `visual`). */
export function disposeVlpInputs(inputs: VlpInputs): void {
  const { visual: _visual, ...rest } = inputs;
  tf.dispose(Object.values(rest));
}

/** Checks that `dir`'s model.safetensors is the one exported (sha256). */
function checkWeights(dir: string, sha256: string, what: string, modelDir: string): void {
  const weights = path.join(dir, MODEL_FILE);
  if (!fs.existsSync(weights)) {
    throw new DataError(`${path.join(modelDir, 'manifest.json')}: ${what} checkpoint not found at ${dir} (the tfjs engine needs the export folder beside its source runs; use --engine onnx otherwise)`);
  }
  if (sha256File(weights) !== sha256) throw new DataError(`${weights}: differs from the weights exported (sha256 mismatch); re-export, or use --engine onnx`);
}

export class TfjsExplanationEngine implements ExplanationEngine {
  readonly name = 'tfjs' as const;

  private constructor(
    private readonly model: VlpExplainer,
    private readonly extractor: PointHoiExtractor,
    private readonly tokenizer: VlpTokenizer,
    private readonly e: ExplainerSection,
    private readonly labels: { categories: string[]; verbs: string[] },
  ) {}

  /** The source runs of an export folder (paths relative to it), their weights checked against the manifest. */
  static fromExport(modelDir: string, manifest: ExportManifest): TfjsExplanationEngine {
    const e = manifest.explainer!;
    const spec = manifest.models.vlp_prefix!;
    const vlpDir = path.resolve(modelDir, spec.source_checkpoint);
    const backboneDir = path.resolve(modelDir, e.visual_backbone.source_checkpoint);
    checkWeights(vlpDir, spec.source_sha256, 'explainer source', modelDir);
    checkWeights(backboneDir, e.visual_backbone.source_sha256, 'visual backbone (extractor)', modelDir);
    const vlp = loadVlp(vlpDir);
    mergeAllLora(vlp.model); // as exported: the same weights, and no adapter matmuls per token
    const ex = loadExtractor(backboneDir);
    if (!(ex.model instanceof PointHoiExtractor)) {
      ex.model.dispose();
      vlp.model.dispose();
      throw new DataError(`${backboneDir}: not a HOI extractor checkpoint`);
    }
    return new TfjsExplanationEngine(vlp.model, ex.model, vlp.tokenizer, e, { categories: manifest.categories, verbs: manifest.verbs });
  }

  async explain(x: ExplainerInput): Promise<string> {
    const slots = explainerSlots(x.triplets, x.original, this.e, this.labels);
    const a = explainerArrays([slots], this.e, this.labels);
    const visual = explainerVisual(this.extractor, x.input, 1);
    const inputs = vlpInputsOf(visual, a);
    try {
      const [ids] = generate(this.model, inputs, { ...explainerGenerateOptions(this.e), useCache: true });
      return explainerText(this.tokenizer, ids, this.e, slots);
    } finally {
      disposeVlpInputs(inputs);
      visual.dispose();
    }
  }

  async dispose(): Promise<void> {
    this.model.dispose();
    this.extractor.dispose();
  }
}
