/**
 * The safetensors format (huggingface/safetensors), read and written without dependencies:
 *
 *   [u64 little-endian N] [N bytes of UTF-8 JSON header, space-padded] [data bytes]
 *
 * header = { "<name>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] }, ...,
 *            "__metadata__": { "<key>": "<string>" } }          (metadata optional)
 *
 * Offsets are relative to the start of the data region; tensors are little-endian, row-major, and
 * together cover the data region exactly (no overlaps, no holes), as the reference implementation
 * requires. Our writer pads the header with spaces so that the data starts at a multiple of 8.
 *
 * Reading converts to what tfjs can hold: F32/F16/BF16/F64 -> float32 (Hugging Face GPT-2
 * checkpoints may be F16 or BF16), I64/I32/I16/I8/U8 -> int32 (I64 only when every value fits),
 * BOOL -> bool. The npm package `safetensors` is a read-only stub, hence this module.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { tf } from '../backend/tf';
import { CheckpointError } from '../errors';
import { writeFileAtomic } from '../fs_atomic';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const ITEM_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Raw data for writing. F16 and BF16 are given as their bit patterns (Uint16Array). */
export type SafetensorsData =
  | Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsData;
}

/** A tensor as read: tfjs dtype, the dtype stored in the file, shape and converted data. */
export interface LoadedTensor {
  dtype: 'float32' | 'int32' | 'bool';
  fileDtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

export interface HeaderEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data_offsets: [number, number];
}

export interface SafetensorsHeader {
  /** Tensors in header order. */
  entries: Map<string, HeaderEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data region in the file (8 + N). */
  dataStart: number;
}

/** The reference implementation rejects headers above 100 MB. */
const MAX_HEADER = 100_000_000;
const DTYPES = Object.keys(ITEM_SIZE) as SafetensorsDtype[];

/** Which typed arrays a dtype accepts when writing. */
const WRITE_ARRAYS: Record<SafetensorsDtype, string[]> = {
  F64: ['Float64Array'], F32: ['Float32Array'], F16: ['Uint16Array'], BF16: ['Uint16Array'],
  I64: ['BigInt64Array', 'Int32Array'], I32: ['Int32Array'], I16: ['Int16Array'], I8: ['Int8Array'],
  U8: ['Uint8Array'], BOOL: ['Uint8Array'],
};

function assertLittleEndianHost(): void {
  // Typed-array views are used as little-endian byte images below.
  if (os.endianness() !== 'LE') throw new CheckpointError('safetensors: big-endian hosts are not supported');
}

// ---------------------------------------------------------------------------------------------
// writing

/** Converts a tfjs tensor to a safetensors entry (float32 -> F32, int32 -> I32, bool -> BOOL). */
export function entryFromTensor(name: string, t: tf.Tensor): SafetensorsEntry {
  const shape = t.shape.slice();
  switch (t.dtype) {
    case 'float32': return { dtype: 'F32', shape, data: t.dataSync() as Float32Array };
    case 'int32': return { dtype: 'I32', shape, data: t.dataSync() as Int32Array };
    case 'bool': return { dtype: 'BOOL', shape, data: t.dataSync() as Uint8Array };
    default: throw new CheckpointError(`safetensors: tensor '${name}' has dtype ${t.dtype}, which has no safetensors equivalent here`);
  }
}

/** The file image of `tensors` (in map order) and `metadata`. */
export function serializeSafetensors(
  tensors: Map<string, SafetensorsEntry | tf.Tensor>,
  metadata: Record<string, string> = {},
): Buffer {
  assertLittleEndianHost();
  const header: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new CheckpointError(`safetensors: metadata '${k}' must be a string, got ${typeof v}`);
  }
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, value] of tensors) {
    if (name === '__metadata__') throw new CheckpointError(`safetensors: '__metadata__' is reserved and cannot name a tensor`);
    const e = value instanceof tf.Tensor ? entryFromTensor(name, value) : value;
    const bytes = entryBytes(name, e);
    header[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  const jsonLen = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonLen % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.byteLength;
  }
  return out;
}

/** Writes a safetensors file atomically (temporary sibling + rename). */
export function writeSafetensors(
  file: string,
  tensors: Map<string, SafetensorsEntry | tf.Tensor>,
  metadata: Record<string, string> = {},
): void {
  writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}

