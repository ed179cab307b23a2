/**
 * Sum over all axes but the last on wasm (./src/backend/kernels/channel_sum.ts: the SIMD pass for
 * channel counts that are multiples of 4) against the cpu backend; every other Sum (other channel
 * counts, other axes, int32) must still reach tfjs-wasm's kernel and agree too.
 */
import { strict as assert } from 'node:assert';
import { initBackend, tf } from '../../src/backend';
import { simdKernels } from '../../src/backend/kernels/simd';
import { cpuData, relDiff, restoreBackendAfter, valuesOn } from './helpers';

describe('backend/channel_sum (wasm Sum over leading axes)', function () {
  this.timeout(60000);
  restoreBackendAfter();

  it('matches cpu: the SIMD path, keepDims, negative axes, and the calls left to tfjs-wasm', async () => {
    const cases: Array<{ shape: number[]; axis: number | number[]; keepDims?: boolean; what: string }> = [
      { shape: [8, 32, 32, 32], axis: [0, 1, 2], what: 'SIMD, a conv bias gradient' },
      { shape: [2, 3, 5, 12], axis: [2, 0, 1], keepDims: true, what: 'SIMD, unsorted axes, keepDims' },
      { shape: [3, 5, 7, 12], axis: [-4, -3, -2], what: 'SIMD, negative axes' },
      { shape: [3, 5, 7, 10], axis: [0, 1, 2], what: '10 channels: tfjs-wasm' },
      { shape: [37, 4], axis: 0, what: 'rank 2, SIMD' },
      { shape: [5, 3], axis: [0], keepDims: true, what: 'rank 2, 3 channels: tfjs-wasm' },
      { shape: [2, 6, 6, 8], axis: [1, 2], what: 'not leading: tfjs-wasm' },
      { shape: [4, 8], axis: -1, what: 'last axis: tfjs-wasm' },
      { shape: [4, 8], axis: [0, 1], what: 'all axes: tfjs-wasm' },
    ];
    for (const [i, c] of cases.entries()) {
      const x = await cpuData(c.shape, 300 + i);
      const compute = (): tf.Tensor => tf.sum(tf.tensor(x, c.shape), c.axis, c.keepDims ?? false);
      const [ref] = await valuesOn('cpu', compute);
      await initBackend({ name: 'wasm' });
      if (c.what.startsWith('SIMD')) assert.ok(simdKernels(tf.backend()) !== null, 'the SIMD module is there');
      const out = tf.tidy(compute);
      const expectShape = tf.tidy(() => tf.sum(tf.zeros(c.shape), c.axis, c.keepDims ?? false).shape);
      assert.deepEqual(out.shape, expectShape, `${c.what}: shape`);
      const got = Float32Array.from(out.dataSync());
      out.dispose();
      assert.ok(relDiff(got, ref) <= 1e-6, `${c.what} [${c.shape}] axes ${c.axis}: ${relDiff(got, ref)}`);
    }
    // int32 stays on tfjs-wasm's kernel, exact
    await initBackend({ name: 'wasm' });
    const ints = tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], 'int32');
    const s = tf.sum(ints, 0);
    assert.equal(s.dtype, 'int32');
    assert.deepEqual(Array.from(s.dataSync()), [9, 12]);
    tf.dispose([ints, s]);
  });

  it('sums by hand, in float64: 1e8 + 1 + ... does not lose the ones', async () => {
    await initBackend({ name: 'wasm' });
    // per channel: one 1e8 then 999 ones; float32 accumulation would stay at 1e8 (ulp 8)
    const rows = 1000, c = 4;
    const data = new Float32Array(rows * c).fill(1);
    for (let j = 0; j < c; j++) data[j] = 1e8;
    const s = tf.tidy(() => tf.sum(tf.tensor2d(data, [rows, c]), 0));
    assert.deepEqual(Array.from(s.dataSync()), Array(c).fill(1e8 + 1000)); // 100001000 is a float32
    s.dispose();
  });
});
