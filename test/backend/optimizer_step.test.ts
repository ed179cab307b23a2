/**
 * The optimizer-step kernels (wasm) against float64 closed forms and tfjs's ops on cpu: one AdamW
 * update on random shapes and attributes (step counts 1 and 1000, weight decay on and off,
 * clipping scales), the global norm over several tensors, non-finite values, the AdamW class
 * over several steps on both backends with a flat tensor count, and the composite path.
 */
import { strict as assert } from 'node:assert';
import { initBackend, tf } from '../../src/backend';
import { ADAMW_UPDATE, adamwUpdate, type AdamWUpdateAttrs, GLOBAL_NORM, globalNorm } from '../../src/backend/kernels/optimizer_step';
import { AdamW } from '../../src/train/optim';
import { cpuData, makeRng, relDiff, restoreBackendAfter, valuesOn } from './helpers';

const TOL = 1e-5;

/** One AdamW update in float64. */
function reference(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, a: AdamWUpdateAttrs): Float64Array[] {
  const out = [new Float64Array(p.length), new Float64Array(p.length), new Float64Array(p.length)];
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * a.gradScale;
    const mi = a.beta1 * m[i] + (1 - a.beta1) * gi;
    const vi = a.beta2 * v[i] + (1 - a.beta2) * gi * gi;
    out[0][i] = p[i] * a.decay - (a.stepSize * mi) / (Math.sqrt(vi) / a.bc2Sqrt + a.eps);
    out[1][i] = mi;
    out[2][i] = vi;
  }
  return out;
}

