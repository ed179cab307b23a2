/**
 * HOI detection mAP by the HICO-DET protocol (DESIGN "Evaluation protocols").
 *
 * Reference: the official HICO-DET evaluation, ywchao/ho-rcnn `evaluation/VOCevaldet_bboxpair.m`
 * (per-category matching and 11-point AP) and `evaluation/eval_one.m` (per-category loop, the
 * Full / Rare / Non-rare means, rare = fewer than 10 training instances). The Python
 * re-implementations in QPIC / CDN / GEN-VLKT (`datasets/hico_eval.py`) follow the same matching.
 *
 * Matching, as `VOCevaldet_bboxpair.m` does it: detections of one (verb, object) category are
 * pooled over the split and sorted by score, descending (`sort(-det_conf)`, a stable sort, so
 * ties keep input order). For each detection the loop runs over *all* ground-truth pairs of the
 * category in the detection's image -- matched ones included, the `det` flag is not consulted
 * inside the loop -- and keeps the pair with the largest min(IoU(human), IoU(object)), the first
 * one on a tie (`if min_ov > ov_max`). Only then: overlap >= 0.5 and that pair not yet matched
 * -> true positive (the pair becomes matched); overlap >= 0.5 but the pair already matched ->
 * false positive ("multiple detection"), even when another, unmatched pair of the image also
 * overlaps >= 0.5; overlap < 0.5, or no pair of the category in the image (ov_max stays -inf)
 * -> false positive. QPIC's `compute_fptp` does the same (argmax first, `vis_tag` checked after).
 * A consequence: two identical ground-truth rows can never both be matched, which is why
 * `groundTruthFromRecords` collapses duplicates.
 *
 * Deliberate differences from the MATLAB code, both from DESIGN:
 * - IoU on continuous coordinates (`boxIou`, no +1); the MATLAB code adds 1 to widths/heights.
 * - mAP averages over the categories present in the ground truth of the split (as QPIC does);
 *   the MATLAB code averages over all 600 HICO-DET categories, which all have test instances.
 *
 * Cost: per category O(n log n) for the sort plus, per detection, one pass over the ground-truth
 * pairs of that category in its image.
 */
import { Box, HoiRecord, boxIou } from '../data/record';
import { ConfigError, DataError, where } from '../errors';

export interface HoiDetection {
  imageId: string;
  verb: string;
  objectCategory: string;
  subjectBox: Box;
  objectBox: Box;
  score: number;
}

export interface HoiGroundTruth {
  imageId: string;
  verb: string;
  objectCategory: string;
  subjectBox: Box;
  objectBox: Box;
}

export interface HoiCategoryResult {
  verb: string;
  objectCategory: string;
  /** 11-point interpolated AP; 0 when the category has no detection. */
  ap: number;
  /** Ground-truth pairs of the category in the split. */
  numGt: number;
  /** Detections of the category that were scored. */
  numDet: number;
  /** Fewer than `rareThreshold` training instances (always false without `trainCounts`). */
  rare: boolean;
  /** Recall after the last detection (`rec(end)` in the reference); 0 without detections. */
  recall: number;
}

export interface HoiMapResult {
  /** Mean AP over the categories with ground truth (Full); NaN when there is none. */
  map: number;
  /** Mean AP over the rare categories; NaN when none is rare (e.g. no `trainCounts`). */
  mapRare: number;
  /** Mean AP over the non-rare categories; NaN when none is non-rare. */
  mapNonRare: number;
  /** One entry per category with ground truth, sorted by verb, then object category. */
  perCategory: HoiCategoryResult[];
}

export interface HoiMapOptions {
  /**
   * Training instances per category, keyed `${verb} ${objectCategory}` (see `tripletCounts`).
   * A category missing from the map counts 0 (rare). Without the map no category is rare.
   */
  trainCounts?: Map<string, number>;
  /** A category is rare when its training count is below this. Default 10. */
  rareThreshold?: number;
  /** Minimum min(IoU(subject), IoU(object)) for a true positive. Default 0.5. */
  iouThreshold?: number;
}

/**
 * The recall thresholds t of the 11-point AP, exactly as MATLAB evaluates `0:0.1:1` in the
 * reference (`for t = 0:0.1:1`, inherited from the VOC 2007 devkit's VOCevaldet.m). MATLAB's
 * colon builds the first half as a + k*d and the second half as b - k*d (MathWorks solution
 * 1-4FLI96, "colonop"), so the values are the doubles nearest to k/10 except t(0.3) =
 * 3 * 0.1 = 0.30000000000000004: a recall of exactly 3/10 does not reach the 0.3 point.
 * (numpy's `np.arange(0., 1.1, 0.1)`, used by the Python ports, also bumps 0.6 and 0.7 to
 * 0.6000000000000001 and 0.7000000000000001; we follow the official MATLAB values.)
 */
