import assert from 'node:assert/strict';
import { tf } from '../../src/backend/tf';

/** Our Mean/Sum gradients (broadcast instead of tfjs's JavaScript ones array), by hand. */
describe('backend/gradients: Mean and Sum', () => {
  let previous: string | undefined;
  before(async () => {
    previous = tf.getBackend();
    await tf.setBackend('cpu');
  });
  after(async () => {
    if (previous) await tf.setBackend(previous);
  });

  it('d mean / dx = w / count over the reduced axes, d sum / dx = w, with and without keepDims', () => {
    const x = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 3, 2]);
    const w = tf.tensor2d([[1, 2], [3, 4]]); // weights on the [2, 2] result of reducing axis 1
    const gMean = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(t, 1), w)))(x);
    // each x[b, i, c] gets w[b, c] / 3
    assert.deepEqual(Array.from(gMean.dataSync()).map((v) => +v.toFixed(6)), [1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4].map((v) => +(v / 3).toFixed(6)));
    const gSum = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.sum(t, [0, 2], true), tf.tensor3d([1, 10, 100], [1, 3, 1]))))(x);
    assert.deepEqual(Array.from(gSum.dataSync()), [1, 1, 10, 10, 100, 100, 1, 1, 10, 10, 100, 100]);
    const gAll = tf.grad((t: tf.Tensor) => tf.mean(t))(x);
    assert.ok(Array.from(gAll.dataSync()).every((v) => Math.abs(v - 1 / 12) < 1e-7));
    tf.dispose([x, w, gMean, gSum, gAll]);
  });
});
