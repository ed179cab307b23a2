/**
 * Reads a dataset folder (manifest.json, {train,val,test}.jsonl, images/) into training batches.
 *
 * Per image: decode (sharp, on libuv threads) -> [augment: scale/crop jitter -> hflip] ->
 * letterbox to inputSize -> [augment: colour jitter on the image content] -> normalize into the
 * batch buffer. Boxes follow every geometric step, so the records handed out carry boxes in model
 * input pixels, and `originals` holds what is needed to map predictions back.
 *
 * Determinism: the order of an epoch is drawn from Rng(seed, 'shuffle', epoch) and each image's
 * augmentation from Rng(seed, 'augment', epoch, record id), so batches do not depend on timing,
 * on prefetch depth or on which epochs ran before (`--resume` reproduces an epoch exactly).
 *
 * Prefetch: when batch i is handed out, batches i+1 .. i+prefetch are already being prepared.
 * Decoding proceeds on sharp's threads while the caller computes; the JS transforms (about 1-2
 * ms per image at 128 px) run whenever the caller awaits. Tensors are created only at hand-out,
 * so an abandoned epoch leaks nothing; the caller disposes `batch.images`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../backend/tf';
import { ConfigError, DataError, where } from '../errors';
import { decodeImage } from './image_io';
import { Box, DATASET_FORMAT_VERSION, HoiRecord, SPLITS, Split } from './record';
import { Rng } from './rng';
import {
  IMAGENET_MEAN, IMAGENET_STD, Sample, colorJitter, hflip, letterbox, normalizeInto, scaleCropJitter, unletterboxBox,
} from './transforms';

export interface LoaderOptions {
  split: Split;
  batchSize: number;
  /** Side of the square model input, in pixels. */
  inputSize: number;
  shuffle: boolean;
  augment: boolean;
  seed: number;
  /** Per-channel mean / std on 0-1 pixels; default ImageNet. */
  mean?: [number, number, number];
  std?: [number, number, number];
  /** Drop the last, smaller batch; default false. */
  dropLast?: boolean;
  /** Batches prepared ahead of the one handed out; default 2. */
  prefetch?: number;
  /** Probability of a horizontal flip when augmenting; default 0.5. */
  hflip?: number;
  /** Zoom range of the scale/crop jitter when augmenting; default [0.75, 1.25]. */
  scaleJitter?: [number, number];
  /** Strength of brightness, contrast and saturation jitter when augmenting; default 0.2. */
  colorJitter?: number;
}

export interface OriginalInfo {
  id: string;
  /** Size of the image file as displayed. */
  width: number;
  height: number;
  /** Letterbox of the (cropped, flipped) image: model = x * scale + padX. */
  scale: number;
  padX: number;
  padY: number;
  flipped: boolean;
  /** Crop window in original pixels (0, 0, width, height without augmentation). */
  cropX: number;
  cropY: number;
  cropWidth: number;
  cropHeight: number;
}

export interface Batch {
  /** [B, S, S, 3] float32 normalized, NHWC (tfjs convs are NHWC; the ONNX export transposes). */
  images: tf.Tensor4D;
  /** Deep copies of the records with boxes transformed into model input pixels. */
  records: HoiRecord[];
  originals: OriginalInfo[];
}

const DEFAULTS = {
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
  dropLast: false,
  prefetch: 2,
  hflip: 0.5,
  scaleJitter: [0.75, 1.25] as [number, number],
  colorJitter: 0.2,
};

type ResolvedOptions = Required<LoaderOptions>;

// ---------------------------------------------------------------------------------------------
// Reading

