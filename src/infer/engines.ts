/**
 * Extractor engines: the same NCHW float32 batch in, the same six NHWC head maps out, from ONNX
 * Runtime (extractor.onnx of an export folder) or from tfjs (the source checkpoint the manifest
 * names). Everything before (preprocess.ts) and after (decode.ts, pipeline.ts) is shared, so the
 * engines differ only by the float noise of their kernels (<= the export's parity tolerance).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { tf } from '../backend/tf';
import { DataError, UsageError } from '../errors';
import { loadExtractor } from '../eval/extractor_eval';
import type { PointHoiMaps } from '../models/hoi/types';
import { POINT_HOI_OUTPUTS, PointHoiExtractor, type PointHoiKey } from '../models/hoi/point_hoi';
import { MODEL_FILE } from '../train/checkpoint';
import { EXTRACTOR_ONNX_FILE, type ExportManifest } from './manifest';

export const ENGINE_NAMES = ['onnx', 'tfjs'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** Grid and channel sizes of a batch of maps. */
export interface MapDims {
  height: number;
  width: number;
  numCategories: number;
  numVerbs: number;
}

/** The head maps of a batch: [n, h, w, K] each, row-major, heatmaps after the sigmoid. */
export interface ExtractorOutput {
  batch: number;
  dims: MapDims;
  maps: Record<PointHoiKey, Float32Array>;
}

export type BatchMaps = Omit<PointHoiMaps, keyof MapDims>;

export interface ExtractorEngine {
  readonly name: EngineName;
  /** One line for logs: what runs where. */
  readonly description: string;
  /** input: [n, 3, S, S] float32, normalized as the manifest says. */
  run(input: Float32Array, n: number): Promise<ExtractorOutput>;
  dispose(): Promise<void>;
}

/** Checks the output shapes against the manifest's classes, so a wrong model fails here, not in decoding. */
function checkedDims(shapes: Record<PointHoiKey, readonly number[]>, n: number, categories: number, verbs: number, what: string): MapDims {
  const [b, h, w, C] = shapes.objectHeatmap;
  const V = shapes.interactionHeatmap[3];
  if (b !== n || C !== categories || V !== verbs) {
    throw new DataError(`${what}: object_heatmap [${shapes.objectHeatmap}] / interaction_heatmap [${shapes.interactionHeatmap}] do not fit a batch of ${n}, ${categories} categories, ${verbs} verbs (manifest)`);
  }
  return { height: h, width: w, numCategories: C, numVerbs: V };
}

// ---------------------------------------------------------------------------------------------
// ONNX Runtime

export interface OnnxEngineOptions {
  /** Intra-op threads (default 2, the CPU budget this project plans for). */
  threads?: number;
}