function entryBytes(name: string, e: SafetensorsEntry): Uint8Array {
  if (!DTYPES.includes(e.dtype)) {
    throw new CheckpointError(`safetensors: tensor '${name}' has unsupported dtype '${String(e.dtype)}' (supported: ${DTYPES.join(', ')})`);
  }
  checkShape(name, e.shape, 'safetensors');
  const arrayName = e.data.constructor.name;
  if (!WRITE_ARRAYS[e.dtype].includes(arrayName)) {
    throw new CheckpointError(`safetensors: tensor '${name}' (${e.dtype}) needs ${WRITE_ARRAYS[e.dtype].join(' or ')} data, got ${arrayName}`);
  }
  const count = numElements(e.shape);
  if (e.data.length !== count) {
    throw new CheckpointError(`safetensors: tensor '${name}' has shape [${e.shape}] (${count} elements) but ${e.data.length} values`);
  }
  let data: SafetensorsData = e.data;
  if (e.dtype === 'I64' && data instanceof Int32Array) {
    // Sign-extend each int32 into a (lo, hi) pair of 32-bit words.
    const wide = new Int32Array(count * 2);
    for (let i = 0; i < count; i++) {
      wide[2 * i] = data[i];
      wide[2 * i + 1] = data[i] >> 31;
    }
    data = wide;
  } else if (e.dtype === 'BOOL') {
    data = Uint8Array.from(data as Uint8Array, (v) => (v !== 0 ? 1 : 0));
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// ---------------------------------------------------------------------------------------------
// reading

/** Parses and validates the header of a file image whose data region has `dataLength` bytes. */
function parseHeader(headerBytes: Uint8Array, dataLength: number, source: string): Omit<SafetensorsHeader, 'dataStart'> {
  const text = Buffer.from(headerBytes.buffer, headerBytes.byteOffset, headerBytes.byteLength).toString('utf8');
  if (!text.startsWith('{')) throw new CheckpointError(`${source}: not a safetensors file (the header does not start with '{')`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${source}: the safetensors header is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CheckpointError(`${source}: the safetensors header must be a JSON object`);
  }
  const metadata: Record<string, string> = {};
  const entries = new Map<string, HeaderEntry>();
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new CheckpointError(`${source}: '__metadata__' must be an object of strings`);
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new CheckpointError(`${source}: __metadata__ '${k}' must be a string, found ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const at = `${source}: tensor '${name}'`;
    if (typeof value !== 'object' || value === null) throw new CheckpointError(`${at}: expected an object with dtype, shape, data_offsets`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (typeof dtype !== 'string' || !DTYPES.includes(dtype as SafetensorsDtype)) {
      throw new CheckpointError(`${at}: unsupported dtype ${JSON.stringify(dtype)} (supported: ${DTYPES.join(', ')})`);
    }
    if (!Array.isArray(shape)) throw new CheckpointError(`${at}: shape must be a list of integers, found ${JSON.stringify(shape)}`);
    checkShape(name, shape as number[], source);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw new CheckpointError(`${at}: data_offsets must be [begin, end] with 0 <= begin <= end, found ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = numElements(shape as number[]) * ITEM_SIZE[dtype as SafetensorsDtype];
    if (end - begin !== expected) {
      throw new CheckpointError(`${at}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dtype} [${shape}] needs ${expected}`);
    }
    if (end > dataLength) {
      throw new CheckpointError(`${at}: data_offsets [${begin}, ${end}] reach past the end of the data (${dataLength} bytes; file truncated?)`);
    }
    entries.set(name, { dtype: dtype as SafetensorsDtype, shape: (shape as number[]).slice(), data_offsets: [begin, end] });
  }
  // The tensors must tile the data region: sorted by offset, each starts where the last ended.
  const sorted = [...entries.entries()].sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0] || a[1].data_offsets[1] - b[1].data_offsets[1]);
  let pos = 0;
  let prev = '';
  for (const [name, e] of sorted) {
    const [b, en] = e.data_offsets;
    if (b < pos) throw new CheckpointError(`${source}: tensor '${name}' [${b}, ${en}) overlaps tensor '${prev}' (which ends at ${pos})`);
    if (b > pos) throw new CheckpointError(`${source}: ${b - pos} unindexed bytes before tensor '${name}' (at [${pos}, ${b}))`);
    pos = en;
    prev = name;
  }
  if (pos !== dataLength) {
    throw new CheckpointError(`${source}: the tensors cover ${pos} bytes but the data region has ${dataLength} (trailing bytes)`);
  }
  return { entries, metadata };
}

function splitImage(buf: Uint8Array, source: string): { headerBytes: Uint8Array; dataStart: number } {
  if (buf.byteLength < 8) throw new CheckpointError(`${source}: truncated: ${buf.byteLength} bytes, less than the 8-byte header length`);
  const n = readU64(buf, source);
  if (8 + n > buf.byteLength) {
    throw new CheckpointError(`${source}: truncated: header length ${n} but only ${buf.byteLength - 8} bytes follow the length field`);
  }
  return { headerBytes: buf.subarray(8, 8 + n), dataStart: 8 + n };
}

function readU64(bytes: Uint8Array, source: string): number {
  const n = Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER)) throw new CheckpointError(`${source}: header length ${n} exceeds ${MAX_HEADER} bytes (not a safetensors file?)`);
  return Number(n);
}