export const VOC07_RECALL_THRESHOLDS: readonly number[] = Object.freeze(
  Array.from({ length: 11 }, (_, k) => (k < 5 ? k * 0.1 : k === 5 ? (0 + 1) / 2 : 1 - (10 - k) * 0.1)),
);

/**
 * VOC 2007 11-point interpolated AP: the mean over t in VOC07_RECALL_THRESHOLDS of
 * p(t) = max{ precision[i] : recall[i] >= t }, p(t) = 0 when no recall reaches t. The
 * comparison is a plain `>=` on the doubles, as in the reference. The eleven p(t) are summed,
 * then divided once by 11, so a perfect curve gives exactly 1 (the reference's running
 * `ap = ap + p/11` gives 1.0000000000000002; the two differ by a few ulps at most).
 */
export function voc11PointAp(recall: readonly number[], precision: readonly number[]): number {
  if (recall.length !== precision.length) {
    throw new RangeError(`voc11PointAp: recall (${recall.length}) and precision (${precision.length}) differ in length`);
  }
  let sum = 0;
  for (const t of VOC07_RECALL_THRESHOLDS) {
    let p = 0;
    for (let i = 0; i < recall.length; i++) {
      if (recall[i] >= t && precision[i] > p) p = precision[i];
    }
    sum += p;
  }
  return sum / VOC07_RECALL_THRESHOLDS.length;
}

/** The `trainCounts` key of a category. */
export function tripletKey(verb: string, objectCategory: string): string {
  return `${verb} ${objectCategory}`;
}

export function hoiMap(dets: HoiDetection[], gts: HoiGroundTruth[], opts: HoiMapOptions = {}): HoiMapResult {
  const iouThreshold = opts.iouThreshold ?? 0.5;
  const rareThreshold = opts.rareThreshold ?? 10;
  if (!(Number.isFinite(iouThreshold) && iouThreshold > 0 && iouThreshold <= 1)) {
    throw new ConfigError(`hoiMap: iouThreshold must be in (0, 1], found ${iouThreshold}`);
  }
  if (!Number.isFinite(rareThreshold)) {
    throw new ConfigError(`hoiMap: rareThreshold must be a finite number, found ${rareThreshold}`);
  }

  const categories = groupGroundTruth(gts);
  dets.forEach((d, i) => {
    checkBox(d.subjectBox, 'dets', i, 'subjectBox');
    checkBox(d.objectBox, 'dets', i, 'objectBox');
    if (typeof d.score !== 'number' || Number.isNaN(d.score)) {
      throw new DataError(`${where('dets', undefined, `[${i}].score`)}: expected a number, found ${d.score}`);
    }
    // Detections of a category without ground truth in the split are not scored (QPIC skips
    // triplets outside gt_triplets; the MATLAB code has no such categories).
    categories.get(categoryId(d.verb, d.objectCategory))?.dets.push(d);
  });

  const perCategory: HoiCategoryResult[] = [];
  for (const cat of [...categories.values()].sort(compareCategories)) {
    const { ap, recall } = evaluateCategory(cat, iouThreshold);
    const rare = opts.trainCounts !== undefined && (opts.trainCounts.get(tripletKey(cat.verb, cat.objectCategory)) ?? 0) < rareThreshold;
    perCategory.push({ verb: cat.verb, objectCategory: cat.objectCategory, ap, numGt: cat.numGt, numDet: cat.dets.length, rare, recall });
  }
  return {
    map: meanAp(perCategory),
    mapRare: meanAp(perCategory.filter((c) => c.rare)),
    mapNonRare: meanAp(perCategory.filter((c) => !c.rare)),
    perCategory,
  };
}

/**
 * One ground truth per HOI of each record: subject box, object box, verb and the object's
 * category, imageId = record id. HOIs of a record with the same verb, object category and
 * identical boxes are collapsed into one (the matching above could never match both).
 */
export function groundTruthFromRecords(records: HoiRecord[]): HoiGroundTruth[] {
  const out: HoiGroundTruth[] = [];
  for (const record of records) {
    const byId = new Map(record.objects.map((o) => [o.id, o]));
    const seen = new Set<string>();
    record.hois.forEach((hoi, i) => {
      const subject = byId.get(hoi.subject);
      const object = byId.get(hoi.object);
      const missing = (field: string, id: number): DataError =>
        new DataError(
          `${where(`record '${record.id}'`, undefined, `hois[${i}].${field}`)}: expected the id of one of its objects ` +
            `(${[...byId.keys()].join(', ')}), found ${id}`,
        );
      if (subject === undefined) throw missing('subject', hoi.subject);
      if (object === undefined) throw missing('object', hoi.object);
      const gt: HoiGroundTruth = {
        imageId: record.id,
        verb: hoi.verb,
        objectCategory: object.category,
        subjectBox: [...subject.box],
        objectBox: [...object.box],
      };
      const key = JSON.stringify([gt.verb, gt.objectCategory, gt.subjectBox, gt.objectBox]);
      if (seen.has(key)) return;
      seen.add(key);
      out.push(gt);
    });
  }
  return out;
}

