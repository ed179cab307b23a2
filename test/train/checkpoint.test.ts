import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../../src/backend/tf';
import { CheckpointError } from '../../src/errors';
import { log } from '../../src/logger';
import {
  applyToModel, CHECKPOINT_FORMAT_VERSION, findLatestCheckpoint, listCheckpoints, loadCheckpoint, markBest,
  optimizerState, readPointer, saveCheckpoint,
} from '../../src/train/checkpoint';
import { clipCoefficient, globalNorm } from '../../src/train/clip';
import { assertNoLeak } from '../../src/train/leak_check';
import { AdamW } from '../../src/train/optim';
import { readSafetensors } from '../../src/train/safetensors';
import { lrAt, ScheduleConfigSchema } from '../../src/train/schedule';

// A 2-layer MLP regression: x [B, 4] -> relu(x W1 + b1) [B, 8] -> W2 + b2 [B, 1].
const SHAPES: Array<[string, number[]]> = [
  ['fc1.weight', [4, 8]], ['fc1.bias', [8]], ['fc2.weight', [8, 1]], ['fc2.bias', [1]],
];
const MLP_CONFIG = { in: 4, hidden: 8, out: 1 };
const SCHEDULE = ScheduleConfigSchema.parse({ kind: 'cosine', lr: 0.05, warmup_steps: 3, total_steps: 10, min_lr: 0.005 });
const MAX_NORM = 1.0;

/** Deterministic parameters (no RNG): a different `seed` gives different values. */
function buildMlp(seed: number): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  SHAPES.forEach(([name, shape], k) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: n }, (_, i) => 0.5 * Math.sin(seed * 7.1 + k * 3.3 + i * 1.7));
    const init = tf.tensor(values, shape);
    params.set(name, tf.variable(init));
    init.dispose(); // the variable holds its own reference to the data
  });
  return params;
}

/** The batch of step `step` (deterministic): 16 samples, y = sum of sin(x) + 0.5. */
function batch(step: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(step * 0.37 + i * 1.3) * 2);
  const y = Float32Array.from({ length: 16 }, (_, r) => {
    let s = 0.5;
    for (let c = 0; c < 4; c++) s += Math.sin(x[r * 4 + c]);
    return s;
  });
  return { x: tf.tensor2d(x, [16, 4]), y: tf.tensor2d(y, [16, 1]) };
}

function lossOf(params: Map<string, tf.Variable>, x: tf.Tensor2D, y: tf.Tensor2D): tf.Scalar {
  const h = tf.relu(x.matMul(params.get('fc1.weight')! as tf.Tensor2D).add(params.get('fc1.bias')!)); // [B, 8]
  const out = h.matMul(params.get('fc2.weight')! as tf.Tensor2D).add(params.get('fc2.bias')!); // [B, 1]
  return tf.losses.meanSquaredError(y, out) as tf.Scalar;
}

/** One training step (lr -> forward/backward -> clip -> step); returns loss and grad norm. */
function trainStep(params: Map<string, tf.Variable>, opt: AdamW, step: number): { loss: number; norm: number } {
  const { x, y } = batch(step);
  const vars = [...params.values()];
  const { value, grads } = tf.variableGrads(() => lossOf(params, x, y), vars);
  const named = new Map<string, tf.Tensor>();
  for (const [name, v] of params) named.set(name, grads[v.name]);
  const norm = globalNorm([...named.values()]);
  opt.step(named, lrAt(step, SCHEDULE), clipCoefficient(norm, MAX_NORM));
  for (const g of named.values()) g.dispose();
  const loss = value.dataSync()[0];
  for (const t of [value, x, y]) t.dispose();
  return { loss, norm };
}

function newOptimizer(params: Map<string, tf.Variable>): AdamW {
  return new AdamW(params, { lr: SCHEDULE.lr, weightDecay: 0.1 });
}

