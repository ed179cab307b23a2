import { strict as assert } from 'node:assert';
import { tf } from '../../src/backend/tf';
import { CheckpointError, ShapeError } from '../../src/errors';
import { assertNoLeak } from '../../src/train/leak_check';
import { AdamW, defaultNoDecay } from '../../src/train/optim';

function close(actual: ArrayLike<number>, expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (tol ${tol})`);
  }
}

/** AdamW by the textbook formulas, in float64, for one parameter vector. */
function referenceAdamW(p0: number[], grads: number[][], lrs: number[], wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8) {
  const p = p0.slice();
  const m = p0.map(() => 0);
  const v = p0.map(() => 0);
  const trace: number[][] = [];
  grads.forEach((g, k) => {
    const t = k + 1;
    const lr = lrs[k];
    for (let i = 0; i < p.length; i++) {
      p[i] -= lr * wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mhat = m[i] / (1 - b1 ** t);
      const vhat = v[i] / (1 - b2 ** t);
      p[i] -= (lr * mhat) / (Math.sqrt(vhat) + eps);
    }
    trace.push(p.slice());
  });
  return { p, m, v, trace };
}

describe('train/optim AdamW', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  const p0 = [1.0, -2.0];
  const grads = [[0.5, -1.0], [0.1, 0.3], [-0.2, 0.4]];
  const lrs = [0.1, 0.05, 0.02];

  it('matches hand-computed values for 3 steps (decayed and no-decay parameters)', () => {
    const w = tf.variable(tf.tensor1d(p0));
    const b = tf.variable(tf.tensor1d(p0));
    const opt = new AdamW(new Map([['fc.weight', w], ['fc.bias', b]]), { lr: 0.1, weightDecay: 0.1 });
    const ref = referenceAdamW(p0, grads, lrs, 0.1);
    const refNoDecay = referenceAdamW(p0, grads, lrs, 0);
    for (let k = 0; k < 3; k++) {
      const g = tf.tensor1d(grads[k]);
      opt.step(new Map([['fc.weight', g], ['fc.bias', g]]), lrs[k]);
      g.dispose();
      close(w.dataSync(), ref.trace[k], 1e-6, `weight after step ${k + 1}`);
      close(b.dataSync(), refNoDecay.trace[k], 1e-6, `bias after step ${k + 1}`);
    }
    // Step 1 by hand: mhat = g, vhat = g^2, so the update is lr * g / (|g| + eps):
    //   w = 1 * (1 - 0.1 * 0.1) - 0.1 * 0.5 / (0.5 + 1e-8) = 0.890000002
    //   w = -2 * 0.99 + 0.1 * 1 / (1 + 1e-8) = -1.880000001
    close(ref.trace[0], [0.890000002, -1.880000001], 1e-9, 'reference step 1');
    // And after step 3, the literal values of the reference (float64):
    close(ref.trace[2], [0.8368200834, -1.8439079758], 1e-9, 'reference step 3 (float64, computed separately)');
    const state = opt.stateDict();
    close(state.get('fc.weight.exp_avg')!.dataSync(), ref.m, 1e-7, 'exp_avg');
    close(state.get('fc.weight.exp_avg_sq')!.dataSync(), ref.v, 1e-9, 'exp_avg_sq');
    assert.equal(state.get('fc.weight.step')!.dataSync()[0], 3);
    assert.equal(state.get('step')!.dataSync()[0], 3);
    assert.deepEqual([...state.keys()].sort(), [
      'fc.bias.exp_avg', 'fc.bias.exp_avg_sq', 'fc.bias.step', 'fc.weight.exp_avg', 'fc.weight.exp_avg_sq', 'fc.weight.step', 'step',
    ]);
    for (const t of state.values()) t.dispose();
    opt.dispose();
    w.dispose();
    b.dispose();
  });

  it('accepts a NamedTensorMap and skips parameters without a gradient (own step count)', () => {
    const a = tf.variable(tf.tensor1d(p0));
    const c = tf.variable(tf.tensor1d(p0));
    const opt = new AdamW(new Map([['a.weight', a], ['c.weight', c]]), { lr: 0.1, weightDecay: 0.1 });
    const g0 = tf.tensor1d(grads[0]);
    opt.step({ 'a.weight': g0 }, lrs[0]); // c has no gradient: untouched
    close(c.dataSync(), p0, 0, 'c untouched');
    const g1 = tf.tensor1d(grads[1]);
    opt.step({ 'a.weight': g1, 'c.weight': g0 }, lrs[1]);
    // c's first update uses t = 1 bias correction with lr = lrs[1].
    close(c.dataSync(), referenceAdamW(p0, [grads[0]], [lrs[1]], 0.1).p, 1e-6, 'c after its first update');
    close(a.dataSync(), referenceAdamW(p0, grads.slice(0, 2), lrs.slice(0, 2), 0.1).p, 1e-6, 'a after two updates');
    g0.dispose();
    g1.dispose();
    opt.dispose();
    a.dispose();
    c.dispose();
  });

  it('loadStateDict continues exactly where stateDict left off', () => {
    const a = tf.variable(tf.tensor1d(p0));
    const opt = new AdamW(new Map([['a', a]]), { lr: 0.1, weightDecay: 0.1 });
    const g = grads.map((x) => tf.tensor1d(x));
    opt.step(new Map([['a', g[0]]]), 0.1);
    const saved = opt.stateDict();
    const savedP = a.clone();
    opt.step(new Map([['a', g[1]]]), 0.05);
    const expected = Array.from(a.dataSync());

    const a2 = tf.variable(savedP);
    const opt2 = new AdamW(new Map([['a', a2]]), { lr: 0.1, weightDecay: 0.1 });
    opt2.loadStateDict(saved);
    for (const t of saved.values()) t.dispose();
    opt2.step(new Map([['a', g[1]]]), 0.05);
    assert.deepEqual(Array.from(a2.dataSync()), expected);
    assert.equal(opt2.stepCount, 2);
    for (const t of g) t.dispose();
    for (const x of [opt, opt2]) x.dispose();
    for (const x of [a, a2]) x.dispose();
  });

  it('loadStateDict names missing, unexpected and mis-shaped entries', () => {
    const a = tf.variable(tf.tensor1d(p0));
    const opt = new AdamW(new Map([['a', a]]), { lr: 0.1 });
    const bad = new Map<string, tf.Tensor>([
      ['a.exp_avg', tf.zeros([3])],
      ['a.step', tf.scalar(1, 'int32')],
      ['step', tf.scalar(1, 'int32')],
      ['b.exp_avg', tf.zeros([2])],
    ]);
    assert.throws(() => opt.loadStateDict(bad), (e: unknown) => {
      assert.ok(e instanceof CheckpointError);
      assert.match(e.message, /'a\.exp_avg' has shape \[3\], parameter has \[2\]/);
      assert.match(e.message, /missing 'a\.exp_avg_sq'/);
      assert.match(e.message, /unexpected 'b\.exp_avg'/);
      return true;
    });
    for (const t of bad.values()) t.dispose();
    opt.dispose();
    a.dispose();
  });

  it('rejects gradients of unknown parameters or of the wrong shape', () => {
    const a = tf.variable(tf.tensor1d(p0));
    const opt = new AdamW(new Map([['a', a]]), { lr: 0.1 });
    const g3 = tf.zeros([3]);
    assert.throws(() => opt.step(new Map([['b', g3]])), (e: unknown) => e instanceof ShapeError && /unknown parameter 'b'/.test(e.message));
    assert.throws(() => opt.step(new Map([['a', g3]])), (e: unknown) => e instanceof ShapeError && /has shape \[3\], parameter has \[2\]/.test(e.message));
    assert.throws(() => new AdamW(new Map([['a', a]]), { lr: -1 }), /lr must be a finite number >= 0, got -1/);
    g3.dispose();
    opt.dispose();
    a.dispose();
  });

  it('does not leak tensors per step', async () => {
    const a = tf.variable(tf.randomNormal([4, 3], 0, 1, 'float32', 1));
    const opt = new AdamW(new Map([['a', a]]), { lr: 0.01 });
    const g = tf.onesLike(a);
    await assertNoLeak(() => opt.step(new Map([['a', g]])), { steps: 3, warmup: 1 });
    // Constructing and disposing the optimizer leaves nothing behind either.
    const before = tf.memory().numTensors;
    new AdamW(new Map([['a', a]]), { lr: 0.01 }).dispose();
    assert.equal(tf.memory().numTensors, before);
    g.dispose();
    opt.dispose();
    a.dispose();
  });

  it('defaultNoDecay excludes biases, norms and running statistics only', () => {
    const noDecay = [
      'fc.bias', 'bias', 'backbone.layer1.0.bn1.weight', 'backbone.bn1.bias', 'h.0.ln_1.weight', 'ln_f.weight',
      'decoder.ln2.weight', 'encoder.layernorm.weight', 'norm1.weight', 'head.groupNorm.weight', 'bn.running_mean',
      'layer.bn2.running_var', 'keras_bn.gamma', 'keras_bn.beta', 'blocks.0.ln.weight',
    ];
    const decay = [
      'fc.weight', 'backbone.conv1.weight', 'wte.weight', 'wpe.weight', 'h.0.attn.c_attn.weight', 'h.0.mlp.c_fc.weight',
      'lnx.weight', 'bnx.weight', 'biases.weight', 'head.linear.weight', 'label_embed.weight', 'learned.weight',
    ];
    for (const n of noDecay) assert.equal(defaultNoDecay(n), true, `${n} should not decay`);
    for (const n of decay) assert.equal(defaultNoDecay(n), false, `${n} should decay`);
  });
});
