/**
 * Training and evaluation batches of the VLP explainer.
 *
 * Per image (a `VlpExample`): the instruction and response token ids (recordTexts + tokenizer),
 * the HOI slots (subject class, verb, object class, both boxes normalized to 0-1) from the ground
 * truth or from the extractor's predictions, and the C5 feature map of the frozen extractor
 * backbone, computed once per split by `computeVisualFeatures` and kept in memory (one
 * Float32Array per image: 4x4x128 floats = 8 KB for the tiny extractor at 128 px), so training
 * never reruns the backbone.
 *
 * While training, ground-truth slots are perturbed like a detector's output would be: box jitter,
 * dropped triplets, one spurious triplet, optionally a shuffled order. The noise is drawn from
 * Rng(seed, 'hoi', epoch, image id) and the batch order from Rng(seed, 'shuffle', epoch), so a
 * batch is a function of (seed, epoch, index): `--resume` sees exactly the batches the
 * uninterrupted run would have.
 *
 * Collation (`collateVlpBatch`): instruction left-padded to `instructionLength`; response input
 * = [<bos>, tokens...] and targets = [tokens..., <eos>] (the input shifted by one), both cut to
 * `maxResponseLength` and right-padded with <pad> to the longest in the batch, mask 1 on real
 * targets only.
 */
import { tf } from '../backend/tf';
import { DataError, ShapeError } from '../errors';
import type { PointHoiExtractor } from '../models/hoi/point_hoi';
import type { VlpInputs } from '../models/vlp/explainer';
import { normalizeBox, type NormBox } from './box_text';
import { DataLoader } from './loader';
import type { Box, HoiRecord, Split } from './record';
import { Rng } from './rng';
import { type Citation, pointerResponse } from '../models/vlp/pointer';

/** One HOI input of the explainer: class/verb indices and normalized boxes. */
export interface HoiSlot {
  subject: number;
  verb: number;
  object: number;
  subjectBox: NormBox;
  objectBox: NormBox;
  /** Record object ids behind the boxes (ground-truth slots only): what box-pointer targets match citations to. */
  subjectId?: number;
  objectId?: number;
}

/** One image, tokenized, with its unperturbed HOI slots. */
export interface VlpExample {
  id: string;
  /** Instruction token ids (no special tokens). */
  instruction: number[];
  /** Response token ids without <bos>/<eos>. */
  response: number[];
  /**
   * Box-pointer explainers: the response was tokenized in pieces split at its boxes and these are
   * the box spans with their record objects (models/vlp/pointer.ts); absent otherwise.
   */
  citations?: Citation[];
  hois: HoiSlot[];
  /** The record's objects as (id, category index, normalized box): spurious HOIs are drawn from them. */
  objects: Array<{ id: number; category: number; box: NormBox }>;
}

/** C5 features of a split: one [h, w, c] map per image id. */
export interface VisualFeatures {
  shape: [number, number, number];
  byId: Map<string, Float32Array>;
}

/** Sizes and token ids collation needs. */
export interface CollateSpec {
  numCategories: number;
  numVerbs: number;
  maxHois: number;
  instructionLength: number;
  maxResponseLength: number;
  padId: number;
  bosId: number;
  eosId: number;
  /** Box-pointer explainers: the model's vocabulary size V (pointer ids start there); null: boxes stay digits. */
  pointerVocab: number | null;
}

/** How ground-truth slots are perturbed while training (the hoi_inputs section of the config). */
export interface HoiNoise {
  boxJitter: number;
  dropProb: number;
  spuriousProb: number;
  shuffle: boolean;
}

export const NO_NOISE: HoiNoise = { boxJitter: 0, dropProb: 0, spuriousProb: 0, shuffle: false };

