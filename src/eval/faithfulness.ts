/**
 * Grounded faithfulness of generated explanations: does the text state the right verdict, the
 * right (subject, verb, object) triplets at the right places, only objects that are in the image,
 * and the right person as the actor? Generated and reference texts are read back with
 * parseResponse (src/data/response_parser.ts) and the taxonomy's templates; boxes in text are
 * normalized 0-1 and compared as boxes (IoU on continuous coordinates, boxIou).
 *
 * Definitions (micro-averaged over the corpus unless said otherwise):
 *   - verdict_accuracy: share of items whose generated verdict equals record.label; a text
 *     without a readable verdict counts as wrong (NaN for an empty corpus).
 *   - reference triplets: the parse of the reference response (record.conversations' gpt turn),
 *     i.e. the HOIs the reference states (normal ones included), not every HOI of the record:
 *     the model is judged against what it was taught to say.
 *   - match: a generated triplet matches a reference triplet of the same item when verb and
 *     object category are equal and IoU(subject boxes) >= 0.5 and IoU(object boxes) >= 0.5.
 *     One-to-one, greedy in the order of the generated triplets; each takes the unmatched
 *     reference triplet with the highest min(subject IoU, object IoU) (the first on a tie).
 *   - triplet_precision = matched / generated, triplet_recall = matched / reference,
 *     triplet_f1 = 2PR / (P + R) (0 when P + R = 0). A ratio with a zero denominator is 1 when
 *     both sides are empty (nothing to say, nothing said: perfectly faithful) and 0 otherwise
 *     (saying nothing where the reference has triplets must not score a perfect precision).
 *   - hallucination_rate: among the object mentions of the generated triplets (one per triplet,
 *     the object; `person` counts for person-object verbs such as punch), the share whose category
 *     is not among the record's object categories. 0 when nothing is mentioned.
 *   - attribution_accuracy: over records with at least two persons, for each anomalous reference
 *     triplet (anomaly not null) for which the generated text has a triplet with the same verb and
 *     object category (of several, the one whose object box best overlaps the reference object
 *     box): correct when the record person that best overlaps the generated subject box (argmax
 *     IoU, which must be > 0) is the person that best overlaps the reference subject box. This
 *     isolates "who does it" from "where is the object". accuracy = correct / considered; NaN when
 *     nothing was considered (counts.considered = 0), since no number would be honest there.
 */
import { normalizeBox } from '../data/box_text';
import { boxIou, type Box, type HoiRecord } from '../data/record';
import { parseResponse, type ParsedTriplet } from '../data/response_parser';
import type { Taxonomy } from '../data/taxonomy';
import { recordTexts } from '../models/vlp/tokenizer';

export interface FaithfulnessItem {
  generated: string;
  /** The reference response is the record's gpt turn. */
  record: HoiRecord;
}

export interface FaithfulnessCounts {
  items: number;
  verdict_correct: number;
  /** Generated texts without a readable verdict (counted wrong). */
  verdict_missing: number;
  generated_triplets: number;
  reference_triplets: number;
  matched_triplets: number;
  object_mentions: number;
  hallucinated_mentions: number;
  /** Anomalous reference triplets in records with >= 2 persons that the generated text states (verb, object). */
  attribution_considered: number;
  attribution_correct: number;
}

export interface FaithfulnessMetrics {
  verdict_accuracy: number;
  triplet_precision: number;
  triplet_recall: number;
  triplet_f1: number;
  hallucination_rate: number;
  /** NaN when counts.attribution_considered is 0. */
  attribution_accuracy: number;
  counts: FaithfulnessCounts;
}

/** IoU threshold for a triplet match (both boxes), as in the HICO-DET protocol. */
export const MATCH_IOU = 0.5;

