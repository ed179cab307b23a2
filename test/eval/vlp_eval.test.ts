/**
 * `eval vlp` through the CLI: `--json` prints one object with every metric key as the last line
 * of stdout, `--dump` writes {"images":[{id, explanation, verdict}]}, `--compare RUN` adds the
 * second run's metrics; extractor-only options are refused. Also scoreExplanations on
 * hand-written explanations (perfect vs. wrong verdict).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../src/backend';
import { main } from '../../src/cli/main';
import { DatasetConfigSchema } from '../../src/config/dataset';
import { ExtractorConfigSchema } from '../../src/config/extractor';
import { loadConfig } from '../../src/config/load';
import { VlpConfigSchema } from '../../src/config/vlp';
import { buildDataset } from '../../src/data/build';
import { readDatasetManifest, readSplit } from '../../src/data/loader';
import { Taxonomy } from '../../src/data/taxonomy';
import { scoreExplanations, VLP_METRIC_KEYS } from '../../src/eval/vlp_eval';
import { log } from '../../src/logger';
import { recordTexts } from '../../src/models/vlp/tokenizer';
import { finetuneVlp } from '../../src/train/finetune_vlp';
import { trainExtractor } from '../../src/train/train_extractor';
import { tmpDir } from '../helpers/tmp';

const VLP = [
  'model.dim=32', 'model.layers=1', 'model.heads=2', 'model.max_positions=64', 'model.instruction_length=8', 'tokenizer.vocab_size=300',
  'train.batch_size=4', 'train.steps=2', 'train.eval_every=0', 'train.eval_max_images=2', 'train.max_response_length=16', 'generate.max_length=8',
  'backend.name=wasm',
];

async function runCli(argv: string[]): Promise<{ code: number; stdout: string }> {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => lines.push(String(chunk)) > 0) as typeof process.stdout.write;
  try {
    const code = await main(argv);
    return { code, stdout: lines.join('') };
  } finally {
    process.stdout.write = write;
  }
}

describe('eval/vlp_eval (eval vlp)', function () {
  this.timeout(300_000);
  let dir: string;
  let data: string;
  let run: string;
  let ablation: string;
  before(async () => {
    log.level = 'silent';
    await initBackend({ name: 'wasm' });
    dir = tmpDir();
    data = path.join(dir, 'data');
    await buildDataset({ source: 'synth', out: data, config: loadConfig(DatasetConfigSchema, { sets: ['num_images=40', 'synth.image_size=64', 'seed=4'] }) });
    const extractor = path.join(dir, 'extractor');
    await trainExtractor({
      config: loadConfig(ExtractorConfigSchema, { sets: ['model.width=0.25', 'model.input_size=64', 'model.neck_channels=8', 'model.head_channels=8', 'train.steps=1', 'train.batch_size=4', 'train.eval_max_images=2', 'backend.name=wasm'] }),
      data, out: extractor,
    });
    run = path.join(dir, 'vlp');
    await finetuneVlp({ config: loadConfig(VlpConfigSchema, { sets: VLP }), data, extractor, out: run });
    ablation = path.join(dir, 'vlp_nobox');
    await finetuneVlp({ config: loadConfig(VlpConfigSchema, { sets: [...VLP, 'model.box_encoding=false'] }), data, extractor, out: ablation });
  });
  after(() => {
    log.level = 'info';
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--json prints every metric as the last stdout line; --dump writes the explanations; --compare adds the ablation', async () => {
    const dump = path.join(dir, 'explanations.json');
    const { code, stdout } = await runCli(['eval', 'vlp', '--checkpoint', run, '--data', data, '--split', 'test', '--max-images', '3', '--dump', dump, '--compare', ablation, '--json']);
    assert.equal(code, 0);
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    for (const k of ['bleu1', 'bleu2', 'bleu3', 'bleu4', 'rouge_l', 'cider_d', 'verdict_accuracy', 'triplet_precision', 'triplet_recall', 'triplet_f1', 'hallucination_rate', 'attribution_accuracy']) {
      assert.ok(k in result, `missing ${k}`);
      assert.ok(result[k] === null || (typeof result[k] === 'number' && result[k] >= 0), `${k} = ${result[k]}`);
    }
    assert.equal(result.images, 3);
    assert.equal(result.hoi_source, 'gt');
    assert.ok(result.compare && 'triplet_f1' in result.compare && result.compare.images === 3, JSON.stringify(result.compare));
    assert.notEqual(result.compare.checkpoint.dir, result.checkpoint.dir);
    const dumped = JSON.parse(fs.readFileSync(dump, 'utf8'));
    assert.equal(dumped.images.length, 3);
    const ids = readSplit(data, 'test').slice(0, 3).map((r) => r.id);
    assert.deepEqual(dumped.images.map((im: { id: string }) => im.id), ids);
    for (const im of dumped.images) {
      assert.deepEqual(Object.keys(im).sort(), ['explanation', 'id', 'verdict']);
      assert.equal(typeof im.explanation, 'string');
      assert.ok(im.verdict === null || im.verdict === 'anomalous' || im.verdict === 'normal');
    }
  });

  it('--hoi-source extractor runs on the extractor predictions; extractor-only options are refused', async () => {
    const { code, stdout } = await runCli(['eval', 'vlp', '--checkpoint', run, '--data', data, '--split', 'val', '--max-images', '2', '--hoi-source', 'extractor', '--json']);
    assert.equal(code, 0);
    assert.equal(JSON.parse(stdout.trim().split('\n').pop()!).hoi_source, 'extractor');
    assert.equal((await runCli(['eval', 'vlp', '--checkpoint', run, '--data', data, '--classifier', run])).code, 2);
    assert.equal((await runCli(['eval', 'extractor', '--checkpoint', run, '--data', data, '--hoi-source', 'gt'])).code, 2);
  });

  it('scoreExplanations: the reference responses score perfectly; a flipped verdict costs exactly its share', () => {
    const records = readSplit(data, 'test');
    const taxonomy = Taxonomy.fromJSON(readDatasetManifest(data).taxonomy);
    const perfect = scoreExplanations(records.map((r) => ({ id: r.id, explanation: recordTexts(r).response, verdict: null })), records, taxonomy);
    for (const k of ['bleu4', 'verdict_accuracy', 'triplet_f1'] as const) assert.ok(Math.abs(perfect[k] - 1) < 1e-9, `${k} = ${perfect[k]}`);
    assert.equal(perfect.hallucination_rate, 0);
    const flipped = records.map((r, i) => ({
      id: r.id, verdict: null,
      explanation: i === 0 ? (r.label === 'anomalous' ? 'No, this image looks normal.' : 'Yes, this image is anomalous.') : recordTexts(r).response,
    }));
    const m = scoreExplanations(flipped, records, taxonomy);
    assert.ok(Math.abs(m.verdict_accuracy - (records.length - 1) / records.length) < 1e-9, `verdict accuracy ${m.verdict_accuracy}`);
    assert.deepEqual([...VLP_METRIC_KEYS].filter((k) => !(k in m)), []);
  });
});
