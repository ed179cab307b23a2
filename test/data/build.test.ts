import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { DatasetConfigSchema } from '../../src/config/dataset';
import { loadConfig } from '../../src/config/load';
import { buildDataset } from '../../src/data/build';
import { parseResponse } from '../../src/data/response_parser';
import type { HoiRecord } from '../../src/data/record';
import { SYNTH_INTERACTIONS, SYNTH_VERBS } from '../../src/data/synth';
import { Taxonomy } from '../../src/data/taxonomy';
import { DataError, UsageError } from '../../src/errors';
import { log } from '../../src/logger';
import { tmpDir, writePng } from '../helpers/tmp';

/** sha256 over every file's name and bytes, except those named in `skip`. */
function hashTree(dir: string, skip: string[] = []): string {
  const h = createHash('sha256');
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      if (skip.includes(name)) continue;
      const p = path.join(d, name);
      if (fs.statSync(p).isDirectory()) walk(p);
      else h.update(name).update(fs.readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

const readJsonl = (file: string): HoiRecord[] =>
  fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as HoiRecord);

describe('data/build (build-dataset)', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    log.level = 'warn';
  });
  after(() => {
    log.level = 'info';
  });
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const synthConfig = (sets: string[]) => loadConfig(DatasetConfigSchema, { sets: ['synth.image_size=96', ...sets] });

  it('synth: same seed gives byte-identical folders, another seed differs; workers do not change bytes', async () => {
    const a = await buildDataset({ source: 'synth', out: path.join(dir, 'a'), config: synthConfig(['num_images=80', 'workers=1']) });
    const b = await buildDataset({ source: 'synth', out: path.join(dir, 'b'), config: synthConfig(['num_images=80', 'workers=2']) });
    const c = await buildDataset({ source: 'synth', out: path.join(dir, 'c'), config: synthConfig(['num_images=80', 'seed=1']) });
    assert.equal(a.images, 80);
    // config.yaml records the worker count; everything else must be byte-identical
    assert.equal(hashTree(a.out, ['config.yaml']), hashTree(b.out, ['config.yaml']));
    assert.notEqual(hashTree(a.out, ['config.yaml']), hashTree(c.out, ['config.yaml']));
    for (const f of ['manifest.json', 'train.jsonl', 'val.jsonl', 'test.jsonl', 'config.yaml']) assert.ok(fs.existsSync(path.join(a.out, f)), f);
    assert.equal(fs.readdirSync(path.join(a.out, 'images')).length, 80);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['a', 'b', 'c']); // no staging folders left behind
  });

  it('synth: every interaction, labels agree with the taxonomy, responses parse back, hard negatives', async () => {
    const s = await buildDataset({ source: 'synth', out: path.join(dir, 'd'), config: synthConfig(['num_images=300']) });
    const m = s.manifest;
    for (const { verb, object } of SYNTH_INTERACTIONS) {
      const n = m.hoi_counts[`${verb} ${object}`];
      assert.ok(n && n.train + n.val + n.test > 0, `${verb} ${object} missing`);
    }
    assert.deepEqual(m.verbs, [...SYNTH_VERBS]);
    const total = m.splits.train.images + m.splits.val.images + m.splits.test.images;
    assert.equal(total, 300);
    const anomalous = m.splits.train.anomalous + m.splits.val.anomalous + m.splits.test.anomalous;
    assert.ok(anomalous / total > 0.35 && anomalous / total < 0.65, `anomalous ratio ${anomalous / total}`);
    assert.ok(m.splits.test.images > 10);
    assert.ok(m.hard_negatives.weapon_present_auc_test !== null && m.hard_negatives.weapon_present_auc_test < 0.9);
    assert.ok(m.hard_negatives.normal_images_with_weapon.train > 0);

    const taxonomy = Taxonomy.default();
    for (const r of readJsonl(path.join(s.out, 'train.jsonl'))) {
      assert.equal(r.label === 'anomalous', r.hois.some((h) => h.anomaly !== null));
      for (const h of r.hois) {
        const object = r.objects.find((o) => o.id === h.object)!;
        assert.deepEqual({ anomaly: h.anomaly, severity: h.severity }, taxonomy.lookup(h.verb, object.category));
      }
      assert.equal(r.conversations[0].from, 'human');
      assert.ok(r.conversations[0].value.startsWith('<image>\n'));
      const parsed = parseResponse(r.conversations[1].value, taxonomy);
      assert.equal(parsed.verdict, r.label);
    }
  });

  describe('hico-det', () => {
    let images: string;
    let anno: string;
    const entry = (file: string, box: number[] = [40, 10, 60, 30]) => ({
      file_name: file,
      annotations: [
        { bbox: [1, 2, 30, 40], category_id: 1 },
        { bbox: box, category_id: 1 },
        { bbox: [20, 10, 40, 20], category_id: 49 },
      ],
      hoi_annotation: [
        { subject_id: 0, object_id: 1, category_id: 93 }, // stab person
        { subject_id: 1, object_id: 2, category_id: 37 }, // hold knife
      ],
    });
    beforeEach(() => {
      images = path.join(dir, 'imgs');
      for (const f of ['a.jpg', 'b.jpg', 'c.jpg']) writePng(path.join(images, f), 64, 48);
      anno = path.join(dir, 'anno.json');
    });
    const config = (sets: string[] = []) => loadConfig(DatasetConfigSchema, { sets });

    it('labels by the taxonomy, reads sizes from images, clips small overflow', async () => {
      fs.writeFileSync(anno, JSON.stringify([entry('a.jpg'), entry('b.jpg', [40, 10, 65.5, 30]), entry('c.jpg')]));
      const s = await buildDataset({ source: 'hico-det', out: path.join(dir, 'out'), config: config(), annotations: anno, images });
      assert.equal(s.images, 3);
      assert.equal(s.clipped, 1);
      const all = ['train', 'val', 'test'].flatMap((sp) => readJsonl(path.join(s.out, `${sp}.jsonl`)));
      const b = all.find((r) => r.id === 'b')!;
      assert.equal(b.width, 64);
      assert.equal(b.height, 48);
      assert.deepEqual(b.objects[1].box, [40, 10, 64, 30]);
      assert.equal(b.label, 'anomalous');
      assert.deepEqual(b.hois.map((h) => [h.verb, h.anomaly === null]), [['stab', false], ['hold', true]]);
      assert.ok(fs.lstatSync(path.join(s.out, b.image)).isSymbolicLink());
    });

    it('bad input stops the build, names file and field, leaves nothing behind; --skip-invalid counts', async () => {
      fs.writeFileSync(anno, JSON.stringify([entry('a.jpg'), entry('missing.jpg'), entry('c.jpg', [40, 10, 70, 30])]));
      const out = path.join(dir, 'out');
      await assert.rejects(
        buildDataset({ source: 'hico-det', out, config: config(), annotations: anno, images }),
        (e: Error) => e instanceof DataError && /anno\.json entry 1 field 'file_name': image not found/.test(e.message),
      );
      assert.deepEqual(fs.readdirSync(dir).sort(), ['anno.json', 'imgs']);
      const s = await buildDataset({ source: 'hico-det', out, config: config(), annotations: anno, images, skipInvalid: true });
      assert.equal(s.images, 1);
      assert.equal(s.skipped, 2);
      assert.equal(s.manifest.skipped_entries, 2);
    });

    it('an existing folder is kept without --overwrite, and survives a failed --overwrite build', async () => {
      fs.writeFileSync(anno, JSON.stringify([entry('a.jpg')]));
      const out = path.join(dir, 'out');
      await buildDataset({ source: 'hico-det', out, config: config(), annotations: anno, images });
      const before = hashTree(out);
      await assert.rejects(buildDataset({ source: 'hico-det', out, config: config(), annotations: anno, images }), UsageError);
      fs.writeFileSync(anno, JSON.stringify([entry('zzz.jpg')]));
      await assert.rejects(buildDataset({ source: 'hico-det', out, config: config(), annotations: anno, images, overwrite: true }), DataError);
      assert.equal(hashTree(out), before);
      fs.writeFileSync(anno, JSON.stringify([entry('a.jpg'), entry('b.jpg')]));
      const s = await buildDataset({ source: 'hico-det', out, config: config(), annotations: anno, images, overwrite: true });
      assert.equal(s.images, 2);
      assert.deepEqual(fs.readdirSync(dir).sort(), ['anno.json', 'imgs', 'out']);
    });
  });

  describe('CLI', () => {
    before(() => {
      log.level = 'silent';
    });
    after(() => {
      log.level = 'warn';
    });
    it('build-dataset runs, writes the resolved config, maps errors to exit codes', async () => {
      const out = path.join(dir, 'cli');
      const code = await main(['build-dataset', '--out', out, '--num-images', '12', '--image-size', '64', '--seed', '3', '--set', 'synth.noise=0']);
      assert.equal(code, 0);
      const cfg = fs.readFileSync(path.join(out, 'config.yaml'), 'utf8');
      assert.match(cfg, /num_images: 12/);
      assert.match(cfg, /image_size: 64/);
      assert.match(cfg, /seed: 3/);
      assert.equal(await main(['build-dataset', '--out', out]), 2); // exists, no --overwrite
      assert.equal(await main(['build-dataset', '--out', path.join(dir, 'x'), '--set', 'synth.nosie=0']), 2);
      assert.equal(await main(['build-dataset', '--out', path.join(dir, 'x'), '--set', 'num_images=abc']), 2);
      assert.equal(await main(['build-dataset', '--source', 'odgt', '--out', path.join(dir, 'x'), '--annotations', path.join(dir, 'none.odgt'), '--images', dir]), 1);
      assert.equal(await main(['build-dataset', '--frobnicate']), 2);
      assert.ok(!fs.existsSync(path.join(dir, 'x')));
    });
  });
});
