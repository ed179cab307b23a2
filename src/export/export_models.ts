/**
 * `export onnx`: trained runs -> a deployment folder (DESIGN "Export"):
 *
 *   extractor.onnx   input `image` [batch, 3, S, S] float32 NCHW, normalized as the manifest says;
 *                    outputs the six head maps, NHWC [batch, S/4, S/4, C], heatmaps after the sigmoid
 *   vlp_prefix.onnx, vlp_decoder.onnx, tokenizer.json   with --vlp (export_explainer.ts)
 *   manifest.json    see src/infer/manifest.ts
 *
 * Every graph is run in onnxruntime-node on sample inputs (seeded noise at batch 2, which also
 * proves the dynamic batch axis, and real images through the explain pre-processing) and compared
 * with tfjs output by output; a difference above the tolerance (1e-4) refuses the export with an
 * ExportError naming the graph, the input, the output and the difference. Files are written into a
 * staging folder that is renamed into place only when everything passed, so a refused export
 * leaves nothing behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { tf } from '../backend/tf';
import { Rng } from '../data/rng';
import { generateScene, parseSynthOptions } from '../data/synth';
import { packageRoot } from '../data/taxonomy';
import { DEFAULT_FILL, IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms';
import { ExportError, UsageError } from '../errors';
import { evaluateExtractor, loadExtractor } from '../eval/extractor_eval';
import { youdenThreshold } from '../eval/ranking';
import { readSplit } from '../data/loader';
import { commitStagingDir, makeStagingDir, writeFileAtomic } from '../fs_atomic';
import { runTfjsMaps, sha256File, oneLine } from '../infer/engines';
import {
  DEFAULT_VERDICT_THRESHOLD, EXPORT_FORMAT_VERSION, EXPORT_MANIFEST_FILE, EXTRACTOR_INPUT_NAME, EXTRACTOR_ONNX_FILE,
  type ExportedModel, type ExportManifest, ExportManifestSchema, type ParityRow, type TensorSpec,
} from '../infer/manifest';
import { type PreparedImage, type PreprocessSpec, prepareDecoded, prepareImageFile, stackInputs } from '../infer/preprocess';
import { log } from '../logger';
import { POINT_HOI_OUTPUTS, POINT_HOI_STRIDE, PointHoiExtractor, type PointHoiKey } from '../models/hoi/point_hoi';
import { MODEL_FILE } from '../train/checkpoint';
import type { VlpExplainer } from '../models/vlp/explainer';
import { exportExplainer } from './export_explainer';
import { maxAbsDiff } from './onnx_check';
import { OPSET_VERSION, OnnxGraph } from './onnx_graph';

/** Largest |onnxruntime - tfjs| an fp32 export may show (DESIGN "Export"). */
export const PARITY_TOLERANCE = 1e-4;

export interface ExportRequest {
  /** A trained extractor run folder (its best checkpoint, else last) or a step-N folder. */
  extractor: string;
  /** A fine-tuned VLP explainer run folder (best checkpoint, else last) or a step-N folder. */
  vlp?: string | null;
  /** The export folder to create. */
  out: string;
  /** Replace an existing `out`. */
  overwrite?: boolean;
  /** Verdict threshold written to the manifest (default 0.5, or calibrated with `calibrateOn`). */
  threshold?: number;
  /**
   * A dataset folder whose val split calibrates the verdict threshold: the anomaly score that
   * maximizes TPR - FPR there (Youden's J). Ignored when `threshold` is given.
   */
  calibrateOn?: string;
  /** Parity tolerance (default 1e-4). */
  tolerance?: number;
  /** Real images for the parity check (default: two scenes of the built-in synth generator). */
  sampleImages?: string[];
  /** onnxruntime intra-op threads (default 2). */
  threads?: number;
  /**
   * Called after the tfjs reference outputs are computed and before the ONNX graph is built. For
   * tests that prove a mismatch is refused (change a weight here); nothing else should need it.
   */
  afterReference?: (model: PointHoiExtractor) => void;
  /** The same for the explainer (after its tfjs references, before its graphs are built). */
  afterVlpReference?: (model: VlpExplainer) => void;
}