/** Parses a whole file image. `source` names it in errors. */
export function parseSafetensors(buf: Uint8Array, source = '<buffer>'): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string> } {
  assertLittleEndianHost();
  const { headerBytes, dataStart } = splitImage(buf, source);
  const { entries, metadata } = parseHeader(headerBytes, buf.byteLength - dataStart, source);
  const tensors = new Map<string, LoadedTensor>();
  for (const [name, e] of entries) {
    const [b, en] = e.data_offsets;
    // A copy into a fresh ArrayBuffer: typed views need alignment that file offsets lack.
    const bytes = new Uint8Array(en - b);
    bytes.set(buf.subarray(dataStart + b, dataStart + en));
    tensors.set(name, convert(name, e, bytes.buffer, source));
  }
  return { tensors, metadata };
}

/** Reads and converts every tensor of a safetensors file. */
export function readSafetensors(file: string): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string> } {
  if (!fs.existsSync(file)) throw new CheckpointError(`${file}: file not found`);
  return parseSafetensors(fs.readFileSync(file), file);
}

/** Reads only the header (names, dtypes, shapes, offsets) without loading the data. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  if (!fs.existsSync(file)) throw new CheckpointError(`${file}: file not found`);
  const size = fs.statSync(file).size;
  const fd = fs.openSync(file, 'r');
  try {
    if (size < 8) throw new CheckpointError(`${file}: truncated: ${size} bytes, less than the 8-byte header length`);
    const lenBytes = Buffer.alloc(8);
    fs.readSync(fd, lenBytes, 0, 8, 0);
    const n = readU64(lenBytes, file);
    if (8 + n > size) throw new CheckpointError(`${file}: truncated: header length ${n} but only ${size - 8} bytes follow the length field`);
    const headerBytes = Buffer.alloc(n);
    fs.readSync(fd, headerBytes, 0, n, 8);
    return { ...parseHeader(headerBytes, size - 8 - n, file), dataStart: 8 + n };
  } finally {
    fs.closeSync(fd);
  }
}

let halfTable: Float32Array | null = null;

/** IEEE 754 binary16 bits -> number (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function convert(name: string, e: HeaderEntry, ab: ArrayBuffer, source: string): LoadedTensor {
  const shape = e.shape;
  const base = { fileDtype: e.dtype, shape };
  switch (e.dtype) {
    case 'F32':
      return { ...base, dtype: 'float32', data: new Float32Array(ab) };
    case 'F64':
      return { ...base, dtype: 'float32', data: Float32Array.from(new Float64Array(ab)) };
    case 'F16': {
      if (!halfTable) {
        halfTable = new Float32Array(65536);
        for (let i = 0; i < 65536; i++) halfTable[i] = halfToFloat(i);
      }
      const src = new Uint16Array(ab);
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = halfTable[src[i]];
      return { ...base, dtype: 'float32', data: out };
    }
    case 'BF16': {
      // bfloat16 is the upper half of a float32.
      const src = new Uint16Array(ab);
      const bits = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
      return { ...base, dtype: 'float32', data: new Float32Array(bits.buffer) };
    }
    case 'I32':
      return { ...base, dtype: 'int32', data: new Int32Array(ab) };
    case 'I64': {
      const words = new Int32Array(ab);
      const out = new Int32Array(words.length / 2);
      for (let i = 0; i < out.length; i++) {
        const lo = words[2 * i];
        const hi = words[2 * i + 1];
        if (hi !== lo >> 31) {
          const v = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
          throw new CheckpointError(`${source}: tensor '${name}' (I64): value ${v} at index ${i} does not fit in int32`);
        }
        out[i] = lo;
      }
      return { ...base, dtype: 'int32', data: out };
    }
    case 'I16':
      return { ...base, dtype: 'int32', data: Int32Array.from(new Int16Array(ab)) };
    case 'I8':
      return { ...base, dtype: 'int32', data: Int32Array.from(new Int8Array(ab)) };
    case 'U8':
      return { ...base, dtype: 'int32', data: Int32Array.from(new Uint8Array(ab)) };
    case 'BOOL':
      return { ...base, dtype: 'bool', data: Uint8Array.from(new Uint8Array(ab), (v) => (v !== 0 ? 1 : 0)) };
  }
}

/** A tf.Tensor holding a loaded tensor's values (the caller disposes it). */
export function toTensor(t: LoadedTensor): tf.Tensor {
  return tf.tensor(t.data, t.shape, t.dtype);
}

/** tf.Tensors for a whole map (the caller disposes them). */
export function toTensorMap(tensors: Map<string, LoadedTensor>): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of tensors) out.set(name, toTensor(t));
  return out;
}

function checkShape(name: string, shape: number[], source: string): void {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new CheckpointError(`${source}: tensor '${name}': shape must be a list of integers >= 0, found ${JSON.stringify(shape)}`);
  }
}

function numElements(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