export function scoreFaithfulness(items: readonly FaithfulnessItem[], taxonomy: Taxonomy, opts: { verbs?: readonly string[] } = {}): FaithfulnessMetrics {
  const parseOpts = opts.verbs ? { verbs: opts.verbs } : {};
  const counts: FaithfulnessCounts = {
    items: items.length,
    verdict_correct: 0,
    verdict_missing: 0,
    generated_triplets: 0,
    reference_triplets: 0,
    matched_triplets: 0,
    object_mentions: 0,
    hallucinated_mentions: 0,
    attribution_considered: 0,
    attribution_correct: 0,
  };
  for (const { generated, record } of items) {
    const gen = parseResponse(generated, taxonomy, parseOpts);
    const ref = parseResponse(recordTexts(record).response, taxonomy, parseOpts).triplets;

    if (gen.verdict === null) counts.verdict_missing++;
    else if (gen.verdict === record.label) counts.verdict_correct++;

    counts.generated_triplets += gen.triplets.length;
    counts.reference_triplets += ref.length;
    counts.matched_triplets += matchTriplets(gen.triplets, ref);

    const categories = new Set(record.objects.map((o) => o.category));
    counts.object_mentions += gen.triplets.length;
    counts.hallucinated_mentions += gen.triplets.filter((t) => !categories.has(t.object)).length;

    const { considered, correct } = attribution(gen.triplets, ref, record);
    counts.attribution_considered += considered;
    counts.attribution_correct += correct;
  }
  const precision = ratio(counts.matched_triplets, counts.generated_triplets, counts.reference_triplets);
  const recall = ratio(counts.matched_triplets, counts.reference_triplets, counts.generated_triplets);
  return {
    verdict_accuracy: items.length === 0 ? NaN : counts.verdict_correct / items.length,
    triplet_precision: precision,
    triplet_recall: recall,
    triplet_f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall),
    hallucination_rate: counts.object_mentions === 0 ? 0 : counts.hallucinated_mentions / counts.object_mentions,
    attribution_accuracy: counts.attribution_considered === 0 ? NaN : counts.attribution_correct / counts.attribution_considered,
    counts,
  };
}

/** num / den; with den 0: 1 when `other` (the other side's count) is 0 too, else 0. */
function ratio(num: number, den: number, other: number): number {
  if (den > 0) return num / den;
  return other === 0 ? 1 : 0;
}

const asBox = (b: readonly number[]): Box => [b[0], b[1], b[2], b[3]];

/** Number of one-to-one matches, greedy in generated order (see the header). */
export function matchTriplets(generated: readonly ParsedTriplet[], reference: readonly ParsedTriplet[]): number {
  const used = new Array<boolean>(reference.length).fill(false);
  let matched = 0;
  for (const g of generated) {
    let best = -1;
    let bestOverlap = -1;
    reference.forEach((r, j) => {
      if (used[j] || r.verb !== g.verb || r.object !== g.object) return;
      const overlap = Math.min(boxIou(asBox(g.subject_box), asBox(r.subject_box)), boxIou(asBox(g.object_box), asBox(r.object_box)));
      if (overlap >= MATCH_IOU && overlap > bestOverlap) {
        best = j;
        bestOverlap = overlap;
      }
    });
    if (best >= 0) {
      used[best] = true;
      matched++;
    }
  }
  return matched;
}

/** Attribution of one record (see the header): anomalous reference triplets considered and correct. */
function attribution(generated: readonly ParsedTriplet[], reference: readonly ParsedTriplet[], record: HoiRecord): { considered: number; correct: number } {
  const persons = record.objects.filter((o) => o.category === 'person').map((o) => normalizeBox(o.box, record.width, record.height));
  if (persons.length < 2) return { considered: 0, correct: 0 };
  let considered = 0;
  let correct = 0;
  for (const r of reference) {
    if (r.anomaly === null) continue;
    let stated: ParsedTriplet | null = null;
    let bestObjectIou = -1;
    for (const g of generated) {
      if (g.verb !== r.verb || g.object !== r.object) continue;
      const iou = boxIou(asBox(g.object_box), asBox(r.object_box));
      if (iou > bestObjectIou) {
        stated = g;
        bestObjectIou = iou;
      }
    }
    if (!stated) continue;
    considered++;
    const actor = bestPerson(persons, stated.subject_box);
    if (actor >= 0 && actor === bestPerson(persons, r.subject_box)) correct++;
  }
  return { considered, correct };
}

/** Index of the person box with the highest IoU with `box` (the first on a tie), -1 when none overlaps. */
function bestPerson(persons: readonly Box[], box: readonly number[]): number {
  let best = -1;
  let bestIou = 0;
  persons.forEach((p, i) => {
    const iou = boxIou(p, asBox(box));
    if (iou > bestIou) {
      best = i;
      bestIou = iou;
    }
  });
  return best;
}
