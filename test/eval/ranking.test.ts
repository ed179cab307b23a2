import assert from 'node:assert/strict';
import { averagePrecision, rocAuc, youdenThreshold } from '../../src/eval/ranking';

describe('eval/ranking', () => {
  it('rocAuc: perfect, inverted and hand-computed cases', () => {
    assert.equal(rocAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
    assert.equal(rocAuc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 0);
    // scikit-learn's docstring example: y=[0,0,1,1], s=[0.1,0.4,0.35,0.8] -> 0.75
    assert.equal(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  });

  it('rocAuc: ties count one half', () => {
    // all tied: 0.5; a binary rule that fires on 1 of 2 positives and 1 of 2 negatives:
    // pairs (p,n): (1,1) tie .5, (1,0) win 1, (0,1) loss 0, (0,0) tie .5 -> 2/4
    assert.equal(rocAuc([1, 1, 1, 1], [0, 1, 0, 1]), 0.5);
    assert.equal(rocAuc([1, 0, 1, 0], [1, 1, 0, 0]), 0.5);
    // rule fires on 2/2 positives and 1/2 negatives: (1,1) .5 x2, (1,0) 1 x2 -> 3/4
    assert.equal(rocAuc([1, 1, 1, 0], [1, 1, 0, 0]), 0.75);
  });

  it('rocAuc: NaN with one class, error on length mismatch', () => {
    assert.ok(Number.isNaN(rocAuc([0.2, 0.3], [1, 1])));
    assert.throws(() => rocAuc([0.1], [1, 0]), /differ in length/);
  });

  it('averagePrecision: hand-computed cases', () => {
    // scikit-learn docstring: y=[0,0,1,1], s=[0.1,0.4,0.35,0.8] -> 0.8333...
    // ranked: .8(P) p=1 r=.5; .4(N); .35(P) p=2/3 r=1 -> .5*1 + .5*2/3 = 0.8333
    assert.ok(Math.abs(averagePrecision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) - 5 / 6) < 1e-12);
    assert.equal(averagePrecision([0.9, 0.8, 0.1], [1, 1, 0]), 1);
    // tie at the top between a positive and a negative: one threshold, p=1/2 r=1 -> 0.5
    assert.equal(averagePrecision([0.5, 0.5], [1, 0]), 0.5);
    assert.ok(Number.isNaN(averagePrecision([0.5, 0.1], [0, 0])));
  });

  it('youdenThreshold: hand-computed cases', () => {
    // s=[0.9(P), 0.7(N), 0.6(P), 0.2(N)]: t=0.9 J=1/2-0; t=0.7 J=1/2-1/2; t=0.6 J=1-1/2; t=0.2 J=1-1 -> 0.9 (tie with 0.6: the higher)
    assert.deepEqual(youdenThreshold([0.9, 0.7, 0.6, 0.2], [1, 0, 1, 0]), { threshold: 0.9, tpr: 0.5, fpr: 0 });
    // separable: every positive above every negative -> the lowest positive score, J = 1
    assert.deepEqual(youdenThreshold([0.1, 0.35, 0.3, 0.8], [0, 1, 0, 1]), { threshold: 0.35, tpr: 1, fpr: 0 });
    // tied scores move together: s=[0.5(P), 0.5(N), 0.1(P)] -> t=0.5 J=1/2-1, t=0.1 J=1-1 -> 0.1
    assert.deepEqual(youdenThreshold([0.5, 0.5, 0.1], [1, 0, 1]), { threshold: 0.1, tpr: 1, fpr: 1 });
    assert.ok(Number.isNaN(youdenThreshold([0.5, 0.1], [1, 1]).threshold));
  });
});
