import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DatasetConfig } from '../config/dataset';
import { writeResolvedConfig } from '../config/load';
import { DataError, UsageError } from '../errors';
import { rocAuc } from '../eval/ranking';
import { commitStagingDir, makeStagingDir } from '../fs_atomic';
import { log } from '../logger';
import { Progress } from '../progress';
import { imageSize } from './image_io';
import { buildConversations } from './instructions';
import { hicoNames, readHicoDet } from './readers/hico_det';
import { readOdgt } from './readers/odgt';
import { checkEntry, entryError, readNamesFile, type SourceEntry } from './readers/source';
import { DATASET_FORMAT_VERSION, type HoiObject, type HoiRecord, type Split, SPLITS } from './record';
import { hashUnit, Rng } from './rng';
import { SYNTH_CATEGORIES, SYNTH_VERBS } from './synth';
import { imageFileName, type RenderedScene, renderJob, type SynthJob } from './synth_worker';
import { Taxonomy } from './taxonomy';

/**
 * `build-dataset`: turns a source (the synth generator, HICO-DET HOIA JSON or ODGT lines) into an
 * instruction-tuning folder: manifest.json, {train,val,test}.jsonl, images/, config.yaml.
 * Everything is written into a staging folder that is renamed only when the build succeeds.
 */
export type SourceName = 'synth' | 'hico-det' | 'odgt';

export interface BuildRequest {
  source: SourceName;
  out: string;
  config: DatasetConfig;
  /** Annotation file and image folder (hico-det and odgt). */
  annotations?: string;
  images?: string;
  overwrite?: boolean;
  skipInvalid?: boolean;
}

export interface BuildSummary {
  out: string;
  images: number;
  splits: Record<Split, { images: number; anomalous: number; hois: number }>;
  skipped: number;
  clipped: number;
  weaponPresentAuc: number;
  seconds: number;
  imagesPerSecond: number;
  manifest: DatasetManifest;
}

export interface DatasetManifest {
  format_version: number;
  source: SourceName;
  categories: string[];
  verbs: string[];
  splits: Record<Split, { images: number; anomalous: number; hois: number; anomalous_ratio: number }>;
  hoi_counts: Record<string, Record<Split, number>>;
  clipped_boxes: number;
  skipped_entries: number;
  hard_negatives: {
    weapons: string[];
    normal_images_with_weapon: Record<Split, number>;
    /** ROC AUC of "a weapon is present" as the anomaly score on the test split (NaN -> null). */
    weapon_present_auc_test: number | null;
  };
  generator: Record<string, unknown>;
  taxonomy: object;
}

interface Labelled {
  record: HoiRecord;
  split: Split;
}

