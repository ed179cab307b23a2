import { strict as assert } from 'node:assert';
import { tf } from '../../src/backend/tf';
import { assertNoLeak, measureTensorGrowth } from '../../src/train/leak_check';

describe('train/leak_check', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('measures the growth of a leaking step exactly', async () => {
    const kept: tf.Tensor[] = [];
    const leaky = () => {
      kept.push(tf.scalar(1), tf.scalar(2)); // two tensors per call, never disposed by the step
    };
    const g = await measureTensorGrowth(leaky, 3, 2);
    assert.deepEqual(g.counts.map((c) => c - g.baseline), [2, 4, 6]);
    assert.equal(g.growth, 6);
    await assert.rejects(assertNoLeak(leaky, { steps: 2, warmup: 1 }), /tensor leak: numTensors was \d+ after warm-up, then \d+, \d+ after 2 steps \(\+4\)/);
    for (const t of kept) t.dispose();
  });

  it('passes a step that keeps state created during warm-up only', async () => {
    let state: tf.Tensor | null = null;
    const step = async () => {
      const next = tf.tidy(() => (state ? state.mul(2) : tf.ones([3])));
      state?.dispose();
      state = next;
      await next.data();
    };
    await assertNoLeak(step, { steps: 4, warmup: 1 });
    assert.deepEqual(Array.from((state as unknown as tf.Tensor).dataSync()), [16, 16, 16]);
    (state as unknown as tf.Tensor).dispose();
  });
});
