/**
 * The explain pipeline, one image at a time (latency is what is measured):
 *
 *   file -> preprocess (decode, EXIF, letterbox, normalize; preprocess.ts)
 *        -> extractor engine (onnx | tfjs; engines.ts)
 *        -> decode (triplets, taxonomy, anomaly score; models/hoi/decode.ts) -> verdict
 *        -> explanation (explainer_hook.ts; null without an explainer)
 *        -> annotated PNG (render.ts); a folder run also gets index.html (html.ts)
 *
 * Both engines go through every line here except `engine.run`, so they give the same triplets up
 * to their float noise. A file that fails (missing, corrupt, not an image) is reported in one line
 * and the run goes on with the next.
 *
 * Verdict: anomalous when anomaly_score >= threshold (the manifest's, or the caller's override).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../fs_atomic';
import { log } from '../logger';
import { type AnnotatedTriplet, anomalyScore, annotateTriplets, decodePointHoi, imageMaps } from '../models/hoi/decode';
import type { OriginalInfo } from '../data/loader';
import type { PointHoiMaps } from '../models/hoi/types';
import { UsageError } from '../errors';
import { createExtractorEngine, type EngineName, type ExtractorEngine, oneLine } from './engines';
import { type ExplanationEngine, loadExplanationEngine } from './explainer_hook';
import { buildIndexHtml } from './html';
import { type ExportManifest, type ManifestContext, manifestContext, readExportManifest } from './manifest';
import { type PreparedImage, type PreprocessSpec, prepareImageFile, preprocessSpec, toImageBox } from './preprocess';
import { renderAnnotated } from './render';
import type { ImageFailure, ImageResult, StageTimings, TripletResult, Verdict } from './types';

/** Extensions taken from a folder (sharp decodes them); other files are skipped with a log line. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif'] as const;
/** Suffix of the annotated PNGs; such files are not taken as inputs from a folder. */
export const ANNOTATED_SUFFIX = '.annotated.png';

export interface ExplainOptions {
  /** An export folder (manifest.json + extractor.onnx; the tfjs engine also needs its source runs). */
  model: string;
  /** Default 'onnx'. tfjs needs an initialized backend. */
  engine?: EngineName;
  /** Folder for annotated PNGs, results.json and (folder runs) index.html; null writes nothing. */
  out?: string | null;
  /** Overrides the manifest's verdict threshold. */
  threshold?: number;
  /** Triplets reported per image (default 20; the verdict uses all of them). */
  maxTriplets?: number;
  /** onnxruntime intra-op threads (default 2). */
  threads?: number;
  /** Called as each image finishes (the CLI prints `--json` lines from here). */
  onResult?: (r: ImageResult) => void;
  onFailure?: (f: ImageFailure) => void;
}

export interface ExplainReport {
  engine: string;
  results: ImageResult[];
  failures: ImageFailure[];
  /** Files in input folders that were not taken (no image extension). */
  skipped: string[];
  out: string | null;
  /** index.html, written when an input was a folder. */
  html: string | null;
  /** Seconds to load the models and run one warm-up pass (not in the per-image timings). */
  loadSeconds: number;
}

export interface InputFile {
  file: string;
  /** The folder it was found in, null when named directly. */
  folder: string | null;
}

/** Files of the inputs: files as given, folders' image files (sorted, not recursive, hidden ones left out). */
export function expandInputs(inputs: readonly string[]): { files: InputFile[]; skipped: string[]; missing: string[]; anyFolder: boolean } {
  const files: InputFile[] = [];
  const skipped: string[] = [];
  const missing: string[] = [];
  let anyFolder = false;
  for (const input of inputs) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(input);
    } catch {
      missing.push(input);
      continue;
    }
    if (!stat.isDirectory()) {
      files.push({ file: input, folder: null });
      continue;
    }
    anyFolder = true;
    for (const name of fs.readdirSync(input).sort()) {
      const file = path.join(input, name);
      if (name.startsWith('.') || !fs.statSync(file).isFile()) continue;
      const ext = path.extname(name).toLowerCase();
      if (!(IMAGE_EXTENSIONS as readonly string[]).includes(ext) || name.toLowerCase().endsWith(ANNOTATED_SUFFIX)) skipped.push(file);
      else files.push({ file, folder: input });
    }
  }
  return { files, skipped, missing, anyFolder };
}