/** Ground-truth instances per category, keyed `${verb} ${objectCategory}`, duplicates collapsed. */
export function tripletCounts(records: HoiRecord[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const gt of groundTruthFromRecords(records)) {
    const key = tripletKey(gt.verb, gt.objectCategory);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

interface GtPair {
  subjectBox: Box;
  objectBox: Box;
  matched: boolean;
}

interface Category {
  verb: string;
  objectCategory: string;
  numGt: number;
  /** Ground-truth pairs by image, in input order (the order decides ties in the argmax). */
  gtByImage: Map<string, GtPair[]>;
  /** Detections in input order (the order decides ties in score). */
  dets: HoiDetection[];
}

/** Collision-free id (verbs or categories may contain spaces, so the trainCounts key is not). */
function categoryId(verb: string, objectCategory: string): string {
  return `${verb}\u0000${objectCategory}`;
}

function groupGroundTruth(gts: HoiGroundTruth[]): Map<string, Category> {
  const categories = new Map<string, Category>();
  gts.forEach((g, i) => {
    checkBox(g.subjectBox, 'gts', i, 'subjectBox');
    checkBox(g.objectBox, 'gts', i, 'objectBox');
    const id = categoryId(g.verb, g.objectCategory);
    let cat = categories.get(id);
    if (cat === undefined) {
      cat = { verb: g.verb, objectCategory: g.objectCategory, numGt: 0, gtByImage: new Map(), dets: [] };
      categories.set(id, cat);
    }
    let pairs = cat.gtByImage.get(g.imageId);
    if (pairs === undefined) {
      pairs = [];
      cat.gtByImage.set(g.imageId, pairs);
    }
    pairs.push({ subjectBox: g.subjectBox, objectBox: g.objectBox, matched: false });
    cat.numGt++;
  });
  return categories;
}

/** Matching and AP of one category (VOCevaldet_bboxpair.m); see the file comment. */
function evaluateCategory(cat: Category, iouThreshold: number): { ap: number; recall: number } {
  // Array.prototype.sort is stable (ES2019): equal scores keep input order, like MATLAB's sort.
  const ranked = cat.dets.slice().sort((a, b) => (a.score > b.score ? -1 : a.score < b.score ? 1 : 0));

  const recall: number[] = [];
  const precision: number[] = [];
  let tp = 0;
  let fp = 0;
  for (const det of ranked) {
    const pairs = cat.gtByImage.get(det.imageId) ?? [];
    let best = -Infinity;
    let bestPair: GtPair | undefined;
    for (const pair of pairs) {
      // Over all pairs, matched ones included: the reference checks `det(j_max)` only after.
      const overlap = Math.min(boxIou(det.subjectBox, pair.subjectBox), boxIou(det.objectBox, pair.objectBox));
      if (overlap > best) {
        best = overlap;
        bestPair = pair;
      }
    }
    if (bestPair !== undefined && best >= iouThreshold && !bestPair.matched) {
      bestPair.matched = true;
      tp++;
    } else {
      fp++;
    }
    recall.push(tp / cat.numGt);
    precision.push(tp / (tp + fp));
  }
  return { ap: voc11PointAp(recall, precision), recall: recall.length > 0 ? recall[recall.length - 1] : 0 };
}

function compareCategories(a: Category, b: Category): number {
  if (a.verb !== b.verb) return a.verb < b.verb ? -1 : 1;
  if (a.objectCategory !== b.objectCategory) return a.objectCategory < b.objectCategory ? -1 : 1;
  return 0;
}

function meanAp(cats: readonly HoiCategoryResult[]): number {
  if (cats.length === 0) return NaN;
  let sum = 0;
  for (const c of cats) sum += c.ap;
  return sum / cats.length;
}

function checkBox(box: unknown, list: string, index: number, field: string): void {
  if (!Array.isArray(box) || box.length !== 4 || !box.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new DataError(
      `${where(list, undefined, `[${index}].${field}`)}: expected [x1, y1, x2, y2] of finite numbers, found ${JSON.stringify(box)}`,
    );
  }
}
