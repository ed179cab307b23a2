/**
 * The explainer's place in the explain pipeline (DESIGN "Models": the VLP explainer generates the
 * explanation from the image and the detected HOI pairs with their boxes).
 *
 * The pipeline calls `loadExplanationEngine` once per run and `explain` once per image; without an
 * explainer in the export (no `vlp_prefix` in the manifest) there is no engine and the
 * explanation is null. The VLP model (src/models/vlp) is being written separately.
 *
 * TODO(vlp): wire `loadExplanationEngine`:
 *   onnx: sessions over vlp_prefix.onnx and vlp_decoder.onnx + VlpTokenizer.fromFile(tokenizer.json);
 *         prefix(image, HOI tokens, instruction) -> caches, then decoder steps (greedy, the
 *         manifest's generation settings) until EOS;
 *   tfjs: VlpExplainer from the manifest's vlp source checkpoint + generate(model, inputs, opts).
 * Both must build the same HOI tokens from `ExplainerInput.triplets` (model-input pixels).
 */
import { UsageError } from '../errors';
import type { AnnotatedTriplet } from '../models/hoi/decode';
import type { EngineName } from './engines';
import type { ExportManifest } from './manifest';

/** What the explainer sees of one image. */
export interface ExplainerInput {
  /** The image file. */
  source: string;
  /** [1, 3, S, S] float32, normalized as the manifest says (the extractor's input). */
  input: Float32Array;
  inputSize: number;
  /** Decoded triplets, score desc, boxes in model-input pixels (the frame the VLP was trained in). */
  triplets: readonly AnnotatedTriplet[];
  verdict: 'anomalous' | 'normal';
  anomalyScore: number;
}

export interface ExplanationEngine {
  readonly name: EngineName;
  /** The generated explanation text of one image. */
  explain(x: ExplainerInput): Promise<string>;
  dispose(): Promise<void>;
}

/** Whether the export folder holds an explainer. */
export function hasExplainer(manifest: ExportManifest): boolean {
  return manifest.models.vlp_prefix !== undefined || manifest.models.vlp_decoder !== undefined;
}

/**
 * The explainer of an export folder for the chosen engine, or null when the export has none (the
 * pipeline then reports `explanation: null`).
 */
export async function loadExplanationEngine(manifest: ExportManifest, modelDir: string, engine: EngineName): Promise<ExplanationEngine | null> {
  if (!hasExplainer(manifest)) return null;
  // TODO(vlp): see the file comment. Until then an export with an explainer cannot be explained
  // half-way: fail loudly rather than print verdicts without the explanations the user asked for.
  throw new UsageError(`${modelDir}: explainer inference (${engine}) is not wired yet; this build explains with the extractor only`);
}
