/**
 * Box pointer tokens (`model.box_pointer`): how an explanation cites a box by pointing at an HOI
 * slot instead of spelling its digits.
 *
 *   id V + 2m      the subject box of HOI slot m
 *   id V + 2m + 1  the object box of HOI slot m          (V = model.vocab_size, m < max_hois)
 *
 * Training targets (`citedResponse` + `pointerResponse`): a response's text is tokenized in
 * pieces split at its boxes, and each box is matched to the record object it is the (formatted)
 * box of. Once an image's HOI slots are known (perturbed ground truth while training), every cited
 * object held by a slot becomes one pointer token: the first slot (in input order) holding it, as
 * subject if it is that slot's subject, else as object. A cited object no slot holds (a dropped
 * HOI) keeps its digit tokens, so the model still learns to write a box it was not given.
 *
 * Decoding (`decodeWithPointers`): text pieces go through the tokenizer, each pointer token becomes
 * its slot's box as text (`[x1,y1,x2,y2]`, 3 decimals, the dataset's format), so explanations read
 * exactly like the responses they were trained on and the faithfulness parser reads them unchanged.
 * The boxes are then the HOI inputs' (ground truth or the extractor's): the explainer picks who and
 * what to cite, the detector says where they are (GPT4RoI / Ferret-style region references).
 */
import { formatNormalized, parseBoxes, type NormBox } from '../../data/box_text';
import type { VlpTokenizer } from './tokenizer';

/** A box span of a tokenized response: tokens [start, end) spell the box of record object `objectId`. */
export interface Citation {
  start: number;
  end: number;
  objectId: number;
}

/** A response tokenized in pieces split at its boxes, with the box spans matched to record objects. */
export interface CitedResponse {
  ids: number[];
  citations: Citation[];
}

/** The slot boxes a pointer token may cite, and the ids of the record objects behind them (ground truth only). */
export interface PointerSlot {
  subjectBox: NormBox;
  objectBox: NormBox;
  subjectId?: number;
  objectId?: number;
}

export function pointerTokenId(vocabSize: number, slot: number, role: 'subject' | 'object'): number {
  return vocabSize + 2 * slot + (role === 'object' ? 1 : 0);
}

/** The slot and role of a pointer token id; null for a vocabulary id. */
export function pointerTarget(vocabSize: number, id: number): { slot: number; role: 'subject' | 'object' } | null {
  if (id < vocabSize) return null;
  const k = id - vocabSize;
  return { slot: Math.floor(k / 2), role: k % 2 === 0 ? 'subject' : 'object' };
}

/**
 * Tokenizes `text` in pieces split at its boxes; a box whose text equals the formatted box of one
 * of `objects` becomes a citation of that object (unmatched boxes stay plain tokens).
 */
export function citedResponse(tokenizer: VlpTokenizer, text: string, objects: ReadonlyArray<{ id: number; box: NormBox }>): CitedResponse {
  const byText = new Map<string, number>();
  for (const o of objects) if (!byText.has(formatNormalized(o.box))) byText.set(formatNormalized(o.box), o.id);
  const ids: number[] = [];
  const citations: Citation[] = [];
  let at = 0;
  for (const b of parseBoxes(text)) {
    const objectId = byText.get(text.slice(b.start, b.end));
    if (objectId === undefined) continue;
    ids.push(...tokenizer.encode(text.slice(at, b.start)));
    const start = ids.length;
    ids.push(...tokenizer.encode(text.slice(b.start, b.end)));
    citations.push({ start, end: ids.length, objectId });
    at = b.end;
  }
  ids.push(...tokenizer.encode(text.slice(at)));
  return { ids, citations };
}

/** The response with every citation a slot holds replaced by one pointer token (see the file comment). */
export function pointerResponse(r: CitedResponse, slots: readonly PointerSlot[], vocabSize: number): number[] {
  const out: number[] = [];
  let at = 0;
  for (const c of r.citations) {
    let token = -1;
    for (let m = 0; m < slots.length && token < 0; m++) {
      if (slots[m].subjectId === c.objectId) token = pointerTokenId(vocabSize, m, 'subject');
      else if (slots[m].objectId === c.objectId) token = pointerTokenId(vocabSize, m, 'object');
    }
    if (token < 0) continue; // no slot holds it: keep its digits
    out.push(...r.ids.slice(at, c.start), token);
    at = c.end;
  }
  out.push(...r.ids.slice(at));
  return out;
}

/**
 * Generated ids -> text: vocabulary pieces decoded (special tokens dropped), pointer tokens written
 * as their slot's box. A pointer at a slot beyond `slots` (a padding slot, which the model's -1e9
 * bias rules out) is written as nothing.
 */
export function decodeWithPointers(tokenizer: VlpTokenizer, ids: readonly number[], vocabSize: number, slots: readonly PointerSlot[]): string {
  let text = '';
  let piece: number[] = [];
  for (const id of ids) {
    const target = pointerTarget(vocabSize, id);
    if (!target) {
      piece.push(id);
      continue;
    }
    text += tokenizer.decode(piece, { skipSpecial: true });
    piece = [];
    const slot = slots[target.slot];
    if (slot) text += formatNormalized(target.role === 'subject' ? slot.subjectBox : slot.objectBox);
  }
  return text + tokenizer.decode(piece, { skipSpecial: true });
}

/** What decoding needs to write pointer tokens: the model's vocabulary size and the slots of one image. */
export interface PointerContext {
  vocabSize: number;
  slots: readonly PointerSlot[];
}

/** The pointer context of a model config and one image's slots (only the first max_hois are the model's); null without box_pointer. */
export function pointerSlotsOf(config: { box_pointer: boolean; vocab_size: number; max_hois: number }, slots: readonly PointerSlot[]): PointerContext | null {
  return config.box_pointer ? { vocabSize: config.vocab_size, slots: slots.slice(0, config.max_hois) } : null;
}

/** Generated ids (after <bos>) -> the explanation: cut at the first <eos>, decoded (pointers as boxes), trimmed. */
export function explanationText(tokenizer: VlpTokenizer, ids: readonly number[], eosId: number, pointer: PointerContext | null): string {
  const end = ids.indexOf(eosId);
  const kept = end >= 0 ? ids.slice(0, end) : ids;
  const text = pointer ? decodeWithPointers(tokenizer, kept, pointer.vocabSize, pointer.slots) : tokenizer.decode(kept, { skipSpecial: true });
  return text.trim();
}
