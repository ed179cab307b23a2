/**
 * `quickstart` on a toy size (48 images at 64 px, 10 extractor steps, 10 explainer steps): every
 * stage's output exists and the table reports it; a second run (through the CLI) reuses complete
 * stages and redoes only a removed one; changed settings are refused without --overwrite; the
 * reuse/resume/redo decision and the table format on hand-made cases.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../src/errors';
import { log } from '../src/logger';
import { decide, type DecisionInput, loadQuickstartConfig, type QuickstartResult, runQuickstart } from '../src/quickstart';
import { readState, type StageRecord, STAGE_NAMES } from '../src/quickstart/state';
import { resultsTable } from '../src/quickstart/table';
import { tmpDir } from './helpers/tmp';

const REPO = path.resolve(__dirname, '..', '..');

const TOY_YAML = `# toy quickstart: minutes on 2 cores
backend: {name: wasm}
extractor:
  input_size: 64
  set: [train.batch_size=4, train.eval_max_images=8, train.log_every=5, model.neck_channels=16, model.head_channels=16]
vlp:
  set: [train.batch_size=4, train.max_response_length=64, generate.max_length=24, train.eval_max_images=4, train.log_every=5]
eval: {vlp_max_images: 4}
explain: {images: 3}
`;
/** The sizes the CLI passes as flags (the library run below passes the same as flags). */
const TOY_FLAGS = { 'dataset.num_images': 48, 'dataset.image_size': 64, 'extractor.steps': 10, 'vlp.steps': 10 };
const TOY_ARGS = ['--images', '48', '--image-size', '64', '--extractor-steps', '10', '--vlp-steps', '10'];

function record(over: Partial<StageRecord> = {}): StageRecord {
  return { fingerprint: 'f', status: 'complete', seconds: 1, artefact: 'x', metrics: {}, summary: '', partial: false, notes: [], ...over };
}

describe('quickstart: decide', () => {
  const base: DecisionInput = { exists: true, complete: true, previous: record(), fingerprint: 'f', canResume: false, upstreamRedone: false, overwrite: false };
  it('reuses a complete output made with the same fingerprint', () => assert.equal(decide(base), 'reuse'));
  it('runs a stage whose output is absent, and every stage with --overwrite', () => {
    assert.equal(decide({ ...base, exists: false, previous: undefined }), 'fresh');
    assert.equal(decide({ ...base, overwrite: true }), 'fresh');
    assert.equal(decide({ ...base, previous: undefined, overwrite: true }), 'fresh');
  });
  it('refuses an output it has no record of, or made with other settings', () => {
    assert.equal(decide({ ...base, previous: undefined }), 'refuse');
    assert.equal(decide({ ...base, previous: record({ fingerprint: 'g' }) }), 'refuse');
  });
  it('resumes an interrupted training run, redoes a stage whose input was redone or that was partial', () => {
    assert.equal(decide({ ...base, complete: false, previous: record({ status: 'running' }), canResume: true }), 'resume');
    assert.equal(decide({ ...base, complete: false, previous: record({ status: 'running' }), canResume: false }), 'fresh');
    assert.equal(decide({ ...base, upstreamRedone: true, canResume: true }), 'fresh');
    assert.equal(decide({ ...base, previous: record({ partial: true }) }), 'fresh');
  });
});

describe('quickstart: results table', () => {
  it('aligns the columns, marks reused times and lists the notes', () => {
    const t = resultsTable([
      { title: 'dataset (synth)', status: 'ran', record: record({ seconds: 5.04, artefact: 'dataset', summary: '48 images' }) },
      { title: 'export ONNX', status: 'reused', record: record({ seconds: 125, artefact: 'export', summary: '|d| 1e-6', notes: ['explainer export pending'] }) },
    ], path.join(process.cwd(), 'q'), 7.5);
    const lines = t.split('\n');
    assert.equal(lines[0], '| stage           | status | time        | key metrics | artefact  |');
    assert.equal(lines[1], '|-----------------|--------|-------------|-------------|-----------|');
    assert.equal(lines[2], '| dataset (synth) | ran    | 5.0 s       | 48 images   | q/dataset |');
    assert.equal(lines[3], '| export ONNX     | reused | (2 min 5 s) | \\|d\\| 1e-6  | q/export  |');
    assert.equal(lines[4], '| total           |        | 7.5 s       |             | q         |');
    assert.equal(lines[6], '- export ONNX: explainer export pending');
  });
});

