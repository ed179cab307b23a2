import { DataError } from '../errors';
import { formatBox } from './box_text';
import type { Hoi, HoiObject, HoiRecord, Turn } from './record';
import type { Rng } from './rng';
import type { Taxonomy } from './taxonomy';

/**
 * LLaVA-style instruction-tuning text for a record: a human turn (`<image>\n` + an instruction)
 * and a gpt turn (the response). The response is what the VLP model learns to write and what
 * response_parser.ts reads back, so its fixed sentences live here and are shared with the parser.
 *
 * Response layout:
 *   anomalous: verdict, one sentence per anomalous HOI (record order), then, when the image has
 *              normal HOIs, NORMAL_MARKER and up to MAX_NORMAL_AFTER_ANOMALIES of them;
 *   normal:    verdict, then up to MAX_NORMAL_HOIS normal HOIs, or NO_INTERACTIONS.
 */
export const INSTRUCTIONS: readonly string[] = [
  'Is anything abnormal in this image? Explain.',
  'Describe any threat in this scene, who is involved and where.',
  'Is this scene normal or anomalous? Justify your answer with the people and objects involved.',
  'Does this image show dangerous or abnormal behavior? Point to the people and objects involved.',
  'Analyze the human-object interactions in this image and report any anomaly.',
  'Is there an anomaly here? If so, say who does what to whom, with boxes.',
  'Check this image for threats. Give the location of everyone involved.',
];

/** First sentence of an anomalous response (paraphrases; the parser knows all of them). */
export const ANOMALOUS_VERDICTS: readonly string[] = [
  'Yes, this image is anomalous.',
  'Yes, there is an anomaly in this image.',
  'Yes, something abnormal is happening in this image.',
];

/** First sentence of a normal response. */
export const NORMAL_VERDICTS: readonly string[] = [
  'No, nothing abnormal is happening in this image.',
  'No, this image looks normal.',
  'No, there is no anomaly in this image.',
];

/** Introduces the normal HOIs that follow the anomalous ones. */
export const NORMAL_MARKER = 'The other interactions are normal.';
/** A normal image without interactions. */
export const NO_INTERACTIONS = 'No interactions.';

export const MAX_NORMAL_HOIS = 3;
export const MAX_NORMAL_AFTER_ANOMALIES = 2;

export type TextRecord = Pick<HoiRecord, 'width' | 'height' | 'objects' | 'hois' | 'label'>;

/** Human turn + gpt turn. Draws the instruction, then the response, from `rng`. */
export function buildConversations(rec: TextRecord, taxonomy: Taxonomy, rng: Rng): Turn[] {
  const instruction = rng.pick(INSTRUCTIONS);
  return [
    { from: 'human', value: `<image>\n${instruction}` },
    { from: 'gpt', value: buildResponse(rec, taxonomy, rng) },
  ];
}

/** The response text (see the layout above); deterministic given the rng state. */
export function buildResponse(rec: TextRecord, taxonomy: Taxonomy, rng: Rng): string {
  const objects = new Map(rec.objects.map((o) => [o.id, o]));
  const anomalous = rec.hois.filter((h) => h.anomaly !== null);
  const normal = rec.hois.filter((h) => h.anomaly === null);
  if ((rec.label === 'anomalous') !== anomalous.length > 0) {
    throw new DataError(`response text: label '${rec.label}' but ${anomalous.length} of ${rec.hois.length} interactions are anomalous (label is 'anomalous' exactly when some interaction has an anomaly)`);
  }
  const sentences: string[] = [];
  const say = (h: Hoi) => sentences.push(hoiSentence(h, rec, objects, taxonomy, rng));
  if (rec.label === 'anomalous') {
    sentences.push(rng.pick(ANOMALOUS_VERDICTS));
    anomalous.forEach(say);
    const extra = normal.slice(0, MAX_NORMAL_AFTER_ANOMALIES);
    if (extra.length > 0) {
      sentences.push(NORMAL_MARKER);
      extra.forEach(say);
    }
  } else {
    sentences.push(rng.pick(NORMAL_VERDICTS));
    if (normal.length === 0) sentences.push(NO_INTERACTIONS);
    normal.slice(0, MAX_NORMAL_HOIS).forEach(say);
  }
  return sentences.join(' ');
}

/** Values substituted into a template, already in text form. */
export interface TemplateValues {
  subject: string;
  subject_box: string;
  verb: string;
  object: string;
  object_box: string;
  anomaly: string;
  severity: string;
}

/** Substitutes `{name}` placeholders; an unknown placeholder is an error (the taxonomy rejects them). */
export function renderTemplate(template: string, values: TemplateValues): string {
  return template.replace(/\{([^{}]*)\}/g, (whole, name: string) => {
    if (!Object.prototype.hasOwnProperty.call(values, name)) throw new DataError(`template "${template}": unknown placeholder ${whole}`);
    return values[name as keyof TemplateValues];
  });
}

/** A category, verb or anomaly name as text: underscores become spaces. */
export function nameText(name: string): string {
  return name.replace(/_/g, ' ');
}

/** Text values of one HOI for renderTemplate. */
export function hoiValues(h: Hoi, rec: Pick<HoiRecord, 'width' | 'height'>, subject: HoiObject, object: HoiObject, taxonomy: Taxonomy): TemplateValues {
  return {
    subject: nameText(subject.category),
    subject_box: formatBox(subject.box, rec.width, rec.height),
    verb: taxonomy.verbPhrase(h.verb),
    object: nameText(object.category),
    object_box: formatBox(object.box, rec.width, rec.height),
    anomaly: h.anomaly === null ? '' : nameText(h.anomaly),
    severity: h.severity ?? '',
  };
}

function hoiSentence(h: Hoi, rec: TextRecord, objects: Map<number, HoiObject>, taxonomy: Taxonomy, rng: Rng): string {
  const subject = objects.get(h.subject);
  const object = objects.get(h.object);
  if (!subject || !object) {
    throw new DataError(`response text: interaction '${h.verb}' refers to object id ${subject ? h.object : h.subject}, which is not among the record's objects`);
  }
  if ((h.anomaly === null) !== (h.severity === null)) {
    throw new DataError(`response text: interaction '${h.verb} ${object.category}' has anomaly ${JSON.stringify(h.anomaly)} but severity ${JSON.stringify(h.severity)} (both set or both null)`);
  }
  const template = rng.pick(taxonomy.sentenceTemplates(h.verb, object.category, h.anomaly !== null));
  return renderTemplate(template, hoiValues(h, rec, subject, object, taxonomy));
}
