import { strict as assert } from 'node:assert';
import { tf } from '../../src/backend/tf';
import { clipCoefficient, globalNorm } from '../../src/train/clip';
import { AdamW } from '../../src/train/optim';

describe('train/clip globalNorm, clipCoefficient', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('global norm and the coefficient maxNorm / (norm + 1e-6) when the norm is larger', () => {
    // ||[3, 4]|| = 5, ||[[12]]|| = 12, global = sqrt(25 + 144) = 13.
    const a = tf.tensor1d([3, 4]);
    const b = tf.tensor2d([[12]]);
    const before = tf.memory().numTensors;
    const norm = globalNorm([a, b]);
    assert.equal(norm, 13);
    assert.equal(tf.memory().numTensors, before);
    assert.ok(Math.abs(clipCoefficient(norm, 6.5) - 6.5 / (13 + 1e-6)) < 1e-15);
    assert.equal(globalNorm([]), 0);
    assert.equal(globalNorm([tf.tensor1d([3, 4], 'int32')]), 5);
    tf.dispose([a, b]);
  });

  it('coefficient 1 within maxNorm and for a non-finite norm; rejects a bad maxNorm', () => {
    assert.equal(clipCoefficient(5, 5.5), 1);
    assert.equal(clipCoefficient(5.5 - 1e-6, 5.5), 1);
    const a = tf.tensor1d([NaN, 1]);
    const nan = globalNorm([a]);
    assert.ok(Number.isNaN(nan));
    assert.equal(clipCoefficient(nan, 1), 1);
    assert.equal(clipCoefficient(Infinity, 1), 1);
    assert.throws(() => clipCoefficient(2, 0), /maxNorm must be a finite number > 0, got 0/);
    a.dispose();
  });

  it('AdamW with gradScale = coef steps as with the gradients multiplied by coef', () => {
    const run = (g: number[], scale: number): Float32Array => {
      const p = tf.variable(tf.tensor1d([1, -2, 0.5]));
      const opt = new AdamW(new Map([['w.weight', p]]), { lr: 0.1, weightDecay: 0.1 });
      const gt = tf.tensor1d(g);
      // two steps, so that the second one's m and v carry the first's scaled gradient
      opt.step(new Map([['w.weight', gt]]), 0.1, scale);
      opt.step(new Map([['w.weight', gt]]), 0.1, scale);
      const out = p.dataSync() as Float32Array;
      gt.dispose();
      opt.dispose();
      p.dispose();
      return out;
    };
    const g = [3, -4, 12];
    const coef = clipCoefficient(13, 6.5);
    const scaled = run(g.map((v) => v * coef), 1);
    const viaScale = run(g, coef);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(scaled[i] - viaScale[i]) < 1e-6, `[${i}] ${viaScale[i]} vs ${scaled[i]}`);
    // and the scale matters: eps makes Adam's update not quite scale-free; with a tiny scale it shows
    const tiny = run(g, 1e-9);
    assert.ok(Math.abs(tiny[0] - run(g, 1)[0]) > 1e-3);
  });
});
