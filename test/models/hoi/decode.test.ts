/**
 * Point-HOI decoding: perfect maps built from the targets decode back to every ground-truth
 * triplet (boxes within 1e-3 px); peaks, matching limits, scores, NMS, config, anomaly score.
 */
import { strict as assert } from 'node:assert';
import type { Box, HoiRecord } from '../../../src/data/record';
import { Taxonomy } from '../../../src/data/taxonomy';
import { ConfigError, ShapeError } from '../../../src/errors';
import {
  DEFAULT_DECODE_CONFIG, DecodeLabels, Triplet, annotateTriplets, anomalyScore, compatibleCategories, decodeObjects,
  decodePointHoi, decodeTriplets, findPeaks, imageMaps, parseDecodeConfig, tripletNms, weaponScore,
} from '../../../src/models/hoi/decode';
import { buildTargets, oracleMaps } from '../../../src/models/hoi/targets';
import type { PointHoiMaps } from '../../../src/models/hoi/types';

function record(id: string, objects: [string, Box][], hois: [number, string, number][]): HoiRecord {
  return {
    id, image: `images/${id}.png`, width: 128, height: 128,
    objects: objects.map(([category, box], i) => ({ id: i, category, box })),
    hois: hois.map(([subject, verb, object]) => ({ subject, verb, object, anomaly: null, severity: null })),
    label: 'normal', conversations: [],
  };
}

const CATS = ['person', 'knife', 'ball', 'gun'];
const VERBS = ['stab', 'hold', 'kick', 'punch'];
const OPTS = { inputSize: 128, stride: 4, categories: CATS, verbs: VERBS, maxObjects: 8, maxInteractions: 8 };

const RECORDS: HoiRecord[] = [
  // A stabs B (the victim is a person object) with the knife A holds: stab knife and hold knife share
  // their interaction cell (same pair), on different verb channels
  record('stab', [['person', [10, 20, 40, 100]], ['person', [60, 24, 92, 104]], ['knife', [38, 50, 50, 62]]],
    [[0, 'stab', 1], [0, 'stab', 2], [0, 'hold', 2]]),
  // kick ball vs kick person: A kicks the ball, C kicks (and punches) A
  record('kick', [['person', [8, 30, 36, 110]], ['ball', [40, 96, 52, 108]], ['person', [70, 20, 100, 110]]],
    [[0, 'kick', 1], [2, 'kick', 0], [2, 'punch', 0]]),
  // one interaction among distractors: a bystander and a lone ball
  record('gun', [['person', [4, 4, 30, 70]], ['gun', [28, 30, 40, 38]], ['person', [90, 50, 120, 126]], ['ball', [60, 100, 72, 112]]],
    [[0, 'hold', 1]]),
  // two people, each holding a ball; the balls are of one category and near each other
  record('balls', [['person', [0, 10, 40, 120]], ['ball', [36, 60, 52, 76]], ['person', [84, 10, 124, 120]], ['ball', [64, 60, 80, 76]]],
    [[0, 'hold', 1], [2, 'hold', 3]]),
];
const TARGETS = buildTargets(RECORDS, OPTS);
const LABELS: DecodeLabels = { categories: CATS, verbs: VERBS, stride: 4, compatible: compatibleCategories(RECORDS) };

function maxBoxDiff(a: Box, b: Box): number {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
}

/** Copies of image b's oracle maps, for edits. */
function maps(b: number): PointHoiMaps {
  return oracleMaps(TARGETS, b);
}

function cell(b: number, box: Box): number {
  // the integer centre cell on the 32 x 32 grid
  const x = Math.floor((box[0] + box[2]) / 8), y = Math.floor((box[1] + box[3]) / 8);
  return y * 32 + x;
}

