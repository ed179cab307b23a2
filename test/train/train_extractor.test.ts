import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../src/backend';
import { tf } from '../../src/backend/tf';
import { main } from '../../src/cli/main';
import { DatasetConfigSchema } from '../../src/config/dataset';
import { ExtractorConfigSchema } from '../../src/config/extractor';
import { loadConfig } from '../../src/config/load';
import { buildDataset } from '../../src/data/build';
import { evaluateExtractor } from '../../src/eval/extractor_eval';
import { CheckpointError } from '../../src/errors';
import { log } from '../../src/logger';
import { PointHoiExtractor } from '../../src/models/hoi/point_hoi';
import { readPointer } from '../../src/train/checkpoint';
import { trainExtractor } from '../../src/train/train_extractor';
import { tmpDir, writePng } from '../helpers/tmp';

/** A model small enough to train on 2 cores in seconds: ResNet-18 at width 0.25, 64 px. */
const TINY = [
  'model.width=0.25', 'model.input_size=64', 'model.neck_channels=16', 'model.head_channels=16',
  'train.batch_size=4', 'train.log_every=1', 'train.eval_every=0', 'train.checkpoint_every=0',
  'train.schedule.warmup_steps=2', 'train.schedule.lr=0.003', 'backend.name=wasm',
];
const config = (sets: string[]) => loadConfig(ExtractorConfigSchema, { sets: [...TINY, ...sets] });

