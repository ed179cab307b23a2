/**
 * The fused training-mode batch norm kernels (wasm) against tfjs's composite on the cpu backend:
 * outputs, batch statistics and the gradients to x, gamma and beta on random shapes (channel
 * counts 1..64, rows 1..252, values offset far from 0); BatchNorm2d's running statistics; no
 * tensors left behind; and the composite path where the kernels are absent.
 */
import { strict as assert } from 'node:assert';
import { initBackend, tf } from '../../src/backend';
import { batchNormTrain, hasFusedBatchNormTrain } from '../../src/backend/kernels/batch_norm_train';
import { BatchNorm2d } from '../../src/models/nn/norm';
import { cpuData, makeRng, relDiff, restoreBackendAfter, valuesOn } from './helpers';

// the project's kernel parity bar (issue 7); dx carries the float32 rounding of the saved mean (x - mean of close values)
const TOL = 1e-4;

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** The closed forms in float64: y, mean, variance, dx, dgamma, dbeta for loss = sum(y * w). */
function reference(x: Float32Array, w: Float32Array, gamma: Float32Array, beta: Float32Array, eps: number, c: number): Float64Array[] {
  const rows = x.length / c;
  const mean = new Float64Array(c), variance = new Float64Array(c);
  for (let k = 0; k < x.length; k++) mean[k % c] += x[k] / rows;
  for (let k = 0; k < x.length; k++) variance[k % c] += (x[k] - mean[k % c]) ** 2 / rows;
  const inv = Float64Array.from(variance, (v) => 1 / Math.sqrt(v + eps));
  const xhat = Float64Array.from(x, (v, k) => (v - mean[k % c]) * inv[k % c]);
  const y = Float64Array.from(xhat, (v, k) => v * gamma[k % c] + beta[k % c]);
  const dgamma = new Float64Array(c), dbeta = new Float64Array(c);
  for (let k = 0; k < x.length; k++) {
    dbeta[k % c] += w[k];
    dgamma[k % c] += w[k] * xhat[k];
  }
  const dx = Float64Array.from(x, (_, k) => {
    const j = k % c;
    return (gamma[j] * inv[j] / rows) * (rows * w[k] - dbeta[j] - xhat[k] * dgamma[j]);
  });
  return [y, mean, variance, dx, dgamma, dbeta];
}

