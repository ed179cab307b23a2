/**
 * Point-HOI losses: the focal loss and the masked L1 against hand-computed values, the whole
 * loss against a plain-JS reference, gradients (hand-computed and a few SGD steps), no leaks.
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../../src/backend/tf';
import type { Box, HoiRecord } from '../../../src/data/record';
import { ShapeError } from '../../../src/errors';
import {
  DEFAULT_LOSS_WEIGHTS, LOSS_PARTS, computeLosses, focalLoss, gatherAtIndices, giouLoss, regL1Loss,
} from '../../../src/models/hoi/losses';
import { buildTargets, disposeTargetTensors, targetsToTensors } from '../../../src/models/hoi/targets';
import type { PointHoiOutputs } from '../../../src/models/hoi/types';

function record(id: string, objects: [string, Box][], hois: [number, string, number][]): HoiRecord {
  return {
    id, image: `images/${id}.png`, width: 32, height: 32,
    objects: objects.map(([category, box], i) => ({ id: i, category, box })),
    hois: hois.map(([subject, verb, object]) => ({ subject, verb, object, anomaly: null, severity: null })),
    label: 'normal', conversations: [],
  };
}

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: expected ${expected} +- ${tol}, found ${actual}`);
}

const logit = (p: number) => Math.log(p / (1 - p));

/** The focal loss as tfjs ops (how losses.ts computed it before its one-pass kernel): the reference for values and gradients. */
function focalLossOps(logits: tf.Tensor, gt: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const L = Math.log((1 - 1e-4) / 1e-4);
    const x = tf.clipByValue(logits, -L, L);
    const p = tf.sigmoid(x);
    const logP = tf.neg(tf.softplus(tf.neg(x)));
    const log1mP = tf.neg(tf.softplus(x));
    const pos = tf.cast(tf.equal(gt, 1), 'float32');
    const neg = tf.cast(tf.less(gt, 1), 'float32');
    const negWeight = tf.square(tf.square(tf.sub(1, gt)));
    const posLoss = tf.sum(tf.mul(tf.mul(logP, tf.square(tf.sub(1, p))), pos));
    const negLoss = tf.sum(tf.mul(tf.mul(log1mP, tf.square(p)), tf.mul(negWeight, neg)));
    return tf.div(tf.neg(tf.add(posLoss, negLoss)), tf.maximum(tf.sum(pos), 1)) as tf.Scalar;
  });
}

/** The same loss in float64 on plain numbers (log p = log(sigmoid), clamped), for central differences. */
function focalLoss64(x: number[], gt: number[]): number {
  const L = Math.log((1 - 1e-4) / 1e-4);
  let s = 0, P = 0;
  x.forEach((xi, i) => {
    const p = 1 / (1 + Math.exp(-Math.min(L, Math.max(-L, xi))));
    if (gt[i] === 1) { P++; s += (1 - p) ** 2 * Math.log(p); } else if (gt[i] < 1) s += (1 - gt[i]) ** 4 * p * p * Math.log(1 - p);
  });
  return -s / Math.max(P, 1);
}

/** One image on an 8 x 8 grid: a person kicking a ball. */
const OPTS = { inputSize: 32, stride: 4, categories: ['person', 'ball'], verbs: ['kick'], maxObjects: 3, maxInteractions: 2 };
const KICK = record('kick', [['person', [0, 0, 12, 24]], ['ball', [16, 16, 24, 24]]], [[0, 'kick', 1]]);

/** 1 - GIoU at zero outputs: cell (x, y) predicts the point (x, y), so inter = 0 and GIoU = -(hull - area) / hull. */
function giouAtZeroRef(target: Float32Array, weight: Float32Array, g: number): number {
  let s = 0, total = 0;
  for (let i = 0; i < weight.length; i++) {
    if (weight[i] === 0) continue;
    const x = i % g, y = Math.floor(i / g);
    const [x1, y1, x2, y2] = target.subarray(4 * i, 4 * i + 4);
    const hull = (Math.max(x, x2) - Math.min(x, x1)) * (Math.max(y, y2) - Math.min(y, y1));
    const area = (x2 - x1) * (y2 - y1);
    s += weight[i] * (1 + (hull - area) / hull);
    total += weight[i];
  }
  return s / total;
}

