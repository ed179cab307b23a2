/**
 * Box pointer tokens: a response's boxes matched to record objects, turned into pointer tokens by
 * the slots that hold them (first slot, subject before object; dropped slots keep digits), and
 * decoded back to exactly the response text; generated ids cut at <eos>.
 */
import { strict as assert } from 'node:assert';
import { formatBox, parseBoxes } from '../../../src/data/box_text';
import type { HoiRecord } from '../../../src/data/record';
import { NO_NOISE, perturbHoiSlots, recordHoiSlots, recordObjects } from '../../../src/data/vlp_batches';
import { Rng } from '../../../src/data/rng';
import { citedResponse, decodeWithPointers, explanationText, pointerResponse, pointerTarget, pointerTokenId } from '../../../src/models/vlp/pointer';
import { trainTokenizer, type VlpTokenizer } from '../../../src/models/vlp/tokenizer';

const CATEGORIES = ['person', 'knife'];
const VERBS = ['stab', 'hold'];
const W = 200, H = 100;
const OBJECTS: HoiRecord['objects'] = [
  { id: 0, category: 'person', box: [20, 10, 60, 90] },
  { id: 1, category: 'knife', box: [50, 40, 70, 50] },
  { id: 2, category: 'person', box: [100, 0, 200, 100] },
];
const box = (id: number): string => formatBox(OBJECTS[id].box, W, H);
const TEXT = `Yes, something abnormal is happening in this image. Anomaly (assault, high severity): the person at ${box(0)} is stabbing with the knife at ${box(1)}. The person at ${box(2)} is holding the person at ${box(0)}.`;
const RECORD: HoiRecord = {
  id: 'r1', image: 'images/r1.png', width: W, height: H, objects: OBJECTS,
  hois: [
    { subject: 0, object: 1, verb: 'stab', anomaly: 'assault', severity: 'high' },
    { subject: 2, object: 0, verb: 'hold', anomaly: null, severity: null },
  ],
  label: 'anomalous',
  conversations: [{ from: 'human', value: '<image>\nIs it?' }, { from: 'gpt', value: TEXT }],
};

describe('box pointer tokens', () => {
  let tok: VlpTokenizer;
  before(() => {
    tok = trainTokenizer([TEXT, 'No, nothing abnormal is happening in this image. The person at [0.500,0.250,0.750,0.875] is holding the ball.'], { vocabSize: 300 });
  });
  const V = 300;

  it('ids: V + 2m is slot m subject, V + 2m + 1 its object', () => {
    assert.equal(pointerTokenId(V, 2, 'object'), V + 5);
    assert.deepEqual(pointerTarget(V, V + 5), { slot: 2, role: 'object' });
    assert.deepEqual(pointerTarget(V, V), { slot: 0, role: 'subject' });
    assert.equal(pointerTarget(V, V - 1), null);
  });

  it('citedResponse: boxes matched to the record objects; the pieces decode to the text', () => {
    const objects = recordObjects(RECORD, CATEGORIES);
    const r = citedResponse(tok, TEXT, objects);
    assert.deepEqual(r.citations.map((c) => c.objectId), [0, 1, 2, 0]);
    for (const c of r.citations) assert.equal(tok.decode(r.ids.slice(c.start, c.end)), box(c.objectId));
    assert.equal(tok.decode(r.ids), TEXT);
    // a box no object has stays plain text
    assert.equal(citedResponse(tok, 'at [0.111,0.222,0.333,0.444].', objects).citations.length, 0);
  });

  it('pointerResponse: one token per held citation, first slot and subject first; decodes back to the text', () => {
    const objects = recordObjects(RECORD, CATEGORIES);
    const r = citedResponse(tok, TEXT, objects);
    const slots = recordHoiSlots(RECORD, CATEGORIES, VERBS); // slot 0: 0 stab 1, slot 1: 2 hold 0
    const ids = pointerResponse(r, slots, V);
    assert.deepEqual(ids.filter((t) => t >= V), [V + 0, V + 1, V + 2, V + 0]);
    const boxTokens = r.citations.reduce((n, c) => n + c.end - c.start, 0);
    assert.equal(ids.length, r.ids.length - boxTokens + 4);
    assert.equal(decodeWithPointers(tok, ids, V, slots), TEXT);

    // slot 0 dropped: object 0 is now held by the (new) slot 0 as object, the knife keeps its digits
    const kept = [slots[1]];
    const dropped = pointerResponse(r, kept, V);
    assert.deepEqual(dropped.filter((t) => t >= V), [V + 1, V + 0, V + 1]);
    assert.equal(decodeWithPointers(tok, dropped, V, kept), TEXT);

    // perturbed slots: the decoded text cites the slots' (jittered) boxes, in the dataset's format
    const noisy = perturbHoiSlots(slots, objects, { ...NO_NOISE, boxJitter: 0.1 }, 2, 0, new Rng(1, 'hoi'));
    const text = decodeWithPointers(tok, pointerResponse(r, noisy, V), V, noisy);
    const cited = parseBoxes(text).map((b) => text.slice(b.start, b.end));
    assert.equal(cited.length, 4);
    assert.equal(cited[1], `[${noisy[0].objectBox.map((v) => v.toFixed(3)).join(',')}]`);
  });

  it('explanationText: cut at <eos>, pointers written as boxes, a padding-slot pointer as nothing', () => {
    const slots = recordHoiSlots(RECORD, CATEGORIES, VERBS);
    const at = tok.encode(' at ');
    const ids = [...tok.encode('The person'), ...at, V + 2, tok.eosId, ...tok.encode('ignored')];
    assert.equal(explanationText(tok, ids, tok.eosId, { vocabSize: V, slots }), `The person at ${box(2)}`);
    assert.equal(explanationText(tok, [...tok.encode('x'), ...at, V + 4], tok.eosId, { vocabSize: V, slots }), 'x at');
    assert.equal(explanationText(tok, tok.encode(' plain '), tok.eosId, null), 'plain');
  });
});
