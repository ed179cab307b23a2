/**
 * Point-HOI targets: CenterNet's radius and Gaussian, hand-computed regressions of a 2-object
 * record (grid 16 x 16 at stride 4), errors, tensor upload.
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../../src/backend/tf';
import type { Box, HoiRecord } from '../../../src/data/record';
import { DataError } from '../../../src/errors';
import {
  buildTargets, disposeTargetTensors, gaussianRadius, oracleMaps, splatRadius, targetsToTensors,
} from '../../../src/models/hoi/targets';

function record(id: string, objects: [string, Box][], hois: [number, string, number][]): HoiRecord {
  return {
    id, image: `images/${id}.png`, width: 64, height: 64,
    objects: objects.map(([category, box], i) => ({ id: i, category, box })),
    hois: hois.map(([subject, verb, object]) => ({ subject, verb, object, anomaly: null, severity: null })),
    label: 'normal', conversations: [],
  };
}

const CATS = ['person', 'knife', 'ball'];
const VERBS = ['hold', 'stab'];
const OPTS = { inputSize: 64, stride: 4, categories: CATS, verbs: VERBS, maxObjects: 4, maxInteractions: 3 };

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: expected ${expected} +- ${tol}, found ${actual}`);
}

describe('models/hoi/targets', () => {
  it('gaussianRadius matches CenterNet (min_overlap 0.7) for hand-computed sizes', () => {
    // The third root wins for these boxes: r3 = (b3 + sqrt(b3^2 - 4 a3 c3)) / 2 with a3 = 2.8,
    // b3 = -1.4 (h + w), c3 = -0.3 h w.
    // 10 x 10: (-28 + sqrt(784 + 336)) / 2 = -14 + sqrt(280) = 2.733200530681511
    close(gaussianRadius(10, 10), -14 + Math.sqrt(280), 1e-12, 'r(10, 10)');
    close(gaussianRadius(10, 10), 2.7332005, 1e-7, 'r(10, 10)');
    // h 20, w 5: (-35 + sqrt(1225 + 336)) / 2 = (-35 + 39.509493) / 2
    close(gaussianRadius(20, 5), (-35 + Math.sqrt(1561)) / 2, 1e-12, 'r(20, 5)');
    close(gaussianRadius(20, 5), 2.2547463, 1e-7, 'r(20, 5)');
    // 4 x 4: (-11.2 + sqrt(125.44 + 53.76)) / 2 = 1.0932802...
    close(gaussianRadius(4, 4), 1.0932802, 1e-7, 'r(4, 4)');
    // h 14, w 5: (-26.6 + sqrt(707.56 + 235.2)) / 2 = (-26.6 + 30.704397) / 2
    close(gaussianRadius(14, 5), 2.0521985, 1e-7, 'r(14, 5)');
    // a degenerate box has radius 0
    assert.equal(gaussianRadius(0, 7), 0);
    // the integer radius rounds sizes up first (CenterNet: ceil(h), ceil(w)), then truncates
    assert.equal(splatRadius(9.5, 9.01), 2); // as 10 x 10
    assert.equal(splatRadius(2.75, 1.25), 0); // as 3 x 2: 0.658...
    assert.equal(splatRadius(6, 6), 1); // 1.6399...
  });

  it('draws a Gaussian with peak 1 at the centre cell and symmetric CenterNet falloff', () => {
    // 40 x 40 px at stride 4 = 10 x 10 cells -> radius 2, sigma = 5 / 6, so exp(-d^2 / (2 sigma^2)) = exp(-0.72 d^2)
    const t = buildTargets([record('g', [['ball', [22, 22, 62, 62]]], [])], OPTS);
    const at = (x: number, y: number) => t.objectHeatmap[(y * 16 + x) * 3 + 2];
    assert.equal(at(10, 10), 1); // centre 42 px = 10.5 cells -> cell 10
    for (const [dx, dy, v] of [
      [1, 0, Math.exp(-0.72)], [0, 1, Math.exp(-0.72)], [-1, 0, Math.exp(-0.72)], [0, -1, Math.exp(-0.72)],
      [1, 1, Math.exp(-1.44)], [-1, 1, Math.exp(-1.44)], [2, 0, Math.exp(-2.88)], [0, -2, Math.exp(-2.88)],
      [2, 2, Math.exp(-5.76)], [-2, 1, Math.exp(-3.6)],
    ]) {
      close(at(10 + dx, 10 + dy), v, 1e-7, `cell offset (${dx}, ${dy})`);
    }
    assert.equal(at(13, 10), 0); // outside the radius
    assert.equal(at(7, 10), 0);
    close(at(11, 10), 0.48675226, 1e-7, 'exp(-0.72)');
    // other channels untouched
    assert.equal(t.objectHeatmap[(10 * 16 + 10) * 3 + 0], 0);
    // the splat is the 5 x 5 window of radius 2, its smallest value exp(-5.76) well above eps
    assert.equal([...t.objectHeatmap].filter((v) => v > 0).length, 25);
  });

  it('overlapping splats of one category take the element-wise max', () => {
    // A: 40 x 40 px, radius 2, at cell (10, 10). B: 24 x 24 px = 6 x 6 cells, radius 1 (sigma 0.5:
    // exp(-2 d^2)), at cell (12, 10): centre 50 px = 12.5 cells.
    const t = buildTargets([record('o', [['ball', [22, 22, 62, 62]], ['ball', [38, 30, 62, 54]]], [])], OPTS);
    const at = (x: number, y: number) => t.objectHeatmap[(y * 16 + x) * 3 + 2];
    assert.equal(at(10, 10), 1);
    assert.equal(at(12, 10), 1); // B's peak over A's exp(-2.88)
    close(at(11, 10), Math.exp(-0.72), 1e-7, '(11, 10): A 0.487 > B 0.135');
    close(at(12, 11), Math.exp(-2), 1e-7, '(12, 11): B 0.135 > A exp(-3.6) = 0.027');
    close(at(13, 10), Math.exp(-2), 1e-7, '(13, 10): B only');
    close(at(9, 10), Math.exp(-0.72), 1e-7, '(9, 10): A only');
  });

  it('hand-computed size, offset, index and displacement for a 2-object record', () => {
    // person [8, 4, 28, 60]: centre (18, 32) px = (4.5, 8) cells -> cell (4, 8), offset (0.5, 0), size (5, 14), radius 2
    // knife [30, 22, 41, 27]: centre (35.5, 24.5) px = (8.875, 6.125) -> cell (8, 6), offset (0.875, 0.125),
    //   size (2.75, 1.25), radius 0
    // hold: midpoint (6.6875, 7.0625) -> cell (6, 7), offset (0.6875, 0.0625),
    //   to subject (4.5 - 6, 8 - 7) = (-1.5, 1), to object (8.875 - 6, 6.125 - 7) = (2.875, -0.875)
    const rec = record('two', [['person', [8, 4, 28, 60]], ['knife', [30, 22, 41, 27]]], [[0, 'hold', 1]]);
    const t = buildTargets([rec], OPTS);
    assert.equal(t.height, 16);
    assert.equal(t.width, 16);
    assert.deepEqual([...t.objectSize], [5, 14, 2.75, 1.25, 0, 0, 0, 0]);
    assert.deepEqual([...t.objectOffset], [0.5, 0, 0.875, 0.125, 0, 0, 0, 0]);
    assert.deepEqual([...t.objectIndex], [8 * 16 + 4, 6 * 16 + 8, 0, 0]);
    assert.deepEqual([...t.objectMask], [1, 1, 0, 0]);
    assert.deepEqual([...t.interactionOffset], [0.6875, 0.0625, 0, 0, 0, 0]);
    assert.deepEqual([...t.displacement], [-1.5, 1, 2.875, -0.875, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...t.interactionIndex], [7 * 16 + 6, 0, 0]);
    assert.deepEqual([...t.interactionMask], [1, 0, 0]);
    // peaks: person channel 0 at (4, 8), knife channel 1 at (8, 6) with radius 0 (a single cell)
    assert.equal(t.objectHeatmap[(8 * 16 + 4) * 3 + 0], 1);
    close(t.objectHeatmap[(8 * 16 + 5) * 3 + 0], Math.exp(-0.72), 1e-7, 'person falloff');
    assert.equal(t.objectHeatmap[(6 * 16 + 8) * 3 + 1], 1);
    assert.equal(t.objectHeatmap[(6 * 16 + 9) * 3 + 1], 0);
    // interaction radius = min(2, 0) = 0: one cell at (6, 7) on the `hold` channel, nothing else
    assert.equal(t.interactionHeatmap[(7 * 16 + 6) * 2 + 0], 1);
    assert.equal(t.interactionHeatmap.reduce((a, b) => a + b, 0), 1);
  });

  it('TTFNet box samples: elliptical area, weights summing to 1 per object, the smaller object wins shared cells', () => {
    // person (5 x 14 cells, centre cell (4, 8)): rx = floor(0.54 x 5 / 2) = 1, ry = floor(0.54 x 14 / 2) = 3,
    //   sigma (3 / 6, 7 / 6): cells x 3..5, y 5..11; box (x1, y1, x2, y2) = (2, 1, 7, 15) cells
    // knife (2.75 x 1.25 cells): rx = ry = 0, the single cell (8, 6), weight 1, box (7.5, 5.5, 10.25, 6.75)
    const rec = record('two', [['person', [8, 4, 28, 60]], ['knife', [30, 22, 41, 27]]], [[0, 'hold', 1]]);
    const t = buildTargets([rec], OPTS);
    const w = (x: number, y: number) => t.boxWeight[y * 16 + x];
    const box = (x: number, y: number) => [...t.boxTarget.subarray(4 * (y * 16 + x), 4 * (y * 16 + x) + 4)];
    const gy = [-3, -2, -1, 0, 1, 2, 3].reduce((a, d) => a + Math.exp(-(d * d) / (2 * (7 / 6) ** 2)), 0);
    const total = (1 + 2 * Math.exp(-2)) * gy;
    close(w(4, 8), 1 / total, 1e-7, 'person centre weight');
    close(w(5, 11), Math.exp(-2) * Math.exp(-9 / (2 * (7 / 6) ** 2)) / total, 1e-7, 'person corner weight');
    assert.equal(w(6, 8), 0);
    assert.equal(w(4, 12), 0);
    assert.deepEqual(box(3, 5), [2, 1, 7, 15]);
    assert.equal(w(8, 6), 1);
    assert.deepEqual(box(8, 6), [7.5, 5.5, 10.25, 6.75]);
    close(t.boxWeight.reduce((a, b) => a + b, 0), 2, 1e-6, 'one per object');
    assert.equal(t.boxTarget.filter((v, i) => t.boxWeight[Math.floor(i / 4)] === 0 && v !== 0).length, 0, 'no target without a weight');

    // a ball (1 cell, centre cell (4, 9)) inside the person's area takes that cell whatever the record order
    for (const order of [0, 1]) {
      const objs: [string, Box][] = [['person', [8, 4, 28, 60]], ['ball', [16, 36, 20, 40]]];
      const t2 = buildTargets([record('overlap', order ? [objs[1], objs[0]] : objs, [])], OPTS);
      assert.deepEqual([...t2.boxTarget.subarray(4 * (9 * 16 + 4), 4 * (9 * 16 + 4) + 4)], [4, 9, 5, 10], `order ${order}`);
      assert.equal(t2.boxWeight[9 * 16 + 4], 1);
      assert.deepEqual([...t2.boxTarget.subarray(4 * (8 * 16 + 4), 4 * (8 * 16 + 4) + 4)], [2, 1, 7, 15]);
    }
  });

  it('uses the smaller radius of subject and object for the interaction splat', () => {
    // two 40 x 40 px people (radius 2) and a 24 x 24 px ball (radius 1): stab person -> radius 2, hold ball -> radius 1
    const rec = record('r', [['person', [0, 0, 40, 40]], ['person', [24, 0, 64, 40]], ['ball', [0, 40, 24, 64]]], [[0, 'stab', 1], [0, 'hold', 2]]);
    const t = buildTargets([rec], OPTS);
    // stab: centres (5, 5) and (11, 5) -> (8, 5); hold: (5, 5) and (3, 13) -> (4, 9)
    const at = (x: number, y: number, v: number) => t.interactionHeatmap[(y * 16 + x) * 2 + v];
    assert.equal(at(8, 5, 1), 1);
    close(at(10, 5, 1), Math.exp(-2.88), 1e-7, 'radius 2 reaches 2 cells');
    assert.equal(at(4, 9, 0), 1);
    close(at(5, 9, 0), Math.exp(-2), 1e-7, 'radius 1, sigma 0.5');
    assert.equal(at(6, 9, 0), 0);
  });

  it('clamps a centre on the far border into the last cell and keeps the offset exact', () => {
    // a zero-width box on the right edge: centre (64, 32) px = (16, 8) cells -> cell (15, 8), offset (1, 0)
    const t = buildTargets([record('edge', [['ball', [64, 30, 64, 34]]], [])], OPTS);
    assert.equal(t.objectIndex[0], 8 * 16 + 15);
    assert.deepEqual([...t.objectOffset.slice(0, 2)], [1, 0]);
    assert.equal(t.objectHeatmap[(8 * 16 + 15) * 3 + 2], 1);
    // inside the grid nothing is clamped: centre (62, 62) px = 15.5 cells -> cell 15, offset 0.5
    const t2 = buildTargets([record('corner', [['ball', [60, 60, 64, 64]]], [])], OPTS);
    assert.equal(t2.objectIndex[0], 15 * 16 + 15);
    assert.deepEqual([...t2.objectOffset.slice(0, 2)], [0.5, 0.5]);
  });

  it('draws every splat but fills only maxObjects / maxInteractions slots', () => {
    const objects: [string, Box][] = [0, 1, 2, 3, 4].map((i) => ['ball', [i * 12, 0, i * 12 + 8, 8]]);
    const t = buildTargets([record('many', objects, [])], { ...OPTS, maxObjects: 3 });
    assert.deepEqual([...t.objectMask], [1, 1, 1]);
    assert.equal(t.droppedObjects, 2);
    // the 5th ball (centre 52 px, 4 px: cell (13, 1)) still has its peak
    assert.equal(t.objectHeatmap[(1 * 16 + 13) * 3 + 2], 1);
  });

  it('an unknown category, verb or object id is a DataError naming the record', () => {
    assert.throws(() => buildTargets([record('img-7', [['sword', [0, 0, 8, 8]]], [])], OPTS), (e: unknown) =>
      e instanceof DataError && /record 'img-7' field 'objects\[0\]\.category': unknown category 'sword'/.test(e.message));
    const rec = record('img-8', [['person', [0, 0, 8, 8]], ['ball', [8, 8, 16, 16]]], [[0, 'juggle', 1]]);
    assert.throws(() => buildTargets([rec], OPTS), (e: unknown) =>
      e instanceof DataError && /record 'img-8' field 'hois\[0\]\.verb': unknown verb 'juggle', expected one of hold, stab/.test(e.message));
    const bad = record('img-9', [['person', [0, 0, 8, 8]]], [[0, 'hold', 5]]);
    assert.throws(() => buildTargets([bad], OPTS), /record 'img-9' field 'hois\[0\]\.object': no object with id 5/);
  });

  it('uploads tensors of the documented shapes and builds oracle maps at the target cells', async () => {
    await tf.setBackend('cpu');
    const recs = [
      record('a', [['person', [8, 4, 28, 60]], ['knife', [30, 22, 41, 27]]], [[0, 'hold', 1]]),
      record('b', [['ball', [0, 0, 8, 8]]], []),
    ];
    const t = buildTargets(recs, OPTS);
    const before = tf.memory().numTensors;
    const tt = targetsToTensors(t);
    assert.deepEqual(tt.objectHeatmap.shape, [2, 16, 16, 3]);
    assert.deepEqual(tt.objectSize.shape, [2, 4, 2]);
    assert.deepEqual(tt.displacement.shape, [2, 3, 4]);
    assert.equal(tt.objectIndex.dtype, 'int32');
    assert.deepEqual(Array.from(await tt.objectIndex.data()), [132, 104, 0, 0, 17, 0, 0, 0]);
    disposeTargetTensors(tt);
    assert.equal(tf.memory().numTensors, before);

    const m = oracleMaps(t, 0);
    assert.deepEqual([...m.objectSize.slice(2 * 132, 2 * 132 + 2)], [5, 14]);
    assert.deepEqual([...m.displacement.slice(4 * 118, 4 * 118 + 4)], [-1.5, 1, 2.875, -0.875]);
    const m1 = oracleMaps(t, 1);
    assert.equal(m1.objectHeatmap[17 * 3 + 2], 1); // ball of image b: centre (4, 4) px = cell (1, 1)
    assert.deepEqual([...m1.objectSize.slice(2 * 17, 2 * 17 + 2)], [2, 2]);
    assert.equal(m1.interactionHeatmap.reduce((a, b) => a + b, 0), 0);
  });
});