describe('backend/optimizer_step (AdamW update and global norm kernels)', function () {
  this.timeout(60000);
  restoreBackendAfter();

  it('AdamW update matches float64 and the cpu ops on random shapes and attributes', async () => {
    const rng = makeRng(5);
    let worst = 0;
    for (let k = 0; k < 8; k++) {
      const shape = k % 4 === 0 ? [rng.int(1, 9)] : [rng.int(1, 5), rng.int(1, 6), rng.int(1, 7), rng.int(1, 33)];
      const p = await cpuData(shape, 10 + k), g = await cpuData(shape, 20 + k);
      const m = Float32Array.from(await cpuData(shape, 30 + k), (x) => 0.1 * x);
      const v = Float32Array.from(await cpuData(shape, 40 + k), (x) => 0.01 * x * x); // >= 0
      const t = k % 2 === 0 ? 1 : 1000, lr = [1e-3, 3e-3, 0.1][k % 3];
      const attrs: AdamWUpdateAttrs = {
        beta1: 0.9, beta2: 0.999, stepSize: lr / (1 - 0.9 ** t), bc2Sqrt: Math.sqrt(1 - 0.999 ** t), eps: 1e-8,
        decay: k % 3 === 0 ? 1 : 1 - lr * 0.01, gradScale: k % 4 === 1 ? 0.37 : 1,
      };
      const run = () => adamwUpdate(tf.tensor(p, shape), tf.tensor(g, shape), tf.tensor(m, shape), tf.tensor(v, shape), attrs);
      const exact = reference(p, g, m, v, attrs);
      const ops = await valuesOn('cpu', run);
      await initBackend({ name: 'wasm', threads: 1 });
      assert.ok(tf.getKernel(ADAMW_UPDATE, 'wasm') !== undefined, 'kernel registered on wasm');
      const got = await valuesOn('wasm', run);
      got.forEach((out, i) => {
        const d = relDiff(out, exact[i]);
        worst = Math.max(worst, d);
        assert.ok(d <= TOL, `shape [${shape}] output ${['param', 'expAvg', 'expAvgSq'][i]}: kernel ${d}`);
        assert.ok(relDiff(ops[i], exact[i]) <= 1e-4, `shape [${shape}] output ${i}: cpu ops ${relDiff(ops[i], exact[i])}`);
      });
    }
    console.log(`    worst relative difference ${worst.toExponential(2)}`);
  });

  it('global norm over several tensors matches float64 and the cpu ops; NaN and Infinity propagate', async () => {
    const shapes = [[3], [2, 5], [4, 4, 3, 7], [1], [8, 33]];
    const data = await Promise.all(shapes.map((s, i) => cpuData(s, 50 + i)));
    let sq = 0;
    for (const d of data) for (const x of d) sq += x * x;
    const exact = Math.sqrt(sq);
    for (const backend of ['cpu', 'wasm'] as const) {
      await initBackend({ name: backend, threads: 1 });
      if (backend === 'wasm') assert.ok(tf.getKernel(GLOBAL_NORM, 'wasm') !== undefined);
      const ts = data.map((d, i) => tf.tensor(d, shapes[i]));
      const before = tf.memory().numTensors;
      const norm = globalNorm(ts);
      assert.equal(tf.memory().numTensors, before, `${backend}: no tensors left`);
      assert.ok(Math.abs(norm - exact) / exact <= TOL, `${backend}: ${norm} vs ${exact}`);
      // by hand: [3, 4] and [[12]] -> 13; an int32 tensor is cast
      const hand = [tf.tensor1d([3, 4]), tf.tensor2d([[12]]), tf.tensor1d([0], 'int32')];
      assert.equal(globalNorm(hand), 13);
      const bad = [tf.tensor1d([1, NaN]), tf.tensor1d([Infinity])];
      assert.ok(Number.isNaN(globalNorm(bad)), `${backend}: NaN`);
      assert.equal(globalNorm([bad[1]]), Infinity);
      tf.dispose([...ts, ...hand, ...bad]);
    }
  });

  it('AdamW over 5 steps with clipping scales: wasm as cpu, tensor count flat', async () => {
    const shapes: Array<[string, number[]]> = [['conv.weight', [3, 3, 4, 8]], ['conv.bias', [8]], ['fc.weight', [8, 5]]];
    const grads = await Promise.all([0, 1, 2, 3, 4].map((s) => Promise.all(shapes.map(([, sh], i) => cpuData(sh, 60 + 10 * s + i)))));
    const inits = await Promise.all(shapes.map(([, sh], i) => cpuData(sh, 90 + i)));
    const train = async (backend: 'cpu' | 'wasm') => {
      await initBackend({ name: backend, threads: 1 });
      const params = new Map(shapes.map(([name, sh], i) => [name, tf.variable(tf.tensor(inits[i], sh))]));
      const opt = new AdamW(params, { lr: 0.01, weightDecay: 0.05 });
      const counts: number[] = [];
      for (let s = 0; s < 5; s++) {
        const g = new Map(shapes.map(([name, sh], i) => [name, tf.tensor(grads[s][i], sh)]));
        opt.step(g, 0.01 * (1 - s / 10), [1, 0.5, 1, 0.1, 0.9][s]);
        tf.dispose([...g.values()]);
        counts.push(tf.memory().numTensors);
      }
      assert.ok(counts.every((n) => n === counts[0]), `${backend}: tensor counts ${counts}`);
      const state = opt.stateDict();
      const out = [...[...params.values()].map((p) => Float32Array.from(p.dataSync())), ...[...state.values()].map((t) => Float32Array.from(t.dataSync()))];
      tf.dispose([...state.values()]);
      opt.dispose();
      tf.dispose([...params.values()]);
      return out;
    };
    const ref = await train('cpu');
    const got = await train('wasm');
    got.forEach((v, i) => assert.ok(relDiff(v, ref[i]) <= 1e-4, `tensor ${i}: ${relDiff(v, ref[i])}`));
  });

  it('HOI2ANOMALY_FUSED_OPTIM=off runs the tfjs ops on wasm, with the same result', async () => {
    await initBackend({ name: 'wasm', threads: 1 });
    const attrs: AdamWUpdateAttrs = { beta1: 0.9, beta2: 0.999, stepSize: 0.1 / 0.1, bc2Sqrt: Math.sqrt(0.001), eps: 1e-8, decay: 0.99, gradScale: 0.5 };
    const run = () => tf.tidy(() => adamwUpdate(tf.tensor1d([1, -2]), tf.tensor1d([0.5, -1]), tf.zeros([2]), tf.zeros([2]), attrs).map((t) => Array.from(t.dataSync())));
    const fused = run();
    const profiled = async () => (await tf.profile(() => { tf.dispose(adamwUpdate(tf.tensor1d([1]), tf.tensor1d([1]), tf.zeros([1]), tf.zeros([1]), attrs)); })).kernelNames;
    assert.ok((await profiled()).includes(ADAMW_UPDATE));
    process.env.HOI2ANOMALY_FUSED_OPTIM = 'off';
    try {
      const ops = run();
      assert.ok(!(await profiled()).includes(ADAMW_UPDATE));
      // step 1 by hand: g = 0.25 / -0.5, m = 0.1 g, v = 0.001 g^2, update = lr * sign(g):
      //   p = 1 * 0.99 - 0.1 = 0.89, p = -2 * 0.99 + 0.1 = -1.88
      for (const r of [fused, ops]) {
        assert.ok(Math.abs(r[0][0] - 0.89) < 1e-6 && Math.abs(r[0][1] + 1.88) < 1e-6, `${r[0]}`);
        assert.ok(Math.abs(r[1][0] - 0.025) < 1e-8 && Math.abs(r[2][1] - 0.00025) < 1e-10, `${r[1]} ${r[2]}`);
      }
    } finally {
      delete process.env.HOI2ANOMALY_FUSED_OPTIM;
    }
  });
});