export async function buildDataset(req: BuildRequest): Promise<BuildSummary> {
  const started = Date.now();
  const out = path.resolve(req.out);
  if (fs.existsSync(out) && !req.overwrite) {
    throw new UsageError(`${req.out} already exists (use --overwrite to replace it)`);
  }
  const taxonomy = req.config.taxonomy ? Taxonomy.load(req.config.taxonomy) : Taxonomy.default();
  const staging = makeStagingDir(out);
  try {
    fs.mkdirSync(path.join(staging, 'images'));
    const built =
      req.source === 'synth' ? await buildSynth(req, staging, taxonomy) : await buildFromAnnotations(req, staging, taxonomy);
    const manifest = writeOutputs(staging, req, built, taxonomy);
    commitStagingDir(staging, out, req.overwrite ?? false);
    const seconds = (Date.now() - started) / 1000;
    const images = built.items.length;
    return {
      out,
      images,
      splits: manifest.splits,
      skipped: built.skipped,
      clipped: built.clipped,
      weaponPresentAuc: manifest.hard_negatives.weapon_present_auc_test ?? NaN,
      seconds,
      imagesPerSecond: images / seconds,
      manifest,
    };
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

interface Built {
  items: Labelled[];
  categories: string[];
  verbs: string[];
  skipped: number;
  clipped: number;
  generator: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// synth

async function buildSynth(req: BuildRequest, staging: string, taxonomy: Taxonomy): Promise<Built> {
  const { seed, num_images: count, synth } = req.config;
  const imagesDir = path.join(staging, 'images');
  const progress = new Progress('build-dataset', count, 'img');
  const scenes = await renderScenes({ seed, options: synth, imagesDir }, count, req.config.workers, (n) => progress.tick(n));
  progress.stop();
  const items = scenes.map((scene) => {
    const id = `synth-${String(scene.index).padStart(6, '0')}`;
    return label(id, `images/${imageFileName(scene.index)}`, scene.width, scene.height, scene.objects, scene.hois, taxonomy, req.config, splitOf(id, req.config));
  });
  return {
    items,
    categories: [...SYNTH_CATEGORIES],
    verbs: [...SYNTH_VERBS],
    skipped: 0,
    clipped: 0,
    generator: { seed, num_images: count, synth },
  };
}

/** Renders scenes 0..count-1 over worker threads (in-process for small builds), in index order. */
async function renderScenes(
  base: Omit<SynthJob, 'indices'>,
  count: number,
  workers: number,
  onDone: (n: number) => void,
): Promise<RenderedScene[]> {
  const chunk = 16;
  const threads = Math.min(workers > 0 ? workers : os.availableParallelism(), Math.ceil(count / chunk));
  const results: RenderedScene[] = new Array(count);
  const jobs: number[][] = [];
  for (let start = 0; start < count; start += chunk) {
    jobs.push(Array.from({ length: Math.min(chunk, count - start) }, (_, i) => start + i));
  }
  const store = (scenes: RenderedScene[]): void => {
    for (const s of scenes) results[s.index] = s;
    onDone(scenes.length);
  };
  if (threads <= 1 || count < 64) {
    for (const indices of jobs) store(renderJob({ ...base, indices }));
    return results;
  }
  const script = path.join(__dirname, 'synth_worker.js');
  const pool = Array.from({ length: threads }, () => new Worker(script));
  try {
    let next = 0;
    await Promise.all(
      pool.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const send = (): void => {
              if (next >= jobs.length) return resolve();
              worker.postMessage({ ...base, indices: jobs[next++] } satisfies SynthJob);
            };
            worker.on('message', (msg: { ok: boolean; scenes?: RenderedScene[]; error?: string }) => {
              if (!msg.ok) return reject(new Error(`synth worker failed: ${msg.error}`));
              store(msg.scenes!);
              send();
            });
            worker.on('error', reject);
            send();
          }),
      ),
    );
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// hico-det and odgt

async function buildFromAnnotations(req: BuildRequest, staging: string, taxonomy: Taxonomy): Promise<Built> {
  if (!req.annotations) throw new UsageError(`--annotations FILE is required with --source ${req.source}`);
  if (!req.images) throw new UsageError(`--images DIR is required with --source ${req.source}`);
  if (!fs.existsSync(req.images) || !fs.statSync(req.images).isDirectory()) {
    throw new DataError(`${req.images}: image folder not found`);
  }
  let skipped = 0;
  const skip = (err: DataError): void => {
    if (!req.skipInvalid) throw err;
    skipped++;
    log.debug(`skipped: ${err.message}`);
  };

  const files: Array<{ file: string; test: boolean }> = [{ file: req.annotations, test: false }];
  const testFile = req.source === 'hico-det' ? req.config.hico_det.test_annotations : req.config.odgt.test_annotations;
  if (testFile) files.push({ file: testFile, test: true });

  let categories: string[];
  let verbs: string[];
  let subjects: Set<string> | undefined;
  const read: Array<{ entry: SourceEntry; test: boolean }> = [];
  if (req.source === 'hico-det') {
    const names = hicoNames(req.config.hico_det.verb_names ?? undefined, req.config.hico_det.object_names ?? undefined);
    for (const f of files) for (const entry of readHicoDet(f.file, req.images, names, skip)) read.push({ entry, test: f.test });
    categories = [...new Set(names.objects.values())];
    verbs = [...new Set(names.verbs.values())];
    subjects = new Set(['person']);
  } else {
    for (const f of files) for (const entry of readOdgt(f.file, req.images, skip)) read.push({ entry, test: f.test });
    const listed = (file: string | null, used: (e: SourceEntry) => string[]): string[] =>
      file ? [...readNamesFile(file).values()] : [...new Set(read.flatMap((r) => used(r.entry)))].sort();
    categories = listed(req.config.odgt.categories, (e) => e.objects.map((o) => o.category));
    verbs = listed(req.config.odgt.verbs, (e) => e.hois.map((h) => h.verb));
  }
  const vocab = { categories: new Set(categories), verbs: new Set(verbs), subjects };

  const progress = new Progress('build-dataset', read.length, 'img');
  const items: Labelled[] = [];
  let clipped = 0;
  for (const { entry, test } of read) {
    try {
      let { width, height } = entry;
      if (width === undefined || height === undefined) {
        if (!fs.existsSync(entry.imagePath)) throw entryError(entry, 'file_name', `image not found: ${entry.imagePath}`);
        ({ width, height } = await imageSize(entry.imagePath));
      }
      clipped += checkEntry(entry, width, height, vocab);
      placeImage(entry, path.join(staging, 'images'), req.config.images);
      const split = test ? 'test' : splitOf(entry.id, req.config, true);
      items.push(label(entry.id, `images/${entry.imageName}`, width, height, entry.objects, entry.hois, taxonomy, req.config, split));
    } catch (err) {
      if (err instanceof DataError) skip(err);
      else throw err;
    }
    progress.tick();
  }
  progress.stop();
  if (items.length === 0) throw new DataError(`${req.annotations}: no valid image entries (${skipped} skipped)`);
  return {
    items,
    categories,
    verbs,
    skipped,
    clipped,
    generator: { annotations: path.resolve(req.annotations), images: path.resolve(req.images), test_annotations: testFile },
  };
}

function placeImage(entry: SourceEntry, imagesDir: string, mode: 'link' | 'copy'): void {
  const dest = path.join(imagesDir, entry.imageName);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (mode === 'copy') fs.copyFileSync(entry.imagePath, dest);
  else fs.symlinkSync(entry.imagePath, dest);
}

// ---------------------------------------------------------------------------------------------
// shared: labels, text, splits, outputs

function label(
  id: string,
  image: string,
  width: number,
  height: number,
  objects: HoiObject[],
  pairs: Array<{ subject: number; object: number; verb: string }>,
  taxonomy: Taxonomy,
  config: DatasetConfig,
  split: Split,
): Labelled {
  const category = new Map(objects.map((o) => [o.id, o.category]));
  const hois = pairs.map((p) => ({ ...p, ...taxonomy.lookup(p.verb, category.get(p.object)!) }));
  const base = { width, height, objects, hois, label: hois.some((h) => h.anomaly !== null) ? ('anomalous' as const) : ('normal' as const) };
  const conversations = buildConversations(base, taxonomy, new Rng(config.seed, 'text', id));
  return { record: { id, image, ...base, conversations }, split };
}

/**
 * Split by a seeded hash of the image id, so an image keeps its split when others are added.
 * With a separate test file, the remaining images are split between train and val only.
 */
export function splitOf(id: string, config: DatasetConfig, noTest = false): Split {
  const u = hashUnit(`split:${config.seed}:${id}`);
  const { train, val } = config.splits;
  if (noTest && (config.hico_det.test_annotations || config.odgt.test_annotations)) {
    return u < train / (train + val) ? 'train' : 'val';
  }
  if (u < train) return 'train';
  return u < train + val ? 'val' : 'test';
}

function writeOutputs(staging: string, req: BuildRequest, built: Built, taxonomy: Taxonomy): DatasetManifest {
  const bySplit = new Map<Split, HoiRecord[]>(SPLITS.map((s) => [s, []]));
  for (const item of built.items) bySplit.get(item.split)!.push(item.record);
  for (const split of SPLITS) {
    const lines = bySplit.get(split)!.map((r) => `${JSON.stringify(r)}\n`);
    fs.writeFileSync(path.join(staging, `${split}.jsonl`), lines.join(''));
  }
  const weapons = new Set(taxonomy.weapons);
  const hasWeapon = (r: HoiRecord): boolean => r.objects.some((o) => weapons.has(o.category));
  const splits = {} as DatasetManifest['splits'];
  const normalWithWeapon = {} as Record<Split, number>;
  const hoiCounts: DatasetManifest['hoi_counts'] = {};
  for (const split of SPLITS) {
    const records = bySplit.get(split)!;
    const anomalous = records.filter((r) => r.label === 'anomalous').length;
    const hois = records.reduce((n, r) => n + r.hois.length, 0);
    splits[split] = { images: records.length, anomalous, hois, anomalous_ratio: records.length ? round(anomalous / records.length) : 0 };
    normalWithWeapon[split] = records.filter((r) => r.label === 'normal' && hasWeapon(r)).length;
    for (const r of records) {
      const category = new Map(r.objects.map((o) => [o.id, o.category]));
      for (const h of r.hois) {
        const key = `${h.verb} ${category.get(h.object)}`;
        hoiCounts[key] ??= { train: 0, val: 0, test: 0 };
        hoiCounts[key][split]++;
      }
    }
  }
  const test = bySplit.get('test')!;
  const auc = rocAuc(
    test.map((r) => (hasWeapon(r) ? 1 : 0)),
    test.map((r) => r.label === 'anomalous'),
  );
  const manifest: DatasetManifest = {
    format_version: DATASET_FORMAT_VERSION,
    source: req.source,
    categories: built.categories,
    verbs: built.verbs,
    splits,
    hoi_counts: Object.fromEntries(Object.entries(hoiCounts).sort(([a], [b]) => a.localeCompare(b))),
    clipped_boxes: built.clipped,
    skipped_entries: built.skipped,
    hard_negatives: {
      weapons: [...taxonomy.weapons],
      normal_images_with_weapon: normalWithWeapon,
      weapon_present_auc_test: Number.isFinite(auc) ? round(auc) : null,
    },
    generator: built.generator,
    taxonomy: taxonomy.toJSON(),
  };
  fs.writeFileSync(path.join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeResolvedConfig(staging, { source: req.source, ...req.config });
  return manifest;
}

function round(v: number): number {
  return Math.round(v * 10000) / 10000;
}
