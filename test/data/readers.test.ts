import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../../src/errors';
import { HICO_VERBS } from '../../src/data/hico_names';
import { hicoNames, readHicoDet } from '../../src/data/readers/hico_det';
import { readOdgt } from '../../src/data/readers/odgt';
import { checkEntry, readNamesFile } from '../../src/data/readers/source';
import { tmpDir, writePng } from '../helpers/tmp';

const strict = (e: DataError): never => {
  throw e;
};

describe('data/readers', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
    writePng(path.join(dir, 'images', 'a.jpg'), 64, 48);
    writePng(path.join(dir, 'images', 'b.jpg'), 32, 32);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const hoia = (entries: unknown): string => {
    const f = path.join(dir, 'anno.json');
    fs.writeFileSync(f, JSON.stringify(entries));
    return f;
  };

  it('HICO-DET: 117 verbs, ids resolved to names', () => {
    assert.equal(HICO_VERBS.length, 117);
    assert.equal(HICO_VERBS[0], 'adjust');
    assert.equal(HICO_VERBS[92], 'stab'); // verb id 93
    assert.equal(HICO_VERBS[116], 'zip');
    const f = hoia([
      {
        file_name: 'a.jpg',
        annotations: [
          { bbox: [1, 2, 30, 40], category_id: 1 },
          { bbox: [20, 10, 40, 20], category_id: 49 },
        ],
        hoi_annotation: [
          { subject_id: 0, object_id: 1, category_id: 93 },
          { subject_id: 0, object_id: 1, category_id: 93 }, // duplicate, kept once
          { subject_id: 0, object_id: 1, category_id: 37 },
        ],
      },
    ]);
    const [e] = readHicoDet(f, path.join(dir, 'images'), hicoNames(), strict);
    assert.equal(e.id, 'a');
    assert.deepEqual(e.objects.map((o) => o.category), ['person', 'knife']);
    assert.deepEqual(e.hois, [
      { subject: 0, object: 1, verb: 'stab' },
      { subject: 0, object: 1, verb: 'hold' },
    ]);
    assert.equal(e.width, undefined);
  });

  it('HICO-DET: bad entries name the file, entry and field', () => {
    const images = path.join(dir, 'images');
    const cases: Array<[unknown, RegExp]> = [
      [{ file_name: 'a.jpg', annotations: [{ bbox: [1, 2, 3, 4], category_id: 12 }] }, /anno\.json entry 0 field 'annotations\[0\]\.category_id': unknown object category id 12/],
      [{ file_name: 'a.jpg', annotations: [{ bbox: [1, 2, 3], category_id: 1 }] }, /field 'annotations\[0\]\.bbox'/],
      [{ file_name: 'a.jpg', annotations: [{ bbox: [1, 2, 3, 4], category_id: 1 }], hoi_annotation: [{ subject_id: 0, object_id: 0, category_id: 118 }] }, /field 'hoi_annotation\[0\]\.category_id': unknown verb id 118/],
      [{ file_name: 'a.jpg', annotations: [{ bbox: [1, 2, 3, 4], category_id: 1 }], hoi_annotation: [{ subject_id: 0, object_id: 5, category_id: 1 }] }, /field 'hoi_annotation\[0\]\.object_id'/],
      [{ annotations: [] }, /field 'file_name'/],
    ];
    for (const [entry, re] of cases) {
      assert.throws(() => readHicoDet(hoia([entry]), images, hicoNames(), strict), (e: Error) => e instanceof DataError && re.test(e.message));
    }
    let skipped = 0;
    const ok = readHicoDet(hoia([cases[0][0], { file_name: 'b.jpg', annotations: [] }]), images, hicoNames(), () => skipped++);
    assert.equal(ok.length, 1);
    assert.equal(skipped, 1);
  });

  it('empty and malformed files stop with the file name', () => {
    const empty = path.join(dir, 'empty.json');
    fs.writeFileSync(empty, '  \n');
    assert.throws(() => readHicoDet(empty, dir, hicoNames(), strict), /empty\.json: annotation file is empty/);
    assert.throws(() => readOdgt(empty, dir, strict), /empty\.json: annotation file is empty/);
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '[{"file_name": ');
    assert.throws(() => readHicoDet(bad, dir, hicoNames(), strict), /bad\.json: not valid JSON/);
    assert.throws(() => readHicoDet(path.join(dir, 'none.json'), dir, hicoNames(), strict), /none\.json: annotation file not found/);
  });

  it('ODGT: [x,y,w,h] boxes become [x1,y1,x2,y2]; malformed line names file:line', () => {
    const f = path.join(dir, 'train.odgt');
    const good = { file_name: 'a.jpg', width: 64, height: 48, gtboxes: [{ box: [1, 2, 10, 20], tag: 'person' }, { box: [5, 5, 4, 4], tag: 'gun' }], hoi: [{ subject_id: 0, object_id: 1, interaction: 'point at' }] };
    fs.writeFileSync(f, `${JSON.stringify(good)}\n\n{"file_name": "b.jpg",\n`);
    assert.throws(() => readOdgt(f, path.join(dir, 'images'), strict), /train\.odgt:3: malformed JSON line/);
    const errors: DataError[] = [];
    const entries = readOdgt(f, path.join(dir, 'images'), (e) => errors.push(e));
    assert.equal(entries.length, 1);
    assert.equal(errors.length, 1);
    assert.deepEqual(entries[0].objects[0].box, [1, 2, 11, 22]);
    assert.deepEqual(entries[0].hois, [{ subject: 0, object: 1, verb: 'point_at' }]);
    fs.writeFileSync(f, `${JSON.stringify({ ...good, gtboxes: [{ box: [1, 2, -3, 4], tag: 'person' }] })}\n`);
    assert.throws(() => readOdgt(f, dir, strict), /train\.odgt:1 field 'gtboxes\[0\]\.box': negative or zero size/);
  });

  it('checkEntry: clips <= 2 px overflow, rejects further, missing image, unknown names', () => {
    const vocab = { categories: new Set(['person', 'knife']), verbs: new Set(['hold']), subjects: new Set(['person']) };
    const make = (box: [number, number, number, number], over: Partial<{ image: string; category: string; verb: string }> = {}) => ({
      id: 'a',
      imagePath: path.join(dir, 'images', over.image ?? 'a.jpg'),
      imageName: 'a.jpg',
      objects: [
        { id: 0, category: 'person', box: [0, 0, 10, 10] as [number, number, number, number] },
        { id: 1, category: over.category ?? 'knife', box },
      ],
      hois: [{ subject: 0, object: 1, verb: over.verb ?? 'hold' }],
      origin: { file: 'x.odgt', line: 7 },
    });
    const e = make([-1.5, 3, 65.5, 49]);
    assert.equal(checkEntry(e, 64, 48, vocab), 1);
    assert.deepEqual(e.objects[1].box, [0, 3, 64, 48]);
    assert.throws(() => checkEntry(make([0, 0, 67, 10]), 64, 48, vocab), /x\.odgt:7 field 'objects\[1\]\.box': .*outside the 64x48 image by 3 px/);
    assert.throws(() => checkEntry(make([5, 5, 5, 9]), 64, 48, vocab), /non-positive width or height/);
    assert.throws(() => checkEntry(make([1, 1, 5, 5], { image: 'zzz.jpg' }), 64, 48, vocab), /x\.odgt:7 field 'file_name': image not found/);
    assert.throws(() => checkEntry(make([1, 1, 5, 5], { category: 'tank' }), 64, 48, vocab), /unknown category 'tank'/);
    assert.throws(() => checkEntry(make([1, 1, 5, 5], { verb: 'fly' }), 64, 48, vocab), /field 'hois\[0\]\.verb': unknown verb 'fly'/);
  });

  it('names files: plain lines are 1-based, `id name` lines are sparse', () => {
    const f = path.join(dir, 'names.txt');
    fs.writeFileSync(f, '# verbs\nhold\ntalk on\n');
    assert.deepEqual([...readNamesFile(f)], [[1, 'hold'], [2, 'talk_on']]);
    fs.writeFileSync(f, '1 person\n49 knife\n');
    assert.deepEqual([...readNamesFile(f)], [[1, 'person'], [49, 'knife']]);
  });
});