/** The explainer's tensors for one batch (see VlpInputs in models/vlp/explainer.ts). */
export interface VlpBatch {
  ids: string[];
  inputs: VlpInputs;
  /** int32 [B, Tr]: <bos> then the response tokens, <pad> after. */
  response: tf.Tensor2D;
  /** int32 [B, Tr]: the response shifted left by one, ending in <eos> (unless cut). */
  targets: tf.Tensor2D;
  /** float32 [B, Tr]: 1 on real targets, 0 on padding. */
  mask: tf.Tensor2D;
}

/** The HOI slots and instruction of a batch as host arrays, row-major (the layouts of VlpInputs). */
export interface PrefixArrays {
  /** [B, M] category / verb ids. */
  hoiSubject: Int32Array;
  hoiVerb: Int32Array;
  hoiObject: Int32Array;
  /** [B, M, 4] normalized x1, y1, x2, y2. */
  hoiSubjectBox: Float32Array;
  hoiObjectBox: Float32Array;
  /** [B, Li] left-padded instruction ids. */
  instruction: Int32Array;
}

/** The host arrays of a batch, before they become tensors (tested without a backend). */
export interface CollatedArrays extends PrefixArrays {
  ids: string[];
  B: number;
  visualShape: [number, number, number];
  visual: Float32Array;
  responseLength: number;
  response: Int32Array;
  targets: Int32Array;
  mask: Float32Array;
}

// ---------------------------------------------------------------------------------------------
// HOI slots

/** Index lookup of names (categories or verbs); an unknown name is a DataError naming the record. */
export function indexOf(names: readonly string[]): (name: string, what: string, recordId: string) => number {
  const map = new Map(names.map((n, i) => [n, i]));
  return (name, what, recordId) => {
    const i = map.get(name);
    if (i === undefined) throw new DataError(`record '${recordId}': unknown ${what} '${name}' (the run knows ${names.join(', ')})`);
    return i;
  };
}

/** The record's ground-truth HOIs as slots, in record order (the order the response mentions them in). */
export function recordHoiSlots(rec: HoiRecord, categories: readonly string[], verbs: readonly string[]): HoiSlot[] {
  const cat = indexOf(categories), verb = indexOf(verbs);
  const objects = new Map(rec.objects.map((o) => [o.id, o]));
  return rec.hois.map((h, k) => {
    const s = objects.get(h.subject), o = objects.get(h.object);
    if (!s || !o) throw new DataError(`record '${rec.id}' field 'hois[${k}]': object id ${s ? h.object : h.subject} is not among the record's objects`);
    return {
      subject: cat(s.category, 'category', rec.id), verb: verb(h.verb, 'verb', rec.id), object: cat(o.category, 'category', rec.id),
      subjectBox: normalizeBox(s.box, rec.width, rec.height), objectBox: normalizeBox(o.box, rec.width, rec.height),
      subjectId: s.id, objectId: o.id,
    };
  });
}

/** The record's objects as (id, category index, normalized box). */
export function recordObjects(rec: HoiRecord, categories: readonly string[]): VlpExample['objects'] {
  const cat = indexOf(categories);
  return rec.objects.map((o) => ({ id: o.id, category: cat(o.category, 'category', rec.id), box: normalizeBox(o.box, rec.width, rec.height) }));
}

/** A triplet predicted by the extractor, boxes in original pixels (extractor_eval's ImagePrediction.hois). */
export interface PredictedTriplet {
  subject_box: Box;
  object_box: Box;
  object_category: string;
  verb: string;
  score: number;
}

/**
 * Extractor predictions as slots: triplets scoring at least `minScore`, best first (the extractor's
 * subjects are people: the subject class is `person`, or category 0 when there is none).
 */
export function predictedHoiSlots(
  hois: readonly PredictedTriplet[], size: { id: string; width: number; height: number },
  categories: readonly string[], verbs: readonly string[], minScore: number,
): HoiSlot[] {
  const cat = indexOf(categories), verb = indexOf(verbs);
  const person = Math.max(0, categories.indexOf('person'));
  return [...hois]
    .filter((h) => h.score >= minScore)
    .sort((a, b) => b.score - a.score)
    .map((h) => ({
      subject: person, verb: verb(h.verb, 'verb', size.id), object: cat(h.object_category, 'category', size.id),
      subjectBox: normalizeBox(h.subject_box, size.width, size.height), objectBox: normalizeBox(h.object_box, size.width, size.height),
    }));
}