describe('quickstart: toy run', function () {
  this.timeout(900_000);
  let root: string;
  let out: string;
  let configFile: string;
  let first: QuickstartResult;
  before(async () => {
    log.level = 'silent';
    root = tmpDir('hoi2anomaly-quickstart-');
    out = path.join(root, 'qs');
    configFile = path.join(root, 'toy.yaml');
    fs.writeFileSync(configFile, TOY_YAML);
    first = await runQuickstart({ config: loadQuickstartConfig({ file: configFile, flags: TOY_FLAGS }), out });
  });
  after(() => {
    log.level = 'info';
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('runs every stage and writes every artefact', () => {
    assert.deepEqual(first.stages.map((s) => [s.name, s.status]), STAGE_NAMES.map((n) => [n, 'ran']));
    for (const f of ['dataset/manifest.json', 'dataset/test.jsonl', 'extractor/step-10/model.safetensors', 'extractor/eval_test.json',
      'vlp/step-10/model.safetensors', 'vlp/tokenizer.json', 'vlp/eval_test.json', 'export/manifest.json', 'export/extractor.onnx',
      'explain/results.json', 'explain/index.html', 'config.yaml', 'quickstart.json', 'results.md']) {
      assert.ok(fs.existsSync(path.join(out, f)), `${f} missing`);
    }
    const explained = JSON.parse(fs.readFileSync(path.join(out, 'explain', 'results.json'), 'utf8')) as { images: unknown[] };
    assert.equal(explained.images.length, 3);
    assert.equal(fs.readdirSync(path.join(out, 'explain')).filter((f) => f.endsWith('.annotated.png')).length, 3);
  });

  it('reports the metrics of every stage', () => {
    const m = Object.fromEntries(first.stages.map((s) => [s.name, s.record.metrics]));
    assert.equal(m.dataset.images, 48);
    assert.equal(m.extractor.steps, 10);
    assert.equal(m.vlp.steps, 10);
    for (const k of ['map', 'auc']) assert.ok(m.eval_extractor[k] === null || (Number(m.eval_extractor[k]) >= 0 && Number(m.eval_extractor[k]) <= 1), `${k} ${m.eval_extractor[k]}`);
    for (const k of ['verdict_accuracy', 'triplet_f1', 'bleu4']) assert.ok(Number(m.eval_vlp[k]) >= 0 && Number(m.eval_vlp[k]) <= 1, `${k} ${m.eval_vlp[k]}`);
    assert.equal(m.eval_vlp.images, 4);
    assert.equal(m.eval_vlp.hoi_source, 'extractor');
    assert.ok(Number(m.export.extractor_max_abs_diff) <= 1e-4);
    assert.ok(Number(m.export.bytes_extractor_onnx ?? m.export['bytes_extractor.onnx']) > 10_000);
    assert.equal(m.explain.images, 3);
    const exported = JSON.parse(fs.readFileSync(path.join(out, 'export', 'manifest.json'), 'utf8')) as { models: Record<string, unknown> };
    // with the explainer exported every image gets an explanation; without, none (and a note says so)
    assert.equal(m.explain.with_explanation, exported.models.vlp_prefix ? 3 : 0);
    assert.ok(Number(m.explain.p50_ms) > 0 && Number(m.explain.p95_ms) >= Number(m.explain.p50_ms));
  });

  it('prints a table with a row per stage, the key metrics and the artefact paths', () => {
    const lines = first.table.split('\n');
    assert.match(lines[0], /^\| stage +\| status +\| time +\| key metrics +\| artefact +\|$/);
    for (const [i, s] of first.stages.entries()) {
      assert.ok(lines[2 + i].startsWith(`| ${s.title} `), lines[2 + i]);
      assert.ok(lines[2 + i].includes(s.record.artefact), lines[2 + i]);
    }
    assert.match(lines[2 + STAGE_NAMES.length], /^\| total /);
    for (const key of ['HOI mAP', 'image AUC', 'verdict accuracy', 'triplet F1', 'BLEU-4', 'max abs diff onnx vs tfjs', 'p50']) assert.ok(first.table.includes(key), key);
    assert.equal(fs.readFileSync(first.resultsFile, 'utf8'), `# quickstart results\n\n${first.table}\n`);
  });

  it('a second run through the CLI reuses the complete stages and redoes a removed one', () => {
    const weights = path.join(out, 'extractor', 'step-10', 'model.safetensors');
    const mtime = fs.statSync(weights).mtimeMs;
    fs.rmSync(path.join(out, 'vlp', 'eval_test.json'));
    const r = spawnSync(process.execPath, [path.join(REPO, 'bin', 'hoi2anomaly.js'), 'quickstart', '--out', out, '--config', configFile, ...TOY_ARGS, '--json'], {
      encoding: 'utf8', env: { ...process.env, HOI2ANOMALY_LOG: 'info' }, timeout: 300_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]) as { stages: Record<string, { status: string }> };
    // An export without the explainer (not exportable yet in this build) is partial: redone, and explain after it.
    const exportPartial = first.stages.find((s) => s.name === 'export')!.record.partial;
    const expected: Record<string, string> = {
      dataset: 'reused', extractor: 'reused', eval_extractor: 'reused', vlp: 'reused', eval_vlp: 'ran',
      export: exportPartial ? 'ran' : 'reused', explain: exportPartial ? 'ran' : 'reused',
    };
    assert.deepEqual(Object.fromEntries(Object.entries(summary.stages).map(([k, v]) => [k, v.status])), expected);
    assert.match(r.stderr, /\[2\/7\] train extractor: reusing extractor \(complete, same settings/);
    assert.ok(lines[0].startsWith('| stage '), 'the table is printed on stdout');
    assert.equal(fs.statSync(weights).mtimeMs, mtime, 'the extractor was not retrained');
    assert.ok(fs.existsSync(path.join(out, 'vlp', 'eval_test.json')));
    assert.equal(readState(out).stages.eval_vlp?.status, 'complete');
  });

  it('refuses changed settings without --overwrite, touching nothing', async () => {
    const before = fs.readFileSync(path.join(out, 'quickstart.json'), 'utf8');
    const changed = loadQuickstartConfig({ file: configFile, flags: { ...TOY_FLAGS, 'extractor.steps': 11 } });
    await assert.rejects(runQuickstart({ config: changed, out }), (err: Error) => err instanceof UsageError && /extractor exists .*--overwrite/.test(err.message));
    assert.equal(fs.readFileSync(path.join(out, 'quickstart.json'), 'utf8'), before);
    assert.ok(fs.existsSync(path.join(out, 'extractor', 'step-10')));
  });
});
