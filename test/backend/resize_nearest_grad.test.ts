/**
 * ResizeNearestNeighborGrad on wasm (./src/backend/kernels/resize_nearest_grad.ts: block sums for
 * integer upscales without align-corners; tfjs-wasm's kernel for the rest) against the cpu
 * backend, and one block sum by hand.
 */
import { strict as assert } from 'node:assert';
import { initBackend, tf } from '../../src/backend';
import { cpuData, relDiff, restoreBackendAfter, valuesOn } from './helpers';

describe('backend/resize_nearest_grad (wasm)', function () {
  this.timeout(60000);
  restoreBackendAfter();

  it('matches cpu: 2x, 3x2 and 1x upscales (block sums), align corners and 5 -> 7 (tfjs-wasm)', async () => {
    const cases: Array<{ x: [number, number, number, number]; size: [number, number]; alignCorners: boolean }> = [
      { x: [2, 5, 6, 3], size: [10, 12], alignCorners: false },
      { x: [1, 4, 3, 8], size: [12, 6], alignCorners: false },
      { x: [3, 2, 2, 1], size: [2, 2], alignCorners: false },
      { x: [2, 5, 6, 3], size: [10, 12], alignCorners: true },
      { x: [1, 5, 5, 2], size: [7, 7], alignCorners: false },
    ];
    for (const [i, c] of cases.entries()) {
      const x = await cpuData(c.x, 40 + i);
      const r = await cpuData([c.x[0], ...c.size, c.x[3]], 60 + i);
      const compute = (): tf.Tensor => tf.grad((t: tf.Tensor) =>
        tf.sum(tf.mul(tf.image.resizeNearestNeighbor(t as tf.Tensor4D, c.size, c.alignCorners, false), tf.tensor(r, [c.x[0], ...c.size, c.x[3]]))))(tf.tensor(x, c.x));
      const [ref] = await valuesOn('cpu', compute);
      const [got] = await valuesOn('wasm', compute);
      assert.ok(relDiff(got, ref) <= 1e-6, `x[${c.x}] -> ${c.size} alignCorners ${c.alignCorners}: ${relDiff(got, ref)}`);
    }
  });

  it('sums each 2x2 block by hand', async () => {
    await initBackend({ name: 'wasm' });
    const dy = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 4, 4, 1]);
    const images = tf.zeros([1, 2, 2, 1]);
    const dx = tf.engine().runKernel('ResizeNearestNeighborGrad', { images, dy }, { alignCorners: false, halfPixelCenters: false }) as tf.Tensor;
    assert.deepEqual(Array.from(dx.dataSync()), [1 + 2 + 5 + 6, 3 + 4 + 7 + 8, 9 + 10 + 13 + 14, 11 + 12 + 15 + 16]);
    tf.dispose([dy, images, dx]);
  });
});
