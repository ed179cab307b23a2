/**
 * Grounded faithfulness on hand-built records (100 x 100 px, so a pixel box /100 is its text box)
 * and hand-written generated texts: correct, swapped subject, wrong verb, object box IoU 0.4,
 * hallucinated knife, missing verdict; then the whole corpus with every count worked out.
 */
import assert from 'node:assert/strict';
import type { HoiRecord } from '../../src/data/record';
import { Taxonomy } from '../../src/data/taxonomy';
import { scoreFaithfulness, type FaithfulnessItem } from '../../src/eval/faithfulness';

const taxonomy = Taxonomy.default();

// Two-person fight: person 0 [10,10,40,90] punches person 1 [50,10,80,90].
const A = '[0.100,0.100,0.400,0.900]';
const B = '[0.500,0.100,0.800,0.900]';
const fight: HoiRecord = {
  id: 'fight',
  image: 'images/fight.png',
  width: 100,
  height: 100,
  objects: [
    { id: 0, category: 'person', box: [10, 10, 40, 90] },
    { id: 1, category: 'person', box: [50, 10, 80, 90] },
  ],
  hois: [{ subject: 0, object: 1, verb: 'punch', anomaly: 'fight', severity: 'medium' }],
  label: 'anomalous',
  conversations: [
    { from: 'human', value: '<image>\nIs anything abnormal in this image? Explain.' },
    { from: 'gpt', value: `Yes, this image is anomalous. The person at ${A} is punching the person at ${B} (fight, medium severity).` },
  ],
};

// One person holding a cup at [35,40,45,50].
const CUP = '[0.350,0.400,0.450,0.500]';
const cup: HoiRecord = {
  id: 'cup',
  image: 'images/cup.png',
  width: 100,
  height: 100,
  objects: [
    { id: 0, category: 'person', box: [10, 10, 40, 90] },
    { id: 1, category: 'cup', box: [35, 40, 45, 50] },
  ],
  hois: [{ subject: 0, object: 1, verb: 'hold', anomaly: null, severity: null }],
  label: 'normal',
  conversations: [
    { from: 'human', value: '<image>\nIs this scene normal or anomalous?' },
    { from: 'gpt', value: `No, this image looks normal. The person at ${A} is holding the cup at ${CUP}.` },
  ],
};

const YES = 'Yes, this image is anomalous.';
const cases = {
  correct: { generated: fight.conversations[1].value, record: fight },
  // actor and victim exchanged
  swapped: { generated: `${YES} The person at ${B} is punching the person at ${A} (fight, medium severity).`, record: fight },
  wrongVerb: { generated: `${YES} The person at ${A} is kicking the person at ${B} (fight, medium severity).`, record: fight },
  // victim box [0.500,0.100,0.620,0.900] lies inside B with 0.12 x 0.8 = 0.096 = 0.4 x 0.24 of its area: IoU 0.4
  iou04: { generated: `${YES} The person at ${A} is punching the person at [0.500,0.100,0.620,0.900] (fight, medium severity).`, record: fight },
  // no knife in the record
  knife: { generated: `No, this image looks normal. The person at ${A} is holding the knife at ${CUP}.`, record: cup },
  noVerdict: { generated: `The person at ${A} is holding the cup at ${CUP}.`, record: cup },
} satisfies Record<string, FaithfulnessItem>;

const score = (items: FaithfulnessItem[]) => scoreFaithfulness(items, taxonomy);