/** manifest.json of a dataset folder, with its format version checked. */
export function readDatasetManifest(datasetDir: string): any {
  const file = path.join(datasetDir, 'manifest.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataError(`${file}: dataset manifest not found (is ${datasetDir} a dataset folder?)`, { cause: err });
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (err) {
    throw new DataError(`${file}: malformed JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) {
    throw new DataError(`${file}: expected a JSON object`);
  }
  const version = (manifest as { format_version?: unknown }).format_version;
  if (version !== DATASET_FORMAT_VERSION) {
    throw new DataError(
      `${where(file, undefined, 'format_version')}: expected ${DATASET_FORMAT_VERSION}, found ${JSON.stringify(version)}`,
    );
  }
  return manifest;
}

/**
 * The records of one split (`<split>.jsonl`), one JSON object a line; blank lines are skipped.
 * A malformed line, or a field the loader relies on that is missing or wrong, raises a DataError
 * naming `file:line` and the field.
 */
export function readSplit(datasetDir: string, split: Split): HoiRecord[] {
  if (!SPLITS.includes(split)) throw new DataError(`unknown split '${split}', expected one of ${SPLITS.join(', ')}`);
  const file = path.join(datasetDir, `${split}.jsonl`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataError(`${file}: split file not found`, { cause: err });
  }
  const records: HoiRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new DataError(`${where(file, i + 1)}: malformed JSON (${(err as Error).message})`, { cause: err });
    }
    records.push(checkRecord(value, file, i + 1));
  }
  return records;
}

/** Structural checks of one record; messages name file:line and the field. */
function checkRecord(v: unknown, file: string, line: number): HoiRecord {
  const fail = (field: string, expected: string, found: unknown): never => {
    throw new DataError(`${where(file, line, field)}: expected ${expected}, found ${JSON.stringify(found)}`);
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('(record)', 'a JSON object', v);
  const r = v as Record<string, unknown>;
  if (typeof r.id !== 'string' || r.id === '') fail('id', 'a non-empty string', r.id);
  if (typeof r.image !== 'string' || r.image === '') fail('image', 'a non-empty path', r.image);
  for (const f of ['width', 'height'] as const) {
    if (!Number.isInteger(r[f]) || (r[f] as number) <= 0) fail(f, 'a positive integer', r[f]);
  }
  const W = r.width as number, H = r.height as number;
  if (!Array.isArray(r.objects)) fail('objects', 'an array', r.objects);
  (r.objects as unknown[]).forEach((o, k) => {
    const obj = o as Record<string, unknown> | null;
    if (typeof obj !== 'object' || obj === null) return fail(`objects[${k}]`, 'an object', o);
    if (typeof obj.category !== 'string') fail(`objects[${k}].category`, 'a string', obj.category);
    const b = obj.box;
    if (!Array.isArray(b) || b.length !== 4 || !b.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      return fail(`objects[${k}].box`, '[x1, y1, x2, y2] of finite numbers', b);
    }
    // One pixel of slack for annotations rounded outward; the transforms clip anyway.
    if (b[0] > b[2] || b[1] > b[3] || b[0] < -1 || b[1] < -1 || b[2] > W + 1 || b[3] > H + 1) {
      fail(`objects[${k}].box`, `x1 <= x2, y1 <= y2 inside the ${W}x${H} image`, b);
    }
  });
  if (!Array.isArray(r.hois)) fail('hois', 'an array', r.hois);
  if (r.label !== 'normal' && r.label !== 'anomalous') fail('label', "'normal' or 'anomalous'", r.label);
  return v as HoiRecord;
}

// ---------------------------------------------------------------------------------------------
// Loading

/** One image made ready for a batch: pixels already normalized into the batch buffer. */
interface Prepared {
  record: HoiRecord;
  original: OriginalInfo;
}

interface PreparedBatch {
  data: Float32Array;
  items: Prepared[];
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly records: HoiRecord[];
  readonly manifest: any;
  readonly opts: Readonly<ResolvedOptions>;
  private readonly dir: string;
  private iterations = 0;

  constructor(datasetDir: string, opts: LoaderOptions) {
    this.opts = resolveOptions(opts);
    this.dir = path.resolve(datasetDir);
    this.manifest = readDatasetManifest(this.dir);
    this.records = readSplit(this.dir, this.opts.split);
    const declared = this.manifest.splits?.[this.opts.split]?.images;
    if (typeof declared === 'number' && declared !== this.records.length) {
      throw new DataError(
        `${path.join(this.dir, `${this.opts.split}.jsonl`)}: manifest.json declares ${declared} images for split '${this.opts.split}', the file has ${this.records.length}`,
      );
    }
  }

  get size(): number {
    return this.records.length;
  }

  get numBatches(): number {
    const n = this.records.length, b = this.opts.batchSize;
    return this.opts.dropLast ? Math.floor(n / b) : Math.ceil(n / b);
  }

  /** Record indices of each batch of an epoch: the order is seeded by (seed, epoch). */
  batchIndices(epochIndex: number): number[][] {
    const order = this.records.map((_, i) => i);
    if (this.opts.shuffle) new Rng(this.opts.seed, 'shuffle', epochIndex).shuffle(order);
    const out: number[][] = [];
    for (let i = 0; i < this.numBatches; i++) out.push(order.slice(i * this.opts.batchSize, (i + 1) * this.opts.batchSize));
    return out;
  }

  /**
   * The batches of one epoch; iterating it twice yields identical batches. `startBatch` skips
   * the first batches without decoding them (a resumed run continues mid-epoch).
   */
  epoch(epochIndex: number, startBatch = 0): AsyncIterable<Batch> {
    return { [Symbol.asyncIterator]: () => this.run(epochIndex, startBatch) };
  }

  /** Successive iterations run epochs 0, 1, 2, ... (reshuffled each time, like a PyTorch loader). */
  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.run(this.iterations++);
  }

  private async *run(epochIndex: number, startBatch = 0): AsyncGenerator<Batch, void, undefined> {
    const plan = this.batchIndices(epochIndex);
    const S = this.opts.inputSize;
    const pending: Array<Promise<PreparedBatch> | undefined> = [];
    const state = { stopped: false };
    let launched = startBatch;
    try {
      for (let i = startBatch; i < plan.length; i++) {
        while (launched < plan.length && launched <= i + this.opts.prefetch) {
          const p = this.prepareBatch(plan[launched], epochIndex, state);
          // A batch prepared ahead may fail before it is awaited: keep Node from reporting an
          // unhandled rejection; the error is rethrown when that batch's turn comes.
          p.catch(() => undefined);
          pending[launched++] = p;
        }
        const ready = await pending[i]!;
        pending[i] = undefined;
        const images = tf.tensor4d(ready.data, [ready.items.length, S, S, 3], 'float32');
        yield { images, records: ready.items.map((p) => p.record), originals: ready.items.map((p) => p.original) };
      }
    } finally {
      state.stopped = true; // batches still in flight skip their remaining images
    }
  }

  private async prepareBatch(indices: number[], epochIndex: number, state: { stopped: boolean }): Promise<PreparedBatch> {
    const S = this.opts.inputSize;
    const data = new Float32Array(indices.length * S * S * 3);
    const items = await Promise.all(
      indices.map((recordIndex, k) => this.prepareImage(recordIndex, epochIndex, data, k * S * S * 3, state)),
    );
    return { data, items };
  }

  private async prepareImage(
    recordIndex: number, epochIndex: number, out: Float32Array, offset: number, state: { stopped: boolean },
  ): Promise<Prepared> {
    const rec = this.records[recordIndex];
    const o = this.opts;
    const file = path.resolve(this.dir, rec.image);
    const original: OriginalInfo = {
      id: rec.id, width: rec.width, height: rec.height, scale: 1, padX: 0, padY: 0, flipped: false,
      cropX: 0, cropY: 0, cropWidth: rec.width, cropHeight: rec.height,
    };
    if (state.stopped) return { record: rec, original };
    const img = await decodeImage(file);
    if (img.width !== rec.width || img.height !== rec.height) {
      throw new DataError(
        `${file}: record '${rec.id}' says ${rec.width}x${rec.height}, the image is ${img.width}x${img.height}`,
      );
    }
    if (state.stopped) return { record: rec, original };

    let s: Sample = { image: img.data, width: img.width, height: img.height, boxes: rec.objects.map((ob) => ob.box) };
    const rng = o.augment ? new Rng(o.seed, 'augment', epochIndex, rec.id) : null;
    if (rng) {
      const c = scaleCropJitter(s, rng, { scale: o.scaleJitter });
      s = c.sample;
      Object.assign(original, { cropX: c.x0, cropY: c.y0, cropWidth: s.width, cropHeight: s.height });
      if (rng.chance(o.hflip)) {
        s = hflip(s);
        original.flipped = true;
      }
    }
    const lb = letterbox(s, o.inputSize);
    let final: Sample = lb.sample;
    if (rng && o.colorJitter > 0) {
      const cj = o.colorJitter;
      final = colorJitter(final, rng, { brightness: cj, contrast: cj, saturation: cj, region: lb.content });
    }
    normalizeInto(final.image, out, offset, o.mean, o.std);
    Object.assign(original, { scale: lb.scale, padX: lb.padX, padY: lb.padY });

    const record: HoiRecord = {
      ...rec,
      objects: rec.objects.map((ob, k) => ({ ...ob, box: [...final.boxes[k]] as Box })),
      hois: rec.hois.map((h) => ({ ...h })),
      conversations: rec.conversations?.map((t) => ({ ...t })),
    };
    return { record, original };
  }
}

/**
 * Maps a box in model input pixels back to the original image, undoing letterbox, flip and crop
 * (the inverse of what the loader applied to produce `original`).
 */
export function modelBoxToOriginal(box: Box, original: OriginalInfo): Box {
  let b = unletterboxBox(box, original.scale, original.padX, original.padY);
  if (original.flipped) b = [original.cropWidth - b[2], b[1], original.cropWidth - b[0], b[3]];
  return [b[0] + original.cropX, b[1] + original.cropY, b[2] + original.cropX, b[3] + original.cropY];
}

function resolveOptions(opts: LoaderOptions): ResolvedOptions {
  const o: ResolvedOptions = {
    ...opts,
    mean: opts.mean ?? DEFAULTS.mean,
    std: opts.std ?? DEFAULTS.std,
    dropLast: opts.dropLast ?? DEFAULTS.dropLast,
    prefetch: opts.prefetch ?? DEFAULTS.prefetch,
    hflip: opts.hflip ?? DEFAULTS.hflip,
    scaleJitter: opts.scaleJitter ?? DEFAULTS.scaleJitter,
    colorJitter: opts.colorJitter ?? DEFAULTS.colorJitter,
  };
  const bad = (name: string, expected: string, found: unknown): never => {
    throw new ConfigError(`loader option '${name}': expected ${expected}, found ${JSON.stringify(found)}`);
  };
  if (!SPLITS.includes(o.split)) bad('split', SPLITS.join(' | '), o.split);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) bad('batchSize', 'a positive integer', o.batchSize);
  if (!Number.isInteger(o.inputSize) || o.inputSize < 1) bad('inputSize', 'a positive integer', o.inputSize);
  if (!Number.isInteger(o.prefetch) || o.prefetch < 0) bad('prefetch', 'an integer >= 0', o.prefetch);
  if (!Number.isFinite(o.seed)) bad('seed', 'a number', o.seed);
  if (!(o.hflip >= 0 && o.hflip <= 1)) bad('hflip', 'a probability in [0, 1]', o.hflip);
  if (!(o.colorJitter >= 0 && o.colorJitter < 1)) bad('colorJitter', 'a strength in [0, 1)', o.colorJitter);
  const [lo, hi] = o.scaleJitter;
  if (!(lo > 0 && hi >= lo)) bad('scaleJitter', '[lo, hi] with 0 < lo <= hi', o.scaleJitter);
  for (const k of ['mean', 'std'] as const) {
    const v = o[k];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => Number.isFinite(x) && (k === 'mean' || x > 0))) {
      bad(k, k === 'std' ? 'three positive numbers' : 'three numbers', v);
    }
  }
  return o;
}