/**
 * Training noise on an image's slots, drawn from `rng` in a fixed order: per slot a drop decision
 * then (if kept) 8 box-jitter draws; then the spurious decision and its draws; then the shuffle.
 * A spurious HOI joins a person of the image (any object if none) to another object by a random verb.
 */
export function perturbHoiSlots(
  slots: readonly HoiSlot[], objects: VlpExample['objects'], noise: HoiNoise, numVerbs: number, personCategory: number, rng: Rng,
): HoiSlot[] {
  const out: HoiSlot[] = [];
  for (const s of slots) {
    if (rng.chance(noise.dropProb)) continue;
    out.push({ ...s, subjectBox: jitterBox(s.subjectBox, noise.boxJitter, rng), objectBox: jitterBox(s.objectBox, noise.boxJitter, rng) });
  }
  if (objects.length >= 2 && rng.chance(noise.spuriousProb)) {
    const people = objects.filter((o) => o.category === personCategory);
    const subject = rng.pick(people.length > 0 ? people : objects);
    const object = rng.pick(objects.filter((o) => o !== subject));
    out.push({
      subject: subject.category, verb: rng.int(0, numVerbs - 1), object: object.category,
      subjectBox: jitterBox(subject.box, noise.boxJitter, rng), objectBox: jitterBox(object.box, noise.boxJitter, rng),
      subjectId: subject.id, objectId: object.id,
    });
  }
  if (noise.shuffle) rng.shuffle(out);
  return out;
}

/** Each coordinate moves by N(0, (fraction * box side)^2), then clamped to 0-1 and reordered. */
export function jitterBox(b: NormBox, fraction: number, rng: Rng): NormBox {
  const w = b[2] - b[0], h = b[3] - b[1];
  const d = [rng.normal(0, fraction * w), rng.normal(0, fraction * h), rng.normal(0, fraction * w), rng.normal(0, fraction * h)];
  if (fraction === 0) return [...b];
  const c = (v: number) => Math.min(1, Math.max(0, v));
  const x1 = c(b[0] + d[0]), y1 = c(b[1] + d[1]), x2 = c(b[2] + d[2]), y2 = c(b[3] + d[3]);
  return [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)];
}

// ---------------------------------------------------------------------------------------------
// Visual features

/**
 * Runs the frozen extractor backbone over a split once (eval mode, no augmentation, letterboxed
 * to the extractor's input size) and keeps each image's C5 map.
 */
export async function computeVisualFeatures(
  extractor: PointHoiExtractor, datasetDir: string, split: Split, opts: { inputSize: number; batchSize: number; maxImages?: number | null },
): Promise<VisualFeatures> {
  const wasTraining = extractor.training;
  extractor.eval();
  const loader = new DataLoader(datasetDir, { split, batchSize: opts.batchSize, inputSize: opts.inputSize, shuffle: false, augment: false, seed: 0 });
  const byId = new Map<string, Float32Array>();
  let shape: [number, number, number] = [0, 0, 0];
  const limit = opts.maxImages ?? Infinity;
  try {
    for await (const batch of loader.epoch(0)) {
      if (byId.size >= limit) {
        batch.images.dispose();
        break;
      }
      const c5 = tf.tidy(() => extractor.backbone.forwardFeatures(batch.images).c5); // [B, h, w, C]
      batch.images.dispose();
      const [B, h, w, C] = c5.shape;
      const data = (await c5.data()) as Float32Array;
      c5.dispose();
      shape = [h, w, C];
      const n = h * w * C;
      for (let b = 0; b < B; b++) byId.set(batch.records[b].id, data.slice(b * n, (b + 1) * n));
    }
  } finally {
    extractor.train(wasTraining);
  }
  return { shape, byId };
}

