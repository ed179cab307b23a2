import * as path from 'node:path';
import { DataError } from '../../errors';
import { COCO91_OBJECTS, HICO_VERBS } from '../hico_names';
import { EntryCollector, entryError, type InvalidHandler, readNamesFile, readNonEmpty, type SourceEntry } from './source';

/**
 * HICO-DET in the "HOIA" JSON form used by QPIC / CDN / GEN-VLKT:
 * `[{file_name, annotations:[{bbox:[x1,y1,x2,y2], category_id}], hoi_annotation:[{subject_id,
 * object_id, category_id}]}]`. `category_id` of a box is a COCO-91 id; of an HOI, a 1-based
 * index into the 117 verbs. Width and height are read from the image when absent.
 */
export interface HicoNames {
  verbs: ReadonlyMap<number, string>;
  objects: ReadonlyMap<number, string>;
}

export function hicoNames(verbFile?: string, objectFile?: string): HicoNames {
  return {
    verbs: verbFile ? readNamesFile(verbFile) : new Map(HICO_VERBS.map((v, i) => [i + 1, v])),
    objects: objectFile ? readNamesFile(objectFile) : COCO91_OBJECTS,
  };
}

export function readHicoDet(file: string, imagesDir: string, names: HicoNames, invalid: InvalidHandler): SourceEntry[] {
  const text = readNonEmpty(file);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new DataError(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (!Array.isArray(data)) throw new DataError(`${file}: expected a JSON array of images, found ${typeof data}`);
  if (data.length === 0) throw new DataError(`${file}: the array of images is empty`);
  const collector = new EntryCollector(invalid);
  data.forEach((raw: unknown, index: number) => collector.add(() => parseEntry(raw, { file, index }, imagesDir, names)));
  return collector.entries;
}

function parseEntry(raw: unknown, origin: { file: string; index: number }, imagesDir: string, names: HicoNames): SourceEntry {
  const ref = { origin };
  if (!isObject(raw)) throw entryError(ref, '(entry)', `expected an object, found ${JSON.stringify(raw)?.slice(0, 60)}`);
  const fileName = raw.file_name;
  if (typeof fileName !== 'string' || fileName === '') throw entryError(ref, 'file_name', 'missing or not a string');
  const annotations = raw.annotations;
  if (!Array.isArray(annotations)) throw entryError(ref, 'annotations', 'missing or not an array');
  const hoiAnnotations = raw.hoi_annotation ?? [];
  if (!Array.isArray(hoiAnnotations)) throw entryError(ref, 'hoi_annotation', 'not an array');

  const objects = annotations.map((a: unknown, i: number) => {
    if (!isObject(a)) throw entryError(ref, `annotations[${i}]`, 'expected an object');
    const category = names.objects.get(a.category_id as number);
    if (category === undefined) throw entryError(ref, `annotations[${i}].category_id`, `unknown object category id ${JSON.stringify(a.category_id)}`);
    const box = a.bbox;
    if (!Array.isArray(box) || box.length !== 4 || !box.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw entryError(ref, `annotations[${i}].bbox`, `expected [x1,y1,x2,y2], found ${JSON.stringify(box)}`);
    }
    return { id: i, category, box: [box[0], box[1], box[2], box[3]] as [number, number, number, number] };
  });
  const hois = hoiAnnotations.map((h: unknown, i: number) => {
    if (!isObject(h)) throw entryError(ref, `hoi_annotation[${i}]`, 'expected an object');
    const verb = names.verbs.get(h.category_id as number);
    if (verb === undefined) throw entryError(ref, `hoi_annotation[${i}].category_id`, `unknown verb id ${JSON.stringify(h.category_id)}`);
    for (const key of ['subject_id', 'object_id'] as const) {
      const id = h[key];
      if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= objects.length) {
        throw entryError(ref, `hoi_annotation[${i}].${key}`, `expected an index into annotations (0..${objects.length - 1}), found ${JSON.stringify(id)}`);
      }
    }
    return { subject: h.subject_id as number, object: h.object_id as number, verb };
  });
  const width = typeof raw.width === 'number' ? raw.width : undefined;
  const height = typeof raw.height === 'number' ? raw.height : undefined;
  return {
    id: stripExtension(fileName),
    imagePath: path.resolve(imagesDir, fileName),
    imageName: fileName,
    width,
    height,
    objects,
    hois: dedupe(hois),
    origin,
  };
}

/** HICO-DET repeats some (subject, object, verb) annotations; keep each once. */
function dedupe<T extends { subject: number; object: number; verb: string }>(hois: T[]): T[] {
  const seen = new Set<string>();
  return hois.filter((h) => {
    const key = `${h.subject}|${h.object}|${h.verb}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function stripExtension(name: string): string {
  return name.replace(/\.[A-Za-z0-9]+$/, '').replace(/[\\/]/g, '_');
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
