/**
 * initBackend (cpu, wasm, threads in a child process, forced tensorflow without the package),
 * seeds, and our fixes of tfjs gradient functions (checked against hand-written references on
 * both backends).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import {
  activeBackend, currentSeed, describeBackend, initBackend, nextSeed, seedEverything, seedFor, SeedSequence, tf,
} from '../../src/backend';
import { BackendError, ConfigError } from '../../src/errors';
import { cpuData, dilateFilter, relDiff, restoreBackendAfter, subsampleFilter, valuesOn } from './helpers';

const BACKEND_MODULE = path.join(__dirname, '../../src/backend');

function resolvable(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

describe('backend: initBackend', function () {
  restoreBackendAfter();
  this.timeout(60_000);

  it('initializes cpu and reports it', async () => {
    const info = await initBackend({ name: 'cpu' });
    assert.deepEqual({ ...info, version: 'x' }, { name: 'cpu', threads: 1, simd: false, package: '@tensorflow/tfjs-backend-cpu', version: 'x' });
    assert.match(info.version, /^\d+\.\d+\.\d+/);
    assert.equal(tf.getBackend(), 'cpu');
    assert.equal(describeBackend(info), 'backend: cpu');
  });

  it('initializes wasm with SIMD and reports its thread count; idempotent', async () => {
    const info = await initBackend({ name: 'wasm' });
    assert.equal(info.name, 'wasm');
    assert.equal(info.simd, true);
    assert.equal(info.package, '@tensorflow/tfjs-backend-wasm');
    const wasm = require('@tensorflow/tfjs-backend-wasm') as { getThreadsCount(): number };
    assert.equal(info.threads, wasm.getThreadsCount());
    assert.ok(info.threads >= 1);
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(describeBackend(info), `backend: wasm (SIMD, ${info.threads} thread${info.threads === 1 ? '' : 's'})`);
    assert.equal(await initBackend({ name: 'wasm' }), info, 'second call returns the same info');
    assert.equal(await initBackend(), info, "'auto' keeps the active backend");
    await initBackend({ name: 'cpu' });
    assert.equal(tf.getBackend(), 'cpu');
    assert.equal(await initBackend({ name: 'wasm' }), info);
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(activeBackend(), info);
  });

  it('forced tensorflow without tfjs-node throws BackendError saying what to install', async function () {
    if (resolvable('@tensorflow/tfjs-node') || resolvable('@tensorflow/tfjs-node-gpu')) this.skip();
    await assert.rejects(initBackend({ name: 'tensorflow' }), (e: unknown) =>
      e instanceof BackendError && /npm install @tensorflow\/tfjs-node@/.test(e.message) && /tfjs-node-gpu/.test(e.message));
  });

  it('rejects an unknown name and a bad thread count with ConfigError', async () => {
    await assert.rejects(initBackend({ name: 'webgpu' as never }), (e: unknown) => e instanceof ConfigError && /auto, tensorflow, wasm, cpu/.test(e.message));
    await assert.rejects(initBackend({ name: 'wasm', threads: 0 }), ConfigError);
    await assert.rejects(initBackend({ name: 'wasm', threads: 1.5 }), ConfigError);
  });

  it('wasm with 1 and 2 threads (child processes): same numbers, process exits, clean stdout', () => {
    const script = `
      const b = require(${JSON.stringify(BACKEND_MODULE)});
      (async () => {
        await b.initBackend({ name: 'cpu' });
        b.tf.tidy(() => b.tf.add(b.tf.ones([2]), 1).dataSync()); // the cpu banner would print here
        const info = await b.initBackend({ name: 'wasm', threads: Number(process.argv[1]) });
        const tf = b.tf;
        const x = tf.randomNormal([2, 24, 24, 16], 0, 1, 'float32', 1);
        const w = tf.randomNormal([3, 3, 16, 16], 0, 1, 'float32', 2);
        const [gx, gw] = tf.grads((x, w) => tf.square(tf.conv2d(x, w, 2, 'same')).sum())([x, w]);
        const m = tf.matMul(tf.randomNormal([128, 128], 0, 1, 'float32', 3), tf.randomNormal([128, 128], 0, 1, 'float32', 4));
        const values = [gx, gw, m].map((t) => Array.from(t.dataSync()));
        process.stdout.write(JSON.stringify({ info, values }) + '\\n');
      })();`;
    const results = [1, 2].map((threads) => {
      const r = spawnSync(process.execPath, ['-e', script, String(threads)], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.error, undefined, `child with ${threads} threads: ${String(r.error)}`);
      assert.equal(r.status, 0, `child with ${threads} threads exited ${r.status} / ${r.signal}: ${r.stderr}`);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 1, `stdout must hold only the result, got: ${r.stdout.slice(0, 300)}`);
      assert.doesNotMatch(r.stdout + r.stderr, /Hi, looks like you are running TensorFlow\.js/);
      assert.match(r.stderr, new RegExp(`backend: wasm \\(SIMD, ${threads} threads?\\)`));
      return JSON.parse(lines[0]) as { info: { threads: number }; values: number[][] };
    });
    assert.equal(results[0].info.threads, 1);
    assert.equal(results[1].info.threads, 2, 'threaded wasm build with 2 threads');
    for (let i = 0; i < results[0].values.length; i++) {
      assert.ok(relDiff(results[1].values[i], results[0].values[i]) <= 1e-6, `output ${i} differs between 1 and 2 threads`);
    }
  });
});

describe('backend: seeds', () => {
  restoreBackendAfter();
  it('nextSeed repeats after seedEverything with the same seed, differs with another', () => {
    seedEverything(42);
    assert.equal(currentSeed(), 42);
    const a = [nextSeed(), nextSeed(), nextSeed(), nextSeed()];
    seedEverything(42);
    const b = [nextSeed(), nextSeed(), nextSeed(), nextSeed()];
    seedEverything(43);
    const c = [nextSeed(), nextSeed(), nextSeed(), nextSeed()];
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.equal(new Set(a).size, 4);
    for (const s of [...a, ...c]) assert.ok(Number.isInteger(s) && s >= 1 && s < 2 ** 31, String(s)); // tfjs: seed 0 = unseeded
  });

  it('seedFor depends on the name and base seed only, not on call order', () => {
    seedEverything(7);
    const w = seedFor('backbone.conv1.weight');
    nextSeed();
    nextSeed();
    assert.equal(seedFor('backbone.conv1.weight'), w);
    assert.notEqual(seedFor('backbone.conv1.bias'), w);
    assert.notEqual(seedFor('ab', 'c'), seedFor('a', 'bc'));
    seedEverything(8);
    assert.notEqual(seedFor('backbone.conv1.weight'), w);
    const s1 = new SeedSequence(5), s2 = new SeedSequence(5);
    assert.deepEqual([s1.next(), s1.next()], [s2.next(), s2.next()]);
    assert.throws(() => seedEverything(Number.NaN), RangeError);
  });

  it('seeded random ops give the same values on cpu and wasm', async () => {
    const draw = (): tf.Tensor[] => {
      seedEverything(3);
      return [tf.randomNormal([50], 0, 1, 'float32', nextSeed()), tf.randomUniform([50], 0, 1, 'float32', nextSeed()),
        tf.dropout(tf.ones([50]), 0.5, undefined, nextSeed())];
    };
    const cpu = await valuesOn('cpu', draw);
    const wasm = await valuesOn('wasm', draw);
    for (let i = 0; i < cpu.length; i++) assert.deepEqual(wasm[i], cpu[i]);
  });
});

describe('backend: gradient fixes (both backends, against hand-written references)', function () {
  restoreBackendAfter();
  this.timeout(60_000);
  const backends = ['cpu', 'wasm'] as const;

  it('conv2d with dilations: gradients equal those of the zero-filled dilated filter', async () => {
    const cases: Array<{ x: [number, number, number, number]; w: [number, number, number, number]; d: [number, number]; pad: 'same' | 'valid' }> = [
      { x: [2, 9, 8, 3], w: [3, 3, 3, 4], d: [2, 2], pad: 'same' },
      { x: [1, 11, 10, 2], w: [2, 3, 2, 3], d: [2, 3], pad: 'valid' },
      { x: [3, 7, 7, 1], w: [3, 2, 1, 2], d: [3, 1], pad: 'same' },
    ];
    for (const [i, c] of cases.entries()) {
      const xv = await cpuData(c.x, 50 + i), wv = await cpuData(c.w, 60 + i);
      const dl = dilateFilter(wv, c.w, c.d);
      const lossOf = (y: tf.Tensor): tf.Scalar => tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size, 1, 'float32'), y.shape))));
      for (const be of backends) {
        const [gx, gw] = await valuesOn(be, () => tf.grads((x: tf.Tensor, w: tf.Tensor) =>
          lossOf(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, c.pad, 'NHWC', c.d)))([tf.tensor(xv, c.x), tf.tensor(wv, c.w)]));
        const [rx, rw] = await valuesOn('cpu', () => tf.grads((x: tf.Tensor, w: tf.Tensor) =>
          lossOf(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, c.pad)))([tf.tensor(xv, c.x), tf.tensor(dl.w, dl.shape)]));
        assert.ok(relDiff(gx, rx) <= 1e-5, `${be} dx ${JSON.stringify(c)}: ${relDiff(gx, rx)}`);
        const rws = subsampleFilter(rw, dl.shape, c.d, c.w[0], c.w[1]);
        assert.ok(relDiff(gw, rws) <= 1e-5, `${be} dw ${JSON.stringify(c)}: ${relDiff(gw, rws)}`);
      }
    }
  });

  it('cumsum along a middle axis, plain and exclusive-reverse', async () => {
    const [A, T, C] = [2, 5, 3];
    const wt = Float32Array.from({ length: A * T * C }, (_, i) => Math.sin(i));
    // d/dx sum(wt * cumsum(x, 1)) [a, t, c] = sum_{u >= t} wt[a, u, c]; exclusive reverse: sum_{u < t}.
    const expectPlain = new Float32Array(A * T * C), expectExRev = new Float32Array(A * T * C);
    for (let a = 0; a < A; a++) {
      for (let c = 0; c < C; c++) {
        for (let t = 0; t < T; t++) {
          for (let u = 0; u < T; u++) {
            const v = wt[(a * T + u) * C + c];
            if (u >= t) expectPlain[(a * T + t) * C + c] += v;
            if (u < t) expectExRev[(a * T + t) * C + c] += v;
          }
        }
      }
    }
    for (const be of backends) {
      const [plain, exRev] = await valuesOn(be, () => {
        const x = tf.ones([A, T, C]);
        const w = tf.tensor(wt, [A, T, C]);
        return [tf.grad((v: tf.Tensor) => tf.sum(tf.mul(w, tf.cumsum(v, 1))))(x),
          tf.grad((v: tf.Tensor) => tf.sum(tf.mul(w, tf.cumsum(v, 1, true, true))))(x)];
      });
      assert.ok(relDiff(plain, expectPlain) <= 1e-6, `${be} cumsum`);
      assert.ok(relDiff(exRev, expectExRev) <= 1e-6, `${be} cumsum exclusive reverse`);
    }
  });

  it('squaredDifference with a broadcast operand reduces its gradient', async () => {
    const a = [1, 2, 3, 4, 5, 6], b = [0.5, -1, 2];
    // loss = sum((a - b)^2) over [2, 3]: d/db[j] = sum_i -2 (a[i, j] - b[j])
    const expectB = b.map((bj, j) => -2 * ((a[j] - bj) + (a[3 + j] - bj)));
    for (const be of backends) {
      const [ga, gb] = await valuesOn(be, () => tf.grads((x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.squaredDifference(x, y)))([tf.tensor2d(a, [2, 3]), tf.tensor1d(b)]));
      assert.deepEqual(Array.from(ga), a.map((v, i) => 2 * (v - b[i % 3])));
      assert.deepEqual(Array.from(gb), expectB);
    }
  });

  it('resize gradients are the exact adjoint of the forward (batch > 1, non-square, alignCorners, halfPixelCenters)', async () => {
    const [B, H, W, C] = [2, 4, 5, 2];
    const n = H * W * C;
    for (const nearest of [true, false]) {
      for (const [size, alignCorners, halfPixelCenters] of [[[7, 11], false, false], [[7, 11], true, false], [[9, 6], false, true], [[3, 3], false, true]] as const) {
        const resize = (v: tf.Tensor): tf.Tensor => nearest
          ? tf.image.resizeNearestNeighbor(v as tf.Tensor4D, [size[0], size[1]], alignCorners, halfPixelCenters)
          : tf.image.resizeBilinear(v as tf.Tensor4D, [size[0], size[1]], alignCorners, halfPixelCenters);
        const label = `${nearest ? 'nearest' : 'bilinear'} ${size} alignCorners=${alignCorners} halfPixelCenters=${halfPixelCenters}`;
        for (const be of backends) {
          const [grad, adjoint] = await valuesOn(be, () => {
            const wt = tf.sin(tf.reshape(tf.range(0, B * size[0] * size[1] * C, 1, 'float32'), [B, size[0], size[1], C]));
            const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(resize(v), wt)))(tf.ones([B, H, W, C]));
            // Adjoint from the forward itself: resize every one-hot image, weight, sum.
            const basis = resize(tf.reshape(tf.oneHot(tf.range(0, n, 1, 'int32'), n), [n, H, W, C])); // [n, oh, ow, C]
            const perImage = tf.unstack(wt).map((w) => tf.reshape(tf.sum(tf.mul(basis, w), [1, 2, 3]), [H, W, C]));
            return [g, tf.stack(perImage)];
          });
          assert.ok(relDiff(grad, adjoint) <= 1e-5, `${be} ${label}: ${relDiff(grad, adjoint)}`);
        }
      }
    }
  });

  it('batchNorm gradient (rank 2 and 4, training statistics) equals that of the elementary formula', async () => {
    for (const [shape, axes] of [[[6, 5], [0]], [[3, 4, 5, 6], [0, 1, 2]]] as Array<[number[], number[]]>) {
      const C = shape[shape.length - 1];
      const xv = await cpuData(shape, 81), gv = await cpuData([C], 82), ov = await cpuData([C], 83);
      const lossOf = (y: tf.Tensor): tf.Scalar => tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size, 1, 'float32'), y.shape))));
      const fused = (x: tf.Tensor, g: tf.Tensor, o: tf.Tensor): tf.Scalar => {
        const m = tf.moments(x, axes);
        return lossOf(tf.batchNorm(x, m.mean, m.variance, o, g, 1e-3));
      };
      const elementary = (x: tf.Tensor, g: tf.Tensor, o: tf.Tensor): tf.Scalar => {
        const m = tf.moments(x, axes);
        return lossOf(tf.add(tf.mul(tf.mul(tf.sub(x, m.mean), tf.rsqrt(tf.add(m.variance, 1e-3))), g), o));
      };
      for (const be of backends) {
        const inputs = (): tf.Tensor[] => [tf.tensor(xv, shape), tf.tensor(gv), tf.tensor(ov)];
        const got = await valuesOn(be, () => tf.grads(fused)(inputs()));
        const ref = await valuesOn(be, () => tf.grads(elementary)(inputs()));
        for (let i = 0; i < 3; i++) assert.ok(relDiff(got[i], ref[i]) <= 1e-4, `${be} [${shape}] grad ${i}: ${relDiff(got[i], ref[i])}`);
      }
    }
  });

  it('tile of a rank-5 tensor: gradient sums the copies', async () => {
    const xShape = [2, 1, 3, 1, 2], reps = [1, 3, 1, 2, 2];
    const yShape = xShape.map((d, i) => d * reps[i]);
    const ySize = yShape.reduce((p, d) => p * d, 1);
    const wt = Float32Array.from({ length: ySize }, (_, i) => Math.cos(i));
    const expect = new Float32Array(xShape.reduce((p, d) => p * d, 1));
    for (let i = 0; i < ySize; i++) {
      let rem = i, xi = 0, stride = 1;
      const idx: number[] = [];
      for (let k = yShape.length - 1; k >= 0; k--) { idx[k] = rem % yShape[k]; rem = Math.floor(rem / yShape[k]); }
      for (let k = xShape.length - 1; k >= 0; k--) { xi += (idx[k] % xShape[k]) * stride; stride *= xShape[k]; }
      expect[xi] += wt[i];
    }
    for (const be of backends) {
      const [g] = await valuesOn(be, () => [tf.grad((v: tf.Tensor) =>
        tf.sum(tf.mul(tf.tensor(wt, yShape), tf.tile(v, reps))))(tf.ones(xShape))]);
      assert.ok(relDiff(g, expect) <= 1e-6, `${be} tile rank 5`);
    }
  });
});
