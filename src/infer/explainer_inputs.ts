/**
 * The explainer's inputs for one image, built once here for both explanation engines (ONNX Runtime
 * and tfjs) and for the export parity check, so the engines can differ only by kernel float noise:
 *
 *   HOI slots    the image's decoded triplets scoring >= hoi_min_score, best first, top max_hois,
 *                as the training code builds them from extractor predictions (predictedHoiSlots):
 *                subject `person`, boxes in the pixels of the image as displayed (letterbox undone,
 *                rounded to 0.01 px like eval's predictions) normalized by ITS width and height,
 *                like the dataset's responses; free slots are padding (num_categories / num_verbs,
 *                zero boxes), as in collateVlpBatch.
 *   instruction  the manifest's left-padded ids of the fixed instruction.
 *   generation   the manifest's settings, max_length cut to the positions left after the prefix.
 */
import type { OriginalInfo } from '../data/loader';
import { type HoiSlot, type PrefixArrays, predictedHoiSlots } from '../data/vlp_batches';
import type { AnnotatedTriplet } from '../models/hoi/decode';
import { explanationText, pointerSlotsOf } from '../models/vlp/pointer';
import type { GenerateOptions } from '../models/vlp/search';
import type { VlpTokenizer } from '../models/vlp/tokenizer';
import type { ExplainerSection } from './manifest';
import { toImageBox } from './preprocess';

/** Host arrays of a batch of n images (the layouts of VlpInputs / the vlp_prefix inputs). */
export interface ExplainerArrays extends PrefixArrays {
  batch: number;
}

/** The labels slot ids refer to (the manifest's, equal to the explainer run's: checked at export). */
export interface SlotLabels {
  categories: readonly string[];
  verbs: readonly string[];
}

/** One image's HOI slots from its decoded triplets (model-input pixels) and its letterbox geometry. */
export function explainerSlots(triplets: readonly AnnotatedTriplet[], original: OriginalInfo, e: ExplainerSection, labels: SlotLabels): HoiSlot[] {
  const predicted = triplets.map((t) => ({
    subject_box: toImageBox(t.subjectBox, original),
    object_box: toImageBox(t.objectBox, original),
    object_category: t.objectCategory,
    verb: t.verb,
    score: t.score,
  }));
  const size = { id: original.id, width: original.width, height: original.height };
  return predictedHoiSlots(predicted, size, labels.categories, labels.verbs, e.hoi_min_score).slice(0, e.max_hois);
}

/** The arrays of a batch: one slot list per image (cut to max_hois), the manifest's instruction on every row. */
export function explainerArrays(slotsPerImage: readonly (readonly HoiSlot[])[], e: ExplainerSection, labels: SlotLabels): ExplainerArrays {
  const n = slotsPerImage.length;
  const M = e.max_hois, Li = e.instruction_length;
  const a: ExplainerArrays = {
    batch: n,
    hoiSubject: new Int32Array(n * M).fill(labels.categories.length),
    hoiVerb: new Int32Array(n * M).fill(labels.verbs.length),
    hoiObject: new Int32Array(n * M).fill(labels.categories.length),
    hoiSubjectBox: new Float32Array(n * M * 4),
    hoiObjectBox: new Float32Array(n * M * 4),
    instruction: new Int32Array(n * Li),
  };
  slotsPerImage.forEach((slots, b) => {
    slots.slice(0, M).forEach((s, m) => {
      a.hoiSubject[b * M + m] = s.subject;
      a.hoiVerb[b * M + m] = s.verb;
      a.hoiObject[b * M + m] = s.object;
      a.hoiSubjectBox.set(s.subjectBox, (b * M + m) * 4);
      a.hoiObjectBox.set(s.objectBox, (b * M + m) * 4);
    });
    a.instruction.set(e.instruction_ids, b * Li);
  });
  return a;
}

/**
 * The instruction as the model reads it: its first `length` tokens (longer instructions keep their
 * start, as in training), left-padded with `padId` to `length`.
 */
export function leftPadded(ids: readonly number[], length: number, padId: number): number[] {
  const kept = ids.slice(0, length);
  return [...new Array<number>(length - kept.length).fill(padId), ...kept];
}

/** The manifest's generation settings as searcher options; max_length cut to max_positions - P. */
export function explainerGenerateOptions(e: ExplainerSection): GenerateOptions {
  const g = e.generate;
  return {
    strategy: g.strategy,
    maxLength: Math.max(1, Math.min(g.max_length, e.max_positions - e.prefix_length)),
    beamSize: g.beam_size, topP: g.top_p, temperature: g.temperature, seed: g.seed,
    bosId: e.special_tokens.bos, eosId: e.special_tokens.eos,
  };
}

/** Generated ids (after <bos>) -> text, as `eval vlp` decodes them (pointer tokens as the image's slot boxes). */
export function explainerText(tokenizer: VlpTokenizer, ids: readonly number[], e: ExplainerSection, slots: readonly HoiSlot[]): string {
  return explanationText(tokenizer, ids, e.special_tokens.eos, pointerSlotsOf({ box_pointer: e.box_pointer, vocab_size: e.vocab_size, max_hois: e.max_hois }, slots));
}