export interface ExportResult {
  out: string;
  manifest: ExportManifest;
}

/** A named sample batch, NCHW. */
interface SampleInput {
  name: 'random' | 'images';
  data: Float32Array;
  batch: number;
}

type Maps = Record<PointHoiKey, Float32Array>;

function versions(): ExportManifest['created_with'] {
  let own = '0.0.0';
  try {
    own = String(JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version);
  } catch { /* informative only */ }
  return { hoi2anomaly: own, tfjs: tf.version['tfjs-core'], onnxruntime_node: ort.env.versions?.node ?? 'unknown' };
}

/** Relative path from the export folder, posix separators (the manifest travels between systems). */
function relativeFrom(outDir: string, target: string): string {
  return path.relative(outDir, target).split(path.sep).join('/') || '.';
}

/** The graph of extractor.onnx: input `image` [batch, 3, S, S], the six maps NHWC. */
export function extractorGraph(model: PointHoiExtractor): { graph: OnnxGraph; inputs: TensorSpec[]; outputs: TensorSpec[] } {
  const S = model.config.inputSize;
  const shapes = model.outputShapes('batch');
  return {
    graph: model.toOnnxGraph('hoi2anomaly_extractor', EXTRACTOR_INPUT_NAME),
    inputs: [{ name: EXTRACTOR_INPUT_NAME, shape: ['batch', 3, S, S], dtype: 'float32', layout: 'NCHW' }],
    outputs: POINT_HOI_OUTPUTS.map(({ key, name }) => ({ name, shape: shapes[key], dtype: 'float32', layout: 'NHWC' })),
  };
}

/** Seeded noise at batch 2 and real images, both as the explain pipeline prepares them. */
async function sampleInputs(spec: PreprocessSpec, files: readonly string[] | undefined): Promise<SampleInput[]> {
  const S = spec.inputSize;
  const rng = new Rng(0, 'export-parity');
  const noise = new Float32Array(2 * 3 * S * S);
  for (let i = 0; i < noise.length; i++) noise[i] = rng.normal(0, 1);
  let images: PreparedImage[];
  if (files && files.length > 0) {
    images = await Promise.all(files.map((f) => prepareImageFile(f, spec)));
  } else {
    const opts = parseSynthOptions({ image_size: Math.min(1024, Math.max(64, S)) });
    images = [0, 1].map((k) => {
      const scene = generateScene(0, k, opts);
      return prepareDecoded({ data: scene.pixels, width: scene.width, height: scene.height }, `synth scene ${k}`, spec);
    });
  }
  return [
    { name: 'random', data: noise, batch: 2 },
    { name: 'images', data: stackInputs(images, S), batch: images.length },
  ];
}

/**
 * Runs `file` in onnxruntime on every sample and compares each output with the tfjs reference;
 * throws ExportError (graph, input, output, difference) beyond the tolerance.
 */
async function checkParity(
  file: string, graphName: string, samples: readonly SampleInput[], reference: readonly Maps[], tolerance: number, threads: number,
): Promise<ParityRow[]> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  } catch (err) {
    throw new ExportError(`${graphName}: onnxruntime-node cannot load the exported graph (${oneLine(err)})`, { cause: err });
  }
  const rows: ParityRow[] = [];
  try {
    for (const [k, sample] of samples.entries()) {
      const S = Math.round(Math.sqrt(sample.data.length / (3 * sample.batch)));
      const out = await session.run({ [EXTRACTOR_INPUT_NAME]: new ort.Tensor('float32', sample.data, [sample.batch, 3, S, S]) });
      for (const { key, name } of POINT_HOI_OUTPUTS) {
        const got = out[name];
        if (!got || got.dims[0] !== sample.batch) {
          throw new ExportError(`${graphName}: output '${name}' on the ${sample.name} input (batch ${sample.batch}) has dims [${got?.dims ?? 'missing'}]`);
        }
        const diff = maxAbsDiff(got.data as Float32Array, reference[k][key]);
        rows.push({ input: sample.name, batch: sample.batch, output: name, max_abs_diff: diff });
        if (!(diff <= tolerance)) {
          throw new ExportError(`${graphName}: output '${name}' on the ${sample.name} input (batch ${sample.batch}) differs from tfjs by ${diff.toExponential(2)} (max abs diff; tolerance ${tolerance.toExponential(0)}); export refused`);
        }
      }
    }
  } finally {
    await session.release();
  }
  return rows;
}