/** Output maps as variables: heatmap logits 0 (p = 0.5), regressions `reg` everywhere. */
function freeOutputs(B: number, g: number, C: number, V: number, reg = 0): Record<keyof PointHoiOutputs, tf.Variable<tf.Rank.R4>> {
  // unnamed: tfjs names them uniquely, so a failed test cannot block the next one with a name clash
  const v = (shape: [number, number, number, number], value: number) => tf.variable(tf.fill(shape, value) as tf.Tensor4D, true);
  return {
    objectHeatmap: v([B, g, g, C], 0),
    objectSize: v([B, g, g, 2], reg),
    objectOffset: v([B, g, g, 2], reg),
    interactionHeatmap: v([B, g, g, V], 0),
    interactionOffset: v([B, g, g, 2], reg),
    displacement: v([B, g, g, 4], reg),
  };
}

describe('models/hoi/losses', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('focal loss: hand-computed 1x2x2x1 example from logits', async () => {
    // cells: positive p = 0.9; negative gt 0.5, p = 0.2; negative gt 0, p = 0.1; negative gt 0, logit -30 (clamped to p = 1e-4)
    const x = tf.tensor4d([logit(0.9), logit(0.2), logit(0.1), -30], [1, 2, 2, 1]);
    const gt = tf.tensor4d([1, 0.5, 0, 0], [1, 2, 2, 1]);
    const expected =
      -((1 - 0.9) ** 2) * Math.log(0.9) + // 0.00105361
      -((1 - 0.5) ** 4) * 0.2 ** 2 * Math.log(0.8) + // 0.00055786
      -(0.1 ** 2) * Math.log(0.9) + // 0.00105361
      -(1e-4 ** 2) * Math.log(1 - 1e-4); // 1e-12
    close(expected, 0.0026650692, 1e-9, 'hand value');
    const loss = focalLoss(x, gt);
    close((await loss.data())[0], expected / 1, 1e-7, 'focal loss / 1 positive');
    // two positives: the same sums divided by 2
    const gt2 = tf.tensor4d([1, 0.5, 0, 1], [1, 2, 2, 1]);
    const loss2 = focalLoss(x, gt2);
    // the 4th cell is now a positive at p = 1e-4 (clamped): -(1 - 1e-4)^2 log(1e-4) = 9.20850...
    const expected2 = (expected - -(1e-4 ** 2) * Math.log(1 - 1e-4) + -((1 - 1e-4) ** 2) * Math.log(1e-4)) / 2;
    close((await loss2.data())[0], expected2, 1e-5, 'focal loss / 2 positives');
    tf.dispose([x, gt, loss, gt2, loss2]);
  });

  it('focal loss stays finite for extreme logits and clamps like CenterNet', async () => {
    // a positive at logit -100: log(sigmoid) would be -100; CenterNet's clamp makes it log(1e-4)
    const x = tf.tensor4d([-100, 100], [1, 1, 2, 1]);
    const gt = tf.tensor4d([1, 0], [1, 1, 2, 1]);
    const l = focalLoss(x, gt);
    // both cells cost -(1 - 1e-4)^2 log(1e-4) = 9.2085 (the positive at p = 1e-4, the negative at p = 1 - 1e-4)
    close((await l.data())[0], -2 * (1 - 1e-4) ** 2 * Math.log(1e-4), 1e-4, 'clamped loss');
    const g = tf.grad((t: tf.Tensor) => focalLoss(t, gt))(x);
    assert.deepEqual(Array.from(await g.data()), [0, 0]); // outside the clamp: no gradient, as torch.clamp
    // no positives: normalised by 1
    const z = tf.zeros([1, 1, 1, 1]);
    const neg = focalLoss(z, z);
    close((await neg.data())[0], 0.25 * Math.log(2), 1e-7, 'single negative at p = 0.5');
    const wrong = tf.zeros([1, 2, 1, 1]);
    assert.throws(() => focalLoss(x, wrong), ShapeError);
    tf.dispose([x, gt, l, g, z, neg, wrong]);
  });

  it('focal loss: values and gradients of the one-pass kernel match the tfjs-op composite and float64 central differences', async () => {
    const shape = [2, 5, 6, 3];
    const n = 2 * 5 * 6 * 3;
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    // logits in [-12, 12] (some beyond the clamp at 9.21); targets: exact 1s, Gaussian-ish values in (0, 1), zeros
    const xs = Array.from({ length: n }, () => (rand() - 0.5) * 24);
    const gts = Array.from({ length: n }, () => { const r = rand(); return r < 0.1 ? 1 : r < 0.6 ? Math.round(rand() * 1000) / 1000 : 0; });
    const x = tf.tensor(xs, shape), gt = tf.tensor(gts, shape);
    const before = tf.memory().numTensors;
    const fused = tf.valueAndGrad((t: tf.Tensor) => focalLoss(t, gt))(x);
    const ops = tf.valueAndGrad((t: tf.Tensor) => focalLossOps(t, gt))(x);
    close(fused.value.dataSync()[0], ops.value.dataSync()[0], 1e-5 * Math.abs(ops.value.dataSync()[0]), 'loss vs ops');
    close(fused.value.dataSync()[0], focalLoss64(xs, gts), 1e-5 * Math.abs(focalLoss64(xs, gts)), 'loss vs float64');
    const g = fused.grad.dataSync(), gOps = ops.grad.dataSync();
    const scale = Math.max(...Array.from(gOps, Math.abs));
    for (let i = 0; i < n; i++) close(g[i], gOps[i], 2e-6 * scale, `gradient ${i} vs ops (x ${xs[i]}, gt ${gts[i]})`);
    for (const i of [0, 1, 2, 5, 17, 40, 99, n - 1]) {
      if (Math.abs(xs[i]) > 9.2) { assert.equal(g[i], 0, `gradient ${i} outside the clamp`); continue; }
      const h = 1e-4, up = xs.slice(), down = xs.slice();
      up[i] += h; down[i] -= h;
      close(g[i], (focalLoss64(up, gts) - focalLoss64(down, gts)) / (2 * h), 1e-5, `gradient ${i} vs central difference (gt ${gts[i]})`);
    }
    tf.dispose([fused.value, fused.grad, ops.value, ops.grad]);
    assert.equal(tf.memory().numTensors, before, 'no tensors left by the forward and backward passes');
    const kernels = (await tf.profile(() => tf.grad((t: tf.Tensor) => focalLoss(t, gt))(x))).kernels.length;
    assert.ok(kernels <= 6, `${kernels} kernel calls for the loss and its gradient`);
    tf.dispose([x, gt]);
  });

  it('gathers rows at per-image indices and computes the masked L1 by hand', async () => {
    // image 0 cells (2 x 2 grid, K = 2): (1,2) (3,4) (5,6) (7,8); image 1: (10,20) (30,40) (50,60) (70,80)
    const map = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 10, 20, 30, 40, 50, 60, 70, 80], [2, 2, 2, 2]);
    const index = tf.tensor2d([[3, 0, 2], [1, 1, 0]], [2, 3], 'int32');
    const rows = gatherAtIndices(map, index);
    assert.deepEqual(rows.shape, [2, 3, 2]);
    assert.deepEqual(Array.from(await rows.data()), [7, 8, 1, 2, 5, 6, 30, 40, 30, 40, 10, 20]);
    const mask = tf.tensor2d([[1, 1, 0], [1, 0, 0]]);
    const target = tf.tensor3d([[[6.5, 8], [1, 0], [100, 100]], [[31, 38], [0, 0], [0, 0]]]);
    // |7-6.5| + |8-8| + |1-1| + |2-0| + |30-31| + |40-38| = 5.5 over 3 filled slots x 2 coordinates
    const l = regL1Loss(map, index, mask, target);
    close((await l.data())[0], 5.5 / 6, 1e-7, 'masked L1');
    // relative: each error over max(target, 1): 0.5/6.5 + 0 + 0 + 2/1 + 1/31 + 2/38
    const rel = regL1Loss(map, index, mask, target, { relative: true });
    close((await rel.data())[0], (0.5 / 6.5 + 2 + 1 / 31 + 2 / 38) / 6, 1e-6, 'relative L1');
    rel.dispose();
    // all slots empty: 0, not NaN
    const l0 = regL1Loss(map, index, tf.zeros([2, 3]) as tf.Tensor2D, target);
    assert.equal((await l0.data())[0], 0);
    assert.throws(() => regL1Loss(map, index, mask, tf.zeros([2, 3, 4]) as tf.Tensor3D), /regL1Loss: expected target \[2, 3, 2\]/);
    tf.dispose([map, index, rows, mask, target, l, l0]);
  });

  it('computeLosses at zero outputs equals a plain-JS reference, with hand-computed size gradients', async () => {
    const t = buildTargets([KICK], OPTS);
    const tt = targetsToTensors(t);
    const vars = freeOutputs(1, 8, 2, 1);

    // reference: p = 0.5 everywhere, so positives cost 0.25 ln 2 and negatives (1 - gt)^4 0.25 ln 2
    const focalRef = (gt: Float32Array) => {
      let s = 0, pos = 0;
      for (const v of gt) {
        if (v === 1) {
          s += 0.25 * Math.LN2;
          pos++;
        } else s += (1 - v) ** 4 * 0.25 * Math.LN2;
      }
      return s / Math.max(pos, 1);
    };
    const l1Ref = (target: Float32Array, mask: Float32Array, k: number) => {
      let s = 0;
      for (let i = 0; i < mask.length; i++) for (let j = 0; j < k; j++) s += mask[i] * Math.abs(target[i * k + j]);
      return s / Math.max(1, mask.reduce((a, b) => a + b, 0) * k);
    };
    const ref = {
      object_heatmap: focalRef(t.objectHeatmap),
      size: l1Ref(t.objectSize, t.objectMask, 2),
      offset: l1Ref(t.objectOffset, t.objectMask, 2),
      interaction_heatmap: focalRef(t.interactionHeatmap),
      interaction_offset: l1Ref(t.interactionOffset, t.interactionMask, 2),
      displacement: l1Ref(t.displacement, t.interactionMask, 4),
      box: giouAtZeroRef(t.boxTarget, t.boxWeight, 8),
    };
    // person [0,0,12,24]: size (3, 6) cells; ball [16,16,24,24]: size (2, 2): mean |size| = 13 / 4
    close(ref.size, 13 / 4, 1e-12, 'reference size');
    const { total, parts } = computeLosses(vars, tt, { ...DEFAULT_LOSS_WEIGHTS, box: 1e-9 }); // box > 0: computed
    for (const k of LOSS_PARTS) close((await parts[k].data())[0], ref[k], 1e-5, `part ${k}`);
    assert.equal(DEFAULT_LOSS_WEIGHTS.box, 0);
    const off = computeLosses(vars, tt);
    assert.equal((await off.parts.box.data())[0], 0, 'box weight 0: not computed, logged as 0');
    tf.dispose([off.total, ...Object.values(off.parts)]);
    const totalRef = LOSS_PARTS.reduce((s, k) => s + DEFAULT_LOSS_WEIGHTS[k] * ref[k], 0);
    close((await total.data())[0], totalRef, 1e-5, 'total');
    tf.dispose([total, ...Object.values(parts)]);

    // d total / d size at a filled cell = 0.1 * -sign(target) / (2 slots x 2 coordinates) = -0.025; 0 elsewhere
    const { value, grads } = tf.variableGrads(() => computeLosses(vars, tt).total, [vars.objectSize]);
    const gs = await grads[vars.objectSize.name].data();
    const person = t.objectIndex[0], ball = t.objectIndex[1];
    assert.deepEqual([person, ball], [3 * 8 + 1, 5 * 8 + 5]); // centres (1.5, 3) and (5, 5) cells
    for (let i = 0; i < 64; i++) {
      const want = i === person || i === ball ? -0.025 : 0;
      close(gs[2 * i], want, 1e-7, `grad w at cell ${i}`);
      close(gs[2 * i + 1], want, 1e-7, `grad h at cell ${i}`);
    }
    tf.dispose([value, ...Object.values(grads)]);
    disposeTargetTensors(tt);
    tf.dispose(Object.values(vars));
  });

  it('losses decrease under a few SGD steps on free output maps (gradients reach every map)', async () => {
    const tt = targetsToTensors(buildTargets([KICK], OPTS));
    const vars = freeOutputs(1, 8, 2, 1, -2);
    // regressions start at -2, over 0.25 away from every target coordinate (the largest step of 5 at
    // lr 0.1 is 0.05): no L1 term reaches its kink, where tfjs's abs gradient at 0 is -1 and the loss could rise
    const opt = tf.train.sgd(0.1);
    const history: Record<string, number>[] = [];
    for (let step = 0; step < 6; step++) {
      const { value, grads } = tf.variableGrads(() => {
        const { total, parts } = computeLosses(vars, tt);
        // keep the parts for logging without leaking: read them inside, dispose right after
        history.push(Object.fromEntries(LOSS_PARTS.map((k) => [k, parts[k].dataSync()[0]])));
        return total;
      });
      for (const k of Object.keys(grads)) {
        const norm = (await grads[k].abs().sum().data())[0];
        assert.ok(norm > 0, `step ${step}: zero gradient for ${k}`);
      }
      opt.applyGradients(grads);
      history[step].total = (await value.data())[0];
      tf.dispose([value, ...Object.values(grads)]);
    }
    for (let s = 1; s < history.length; s++) {
      // box (weight 0 by default) gets no gradient of its own: it only follows size and offset
      for (const k of [...LOSS_PARTS.filter((p) => DEFAULT_LOSS_WEIGHTS[p] > 0), 'total']) {
        assert.ok(history[s][k] < history[s - 1][k], `step ${s}: ${k} went from ${history[s - 1][k]} to ${history[s][k]}`);
      }
    }
    // L1 terms move by lr x gradient per step, every coordinate on the same side of its target:
    // size: targets (3, 6), (2, 2) from -2 -> 21/4, each coordinate +0.1 x 0.1/4 -> -0.0025 a step
    // offset: (0.5, 0), (0, 0) -> 8.5/4, +0.1 x 1/4 -> -0.025; interaction offset: (0.25, 0) -> 4.25/2, -0.05;
    // displacement: (-1.5, -1, 2, 1) -> 8.5/4, -0.025
    const linear: [string, number, number][] = [['size', 5.25, 0.0025], ['offset', 2.125, 0.025], ['interaction_offset', 2.125, 0.05], ['displacement', 2.125, 0.025]];
    for (const [k, start, perStep] of linear) {
      history.forEach((h, s) => close(h[k], start - perStep * s, 1e-5, `${k} at step ${s}`));
    }
    assert.ok(history[5].object_heatmap < 0.9 * history[0].object_heatmap, `object heatmap ${history[0].object_heatmap} -> ${history[5].object_heatmap}`);
    assert.ok(history[5].interaction_heatmap < 0.8 * history[0].interaction_heatmap, `interaction heatmap ${history[0].interaction_heatmap} -> ${history[5].interaction_heatmap}`);
    opt.dispose();
    disposeTargetTensors(tt);
    tf.dispose(Object.values(vars));
  });

  it('giouLoss: hand-computed GIoU values, weights, empty cells; a free box learns its target', async () => {
    // one image, 1 x 3 grid; cell x predicts a box centred at (x + ox, 0 + oy) with sides relu(w), relu(h)
    const size = tf.tensor4d([[[[2, 2], [4, 2], [-1, 3]]]]); // cell 2: width -1 reads as 0
    const offset = tf.tensor4d([[[[0, 0], [0, 0], [0.5, 0]]]]);
    // cell 0: pred [-1,-1,1,1] vs target [-1,-1,1,1] -> GIoU 1
    // cell 1: pred [-1,-1,3,1] vs target [0,-1,2,1]: inter 4, union 8, hull 8 -> GIoU 0.5
    // cell 2: pred zero-width [2.5,-1.5,2.5,1.5] vs target [0,0,1,1]: inter 0, union 1, hull 2.5 x 3 = 7.5
    //         -> GIoU 0 - (7.5 - 1) / 7.5 = -0.8667
    const target = tf.tensor4d([[[[-1, -1, 1, 1], [0, -1, 2, 1], [0, 0, 1, 1]]]]);
    const loss = async (w: number[]) => {
      const weight = tf.tensor3d([[w]]);
      const l = giouLoss(size, offset, target, weight);
      const v = (await l.data())[0];
      tf.dispose([l, weight]);
      return v;
    };
    close(await loss([1, 0, 0]), 0, 1e-6, 'perfect box');
    close(await loss([0, 1, 0]), 0.5, 1e-6, 'cell 1');
    close(await loss([0, 0, 1]), 1 + 6.5 / 7.5, 1e-6, 'cell 2');
    close(await loss([0.5, 0.25, 0.25]), (0.25 * 0.5 + 0.25 * (1 + 6.5 / 7.5)) / 1, 1e-6, 'weighted mean');
    close(await loss([0, 2, 2]), (0.5 + 1 + 6.5 / 7.5) / 2, 1e-6, 'normalised by the weight sum');
    assert.equal(await loss([0, 0, 0]), 0, 'no samples: 0, not NaN');
    assert.throws(() => giouLoss(size, offset, tf.zeros([1, 1, 3, 2]) as tf.Tensor4D, tf.ones([1, 1, 3]) as tf.Tensor3D), /giouLoss: target must be \[1,1,3,4\]/);

    // free maps from a small positive box learn a thin target box (1 x 0.25 cells) at a weighted cell;
    // gradients stay finite at the unweighted cells, whose empty targets are degenerate
    const vSize = tf.variable(tf.fill([1, 1, 3, 2], 0.5) as tf.Tensor4D);
    const vOff = tf.variable(tf.zeros([1, 1, 3, 2]) as tf.Tensor4D);
    const thin = tf.tensor4d([[[[0, 0, 0, 0], [0.6, 0.3, 1.6, 0.55], [0, 0, 0, 0]]]]);
    const weight = tf.tensor3d([[[0, 1, 0]]]);
    const opt = tf.train.adam(0.02);
    let afterFirst = 0; // Adam makes its slot variables on the first step
    let first = NaN, last = NaN;
    for (let step = 0; step < 400; step++) {
      const { value, grads } = tf.variableGrads(() => giouLoss(vSize, vOff, thin, weight), [vSize, vOff]);
      for (const g of Object.values(grads)) assert.ok((await g.data()).every(Number.isFinite), `step ${step}: gradient not finite`);
      opt.applyGradients(grads as unknown as Parameters<typeof opt.applyGradients>[0]); // Adam types its map as variables
      last = (await value.data())[0];
      tf.dispose([value, ...Object.values(grads)]);
      if (step === 0) [first, afterFirst] = [last, tf.memory().numTensors];
    }
    assert.equal(tf.memory().numTensors, afterFirst, 'tensor count flat');
    assert.ok(first > 0.5 && last < 0.05, `GIoU loss ${first} -> ${last}`);
    const [w, h] = Array.from((await vSize.data()).slice(2, 4));
    close(w, 1, 0.05, 'learned width');
    close(h, 0.25, 0.05, 'learned height');
    opt.dispose();
    tf.dispose([size, offset, target, vSize, vOff, thin, weight]);
  });

  it('leaks no tensors: exactly the 8 returned scalars outside tidy, none inside', () => {
    const tt = targetsToTensors(buildTargets([KICK, KICK], OPTS));
    const vars = freeOutputs(2, 8, 2, 1);
    const before = tf.memory().numTensors;
    const kept = tf.tidy(() => computeLosses(vars, tt).total);
    kept.dispose();
    assert.equal(tf.memory().numTensors, before);
    const out = computeLosses(vars, tt);
    assert.equal(tf.memory().numTensors, before + 1 + LOSS_PARTS.length);
    tf.dispose([out.total, ...Object.values(out.parts)]);
    assert.equal(tf.memory().numTensors, before);
    disposeTargetTensors(tt);
    tf.dispose(Object.values(vars));
  });

  it('rejects outputs whose shapes do not fit the targets', () => {
    const tt = targetsToTensors(buildTargets([KICK], OPTS));
    const vars = freeOutputs(1, 8, 2, 1);
    const bad = { ...vars, displacement: tf.zeros([1, 8, 8, 2]) as tf.Tensor4D };
    assert.throws(() => computeLosses(bad, tt), /output 'displacement' must be \[1,8,8,4\] to match the targets, found \[1,8,8,2\]/);
    bad.displacement.dispose();
    disposeTargetTensors(tt);
    tf.dispose(Object.values(vars));
  });
});
