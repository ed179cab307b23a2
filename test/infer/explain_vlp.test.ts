/**
 * `explain` with an explainer in the export: the HOI slots (boxes normalized by the image's own
 * size, letterbox undone; min score, max_hois, padding), both engines giving the same explanation
 * text for the same images, the ONNX driver equal to tfjs `generate` under beam search (rows
 * reordered), the explanation in results, annotated PNGs and `--json`, and a manifest whose
 * explainer keys are incomplete refused.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { OriginalInfo } from '../../src/data/loader';
import { DataError } from '../../src/errors';
import { loadExtractor } from '../../src/eval/extractor_eval';
import { loadVlp } from '../../src/eval/vlp_eval';
import { exportModels } from '../../src/export/export_models';
import * as ortModule from 'onnxruntime-node';
import { gatherRows, OnnxVlpRunner } from '../../src/infer/explain_onnx';
import { disposeVlpInputs, explainerVisual, vlpInputsOf } from '../../src/infer/explain_tfjs';
import { explainerArrays, explainerGenerateOptions, explainerSlots } from '../../src/infer/explainer_inputs';
import { type ExportManifest, readExportManifest } from '../../src/infer/manifest';
import { explainImages, type ExplainReport } from '../../src/infer/pipeline';
import { prepareImageFile, preprocessSpec } from '../../src/infer/preprocess';
import { log } from '../../src/logger';
import type { AnnotatedTriplet } from '../../src/models/hoi/decode';
import { PointHoiExtractor } from '../../src/models/hoi/point_hoi';
import { generate } from '../../src/models/vlp/generate';
import { tinyExtractorRun, writeSampleImages, type SampleImages, type TinyRun } from './fixture';
import { writeTinyVlpRun } from './vlp_fixture';

const REPO = path.resolve(__dirname, '..', '..', '..');

function triplet(subjectBox: [number, number, number, number], objectBox: [number, number, number, number], score: number, verb: string, objectCategory: string): AnnotatedTriplet {
  return {
    subjectBox, objectBox, score, verb, objectCategory, subjectScore: 1, objectScore: 1, interactionScore: score, interactionPoint: [0, 0],
    anomaly: null, severity: null, weight: 0, anomalyScore: 0,
  };
}

describe('infer/explain with the VLP explainer', function () {
  this.timeout(120_000);
  let fx: TinyRun;
  let model: string;
  let manifest: ExportManifest;
  let images: SampleImages;
  let onnx: ExplainReport;
  let out: string;
  before(async () => {
    log.level = 'silent';
    fx = await tinyExtractorRun();
    const vlpRun = writeTinyVlpRun(fx, { name: 'vlp-explain-run' });
    model = path.join(fx.root, 'explain-vlp-export');
    await exportModels({ extractor: fx.run, vlp: vlpRun, out: model });
    manifest = readExportManifest(model);
    images = await writeSampleImages(fx.data, path.join(fx.root, 'vlp-images'));
    out = path.join(fx.root, 'explain-vlp-onnx');
    onnx = await explainImages([images.folder], { model, engine: 'onnx', out });
  });
  after(() => {
    log.level = 'info';
  });

  it('HOI slots: boxes in the image\'s own pixels normalized by its size, best first, min score, max_hois, padding', () => {
    const e = { ...manifest.explainer!, hoi_min_score: 0.2, max_hois: 2 };
    // a 200x100 image letterboxed into 64 px: scale 0.32, 16 px bands above and below
    const original: OriginalInfo = { id: 'x', width: 200, height: 100, scale: 0.32, padX: 0, padY: 16, flipped: false, cropX: 0, cropY: 0, cropWidth: 200, cropHeight: 100 };
    const [cat, verbs] = [manifest.categories, manifest.verbs];
    const obj = cat.find((c) => c !== 'person')!;
    const slots = explainerSlots([
      triplet([0, 16, 32, 48], [32, 24, 64, 40], 0.5, verbs[1], obj), // -> [0, 0, 100, 100] and [100, 25, 200, 75] px
      triplet([0, 16, 64, 48], [0, 16, 64, 48], 0.9, verbs[0], obj),
      triplet([0, 16, 64, 48], [0, 16, 64, 48], 0.3, verbs[0], obj), // cut by max_hois
      triplet([0, 16, 64, 48], [0, 16, 64, 48], 0.1, verbs[0], obj), // below min score
    ], original, e, manifest);
    assert.equal(slots.length, 2);
    assert.deepEqual(slots.map((s) => s.verb), [0, 1], 'best first');
    assert.equal(slots[1].subject, cat.indexOf('person'));
    assert.equal(slots[1].object, cat.indexOf(obj));
    assert.deepEqual(slots[1].subjectBox, [0, 0, 0.5, 1]);
    assert.deepEqual(slots[1].objectBox, [0.5, 0.25, 1, 0.75]);
    assert.deepEqual(slots[0].subjectBox, [0, 0, 1, 1]);
    // arrays: 3 slots per row, the free one padding; the instruction on every row
    const a = explainerArrays([slots, []], { ...manifest.explainer!, max_hois: 3 }, manifest);
    assert.deepEqual([...a.hoiVerb], [0, 1, verbs.length, verbs.length, verbs.length, verbs.length]);
    assert.deepEqual([...a.hoiObject.slice(2, 6)], new Array(4).fill(cat.length));
    assert.deepEqual([...a.hoiObjectBox.slice(4, 8)], [0.5, 0.25, 1, 0.75]);
    assert.deepEqual([...a.hoiObjectBox.slice(8, 24)], new Array(16).fill(0));
    assert.deepEqual([...a.instruction.slice(24)], manifest.explainer!.instruction_ids);
  });

  it('the ONNX driver equals tfjs generate under beam search (rows reordered and dropped)', async () => {
    const e = { ...manifest.explainer!, generate: { ...manifest.explainer!.generate, strategy: 'beam' as const, beam_size: 3, max_length: 8 } };
    const spec = preprocessSpec(manifest);
    const prepared = await Promise.all([images.plain, images.exif].map((f) => prepareImageFile(f, spec)));
    const data = new Float32Array(prepared.flatMap((p) => [...p.input]));
    const slots = [
      explainerSlots([triplet([4, 4, 30, 60], [20, 10, 60, 40], 0.8, manifest.verbs[0], manifest.categories[1])], prepared[0].original, e, manifest),
      [],
    ];
    const a = explainerArrays(slots, e, manifest);
    const opts = explainerGenerateOptions(e);
    const runner = await OnnxVlpRunner.create(path.join(model, 'vlp_prefix.onnx'), path.join(model, 'vlp_decoder.onnx'), e.vocab_size);
    const ort = await runner.generate(data, a, opts);
    await runner.release();
    const vlp = loadVlp(path.resolve(model, manifest.models.vlp_prefix!.source_checkpoint));
    const ex = loadExtractor(path.resolve(model, e.visual_backbone.source_checkpoint));
    const visual = explainerVisual(ex.model as PointHoiExtractor, data, 2);
    const inputs = vlpInputsOf(visual, a);
    const tfjs = generate(vlp.model, inputs, opts);
    disposeVlpInputs(inputs);
    visual.dispose();
    vlp.model.dispose();
    ex.model.dispose();
    assert.deepEqual(ort, tfjs);
    assert.ok(ort.some((r) => r.length > 0));
  });

  it('gatherRows picks cache rows in the searcher\'s order (beams reordered, rows dropped)', () => {
    const t = new ortModule.Tensor('float32', Float32Array.from([0, 1, 10, 11, 20, 21]), [3, 1, 2]);
    const g = gatherRows(t, [2, 0, 0]);
    assert.deepEqual([...g.dims], [3, 1, 2]);
    assert.deepEqual([...(g.data as Float32Array)], [20, 21, 0, 1, 0, 1]);
    assert.deepEqual([...(gatherRows(t, [1]).data as Float32Array)], [10, 11]);
    assert.throws(() => gatherRows(t, [3]), DataError);
  });

  it('the tfjs engine refuses an explainer checkpoint whose weights changed since export', async () => {
    const copy = path.join(fx.root, 'explain-vlp-sha');
    fs.cpSync(model, copy, { recursive: true });
    const m = JSON.parse(fs.readFileSync(path.join(copy, 'manifest.json'), 'utf8'));
    m.models.vlp_prefix.source_sha256 = '0'.repeat(64);
    fs.writeFileSync(path.join(copy, 'manifest.json'), JSON.stringify(m));
    await assert.rejects(explainImages([images.plain], { model: copy, engine: 'tfjs', out: null }), (e: Error) => e instanceof DataError && /model\.safetensors: differs from the weights exported \(sha256 mismatch\)/.test(e.message));
  });

  it('every image gets an explanation, timed, in results.json and the annotated PNG', () => {
    assert.equal(onnx.results.length, 6);
    for (const r of onnx.results) {
      assert.equal(typeof r.explanation, 'string');
      assert.ok(r.timing_ms.explanation > 0);
      assert.ok(r.annotated && fs.existsSync(r.annotated));
    }
    assert.ok(onnx.results.some((r) => r.explanation!.length > 0), 'the tiny explainer writes something');
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    assert.deepEqual(saved.images.map((i: { explanation: string }) => i.explanation), onnx.results.map((r) => r.explanation));
  });

  it('both engines give the same explanation for the same images', async () => {
    const tfjs = await explainImages([images.folder], { model, engine: 'tfjs', out: null });
    assert.equal(tfjs.results.length, onnx.results.length);
    tfjs.results.forEach((r, i) => assert.equal(r.explanation, onnx.results[i].explanation, path.basename(r.file)));
    console.log(`      e.g. ${JSON.stringify(onnx.results[0].explanation)}`);
  });

  it('CLI: --json carries the explanation', () => {
    const res = spawnSync(process.execPath, [path.join(REPO, 'bin', 'hoi2anomaly.js'), 'explain', images.plain, images.gray, '--model', model, '--no-images', '--json'], { encoding: 'utf8', cwd: fx.root });
    assert.equal(res.status, 0, res.stderr);
    const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const want = Object.fromEntries(onnx.results.map((r) => [path.basename(r.file), r.explanation]));
    assert.deepEqual(lines.map((l) => l.explanation), [want['a_plain.png'], want['c_gray.png']]);
  });

  it('a manifest with the explainer graphs but no explainer section is refused', () => {
    const copy = path.join(fx.root, 'explain-vlp-broken');
    fs.cpSync(model, copy, { recursive: true });
    const m = JSON.parse(fs.readFileSync(path.join(copy, 'manifest.json'), 'utf8'));
    delete m.explainer;
    fs.writeFileSync(path.join(copy, 'manifest.json'), JSON.stringify(m));
    assert.throws(() => readExportManifest(copy), (e: Error) => e instanceof DataError && /without explainer/.test(e.message));
  });
});
