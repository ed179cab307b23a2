import assert from 'node:assert/strict';
import { Box, HoiRecord, boxIou } from '../../src/data/record';
import { ConfigError, DataError } from '../../src/errors';
import {
  HoiDetection,
  HoiGroundTruth,
  VOC07_RECALL_THRESHOLDS,
  groundTruthFromRecords,
  hoiMap,
  tripletCounts,
  voc11PointAp,
} from '../../src/eval/hoi_map';

const S: Box = [0, 0, 10, 10]; // a subject box
const O: Box = [20, 0, 30, 10]; // an object box
const THIRD: Box = [5, 0, 15, 10]; // IoU with S: 50 / 150 = 1/3

function gt(imageId: string, verb = 'hold', objectCategory = 'cup', subjectBox: Box = S, objectBox: Box = O): HoiGroundTruth {
  return { imageId, verb, objectCategory, subjectBox, objectBox };
}

function det(
  imageId: string,
  score: number,
  verb = 'hold',
  objectCategory = 'cup',
  subjectBox: Box = S,
  objectBox: Box = O,
): HoiDetection {
  return { imageId, verb, objectCategory, subjectBox, objectBox, score };
}

/** The only category's AP. */
function ap1(dets: HoiDetection[], gts: HoiGroundTruth[]): number {
  const r = hoiMap(dets, gts);
  assert.equal(r.perCategory.length, 1);
  return r.perCategory[0].ap;
}

/**
 * The VOC 2007 devkit loop, written out independently: `for t=0:0.1:1; p=max(prec(rec>=t));
 * if isempty(p) p=0; end; ap=ap+p/11; end` with MATLAB's colon values (first half 0 + k*0.1,
 * midpoint (0+1)/2, second half 1 - k*0.1) and the running sum of p/11.
 */
function vocDevkitAp(rec: number[], prec: number[]): number {
  const t: number[] = new Array<number>(11);
  for (let k = 0; k < 5; k++) {
    t[k] = 0 + k * 0.1;
    t[10 - k] = 1 - k * 0.1;
  }
  t[5] = (0 + 1) / 2;
  let ap = 0;
  for (const ti of t) {
    const ps = prec.filter((_, i) => rec[i] >= ti);
    ap += (ps.length === 0 ? 0 : Math.max(...ps)) / 11;
  }
  return ap;
}

