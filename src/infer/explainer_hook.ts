/**
 * The explainer's place in the explain pipeline (DESIGN "Models": the VLP explainer generates the
 * explanation from the image and the detected HOI pairs with their boxes).
 *
 * The pipeline calls `loadExplanationEngine` once per run and `explain` once per image; without an
 * explainer in the export (no `vlp_prefix` in the manifest) there is no engine and the
 * explanation is null. Engines:
 *   onnx  vlp_prefix.onnx (extractor backbone + prefix encoder) then vlp_decoder.onnx steps
 *         (explain_onnx.ts);
 *   tfjs  the source explainer run and its backbone checkpoint, `generate` (explain_tfjs.ts).
 * Both build the same HOI slots, instruction and generation options (explainer_inputs.ts).
 */
import type { OriginalInfo } from '../data/loader';
import { DataError, UsageError } from '../errors';
import type { AnnotatedTriplet } from '../models/hoi/decode';
import type { EngineName } from './engines';
import { explainerProblem, type ExportManifest } from './manifest';

/** What the explainer sees of one image. */
export interface ExplainerInput {
  /** The image file. */
  source: string;
  /** [1, 3, S, S] float32, normalized as the manifest says (the extractor's input). */
  input: Float32Array;
  inputSize: number;
  /** Decoded triplets, score desc, boxes in model-input pixels. */
  triplets: readonly AnnotatedTriplet[];
  /**
   * The image's size and letterbox geometry: the explainer was trained on boxes normalized by the
   * image's own width and height, not on model-input pixels.
   */
  original: OriginalInfo;
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
export async function loadExplanationEngine(
  manifest: ExportManifest, modelDir: string, engine: EngineName, opts: { threads?: number } = {},
): Promise<ExplanationEngine | null> {
  if (!hasExplainer(manifest)) return null;
  const problem = explainerProblem(manifest);
  if (problem) throw new DataError(`${modelDir}: ${problem}`);
  if (engine === 'onnx') {
    const { OnnxExplanationEngine } = await import('./explain_onnx.js');
    return OnnxExplanationEngine.create(modelDir, manifest, opts);
  }
  if (engine === 'tfjs') {
    const { TfjsExplanationEngine } = await import('./explain_tfjs.js');
    return TfjsExplanationEngine.fromExport(modelDir, manifest);
  }
  throw new UsageError(`unknown engine '${String(engine)}'`);
}
