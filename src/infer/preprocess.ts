/**
 * Pre-processing shared by both inference engines and by the export parity check: an image file
 * (any size; JPEG, PNG, ...; EXIF orientation, grayscale, alpha and 16-bit handled by
 * data/image_io) -> letterbox to the model side S -> (pixel / 255 - mean) / std -> NCHW float32.
 *
 * The letterbox and the normalization are the training loader's own functions (data/transforms),
 * with the same float arithmetic, so an image reaches the model exactly as in evaluation; only the
 * layout differs (the loader hands tfjs NHWC, the exported graph takes NCHW).
 */
import { decodeImage, type DecodedImage } from '../data/image_io';
import { type OriginalInfo, modelBoxToOriginal } from '../data/loader';
import type { Box } from '../data/record';
import { letterbox } from '../data/transforms';
import { ShapeError } from '../errors';
import type { ExportManifest } from './manifest';

export interface PreprocessSpec {
  /** Model input side S. */
  inputSize: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  /** Letterbox padding on the 0-255 scale. */
  fill: number;
}

export function preprocessSpec(m: ExportManifest): PreprocessSpec {
  return { inputSize: m.input_size, mean: m.mean, std: m.std, fill: m.preprocess.fill };
}

export interface PreparedImage {
  /** The file (or an id for in-memory images). */
  source: string;
  /** The decoded image as displayed: 8-bit RGB HWC, EXIF orientation applied (for drawing). */
  image: DecodedImage;
  /** Letterbox geometry, to map model boxes back to the image. */
  original: OriginalInfo;
  /** [3, S, S] float32, normalized. */
  input: Float32Array;
}

/** Decodes an image file and prepares it (a DataError names the file when it is no image). */
export async function prepareImageFile(file: string, spec: PreprocessSpec): Promise<PreparedImage> {
  return prepareDecoded(await decodeImage(file), file, spec);
}

/** Letterbox + normalize a decoded RGB image into NCHW. */
export function prepareDecoded(image: DecodedImage, source: string, spec: PreprocessSpec): PreparedImage {
  const S = spec.inputSize;
  const lb = letterbox({ image: image.data, width: image.width, height: image.height, boxes: [] }, S, spec.fill);
  const hwc = lb.sample.image; // [S, S, 3] on 0-255
  const input = new Float32Array(3 * S * S);
  const plane = S * S;
  // Same coefficients and operation order as transforms.normalizeInto: v * a + b, a = 1/(255 std).
  for (let c = 0; c < 3; c++) {
    const a = 1 / (255 * spec.std[c]);
    const b = -spec.mean[c] / spec.std[c];
    const out = c * plane;
    for (let i = 0; i < plane; i++) input[out + i] = hwc[3 * i + c] * a + b;
  }
  const original: OriginalInfo = {
    id: source, width: image.width, height: image.height, scale: lb.scale, padX: lb.padX, padY: lb.padY,
    flipped: false, cropX: 0, cropY: 0, cropWidth: image.width, cropHeight: image.height,
  };
  return { source, image, original, input };
}

/** Concatenates prepared images into one [n, 3, S, S] batch. */
export function stackInputs(images: readonly PreparedImage[], inputSize: number): Float32Array {
  const per = 3 * inputSize * inputSize;
  const out = new Float32Array(images.length * per);
  images.forEach((p, k) => {
    if (p.input.length !== per) throw new ShapeError(`stackInputs: ${p.source} holds ${p.input.length} values, expected 3x${inputSize}x${inputSize}`);
    out.set(p.input, k * per);
  });
  return out;
}

/**
 * A box in model-input pixels -> pixels of the image as displayed: letterbox undone, clipped to the
 * image, rounded to 0.01 px (so the two engines' float noise does not show in reports).
 */
export function toImageBox(box: Box, original: OriginalInfo): Box {
  const b = modelBoxToOriginal(box, original);
  const clip = (v: number, hi: number) => Math.round(Math.min(hi, Math.max(0, v)) * 100) / 100;
  return [clip(b[0], original.width), clip(b[1], original.height), clip(b[2], original.width), clip(b[3], original.height)];
}
