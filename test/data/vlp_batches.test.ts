/**
 * VLP batches: collation (shapes, left-padded instructions, shifted targets, masks, truncation),
 * ground-truth and predicted HOI slots, and the training noise (determinism, drop/spurious rates).
 */
import assert from 'node:assert/strict';
import { initBackend } from '../../src/backend';
import { tf } from '../../src/backend/tf';
import type { HoiRecord } from '../../src/data/record';
import { Rng } from '../../src/data/rng';
import {
  type CollateItem, type CollateSpec, collateArrays, collateVlpBatch, disposeVlpBatch, type HoiSlot, jitterBox, NO_NOISE,
  perturbHoiSlots, predictedHoiSlots, recordHoiSlots, recordObjects, type VlpExample, VlpBatchSource,
} from '../../src/data/vlp_batches';
import { DataError } from '../../src/errors';

const CATEGORIES = ['person', 'knife', 'cup'];
const VERBS = ['hold', 'stab'];
const SPEC: CollateSpec = { numCategories: 3, numVerbs: 2, maxHois: 3, instructionLength: 5, maxResponseLength: 6, padId: 0, bosId: 1, eosId: 2, pointerVocab: null };

const RECORD: HoiRecord = {
  id: 'r1', image: 'images/r1.png', width: 200, height: 100,
  objects: [
    { id: 0, category: 'person', box: [20, 10, 60, 90] },
    { id: 1, category: 'knife', box: [50, 40, 70, 50] },
    { id: 2, category: 'person', box: [100, 0, 200, 100] },
  ],
  hois: [
    { subject: 0, object: 1, verb: 'stab', anomaly: 'assault', severity: 'high' },
    { subject: 2, object: 0, verb: 'hold', anomaly: null, severity: null },
  ],
  label: 'anomalous',
  conversations: [{ from: 'human', value: '<image>\nIs it?' }, { from: 'gpt', value: 'Yes.' }],
};

function slot(subject: number, verb: number, object: number, box: number): HoiSlot {
  return { subject, verb, object, subjectBox: [0.1 * box, 0.1, 0.2 * box, 0.5], objectBox: [0.5, 0.5, 0.6, 0.7] };
}

const visual = (v: number) => new Float32Array(2 * 2 * 3).fill(v);

