/**
 * End-to-end explain latency (the `explain` pipeline per image: decode + letterbox, extractor,
 * triplet decoding, explanation, annotated PNG) on ONNX Runtime and on tfjs-wasm, 2 threads each,
 * p50/p95 over 100 test images, for the tiny and resnet18 pipelines; and the exported file sizes.
 *
 *   npm run bench:explain                     # or: bash bench/explain_latency.sh
 *   node dist/bench/explain_latency.js [--images 100] [--threads 2] [--configs tiny,resnet18]
 *       [--engines onnx,tfjs] [--export tiny=runs/quickstart/export] [--data tiny=runs/quickstart/dataset]
 *       [--work runs/bench_explain] [--train-steps 2] [--json FILE]
 *
 * Models: an export folder given with --export NAME=DIR (e.g. the quickstart's, trained), else one
 * built in --work from a few training steps. Latency does not depend on how well the weights are
 * trained, with one exception: an explainer that has not learnt to stop generates its maximum
 * length every time, so an untrained explainer gives the worst case (the explanation column and
 * its mean length say which case was measured). Timing images: the test split of --data NAME=DIR,
 * else of a synth set built in --work at the model's input size (1,100 images: ~110 test images).
 * Every pipeline is warmed up by one pass before timing (explain does that while loading).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { DatasetConfigSchema } from '../src/config/dataset';
import { ExtractorConfigSchema } from '../src/config/extractor';
import { loadConfig } from '../src/config/load';
import { VlpConfigSchema } from '../src/config/vlp';
import { buildDataset } from '../src/data/build';
import { readSplit } from '../src/data/loader';
import { SPLITS } from '../src/data/record';
import { packageRoot } from '../src/data/taxonomy';
import { ExportError, UsageError } from '../src/errors';
import { exportModels } from '../src/export/export_models';
import { writeFileAtomic } from '../src/fs_atomic';
import { readExportManifest } from '../src/infer/manifest';
import { explainImages } from '../src/infer/pipeline';
import type { StageTimings } from '../src/infer/types';
import { log } from '../src/logger';
import { finetuneVlp } from '../src/train/finetune_vlp';
import { trainExtractor } from '../src/train/train_extractor';

interface Pipeline {
  extractor: string;
  vlp: string;
  /** Explainer overrides this extractor needs. */
  vlpSets: string[];
}

const PIPELINES: Record<string, Pipeline> = {
  tiny: { extractor: 'configs/extractor/tiny.yaml', vlp: 'configs/vlp/tiny.yaml', vlpSets: [] },
  // 256 px: an 8x8 visual grid, so the prefix is 64 + 6 + 24 tokens; positions for 192 response tokens after it
  resnet18: { extractor: 'configs/extractor/resnet18.yaml', vlp: 'configs/vlp/tiny.yaml', vlpSets: ['model.max_positions=320'] },
};
const ENGINES = ['onnx', 'tfjs'] as const;
type Engine = (typeof ENGINES)[number];

