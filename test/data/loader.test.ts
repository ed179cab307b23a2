import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { tf } from '../../src/backend/tf';
import { ConfigError, DataError } from '../../src/errors';
import { Box, HoiRecord } from '../../src/data/record';
import { Rng } from '../../src/data/rng';
import {
  DEFAULT_FILL, IMAGENET_MEAN, IMAGENET_STD, Sample, colorJitter, crop, hflip, letterbox, normalize, resize,
  scaleCropJitter, unletterboxBox,
} from '../../src/data/transforms';
import { Batch, DataLoader, LoaderOptions, modelBoxToOriginal, readDatasetManifest, readSplit } from '../../src/data/loader';

// ---------------------------------------------------------------------------------------------
// Fixture helpers

type RGB = [number, number, number];

function canvas(w: number, h: number, bg: RGB): Uint8Array {
  const img = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) img.set(bg, i * 3);
  return img;
}

function fillRect(img: Uint8Array, w: number, b: Box, c: RGB): void {
  for (let y = b[1]; y < b[3]; y++) for (let x = b[0]; x < b[2]; x++) img.set(c, (y * w + x) * 3);
}

/** A disc inscribed in box b (pixel centres inside the circle). */
function fillDisc(img: Uint8Array, w: number, b: Box, c: RGB): void {
  const cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2, r = (b[2] - b[0]) / 2;
  for (let y = b[1]; y < b[3]; y++) {
    for (let x = b[0]; x < b[2]; x++) if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r) img.set(c, (y * w + x) * 3);
  }
}

function writePng(file: string, w: number, h: number, rgb: Uint8Array): void {
  const png = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) png.data.set([rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2], 255], i * 4);
  fs.writeFileSync(file, PNG.sync.write(png));
}

function pixel(s: Sample, x: number, y: number): number[] {
  const i = (Math.floor(y) * s.width + Math.floor(x)) * 3;
  return [s.image[i], s.image[i + 1], s.image[i + 2]];
}

function near(a: number[], b: number[], tol: number): boolean {
  return a.every((v, i) => Math.abs(v - b[i]) <= tol);
}

const RED: RGB = [220, 30, 30];
const GREEN: RGB = [30, 200, 40];
const BLUE: RGB = [30, 40, 220];
const YELLOW: RGB = [230, 220, 20];
const BG: RGB = [40, 40, 40];

/** A 96x64 scene with three rectangles and one disc at known boxes, 10+ px apart. */
function scene(): { sample: Sample<Uint8Array>; colors: RGB[] } {
  const w = 96, h = 64;
  const img = canvas(w, h, BG);
  const boxes: Box[] = [[4, 6, 30, 58], [40, 4, 60, 24], [70, 30, 92, 60], [40, 36, 60, 56]];
  fillRect(img, w, boxes[0], RED);
  fillRect(img, w, boxes[1], GREEN);
  fillRect(img, w, boxes[2], BLUE);
  fillDisc(img, w, boxes[3], YELLOW);
  return { sample: { image: img, width: w, height: h, boxes }, colors: [RED, GREEN, BLUE, YELLOW] };
}

/**
 * Every box of `s` sits on its object: the colour at the centre and at points 25% inside each
 * edge (on the centre lines) is the object's; 2 px outside an unclipped edge it is not.
 */