/**
 * The shared post-processing of one image's maps: triplets (model pixels, with taxonomy), the
 * anomaly score, the verdict, and the report triplets in the image's own pixels.
 */
export function interpretMaps(
  maps: PointHoiMaps, original: OriginalInfo, ctx: ManifestContext, threshold: number, maxTriplets: number,
): { annotated: AnnotatedTriplet[]; triplets: TripletResult[]; numTriplets: number; anomalyScore: number; verdict: Verdict } {
  const { triplets } = decodePointHoi(maps, ctx.labels, ctx.decode);
  const annotated = annotateTriplets(triplets, ctx.taxonomy);
  const score = anomalyScore(triplets, ctx.taxonomy).score;
  const report = annotated.slice(0, maxTriplets).map((t): TripletResult => ({
    subject: ctx.decode.subject_category,
    subject_box: toImageBox(t.subjectBox, original),
    verb: t.verb,
    object: t.objectCategory,
    object_box: toImageBox(t.objectBox, original),
    score: t.score,
    anomaly: t.anomaly,
    severity: t.severity,
    anomaly_score: t.anomalyScore,
  }));
  return { annotated, triplets: report, numTriplets: triplets.length, anomalyScore: score, verdict: score >= threshold ? 'anomalous' : 'normal' };
}

