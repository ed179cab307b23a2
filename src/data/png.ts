import * as zlib from 'node:zlib';

/**
 * Minimal PNG writer: 8-bit RGB or RGBA, one IDAT chunk, filter "Up" on every row, zlib with
 * the RLE strategy. Measured on 256x256 scenes: RLE is 2-5x faster than the default strategy
 * (deflate's match search is the cost on noisy images) for files within a few percent of level 6,
 * and "Up" compresses these scenes as well as adaptive filtering at a fraction of the time.
 * Deterministic for a given zlib; decoded pixels are identical everywhere.
 */

/** CRC-32 tables for slicing-by-8 (8 bytes per step; ~4x faster than one table lookup per byte). */
const CRC_TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n] >>> 8) ^ t[t[(k - 1) * 256 + n] & 255];
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, as PNG chunks use) of bytes [start, end). */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  const t = CRC_TABLES;
  let c = 0xffffffff;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    c ^= buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
    c =
      t[1792 + (c & 255)] ^ t[1536 + ((c >>> 8) & 255)] ^ t[1280 + ((c >>> 16) & 255)] ^ t[1024 + (c >>> 24)] ^
      t[768 + buf[i + 4]] ^ t[512 + buf[i + 5]] ^ t[256 + buf[i + 6]] ^ t[buf[i + 7]];
  }
  for (; i < end; i++) c = t[(c ^ buf[i]) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out, 4, 8 + data.length), 8 + data.length);
  return out;
}

export function encodePng(pixels: Uint8Array, width: number, height: number, channels: 3 | 4 = 3): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`encodePng: width and height must be positive integers, got ${width}x${height}`);
  }
  if (channels !== 3 && channels !== 4) throw new RangeError(`encodePng: channels must be 3 or 4, got ${channels}`);
  const stride = width * channels;
  if (pixels.length !== stride * height) {
    throw new RangeError(`encodePng: expected ${stride * height} bytes for ${width}x${height}x${channels}, got ${pixels.length}`);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 3 ? 2 : 6; // colour type: truecolour (+ alpha)
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering (we always pick Up)
  ihdr[12] = 0; // no interlace
  const raw = Buffer.allocUnsafe((stride + 1) * height);
  const diff = upDifferences(pixels, stride, height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    raw[o] = 2; // filter type Up: byte minus the byte above
    raw.set(diff.subarray(y * stride, (y + 1) * stride), o + 1);
  }
  const idat = zlib.deflateSync(raw, { level: 6, strategy: zlib.constants.Z_RLE });
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

/**
 * Bytes minus the bytes one row above (the first row unchanged), mod 256. Four bytes at a time
 * when the rows are 4-byte aligned: per-byte subtraction without borrows between bytes
 * (Hacker's Delight 2-18), ~4x faster than a byte loop.
 */
function upDifferences(pixels: Uint8Array, stride: number, height: number): Uint8Array {
  const n = stride * height;
  const out = new Uint8Array(n);
  out.set(pixels.subarray(0, stride));
  if (stride % 4 === 0 && pixels.byteOffset % 4 === 0) {
    const a = new Uint32Array(pixels.buffer, pixels.byteOffset, n >> 2);
    const d = new Uint32Array(out.buffer, 0, n >> 2);
    const s4 = stride >> 2;
    for (let i = s4; i < a.length; i++) {
      const x = a[i], y = a[i - s4];
      d[i] = (((x | 0x80808080) >>> 0) - ((y & 0x7f7f7f7f) >>> 0)) ^ ((x ^ ~y) & 0x80808080);
    }
  } else {
    for (let i = stride; i < n; i++) out[i] = (pixels[i] - pixels[i - stride]) & 255;
  }
  return out;
}
