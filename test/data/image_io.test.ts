import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { DataError } from '../../src/errors';
import { decodeImage, imageSize } from '../../src/data/image_io';

/** Pixel (x, y) of an RGB HWC buffer. */
function px(data: Uint8Array, width: number, x: number, y: number): number[] {
  const i = (y * width + x) * 3;
  return [data[i], data[i + 1], data[i + 2]];
}

describe('data/image_io', () => {
  let dir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoi-imageio-'));

    // 8-bit RGBA PNG, 5x3, every pixel distinct and opaque.
    const rgb = new PNG({ width: 5, height: 3 });
    for (let i = 0; i < 15; i++) rgb.data.set([i * 10, 255 - i * 10, i * 3, 255], i * 4);
    fs.writeFileSync(path.join(dir, 'rgb.png'), PNG.sync.write(rgb));

    // RGBA with transparency: opaque red, fully transparent green, half-transparent blue.
    const rgba = new PNG({ width: 3, height: 1 });
    rgba.data.set([255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 128]);
    fs.writeFileSync(path.join(dir, 'rgba.png'), PNG.sync.write(rgba));

    // 16-bit RGB PNG: 65535 -> 255, 32896 (= 128 * 257) -> 128, 2570 (= 10 * 257) -> 10.
    const p16 = new PNG({ width: 4, height: 2, bitDepth: 16, colorType: 2, inputHasAlpha: false });
    const u16 = new Uint16Array(4 * 2 * 3);
    for (let i = 0; i < 8; i++) u16.set([65535, 32896, 2570], i * 3);
    p16.data = u16 as unknown as Buffer;
    fs.writeFileSync(path.join(dir, 'rgb16.png'), PNG.sync.write(p16, { bitDepth: 16, colorType: 2, inputColorType: 2, inputHasAlpha: false }));

    // 8-bit grayscale PNG (colour type 0) with a horizontal ramp.
    const gray = new PNG({ width: 4, height: 1, colorType: 0, inputHasAlpha: false });
    gray.data = Buffer.from([0, 0, 0, 255, 85, 85, 85, 255, 170, 170, 170, 255, 255, 255, 255, 255]);
    fs.writeFileSync(path.join(dir, 'gray.png'), PNG.sync.write(gray, { colorType: 0, inputHasAlpha: true }));

    // JPEGs: stored 40x20, left half red, right half blue; one with EXIF orientation 6 (display
    // rotated 90 degrees clockwise: 20x40, red on top), one grayscale.
    const raw = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++) {
      for (let x = 0; x < 40; x++) raw.set(x < 20 ? [230, 20, 20] : [20, 20, 230], (y * 40 + x) * 3);
    }
    const input = { raw: { width: 40, height: 20, channels: 3 as const } };
    await sharp(raw, input).jpeg({ quality: 95 }).toFile(path.join(dir, 'plain.jpg'));
    await sharp(raw, input).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(path.join(dir, 'orient6.jpg'));
    await sharp(raw, input).grayscale().jpeg({ quality: 95 }).toFile(path.join(dir, 'gray.jpg'));

    // Corrupt: a PNG cut after 40 bytes; not an image at all.
    fs.writeFileSync(path.join(dir, 'truncated.png'), fs.readFileSync(path.join(dir, 'rgb.png')).subarray(0, 40));
    fs.writeFileSync(path.join(dir, 'notes.png'), 'this is text, not a picture\n');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('decodes an 8-bit PNG exactly', async () => {
    const img = await decodeImage(path.join(dir, 'rgb.png'));
    assert.equal(img.width, 5);
    assert.equal(img.height, 3);
    assert.equal(img.data.length, 5 * 3 * 3);
    assert.ok(img.data instanceof Uint8Array);
    assert.deepEqual(px(img.data, 5, 0, 0), [0, 255, 0]);
    assert.deepEqual(px(img.data, 5, 2, 1), [70, 185, 21]); // i = 7
    assert.deepEqual(px(img.data, 5, 4, 2), [140, 115, 42]); // i = 14
  });

  it('flattens alpha on black and drops it', async () => {
    const img = await decodeImage(path.join(dir, 'rgba.png'));
    assert.equal(img.data.length, 9);
    assert.deepEqual(px(img.data, 3, 0, 0), [255, 0, 0]);
    assert.deepEqual(px(img.data, 3, 1, 0), [0, 0, 0]);
    const [r, g, b] = px(img.data, 3, 2, 0);
    assert.deepEqual([r, g], [0, 0]);
    assert.ok(Math.abs(b - 128) <= 1, `half-transparent blue on black: ${b}`);
  });

  it('scales 16-bit samples to 8 bits', async () => {
    const img = await decodeImage(path.join(dir, 'rgb16.png'));
    assert.deepEqual([img.width, img.height], [4, 2]);
    assert.deepEqual(px(img.data, 4, 3, 1), [255, 128, 10]);
  });

  it('expands grayscale to three equal channels', async () => {
    const png = await decodeImage(path.join(dir, 'gray.png'));
    assert.deepEqual(Array.from(png.data), [0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255]);
    const jpg = await decodeImage(path.join(dir, 'gray.jpg'));
    assert.deepEqual([jpg.width, jpg.height], [40, 20]);
    for (const [x, y] of [[5, 5], [35, 15]]) {
      const [r, g, b] = px(jpg.data, 40, x, y);
      assert.equal(r, g);
      assert.equal(g, b);
    }
    // Luma of red (230,20,20) is ~82, of blue (20,20,230) ~ 44: left brighter than right.
    assert.ok(px(jpg.data, 40, 5, 10)[0] > px(jpg.data, 40, 35, 10)[0] + 20);
  });

  it('applies EXIF orientation 6 (rotate 90 degrees clockwise)', async () => {
    const plain = await decodeImage(path.join(dir, 'plain.jpg'));
    assert.deepEqual([plain.width, plain.height], [40, 20]);
    const img = await decodeImage(path.join(dir, 'orient6.jpg'));
    assert.deepEqual([img.width, img.height], [20, 40]);
    // The stored left (red) half is on top once rotated clockwise, the right (blue) half below.
    const top = px(img.data, 20, 10, 5);
    const bottom = px(img.data, 20, 10, 35);
    assert.ok(top[0] > 200 && top[2] < 60, `top should be red: ${top}`);
    assert.ok(bottom[2] > 200 && bottom[0] < 60, `bottom should be blue: ${bottom}`);
    assert.deepEqual(await imageSize(path.join(dir, 'orient6.jpg')), { width: 20, height: 40 });
    assert.deepEqual(await imageSize(path.join(dir, 'plain.jpg')), { width: 40, height: 20 });
    assert.deepEqual(await imageSize(path.join(dir, 'rgb16.png')), { width: 4, height: 2 });
  });

  it('raises DataError naming the file for missing, truncated and non-image files', async () => {
    const cases: Array<[string, RegExp]> = [
      ['missing.png', /missing\.png: image file not found/],
      ['truncated.png', /truncated\.png: cannot decode image \(.+\)/],
      ['notes.png', /notes\.png: cannot decode image \(.*unsupported image format.*\)/],
    ];
    for (const [name, re] of cases) {
      await assert.rejects(decodeImage(path.join(dir, name)), (e: unknown) => e instanceof DataError && re.test(e.message));
      await assert.rejects(imageSize(path.join(dir, name)), (e: unknown) => e instanceof DataError && e.message.includes(name));
    }
  });
});
