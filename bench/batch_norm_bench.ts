/**
 * Training-mode batch norm on wasm, forward + backward of one layer: our fused kernels
 * (src/backend/kernels/batch_norm_train.ts) against tfjs's composite (moments + batchNorm, the
 * path `HOI2ANOMALY_FUSED_BN=off` takes), on the NHWC shapes of the tiny extractor and ResNet-18
 * at 128 px, batch 8.
 *
 *   node dist/bench/batch_norm_bench.js [--threads 2] [--runs 7]
 *
 * One timed call = y = bn(x) and its gradients to x, gamma, beta for an upstream gradient dy
 * (tf.grads with dy), dx read back. Median
 * of --runs rounds of 5 calls, after 5 warm-up calls. Both paths run in the same process, in
 * alternating rounds, so that the machine's load hits both alike.
 */
import { initBackend } from '../src/backend';
import { tf } from '../src/backend/tf';
import { batchNormTrain } from '../src/backend/kernels/batch_norm_train';
import { median, numberArg } from './common';

const SHAPES: [number, number, number, number][] = [[8, 64, 64, 16], [8, 32, 32, 32], [8, 16, 16, 64], [8, 8, 8, 128], [8, 32, 32, 64]];

/** One forward + backward of a layer; `fused` picks the path through HOI2ANOMALY_FUSED_BN. */
function step(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, dy: tf.Tensor, fused: boolean): void {
  process.env.HOI2ANOMALY_FUSED_BN = fused ? 'on' : 'off';
  tf.tidy(() => {
    const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => batchNormTrain(xx, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-5).y;
    const [dx] = tf.grads(f)([x, gamma, beta], dy);
    dx.dataSync();
  });
}

async function main(): Promise<void> {
  const threads = numberArg('--threads', 2), runs = numberArg('--runs', 7);
  await initBackend({ name: 'wasm', threads });
  console.log(`batch norm forward + backward, wasm ${threads} threads, median ms of ${runs} rounds x 5 calls`);
  console.log('shape (NHWC)        elements   fused ms   composite ms   composite / fused   fused ns/element');
  for (const shape of SHAPES) {
    const x = tf.randomNormal(shape, 3, 2), dy = tf.randomNormal(shape);
    const gamma = tf.ones([shape[3]]) as tf.Tensor1D, beta = tf.zeros([shape[3]]) as tf.Tensor1D;
    const times: Record<'fused' | 'composite', number[]> = { fused: [], composite: [] };
    for (let i = 0; i < 5; i++) for (const fused of [true, false]) step(x, gamma, beta, dy, fused);
    for (let r = 0; r < runs; r++) {
      for (const fused of [true, false]) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < 5; i++) step(x, gamma, beta, dy, fused);
        times[fused ? 'fused' : 'composite'].push(Number(process.hrtime.bigint() - t0) / 5e6);
      }
    }
    const n = x.size, f = median(times.fused), c = median(times.composite);
    console.log(`${JSON.stringify(shape).padEnd(20)}${String(n).padStart(8)}${f.toFixed(2).padStart(11)}${c.toFixed(2).padStart(15)}${(c / f).toFixed(2).padStart(20)}x${((f * 1e6) / n).toFixed(1).padStart(19)}`);
    tf.dispose([x, dy, gamma, beta]);
  }
  delete process.env.HOI2ANOMALY_FUSED_BN;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
