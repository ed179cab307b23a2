/**
 * The embedded wasm SIMD module: the bytes in wasm_binary.ts are kernels.wat's (recompiled here
 * with wabt, both memory variants), it instantiates against the wasm backend's heap and reads
 * tensors in place, and it is absent (null) on a backend without a wasm heap.
 */
import { strict as assert } from 'node:assert';
import { initBackend, tf } from '../../src/backend';
import { heapOffset, simdKernels } from '../../src/backend/kernels/simd';
import { SIMD_WASM_PLAIN, SIMD_WASM_SHARED } from '../../src/backend/kernels/simd/wasm_binary';
import { compileSimdWat } from '../../tools/build_simd_wasm';
import { restoreBackendAfter } from './helpers';

describe('backend/simd (hand-written wasm SIMD kernels)', function () {
  this.timeout(60000);
  restoreBackendAfter();

  it('the embedded module is kernels.wat compiled (run `npm run build:simd` after editing it)', async () => {
    assert.equal(Buffer.from(await compileSimdWat(true)).toString('base64'), SIMD_WASM_SHARED, 'shared-memory variant is stale');
    assert.equal(Buffer.from(await compileSimdWat(false)).toString('base64'), SIMD_WASM_PLAIN, 'plain-memory variant is stale');
  });

  it('instantiates on the wasm heap and reads tensors where they lie; null on cpu', async () => {
    await initBackend({ name: 'cpu' });
    assert.equal(simdKernels(tf.backend()), null);
    await initBackend({ name: 'wasm', threads: 1 });
    const simd = simdKernels(tf.backend());
    assert.ok(simd !== null, 'instantiated');
    assert.equal(simdKernels(tf.backend()), simd, 'one instance per heap');
    // sum of squares by hand over 1..7 values: the SIMD body and the scalar tail
    for (let n = 1; n <= 7; n++) {
      const x = tf.range(1, n + 1);
      assert.equal(simd.sumSquares(heapOffset(tf.backend(), x), n), (n * (n + 1) * (2 * n + 1)) / 6, `n = ${n}`);
      x.dispose();
    }
  });
});
