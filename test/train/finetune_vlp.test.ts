/**
 * `finetune vlp` on a tiny synth set (64 px) with a 1-step extractor: the loss falls and the
 * verdict accuracy on the train split beats the majority-class rate; the tensor count stays flat
 * across steps, evaluation and checkpoints; --resume continues bit for bit (with dropout on); a
 * NaN stops the run with its step number; --init from a tiny GPT-2 checkpoint trains only the new
 * layers and the LoRA adapters.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../src/backend';
import { tf } from '../../src/backend/tf';
import { DatasetConfigSchema } from '../../src/config/dataset';
import { ExtractorConfigSchema } from '../../src/config/extractor';
import { loadConfig } from '../../src/config/load';
import { VlpConfigSchema } from '../../src/config/vlp';
import { buildDataset } from '../../src/data/build';
import { readSplit } from '../../src/data/loader';
import { CheckpointError } from '../../src/errors';
import { evaluateVlp, loadVlp } from '../../src/eval/vlp_eval';
import { log } from '../../src/logger';
import { isGpt2Parameter, writeTinyGpt2Checkpoint } from '../../src/models/vlp/gpt2_init';
import { isLoraParameter } from '../../src/models/vlp/lora';
import { readPointer } from '../../src/train/checkpoint';
import { finetuneVlp } from '../../src/train/finetune_vlp';
import { trainExtractor } from '../../src/train/train_extractor';
import { tmpDir } from '../helpers/tmp';

/**
 * A decoder small enough for about a step a second on 2 cores. Responses are cut to their first
 * 40 tokens: the verdict is the first sentence, so it is learned (and generated) without the
 * long box lists that follow.
 */
const TINY = [
  'model.dim=64', 'model.layers=2', 'model.heads=4', 'model.dropout=0', 'model.max_positions=96', 'model.instruction_length=16',
  'tokenizer.vocab_size=400', 'train.batch_size=8', 'train.log_every=1', 'train.eval_every=0', 'train.checkpoint_every=0',
  'train.eval_max_images=4', 'train.max_response_length=40', 'generate.max_length=40', 'train.schedule.warmup_steps=10',
  'train.schedule.lr=0.003', 'backend.name=wasm',
];
const config = (sets: string[]) => loadConfig(VlpConfigSchema, { sets: [...TINY, ...sets] });

