/**
 * `export onnx` on a tiny trained extractor: files and manifest, parity measured and recorded
 * (<= 1e-4), the dynamic batch axis, a weight changed after the tfjs reference refused with no
 * folder left behind, --vlp on a run that is no explainer refused, and the CLI (the explainer:
 * export_explainer.test.ts).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { tf } from '../../src/backend/tf';
import { main } from '../../src/cli/main';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/transforms';
import { CheckpointError, ExportError } from '../../src/errors';
import { readSplit } from '../../src/data/loader';
import { evaluateExtractor, loadExtractor } from '../../src/eval/extractor_eval';
import { youdenThreshold } from '../../src/eval/ranking';
import { exportModels, PARITY_TOLERANCE } from '../../src/export/export_models';
import { decodeModel } from '../../src/export/onnx_proto';
import { runTfjsMaps, sha256File } from '../../src/infer/engines';
import { readExportManifest } from '../../src/infer/manifest';
import { log } from '../../src/logger';
import { POINT_HOI_OUTPUTS, PointHoiExtractor } from '../../src/models/hoi/point_hoi';
import { tinyExtractorRun, TINY_STEPS, type TinyRun } from '../infer/fixture';

/** Names in `dir` that look like staging folders of `base`. */
function stagingLeftovers(dir: string, base: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.startsWith(`.${base}.tmp-`));
}