describe('train/train_extractor (train extractor, eval extractor)', function () {
  this.timeout(300_000);
  let dir: string;
  let data: string;
  before(async () => {
    log.level = 'silent';
    await initBackend({ name: 'wasm' });
    dir = tmpDir();
    data = path.join(dir, 'data');
    const dsConfig = loadConfig(DatasetConfigSchema, { sets: ['num_images=48', 'synth.image_size=64', 'seed=5'] });
    await buildDataset({ source: 'synth', out: data, config: dsConfig });
  });
  after(() => {
    log.level = 'info';
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('learns: the loss falls and HOI mAP rises above the untrained model', async () => {
    const out = path.join(dir, 'learn');
    const cfg = config(['train.steps=100', 'train.schedule.lr=0.004']);
    const s = await trainExtractor({ config: cfg, data, out });
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(s.losses.slice(0, 10));
    const last = mean(s.losses.slice(-10));
    assert.ok(last < 0.8 * first, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    const trained = await evaluateExtractor({ checkpoint: path.join(out, 'step-100'), data, split: 'train' });
    // The same architecture at its initial weights (seeded): what training has to beat.
    fs.mkdirSync(path.join(dir, 'init'));
    const init = await trainExtractor({ config: config(['train.steps=1', 'train.schedule.lr=1e-12', 'train.schedule.min_lr=0']), data, out: path.join(dir, 'init') });
    const untrained = await evaluateExtractor({ checkpoint: path.join(dir, 'init', 'step-1'), data, split: 'train' });
    assert.equal(init.steps, 1);
    assert.ok(trained.metrics.map > untrained.metrics.map + 0.005, `train-split mAP ${untrained.metrics.map} -> ${trained.metrics.map}`);
    for (const f of ['config.yaml', 'metrics.jsonl', 'last', 'step-100/manifest.json', 'step-100/model.safetensors', 'step-100/optimizer.safetensors']) {
      assert.ok(fs.existsSync(path.join(out, f)), f);
    }
    assert.equal(fs.readdirSync(path.join(out, 'tb')).filter((f) => f.startsWith('events.out.tfevents.')).length, 1);
    const rows = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rows.filter((r) => r.loss !== undefined).map((r) => r.step), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.ok(rows.some((r) => r.split === 'val' && typeof r.auc === 'number'));
  });

  it('--resume continues bit for bit; the tensor count stays flat across steps, evaluation and checkpoints', async () => {
    const sets = ['train.steps=6', 'train.checkpoint_every=3', 'train.eval_every=3'];
    const counts: number[] = [];
    const full = await trainExtractor({ config: config(sets), data, out: path.join(dir, 'full'), afterStep: () => counts.push(tf.memory().numTensors) });
    assert.equal(full.losses.length, 6);
    assert.ok(counts.every((c) => c === counts[0]), `tensor counts per step: ${counts.join(' ')}`);

    const out = path.join(dir, 'resumed');
    const first = await trainExtractor({ config: config(sets), data, out, afterStep: ({ step, stop }) => step === 2 && stop() });
    assert.equal(first.steps, 2);
    assert.ok(first.stoppedEarly);
    assert.ok(fs.existsSync(path.join(out, 'step-2')), 'a stop saves a checkpoint');
    await assert.rejects(trainExtractor({ config: config(sets), data, out }), /pass --resume/);
    const rest = await trainExtractor({ config: config(sets), data, out, resume: true });
    assert.deepEqual([...first.losses, ...rest.losses], full.losses);
    await assert.rejects(
      trainExtractor({ config: config([...sets, 'model.head_channels=8']), data, out, resume: true }),
      (e: Error) => e instanceof CheckpointError && /model config differs/.test(e.message),
    );
    await assert.rejects(trainExtractor({ config: config(sets), data, out: path.join(dir, 'none'), resume: true }), /nothing to resume/);
  });

  it('a non-finite loss stops with the step number and keeps the last good checkpoint', async () => {
    const out = path.join(dir, 'nan');
    await assert.rejects(
      trainExtractor({
        config: config(['train.steps=6', 'train.checkpoint_every=2']),
        data,
        out,
        afterStep: ({ step, model }) => {
          if (step === 3) {
            const w = (model as PointHoiExtractor).namedParameters().get('head.object_size.2.bias')!;
            w.assign(tf.fill(w.shape, NaN));
          }
        },
      }),
      /loss is NaN at step 4/,
    );
    assert.ok(fs.existsSync(path.join(out, 'step-2')));
    assert.ok(!fs.existsSync(path.join(out, 'step-4')));
    assert.equal(path.basename(readPointer(out, 'last')!), 'step-2');
  });

  it('trains the image-level classifier baseline and eval reports it beside the extractor', async () => {
    const clsOut = path.join(dir, 'cls');
    const s = await trainExtractor({ config: config(['model.kind=image_classifier', 'train.steps=8', 'train.best_metric=auc']), data, out: clsOut });
    assert.ok(s.losses.every(Number.isFinite));
    assert.ok(s.lastMetrics && Number.isFinite(s.lastMetrics.auc) && Number.isNaN(s.lastMetrics.map));
    const dump = path.join(dir, 'pred.json');
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => lines.push(String(chunk)) > 0) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(['eval', 'extractor', '--checkpoint', path.join(dir, 'full'), '--data', data, '--split', 'test', '--classifier', clsOut, '--dump', dump, '--json']);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(code, 0);
    const result = JSON.parse(lines.join('').trim().split('\n').pop()!);
    for (const k of ['map', 'map_rare', 'map_non_rare', 'auc', 'ap', 'images_per_s', 'baselines']) assert.ok(k in result, k);
    assert.deepEqual(Object.keys(result.baselines).sort(), ['image_classifier', 'weapon_present']);
    const dumped = JSON.parse(fs.readFileSync(dump, 'utf8'));
    assert.equal(dumped.images.length, result.images);
    for (const im of dumped.images) {
      assert.equal(typeof im.anomaly_score, 'number');
      for (const h of im.hois) assert.deepEqual(Object.keys(h).sort(), ['object_box', 'object_category', 'score', 'subject_box', 'verb']);
    }
  });

  it('Ctrl-C (SIGINT) saves a checkpoint and exits cleanly', async () => {
    const out = path.join(dir, 'sigint');
    const bin = path.resolve(__dirname, '../../../bin/hoi2anomaly.js');
    const args = ['train', 'extractor', '--data', data, '--out', out, ...TINY.flatMap((s) => ['--set', s]), '--set', 'train.steps=1000'];
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    const metrics = path.join(out, 'metrics.jsonl');
    const deadline = Date.now() + 120_000;
    while (!(fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').split('\n').length > 3) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
    const last = readPointer(out, 'last');
    assert.ok(last && /step-\d+$/.test(last), `last -> ${last}`);
    const step = Number(path.basename(last).slice(5));
    assert.ok(step >= 3 && step < 1000, `stopped at step ${step}`);
    assert.match(stderr, /interrupted/);
  });

  it('trains and evaluates on a dataset built from --source hico-det', async () => {
    const images = path.join(dir, 'hico-images');
    const entries = [];
    for (let i = 0; i < 10; i++) {
      const w = 80 + 8 * (i % 3);
      writePng(path.join(images, `img${i}.jpg`), w, 64, [40 + 20 * i, 90, 120]);
      entries.push({
        file_name: `img${i}.jpg`,
        annotations: [
          { bbox: [4, 8, 30, 60], category_id: 1 },
          { bbox: [36, 10, 62, 58], category_id: 1 },
          { bbox: [28, 20, 40, 34], category_id: 49 },
        ],
        hoi_annotation: [
          { subject_id: 0, object_id: i % 2 ? 1 : 2, category_id: i % 2 ? 93 : 37 }, // stab person / hold knife
        ],
      });
    }
    const anno = path.join(dir, 'hico.json');
    fs.writeFileSync(anno, JSON.stringify(entries));
    const hico = path.join(dir, 'hico-data');
    await buildDataset({ source: 'hico-det', out: hico, config: loadConfig(DatasetConfigSchema, { sets: ['splits.train=0.8', 'splits.val=0.2', 'splits.test=0'] }), annotations: anno, images });
    const out = path.join(dir, 'hico-run');
    const s = await trainExtractor({ config: config(['train.steps=4', 'train.batch_size=2']), data: hico, out });
    assert.equal(s.steps, 4);
    assert.ok(s.losses.every(Number.isFinite));
    const r = await evaluateExtractor({ checkpoint: out, data: hico, split: 'train' });
    assert.equal(r.metrics.images, r.predictions.length);
    assert.ok(r.predictions.length >= 6);
  });
});