/** Unique `<stem>.annotated.png` names in the output folder. */
function annotatedNamer(out: string): (file: string) => string {
  const used = new Set<string>();
  return (file) => {
    const stem = path.basename(file, path.extname(file));
    let name = `${stem}${ANNOTATED_SUFFIX}`;
    for (let k = 2; used.has(name); k++) name = `${stem}-${k}${ANNOTATED_SUFFIX}`;
    used.add(name);
    return path.join(out, name);
  };
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

interface RunContext {
  spec: PreprocessSpec;
  ctx: ManifestContext;
  engine: ExtractorEngine;
  explainer: ExplanationEngine | null;
  threshold: number;
  maxTriplets: number;
  out: string | null;
  nameFor: ((file: string) => string) | null;
}

async function explainOne(file: string, run: RunContext): Promise<ImageResult> {
  const t0 = process.hrtime.bigint();
  const prepared: PreparedImage = await prepareImageFile(file, run.spec);
  const preprocess = ms(t0);

  const t1 = process.hrtime.bigint();
  const output = await run.engine.run(prepared.input, 1);
  const extractor = ms(t1);

  const t2 = process.hrtime.bigint();
  const maps = imageMaps(output.maps, output.dims, 0);
  const r = interpretMaps(maps, prepared.original, run.ctx, run.threshold, run.maxTriplets);
  const decode = ms(t2);

  const t3 = process.hrtime.bigint();
  const explanation = run.explainer
    ? await run.explainer.explain({ source: file, input: prepared.input, inputSize: run.spec.inputSize, triplets: r.annotated, original: prepared.original, verdict: r.verdict, anomalyScore: r.anomalyScore })
    : null;
  const explanationMs = run.explainer ? ms(t3) : 0;

  const timing: StageTimings = { preprocess, extractor, decode, explanation: explanationMs, render: 0, total: 0 };
  const result: ImageResult = {
    file, width: prepared.image.width, height: prepared.image.height,
    verdict: r.verdict, anomaly_score: r.anomalyScore, threshold: run.threshold,
    triplets: r.triplets, num_triplets: r.numTriplets, explanation, annotated: null, timing_ms: timing,
  };
  if (run.out && run.nameFor) {
    const t4 = process.hrtime.bigint();
    const target = run.nameFor(file);
    result.annotated = target;
    writeFileAtomic(target, await renderAnnotated(result, prepared.image));
    timing.render = ms(t4);
  }
  timing.total = ms(t0);
  return result;
}

/** Explains images and image folders with an export folder's models. */
export async function explainImages(inputs: readonly string[], opts: ExplainOptions): Promise<ExplainReport> {
  if (inputs.length === 0) throw new UsageError('explain: name at least one image or folder');
  const manifest: ExportManifest = readExportManifest(opts.model);
  const threshold = opts.threshold ?? manifest.verdict.threshold;
  if (!(threshold >= 0 && threshold <= 1)) throw new UsageError(`explain: threshold must be in [0, 1], got ${threshold}`);
  const maxTriplets = opts.maxTriplets ?? 20;
  if (!(Number.isInteger(maxTriplets) && maxTriplets >= 0)) throw new UsageError(`explain: max triplets must be an integer >= 0, got ${maxTriplets}`);
  const { files, skipped, missing, anyFolder } = expandInputs(inputs);
  for (const f of skipped) log.info(`${f}: skipped (not an image file extension: ${IMAGE_EXTENSIONS.join(' ')})`);

  const out = opts.out ? path.resolve(opts.out) : null;
  if (out) fs.mkdirSync(out, { recursive: true });
  const loadStart = process.hrtime.bigint();
  const engine = await createExtractorEngine(opts.engine ?? 'onnx', opts.model, manifest, { threads: opts.threads });
  let explainer: ExplanationEngine | null = null;
  const results: ImageResult[] = [];
  const failures: ImageFailure[] = [];
  const fail = (f: ImageFailure) => {
    failures.push(f);
    log.error(`${f.file}: ${f.error}`);
    opts.onFailure?.(f);
  };
  try {
    explainer = await loadExplanationEngine(manifest, opts.model, engine.name, { threads: opts.threads });
    // One pass on a blank input first: the first run of either engine pays for kernel setup and
    // allocation (tfjs-wasm: ~2x a steady pass), which belongs to loading, not to an image's latency.
    const blank = new Float32Array(3 * manifest.input_size * manifest.input_size);
    await engine.run(blank, 1);
    if (explainer) {
      // the same for the explainer's graphs / kernels (one explanation of a blank input, no HOIs)
      const S = manifest.input_size;
      const original = { id: 'warm-up', width: S, height: S, scale: 1, padX: 0, padY: 0, flipped: false, cropX: 0, cropY: 0, cropWidth: S, cropHeight: S };
      await explainer.explain({ source: 'warm-up', input: blank, inputSize: S, triplets: [], original, verdict: 'normal', anomalyScore: 0 });
    }
    const loadSeconds = ms(loadStart) / 1000;
    log.debug(`engine ${engine.description}; loaded in ${loadSeconds.toFixed(2)} s`);
    for (const m of missing) fail({ file: m, error: 'no such file or folder' });
    const run: RunContext = {
      spec: preprocessSpec(manifest), ctx: manifestContext(manifest), engine, explainer, threshold, maxTriplets, out,
      nameFor: out ? annotatedNamer(out) : null,
    };
    for (const { file } of files) {
      let result: ImageResult;
      try {
        result = await explainOne(file, run);
      } catch (err) {
        // the message of a DataError already starts with the file name
        const msg = oneLine(err);
        fail({ file, error: msg.startsWith(`${file}: `) ? msg.slice(file.length + 2) : msg });
        continue;
      }
      results.push(result);
      opts.onResult?.(result);
    }
    let html: string | null = null;
    if (out) {
      writeFileAtomic(path.join(out, 'results.json'), `${JSON.stringify({ model: path.resolve(opts.model), engine: engine.name, threshold, images: results, failures }, null, 1)}\n`);
      if (anyFolder) {
        html = path.join(out, 'index.html');
        writeFileAtomic(html, buildIndexHtml(out, results, failures));
      }
    }
    return { engine: engine.description, results, failures, skipped, out, html, loadSeconds };
  } finally {
    await explainer?.dispose();
    await engine.dispose();
  }
}

/** Mean stage timings over results (for the `--timing` summary). */
export function meanTimings(results: readonly ImageResult[]): StageTimings | null {
  if (results.length === 0) return null;
  const keys = Object.keys(results[0].timing_ms) as (keyof StageTimings)[];
  const mean = {} as StageTimings;
  for (const k of keys) mean[k] = results.reduce((a, r) => a + r.timing_ms[k], 0) / results.length;
  return mean;
}

/** `preprocess 4.1 ms | extractor 12.3 ms | decode 0.8 ms | explanation 0.0 ms | render 9.0 ms | total 26.2 ms` */
export function describeTimings(t: StageTimings): string {
  return (Object.keys(t) as (keyof StageTimings)[]).map((k) => `${k} ${t[k].toFixed(1)} ms`).join(' | ');
}
