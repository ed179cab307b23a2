/**
 * LoRA adapters on Linear: the output is unchanged when enabled (B = 0), equals
 * x (W + A B alpha/r) + b once B moves, survives mergeLora, trains only the adapters when the base
 * is frozen, and exports to ONNX with the same numbers (onnxruntime-node, max abs diff <= 1e-5).
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../../src/backend/tf';
import { ConfigError } from '../../../src/errors';
import { OnnxGraph } from '../../../src/export/onnx_graph';
import { Linear } from '../../../src/models/nn';
import { feed, maxAbsDiff, randn, runOrt, singleIoGraph } from './parity_helpers';

const TOL = 1e-5;

function diffOf(a: tf.Tensor, b: tf.Tensor): number {
  return maxAbsDiff(a.dataSync(), b.dataSync());
}

/** x (W + A B s) + b with plain tf ops, x [..., in]. */
function referenceForward(lin: Linear, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const lora = lin.loraAdapters;
    let w: tf.Tensor = lin.weight;
    if (lora) w = tf.add(w, tf.mul(tf.matMul(lora.a, lora.b), lora.scale)); // [in, out]
    const y = tf.matMul(x.reshape([-1, lin.inFeatures]), w as tf.Tensor2D); // [N, out]
    return tf.add(y, lin.bias ?? tf.scalar(0)).reshape([...x.shape.slice(0, -1), lin.outFeatures]);
  });
}

/** A Linear(6, 5) with rank-3 adapters and a non-zero lora_B. */
function trainedLoraLinear(seed: number, alpha = 6): Linear {
  const lin = new Linear(6, 5, { seed });
  lin.enableLora({ rank: 3, alpha });
  const b = randn([3, 5], seed + 1, 0.5);
  lin.loraAdapters?.b.assign(b);
  b.dispose();
  return lin;
}

