import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { loadConfig, writeResolvedConfig } from '../../src/config/load';
import { ConfigError } from '../../src/errors';
import { tmpDir } from '../helpers/tmp';

const Schema = z
  .object({
    lr: z.number().default(0.001),
    model: z.object({ width: z.number().int().default(16), name: z.string().default('tiny') }).strict().default({}),
  })
  .strict();

describe('config/load', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('defaults < file < flags < --set', () => {
    const f = path.join(dir, 'c.yaml');
    fs.writeFileSync(f, 'lr: 0.01\nmodel:\n  width: 32\n');
    assert.deepEqual(loadConfig(Schema, {}), { lr: 0.001, model: { width: 16, name: 'tiny' } });
    assert.deepEqual(loadConfig(Schema, { file: f }), { lr: 0.01, model: { width: 32, name: 'tiny' } });
    assert.deepEqual(loadConfig(Schema, { file: f, flags: { lr: 0.5, 'model.name': undefined } }).lr, 0.5);
    assert.deepEqual(loadConfig(Schema, { file: f, flags: { lr: 0.5 }, sets: ['lr=0.2', 'model.name=big'] }), { lr: 0.2, model: { width: 32, name: 'big' } });
  });

  it('unknown keys and wrong types name the key and where it came from', () => {
    const f = path.join(dir, 'c.yaml');
    fs.writeFileSync(f, 'model:\n  widht: 32\n');
    assert.throws(() => loadConfig(Schema, { file: f }), (e: Error) => e instanceof ConfigError && /key 'model\.widht' \(.*c\.yaml\): unknown key/.test(e.message));
    assert.throws(() => loadConfig(Schema, { sets: ['model.width=wide'] }), /key 'model\.width' \(--set\): expected number, found string/);
    assert.throws(() => loadConfig(Schema, { sets: ['model.width=1.5'] }), /key 'model\.width'/);
    assert.throws(() => loadConfig(Schema, { sets: ['lr'] }), /expected key=value/);
    assert.throws(() => loadConfig(Schema, { flags: { lr: 0.5 }, sets: ['lr.x=1'] }), /'lr' is not a section/);
    assert.throws(() => loadConfig(Schema, { sets: ['lr.x=1'] }), /key 'lr' \(--set\): expected number, found object/);
  });

  it('YAML errors name file:line; missing file; non-mapping', () => {
    const f = path.join(dir, 'bad.yaml');
    fs.writeFileSync(f, 'lr: 1\nmodel: [1,\n');
    assert.throws(() => loadConfig(Schema, { file: f }), /bad\.yaml:\d+:\d+: invalid YAML/);
    assert.throws(() => loadConfig(Schema, { file: path.join(dir, 'none.yaml') }), /config file not found/);
    fs.writeFileSync(f, '- 1\n- 2\n');
    assert.throws(() => loadConfig(Schema, { file: f }), /expected a mapping/);
  });

  it('writes the resolved config beside a run', () => {
    const file = writeResolvedConfig(dir, loadConfig(Schema, { sets: ['lr=0.3'] }));
    assert.match(fs.readFileSync(file, 'utf8'), /lr: 0\.3\nmodel:\n {2}width: 16\n {2}name: tiny/);
  });
});