function assertBoxesOnObjects(s: Sample, colors: RGB[], ctx: string): void {
  s.boxes.forEach((b, k) => {
    const [x1, y1, x2, y2] = b;
    const cx = (x1 + x2) / 2, cy = (y1 + y2) / 2, qw = (x2 - x1) / 4, qh = (y2 - y1) / 4;
    const inside: Array<[number, number]> = [[cx, cy], [x1 + qw, cy], [x2 - qw, cy], [cx, y1 + qh], [cx, y2 - qh]];
    for (const [x, y] of inside) {
      const c = pixel(s, x, y);
      assert.ok(near(c, colors[k], 40), `${ctx}: box ${k} [${b.map((v) => v.toFixed(1))}] at (${x.toFixed(1)}, ${y.toFixed(1)}) is ${c.map(Math.round)}, expected ${colors[k]}`);
    }
    const outside: Array<[number, number]> = [[x1 - 2, cy], [x2 + 2, cy], [cx, y1 - 2], [cx, y2 + 2]];
    for (const [x, y] of outside) {
      if (x < 0 || y < 0 || x >= s.width || y >= s.height) continue;
      const c = pixel(s, x, y);
      assert.ok(!near(c, colors[k], 60), `${ctx}: box ${k}: (${x.toFixed(1)}, ${y.toFixed(1)}) outside the box still has its colour ${c.map(Math.round)}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------

describe('data/transforms', () => {
  it('letterboxes 200x100 to 100: scale 0.5, padY 25, boxes and fill', () => {
    const img = canvas(200, 100, [200, 100, 50]);
    const lb = letterbox({ image: img, width: 200, height: 100, boxes: [[20, 10, 120, 60]] }, 100);
    assert.equal(lb.scale, 0.5);
    assert.equal(lb.padX, 0);
    assert.equal(lb.padY, 25);
    assert.deepEqual(lb.content, [0, 25, 100, 75]);
    assert.deepEqual(lb.sample.boxes, [[10, 30, 60, 55]]);
    assert.equal(lb.sample.width, 100);
    assert.equal(lb.sample.image.length, 100 * 100 * 3);
    assert.deepEqual(pixel(lb.sample, 50, 10), [DEFAULT_FILL, DEFAULT_FILL, DEFAULT_FILL]);
    assert.deepEqual(pixel(lb.sample, 50, 90), [DEFAULT_FILL, DEFAULT_FILL, DEFAULT_FILL]);
    // A uniform image stays exactly uniform (weights sum to one, edges replicate).
    for (const [x, y] of [[0, 25], [99, 74], [50, 50]]) assert.deepEqual(pixel(lb.sample, x, y), [200, 100, 50]);
    assert.deepEqual(unletterboxBox(lb.sample.boxes[0], lb.scale, lb.padX, lb.padY), [20, 10, 120, 60]);

    const tall = letterbox({ image: canvas(30, 60, [0, 0, 0]), width: 30, height: 60, boxes: [[3, 6, 9, 60]] }, 40);
    assert.deepEqual([tall.scale, tall.padX, tall.padY], [40 / 60, 10, 0]);
    assert.deepEqual(tall.sample.boxes[0].map((v) => +v.toFixed(6)), [12, 4, 16, 40]);
    assert.deepEqual(unletterboxBox(tall.sample.boxes[0], tall.scale, tall.padX, tall.padY).map((v) => +v.toFixed(6)), [3, 6, 9, 60]);
  });

  it('resizes with bilinear weights (hand-computed) and scales boxes per axis', () => {
    // 2x1 [0, 100] -> 4x1: centres map to 0.25, 0.75, 1.25, 1.75 -> 0, 25, 75, 100.
    const up = resize({ image: new Uint8Array([0, 0, 0, 100, 100, 100]), width: 2, height: 1, boxes: [[1, 0, 2, 1]] }, 4, 2);
    assert.deepEqual(Array.from(up.image.filter((_, i) => i % 3 === 0)), [0, 25, 75, 100, 0, 25, 75, 100]);
    assert.deepEqual(up.boxes, [[2, 0, 4, 2]]);
    // 4x1 [0, 40, 80, 120] -> 2x1, triangle of half-width 2 source px: at centre 1.0 the taps
    // 0.5, 1.5, 2.5 weigh 0.75, 0.75, 0.25 -> (0 + 30 + 20) / 1.75.
    const down = resize({ image: new Float32Array([0, 0, 0, 40, 40, 40, 80, 80, 80, 120, 120, 120]), width: 4, height: 1, boxes: [] }, 2, 1);
    assert.ok(Math.abs(down.image[0] - 50 / 1.75) < 1e-4, `${down.image[0]}`);
    assert.ok(Math.abs(down.image[3] - (120 - 50 / 1.75)) < 1e-4, `${down.image[3]}`);
  });

  it('hflip mirrors pixels and boxes; twice is the identity', () => {
    const s: Sample<Uint8Array> = { image: new Uint8Array(10 * 2 * 3).map((_, i) => i), width: 10, height: 2, boxes: [[1, 0, 4, 2], [0, 0, 10, 1]] };
    const f = hflip(s);
    assert.deepEqual(f.boxes, [[6, 0, 9, 2], [0, 0, 10, 1]]);
    assert.deepEqual(pixel(f, 9, 0), [0, 1, 2]);
    assert.deepEqual(pixel(f, 0, 1), [57, 58, 59]);
    assert.ok(f.image instanceof Uint8Array);
    assert.deepEqual(hflip(f), s);
    assert.deepEqual(s.boxes[0], [1, 0, 4, 2]); // input untouched
  });

  it('crop translates and clips boxes, filling outside the image', () => {
    const s: Sample<Uint8Array> = { image: canvas(8, 6, [9, 9, 9]), width: 8, height: 6, boxes: [[1, 1, 7, 5]] };
    const c = crop(s, -2, 2, 6, 6, 0);
    assert.deepEqual([c.width, c.height], [6, 6]);
    assert.deepEqual(c.boxes, [[3, 0, 6, 3]]);
    assert.deepEqual(pixel(c, 0, 0), [0, 0, 0]); // left of the image
    assert.deepEqual(pixel(c, 2, 3), [9, 9, 9]);
    assert.deepEqual(pixel(c, 2, 4), [0, 0, 0]); // below the image
  });

  it('scaleCropJitter keeps every box (cut <= maxCut per axis) and is the identity at zoom 1', () => {
    const { sample } = scene();
    const same = scaleCropJitter(sample, new Rng(1), { scale: [1, 1] });
    assert.deepEqual([same.x0, same.y0], [0, 0]);
    assert.deepEqual(same.sample, sample);
    const empty = scaleCropJitter({ ...sample, boxes: [] }, new Rng(2), { scale: [2, 2] });
    assert.deepEqual([empty.sample.width, empty.sample.height], [48, 32]); // zoom 2, no box to keep
    assert.ok(empty.x0 >= 0 && empty.x0 <= 48 && empty.y0 >= 0 && empty.y0 <= 32);
    for (let seed = 0; seed < 200; seed++) {
      const c = scaleCropJitter(sample, new Rng(seed), { scale: [0.5, 3], aspect: [0.6, 1.6], maxCut: 0.1 });
      assert.equal(c.sample.boxes.length, sample.boxes.length);
      assert.ok(Number.isInteger(c.x0) && Number.isInteger(c.y0));
      c.sample.boxes.forEach((b, k) => {
        const o = sample.boxes[k];
        const keptW = (b[2] - b[0]) / (o[2] - o[0]);
        const keptH = (b[3] - b[1]) / (o[3] - o[1]);
        assert.ok(keptW >= 0.9 - 1e-9 && keptH >= 0.9 - 1e-9, `seed ${seed} box ${k}: kept ${keptW} x ${keptH}`);
        assert.ok(b[0] >= 0 && b[1] >= 0 && b[2] <= c.sample.width && b[3] <= c.sample.height);
      });
    }
  });

  it('boxes stay on the drawn objects through crop jitter + hflip + letterbox + resize (100 seeds)', () => {
    const { sample, colors } = scene();
    assertBoxesOnObjects(sample, colors, 'fixture');
    let zoomedIn = 0, zoomedOut = 0, flips = 0;
    for (let seed = 0; seed < 100; seed++) {
      const rng = new Rng('geometry', seed);
      const c = scaleCropJitter(sample, rng, { scale: [0.6, 1.8], aspect: [0.75, 1.33] });
      if (c.sample.width < sample.width) zoomedIn++;
      if (c.sample.width > sample.width) zoomedOut++;
      let s: Sample = c.sample;
      if (rng.chance(0.5)) {
        s = hflip(s);
        flips++;
      }
      assertBoxesOnObjects(s, colors, `seed ${seed} crop/flip`);
      const lb = letterbox(s, rng.pick([48, 64, 100]));
      assertBoxesOnObjects(lb.sample, colors, `seed ${seed} letterbox`);
      const r = resize(lb.sample, rng.int(60, 120), rng.int(60, 120));
      assertBoxesOnObjects(r, colors, `seed ${seed} resize`);
    }
    assert.ok(zoomedIn > 10 && zoomedOut > 10 && flips > 20, `coverage: in ${zoomedIn}, out ${zoomedOut}, flips ${flips}`);
  });

  it('colorJitter changes values only: geometry, boxes and the region outside stay', () => {
    const { sample, colors } = scene();
    const lb = letterbox(sample, 64);
    for (let seed = 0; seed < 20; seed++) {
      const j = colorJitter(lb.sample, new Rng(seed), { brightness: 0.3, contrast: 0.3, saturation: 0.3, region: lb.content });
      assert.deepEqual([j.width, j.height], [64, 64]);
      assert.deepEqual(j.boxes, lb.sample.boxes);
      assert.deepEqual(pixel(j, 10, 2), [DEFAULT_FILL, DEFAULT_FILL, DEFAULT_FILL]); // padding row
      // The dominant channel of each object is unchanged.
      j.boxes.forEach((b, k) => {
        const c = pixel(j, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
        const dominant = (v: number[]): number => v.indexOf(Math.max(...v));
        if (k !== 3) assert.equal(dominant(c), dominant(colors[k]), `seed ${seed} box ${k}: ${c}`);
      });
    }
    // Brightness alone on a uniform gray image multiplies by the drawn factor.
    const gray: Sample = { image: canvas(4, 4, [100, 100, 100]), width: 4, height: 4, boxes: [[0, 0, 1, 1]] };
    const fb = 1 + new Rng(5).uniform(-0.4, 0.4);
    const b = colorJitter(gray, new Rng(5), { brightness: 0.4, contrast: 0, saturation: 0 });
    for (const v of b.image) assert.ok(Math.abs(v - 100 * fb) < 1e-3, `${v} vs ${100 * fb}`);
    // Zero strengths leave the image exactly as it was.
    const none = colorJitter(sample, new Rng(9), { brightness: 0, contrast: 0, saturation: 0 });
    assert.deepEqual(Array.from(none.image), Array.from(sample.image));
  });

  it('normalize applies (v/255 - mean)/std per channel', () => {
    const n = normalize({ image: new Uint8Array([255, 0, 128]), width: 1, height: 1, boxes: [] });
    const expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225];
    n.image.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-5, `${v} vs ${expected[i]}`));
    assert.ok(n.image instanceof Float32Array);
  });

  it('letterboxes a 256 px image to 128 (+ augmentation) in well under 5 ms', function () {
    const img = new Uint8Array(256 * 256 * 3).map((_, i) => (i * 7) & 255);
    const s: Sample<Uint8Array> = { image: img, width: 256, height: 192, boxes: [[10, 10, 100, 100]] };
    s.image = img.subarray(0, 256 * 192 * 3);
    for (let i = 0; i < 20; i++) letterbox(s, 128); // warm-up (JIT)
    const n = 100;
    let t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) letterbox(s, 128);
    const lbMs = Number(process.hrtime.bigint() - t) / 1e6 / n;
    t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const rng = new Rng(i);
      const c = scaleCropJitter(s, rng, { scale: [0.75, 1.25] });
      const f = hflip(c.sample);
      const lb = letterbox(f, 128);
      const j = colorJitter(lb.sample, rng, { brightness: 0.2, contrast: 0.2, saturation: 0.2, region: lb.content });
      normalize(j);
    }
    const augMs = Number(process.hrtime.bigint() - t) / 1e6 / n;
    console.log(`      256x192 -> 128: letterbox ${lbMs.toFixed(2)} ms, crop+flip+letterbox+colour+normalize ${augMs.toFixed(2)} ms`);
    assert.ok(lbMs < 5, `letterbox took ${lbMs} ms`);
  });
});

// ---------------------------------------------------------------------------------------------

interface Fixture {
  id: string;
  w: number;
  h: number;
  boxes: Box[];
  colors: RGB[];
}

const FIXTURES: Fixture[] = [
  { id: 'a', w: 64, h: 48, boxes: [[4, 4, 24, 40], [34, 10, 60, 30]], colors: [RED, BLUE] },
  { id: 'b', w: 48, h: 64, boxes: [[8, 6, 40, 30]], colors: [GREEN] },
  { id: 'c', w: 40, h: 40, boxes: [[2, 2, 18, 18], [22, 22, 38, 38]], colors: [BLUE, RED] },
  { id: 'd', w: 80, h: 40, boxes: [[50, 4, 76, 36]], colors: [GREEN] },
  { id: 'e', w: 32, h: 48, boxes: [[4, 20, 28, 44]], colors: [RED] },
];

function recordOf(f: Fixture): HoiRecord {
  return {
    id: f.id,
    image: `images/${f.id}.png`,
    width: f.w,
    height: f.h,
    objects: f.boxes.map((box, k) => ({ id: k, category: k === 0 ? 'person' : 'knife', box })),
    hois: f.boxes.length > 1 ? [{ subject: 0, object: 1, verb: 'hold', anomaly: null, severity: null }] : [],
    label: 'normal',
    conversations: [{ from: 'human', value: '<image>\nAnything abnormal?' }, { from: 'gpt', value: 'No.' }],
  };
}

function writeDataset(dir: string, fixtures: Fixture[], val: Fixture[] = []): void {
  fs.mkdirSync(path.join(dir, 'images'), { recursive: true });
  for (const f of [...fixtures, ...val]) {
    const img = canvas(f.w, f.h, BG);
    f.boxes.forEach((b, k) => fillRect(img, f.w, b, f.colors[k]));
    writePng(path.join(dir, 'images', `${f.id}.png`), f.w, f.h, img);
  }
  const jsonl = (fs_: Fixture[]): string => fs_.map((f) => JSON.stringify(recordOf(f))).join('\n') + '\n';
  fs.writeFileSync(path.join(dir, 'train.jsonl'), jsonl(fixtures));
  fs.writeFileSync(path.join(dir, 'val.jsonl'), jsonl(val));
  fs.writeFileSync(path.join(dir, 'test.jsonl'), '');
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({
    format_version: 1, source: 'test', categories: ['person', 'knife'], verbs: ['hold'],
    splits: { train: { images: fixtures.length }, val: { images: val.length }, test: { images: 0 } },
  }));
}

async function collect(it: AsyncIterable<Batch>): Promise<Array<{ ids: string[]; data: Float32Array; shape: number[]; records: HoiRecord[]; originals: Batch['originals'] }>> {
  const out = [];
  for await (const b of it) {
    out.push({ ids: b.records.map((r) => r.id), data: (await b.images.data()) as Float32Array, shape: b.images.shape, records: b.records, originals: b.originals });
    b.images.dispose();
  }
  return out;
}

/** Pixel of image k of a batch, de-normalized to 0-255. */
function batchPixel(data: Float32Array, k: number, size: number, x: number, y: number): number[] {
  const i = ((k * size + Math.floor(y)) * size + Math.floor(x)) * 3;
  return [0, 1, 2].map((c) => (data[i + c] * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255);
}

describe('data/loader', () => {
  let root: string;
  let ds: string;
  const base: LoaderOptions = { split: 'train', batchSize: 2, inputSize: 32, shuffle: false, augment: false, seed: 3 };

  before(async () => {
    await tf.setBackend('cpu');
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'hoi-loader-'));
    ds = path.join(root, 'ds');
    writeDataset(ds, FIXTURES, [FIXTURES[0]]);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('reads the manifest and splits', () => {
    assert.equal(readDatasetManifest(ds).format_version, 1);
    const recs = readSplit(ds, 'train');
    assert.deepEqual(recs.map((r) => r.id), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(recs[0].objects[1].box, [34, 10, 60, 30]);
    assert.equal(readSplit(ds, 'val').length, 1);
    assert.equal(readSplit(ds, 'test').length, 0);
  });

  it('eval mode: batch shapes, count, letterboxed boxes and pixels', async () => {
    const loader = new DataLoader(ds, base);
    assert.equal(loader.numBatches, 3);
    const batches = await collect(loader.epoch(0));
    assert.deepEqual(batches.map((b) => b.shape), [[2, 32, 32, 3], [2, 32, 32, 3], [1, 32, 32, 3]]);
    assert.deepEqual(batches.flatMap((b) => b.ids), ['a', 'b', 'c', 'd', 'e']);
    // Record a (64x48) to 32: scale 0.5, padY 4; box [4,4,24,40] -> [2, 6, 12, 24].
    const a = batches[0];
    assert.deepEqual(a.originals[0], { id: 'a', width: 64, height: 48, scale: 0.5, padX: 0, padY: 4, flipped: false, cropX: 0, cropY: 0, cropWidth: 64, cropHeight: 48 });
    assert.deepEqual(a.records[0].objects.map((o) => o.box), [[2, 6, 12, 24], [17, 9, 30, 19]]);
    assert.deepEqual(a.records[0].hois, recordOf(FIXTURES[0]).hois);
    assert.ok(near(batchPixel(a.data, 0, 32, 7, 15), RED, 0.01));
    assert.ok(near(batchPixel(a.data, 0, 32, 10, 1), [DEFAULT_FILL, DEFAULT_FILL, DEFAULT_FILL], 0.01));
    // Record d (80x40): scale 0.4, padY 8; box [50,4,76,36] -> [20, 9.6, 30.4, 22.4].
    const d = batches[1].records[1];
    assert.equal(d.id, 'd');
    assert.deepEqual(d.objects[0].box.map((v) => +v.toFixed(6)), [20, 9.6, 30.4, 22.4]);
    // The records handed out are copies: the loader's own stay in image pixels.
    assert.deepEqual(loader.records[3].objects[0].box, [50, 4, 76, 36]);

    const dropped = new DataLoader(ds, { ...base, dropLast: true });
    assert.equal(dropped.numBatches, 2);
    assert.deepEqual((await collect(dropped.epoch(0))).map((b) => b.shape[0]), [2, 2]);
    assert.equal(new DataLoader(ds, { ...base, batchSize: 8, dropLast: true }).numBatches, 0);
  });

  it('is deterministic per (seed, epoch), reshuffles across epochs, and ignores prefetch depth', async () => {
    const opts: LoaderOptions = { ...base, shuffle: true, augment: true };
    const loader = new DataLoader(ds, opts);
    const e0 = await collect(loader.epoch(0));
    const e0again = await collect(new DataLoader(ds, { ...opts, prefetch: 0 }).epoch(0));
    const e0deep = await collect(new DataLoader(ds, { ...opts, prefetch: 5 }).epoch(0));
    for (const other of [e0again, e0deep]) {
      assert.deepEqual(other.map((b) => b.ids), e0.map((b) => b.ids));
      other.forEach((b, i) => {
        assert.deepEqual(b.records, e0[i].records);
        assert.deepEqual(b.originals, e0[i].originals);
        assert.ok(b.data.every((v, j) => v === e0[i].data[j]), `batch ${i} pixels differ`);
      });
    }
    // A resumed epoch starting at batch 1 equals the tail of the full epoch.
    const tail = await collect(loader.epoch(0, 1));
    assert.deepEqual(tail.map((b) => b.ids), e0.slice(1).map((b) => b.ids));
    tail.forEach((b, i) => assert.ok(b.data.every((v, j) => v === e0[i + 1].data[j]), `resumed batch ${i + 1} differs`));
    const e1 = await collect(loader.epoch(1));
    const order0 = e0.flatMap((b) => b.ids).join('');
    const order1 = e1.flatMap((b) => b.ids).join('');
    assert.notEqual(order1, order0);
    assert.deepEqual([...order1].sort(), ['a', 'b', 'c', 'd', 'e']);
    // Another seed gives other augmentations of the same images.
    const s2 = await collect(new DataLoader(ds, { ...opts, seed: 4 }).epoch(0));
    assert.notDeepEqual(s2.map((b) => b.originals), e0.map((b) => b.originals));
    // for-await over the loader itself runs epochs 0, 1, ...
    const it0 = await collect(loader);
    const it1 = await collect(loader);
    assert.equal(it0.flatMap((b) => b.ids).join(''), order0);
    assert.equal(it1.flatMap((b) => b.ids).join(''), order1);
  });

  it('augmented boxes stay on their objects and map back to the original boxes', async () => {
    const S = 48;
    let flips = 0, crops = 0;
    for (let epoch = 0; epoch < 8; epoch++) {
      const batches = await collect(new DataLoader(ds, { ...base, inputSize: S, shuffle: true, augment: true, scaleJitter: [0.6, 1.6] }).epoch(epoch));
      for (const b of batches) {
        b.records.forEach((r, k) => {
          const f = FIXTURES.find((x) => x.id === r.id)!;
          const o = b.originals[k];
          if (o.flipped) flips++;
          if (o.cropWidth !== f.w || o.cropX !== 0) crops++;
          r.objects.forEach((obj, j) => {
            const [x1, y1, x2, y2] = obj.box;
            const c = batchPixel(b.data, k, S, (x1 + x2) / 2, (y1 + y2) / 2);
            const dominant = (v: number[]): number => v.indexOf(Math.max(...v));
            assert.equal(dominant(c), dominant(f.colors[j]), `epoch ${epoch} ${r.id} box ${j}: ${c.map(Math.round)}`);
            // Back in original pixels: inside the true box, at least 90% of it per axis.
            const back = modelBoxToOriginal(obj.box, o);
            const t = f.boxes[j];
            assert.ok(back[0] >= t[0] - 1e-3 && back[1] >= t[1] - 1e-3 && back[2] <= t[2] + 1e-3 && back[3] <= t[3] + 1e-3, `${r.id} box ${j}: ${back} vs ${t}`);
            assert.ok(back[2] - back[0] >= 0.9 * (t[2] - t[0]) - 1e-3 && back[3] - back[1] >= 0.9 * (t[3] - t[1]) - 1e-3, `${r.id} box ${j}: ${back} vs ${t}`);
          });
        });
      }
    }
    assert.ok(flips > 5 && crops > 10, `coverage: ${flips} flips, ${crops} crops of 40 images`);
  });

  it('leaks no tensors, also when an epoch is abandoned', async () => {
    const before = tf.memory().numTensors;
    const loader = new DataLoader(ds, { ...base, augment: true, shuffle: true });
    await collect(loader.epoch(0));
    for await (const b of loader.epoch(1)) {
      b.images.dispose();
      break;
    }
    assert.equal(tf.memory().numTensors, before);
  });

  it('reports bad data with file, line and field', async () => {
    const bad = path.join(root, 'bad');
    writeDataset(bad, FIXTURES.slice(0, 3));
    const lines = fs.readFileSync(path.join(bad, 'train.jsonl'), 'utf8').split('\n');

    lines[2] = lines[2].slice(0, 30); // line 3 cut short
    fs.writeFileSync(path.join(bad, 'train.jsonl'), lines.join('\n'));
    assert.throws(() => new DataLoader(bad, base), (e: unknown) => e instanceof DataError && /train\.jsonl:3: malformed JSON/.test(e.message));

    const rec = recordOf(FIXTURES[2]);
    rec.objects[1].box = [22, 22, 38, 45]; // 40x40 image
    lines[2] = JSON.stringify(rec);
    fs.writeFileSync(path.join(bad, 'train.jsonl'), lines.join('\n'));
    assert.throws(() => readSplit(bad, 'train'), (e: unknown) => e instanceof DataError && /train\.jsonl:3 field 'objects\[1\]\.box'/.test(e.message));

    lines[2] = JSON.stringify({ ...recordOf(FIXTURES[2]), width: 'wide' });
    fs.writeFileSync(path.join(bad, 'train.jsonl'), lines.join('\n'));
    assert.throws(() => readSplit(bad, 'train'), (e: unknown) => e instanceof DataError && /train\.jsonl:3 field 'width': expected a positive integer, found "wide"/.test(e.message));

    // Missing image and wrong size: raised when the batch holding it is handed out.
    lines[2] = JSON.stringify({ ...recordOf(FIXTURES[2]), image: 'images/nope.png' });
    fs.writeFileSync(path.join(bad, 'train.jsonl'), lines.join('\n'));
    await assert.rejects(collect(new DataLoader(bad, { ...base, batchSize: 1 }).epoch(0)), (e: unknown) => e instanceof DataError && /nope\.png: image file not found/.test(e.message));
    lines[2] = JSON.stringify({ ...recordOf(FIXTURES[2]), width: 41 });
    fs.writeFileSync(path.join(bad, 'train.jsonl'), lines.join('\n'));
    await assert.rejects(collect(new DataLoader(bad, base).epoch(0)), (e: unknown) => e instanceof DataError && /c\.png: record 'c' says 41x40, the image is 40x40/.test(e.message));

    fs.writeFileSync(path.join(bad, 'manifest.json'), JSON.stringify({ format_version: 99 }));
    assert.throws(() => readDatasetManifest(bad), (e: unknown) => e instanceof DataError && /manifest\.json field 'format_version': expected 1, found 99/.test(e.message));
    fs.writeFileSync(path.join(bad, 'manifest.json'), JSON.stringify({ format_version: 1, splits: { train: { images: 7 } } }));
    assert.throws(() => new DataLoader(bad, base), (e: unknown) => e instanceof DataError && /declares 7 images for split 'train', the file has 3/.test(e.message));
    assert.throws(() => new DataLoader(path.join(root, 'nowhere'), base), (e: unknown) => e instanceof DataError && /dataset manifest not found/.test(e.message));
    assert.throws(() => new DataLoader(ds, { ...base, batchSize: 0 }), (e: unknown) => e instanceof ConfigError && /'batchSize'/.test(e.message));
    assert.throws(() => new DataLoader(ds, { ...base, scaleJitter: [1.2, 0.8] }), ConfigError);
  });

  it('throughput: batch 8 at 128 px from 256 px PNGs', async function () {
    const big = path.join(root, 'big');
    const fx: Fixture[] = [];
    for (let i = 0; i < 16; i++) fx.push({ id: `img${i}`, w: 256, h: 256 - (i % 4) * 32, boxes: [[20, 20, 120, 200 - (i % 4) * 32], [140, 40, 230, 120]], colors: [RED, GREEN] });
    writeDataset(big, fx);
    const loader = new DataLoader(big, { ...base, batchSize: 8, inputSize: 128, augment: true, shuffle: true });
    await collect(loader.epoch(0)); // warm-up
    const t = Date.now();
    const epochs = 3;
    for (let e = 1; e <= epochs; e++) await collect(loader.epoch(e));
    const perSecond = (epochs * loader.numBatches) / ((Date.now() - t) / 1000);
    console.log(`      loader: ${perSecond.toFixed(1)} batches/s (batch 8, 128 px, augment, 256 px PNG)`);
    assert.ok(perSecond > 2, `${perSecond} batches/s`);
  });
});