describe('data/vlp_batches', () => {
  before(async () => {
    await initBackend({ name: 'cpu' });
  });

  it('GT slots: class / verb indices in record order, boxes normalized by the image size', () => {
    const slots = recordHoiSlots(RECORD, CATEGORIES, VERBS);
    assert.deepEqual(slots.map((s) => [s.subject, s.verb, s.object]), [[0, 1, 1], [0, 0, 0]]);
    assert.deepEqual(slots[0].subjectBox, [0.1, 0.1, 0.3, 0.9]);
    assert.deepEqual(slots[0].objectBox, [0.25, 0.4, 0.35, 0.5]);
    assert.deepEqual(recordObjects(RECORD, CATEGORIES).map((o) => o.category), [0, 1, 0]);
    assert.throws(() => recordHoiSlots(RECORD, ['person', 'cup'], VERBS), (e: Error) => e instanceof DataError && /unknown category 'knife'/.test(e.message));
  });

  it('predicted slots: filtered by score, best first, boxes normalized, subject = person', () => {
    const hois = [
      { subject_box: [0, 0, 100, 50] as [number, number, number, number], object_box: [100, 50, 200, 100] as [number, number, number, number], object_category: 'cup', verb: 'hold', score: 0.4 },
      { subject_box: [0, 0, 20, 10] as [number, number, number, number], object_box: [0, 0, 20, 10] as [number, number, number, number], object_category: 'knife', verb: 'stab', score: 0.9 },
      { subject_box: [0, 0, 20, 10] as [number, number, number, number], object_box: [0, 0, 20, 10] as [number, number, number, number], object_category: 'knife', verb: 'hold', score: 0.1 },
    ];
    const slots = predictedHoiSlots(hois, RECORD, CATEGORIES, VERBS, 0.3);
    assert.deepEqual(slots.map((s) => [s.subject, s.verb, s.object]), [[0, 1, 1], [0, 0, 2]]);
    assert.deepEqual(slots[1].subjectBox, [0, 0, 0.5, 0.5]);
    assert.deepEqual(slots[1].objectBox, [0.5, 0.5, 1, 1]);
  });

  it('collation: left-padded instruction, response = [bos, tokens], targets shifted with eos, mask, padding of slots', () => {
    const items: CollateItem[] = [
      { id: 'a', instruction: [7, 8], response: [10, 11, 12], hois: [slot(0, 1, 1, 1)], visual: visual(1) },
      { id: 'b', instruction: [7, 8, 9, 10, 11, 12, 13], response: [20], hois: [slot(0, 0, 2, 2), slot(0, 1, 1, 3), slot(0, 0, 0, 1), slot(0, 0, 0, 4)], visual: visual(2) },
    ];
    const a = collateArrays(items, [2, 2, 3], SPEC);
    assert.equal(a.responseLength, 4); // longest: [bos,10,11,12] -> targets [10,11,12,eos]
    assert.deepEqual([...a.response], [1, 10, 11, 12, /* b */ 1, 20, 0, 0]);
    assert.deepEqual([...a.targets], [10, 11, 12, 2, /* b */ 20, 2, 0, 0]);
    assert.deepEqual([...a.mask], [1, 1, 1, 1, 1, 1, 0, 0]);
    // left padding to 5; a longer instruction keeps its first 5 tokens
    assert.deepEqual([...a.instruction], [0, 0, 0, 7, 8, 7, 8, 9, 10, 11]);
    // slots: pad ids num_categories / num_verbs, zero boxes; more than maxHois are cut
    assert.deepEqual([...a.hoiSubject], [0, 3, 3, 0, 0, 0]);
    assert.deepEqual([...a.hoiVerb], [1, 2, 2, 0, 1, 0]);
    assert.deepEqual([...a.hoiObject], [1, 3, 3, 2, 1, 0]);
    assert.deepEqual([...a.hoiSubjectBox.slice(4, 12)], [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.ok(Math.abs(a.hoiSubjectBox[12] - 0.2) < 1e-7 && Math.abs(a.hoiSubjectBox[14] - 0.4) < 1e-7);
    assert.deepEqual([...a.visual], [...visual(1), ...visual(2)]);
  });

  it('collation: responses longer than maxResponseLength are cut (no eos target then)', () => {
    const items: CollateItem[] = [{ id: 'a', instruction: [], response: [10, 11, 12, 13, 14, 15, 16, 17], hois: [], visual: visual(0) }];
    const a = collateArrays(items, [2, 2, 3], SPEC);
    assert.equal(a.responseLength, 6);
    assert.deepEqual([...a.response], [1, 10, 11, 12, 13, 14]);
    assert.deepEqual([...a.targets], [10, 11, 12, 13, 14, 15]);
    assert.deepEqual([...a.mask], [1, 1, 1, 1, 1, 1]);
    assert.deepEqual([...a.instruction], [0, 0, 0, 0, 0]);
    assert.throws(() => collateArrays([{ ...items[0], visual: new Float32Array(5) }], [2, 2, 3], SPEC), /5 values/);
  });

  it('tensors: shapes and dtypes of VlpInputs; disposing leaves no tensor behind', () => {
    const before = tf.memory().numTensors;
    const items: CollateItem[] = [
      { id: 'a', instruction: [7], response: [10, 11], hois: [slot(0, 1, 1, 1)], visual: visual(1) },
      { id: 'b', instruction: [7], response: [10], hois: [], visual: visual(1) },
    ];
    const b = collateVlpBatch(items, [2, 2, 3], SPEC);
    assert.deepEqual(b.inputs.visual.shape, [2, 2, 2, 3]);
    assert.deepEqual(b.inputs.hoiSubject.shape, [2, 3]);
    assert.equal(b.inputs.hoiVerb.dtype, 'int32');
    assert.deepEqual(b.inputs.hoiObjectBox.shape, [2, 3, 4]);
    assert.deepEqual(b.inputs.instruction.shape, [2, 5]);
    assert.equal(b.inputs.instruction.dtype, 'int32');
    assert.deepEqual(b.response.shape, [2, 3]);
    assert.equal(b.targets.dtype, 'int32');
    assert.equal(b.mask.dtype, 'float32');
    disposeVlpBatch(b);
    assert.equal(tf.memory().numTensors, before);
  });

  it('noise: the same (seed, epoch, image) gives the same slots; another epoch differs; jitter is relative to the box', () => {
    const slots = recordHoiSlots(RECORD, CATEGORIES, VERBS);
    const objects = recordObjects(RECORD, CATEGORIES);
    const noise = { boxJitter: 0.1, dropProb: 0.3, spuriousProb: 0.5, shuffle: true };
    const draw = (epoch: number) => perturbHoiSlots(slots, objects, noise, 2, 0, new Rng(3, 'hoi', epoch, RECORD.id));
    assert.deepEqual(draw(4), draw(4));
    const epochs = Array.from({ length: 8 }, (_, e) => JSON.stringify(draw(e)));
    assert.ok(new Set(epochs).size > 4, 'different epochs draw different noise');
    // jitter std is 10% of the side: over many draws the x1 spread of a 0.2-wide box is ~0.02
    const rng = new Rng(1);
    const xs = Array.from({ length: 4000 }, () => jitterBox([0.4, 0.4, 0.6, 0.9], 0.1, rng)[0]);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    assert.ok(Math.abs(mean - 0.4) < 0.002 && Math.abs(std - 0.02) < 0.002, `x1 mean ${mean} std ${std}`);
    assert.deepEqual(jitterBox([0.4, 0.4, 0.6, 0.9], 0, rng), [0.4, 0.4, 0.6, 0.9]);
    const b = jitterBox([0, 0, 0.01, 1], 1, new Rng(2));
    assert.ok(b[0] >= 0 && b[0] <= b[2] && b[2] <= 1 && b[1] <= b[3], `boxes stay ordered inside 0-1: ${b}`);
  });

  it('noise: drop and spurious rates', () => {
    const slots = recordHoiSlots(RECORD, CATEGORIES, VERBS);
    const objects = recordObjects(RECORD, CATEGORIES);
    const none = perturbHoiSlots(slots, objects, { ...NO_NOISE, dropProb: 1 }, 2, 0, new Rng(0));
    assert.equal(none.length, 0);
    const all = perturbHoiSlots(slots, objects, { ...NO_NOISE, spuriousProb: 1 }, 2, 0, new Rng(0));
    assert.equal(all.length, 3);
    assert.deepEqual(all.slice(0, 2), slots);
    const extra = all[2];
    assert.equal(extra.subject, 0, 'the spurious subject is a person');
    assert.ok(objects.some((o) => o.box.every((v, i) => v === extra.objectBox[i])), 'the spurious object is one of the image objects');
    let kept = 0, spurious = 0, n = 0;
    for (let i = 0; i < 2000; i++) {
      kept += perturbHoiSlots(slots, objects, { ...NO_NOISE, dropProb: 0.3 }, 2, 0, new Rng(9, i)).length;
      spurious += perturbHoiSlots(slots, objects, { ...NO_NOISE, spuriousProb: 0.2 }, 2, 0, new Rng(9, i)).length - slots.length;
      n += slots.length;
    }
    assert.ok(Math.abs(kept / n - 0.7) < 0.03, `kept ${kept / n}`);
    assert.ok(Math.abs(spurious / 2000 - 0.2) < 0.03, `spurious ${spurious / 2000}`);
  });

  it('batch source: shuffled epochs drop the last partial batch and repeat exactly; eval order keeps everything', () => {
    const examples: VlpExample[] = Array.from({ length: 7 }, (_, i) => ({
      id: `e${i}`, instruction: [7], response: [10 + i], hois: recordHoiSlots(RECORD, CATEGORIES, VERBS), objects: recordObjects(RECORD, CATEGORIES),
    }));
    const features = { shape: [2, 2, 3] as [number, number, number], byId: new Map(examples.map((e, i) => [e.id, visual(i)])) };
    const noise = { boxJitter: 0.05, dropProb: 0.2, spuriousProb: 0.2, shuffle: false };
    const common = { batchSize: 3, seed: 1, numVerbs: 2, personCategory: 0 };
    const train = new VlpBatchSource(examples, features, SPEC, { ...common, shuffle: true, noise });
    assert.equal(train.numBatches, 2);
    assert.deepEqual(train.items(2, 1), train.items(2, 1));
    assert.notDeepEqual(train.batchIndices(0), train.batchIndices(1));
    const evalSource = new VlpBatchSource(examples, features, SPEC, { ...common, shuffle: false, noise: NO_NOISE });
    assert.equal(evalSource.numBatches, 3);
    assert.deepEqual(evalSource.batchIndices(0), [[0, 1, 2], [3, 4, 5], [6]]);
    assert.deepEqual(evalSource.items(0, 2)[0].hois, examples[6].hois);
    assert.throws(() => new VlpBatchSource(examples, { ...features, byId: new Map() }, SPEC, { ...common, shuffle: false, noise: NO_NOISE }), /no visual features/);
  });
});