// ---------------------------------------------------------------------------------------------
// Collation

/** One image ready to collate: its (possibly perturbed) slots and its visual features. */
export interface CollateItem {
  id: string;
  instruction: readonly number[];
  response: readonly number[];
  hois: readonly HoiSlot[];
  visual: Float32Array;
}

/** Builds the host arrays of a batch (no tensors). */
export function collateArrays(items: readonly CollateItem[], visualShape: [number, number, number], spec: CollateSpec): CollatedArrays {
  const B = items.length;
  if (B === 0) throw new ShapeError('collateVlpBatch: empty batch');
  const [h, w, C] = visualShape;
  const n = h * w * C;
  const M = spec.maxHois, Li = spec.instructionLength, T = spec.maxResponseLength;
  if (T < 1) throw new ShapeError(`collateVlpBatch: maxResponseLength must be >= 1, got ${T}`);
  const visual = new Float32Array(B * n);
  const hoiSubject = new Int32Array(B * M).fill(spec.numCategories);
  const hoiVerb = new Int32Array(B * M).fill(spec.numVerbs);
  const hoiObject = new Int32Array(B * M).fill(spec.numCategories);
  const hoiSubjectBox = new Float32Array(B * M * 4);
  const hoiObjectBox = new Float32Array(B * M * 4);
  const instruction = new Int32Array(B * Li).fill(spec.padId);
  // [<bos>, r1..rn, <eos>]: input = all but the last, target = all but the first; cut at T.
  const sequences = items.map((it) => [spec.bosId, ...it.response, spec.eosId]);
  const Tr = Math.min(T, Math.max(...sequences.map((s) => s.length - 1)));
  const response = new Int32Array(B * Tr).fill(spec.padId);
  const targets = new Int32Array(B * Tr).fill(spec.padId);
  const mask = new Float32Array(B * Tr);
  items.forEach((it, b) => {
    if (it.visual.length !== n) {
      throw new ShapeError(`collateVlpBatch: visual features of '${it.id}' hold ${it.visual.length} values, expected [${visualShape}] = ${n}`);
    }
    visual.set(it.visual, b * n);
    it.hois.slice(0, M).forEach((s, m) => {
      hoiSubject[b * M + m] = s.subject;
      hoiVerb[b * M + m] = s.verb;
      hoiObject[b * M + m] = s.object;
      hoiSubjectBox.set(s.subjectBox, (b * M + m) * 4);
      hoiObjectBox.set(s.objectBox, (b * M + m) * 4);
    });
    const ins = it.instruction.slice(0, Li);
    instruction.set(ins, b * Li + (Li - ins.length)); // left padding: the instruction ends where the response starts
    const seq = sequences[b];
    const len = Math.min(Tr, seq.length - 1);
    for (let t = 0; t < len; t++) {
      response[b * Tr + t] = seq[t];
      targets[b * Tr + t] = seq[t + 1];
      mask[b * Tr + t] = 1;
    }
  });
  return { ids: items.map((it) => it.id), B, visualShape, visual, hoiSubject, hoiVerb, hoiObject, hoiSubjectBox, hoiObjectBox, instruction, responseLength: Tr, response, targets, mask };
}