interface Args {
  images: number;
  threads: number;
  configs: string[];
  engines: Engine[];
  exports: Record<string, string>;
  data: Record<string, string>;
  work: string;
  trainSteps: number;
  json: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    images: 100, threads: 2, configs: ['tiny', 'resnet18'], engines: [...ENGINES], exports: {}, data: {},
    work: 'runs/bench_explain', trainSteps: 2, json: null,
  };
  const pair = (v: string, flag: string): [string, string] => {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} ${v}: expected NAME=DIR, e.g. ${flag} tiny=runs/quickstart/export`);
    return [v.slice(0, eq), v.slice(eq + 1)];
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`${flag}: missing value`);
    if (flag === '--images') a.images = Number(v);
    else if (flag === '--threads') a.threads = Number(v);
    else if (flag === '--configs') a.configs = v.split(',');
    else if (flag === '--engines') a.engines = v.split(',') as Engine[];
    else if (flag === '--export') { const [k, d] = pair(v, flag); a.exports[k] = d; }
    else if (flag === '--data') { const [k, d] = pair(v, flag); a.data[k] = d; }
    else if (flag === '--work') a.work = v;
    else if (flag === '--train-steps') a.trainSteps = Number(v);
    else if (flag === '--json') a.json = v;
    else throw new UsageError(`unknown flag ${flag}`);
  }
  for (const c of a.configs) if (!PIPELINES[c]) throw new UsageError(`--configs: unknown pipeline '${c}'; expected ${Object.keys(PIPELINES).join(', ')}`);
  for (const e of a.engines) if (!ENGINES.includes(e)) throw new UsageError(`--engines: unknown engine '${e}'; expected ${ENGINES.join(', ')}`);
  if (!(Number.isInteger(a.images) && a.images > 0)) throw new UsageError(`--images: expected a positive integer, got ${a.images}`);
  return a;
}

const root = (p: string) => (path.isAbsolute(p) ? p : path.join(packageRoot(), p));

async function ensureDataset(dir: string, sets: string[]): Promise<string> {
  if (!fs.existsSync(path.join(dir, 'manifest.json'))) {
    await buildDataset({ source: 'synth', out: dir, config: loadConfig(DatasetConfigSchema, { file: root('configs/dataset/synth.yaml'), sets }), overwrite: true });
  }
  return dir;
}

/** An export folder of the pipeline, trained for a few steps (reused when already in --work). */
async function buildExport(name: string, p: Pipeline, work: string, steps: number, threads: number): Promise<string> {
  const dir = path.join(work, name);
  const out = path.join(dir, 'export');
  if (fs.existsSync(path.join(out, 'manifest.json'))) return out;
  fs.rmSync(dir, { recursive: true, force: true });
  const ex = loadConfig(ExtractorConfigSchema, {
    file: root(p.extractor),
    sets: [`train.steps=${steps}`, 'train.batch_size=2', 'train.eval_every=0', 'train.eval_max_images=2', 'train.checkpoint_every=0', 'backend.name=wasm', `backend.threads=${threads}`],
  });
  const data = await ensureDataset(path.join(dir, 'data'), ['num_images=24', `synth.image_size=${ex.model.input_size}`]);
  await trainExtractor({ config: ex, data, out: path.join(dir, 'extractor') });
  const vlp = loadConfig(VlpConfigSchema, {
    file: root(p.vlp),
    sets: [...p.vlpSets, `train.steps=${steps}`, 'train.batch_size=2', 'train.eval_every=0', 'train.eval_max_images=1', 'train.checkpoint_every=0', 'backend.name=wasm', `backend.threads=${threads}`],
  });
  await finetuneVlp({ config: vlp, data, extractor: path.join(dir, 'extractor'), out: path.join(dir, 'vlp') });
  try {
    await exportModels({ extractor: path.join(dir, 'extractor'), vlp: path.join(dir, 'vlp'), out, threads });
  } catch (err) {
    if (!(err instanceof ExportError)) throw err;
    log.warn(`${name}: explainer not exported (${err.message}); timing the extractor alone`);
    await exportModels({ extractor: path.join(dir, 'extractor'), out, threads });
  }
  return out;
}

/** Up to n image files: the test split first, then val and train if it is short. */
function timingImages(data: string, n: number): string[] {
  const files: string[] = [];
  for (const split of ['test', ...SPLITS.filter((s) => s !== 'test')] as const) {
    for (const r of readSplit(data, split)) if (files.length < n) files.push(path.join(data, r.image));
  }
  return files;
}

function quantile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

interface Row {
  pipeline: string;
  engine: Engine;
  images: number;
  p50: number;
  p95: number;
  /** p50 of the image's time without the annotated PNG (what a service that returns JSON pays). */
  p50NoRender: number;
  stages: Record<keyof StageTimings, number>;
  explained: number;
  meanExplanationChars: number;
  loadSeconds: number;
}

async function measure(pipeline: string, exportDir: string, engine: Engine, files: string[], threads: number, scratch: string): Promise<Row> {
  if (engine === 'tfjs') await initBackend({ name: 'wasm', threads });
  const out = path.join(scratch, `${pipeline}-${engine}`);
  const r = await explainImages(files, { model: exportDir, engine, out, threads });
  if (r.failures.length > 0) throw new Error(`${pipeline}/${engine}: ${r.failures.length} image(s) failed, first ${r.failures[0].file}: ${r.failures[0].error}`);
  const keys = Object.keys(r.results[0].timing_ms) as (keyof StageTimings)[];
  const stages = Object.fromEntries(keys.map((k) => [k, quantile(r.results.map((x) => x.timing_ms[k]), 0.5)])) as Row['stages'];
  const texts = r.results.map((x) => x.explanation).filter((t): t is string => t !== null);
  return {
    pipeline, engine, images: r.results.length,
    p50: quantile(r.results.map((x) => x.timing_ms.total), 0.5), p95: quantile(r.results.map((x) => x.timing_ms.total), 0.95),
    p50NoRender: quantile(r.results.map((x) => x.timing_ms.total - x.timing_ms.render), 0.5),
    stages, explained: texts.length, meanExplanationChars: texts.length ? texts.reduce((a, t) => a + t.length, 0) / texts.length : 0,
    loadSeconds: r.loadSeconds,
  };
}

function fileSizes(exportDir: string): Record<string, number> {
  const m = readExportManifest(exportDir);
  const sizes: Record<string, number> = {};
  for (const [k, spec] of Object.entries(m.models)) {
    sizes[spec.file] = fs.statSync(path.join(exportDir, spec.file)).size;
    // the explainer's two graphs come from one checkpoint: list it once
    const source = path.join(exportDir, spec.source_checkpoint, 'model.safetensors');
    const label = `${k.startsWith('vlp') ? 'vlp' : k} model.safetensors (tfjs)`;
    if (fs.existsSync(source)) sizes[label] = fs.statSync(source).size;
  }
  if (m.tokenizer) sizes[m.tokenizer] = fs.statSync(path.join(exportDir, m.tokenizer)).size;
  return sizes;
}

const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');

async function run(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  log.level = 'warn';
  const work = path.resolve(args.work);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hoi2anomaly-bench-explain-'));
  console.log(`explain latency: ${args.images} images, ${args.threads} threads, ${os.availableParallelism()} cores (${os.cpus()[0].model}); load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const rows: Row[] = [];
  const sizes: Record<string, Record<string, number>> = {};
  try {
    for (const name of args.configs) {
      const p = PIPELINES[name];
      const exportDir = args.exports[name] ? path.resolve(args.exports[name]) : await buildExport(name, p, work, args.trainSteps, args.threads);
      const inputSize = readExportManifest(exportDir).input_size;
      const data = args.data[name] ? path.resolve(args.data[name]) : await ensureDataset(path.join(work, `images-${inputSize}`), ['num_images=1100', `synth.image_size=${inputSize}`, 'seed=1']);
      const files = timingImages(data, args.images);
      if (files.length < args.images) log.warn(`${data}: only ${files.length} images (asked for ${args.images})`);
      sizes[name] = fileSizes(exportDir);
      for (const engine of args.engines) {
        const row = await measure(name, exportDir, engine, files, args.threads, scratch);
        rows.push(row);
        console.log(`${name} / ${engine}: p50 ${f1(row.p50)} ms, p95 ${f1(row.p95)} ms over ${row.images} images (${exportDir})`);
      }
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  console.log('\n| pipeline | engine | images | p50 ms | p95 ms | p50 w/o PNG | preprocess | extractor | decode | explanation | render | explained (mean chars) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const s = r.stages;
    console.log(`| ${r.pipeline} | ${r.engine === 'onnx' ? 'ONNX Runtime' : 'tfjs-wasm'} | ${r.images} | ${f1(r.p50)} | ${f1(r.p95)} | ${f1(r.p50NoRender)} | ${f1(s.preprocess)} | ${f1(s.extractor)} | ${f1(s.decode)} | ${f1(s.explanation)} | ${f1(s.render)} | ${r.explained} (${r.meanExplanationChars.toFixed(0)}) |`);
  }
  console.log('\n(p50 / p95: the whole image; w/o PNG: without rendering the annotated PNG; stage columns: p50 of each stage)\n\n| pipeline | file | size |\n|---|---|---|');
  for (const [name, files] of Object.entries(sizes)) {
    for (const [file, bytes] of Object.entries(files)) console.log(`| ${name} | ${file} | ${(bytes / 2 ** 20).toFixed(2)} MB |`);
  }
  if (args.json) writeFileAtomic(path.resolve(args.json), `${JSON.stringify({ threads: args.threads, loadavg: os.loadavg(), rows, sizes }, null, 1)}\n`);
}

run().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