describe('train/finetune_vlp (finetune vlp)', function () {
  this.timeout(600_000);
  let dir: string;
  let data: string;
  let extractor: string;
  before(async () => {
    log.level = 'silent';
    await initBackend({ name: 'wasm' });
    dir = tmpDir();
    data = path.join(dir, 'data');
    await buildDataset({ source: 'synth', out: data, config: loadConfig(DatasetConfigSchema, { sets: ['num_images=64', 'synth.image_size=64', 'seed=3'] }) });
    extractor = path.join(dir, 'extractor');
    const exCfg = loadConfig(ExtractorConfigSchema, {
      sets: ['model.width=0.25', 'model.input_size=64', 'model.neck_channels=8', 'model.head_channels=8', 'train.steps=1', 'train.batch_size=4', 'train.eval_every=0', 'train.eval_max_images=4', 'backend.name=wasm'],
    });
    await trainExtractor({ config: exCfg, data, out: extractor });
  });
  after(() => {
    log.level = 'info';
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('learns: the loss falls by a third and the verdict accuracy beats the majority class', async () => {
    const out = path.join(dir, 'learn');
    const s = await finetuneVlp({ config: config(['train.steps=120']), data, extractor, out });
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(s.losses.slice(0, 10)), last = mean(s.losses.slice(-10));
    assert.ok(last < 0.7 * first, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    // Always answering the more frequent verdict scores the majority rate; the untrained model
    // writes no verdict at all (0). Beating the majority rate means the verdict follows the inputs.
    const records = readSplit(data, 'train');
    const anomalous = records.filter((r) => r.label === 'anomalous').length / records.length;
    const majority = Math.max(anomalous, 1 - anomalous);
    const r = await evaluateVlp({ checkpoint: out, data, split: 'train', hoiSource: 'gt' });
    if (process.env.VLP_TEST_VERBOSE) console.log({ first, last, majority, steps_per_s: s.stepsPerSecond, ...r.metrics });
    assert.equal(r.metrics.images, records.length);
    assert.ok(r.metrics.verdict_accuracy > majority + 0.05, `verdict accuracy ${r.metrics.verdict_accuracy} vs majority ${majority.toFixed(3)}`);
    for (const f of ['config.yaml', 'tokenizer.json', 'metrics.jsonl', 'last', 'best', 'step-120/manifest.json', 'step-120/model.safetensors', 'step-120/optimizer.safetensors']) {
      assert.ok(fs.existsSync(path.join(out, f)), f);
    }
    assert.equal(fs.readdirSync(path.join(out, 'tb')).filter((f) => f.startsWith('events.out.tfevents.')).length, 1);
    const rows = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rows.filter((row) => row.loss !== undefined && row.split === undefined).map((row) => row.step), Array.from({ length: 120 }, (_, i) => i + 1));
    assert.ok(rows.some((row) => row.split === 'val' && typeof row.triplet_f1 === 'number' && typeof row.bleu4 === 'number'));
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'step-120/manifest.json'), 'utf8'));
    assert.equal(manifest.model_name, 'vlp_explainer');
    assert.deepEqual(Object.keys(manifest.run).sort(), ['categories', 'extractor', 'generate', 'hoi_inputs', 'init', 'lora', 'max_response_length', 'taxonomy', 'tokenizer_file', 'train_config', 'verbs']);
    assert.equal(manifest.run.extractor.input_size, 64);
    assert.deepEqual(manifest.run.extractor.visual_shape, [2, 2, 128]); // C5 of a quarter-width ResNet-18 at 64 px
  });

  it('--resume continues bit for bit (dropout on); the tensor count stays flat across steps, evaluation and checkpoints', async () => {
    const sets = ['train.steps=6', 'train.checkpoint_every=3', 'train.eval_every=3', 'model.dropout=0.1', 'generate.max_length=6'];
    const counts: number[] = [];
    const full = await finetuneVlp({ config: config(sets), data, extractor, out: path.join(dir, 'full'), afterStep: () => counts.push(tf.memory().numTensors) });
    assert.equal(full.losses.length, 6);
    assert.ok(counts.every((c) => c === counts[0]), `tensor counts per step: ${counts.join(' ')}`);

    const out = path.join(dir, 'resumed');
    const first = await finetuneVlp({ config: config(sets), data, extractor, out, afterStep: ({ step, stop }) => step === 2 && stop() });
    assert.equal(first.steps, 2);
    assert.ok(first.stoppedEarly);
    assert.ok(fs.existsSync(path.join(out, 'step-2')), 'a stop saves a checkpoint');
    await assert.rejects(finetuneVlp({ config: config(sets), data, extractor, out }), /pass --resume/);
    const rest = await finetuneVlp({ config: config(sets), data, extractor, out, resume: true });
    assert.deepEqual([...first.losses, ...rest.losses], full.losses);
    await assert.rejects(
      finetuneVlp({ config: config([...sets, 'model.layers=1']), data, extractor, out, resume: true }),
      (e: Error) => e instanceof CheckpointError && /model config differs/.test(e.message),
    );
  });

  it('a non-finite loss stops with the step number and keeps the last good checkpoint', async () => {
    const out = path.join(dir, 'nan');
    await assert.rejects(
      finetuneVlp({
        config: config(['train.steps=6', 'train.checkpoint_every=2']), data, extractor, out,
        afterStep: ({ step, model }) => {
          if (step === 3) {
            const w = model.namedParameters().get('ln_f.bias')!;
            w.assign(tf.fill(w.shape, NaN));
          }
        },
      }),
      /loss is NaN at step 4/,
    );
    assert.equal(path.basename(readPointer(out, 'last')!), 'step-2');
  });

  it('--init from a GPT-2 checkpoint: GPT-2 frozen, LoRA and the prefix layers train; eval loads it', async () => {
    const gpt2 = path.join(dir, 'gpt2');
    writeTinyGpt2Checkpoint(gpt2, { nEmbd: 32, nLayer: 2, nHead: 2, nPositions: 128, seed: 1 });
    const out = path.join(dir, 'init');
    let trainable: string[] = [];
    const s = await finetuneVlp({
      config: config(['train.steps=3', 'lora.rank=4', 'generate.max_length=6']), data, extractor, out, init: gpt2,
      afterStep: ({ model }) => (trainable = [...model.namedParameters()].filter(([, v]) => v.trainable).map(([n]) => n)),
    });
    assert.equal(s.steps, 3);
    assert.ok(s.losses.every(Number.isFinite), `losses ${s.losses}`);
    assert.ok(trainable.some(isLoraParameter) && trainable.includes('visual_proj.weight'), trainable.join(' '));
    assert.ok(!trainable.some(isGpt2Parameter), 'the GPT-2 weights are frozen');
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8')), JSON.parse(fs.readFileSync(path.join(gpt2, 'tokenizer.json'), 'utf8')));
    const loaded = loadVlp(out);
    assert.equal(loaded.model.config.dim, 32);
    assert.equal(loaded.run.lora?.rank, 4);
    loaded.model.dispose();
    const r = await evaluateVlp({ checkpoint: out, data, split: 'val', maxImages: 2 });
    assert.equal(r.explanations.length, 2);
  });
});