/** The batch as tensors; the caller disposes them with disposeVlpBatch. */
export function collateVlpBatch(items: readonly CollateItem[], visualShape: [number, number, number], spec: CollateSpec): VlpBatch {
  const a = collateArrays(items, visualShape, spec);
  const { B } = a;
  const M = spec.maxHois, Tr = a.responseLength;
  return {
    ids: a.ids,
    inputs: {
      visual: tf.tensor4d(a.visual, [B, ...visualShape]),
      hoiSubject: tf.tensor2d(a.hoiSubject, [B, M], 'int32'),
      hoiVerb: tf.tensor2d(a.hoiVerb, [B, M], 'int32'),
      hoiObject: tf.tensor2d(a.hoiObject, [B, M], 'int32'),
      hoiSubjectBox: tf.tensor3d(a.hoiSubjectBox, [B, M, 4]),
      hoiObjectBox: tf.tensor3d(a.hoiObjectBox, [B, M, 4]),
      instruction: tf.tensor2d(a.instruction, [B, spec.instructionLength], 'int32'),
    },
    response: tf.tensor2d(a.response, [B, Tr], 'int32'),
    targets: tf.tensor2d(a.targets, [B, Tr], 'int32'),
    mask: tf.tensor2d(a.mask, [B, Tr], 'float32'),
  };
}

export function disposeVlpBatch(b: VlpBatch): void {
  for (const t of Object.values(b.inputs)) t.dispose();
  b.response.dispose();
  b.targets.dispose();
  b.mask.dispose();
}

// ---------------------------------------------------------------------------------------------
// Epochs

export interface BatchSourceOptions {
  batchSize: number;
  seed: number;
  /** Shuffle the order per epoch and drop the last partial batch (training); false: split order, all images. */
  shuffle: boolean;
  /** Noise on the slots (training); NO_NOISE for evaluation. */
  noise: HoiNoise;
  numVerbs: number;
  personCategory: number;
}

/** Batches of a split's examples as a pure function of (epoch, index). */
export class VlpBatchSource {
  constructor(
    readonly examples: readonly VlpExample[],
    readonly features: VisualFeatures,
    readonly spec: CollateSpec,
    readonly opts: BatchSourceOptions,
  ) {
    for (const e of examples) {
      if (!features.byId.has(e.id)) throw new DataError(`VLP batches: no visual features for image '${e.id}'`);
    }
  }

  get numBatches(): number {
    const n = this.examples.length, b = this.opts.batchSize;
    return this.opts.shuffle ? Math.floor(n / b) : Math.ceil(n / b);
  }

  /** Example indices of each batch of an epoch. */
  batchIndices(epoch: number): number[][] {
    const order = this.examples.map((_, i) => i);
    if (this.opts.shuffle) new Rng(this.opts.seed, 'shuffle', epoch).shuffle(order);
    const out: number[][] = [];
    for (let i = 0; i < this.numBatches; i++) out.push(order.slice(i * this.opts.batchSize, (i + 1) * this.opts.batchSize));
    return out;
  }

  /** The collate items of batch `index` of `epoch` (slots perturbed when noise is set). */
  items(epoch: number, index: number): CollateItem[] {
    const indices = this.batchIndices(epoch)[index];
    if (!indices) throw new RangeError(`VlpBatchSource: batch ${index} of ${this.numBatches}`);
    return indices.map((i) => this.item(this.examples[i], epoch));
  }

  batch(epoch: number, index: number): VlpBatch {
    return collateVlpBatch(this.items(epoch, index), this.features.shape, this.spec);
  }

  private item(e: VlpExample, epoch: number): CollateItem {
    const noisy = this.opts.noise !== NO_NOISE && (this.opts.noise.boxJitter > 0 || this.opts.noise.dropProb > 0 || this.opts.noise.spuriousProb > 0 || this.opts.noise.shuffle);
    const hois = noisy
      ? perturbHoiSlots(e.hois, e.objects, this.opts.noise, this.opts.numVerbs, this.opts.personCategory, new Rng(this.opts.seed, 'hoi', epoch, e.id))
      : e.hois;
    // box pointer: cited boxes the (kept, perturbed) slots hold become pointer tokens
    const response = this.spec.pointerVocab !== null && e.citations
      ? pointerResponse({ ids: e.response, citations: e.citations }, hois.slice(0, this.spec.maxHois), this.spec.pointerVocab)
      : e.response;
    return { id: e.id, instruction: e.instruction, response, hois, visual: this.features.byId.get(e.id)! };
  }
}