/** The extractor part: extractor.onnx in `staging`, parity-checked; returns its manifest entry and labels. */
async function exportExtractor(req: ExportRequest, staging: string, outDir: string, spec: (inputSize: number) => PreprocessSpec) {
  const loaded = loadExtractor(req.extractor);
  const model = loaded.model;
  try {
    if (!(model instanceof PointHoiExtractor)) throw new UsageError(`${loaded.dir}: an image-level classifier run; export takes a HOI extractor run`);
    if (loaded.run.kind !== 'point_hoi') throw new UsageError(`${loaded.dir}: run of kind '${loaded.run.kind}', expected point_hoi`);
    const pre = spec(model.config.inputSize);
    const samples = await sampleInputs(pre, req.sampleImages);
    const reference: Maps[] = [];
    for (const s of samples) reference.push((await runTfjsMaps(model, s.data, s.batch)).maps);
    req.afterReference?.(model);

    const { graph, inputs, outputs } = extractorGraph(model);
    const file = path.join(staging, EXTRACTOR_ONNX_FILE);
    writeFileAtomic(file, graph.toModelProto());
    const tolerance = req.tolerance ?? PARITY_TOLERANCE;
    const parity = await checkParity(file, EXTRACTOR_ONNX_FILE, samples, reference, tolerance, req.threads ?? 2);
    const maxDiff = Math.max(...parity.map((r) => r.max_abs_diff));
    log.info(`${EXTRACTOR_ONNX_FILE}: onnxruntime vs tfjs max abs diff ${maxDiff.toExponential(2)} over ${parity.length} outputs (tolerance ${tolerance.toExponential(0)})`);
    const entry: ExportedModel = {
      file: EXTRACTOR_ONNX_FILE,
      model_name: PointHoiExtractor.modelName,
      model_config: model.config,
      inputs, outputs,
      source_checkpoint: relativeFrom(outDir, loaded.dir),
      source_sha256: sha256File(path.join(loaded.dir, MODEL_FILE)),
      step: loaded.step,
      sha256: sha256File(file),
      max_abs_diff: maxDiff,
      parity,
    };
    return { entry, run: loaded.run, preprocess: pre, samples };
  } finally {
    model.dispose();
  }
}

/**
 * The verdict threshold that maximizes TPR - FPR of the extractor's anomaly score on a dataset's
 * val split (its test split stays untouched for evaluation); null when the split lacks a class.
 */
async function calibrateVerdict(extractor: string, data: string): Promise<{ threshold: number; calibration: { data: string; split: 'val'; images: number; tpr: number; fpr: number } } | null> {
  const { predictions } = await evaluateExtractor({ checkpoint: extractor, data, split: 'val' });
  const labels = new Map(readSplit(data, 'val').map((r) => [r.id, r.label === 'anomalous' ? 1 : 0] as const));
  const best = youdenThreshold(predictions.map((p) => p.anomaly_score), predictions.map((p) => labels.get(p.id) ?? 0));
  if (!Number.isFinite(best.threshold)) {
    log.warn(`${data}: its val split lacks normal or anomalous images; the verdict threshold stays at the default ${DEFAULT_VERDICT_THRESHOLD}`);
    return null;
  }
  log.info(`verdict threshold ${best.threshold.toFixed(4)} calibrated on ${predictions.length} val images of ${data} (TPR ${best.tpr.toFixed(3)}, FPR ${best.fpr.toFixed(3)})`);
  return { threshold: best.threshold, calibration: { data: path.resolve(data), split: 'val', images: predictions.length, tpr: best.tpr, fpr: best.fpr } };
}