describe('eval/hoi_map', () => {
  describe('voc11PointAp', () => {
    it('uses the thresholds MATLAB computes for 0:0.1:1', () => {
      assert.equal(VOC07_RECALL_THRESHOLDS.length, 11);
      for (let k = 0; k <= 10; k++) {
        if (k === 3) continue;
        assert.equal(VOC07_RECALL_THRESHOLDS[k], k / 10, `t[${k}]`);
      }
      // 3 * 0.1 in doubles; 3/10 is the double just below it.
      assert.equal(VOC07_RECALL_THRESHOLDS[3], 0.30000000000000004);
      assert.ok(3 / 10 < VOC07_RECALL_THRESHOLDS[3]);
    });

    it('hand-computed values', () => {
      assert.equal(voc11PointAp([], []), 0);
      assert.equal(voc11PointAp([1], [1]), 1);
      assert.equal(voc11PointAp([1, 1], [1, 0.5]), 1); // TP then duplicate FP
      assert.equal(voc11PointAp([0, 1], [0, 0.5]), 0.5); // FP then TP
      // 10 GT, 7 TPs in a row: rec k/10 at precision 1. The points t = 0 .. 0.7 see precision 1
      // (7/10 reaches t = 0.7: both are the double nearest 0.7), t = 0.8 .. 1 see nothing:
      // AP = 8/11 = 0.7272...  (numpy's arange would put t = 0.7000000000000001 -> 7/11.)
      const rec7 = [1, 2, 3, 4, 5, 6, 7].map((k) => k / 10);
      assert.equal(voc11PointAp(rec7, rec7.map(() => 1)), 8 / 11);
      // 10 GT, 3 TPs: recall 3/10 does not reach t = 0.30000000000000004, so only t = 0, 0.1,
      // 0.2 count: AP = 3/11 (not 4/11).
      assert.equal(voc11PointAp([0.1, 0.2, 3 / 10], [1, 1, 1]), 3 / 11);
      // rec [.1 .2 .3 .3 .4], prec [1 1 1 .75 .8]: t = 0, .1, .2 -> 1; t = .3 (above 3/10) and
      // t = .4 -> only the last point, .8; t >= .5 -> 0. AP = (3 + 1.6) / 11 = 4.6/11.
      assert.ok(Math.abs(voc11PointAp([0.1, 0.2, 0.3, 0.3, 0.4], [1, 1, 1, 0.75, 0.8]) - 4.6 / 11) < 1e-15);
    });

    it('agrees with the VOC 2007 devkit loop', () => {
      const cases: Array<[number[], number[]]> = [
        [[0.5, 0.5, 1], [1, 0.5, 2 / 3]],
        [[0, 0, 0.25, 0.5, 0.75, 0.75], [0, 0, 1 / 3, 0.5, 0.6, 0.5]],
        [[0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.5, 0.6, 0.7], [1, 1, 2 / 3, 0.75, 0.8, 5 / 6, 5 / 7, 0.75, 7 / 9]],
        [[1 / 3, 2 / 3, 2 / 3, 1], [1, 1, 2 / 3, 0.75]],
        [[0.6, 0.6, 0.7], [1, 0.5, 0.6]],
      ];
      for (const [rec, prec] of cases) {
        assert.ok(Math.abs(voc11PointAp(rec, prec) - vocDevkitAp(rec, prec)) < 1e-15, JSON.stringify(rec));
      }
      // By hand, the second case: t=0 -> max(all)=.6; t=.1,.2 -> .6; t=.3..t=.7 -> .6 (rec .75);
      // t >= .8 -> 0. AP = 8 * .6 / 11.
      assert.ok(Math.abs(voc11PointAp(cases[1][0], cases[1][1]) - 4.8 / 11) < 1e-15);
    });

    it('rejects arrays of different length', () => {
      assert.throws(() => voc11PointAp([0.5], []), /differ in length/);
    });
  });

  describe('hoiMap', () => {
    it('perfect predictions: AP 1 in every category, mAP 1', () => {
      const gts = [gt('a'), gt('a', 'ride', 'bicycle', [0, 0, 5, 5], [1, 1, 9, 9]), gt('b')];
      const dets = [det('b', 0.3), det('a', 0.9), det('a', 0.6, 'ride', 'bicycle', [0, 0, 5, 5], [1, 1, 9, 9])];
      const r = hoiMap(dets, gts);
      assert.deepEqual(
        r.perCategory.map((c) => [c.verb, c.objectCategory, c.ap, c.numGt, c.numDet, c.recall]),
        [
          ['hold', 'cup', 1, 2, 2, 1],
          ['ride', 'bicycle', 1, 1, 1, 1],
        ],
      );
      assert.equal(r.map, 1);
    });

    it('a duplicate detection of a matched pair is a false positive', () => {
      // TP (.9) then the duplicate (.8): rec [1 1], prec [1 .5]; recall 1 at precision 1 -> AP 1.
      const r = hoiMap([det('a', 0.8), det('a', 0.9)], [gt('a')]);
      assert.equal(r.perCategory[0].ap, 1);
      assert.equal(r.perCategory[0].numDet, 2);
      // A FP scored higher than the TP: rec [0 1], prec [0 .5] -> .5 at every point -> AP 0.5.
      assert.equal(ap1([det('a', 0.9, 'hold', 'cup', THIRD), det('a', 0.8)], [gt('a')]), 0.5);
    });

    it('matches against all pairs of the image, matched ones included (as the official code)', () => {
      // G1 = (S, O), G2 = ([1,0,11,10], O); two detections exactly on G1. The second one's best
      // pair is G1 (min IoU 1 > 90/110 for G2), already matched -> FP, although G2 is unmatched
      // and overlaps it by 0.82. rec [.5 .5], prec [1 .5]: t = 0 .. .5 -> 1, t > .5 -> 0:
      // AP = 6/11 (matching only unmatched pairs would give rec [.5 1] -> AP 1).
      const gts = [gt('a'), gt('a', 'hold', 'cup', [1, 0, 11, 10])];
      const r = hoiMap([det('a', 0.9), det('a', 0.8)], gts);
      assert.equal(r.perCategory[0].ap, 6 / 11);
      assert.equal(r.perCategory[0].recall, 0.5);
      // Two identical GT rows: the argmax takes the first on a tie, so the second can never be
      // matched: again TP, FP -> 6/11.
      assert.equal(ap1([det('a', 0.9), det('a', 0.8)], [gt('a'), gt('a')]), 6 / 11);
    });

    it('IoU below the threshold on the subject or on the object is a false positive', () => {
      // dets: subject at IoU 1/3 (.9), object at IoU 1/3 (.8), exact (.7): tp [0 0 1],
      // rec [0 0 1], prec [0 0 1/3] -> 1/3 at every point.
      const dets = [det('a', 0.9, 'hold', 'cup', THIRD, O), det('a', 0.8, 'hold', 'cup', S, [25, 0, 35, 10]), det('a', 0.7)];
      assert.ok(Math.abs(ap1(dets, [gt('a')]) - 1 / 3) < 1e-15);
    });

    it('uses min(IoU subject, IoU object)', () => {
      // subject exact (IoU 1) but object at 1/3: min 1/3 -> FP, AP 0, recall 0.
      const r = hoiMap([det('a', 0.9, 'hold', 'cup', S, [25, 0, 35, 10])], [gt('a')]);
      assert.deepEqual([r.perCategory[0].ap, r.perCategory[0].recall], [0, 0]);
      // subject IoU 60/100 = .6, object IoU 90/110: min .6 >= .5 -> TP, AP 1.
      assert.equal(ap1([det('a', 0.9, 'hold', 'cup', [0, 0, 10, 6], [21, 0, 31, 10])], [gt('a')]), 1);
    });

    it('computes IoU on continuous coordinates', () => {
      assert.equal(boxIou([0, 0, 10, 10], [5, 0, 15, 10]), 1 / 3);
      // [0,0,10,5] vs [0,0,10,10]: 50/100 = 0.5 exactly -> TP (>=).
      assert.equal(ap1([det('a', 1, 'hold', 'cup', [0, 0, 10, 5])], [gt('a')]), 1);
      // [0,0,10,4.5]: 45/100 -> FP. (The MATLAB +1 convention would give 11*5.5/121 = 0.5, a TP.)
      assert.equal(ap1([det('a', 1, 'hold', 'cup', [0, 0, 10, 4.5])], [gt('a')]), 0);
    });

    it('worked example: 10 GT, 9 detections', () => {
      // One GT per image i0..i9; FPs sit in image 'x' (no GT there). Ranked:
      //   TP TP FP TP TP TP FP TP TP
      //   rec  .1 .2 .2  .3  .4  .5  .5  .6  .7
      //   prec 1  1  2/3 3/4 4/5 5/6 5/7 6/8 7/9
      // t = 0, .1, .2 -> 1; t = .3 (0.30000000000000004: rec 3/10 falls short), .4, .5 -> 5/6;
      // t = .6, .7 -> max(6/8, 7/9) = 7/9; t >= .8 -> 0.
      // AP = (3 + 3 * 5/6 + 2 * 7/9) / 11 = (54 + 45 + 28) / 18 / 11 = 127/198 = 0.6414...
      const gts = Array.from({ length: 10 }, (_, k) => gt(`i${k}`));
      const pattern = 'TTFTTTFTT';
      let next = 0;
      const dets = [...pattern].map((c, i) => det(c === 'T' ? `i${next++}` : 'x', 1 - i / 20));
      const r = hoiMap(dets.reverse(), gts); // input order is irrelevant with distinct scores
      assert.ok(Math.abs(r.perCategory[0].ap - 127 / 198) < 1e-15);
      assert.equal(r.perCategory[0].recall, 7 / 10);
      assert.equal(r.perCategory[0].numDet, 9);
      // Seven exact detections only: recall 7/10 at precision 1 -> 8/11 = 0.7272...
      assert.equal(ap1(gts.slice(0, 7).map((g, k) => det(g.imageId, 1 - k / 10)), gts), 8 / 11);
    });

    it('ties in score keep input order', () => {
      const fp = det('b', 0.5); // image b has no GT
      const tp = det('a', 0.5);
      // FP first: prec [0 .5] at rec [0 1] -> 0.5; TP first: rec 1 at precision 1 -> 1.
      assert.equal(ap1([fp, tp], [gt('a')]), 0.5);
      assert.equal(ap1([tp, fp], [gt('a')]), 1);
    });

    it('a detection in an image without GT of its category is a false positive', () => {
      // image b holds GT of another category only; its detection (.9) is a FP, then the TP.
      const gts = [gt('a'), gt('b', 'ride', 'bicycle')];
      const r = hoiMap([det('b', 0.9), det('a', 0.8)], gts);
      assert.equal(r.perCategory.find((c) => c.verb === 'hold')!.ap, 0.5);
    });

    it('a category with GT and no detection counts 0; categories absent from GT are ignored', () => {
      const gts = [gt('a'), gt('a', 'ride', 'bicycle')];
      const dets = [det('a', 0.9)];
      const r = hoiMap(dets, gts);
      assert.deepEqual(r.perCategory[1], {
        verb: 'ride',
        objectCategory: 'bicycle',
        ap: 0,
        numGt: 1,
        numDet: 0,
        rare: false,
        recall: 0,
      });
      assert.equal(r.map, 0.5);
      // Detections of (ride, horse), which has no GT, change nothing.
      const r2 = hoiMap([...dets, det('a', 0.99, 'ride', 'horse'), det('c', 0.1, 'ride', 'horse')], gts);
      assert.deepEqual(r2, r);
      // No GT at all: nothing to average.
      assert.ok(Number.isNaN(hoiMap(dets, []).map));
    });

    it('splits rare / non-rare by the training counts', () => {
      // hold cup AP 1 (3 training instances: rare), ride bicycle AP 0 (10: non-rare, the
      // threshold is strict), kick ball AP 0.5 (missing: 0, rare).
      const gts = [gt('a'), gt('a', 'ride', 'bicycle'), gt('a', 'kick', 'ball')];
      const dets = [det('a', 0.9), det('b', 0.9, 'kick', 'ball'), det('a', 0.8, 'kick', 'ball')];
      const trainCounts = new Map([
        ['hold cup', 3],
        ['ride bicycle', 10],
      ]);
      const r = hoiMap(dets, gts, { trainCounts });
      assert.deepEqual(
        r.perCategory.map((c) => [c.verb, c.ap, c.rare]),
        [
          ['hold', 1, true],
          ['kick', 0.5, true],
          ['ride', 0, false],
        ],
      );
      assert.equal(r.map, 0.5);
      assert.equal(r.mapRare, 0.75);
      assert.equal(r.mapNonRare, 0);
      // rareThreshold 11: ride bicycle becomes rare too, the non-rare set is empty -> NaN.
      const r11 = hoiMap(dets, gts, { trainCounts, rareThreshold: 11 });
      assert.equal(r11.mapRare, 0.5);
      assert.ok(Number.isNaN(r11.mapNonRare));
      // Without training counts nothing is rare.
      const none = hoiMap(dets, gts);
      assert.ok(Number.isNaN(none.mapRare));
      assert.equal(none.mapNonRare, 0.5);
    });

    it('iouThreshold option', () => {
      // subject IoU 1/3: a FP at 0.5, a TP at 0.3.
      const dets = [det('a', 0.9, 'hold', 'cup', THIRD)];
      assert.equal(hoiMap(dets, [gt('a')], { iouThreshold: 0.3 }).map, 1);
      assert.equal(hoiMap(dets, [gt('a')]).map, 0);
    });

    it('rejects bad scores, boxes and options', () => {
      assert.throws(() => hoiMap([det('a', NaN)], [gt('a')]), (e: unknown) => e instanceof DataError && /dets field '\[0\]\.score'/.test(e.message));
      assert.throws(() => hoiMap([], [gt('a', 'hold', 'cup', [0, 0, 1] as unknown as Box)]), DataError);
      assert.throws(() => hoiMap([], [gt('a')], { iouThreshold: 0 }), ConfigError);
    });
  });

  describe('groundTruthFromRecords / tripletCounts', () => {
    function record(id: string, hois: Array<[number, number, string]>): HoiRecord {
      return {
        id,
        image: `images/${id}.png`,
        width: 100,
        height: 100,
        objects: [
          { id: 1, category: 'person', box: [0, 0, 10, 10] },
          { id: 2, category: 'cup', box: [20, 0, 30, 10] },
          { id: 3, category: 'person', box: [40, 0, 50, 10] },
          { id: 4, category: 'cup', box: [20, 0, 30, 10] }, // same box as 2
        ],
        hois: hois.map(([subject, object, verb]) => ({ subject, object, verb, anomaly: null, severity: null })),
        label: 'normal',
        conversations: [],
      };
    }

    it('one GT per HOI, duplicates collapsed', () => {
      const r = record('r1', [
        [1, 2, 'hold'],
        [1, 2, 'hold'], // the same HOI twice
        [1, 4, 'hold'], // another object id, identical boxes
        [1, 2, 'drink_with'],
        [3, 1, 'look_at'],
      ]);
      assert.deepEqual(groundTruthFromRecords([r]), [
        { imageId: 'r1', verb: 'hold', objectCategory: 'cup', subjectBox: [0, 0, 10, 10], objectBox: [20, 0, 30, 10] },
        { imageId: 'r1', verb: 'drink_with', objectCategory: 'cup', subjectBox: [0, 0, 10, 10], objectBox: [20, 0, 30, 10] },
        { imageId: 'r1', verb: 'look_at', objectCategory: 'person', subjectBox: [40, 0, 50, 10], objectBox: [0, 0, 10, 10] },
      ]);
    });

    it('counts triplets over records', () => {
      const counts = tripletCounts([record('r1', [[1, 2, 'hold'], [1, 4, 'hold'], [3, 2, 'hold']]), record('r2', [[1, 2, 'hold']])]);
      assert.deepEqual([...counts.entries()], [['hold cup', 3]]);
    });

    it('rejects an HOI that names a missing object', () => {
      assert.throws(
        () => groundTruthFromRecords([record('r9', [[1, 7, 'hold']])]),
        (e: unknown) => e instanceof DataError && /record 'r9' field 'hois\[0\]\.object'.*found 7/.test(e.message),
      );
    });
  });
});
