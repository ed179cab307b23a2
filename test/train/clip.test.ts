import { strict as assert } from 'node:assert';
import { tf } from '../../src/backend/tf';
import { clipByGlobalNorm } from '../../src/train/clip';

describe('train/clip clipByGlobalNorm', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('scales by maxNorm / (norm + 1e-6) when the global norm is larger', () => {
    // ||[3, 4]|| = 5, ||[[12]]|| = 12, global = sqrt(25 + 144) = 13.
    const a = tf.tensor1d([3, 4]);
    const b = tf.tensor2d([[12]]);
    const before = tf.memory().numTensors;
    const { grads, norm, scale } = clipByGlobalNorm(new Map<string, tf.Tensor>([['a', a], ['b', b]]), 6.5);
    assert.equal(norm, 13);
    const coef = 6.5 / (13 + 1e-6);
    assert.ok(Math.abs(scale - coef) < 1e-15);
    const ga = grads.get('a')!.dataSync();
    const gb = grads.get('b')!.dataSync();
    for (const [got, want] of [[ga[0], 3 * coef], [ga[1], 4 * coef], [gb[0], 12 * coef]]) {
      assert.ok(Math.abs(got - want) < 1e-6, `got ${got}, expected ${want}`);
    }
    assert.deepEqual(grads.get('b')!.shape, [1, 1]);
    // The inputs were consumed: replaced by the scaled tensors, no net allocation.
    assert.equal(a.isDisposed, true);
    assert.equal(b.isDisposed, true);
    assert.equal(tf.memory().numTensors, before);
    for (const g of grads.values()) g.dispose();
  });

  it('returns the same tensors when the norm is within maxNorm', () => {
    const a = tf.tensor1d([3, 4]);
    const { grads, norm, scale } = clipByGlobalNorm({ a }, 5.5);
    assert.equal(norm, 5);
    assert.equal(scale, 1);
    assert.equal(grads.get('a'), a);
    assert.deepEqual(Array.from(a.dataSync()), [3, 4]);
    a.dispose();
  });

  it('leaves non-finite gradients alone and reports the norm; rejects a bad maxNorm', () => {
    const a = tf.tensor1d([NaN, 1]);
    const { grads, norm, scale } = clipByGlobalNorm(new Map([['a', a]]), 1);
    assert.ok(Number.isNaN(norm));
    assert.equal(scale, 1);
    assert.equal(grads.get('a'), a);
    assert.throws(() => clipByGlobalNorm(new Map([['a', a]]), 0), /maxNorm must be a finite number > 0, got 0/);
    a.dispose();
  });
});