describe('faithfulness', () => {
  it('a correct explanation scores 1 everywhere', () => {
    const m = score([cases.correct]);
    assert.equal(m.verdict_accuracy, 1);
    assert.equal(m.triplet_precision, 1);
    assert.equal(m.triplet_recall, 1);
    assert.equal(m.triplet_f1, 1);
    assert.equal(m.hallucination_rate, 0);
    assert.equal(m.attribution_accuracy, 1);
    assert.equal(m.counts.attribution_considered, 1);
  });

  it('a swapped subject in a two-person fight: no match, wrong attribution', () => {
    const m = score([cases.swapped]);
    assert.equal(m.verdict_accuracy, 1);
    assert.equal(m.counts.matched_triplets, 0);
    assert.equal(m.triplet_precision, 0);
    assert.equal(m.attribution_accuracy, 0);
    assert.equal(m.counts.attribution_considered, 1);
  });

  it('a wrong verb: no match, and not considered for attribution', () => {
    const m = score([cases.wrongVerb]);
    assert.deepEqual([m.counts.generated_triplets, m.counts.matched_triplets, m.triplet_recall], [1, 0, 0]);
    assert.equal(m.counts.attribution_considered, 0);
    assert.ok(Number.isNaN(m.attribution_accuracy));
  });

  it('an object box at IoU 0.4 does not match, 0.6 does; the actor is still right', () => {
    const m = score([cases.iou04]);
    assert.equal(m.counts.matched_triplets, 0);
    assert.equal(m.attribution_accuracy, 1);
    // [0.500,0.100,0.680,0.900]: 0.18 x 0.8 / 0.24 = 0.6
    const ok = score([{ ...cases.iou04, generated: cases.iou04.generated.replace('0.620', '0.680') }]);
    assert.equal(ok.counts.matched_triplets, 1);
  });

  it('a hallucinated knife: an object mention absent from the record', () => {
    const m = score([cases.knife]);
    assert.equal(m.verdict_accuracy, 1);
    assert.equal(m.hallucination_rate, 1);
    assert.equal(m.counts.matched_triplets, 0); // hold knife is not hold cup
    // a person object counts as a mention too, and the fight record has persons
    assert.equal(score([cases.correct, cases.knife]).hallucination_rate, 0.5);
  });

  it('a missing verdict counts as wrong; its triplets still count', () => {
    const m = score([cases.noVerdict]);
    assert.equal(m.verdict_accuracy, 0);
    assert.equal(m.counts.verdict_missing, 1);
    assert.equal(m.triplet_f1, 1);
  });

  it('the corpus: micro averages with every count worked out', () => {
    // verdicts: all right except noVerdict -> 5/6
    // generated 6 (one each), reference 6 (one per record text); matched: correct, noVerdict -> 2
    // P = R = 2/6, F1 = 1/3; mentions 6, hallucinated 1 (knife) -> 1/6
    // attribution (fight record only, 2 persons): correct ok, swapped wrong, iou04 ok; wrongVerb not considered -> 2/3
    const m = score(Object.values(cases));
    assert.deepEqual(m.counts, {
      items: 6,
      verdict_correct: 5,
      verdict_missing: 1,
      generated_triplets: 6,
      reference_triplets: 6,
      matched_triplets: 2,
      object_mentions: 6,
      hallucinated_mentions: 1,
      attribution_considered: 3,
      attribution_correct: 2,
    });
    assert.equal(m.verdict_accuracy, 5 / 6);
    assert.equal(m.triplet_precision, 2 / 6);
    assert.equal(m.triplet_recall, 2 / 6);
    assert.ok(Math.abs(m.triplet_f1 - 1 / 3) < 1e-12);
    assert.equal(m.hallucination_rate, 1 / 6);
    assert.equal(m.attribution_accuracy, 2 / 3);
  });

  it('attribution skips records with one person', () => {
    // a lone person stabbing with a knife: there is nobody to confuse the actor with
    const KNIFE = '[0.400,0.400,0.500,0.450]';
    const stab: HoiRecord = {
      ...fight,
      objects: [fight.objects[0], { id: 1, category: 'knife', box: [40, 40, 50, 45] }],
      hois: [{ subject: 0, object: 1, verb: 'stab', anomaly: 'armed_assault', severity: 'high' }],
      conversations: [fight.conversations[0], { from: 'gpt', value: `${YES} The person at ${A} is stabbing someone with the knife at ${KNIFE} (armed assault, high severity).` }],
    };
    const m = score([{ generated: stab.conversations[1].value, record: stab }]);
    assert.equal(m.counts.matched_triplets, 1);
    assert.equal(m.counts.attribution_considered, 0);
    assert.ok(Number.isNaN(m.attribution_accuracy));
  });

  it('matches one-to-one: a repeated triplet matches once', () => {
    const twice = `${YES} The person at ${A} is punching the person at ${B} (fight, medium severity). The person at ${A} throws a punch at the person at ${B} (fight, medium severity).`;
    const m = score([{ generated: twice, record: fight }]);
    assert.deepEqual([m.counts.generated_triplets, m.counts.matched_triplets], [2, 1]);
    assert.equal(m.triplet_precision, 0.5);
    assert.equal(m.triplet_recall, 1);
  });

  it('empty sides: nothing said where nothing is to say is 1, nothing said where something is is 0', () => {
    const empty: HoiRecord = { ...cup, objects: [cup.objects[0]], hois: [], conversations: [cup.conversations[0], { from: 'gpt', value: 'No, this image looks normal. No interactions.' }] };
    const quiet = score([{ generated: 'No, this image looks normal.', record: empty }]);
    assert.deepEqual([quiet.triplet_precision, quiet.triplet_recall, quiet.triplet_f1, quiet.hallucination_rate], [1, 1, 1, 0]);
    const silent = score([{ generated: 'No, this image looks normal.', record: cup }]);
    assert.deepEqual([silent.triplet_precision, silent.triplet_recall, silent.triplet_f1], [0, 0, 0]);
  });
});
