import * as path from 'node:path';
import { DataError, where } from '../../errors';
import { isObject, stripExtension } from './hico_det';
import { EntryCollector, entryError, type InvalidHandler, readNonEmpty, type SourceEntry } from './source';

/**
 * ODGT as used by HoiTransformer and the Hoi2Threat data: one JSON object per line,
 * `{file_name, width, height, gtboxes:[{box:[x,y,w,h], tag}], hoi:[{subject_id, object_id,
 * interaction}]}`. Boxes are converted from [x, y, w, h] to [x1, y1, x2, y2].
 */
export function readOdgt(file: string, imagesDir: string, invalid: InvalidHandler): SourceEntry[] {
  const lines = readNonEmpty(file).split(/\r?\n/);
  const collector = new EntryCollector(invalid);
  lines.forEach((text, i) => {
    const line = i + 1;
    if (text.trim() === '') return;
    collector.add(() => {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (err) {
        throw new DataError(`${where(file, line)}: malformed JSON line (${(err as Error).message})`);
      }
      return parseLine(raw, { file, line }, imagesDir);
    });
  });
  return collector.entries;
}

function parseLine(raw: unknown, origin: { file: string; line: number }, imagesDir: string): SourceEntry {
  const ref = { origin };
  if (!isObject(raw)) throw entryError(ref, '(line)', 'expected a JSON object');
  const fileName = raw.file_name;
  if (typeof fileName !== 'string' || fileName === '') throw entryError(ref, 'file_name', 'missing or not a string');
  for (const key of ['width', 'height'] as const) {
    const v = raw[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v > 0)) {
      throw entryError(ref, key, `expected a positive integer, found ${JSON.stringify(v)}`);
    }
  }
  const gtboxes = raw.gtboxes;
  if (!Array.isArray(gtboxes)) throw entryError(ref, 'gtboxes', 'missing or not an array');
  const objects = gtboxes.map((g: unknown, i: number) => {
    if (!isObject(g)) throw entryError(ref, `gtboxes[${i}]`, 'expected an object');
    if (typeof g.tag !== 'string' || g.tag === '') throw entryError(ref, `gtboxes[${i}].tag`, 'missing or not a string');
    const b = g.box;
    if (!Array.isArray(b) || b.length !== 4 || !b.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw entryError(ref, `gtboxes[${i}].box`, `expected [x,y,w,h], found ${JSON.stringify(b)}`);
    }
    if (b[2] <= 0 || b[3] <= 0) throw entryError(ref, `gtboxes[${i}].box`, `negative or zero size [${b.join(',')}]`);
    const category = g.tag.trim().replace(/\s+/g, '_');
    return { id: i, category, box: [b[0], b[1], b[0] + b[2], b[1] + b[3]] as [number, number, number, number] };
  });
  const hoiList = raw.hoi ?? [];
  if (!Array.isArray(hoiList)) throw entryError(ref, 'hoi', 'not an array');
  const hois = hoiList.map((h: unknown, i: number) => {
    if (!isObject(h)) throw entryError(ref, `hoi[${i}]`, 'expected an object');
    if (typeof h.interaction !== 'string' || h.interaction === '') throw entryError(ref, `hoi[${i}].interaction`, 'missing or not a string');
    for (const key of ['subject_id', 'object_id'] as const) {
      const id = h[key];
      if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= objects.length) {
        throw entryError(ref, `hoi[${i}].${key}`, `expected an index into gtboxes (0..${objects.length - 1}), found ${JSON.stringify(id)}`);
      }
    }
    return { subject: h.subject_id as number, object: h.object_id as number, verb: h.interaction.trim().replace(/\s+/g, '_') };
  });
  return {
    id: stripExtension(fileName),
    imagePath: path.resolve(imagesDir, fileName),
    imageName: fileName,
    width: raw.width as number | undefined,
    height: raw.height as number | undefined,
    objects,
    hois,
    origin,
  };
}
