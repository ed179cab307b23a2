/**
 * What the synthetic generator can stage: categories, verbs and every (verb, object category)
 * pair, with whether it is an assault. Normal interactions carry sampling weights.
 */
export const SYNTH_CATEGORIES = ['person', 'knife', 'gun', 'bat', 'bottle', 'cup', 'phone', 'bag', 'ball'] as const;
export type SynthCategory = (typeof SYNTH_CATEGORIES)[number];

export const SYNTH_VERBS = [
  'hold', 'carry', 'talk_on', 'hand_over', 'throw', 'kick', 'point_at', 'stab', 'hit', 'punch',
] as const;
export type SynthVerb = (typeof SYNTH_VERBS)[number];

export interface SynthInteraction {
  verb: SynthVerb;
  object: SynthCategory;
  anomalous: boolean;
}

/** A normal interaction with a thing, its sampling weight, and whether the thing is a weapon (hard negative). */
export interface NormalEntry {
  verb: 'hold' | 'carry' | 'talk_on' | 'hand_over' | 'throw' | 'kick';
  object: Exclude<SynthCategory, 'person'>;
  weight: number;
  weapon: boolean;
}

const W = (verb: NormalEntry['verb'], object: NormalEntry['object'], weight: number, weapon = false): NormalEntry => ({
  verb, object, weight, weapon,
});

export const NORMAL_ENTRIES: readonly NormalEntry[] = [
  W('hold', 'bottle', 1), W('hold', 'cup', 1), W('hold', 'phone', 1), W('hold', 'bag', 1), W('hold', 'ball', 1),
  W('carry', 'bag', 1), W('carry', 'ball', 1), W('carry', 'bottle', 1),
  W('talk_on', 'phone', 1.5),
  W('hand_over', 'bottle', 1), W('hand_over', 'cup', 1), W('hand_over', 'phone', 1),
  W('hand_over', 'bag', 1), W('hand_over', 'ball', 1),
  W('throw', 'ball', 1.5), W('kick', 'ball', 1.5),
  // hard negatives: weapons in everyday, non-threatening use
  W('hold', 'knife', 1, true), W('hold', 'gun', 1, true), W('hold', 'bat', 1, true),
  W('carry', 'bat', 1, true), W('hand_over', 'knife', 1, true), W('hand_over', 'bat', 1, true),
];

/** Assaults: (A, verb, weapon) and (A, verb, victim), or (A, verb, victim) alone. */
const ANOMALOUS: readonly SynthInteraction[] = [
  { verb: 'point_at', object: 'gun', anomalous: true },
  { verb: 'point_at', object: 'person', anomalous: true },
  { verb: 'stab', object: 'knife', anomalous: true },
  { verb: 'stab', object: 'person', anomalous: true },
  { verb: 'hit', object: 'bat', anomalous: true },
  { verb: 'hit', object: 'person', anomalous: true },
  { verb: 'punch', object: 'person', anomalous: true },
  { verb: 'kick', object: 'person', anomalous: true },
];

/** Every (verb, object category) pair the generator can stage. */
export const SYNTH_INTERACTIONS: ReadonlyArray<SynthInteraction> = [
  ...NORMAL_ENTRIES.map((e) => ({ verb: e.verb, object: e.object, anomalous: false })),
  ...ANOMALOUS,
];

export const WEAPON_CATEGORIES: readonly SynthCategory[] = ['knife', 'gun', 'bat'];
