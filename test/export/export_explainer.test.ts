/**
 * `export onnx --vlp` on the tiny extractor + a tiny explainer run: the three files and the
 * manifest's explainer section (instruction and its ids, sizes, special tokens, generation
 * settings, sources), parity recorded for both graphs (<= 1e-4) and the 5-step greedy check, the
 * backbone composed into vlp_prefix.onnx (no `visual` input), a weight changed after the reference
 * refused with nothing left behind, LoRA adapters merged, a label mismatch refused, and the CLI.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../../src/backend/tf';
import { main } from '../../src/cli/main';
import { INSTRUCTIONS } from '../../src/data/instructions';
import { ExportError } from '../../src/errors';
import { GREEDY_CHECK_STEPS } from '../../src/export/export_explainer';
import { exportModels, PARITY_TOLERANCE } from '../../src/export/export_models';
import { decodeModel } from '../../src/export/onnx_proto';
import { loadVlp } from '../../src/eval/vlp_eval';
import { sha256File } from '../../src/infer/engines';
import { readExportManifest } from '../../src/infer/manifest';
import { log } from '../../src/logger';
import { VlpTokenizer } from '../../src/models/vlp/tokenizer';
import { tinyExtractorRun, type TinyRun } from '../infer/fixture';
import { writeTinyVlpRun } from '../infer/vlp_fixture';

describe('export/export_explainer (export onnx --vlp)', function () {
  this.timeout(120_000);
  let fx: TinyRun;
  let vlpRun: string;
  let out: string;
  before(async () => {
    log.level = 'silent';
    fx = await tinyExtractorRun();
    vlpRun = writeTinyVlpRun(fx, { name: 'vlp-export-run' });
    out = path.join(fx.root, 'export-vlp');
    await exportModels({ extractor: fx.run, vlp: vlpRun, out });
  });
  after(() => {
    log.level = 'info';
  });

  it('writes vlp_prefix.onnx, vlp_decoder.onnx, tokenizer.json and the explainer section of the manifest', () => {
    assert.deepEqual(fs.readdirSync(out).sort(), ['extractor.onnx', 'manifest.json', 'tokenizer.json', 'vlp_decoder.onnx', 'vlp_prefix.onnx']);
    assert.ok(fs.readFileSync(path.join(out, 'tokenizer.json')).equals(fs.readFileSync(path.join(vlpRun, 'tokenizer.json'))), 'tokenizer copied byte for byte');
    const m = readExportManifest(out);
    const vlp = loadVlp(vlpRun);
    vlp.model.dispose();
    const c = vlp.model.config;
    const e = m.explainer!;
    assert.equal(m.tokenizer, 'tokenizer.json');
    assert.equal(e.instruction, INSTRUCTIONS[0]);
    const ids = vlp.tokenizer.encode(INSTRUCTIONS[0]);
    assert.ok(ids.length < c.instruction_length, `the fixture instruction fits (${ids.length} tokens)`);
    assert.deepEqual(e.instruction_ids, [...new Array(c.instruction_length - ids.length).fill(0), ...ids], 'left-padded with <pad>');
    assert.equal(e.instruction_length, 24);
    assert.equal(e.max_hois, 3);
    assert.equal(e.hoi_min_score, 0);
    assert.equal(e.box_encoding, true);
    assert.equal(e.box_pointer, true);
    assert.deepEqual(e.visual_shape, [2, 2, c.visual_channels]);
    assert.equal(e.prefix_length, 4 + 3 + 24);
    assert.deepEqual(e.special_tokens, { pad: 0, bos: 1, eos: 2 });
    assert.deepEqual(e.generate, { strategy: 'greedy', max_length: 12, beam_size: 3, top_p: 0.9, temperature: 1, seed: 0 });
    assert.deepEqual(e.merged_lora, []);
    // sources: the explainer's checkpoint and the extractor checkpoint of its backbone
    const p = m.models.vlp_prefix!, d = m.models.vlp_decoder!;
    assert.equal(path.resolve(out, p.source_checkpoint), path.join(vlpRun, 'step-0'));
    assert.equal(p.source_sha256, sha256File(path.join(vlpRun, 'step-0', 'model.safetensors')));
    assert.equal(p.step, 0);
    assert.equal(path.resolve(out, e.visual_backbone.source_checkpoint), path.join(fx.run, 'step-20'));
    assert.equal(p.sha256, sha256File(path.join(out, 'vlp_prefix.onnx')));
    assert.equal(d.sha256, sha256File(path.join(out, 'vlp_decoder.onnx')));
    assert.deepEqual(p.inputs.map((i) => i.name), ['image', 'hoi_subject', 'hoi_verb', 'hoi_object', 'hoi_subject_box', 'hoi_object_box', 'instruction']);
    assert.deepEqual(p.inputs[0], { name: 'image', shape: ['batch', 3, 64, 64], dtype: 'float32', layout: 'NCHW' });
    assert.deepEqual(p.inputs[1], { name: 'hoi_subject', shape: ['batch', 'hois'], dtype: 'int64' });
    const pointers = ['pointer_embed', 'pointer_keys', 'pointer_bias'];
    assert.deepEqual(p.outputs.map((o) => o.name), ['logits', 'present_key_0', 'present_value_0', 'present_key_1', 'present_value_1', ...pointers]);
    assert.deepEqual(d.inputs.map((i) => i.name), ['input_ids', 'position_ids', 'past_key_0', 'past_value_0', 'past_key_1', 'past_value_1', ...pointers]);
    assert.deepEqual(d.outputs[1].shape, ['batch', 2, 'total', 8]);
    // parity: both samples at batch 2, logits + 4 presents each (+ the 3 pointer outputs of the prefix), all within tolerance
    for (const entry of [p, d]) {
      assert.equal(entry.parity.length, 2 * (entry === p ? 8 : 5), JSON.stringify(entry.parity));
      assert.deepEqual([...new Set(entry.parity.map((r) => `${r.input}/${r.batch}`))], ['random/2', 'images/2']);
      assert.ok(entry.parity.every((r) => Number.isFinite(r.max_abs_diff) && r.max_abs_diff <= PARITY_TOLERANCE), JSON.stringify(entry.parity));
      assert.equal(entry.max_abs_diff, Math.max(...entry.parity.map((r) => r.max_abs_diff)));
      assert.ok(entry.max_abs_diff > 0, 'measured, not skipped');
    }
    assert.equal(e.greedy_check.steps, GREEDY_CHECK_STEPS);
    assert.equal(e.greedy_check.tokens.length, 4, 'two rows per sample');
    assert.ok(e.greedy_check.tokens.every((t) => t.length <= GREEDY_CHECK_STEPS));
    assert.ok(e.greedy_check.tokens.some((t) => t.length > 0), 'something was generated');
    console.log(`      vlp_prefix.onnx vs tfjs: ${p.max_abs_diff.toExponential(2)}; vlp_decoder.onnx (5 steps): ${d.max_abs_diff.toExponential(2)}; greedy ${JSON.stringify(e.greedy_check.tokens)}`);
  });

  it('vlp_prefix.onnx takes the image: the backbone is inside, no `visual` input', () => {
    const model = decodeModel(fs.readFileSync(path.join(out, 'vlp_prefix.onnx')));
    const inputs = model.graph!.input!.map((i) => i.name);
    assert.ok(!inputs.includes('visual'));
    const inits = new Set(model.graph!.initializer!.map((t) => t.name));
    assert.ok(inits.has('backbone.conv1.weight') && inits.has('wte.weight') && inits.has('visual_proj.weight'));
    const meta = Object.fromEntries(model.metadata_props!.map((p) => [p.key, p.value]));
    assert.equal(meta.model_name, 'vlp_explainer');
  });

  it('a weight changed after the tfjs reference is refused, leaving no folder', async () => {
    const bad = path.join(fx.root, 'export-vlp-bad');
    const tensorsBefore = tf.memory().numTensors;
    await assert.rejects(
      exportModels({
        extractor: fx.run, vlp: vlpRun, out: bad,
        afterVlpReference: (model) => {
          const w = model.namedParameters().get('ln_f.bias')!;
          tf.tidy(() => w.assign(tf.add(w, 1e-3)));
        },
      }),
      (e: Error) => e instanceof ExportError
        && /^vlp_prefix\.onnx: output 'logits' on the random input \(batch 2\) differs from tfjs by \d\.\d\de-\d .*tolerance 1e-4.*refused$/.test(e.message)
        && !e.message.includes('\n'),
    );
    assert.ok(!fs.existsSync(bad));
    assert.deepEqual(fs.readdirSync(fx.root).filter((n) => n.startsWith('.export-vlp-bad.tmp-')), []);
    assert.equal(tf.memory().numTensors, tensorsBefore, 'models disposed on failure');
  });

  it('LoRA adapters are merged before export; the graphs carry no adapter weights and still match', async () => {
    // also the explainer that spells box digits (no box pointer): its graphs have no pointer_* values
    const loraRun = writeTinyVlpRun(fx, { name: 'vlp-lora-run', lora: { rank: 2, alpha: 4 }, boxPointer: false });
    const loraOut = path.join(fx.root, 'export-vlp-lora');
    const r = await exportModels({ extractor: fx.run, vlp: loraRun, out: loraOut });
    const e = r.manifest.explainer!;
    assert.equal(e.box_pointer, false);
    assert.ok(!r.manifest.models.vlp_prefix!.outputs.some((o) => o.name.startsWith('pointer_')));
    assert.deepEqual(e.merged_lora, [0, 1].flatMap((i) => ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'].map((l) => `h.${i}.${l}`)));
    for (const f of ['vlp_prefix.onnx', 'vlp_decoder.onnx']) {
      const names = decodeModel(fs.readFileSync(path.join(loraOut, f))).graph!.initializer!.map((t) => t.name!);
      assert.ok(!names.some((n) => /lora_/.test(n)), `${f}: ${names.filter((n) => /lora_/.test(n))}`);
    }
    assert.ok(r.manifest.models.vlp_prefix!.max_abs_diff <= PARITY_TOLERANCE && r.manifest.models.vlp_decoder!.max_abs_diff <= PARITY_TOLERANCE);
  });

  it('an explainer trained on other labels is refused', async () => {
    const other = writeTinyVlpRun(fx, { name: 'vlp-other-labels' });
    const mf = path.join(other, 'step-0', 'manifest.json');
    const m = JSON.parse(fs.readFileSync(mf, 'utf8'));
    m.run.verbs = [...m.run.verbs].reverse();
    fs.writeFileSync(mf, JSON.stringify(m));
    const dest = path.join(fx.root, 'export-vlp-other');
    await assert.rejects(exportModels({ extractor: fx.run, vlp: other, out: dest }), (e: Error) => e instanceof ExportError && /the explainer knows categories/.test(e.message));
    assert.ok(!fs.existsSync(dest));
  });

  it('the tokenizer in the export decodes what the run decodes', () => {
    const a = VlpTokenizer.fromFile(path.join(out, 'tokenizer.json'));
    assert.equal(a.decode(a.encode('Yes, this image is anomalous.')), 'Yes, this image is anomalous.');
  });

  it('CLI: export onnx --vlp --json prints a manifest with the explainer', async () => {
    const cliOut = path.join(fx.root, 'export-vlp-cli');
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => lines.push(String(chunk)) > 0) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(['export', 'onnx', '--extractor', fx.run, '--vlp', vlpRun, '--out', cliOut, '--json', '--backend', 'wasm']);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(code, 0);
    const m = JSON.parse(lines.join('').trim().split('\n').pop()!);
    assert.equal(m.models.vlp_prefix.file, 'vlp_prefix.onnx');
    assert.equal(m.explainer.instruction, INSTRUCTIONS[0]);
    assert.equal(await main(['export', 'onnx', '--extractor', fx.run, '--vlp', path.join(fx.root, 'nope'), '--out', path.join(fx.root, 'y')]), 1);
    assert.ok(!fs.existsSync(path.join(fx.root, 'y')));
  });
});