describe('models/hoi/decode', () => {
  it('compatibleCategories collects the training pairs', () => {
    const c = compatibleCategories(RECORDS);
    assert.deepEqual([...c.keys()].sort(), ['hold', 'kick', 'punch', 'stab']);
    assert.deepEqual([...c.get('stab')!].sort(), ['knife', 'person']);
    assert.deepEqual([...c.get('kick')!].sort(), ['ball', 'person']);
    assert.deepEqual([...c.get('hold')!].sort(), ['ball', 'gun', 'knife']);
  });

  it('decodes perfect maps back to every ground-truth triplet, boxes within 1e-3 px', () => {
    RECORDS.forEach((rec, b) => {
      const { objects, triplets } = decodePointHoi(maps(b), LABELS);
      // every object once, with its box and score 1
      assert.equal(objects.length, rec.objects.length, `${rec.id}: objects`);
      for (const o of rec.objects) {
        const hit = objects.filter((d) => d.category === o.category && maxBoxDiff(d.box, o.box) < 1e-3);
        assert.equal(hit.length, 1, `${rec.id}: object ${o.id} (${o.category}) found ${hit.length} times`);
        assert.equal(hit[0].score, 1);
      }
      // exactly the ground-truth triplets
      assert.equal(triplets.length, rec.hois.length, `${rec.id}: ${JSON.stringify(triplets.map((t) => [t.verb, t.objectCategory]))}`);
      for (const h of rec.hois) {
        const sub = rec.objects[h.subject], obj = rec.objects[h.object];
        const hit = triplets.filter((t) => t.verb === h.verb && t.objectCategory === obj.category &&
          maxBoxDiff(t.subjectBox, sub.box) < 1e-3 && maxBoxDiff(t.objectBox, obj.box) < 1e-3);
        assert.equal(hit.length, 1, `${rec.id}: (${h.subject} ${h.verb} ${h.object}) found ${hit.length} times`);
        assert.deepEqual([hit[0].score, hit[0].interactionScore, hit[0].subjectScore, hit[0].objectScore], [1, 1, 1, 1]);
        // the interaction point is the continuous midpoint of the two centres, in input pixels
        const mid = [(sub.box[0] + sub.box[2] + obj.box[0] + obj.box[2]) / 4, (sub.box[1] + sub.box[3] + obj.box[1] + obj.box[3]) / 4];
        assert.ok(Math.abs(hit[0].interactionPoint[0] - mid[0]) < 1e-3 && Math.abs(hit[0].interactionPoint[1] - mid[1]) < 1e-3);
      }
    });
  });

  it('kick ball vs kick person: the object category comes from the matched detection', () => {
    const t = decodeTriplets(maps(1), LABELS);
    const kicks = t.filter((x) => x.verb === 'kick').map((x) => x.objectCategory).sort();
    assert.deepEqual(kicks, ['ball', 'person']);
    const kickPerson = t.find((x) => x.verb === 'kick' && x.objectCategory === 'person')!;
    assert.deepEqual(kickPerson.subjectBox, [70, 20, 100, 110]); // C, not the nearer-to-the-point A
    assert.deepEqual(kickPerson.objectBox, [8, 30, 36, 110]);
  });

  it('scores a triplet as interaction x subject x object and applies the thresholds', () => {
    const m = maps(2);
    const [person, gun] = [cell(2, [4, 4, 30, 70]), cell(2, [28, 30, 40, 38])];
    m.objectHeatmap[person * 4 + 0] = 0.8;
    m.objectHeatmap[gun * 4 + 3] = 0.5;
    const ip = TARGETS.interactionIndex[2 * 8 + 0];
    m.interactionHeatmap[ip * 4 + 1] = 0.9;
    const [t] = decodeTriplets(m, LABELS);
    assert.deepEqual([t.interactionScore, t.subjectScore, t.objectScore].map((v) => Math.fround(v)), [0.9, 0.8, 0.5].map(Math.fround));
    assert.ok(Math.abs(t.score - 0.36) < 1e-6, `score ${t.score}`);
    assert.equal(decodeTriplets(m, LABELS, parseDecodeConfig({ score_threshold: 0.37 })).length, 0);
    assert.equal(decodeTriplets(m, LABELS, parseDecodeConfig({ score_threshold: 0.35 })).length, 1);
    // below the interaction threshold the point is not a candidate at all
    assert.equal(decodeTriplets(m, LABELS, parseDecodeConfig({ interaction_threshold: 0.95 })).length, 0);
    // the subject below the object threshold: no person to match
    assert.equal(decodeTriplets(m, LABELS, parseDecodeConfig({ object_threshold: 0.85 })).length, 0);
  });

  it('matches within match_distance x the longer side of the detection, else drops the point', () => {
    // gun 12 x 8 px = 3 x 2 cells: limit max(1, 0.5 x 3) = 1.5 cells from its centre
    const ip = TARGETS.interactionIndex[2 * 8 + 0];
    const shifted = (dx: number) => {
      const m = maps(2);
      m.displacement[4 * ip + 2] += dx;
      return decodeTriplets(m, LABELS);
    };
    const near = shifted(1.4);
    assert.equal(near.length, 1);
    assert.deepEqual(near[0].objectBox, [28, 30, 40, 38]); // the detection's box, not the prediction
    assert.equal(shifted(1.6).length, 0); // nothing compatible within reach (the ball is 8 cells away)
    const m = maps(2);
    m.displacement[4 * ip + 2] += 1.6;
    assert.equal(decodeTriplets(m, LABELS, parseDecodeConfig({ match_distance: 0.6 })).length, 1); // limit 1.8
    // the subject side too: the person is 26 x 66 px = 16.5 cells long, limit 8.25
    const s = maps(2);
    s.displacement[4 * ip + 1] += 8;
    assert.equal(decodeTriplets(s, LABELS).length, 1);
    s.displacement[4 * ip + 1] += 0.5;
    assert.equal(decodeTriplets(s, LABELS).length, 0);
  });

  it('pair_verbs all: a pair is also scored for other compatible verbs at its peak cell', () => {
    // image 3: A holds ball 1. The kick heatmap reads 0.4 at the hold cell and 0.6 one cell right,
    // so the hold cell is no kick peak; the kick peak's own displacement (0) reaches no ball
    const ip = TARGETS.interactionIndex[3 * 8 + 0];
    const m = maps(3);
    m.interactionHeatmap[ip * 4 + 2] = 0.4;
    m.interactionHeatmap[(ip + 1) * 4 + 2] = 0.6;
    m.interactionHeatmap[ip * 4 + 0] = 0.9; // stab: 0.9 but never seen with a ball, so not scored
    const verbsOf = (cfg: object) => decodeTriplets(m, LABELS, parseDecodeConfig(cfg))
      .filter((t) => t.subjectBox[0] === 0).map((t) => `${t.verb} ${t.objectCategory} ${t.score.toFixed(3)}`);
    assert.deepEqual(verbsOf({ pair_verbs: 'peak' }), ['hold ball 1.000']);
    assert.deepEqual(verbsOf({}), ['hold ball 1.000', 'kick ball 0.400']);
    // below the interaction threshold the extra verb is not reported
    assert.deepEqual(verbsOf({ interaction_threshold: 0.5 }), ['hold ball 1.000']);
  });

  it('object_candidates: the N nearest compatible detections, scores decayed by rank', () => {
    // image 3 with match_distance 3 (a 4-cell ball reaches 12 cells): A's hold point reaches both
    // balls, ball 1 (its own, 0 cells) and ball 2 (7 cells)
    const pairs = (cfg: object) => decodeTriplets(maps(3), LABELS, parseDecodeConfig({ match_distance: 3, ...cfg }))
      .filter((t) => t.subjectBox[0] === 0).map((t) => `${t.objectBox[0]} ${t.score}`);
    assert.deepEqual(pairs({ object_candidates: 1 }), ['36 1']);
    assert.deepEqual(pairs({}), ['36 1', '64 0.5']);
    assert.deepEqual(pairs({ candidate_decay: 0.25 }), ['36 1', '64 0.25']);
    // the default limit (2 cells) keeps ball 2 out
    assert.deepEqual(decodeTriplets(maps(3), LABELS).filter((t) => t.subjectBox[0] === 0).map((t) => t.objectBox[0]), [36]);
  });

  it('a verb without trained categories, or no other person, gives no triplet', () => {
    const noHold: DecodeLabels = { ...LABELS, compatible: new Map([...LABELS.compatible].filter(([v]) => v !== 'hold')) };
    assert.equal(decodeTriplets(maps(2), noHold).length, 0);
    // stab person with the victim removed from the object heatmap: the subject cannot be its own object
    const m = maps(0);
    const victim = cell(0, [60, 24, 92, 104]);
    for (let y = -3; y <= 3; y++) for (let x = -3; x <= 3; x++) m.objectHeatmap[(victim + y * 32 + x) * 4 + 0] = 0;
    // and the stab-person point predicts its object where its subject is: A may not be both
    const ip = TARGETS.interactionIndex[0 * 8 + 0];
    m.displacement[4 * ip + 2] = m.displacement[4 * ip + 0];
    m.displacement[4 * ip + 3] = m.displacement[4 * ip + 1];
    const t = decodeTriplets(m, LABELS);
    assert.deepEqual(t.map((x) => `${x.verb} ${x.objectCategory}`).sort(), ['hold knife', 'stab knife']);
  });

  it('triplet NMS suppresses a duplicate and keeps a non-overlapping one', () => {
    const mk = (score: number, s: Box, o: Box, verb = 'stab', objectCategory = 'knife'): Triplet => ({
      subjectBox: s, objectBox: o, subjectScore: 1, objectScore: 1, interactionScore: score, score, verb, objectCategory,
      interactionPoint: [0, 0],
    });
    const a = mk(0.9, [0, 0, 10, 20], [10, 10, 14, 14]);
    const dup = mk(0.8, [1, 0, 11, 20], [10, 10, 14, 15]); // IoUs 0.818 and 0.8
    const far = mk(0.7, [50, 0, 60, 20], [60, 10, 64, 14]);
    const otherVerb = mk(0.6, [0, 0, 10, 20], [10, 10, 14, 14], 'hold');
    const halfDup = mk(0.5, [1, 0, 11, 20], [30, 30, 34, 34]); // subject overlaps, object does not
    assert.deepEqual(tripletNms([a, dup, far, otherVerb, halfDup], 0.5), [a, far, otherVerb, halfDup]);
    assert.deepEqual(tripletNms([a, dup], 0.85), [a, dup]); // IoU 0.8 is not above 0.85

    // end to end: a second, weaker `hold` peak far from the first that points at the same pair
    const m = maps(2);
    const ip = TARGETS.interactionIndex[2 * 8 + 0];
    const other = ip + 10 * 32 + 10;
    m.interactionHeatmap[other * 4 + 1] = 0.7;
    for (let j = 0; j < 4; j++) m.displacement[4 * other + j] = m.displacement[4 * ip + j] - 10; // 10 cells right and down
    const t = decodeTriplets(m, LABELS);
    assert.equal(t.length, 1);
    assert.equal(t[0].score, 1);
    assert.equal(decodeTriplets(m, LABELS, parseDecodeConfig({ nms_threshold: 1 })).length, 2);
  });

  it('sorts triplets by score and caps them at max_triplets', () => {
    const m = maps(0);
    const stabPerson = TARGETS.interactionIndex[0 * 8 + 0], stabKnife = TARGETS.interactionIndex[0 * 8 + 1];
    // stab person: radius 3 (sigma 7/6), its neighbours at exp(-1 / 2.72) = 0.693 stay below 0.75
    m.interactionHeatmap[stabPerson * 4 + 0] = 0.75;
    m.interactionHeatmap[stabKnife * 4 + 1] = 0.8; // hold knife, on the cell it shares with stab knife
    const t = decodeTriplets(m, LABELS);
    assert.deepEqual(t.map((x) => [x.verb, x.objectCategory, Math.fround(x.score)]), [
      ['stab', 'knife', 1], ['hold', 'knife', Math.fround(0.8)], ['stab', 'person', Math.fround(0.75)],
    ]);
    assert.deepEqual(decodeTriplets(m, LABELS, parseDecodeConfig({ max_triplets: 2 })).map((x) => x.verb), ['stab', 'hold']);
  });

  it('findPeaks: 3x3 max-pool peaks, ties kept, top-K over channels', () => {
    // 3 x 4 grid, 2 channels
    const ch0 = [
      0.1, 0.9, 0.2, 0.0,
      0.3, 0.5, 0.2, 0.6,
      0.1, 0.2, 0.2, 0.6,
    ];
    const ch1 = [
      0.0, 0.0, 0.0, 0.0,
      0.0, 0.0, 0.0, 0.0,
      0.7, 0.0, 0.0, 0.0,
    ];
    const map = new Float32Array(24);
    ch0.forEach((v, i) => (map[2 * i] = v));
    ch1.forEach((v, i) => (map[2 * i + 1] = v));
    const peaks = findPeaks(map, 3, 4, 2, 0.05, 10);
    assert.deepEqual(peaks.map((p) => [p.x, p.y, p.channel, Math.fround(p.score)]), [
      [1, 0, 0, Math.fround(0.9)], [0, 2, 1, Math.fround(0.7)], [3, 1, 0, Math.fround(0.6)], [3, 2, 0, Math.fround(0.6)],
    ]);
    assert.equal(findPeaks(map, 3, 4, 2, 0.05, 2).length, 2);
    assert.equal(findPeaks(map, 3, 4, 2, 0.65, 10).length, 2);
  });

  it('decodeObjects gives boxes in input pixels; weaponScore reads the weapon categories', () => {
    const m = maps(2);
    m.objectHeatmap[cell(2, [28, 30, 40, 38]) * 4 + 3] = 0.75;
    const dets = decodeObjects(m, LABELS);
    assert.deepEqual(dets.map((d) => d.category), ['person', 'person', 'ball', 'gun']);
    const gun = dets[3];
    assert.deepEqual(gun.box, [28, 30, 40, 38]);
    assert.deepEqual(gun.center, [34, 34]);
    assert.equal(weaponScore(dets, Taxonomy.default().weapons), 0.75);
    assert.equal(weaponScore(decodeObjects(maps(1), LABELS), Taxonomy.default().weapons), 0);
    assert.equal(decodeObjects(m, LABELS, parseDecodeConfig({ top_k_objects: 2 })).length, 2);
  });

  it('anomalyScore weighs triplets by the taxonomy; annotateTriplets adds type and severity', () => {
    const tax = Taxonomy.default();
    const mk = (verb: string, objectCategory: string, score: number): Triplet => ({
      subjectBox: [0, 0, 10, 20], objectBox: [10, 10, 14, 14], subjectScore: 1, objectScore: 1, interactionScore: score, score,
      verb, objectCategory, interactionPoint: [0, 0],
    });
    const hold = mk('hold', 'knife', 0.9), stab = mk('stab', 'knife', 0.5), punch = mk('punch', 'person', 0.7);
    assert.deepEqual(anomalyScore([hold], tax), { score: 0, top: null });
    assert.deepEqual(anomalyScore([], tax), { score: 0, top: null });
    const r = anomalyScore([hold, stab, punch], tax);
    // stab knife: 0.5 x 1.0 (high); punch person: 0.7 x 0.6 (medium) = 0.42; hold knife: 0.9 x 0
    assert.equal(r.score, 0.5);
    assert.equal(r.top, stab);
    assert.ok(Math.abs(anomalyScore([hold, punch], tax).score - 0.42) < 1e-12);
    const a = annotateTriplets([hold, stab, punch], tax);
    assert.deepEqual(a.map((x) => [x.verb, x.anomaly, x.severity, x.weight]), [
      ['hold', null, null, 0], ['stab', 'armed_assault', 'high', 1], ['punch', 'fight', 'medium', 0.6],
    ]);
    assert.equal(a[1].anomalyScore, 0.5);
    assert.equal(a[1].subjectBox, stab.subjectBox);
  });

  it('DecodeConfigSchema: defaults, strict keys, ConfigError naming the key', () => {
    assert.deepEqual(
      { ...DEFAULT_DECODE_CONFIG },
      {
        top_k_objects: 100, top_k_interactions: 64, object_threshold: 0.01, interaction_threshold: 0.01, score_threshold: 0,
        nms_threshold: 0.5, max_triplets: 100, match_distance: 0.5, pair_verbs: 'all', object_candidates: 3, candidate_decay: 0.5,
        subject_category: 'person',
      },
    );
    assert.equal(parseDecodeConfig({ top_k_objects: 7 }).top_k_objects, 7);
    assert.throws(() => parseDecodeConfig({ topk: 7 }), (e: unknown) => e instanceof ConfigError && /key 'topk': unknown key/.test(e.message));
    assert.throws(() => parseDecodeConfig({ nms_threshold: 2 }), /key 'nms_threshold'/);
    assert.throws(() => parseDecodeConfig({ top_k_interactions: 1.5 }), /key 'top_k_interactions'/);
  });

  it('rejects maps that do not fit the labels, and slices images out of batch arrays', () => {
    const m = maps(0);
    assert.throws(() => decodePointHoi({ ...m, displacement: new Float32Array(10) }, LABELS), (e: unknown) =>
      e instanceof ShapeError && /map 'displacement' must hold 4096 values for a 32x32 grid, found 10/.test(e.message));
    assert.throws(() => decodePointHoi(m, { ...LABELS, verbs: ['stab'] }), ShapeError);
    // batch arrays of 2 images: image 1 of the batch is RECORDS[1]'s maps
    const m0 = maps(0), m1 = maps(1);
    const cat = (a: Float32Array, b: Float32Array) => {
      const out = new Float32Array(a.length + b.length);
      out.set(a);
      out.set(b, a.length);
      return out;
    };
    const batch = {
      objectHeatmap: cat(m0.objectHeatmap, m1.objectHeatmap), objectSize: cat(m0.objectSize, m1.objectSize),
      objectOffset: cat(m0.objectOffset, m1.objectOffset), interactionHeatmap: cat(m0.interactionHeatmap, m1.interactionHeatmap),
      interactionOffset: cat(m0.interactionOffset, m1.interactionOffset), displacement: cat(m0.displacement, m1.displacement),
    };
    const view = imageMaps(batch, { height: 32, width: 32, numCategories: 4, numVerbs: 4 }, 1);
    assert.deepEqual(decodeTriplets(view, LABELS), decodeTriplets(m1, LABELS));
    assert.throws(() => imageMaps(batch, { height: 32, width: 32, numCategories: 4, numVerbs: 4 }, 2), /no image 2/);
  });
});