describe('nn Linear: LoRA adapters', function () {
  this.timeout(30000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('registers lora_A [in, r] (kaiming-uniform) and lora_B [r, out] (zeros); output unchanged', () => {
    const lin = new Linear(6, 5, { seed: 1 });
    const x = randn([2, 4, 6], 2);
    const before = lin.forward(x);
    lin.enableLora({ rank: 3, alpha: 12 });
    const params = lin.namedParameters();
    assert.deepEqual([...params.keys()], ['weight', 'bias', 'lora_A', 'lora_B']);
    assert.deepEqual(params.get('lora_A')?.shape, [6, 3]);
    assert.deepEqual(params.get('lora_B')?.shape, [3, 5]);
    assert.equal(lin.loraAdapters?.scale, 4);
    const a = Array.from(params.get('lora_A')?.dataSync() ?? []);
    const bound = 1 / Math.sqrt(6);
    assert.ok(a.every((v) => Math.abs(v) <= bound) && a.some((v) => Math.abs(v) > bound / 2), `lora_A values ${a}`);
    assert.ok(Array.from(params.get('lora_B')?.dataSync() ?? []).every((v) => v === 0));
    const after = lin.forward(x);
    assert.equal(diffOf(before, after), 0);
    tf.dispose([x, before, after]);
    lin.dispose();
  });

  it('forward == x (W + A B alpha/r) + b once lora_B is non-zero', () => {
    const lin = trainedLoraLinear(10);
    const x = randn([2, 4, 6], 11);
    const plain = tf.tidy(() => tf.add(tf.matMul(x.reshape([8, 6]), lin.weight as tf.Tensor2D), lin.bias as tf.Tensor).reshape([2, 4, 5]));
    const y = lin.forward(x);
    const ref = referenceForward(lin, x);
    assert.deepEqual(y.shape, [2, 4, 5]);
    assert.ok(diffOf(y, ref) <= TOL, `max abs diff ${diffOf(y, ref)}`);
    // The adapters contribute: the test would pass trivially otherwise.
    assert.ok(diffOf(y, plain) > 1e-2, `LoRA changes the output by only ${diffOf(y, plain)}`);
    tf.dispose([x, plain, y, ref]);
    lin.dispose();
  });

  it('mergeLora folds the update into weight, removes the adapters and keeps the output', () => {
    const lin = trainedLoraLinear(20, 1.5); // scale 0.5
    const x = randn([3, 6], 21);
    const withAdapters = lin.forward(x);
    const expectedWeight = tf.tidy(() => {
      const l = lin.loraAdapters;
      assert.ok(l);
      return tf.add(lin.weight, tf.mul(tf.matMul(l.a, l.b), 0.5));
    });
    const numTensors = tf.memory().numTensors;
    lin.mergeLora();
    assert.equal(tf.memory().numTensors, numTensors - 2, 'the two adapter variables are disposed, nothing else leaks');
    assert.equal(lin.loraAdapters, null);
    assert.deepEqual([...lin.namedParameters().keys()], ['weight', 'bias']);
    assert.ok(diffOf(lin.weight, expectedWeight) <= 1e-6);
    const merged = lin.forward(x);
    assert.ok(diffOf(withAdapters, merged) <= TOL, `max abs diff ${diffOf(withAdapters, merged)}`);
    lin.mergeLora(); // nothing left to merge: a no-op
    lin.enableLora({ rank: 2 }); // and LoRA can be enabled again
    assert.deepEqual(lin.namedParameters().get('lora_A')?.shape, [6, 2]);
    tf.dispose([x, withAdapters, expectedWeight, merged]);
    lin.dispose();
  });

  it('with the base frozen first, gradients reach only lora_A and lora_B', () => {
    const lin = new Linear(6, 5, { seed: 30 });
    lin.setTrainable(false);
    lin.enableLora({ rank: 2, alpha: 4 });
    const b = randn([2, 5], 31, 0.5);
    lin.loraAdapters?.b.assign(b);
    const x = randn([4, 6], 32);
    const target = randn([4, 5], 33);
    const trainable = lin.trainableVariables();
    const params = lin.namedParameters();
    assert.ok(trainable.length === 2 && trainable[0] === params.get('lora_A') && trainable[1] === params.get('lora_B'), 'only the adapters are trainable');
    assert.equal(params.get('weight')?.trainable, false);
    assert.equal(params.get('bias')?.trainable, false);
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(lin.forward(x), target))) as tf.Scalar);
    const names = trainable.map((v) => v.name);
    assert.deepEqual(Object.keys(grads).sort(), names.slice().sort());
    for (const n of names) {
      const g = grads[n].dataSync();
      assert.ok(g.some((v) => Math.abs(v) > 1e-6), `gradient of ${n} is zero`);
    }
    // Analytic dL/dB = s (x A)^T dL/dy, with dL/dy = 2 (y - t) / numel.
    const expectedGradB = tf.tidy(() => {
      const l = lin.loraAdapters;
      assert.ok(l);
      const dy = tf.mul(tf.sub(lin.forward(x), target), 2 / 20);
      return tf.mul(tf.matMul(tf.matMul(x, l.a as tf.Tensor2D), dy, true, false), l.scale);
    });
    assert.ok(diffOf(grads[params.get('lora_B')?.name ?? ''], expectedGradB) <= 1e-5);
    tf.dispose([b, x, target, value, expectedGradB, ...Object.values(grads)]);
    lin.dispose();
  });

  it('dropout applies to the adapter input in training mode only', () => {
    const lin = new Linear(6, 5, { seed: 40 });
    lin.enableLora({ rank: 3, dropout: 0.5 });
    const b = randn([3, 5], 41, 0.5);
    lin.loraAdapters?.b.assign(b);
    const x = randn([8, 6], 42);
    lin.eval();
    const evalOut = lin.forward(x);
    const ref = referenceForward(lin, x);
    assert.ok(diffOf(evalOut, ref) <= TOL);
    lin.train();
    const trainOut = lin.forward(x);
    assert.ok(diffOf(trainOut, ref) > 1e-3, 'training-mode dropout changes the output');
    tf.dispose([b, x, evalOut, ref, trainOut]);
    lin.dispose();
  });

  it('rejects a bad rank, alpha or dropout and a second enableLora (ConfigError naming the layer)', () => {
    const lin = new Linear(4, 4, { seed: 50 });
    assert.throws(() => lin.enableLora({ rank: 0 }), (e: Error) => e instanceof ConfigError && /lora\.rank must be an integer >= 1, got 0/.test(e.message));
    assert.throws(() => lin.enableLora({ rank: 1.5 }), ConfigError);
    assert.throws(() => lin.enableLora({ rank: 2, alpha: -1 }), /lora\.alpha/);
    assert.throws(() => lin.enableLora({ rank: 2, dropout: 1 }), /lora\.dropout/);
    assert.deepEqual([...lin.namedParameters().keys()], ['weight', 'bias'], 'a rejected call registers nothing');
    lin.enableLora({ rank: 2 });
    assert.throws(() => lin.enableLora({ rank: 2 }), (e: Error) => e instanceof ConfigError && /Linear\(weight\)\.enableLora: LoRA is already enabled \(rank 2\)/.test(e.message));
    lin.dispose();
  });

  it('forward leaves no tensors behind', () => {
    const lin = trainedLoraLinear(60);
    const x = randn([2, 3, 6], 61);
    lin.forward(x).dispose();
    const n = tf.memory().numTensors;
    lin.forward(x).dispose();
    assert.equal(tf.memory().numTensors, n);
    x.dispose();
    lin.dispose();
  });

  it('ONNX: MatMul/MatMul/Mul/Add matches tfjs; after mergeLora the graph has no adapters', async () => {
    const lin = trainedLoraLinear(70, 12);
    lin.eval();
    const x = randn([2, 4, 6], 71, 2);
    const emit = (name: string): { bytes: Uint8Array; initializers: string[] } => {
      let names: string[] = [];
      const bytes = singleIoGraph(name, ['batch', 'seq', 6], ['batch', 'seq', 5], (g: OnnxGraph, xin: string) => {
        const y = lin.toOnnx(g, xin);
        names = ['weight', 'bias', 'lora_A', 'lora_B'].filter((n) => g.hasInitializer(n));
        return y;
      });
      return { bytes, initializers: names };
    };

    const y = lin.forward(x);
    const withLora = emit('linear_lora');
    assert.deepEqual(withLora.initializers, ['weight', 'bias', 'lora_A', 'lora_B']);
    const out = await runOrt(withLora.bytes, { x: feed(x) });
    assert.deepEqual(out.y.dims, [2, 4, 5]);
    const diff = maxAbsDiff(out.y.data, y.dataSync());
    assert.ok(diff <= TOL, `LoRA export: max abs diff ${diff} > ${TOL}`);

    lin.mergeLora();
    const merged = emit('linear_merged');
    assert.deepEqual(merged.initializers, ['weight', 'bias']);
    const outMerged = await runOrt(merged.bytes, { x: feed(x) });
    const diffMerged = maxAbsDiff(outMerged.y.data, y.dataSync());
    assert.ok(diffMerged <= TOL, `merged export: max abs diff ${diffMerged} > ${TOL}`);
    tf.dispose([x, y]);
    lin.dispose();
  });
});
