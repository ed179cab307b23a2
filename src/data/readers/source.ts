import * as fs from 'node:fs';
import { DataError, where } from '../../errors';
import type { Box, HoiObject } from '../record';

/**
 * What every reader produces before labelling: one image with its objects and (subject, verb,
 * object) pairs, plus where it came from so that later checks can name the file and line.
 */
export interface SourceEntry {
  /** Stable id, unique in the dataset (used for the split hash). */
  id: string;
  /** Absolute path of the source image. */
  imagePath: string;
  /** File name under the output `images/` folder. */
  imageName: string;
  /** Known image size; undefined when the annotation does not say (then read from the image). */
  width?: number;
  height?: number;
  objects: HoiObject[];
  hois: Array<{ subject: number; object: number; verb: string }>;
  /** Annotation file and 1-based line (JSONL) or 0-based entry index (JSON array). */
  origin: { file: string; line?: number; index?: number };
}

/** Reports a bad entry: throws in strict mode, counts it with --skip-invalid. */
export type InvalidHandler = (error: DataError) => void;

/** Bad entries beyond the point of reading (missing image, box outside the image, ...). */
export function entryError(entry: Pick<SourceEntry, 'origin'>, field: string, message: string): DataError {
  const { file, line, index } = entry.origin;
  const at = line !== undefined ? where(file, line, field) : `${file} entry ${index ?? '?'} field '${field}'`;
  return new DataError(`${at}: ${message}`);
}

/**
 * Collects entries read one at a time: `parse` builds an entry or throws a DataError, which goes
 * to `invalid` (stop or skip); an image id seen before is itself an invalid entry.
 */
export class EntryCollector {
  readonly entries: SourceEntry[] = [];
  private readonly seen = new Set<string>();
  constructor(private readonly invalid: InvalidHandler) {}

  add(parse: () => SourceEntry): void {
    try {
      const entry = parse();
      if (this.seen.has(entry.id)) throw entryError(entry, 'file_name', `image '${entry.id}' appears twice`);
      this.seen.add(entry.id);
      this.entries.push(entry);
    } catch (err) {
      if (err instanceof DataError) this.invalid(err);
      else throw err;
    }
  }
}

/** Boxes may overflow the image by this much (common in HICO-DET) and are then clipped. */
export const CLIP_TOLERANCE_PX = 2;

/**
 * Checks an entry against its image size and the vocabulary. Boxes overflowing by at most
 * CLIP_TOLERANCE_PX are clipped in place; the number of clipped boxes is returned.
 */
export function checkEntry(
  entry: SourceEntry,
  width: number,
  height: number,
  vocab: { categories: ReadonlySet<string>; verbs: ReadonlySet<string>; subjects?: ReadonlySet<string> },
): number {
  let clipped = 0;
  if (!fs.existsSync(entry.imagePath)) {
    throw entryError(entry, 'file_name', `image not found: ${entry.imagePath}`);
  }
  entry.objects.forEach((obj, i) => {
    const field = `objects[${i}].box`;
    if (!vocab.categories.has(obj.category)) {
      throw entryError(entry, `objects[${i}].category`, `unknown category '${obj.category}'`);
    }
    const b = obj.box;
    if (!Array.isArray(b) || b.length !== 4 || !b.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw entryError(entry, field, `expected 4 finite numbers [x1,y1,x2,y2], found ${JSON.stringify(b)}`);
    }
    if (b[2] <= b[0] || b[3] <= b[1]) {
      throw entryError(entry, field, `box [${b.join(',')}] has non-positive width or height`);
    }
    const over = Math.max(-b[0], -b[1], b[2] - width, b[3] - height);
    if (over > CLIP_TOLERANCE_PX) {
      throw entryError(entry, field, `box [${b.join(',')}] lies outside the ${width}x${height} image by ${round(over)} px (at most ${CLIP_TOLERANCE_PX} px is clipped)`);
    }
    if (over > 0) {
      const c: Box = [Math.max(0, b[0]), Math.max(0, b[1]), Math.min(width, b[2]), Math.min(height, b[3])];
      if (c[2] <= c[0] || c[3] <= c[1]) throw entryError(entry, field, `box [${b.join(',')}] is empty after clipping to the image`);
      obj.box = c;
      clipped++;
    }
  });
  const ids = new Map(entry.objects.map((o) => [o.id, o]));
  entry.hois.forEach((h, i) => {
    const subject = ids.get(h.subject);
    if (!subject) throw entryError(entry, `hois[${i}].subject`, `no object with id ${h.subject}`);
    if (vocab.subjects && !vocab.subjects.has(subject.category)) {
      const allowed = [...vocab.subjects].join(', ');
      throw entryError(entry, `hois[${i}].subject`, `subject must be one of [${allowed}], found '${subject.category}'`);
    }
    if (!ids.has(h.object)) throw entryError(entry, `hois[${i}].object`, `no object with id ${h.object}`);
    if (!vocab.verbs.has(h.verb)) throw entryError(entry, `hois[${i}].verb`, `unknown verb '${h.verb}'`);
  });
  return clipped;
}

/** Reads a file that must exist and hold something; errors name the file. */
export function readNonEmpty(file: string): string {
  if (!fs.existsSync(file)) throw new DataError(`${file}: annotation file not found`);
  const text = fs.readFileSync(file, 'utf8');
  if (text.trim() === '') throw new DataError(`${file}: annotation file is empty`);
  return text;
}

/**
 * Reads a names file: one name per line (1-based position = id), or `id name` per line for
 * sparse ids. Blank lines and `#` comments are ignored. Spaces inside names become underscores.
 */
export function readNamesFile(file: string): Map<number, string> {
  const names = new Map<number, string>();
  const lines = readNonEmpty(file).split(/\r?\n/);
  let position = 0;
  lines.forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    position++;
    const m = /^(\d+)[\s,:]+(.+)$/.exec(line);
    const id = m ? Number(m[1]) : position;
    const name = (m ? m[2] : line).trim().replace(/\s+/g, '_');
    if (names.has(id)) throw new DataError(`${where(file, i + 1)}: id ${id} given twice`);
    names.set(id, name);
  });
  return names;
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