describe('backend/batch_norm_train (fused batch norm kernels)', function () {
  this.timeout(60000);
  restoreBackendAfter();

  it('forward, statistics and gradients match the cpu composite on random shapes', async () => {
    const rng = makeRng(11);
    let worst = 0;
    // channels: the JavaScript path (1, 3, 33) and the SIMD one (multiples of 4; 64 with up to
    // 252 rows spans two of its 128-row chunks)
    for (let k = 0; k < 14; k++) {
      const shape = [rng.int(1, 4), rng.int(1, 7), rng.int(1, 9), [1, 3, 4, 12, 16, 33, 64][k % 7]];
      const x = Float32Array.from(await cpuData(shape, 100 + k), (v) => 5 * v + (k % 3) * 40); // offsets: the shifted one-pass variance
      const w = await cpuData(shape, 200 + k);
      const c = shape[3];
      const gamma = await cpuData([c], 300 + k), beta = await cpuData([c], 400 + k);
      const eps = k % 2 === 0 ? 1e-5 : 1e-3;
      const run = () => {
        const xt = tf.tensor(x, shape), wt = tf.tensor(w, shape), g = tf.tensor1d(gamma), b = tf.tensor1d(beta);
        const { y, mean, variance } = batchNormTrain(xt, g, b, eps);
        const loss = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(batchNormTrain(xx, gg as tf.Tensor1D, bb as tf.Tensor1D, eps).y, wt));
        const grads = tf.grads(loss)([xt, g, b]);
        return [y, mean, variance, ...grads];
      };
      const exact = reference(x, w, gamma, beta, eps, c);
      const composite = await valuesOn('cpu', run);
      await initBackend({ name: 'wasm', threads: 1 });
      assert.ok(hasFusedBatchNormTrain(), 'fused kernels registered on wasm');
      const got = await valuesOn('wasm', run);
      // dx of a channel with 2 rows is ~0 (the two xhat are +-1 and cancel): measure its error
      // against the size of its terms, gamma * invstd * dy, not against its own ~0 values
      const inv = exact[2].map((v) => 1 / Math.sqrt(v + eps));
      const dxScale = Math.max(...Array.from(w, (dy, k) => Math.abs(gamma[k % c] * inv[k % c] * dy)));
      const err = (a: ArrayLike<number>, i: number) => (i === 3 ? maxAbs(a, exact[i]) / dxScale : relDiff(a, exact[i]));
      got.forEach((v, i) => {
        const name = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'][i];
        const d = err(v, i);
        worst = Math.max(worst, d);
        assert.ok(d <= TOL, `shape [${shape}] output ${name}: fused ${d}`);
        // tfjs's float32 composite, for scale
        assert.ok(err(composite[i], i) <= 1e-3, `shape [${shape}] output ${name}: composite ${err(composite[i], i)}`);
      });
    }
    console.log(`    worst relative difference ${worst.toExponential(2)}`);
  });

  it('ReLU and residual epilogues: outputs and all four gradients match the cpu composite', async () => {
    const rng = makeRng(23);
    let worst = 0;
    const epilogues = [{ relu: true, residual: false }, { relu: true, residual: true }, { relu: false, residual: true }];
    for (let k = 0; k < 9; k++) {
      const shape = [rng.int(1, 3), rng.int(2, 6), rng.int(2, 7), [3, 8, 12, 33, 64][k % 5]];
      const { relu, residual } = epilogues[k % 3];
      const x = Float32Array.from(await cpuData(shape, 500 + k), (v) => 3 * v + 10);
      const r = await cpuData(shape, 600 + k), w = await cpuData(shape, 700 + k);
      const c = shape[3];
      const gamma = await cpuData([c], 800 + k), beta = await cpuData([c], 900 + k);
      const run = () => {
        const xt = tf.tensor(x, shape), rt = tf.tensor(r, shape), wt = tf.tensor(w, shape), g = tf.tensor1d(gamma), b = tf.tensor1d(beta);
        const bn = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, rr: tf.Tensor) =>
          batchNormTrain(xx, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-5, { relu, residual: residual ? rr : undefined });
        const { y, mean, variance } = bn(xt, g, b, rt);
        const loss = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, rr: tf.Tensor) => tf.sum(tf.mul(bn(xx, gg, bb, rr).y, wt));
        const grads = residual ? tf.grads(loss)([xt, g, b, rt]) : tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => loss(xx, gg, bb, rt))([xt, g, b]);
        return [y, mean, variance, ...grads];
      };
      const ref = await valuesOn('cpu', run);
      await initBackend({ name: 'wasm', threads: 1 });
      const before = tf.memory().numTensors;
      const got = await valuesOn('wasm', run);
      assert.equal(tf.memory().numTensors, before, 'no tensors left');
      got.forEach((v, i) => {
        const name = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta', 'dresidual'][i];
        const d = relDiff(v, ref[i]);
        worst = Math.max(worst, d);
        assert.ok(d <= TOL, `shape [${shape}] relu ${relu} residual ${residual} output ${name}: ${d}`);
      });
      assert.equal(got.length, residual ? 7 : 6);
      if (relu) assert.ok(got[0].every((v) => v >= 0) && got[0].some((v) => v === 0), 'ReLU applied');
    }
    console.log(`    worst relative difference ${worst.toExponential(2)}`);
  });

  it('BatchNorm2d in eval mode applies the same epilogue with the running statistics', async () => {
    await initBackend({ name: 'wasm', threads: 1 });
    const bn = new BatchNorm2d(2);
    bn.eval();
    const out = tf.tidy(() => {
      const x = tf.tensor4d([1, -2, -3, 4], [1, 1, 2, 2]);
      const r = tf.tensor4d([0.5, 0.5, 1, -1], [1, 1, 2, 2]);
      return [bn.forward(x, { relu: true }), bn.forward(x, { residual: r }), bn.forward(x, { residual: r, relu: true })].map((t) => Array.from(t.dataSync()));
    });
    bn.dispose();
    // running mean 0, var 1, gamma 1, beta 0: bn(x) = x / sqrt(1 + 1e-5)
    const s = 1 / Math.sqrt(1 + 1e-5);
    const want = [[s, 0, 0, 4 * s], [s + 0.5, -2 * s + 0.5, -3 * s + 1, 4 * s - 1], [s + 0.5, 0, 0, 4 * s - 1]];
    out.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - want[i][j]) < 1e-6, `case ${i}[${j}]: ${v} vs ${want[i][j]}`)));
  });

  it('BatchNorm2d on wasm: running statistics as on cpu; tensor count flat over training steps', async () => {
    const shape = [4, 5, 6, 8];
    const x = await cpuData(shape, 7);
    const stats = async (backend: 'cpu' | 'wasm') => {
      await initBackend({ name: backend, threads: 1 });
      const bn = new BatchNorm2d(8);
      const xt = tf.tensor4d(x, shape as [number, number, number, number]);
      const counts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(bn.forward(xt))), [bn.weight, bn.bias]);
        tf.dispose([value, ...Object.values(grads)]);
        counts.push(tf.memory().numTensors);
      }
      const out = [Float32Array.from(bn.runningMean.dataSync()), Float32Array.from(bn.runningVar.dataSync())];
      assert.ok(counts.every((n) => n === counts[0]), `${backend}: tensor counts ${counts}`);
      xt.dispose();
      bn.dispose();
      return out;
    };
    const ref = await stats('cpu');
    const got = await stats('wasm');
    assert.ok(relDiff(got[0], ref[0]) <= TOL && relDiff(got[1], ref[1]) <= TOL, `running stats ${got} vs ${ref}`);
  });

  it('without the kernels (cpu backend) the composite runs', async () => {
    await initBackend({ name: 'cpu' });
    assert.equal(hasFusedBatchNormTrain(), false);
    const r = tf.tidy(() => {
      const { y, mean, variance } = batchNormTrain(tf.tensor2d([1, 2, 3, 5], [2, 2]), tf.tensor1d([1, 1]), tf.tensor1d([0, 0]), 0);
      return [y, mean, variance].map((t) => Array.from(t.dataSync()));
    });
    assert.deepEqual(r, [[-1, -1, 1, 1], [2, 3.5], [1, 2.25]]);
  });
});
