/**
 * Shared fixtures of the export and explain tests: a tiny synth dataset and a tiny extractor
 * trained on it for a few steps (ResNet-18 at width 0.25, 64 px; seconds on 2 cores), built once
 * per mocha process, and sample images in the formats explain must accept.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { initBackend } from '../../src/backend';
import { DatasetConfigSchema } from '../../src/config/dataset';
import { ExtractorConfigSchema } from '../../src/config/extractor';
import { loadConfig } from '../../src/config/load';
import { buildDataset } from '../../src/data/build';
import { decodeImage } from '../../src/data/image_io';
import { readSplit } from '../../src/data/loader';
import { trainExtractor } from '../../src/train/train_extractor';
import { tmpDir } from '../helpers/tmp';

export const TINY_STEPS = 20;

export interface TinyRun {
  /** Temporary root (removed at process exit). */
  root: string;
  data: string;
  /** The run folder. */
  run: string;
}

let cached: Promise<TinyRun> | null = null;

/** A tiny trained extractor run (trained once per process). */
export function tinyExtractorRun(): Promise<TinyRun> {
  cached ??= (async () => {
    await initBackend({ name: 'wasm' });
    const root = tmpDir('hoi2anomaly-infer-');
    process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
    const data = path.join(root, 'data');
    await buildDataset({ source: 'synth', out: data, config: loadConfig(DatasetConfigSchema, { sets: ['num_images=24', 'synth.image_size=64', 'seed=5'] }) });
    const run = path.join(root, 'run');
    const config = loadConfig(ExtractorConfigSchema, {
      sets: [
        'model.width=0.25', 'model.input_size=64', 'model.neck_channels=16', 'model.head_channels=16',
        'train.batch_size=4', `train.steps=${TINY_STEPS}`, 'train.log_every=100', 'train.eval_every=0', 'train.checkpoint_every=0',
        'train.eval_max_images=2', 'train.schedule.warmup_steps=2', 'train.schedule.lr=0.004', 'backend.name=wasm',
        // 20 steps leave low peaks and rough displacements: lenient decoding gives every image
        // triplets to compare the engines on
        'decode.object_threshold=0.001', 'decode.interaction_threshold=0.001', 'decode.match_distance=4',
      ],
    });
    await trainExtractor({ config, data, out: run });
    return { root, data, run };
  })();
  return cached;
}

/** Paths of the sample images written by writeSampleImages. */
export interface SampleImages {
  folder: string;
  /** The synth test image, 8-bit RGB PNG, extended to 96x64 (non-square). */
  plain: string;
  /** The same pixels stored rotated, with EXIF orientation 6 (displayed 96x64). */
  exif: string;
  gray: string;
  rgba: string;
  rgb16: string;
  /** A PNG cut after 40 bytes. */
  corrupt: string;
  /** Text: skipped from folders (extension), an error when named directly. */
  notes: string;
  /** A file name with characters HTML must escape. */
  oddName: string;
}

/** Writes images made from the dataset's first test scenes into `folder`. */
export async function writeSampleImages(data: string, folder: string): Promise<SampleImages> {
  fs.mkdirSync(folder, { recursive: true });
  const records = readSplit(data, 'test');
  const img = await decodeImage(path.join(data, records[0].image));
  const raw = { raw: { width: img.width, height: img.height, channels: 3 as const } };
  // 96x64: the scene on the left, grey on the right (a non-square image exercises the letterbox)
  const wide = await sharp(Buffer.from(img.data), raw).extend({ right: 32, background: { r: 120, g: 120, b: 120 } }).raw().toBuffer();
  const wideRaw = { raw: { width: img.width + 32, height: img.height, channels: 3 as const } };
  const p: SampleImages = {
    folder,
    plain: path.join(folder, 'a_plain.png'),
    exif: path.join(folder, 'b_exif6.jpg'),
    gray: path.join(folder, 'c_gray.png'),
    rgba: path.join(folder, 'd_rgba.png'),
    rgb16: path.join(folder, 'e_rgb16.png'),
    corrupt: path.join(folder, 'f_corrupt.png'),
    notes: path.join(folder, 'notes.txt'),
    oddName: path.join(folder, 'g_x&y<z>.png'),
  };
  await sharp(wide, wideRaw).png().toFile(p.plain);
  // stored rotated 90 degrees counter-clockwise; orientation 6 rotates it back for display
  const stored = await sharp(wide, wideRaw).rotate(-90).raw().toBuffer({ resolveWithObject: true });
  await sharp(stored.data, { raw: { width: stored.info.width, height: stored.info.height, channels: 3 } })
    .jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(p.exif);
  await sharp(wide, wideRaw).grayscale().png().toFile(p.gray);
  await sharp(wide, wideRaw).ensureAlpha(0.8).png().toFile(p.rgba);
  // 16-bit RGB through pngjs: each 8-bit value v becomes v * 257
  const png16 = new PNG({ width: img.width, height: img.height, bitDepth: 16, colorType: 2, inputHasAlpha: false });
  png16.data = Uint16Array.from(img.data, (v) => v * 257) as unknown as Buffer;
  fs.writeFileSync(p.rgb16, PNG.sync.write(png16, { bitDepth: 16, colorType: 2, inputColorType: 2, inputHasAlpha: false }));
  fs.writeFileSync(p.corrupt, fs.readFileSync(p.plain).subarray(0, 40));
  fs.writeFileSync(p.notes, 'not an image\n');
  await sharp(Buffer.from(img.data), raw).png().toFile(p.oddName);
  return p;
}