function disposeAll(params: Map<string, tf.Variable>, opt: AdamW): void {
  opt.dispose();
  for (const v of params.values()) v.dispose();
}

function save(runDir: string, step: number, params: Map<string, tf.Variable>, opt: AdamW, keepLast?: number): string {
  const state = opt.stateDict();
  const dir = saveCheckpoint(runDir, step, {
    model: params,
    optimizer: state,
    manifest: { model_name: 'mlp_tiny', model_config: MLP_CONFIG, metrics: { loss: 0.5 }, data_seed: 7 },
  }, { keepLast });
  for (const t of state.values()) t.dispose();
  return dir;
}

describe('train/checkpoint', () => {
  let root: string;
  before(async () => {
    await tf.setBackend('cpu');
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-test-'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('resumes bit for bit: 5 steps + checkpoint + reload + 5 steps == 10 steps', () => {
    const startTensors = tf.memory().numTensors;
    // Uninterrupted run.
    let params = buildMlp(1);
    let opt = newOptimizer(params);
    const full: number[] = [];
    const norms: number[] = [];
    for (let s = 0; s < 10; s++) {
      const r = trainStep(params, opt, s);
      full.push(r.loss);
      norms.push(r.norm);
    }
    disposeAll(params, opt);
    assert.ok(full[9] < full[0] * 0.8, `training should reduce the loss: ${full.join(', ')}`);
    assert.ok(norms.some((n) => n > MAX_NORM) && norms.some((n) => n <= MAX_NORM), `clipping should be exercised: norms ${norms.join(', ')}`);

    // Interrupted run: 5 steps, save, dispose everything.
    const runDir = path.join(root, 'resume');
    params = buildMlp(1);
    opt = newOptimizer(params);
    const first: number[] = [];
    for (let s = 0; s < 5; s++) first.push(trainStep(params, opt, s).loss);
    assert.deepEqual(first, full.slice(0, 5));
    save(runDir, 5, params, opt);
    disposeAll(params, opt);
    assert.equal(tf.memory().numTensors, startTensors);

    // A fresh process would start from other values: prove the load replaces them.
    params = buildMlp(2);
    opt = newOptimizer(params);
    const ckpt = loadCheckpoint(runDir);
    assert.equal(ckpt.step, 5);
    applyToModel(params, ckpt);
    const state = optimizerState(ckpt);
    opt.loadStateDict(state);
    for (const t of state.values()) t.dispose();
    const resumed: number[] = [];
    for (let s = ckpt.step; s < 10; s++) resumed.push(trainStep(params, opt, s).loss);
    disposeAll(params, opt);
    assert.deepEqual(resumed, full.slice(5), 'losses of steps 6..10 must be identical');
    assert.equal(tf.memory().numTensors, startTensors);
  });

  it('a training step leaks no tensors', async () => {
    const params = buildMlp(3);
    const opt = newOptimizer(params);
    let s = 0;
    await assertNoLeak(() => { trainStep(params, opt, s++); }, { steps: 3, warmup: 1 });
    disposeAll(params, opt);
  });

  it('writes the layout, manifest and pointers; loads step folders and run folders', () => {
    const runDir = path.join(root, 'layout');
    const params = buildMlp(4);
    const opt = newOptimizer(params);
    trainStep(params, opt, 0);
    const dir = save(runDir, 1, params, opt);
    assert.equal(dir, path.join(runDir, 'step-1'));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['manifest.json', 'model.safetensors', 'optimizer.safetensors']);
    assert.deepEqual(fs.readdirSync(runDir).sort(), ['last', 'step-1']);
    assert.equal(fs.readFileSync(path.join(runDir, 'last'), 'utf8'), 'step-1\n');
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.format_version, CHECKPOINT_FORMAT_VERSION);
    assert.equal(manifest.model_name, 'mlp_tiny');
    assert.deepEqual(manifest.model_config, MLP_CONFIG);
    assert.equal(manifest.step, 1);
    assert.equal(manifest.backend, 'cpu');
    assert.deepEqual(manifest.metrics, { loss: 0.5 });
    assert.equal(manifest.data_seed, 7);
    assert.ok(Math.abs(Date.parse(manifest.created) - Date.now()) < 60_000);
    const model = readSafetensors(path.join(dir, 'model.safetensors'));
    assert.deepEqual([...model.tensors.keys()], SHAPES.map(([n]) => n));
    assert.deepEqual(model.metadata, { format: 'hoi2anomaly', model_name: 'mlp_tiny', step: '1' });
    assert.deepEqual(model.tensors.get('fc1.weight')!.data, params.get('fc1.weight')!.dataSync());
    const optKeys = [...readSafetensors(path.join(dir, 'optimizer.safetensors')).tensors.keys()];
    assert.equal(optKeys.length, 4 * 3 + 1);

    save(runDir, 2, params, opt);
    assert.equal(loadCheckpoint(runDir).step, 2);
    assert.equal(loadCheckpoint(path.join(runDir, 'step-1')).step, 1);
    const light = loadCheckpoint(runDir, { withOptimizer: false });
    assert.equal(light.optimizer.size, 0);
    assert.throws(() => loadCheckpoint(runDir, { modelName: 'resnet18' }), /checkpoint of model 'mlp_tiny', expected 'resnet18'/);
    assert.throws(() => loadCheckpoint(runDir, { which: 'best' }), /no 'best' checkpoint has been marked/);
    markBest(runDir, 1);
    assert.equal(loadCheckpoint(runDir, { which: 'best' }).step, 1);
    assert.throws(() => markBest(runDir, 9), /step-9 is not a complete checkpoint/);
    disposeAll(params, opt);
  });

  it('findLatestCheckpoint skips staging and incomplete folders; a stale last pointer falls back', () => {
    const runDir = path.join(root, 'latest');
    const params = buildMlp(5);
    const opt = newOptimizer(params);
    save(runDir, 3, params, opt);
    save(runDir, 4, params, opt);
    // A crash mid-write leaves a hidden staging folder; a hand-made step-7 lacks its optimizer.
    fs.mkdirSync(path.join(runDir, '.step-9.tmp-abc123'));
    fs.writeFileSync(path.join(runDir, '.step-9.tmp-abc123', 'manifest.json'), '{"format_version":1}');
    fs.mkdirSync(path.join(runDir, 'step-7'));
    fs.copyFileSync(path.join(runDir, 'step-4', 'manifest.json'), path.join(runDir, 'step-7', 'manifest.json'));
    fs.copyFileSync(path.join(runDir, 'step-4', 'model.safetensors'), path.join(runDir, 'step-7', 'model.safetensors'));
    assert.equal(findLatestCheckpoint(runDir), path.join(runDir, 'step-4'));
    assert.deepEqual(listCheckpoints(runDir).map((c) => c.step), [3, 4]);
    assert.equal(findLatestCheckpoint(path.join(root, 'nothing-here')), null);
    assert.throws(() => loadCheckpoint(path.join(runDir, 'step-7')), /step-7: incomplete checkpoint/);
    fs.writeFileSync(path.join(runDir, 'last'), 'step-7\n');
    const level = log.level;
    log.level = 'silent'; // the fallback warns; keep test output clean
    try {
      assert.equal(loadCheckpoint(runDir).step, 4);
    } finally {
      log.level = level;
    }
    fs.writeFileSync(path.join(runDir, 'last'), '../../etc\n');
    assert.throws(() => readPointer(runDir, 'last'), /expected a folder name like 'step-100', found "..\/..\/etc"/);
    disposeAll(params, opt);
  });

  it('keepLast prunes old step folders but never best (nor last)', () => {
    const runDir = path.join(root, 'prune');
    const params = buildMlp(6);
    const opt = newOptimizer(params);
    save(runDir, 10, params, opt);
    markBest(runDir, 10);
    for (const s of [20, 30, 40]) save(runDir, s, params, opt, 2);
    assert.deepEqual(listCheckpoints(runDir).map((c) => c.step), [10, 30, 40]);
    assert.equal(readPointer(runDir, 'best'), path.join(runDir, 'step-10'));
    assert.equal(readPointer(runDir, 'last'), path.join(runDir, 'step-40'));
    disposeAll(params, opt);
  });

  it('a failed write leaves neither a step folder nor a staging folder, and last unchanged', () => {
    const runDir = path.join(root, 'crash');
    const params = buildMlp(7);
    const opt = newOptimizer(params);
    save(runDir, 1, params, opt);
    const bad = tf.complex([1], [1]); // has no safetensors dtype: the optimizer file write throws
    assert.throws(
      () => saveCheckpoint(runDir, 2, { model: params, optimizer: new Map([['x', bad]]), manifest: { model_name: 'mlp_tiny', model_config: {} } }),
      (e: unknown) => e instanceof CheckpointError && /tensor 'x' has dtype complex64/.test(e.message),
    );
    bad.dispose();
    assert.deepEqual(fs.readdirSync(runDir).sort(), ['last', 'step-1']);
    assert.equal(fs.readFileSync(path.join(runDir, 'last'), 'utf8'), 'step-1\n');
    disposeAll(params, opt);
  });

  it('checks the format version and the manifest step', () => {
    const runDir = path.join(root, 'version');
    const params = buildMlp(8);
    const opt = newOptimizer(params);
    const dir = save(runDir, 1, params, opt);
    const file = path.join(dir, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, JSON.stringify({ ...m, format_version: 99 }));
    assert.throws(() => loadCheckpoint(dir), /manifest\.json: format_version 99, this build reads format_version 1/);
    fs.writeFileSync(file, JSON.stringify({ ...m, step: 2 }));
    assert.throws(() => loadCheckpoint(dir), /manifest step 2 does not match the folder name step-1/);
    disposeAll(params, opt);
  });

  it('applyToModel lists missing and unexpected keys and shape mismatches with both shapes', () => {
    const runDir = path.join(root, 'apply');
    const params = buildMlp(9);
    const opt = newOptimizer(params);
    save(runDir, 1, params, opt);
    const ckpt = loadCheckpoint(runDir);
    const other = new Map<string, tf.Variable>([
      ['fc1.weight', tf.variable(tf.zeros([4, 16]))],
      ['fc1.bias', tf.variable(tf.zeros([8]))],
      ['head.weight', tf.variable(tf.zeros([8, 1]))],
    ]);
    assert.throws(() => applyToModel(other, ckpt), (e: unknown) => {
      assert.ok(e instanceof CheckpointError);
      assert.match(e.message, /does not fit the model/);
      assert.match(e.message, /missing keys \(1\): head\.weight/);
      assert.match(e.message, /unexpected keys \(2\): fc2\.weight, fc2\.bias/);
      assert.match(e.message, /shape\/dtype mismatch \(1\): fc1\.weight: checkpoint \[4,8\] vs model \[4,16\]/);
      return true;
    });
    // Non-strict loading tolerates missing/unexpected keys but never a shape mismatch.
    assert.throws(() => applyToModel(other, ckpt, { strict: false }), /fc1\.weight: checkpoint \[4,8\] vs model \[4,16\]/);
    other.get('fc1.weight')!.dispose();
    other.delete('fc1.weight');
    const before = tf.memory().numTensors;
    const r = applyToModel(other, ckpt, { strict: false });
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(r, { missing: ['head.weight'], unexpected: ['fc1.weight', 'fc2.weight', 'fc2.bias'] });
    assert.deepEqual(other.get('fc1.bias')!.dataSync(), params.get('fc1.bias')!.dataSync());
    for (const v of other.values()) v.dispose();
    disposeAll(params, opt);
  });
});