/** Exports the runs into `req.out` (see the file comment). */
export async function exportModels(req: ExportRequest): Promise<ExportResult> {
  const outDir = path.resolve(req.out);
  if (fs.existsSync(outDir) && !req.overwrite) throw new ExportError(`${req.out} already exists (pass --overwrite to replace it)`);
  const verdict = req.threshold === undefined && req.calibrateOn ? await calibrateVerdict(req.extractor, req.calibrateOn) : null;
  const threshold = req.threshold ?? verdict?.threshold ?? DEFAULT_VERDICT_THRESHOLD;
  if (!(threshold >= 0 && threshold <= 1)) throw new UsageError(`threshold must be in [0, 1], got ${threshold}`);
  const tolerance = req.tolerance ?? PARITY_TOLERANCE;
  if (!(tolerance > 0)) throw new UsageError(`tolerance must be positive, got ${tolerance}`);

  // The training loader's normalization and padding (data/loader.ts defaults): what the model saw.
  const spec = (inputSize: number): PreprocessSpec => ({ inputSize, mean: IMAGENET_MEAN, std: IMAGENET_STD, fill: DEFAULT_FILL });
  const staging = makeStagingDir(outDir);
  let committed = false;
  try {
    const ex = await exportExtractor(req, staging, outDir, spec);
    const models: ExportManifest['models'] = { extractor: ex.entry };
    let tokenizer: string | null = null;
    let explainer: ExportManifest['explainer'];
    if (req.vlp) {
      const vlp = await exportExplainer(req.vlp, staging, {
        outDir, tolerance, threads: req.threads ?? 2, samples: ex.samples, afterReference: req.afterVlpReference,
        extractor: { inputSize: ex.preprocess.inputSize, categories: ex.run.categories, verbs: ex.run.verbs },
      });
      Object.assign(models, vlp.models);
      tokenizer = vlp.tokenizer;
      explainer = vlp.explainer;
    }
    const manifest: ExportManifest = {
      format_version: EXPORT_FORMAT_VERSION,
      created: new Date().toISOString(),
      created_with: versions(),
      opset: OPSET_VERSION,
      parity_tolerance: tolerance,
      models,
      tokenizer,
      ...(explainer ? { explainer } : {}),
      categories: ex.run.categories,
      verbs: ex.run.verbs,
      compatible: ex.run.compatible,
      taxonomy: ex.run.taxonomy as Record<string, unknown>,
      input_size: ex.preprocess.inputSize,
      mean: [...ex.preprocess.mean] as [number, number, number],
      std: [...ex.preprocess.std] as [number, number, number],
      preprocess: { layout: 'NCHW', color: 'RGB', resize: 'letterbox', fill: ex.preprocess.fill, filter: 'triangle (bilinear, area-weighted when shrinking)' },
      output_stride: POINT_HOI_STRIDE,
      decode: { ...ex.run.train_config.decode },
      verdict: {
        threshold,
        source: req.threshold !== undefined ? 'user' : verdict ? 'calibrated' : 'default',
        ...(verdict ? { calibration: verdict.calibration } : {}),
        rule: 'anomalous when anomaly_score >= threshold; anomaly_score = max over triplets of score x taxonomy severity weight',
      },
    };
    // What explain will read back must validate: check before committing.
    const check = ExportManifestSchema.safeParse(manifest);
    if (!check.success) throw new ExportError(`manifest.json: ${check.error.issues.map((i) => `'${i.path.join('.')}': ${i.message}`).join('; ')}`);
    writeFileAtomic(path.join(staging, EXPORT_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    commitStagingDir(staging, outDir, req.overwrite ?? false);
    committed = true;
    log.info(`exported to ${outDir}`);
    return { out: outDir, manifest };
  } finally {
    if (!committed) fs.rmSync(staging, { recursive: true, force: true });
  }
}
