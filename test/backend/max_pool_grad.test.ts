/**
 * MaxPoolGrad on wasm (the SIMD loop for channel counts that are multiples of 4, tfjs-wasm's
 * kernel for the others) against the cpu backend, ties at 0 after a ReLU included: the gradient
 * must go to each window's first maximum. Also on wasm-native, which no longer sends it to ONNX
 * Runtime.
 */
import { strict as assert } from 'node:assert';
import { initBackend, tf } from '../../src/backend';
import { simdKernels } from '../../src/backend/kernels/simd';
import { cpuData, makeRng, relDiff, restoreBackendAfter, valuesOn } from './helpers';

type Shape4 = [number, number, number, number];

describe('backend/max_pool_grad (wasm SIMD MaxPoolGrad)', function () {
  this.timeout(60000);
  restoreBackendAfter();

  it('matches cpu on random shapes, ties included, with and without the SIMD path', async () => {
    const rng = makeRng(91);
    const cases: Array<{ x: Shape4; k: number; s: number; pad: 'same' | 'valid' }> = [
      { x: [8, 16, 16, 4], k: 3, s: 2, pad: 'same' }, // ResNet's stem pool
      { x: [16, 7, 9, 8], k: 2, s: 2, pad: 'valid' },
      { x: [1, 5, 5, 12], k: 3, s: 1, pad: 'same' }, // overlapping windows: one cell picked twice
      { x: [2, 6, 6, 3], k: 3, s: 2, pad: 'same' }, // 3 channels: tfjs-wasm's kernel
    ];
    for (let i = 0; i < 5; i++) {
      cases.push({ x: [rng.int(1, 3), rng.int(3, 13), rng.int(3, 13), 4 * rng.int(1, 5)], k: rng.int(2, 3), s: rng.int(1, 2), pad: rng.pick(['same', 'valid'] as const) });
    }
    for (const [i, c] of cases.entries()) {
      const x = (await cpuData(c.x, 900 + i)).map((v) => Math.max(0, v)); // half the values tie at 0
      const info = tf.backend_util.computePool2DInfo(c.x, c.k, c.s, 1, c.pad);
      const r = await cpuData(info.outShape, 950 + i);
      const compute = (): tf.Tensor => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, c.k, c.s, c.pad), tf.tensor(r, info.outShape))))(tf.tensor(x, c.x));
      const [ref] = await valuesOn('cpu', compute);
      for (const name of ['wasm', 'wasm-native'] as const) {
        await initBackend({ name, threads: 1 });
        assert.ok(simdKernels(tf.backend()) !== null);
        const out = tf.tidy(compute);
        const got = Float32Array.from(out.dataSync());
        out.dispose();
        assert.ok(relDiff(got, ref) <= 1e-6, `${name} x[${c.x}] k${c.k} s${c.s} ${c.pad}: ${relDiff(got, ref)}`);
      }
    }
  });
});