export class OnnxExtractorEngine implements ExtractorEngine {
  readonly name = 'onnx' as const;
  readonly description: string;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly file: string,
    private readonly inputName: string,
    private readonly inputSize: number,
    private readonly classes: { categories: number; verbs: number },
    threads: number,
  ) {
    this.description = `onnxruntime-node (cpu, ${threads} threads): ${file}`;
  }

  static async create(file: string, manifest: ExportManifest, opts: OnnxEngineOptions = {}): Promise<OnnxExtractorEngine> {
    if (!fs.existsSync(file)) throw new DataError(`${file}: ONNX model not found`);
    const threads = opts.threads ?? 2;
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    } catch (err) {
      throw new DataError(`${file}: onnxruntime cannot load the model (${oneLine(err)})`, { cause: err });
    }
    const spec = manifest.models.extractor;
    const missing = POINT_HOI_OUTPUTS.map((o) => o.name).filter((name) => !session.outputNames.includes(name));
    if (missing.length > 0) throw new DataError(`${file}: outputs ${missing.join(', ')} missing (has ${session.outputNames.join(', ')})`);
    const inputName = spec.inputs[0].name;
    if (!session.inputNames.includes(inputName)) throw new DataError(`${file}: no input '${inputName}' (has ${session.inputNames.join(', ')})`);
    return new OnnxExtractorEngine(session, file, inputName, manifest.input_size, { categories: manifest.categories.length, verbs: manifest.verbs.length }, threads);
  }

  async run(input: Float32Array, n: number): Promise<ExtractorOutput> {
    const S = this.inputSize;
    const feeds = { [this.inputName]: new ort.Tensor('float32', input, [n, 3, S, S]) };
    const out = await this.session.run(feeds);
    const maps = {} as Record<PointHoiKey, Float32Array>;
    const shapes = {} as Record<PointHoiKey, readonly number[]>;
    for (const { key, name } of POINT_HOI_OUTPUTS) {
      maps[key] = out[name].data as Float32Array;
      shapes[key] = out[name].dims;
    }
    return { batch: n, maps, dims: checkedDims(shapes, n, this.classes.categories, this.classes.verbs, this.file) };
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

// ---------------------------------------------------------------------------------------------
// tfjs

/**
 * The tfjs path of the engine, for a model in memory: NCHW batch -> NHWC -> predictMaps -> arrays.
 * Export measures parity through this very function.
 */
export async function runTfjsMaps(model: PointHoiExtractor, input: Float32Array, n: number): Promise<{ maps: Record<PointHoiKey, Float32Array>; shapes: Record<PointHoiKey, number[]> }> {
  const S = model.config.inputSize;
  const outputs = tf.tidy(() => {
    const nchw = tf.tensor4d(input, [n, 3, S, S], 'float32');
    return model.predictMaps(tf.transpose(nchw, [0, 2, 3, 1]) as tf.Tensor4D); // [n, S, S, 3]
  });
  const maps = {} as Record<PointHoiKey, Float32Array>;
  const shapes = {} as Record<PointHoiKey, number[]>;
  try {
    for (const { key } of POINT_HOI_OUTPUTS) {
      maps[key] = (await outputs[key].data()) as Float32Array;
      shapes[key] = [...outputs[key].shape];
    }
  } finally {
    tf.dispose(Object.values(outputs));
  }
  return { maps, shapes };
}

/** sha256 hex of a file. */
export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export class TfjsExtractorEngine implements ExtractorEngine {
  readonly name = 'tfjs' as const;
  readonly description: string;

  private constructor(private readonly model: PointHoiExtractor, private readonly checkpoint: string, private readonly classes: { categories: number; verbs: number }) {
    this.description = `tfjs (${tf.getBackend()}): ${checkpoint}`;
  }

  /**
   * Loads the source checkpoint an export folder names (relative to the folder). Its
   * model.safetensors must be the one exported (sha256), or the engines would disagree silently.
   */
  static fromExport(modelDir: string, manifest: ExportManifest): TfjsExtractorEngine {
    const spec = manifest.models.extractor;
    const dir = path.resolve(modelDir, spec.source_checkpoint);
    const weights = path.join(dir, MODEL_FILE);
    if (!fs.existsSync(weights)) {
      throw new DataError(`${path.join(modelDir, 'manifest.json')}: source checkpoint ${spec.source_checkpoint} not found at ${dir} (the tfjs engine needs the export folder beside its source runs; use --engine onnx otherwise)`);
    }
    if (sha256File(weights) !== spec.source_sha256) {
      throw new DataError(`${weights}: differs from the weights exported (sha256 mismatch); re-export, or use --engine onnx`);
    }
    const loaded = loadExtractor(dir);
    if (!(loaded.model instanceof PointHoiExtractor)) {
      loaded.model.dispose();
      throw new UsageError(`${dir}: an image-level classifier, not a HOI extractor`);
    }
    return new TfjsExtractorEngine(loaded.model, dir, { categories: manifest.categories.length, verbs: manifest.verbs.length });
  }

  async run(input: Float32Array, n: number): Promise<ExtractorOutput> {
    const { maps, shapes } = await runTfjsMaps(this.model, input, n);
    return { batch: n, maps, dims: checkedDims(shapes, n, this.classes.categories, this.classes.verbs, this.checkpoint) };
  }

  async dispose(): Promise<void> {
    this.model.dispose();
  }
}

/** The engine of an export folder. tfjs needs an initialized backend (initBackend). */
export async function createExtractorEngine(name: EngineName, modelDir: string, manifest: ExportManifest, opts: OnnxEngineOptions = {}): Promise<ExtractorEngine> {
  if (name === 'onnx') return OnnxExtractorEngine.create(path.join(modelDir, manifest.models.extractor.file || EXTRACTOR_ONNX_FILE), manifest, opts);
  if (name === 'tfjs') return TfjsExtractorEngine.fromExport(modelDir, manifest);
  throw new UsageError(`unknown engine '${String(name)}'; expected one of ${ENGINE_NAMES.join(', ')}`);
}

/** An error as one line (sharp and onnxruntime messages may span several). */
export function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
}
