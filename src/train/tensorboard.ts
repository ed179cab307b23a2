/**
 * A TensorBoard event-file writer (no npm package does this; DESIGN, "Environment facts").
 *
 * File: `<logDir>/events.out.tfevents.<unix seconds>.<hostname>`, a TFRecord stream:
 *   u64 LE length | u32 LE masked CRC32C(length bytes) | data | u32 LE masked CRC32C(data)
 * with masked(crc) = ((crc >>> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32). Each record is a
 * serialized `tensorflow.Event` (tensorflow/core/util/event.proto):
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; Image image = 4; }
 *   Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
 * The first record is an Event with file_version "brain.Event:2".
 *
 * Every record is appended with one fs.writeSync, so nothing sits in a user-space buffer:
 * a crash loses at most the record being written, and `flush()` only fsyncs. A scalar costs one
 * small system call, negligible next to a training step.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { Writer } from 'protobufjs';

export const FILE_VERSION = 'brain.Event:2';
const MASK_DELTA = 0xa282ead8;

/** TFRecord's CRC mask: rotate right by 15 bits and add a constant, modulo 2^32. */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

export function maskedCrc32c(data: Uint8Array): number {
  return maskCrc(crc32c(data));
}

/** Frames `data` as one TFRecord. */
export function encodeTfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + data.byteLength + 4);
  out.writeBigUInt64LE(BigInt(data.byteLength), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.byteLength);
  return out;
}

/** Image colour spaces of Summary.Image. */
export const Colorspace = { GRAY: 1, GRAY_ALPHA: 2, RGB: 3, RGBA: 4 } as const;

type ValueWriter = (w: Writer) => void;

function encodeEvent(wallTime: number, step: number, what: { fileVersion: string } | { values: ValueWriter[] }): Uint8Array {
  const w = Writer.create();
  w.uint32((1 << 3) | 1).double(wallTime);
  w.uint32((2 << 3) | 0).int64(step);
  if ('fileVersion' in what) {
    w.uint32((3 << 3) | 2).string(what.fileVersion);
  } else {
    w.uint32((5 << 3) | 2).fork(); // Summary
    for (const writeValue of what.values) {
      w.uint32((1 << 3) | 2).fork(); // Summary.Value
      writeValue(w);
      w.ldelim();
    }
    w.ldelim();
  }
  return w.finish();
}

export interface TensorBoardWriterOptions {
  /** Appended to the file name (TensorBoard reads any name containing "tfevents"). */
  filenameSuffix?: string;
  /** Clock in seconds since the epoch; default Date.now() / 1000 (tests pin it). */
  now?: () => number;
}

export class TensorBoardWriter {
  readonly file: string;
  private fd: number | null;
  private readonly now: () => number;

  constructor(logDir: string, opts: TensorBoardWriterOptions = {}) {
    this.now = opts.now ?? (() => Date.now() / 1000);
    fs.mkdirSync(logDir, { recursive: true });
    const base = `events.out.tfevents.${Math.floor(this.now())}.${os.hostname()}${opts.filenameSuffix ?? ''}`;
    // 'wx' never appends to another writer's file: two writers started in the same second get
    // distinct names.
    let file = path.join(logDir, base);
    let fd: number | null = null;
    for (let i = 0; fd === null; i++) {
      file = path.join(logDir, i === 0 ? base : `${base}.${process.pid}.${i}`);
      try {
        fd = fs.openSync(file, 'wx');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 100) throw err;
      }
    }
    this.fd = fd;
    this.file = file;
    this.writeRecord(encodeEvent(this.now(), 0, { fileVersion: FILE_VERSION }));
  }

  /** Logs a scalar (stored as float32, as TensorBoard's simple_value is). */
  scalar(tag: string, value: number, step: number): void {
    checkTag(tag);
    checkStep(step);
    this.writeRecord(encodeEvent(this.now(), step, {
      values: [(w) => w.uint32((1 << 3) | 2).string(tag).uint32((2 << 3) | 5).float(value)],
    }));
  }

  /** Logs several scalars of one step in one event. */
  scalars(values: Record<string, number>, step: number): void {
    checkStep(step);
    const writers: ValueWriter[] = Object.entries(values).map(([tag, value]) => {
      checkTag(tag);
      return (w) => w.uint32((1 << 3) | 2).string(tag).uint32((2 << 3) | 5).float(value);
    });
    if (writers.length > 0) this.writeRecord(encodeEvent(this.now(), step, { values: writers }));
  }

  /** Logs an encoded image (PNG bytes) of `height` x `width` pixels. */
  image(tag: string, png: Uint8Array, height: number, width: number, step: number, colorspace: number = Colorspace.RGB): void {
    checkTag(tag);
    checkStep(step);
    this.writeRecord(encodeEvent(this.now(), step, {
      values: [
        (w) => {
          w.uint32((1 << 3) | 2).string(tag);
          w.uint32((4 << 3) | 2).fork();
          w.uint32((1 << 3) | 0).int32(height);
          w.uint32((2 << 3) | 0).int32(width);
          w.uint32((3 << 3) | 0).int32(colorspace);
          w.uint32((4 << 3) | 2).bytes(png);
          w.ldelim();
        },
      ],
    }));
  }

  /** Forces written records to disk (they are already in the file). */
  flush(): void {
    if (this.fd !== null) fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === null) return;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = null;
  }

  private writeRecord(data: Uint8Array): void {
    if (this.fd === null) throw new Error(`TensorBoardWriter: ${this.file} is closed`);
    const rec = encodeTfRecord(data);
    let off = 0;
    while (off < rec.length) off += fs.writeSync(this.fd, rec, off, rec.length - off);
  }
}

function checkTag(tag: string): void {
  if (typeof tag !== 'string' || tag === '') throw new Error(`TensorBoardWriter: tag must be a non-empty string, got ${JSON.stringify(tag)}`);
}

function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`TensorBoardWriter: step must be an integer >= 0, got ${step}`);
}