describe('export/export_models (export onnx)', function () {
  this.timeout(120_000);
  let fx: TinyRun;
  let out: string;
  before(async () => {
    log.level = 'silent';
    fx = await tinyExtractorRun();
    out = path.join(fx.root, 'export');
    await exportModels({ extractor: fx.run, out });
  });
  after(() => {
    log.level = 'info';
  });

  it('writes extractor.onnx and a manifest with classes, taxonomy, preprocessing, sources and parity', () => {
    assert.deepEqual(fs.readdirSync(out).sort(), ['extractor.onnx', 'manifest.json']);
    const m = readExportManifest(out);
    const run = loadExtractor(fx.run);
    run.model.dispose();
    assert.equal(m.format_version, 1);
    assert.equal(m.opset, 17);
    assert.equal(m.parity_tolerance, 1e-4);
    assert.deepEqual(m.categories, run.run.categories);
    assert.deepEqual(m.verbs, run.run.verbs);
    assert.deepEqual(m.compatible, run.run.compatible);
    assert.deepEqual(m.taxonomy, run.run.taxonomy);
    assert.deepEqual(m.decode, run.run.train_config.decode);
    assert.equal(m.input_size, 64);
    assert.deepEqual(m.mean, IMAGENET_MEAN);
    assert.deepEqual(m.std, IMAGENET_STD);
    assert.deepEqual(m.preprocess, { layout: 'NCHW', color: 'RGB', resize: 'letterbox', fill: 114, filter: m.preprocess.filter });
    assert.equal(m.output_stride, 4);
    assert.deepEqual(m.verdict.threshold, 0.5);
    assert.equal(m.verdict.source, 'default');
    assert.equal(m.tokenizer, null);
    assert.equal(m.models.vlp_prefix, undefined);
    const e = m.models.extractor;
    assert.equal(e.file, 'extractor.onnx');
    assert.equal(e.model_name, 'point_hoi');
    assert.deepEqual(e.inputs, [{ name: 'image', shape: ['batch', 3, 64, 64], dtype: 'float32', layout: 'NCHW' }]);
    assert.deepEqual(e.outputs.map((o) => o.name), POINT_HOI_OUTPUTS.map((o) => o.name));
    assert.deepEqual(e.outputs[0].shape, ['batch', 16, 16, m.categories.length]);
    assert.deepEqual(e.outputs[3].shape, ['batch', 16, 16, m.verbs.length]);
    // source: the run's checkpoint, relative to the export folder, with its weights' hash
    assert.equal(e.step, TINY_STEPS);
    assert.equal(path.resolve(out, e.source_checkpoint), path.join(fx.run, `step-${TINY_STEPS}`));
    assert.equal(e.source_sha256, sha256File(path.join(fx.run, `step-${TINY_STEPS}`, 'model.safetensors')));
    assert.equal(e.sha256, sha256File(path.join(out, 'extractor.onnx')));
    // parity: both sample inputs at batch 2, all six outputs, recorded and within tolerance
    assert.equal(e.parity.length, 12);
    assert.deepEqual([...new Set(e.parity.map((r) => `${r.input}/${r.batch}`))], ['random/2', 'images/2']);
    assert.ok(e.parity.every((r) => Number.isFinite(r.max_abs_diff) && r.max_abs_diff <= PARITY_TOLERANCE), JSON.stringify(e.parity));
    assert.equal(e.max_abs_diff, Math.max(...e.parity.map((r) => r.max_abs_diff)));
    console.log(`      extractor.onnx vs tfjs: max abs diff ${e.max_abs_diff.toExponential(2)}`);
  });

  it('the ONNX file: opset 17, metadata, and a batch of 3 (dynamic axis) matching tfjs', async () => {
    const bytes = fs.readFileSync(path.join(out, 'extractor.onnx'));
    const model = decodeModel(bytes);
    assert.equal(model.opset_import!.find((o) => !o.domain)!.version, 17);
    assert.equal(model.graph!.input![0].name, 'image');
    const meta = Object.fromEntries(model.metadata_props!.map((p) => [p.key, p.value]));
    assert.equal(meta.model_name, 'point_hoi');
    assert.equal(meta.input_layout, 'NCHW');

    const { model: tfModel } = loadExtractor(fx.run);
    const x = new Float32Array(3 * 3 * 64 * 64).map((_, i) => Math.sin(i * 0.37));
    const session = await ort.InferenceSession.create(bytes);
    const res = await session.run({ image: new ort.Tensor('float32', x, [3, 3, 64, 64]) });
    await session.release();
    const ref = await runTfjsMaps(tfModel as PointHoiExtractor, x, 3);
    tfModel.dispose();
    for (const { key, name } of POINT_HOI_OUTPUTS) {
      assert.deepEqual([...res[name].dims], ref.shapes[key], name);
      const a = res[name].data as Float32Array, b = ref.maps[key];
      let d = 0;
      for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
      assert.ok(d <= PARITY_TOLERANCE, `${name}: ${d}`);
    }
  });

  it('refuses an existing folder unless --overwrite; overwrite replaces it', async () => {
    await assert.rejects(exportModels({ extractor: fx.run, out }), (e: Error) => e instanceof ExportError && /already exists/.test(e.message));
    const before = fs.statSync(path.join(out, 'manifest.json')).mtimeMs;
    const r = await exportModels({ extractor: fx.run, out, overwrite: true, threshold: 0.3 });
    assert.equal(r.manifest.verdict.threshold, 0.3);
    assert.equal(r.manifest.verdict.source, 'user');
    assert.ok(fs.statSync(path.join(out, 'manifest.json')).mtimeMs >= before);
    assert.deepEqual(stagingLeftovers(fx.root, 'export'), []);
  });

  it('--calibrate-on: the threshold that best separates the val split (max TPR - FPR), recorded with its source', async () => {
    const calibrated = path.join(fx.root, 'export-calibrated');
    const r = await exportModels({ extractor: fx.run, out: calibrated, calibrateOn: fx.data });
    const { predictions } = await evaluateExtractor({ checkpoint: fx.run, data: fx.data, split: 'val' });
    const labels = new Map(readSplit(fx.data, 'val').map((rec) => [rec.id, rec.label === 'anomalous' ? 1 : 0] as const));
    const scores = predictions.map((p) => p.anomaly_score);
    const expected = youdenThreshold(scores, predictions.map((p) => labels.get(p.id)!));
    if (Number.isFinite(expected.threshold)) {
      assert.equal(r.manifest.verdict.source, 'calibrated');
      assert.equal(r.manifest.verdict.threshold, expected.threshold);
      assert.equal(r.manifest.verdict.calibration?.images, predictions.length);
    } else {
      assert.equal(r.manifest.verdict.source, 'default'); // the val split lacks a class
    }
    // A given threshold wins over calibration.
    const given = await exportModels({ extractor: fx.run, out: calibrated, overwrite: true, calibrateOn: fx.data, threshold: 0.25 });
    assert.equal(given.manifest.verdict.source, 'user');
    assert.equal(given.manifest.verdict.threshold, 0.25);
  });

  it('a graph that differs from tfjs (weight changed after the reference) is refused and leaves no folder', async () => {
    const bad = path.join(fx.root, 'export-bad');
    const tensorsBefore = tf.memory().numTensors;
    await assert.rejects(
      exportModels({
        extractor: fx.run, out: bad,
        afterReference: (model) => {
          const w = model.namedParameters().get('head.object_size.2.bias')!;
          tf.tidy(() => w.assign(tf.add(w, 1e-3)));
        },
      }),
      (e: Error) => e instanceof ExportError
        && /^extractor\.onnx: output 'object_size' on the random input \(batch 2\) differs from tfjs by 1\.0\de-3 .*tolerance 1e-4.*refused$/.test(e.message)
        && !e.message.includes('\n'),
    );
    assert.ok(!fs.existsSync(bad));
    assert.deepEqual(stagingLeftovers(fx.root, 'export-bad'), []);
    assert.equal(tf.memory().numTensors, tensorsBefore, 'the model is disposed on failure');
  });

  it('--vlp naming a run that is no explainer is refused, leaving no folder', async () => {
    const vlpOut = path.join(fx.root, 'export-not-vlp');
    await assert.rejects(exportModels({ extractor: fx.run, vlp: fx.run, out: vlpOut }), (e: Error) => e instanceof CheckpointError && /not an explainer checkpoint/.test(e.message) && !e.message.includes('\n'));
    assert.ok(!fs.existsSync(vlpOut));
    assert.deepEqual(stagingLeftovers(fx.root, 'export-not-vlp'), []);
  });

  it('CLI: export onnx --json prints the manifest; a missing run exits 1 with one line', async () => {
    const cliOut = path.join(fx.root, 'export-cli');
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => lines.push(String(chunk)) > 0) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(['export', 'onnx', '--extractor', fx.run, '--out', cliOut, '--json', '--backend', 'wasm']);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(code, 0);
    const m = JSON.parse(lines.join('').trim().split('\n').pop()!);
    assert.equal(m.models.extractor.file, 'extractor.onnx');
    assert.ok(fs.existsSync(path.join(cliOut, 'extractor.onnx')));
    assert.equal(await main(['export', 'onnx', '--extractor', path.join(fx.root, 'nope'), '--out', path.join(fx.root, 'x')]), 1);
    assert.ok(!fs.existsSync(path.join(fx.root, 'x')));
  });
});
