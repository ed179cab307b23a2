/**
 * Image decoding for datasets and inference: any file sharp reads (PNG, JPEG, WebP, TIFF, GIF,
 * ...) becomes 8-bit RGB, HWC, with the EXIF orientation applied, so that record boxes (which
 * are given on the image as displayed) line up with the pixels.
 *
 * Decoding runs on libuv worker threads (sharp), so several decodes proceed in parallel while
 * the main thread trains; the loader relies on that for prefetching.
 */
import * as fs from 'node:fs';
import sharp from 'sharp';
import { DataError } from '../errors';

export interface DecodedImage {
  /** RGB, row-major HWC, `width * height * 3` bytes. */
  data: Uint8Array;
  width: number;
  height: number;
}

// Decoded pixel caches would only hold memory here: every image is read once per epoch.
sharp.cache(false);

/** Turns a missing file or a sharp failure into a DataError naming the file and the reason. */
function failure(file: string, err: unknown): DataError {
  if (!fs.existsSync(file)) return new DataError(`${file}: image file not found`, { cause: err });
  const reason = err instanceof Error ? err.message : String(err);
  return new DataError(`${file}: cannot decode image (${reason})`, { cause: err });
}

/**
 * Decodes an image file to 8-bit RGB.
 * - EXIF orientation is applied (`rotate()` with no angle), so width/height are as displayed.
 * - Alpha is composited on black (`flatten`), then dropped.
 * - Grayscale becomes three equal channels; 16-bit samples are scaled to 8 bits.
 * A missing, truncated or non-image file raises DataError.
 */
export async function decodeImage(file: string): Promise<DecodedImage> {
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    out = await sharp(file, { failOn: 'error' })
      .rotate()
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw failure(file, err);
  }
  const { width, height, channels } = out.info;
  const expected = width * height * 3;
  if (channels !== 3 || out.data.length !== expected) {
    throw new DataError(
      `${file}: decoder returned ${channels} channels / ${out.data.length} bytes, expected 3 channels / ${expected} bytes for ${width}x${height}`,
    );
  }
  // A view, not a copy: the Buffer owns exactly these bytes.
  return { data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length), width, height };
}

/**
 * Width and height of an image as displayed (EXIF orientation applied), read from the file
 * header only: no pixels are decoded. Used by format readers that need the size of many images.
 */
export async function imageSize(file: string): Promise<{ width: number; height: number }> {
  let meta: sharp.Metadata;
  try {
    meta = await sharp(file).metadata();
  } catch (err) {
    throw failure(file, err);
  }
  const w = meta.autoOrient?.width ?? meta.width;
  const h = meta.autoOrient?.height ?? meta.height;
  if (!(w > 0 && h > 0)) throw new DataError(`${file}: image header has no size (format ${meta.format})`);
  return { width: w, height: h };
}
