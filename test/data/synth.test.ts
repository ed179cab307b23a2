import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PNG } from 'pngjs';
import { ConfigError } from '../../src/errors';
import { crc32, encodePng } from '../../src/data/png';
import {
  SYNTH_CATEGORIES, SYNTH_INTERACTIONS, SYNTH_VERBS, SynthOptions, SynthOptionsSchema, generateScene,
  parseSynthOptions,
} from '../../src/data/synth';
import { createCanvas, fillPolygon, polygonCovers, ellipsePoly, capsulePoly } from '../../src/data/synth/raster';
import { renderLayout } from '../../src/data/synth/render';
import { SceneLayout, layoutScene } from '../../src/data/synth/scene';

const WEAPONS = new Set(['knife', 'gun', 'bat']);
const ANOMALOUS = new Set(SYNTH_INTERACTIONS.filter((i) => i.anomalous).map((i) => `${i.verb}:${i.object}`));

const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
const opts = (o: Partial<SynthOptions> = {}): SynthOptions => parseSynthOptions(o);
const clean = (o: Partial<SynthOptions> = {}): SynthOptions =>
  opts({ noise: 0, blur: 0, lighting: 0, occlusion: 0, ...o });

/** Layouts (no pixels) of scenes 0..n-1: the statistics tests need only these. */
function layouts(n: number, o: SynthOptions, seed = 1): SceneLayout[] {
  return Array.from({ length: n }, (_, i) => layoutScene(seed, i, o));
}

/** Person box heights as fractions of the image height. */
function scenesPeopleHeights(scenes: SceneLayout[]): number[] {
  return scenes.flatMap((s) => s.objects.filter((o) => o.category === 'person').map((o) => (o.box[3] - o.box[1]) / s.height));
}

/** ROC AUC of `score` for positives vs negatives, ties counted half (Mann-Whitney). */
function auc(pos: number[], neg: number[]): number {
  let s = 0;
  for (const p of pos) for (const n of neg) s += p > n ? 1 : p === n ? 0.5 : 0;
  return s / (pos.length * neg.length);
}

/** Median of a list of numbers (the upper one of the two middle values). */
function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** sqrt(w * h) of a box: its side if it were square. */
const side = (b: number[]): number => Math.sqrt((b[2] - b[0]) * (b[3] - b[1]));

/** Gap between two boxes (0 when they touch or overlap). */
const gap = (a: number[], b: number[]): number =>
  Math.max(0, Math.max(a[0], b[0]) - Math.min(a[2], b[2]), Math.max(a[1], b[1]) - Math.min(a[3], b[3]));

/** Every (verb, category) pair the scenes stage; fails on a pair the catalogue does not list. */
function stagedPairs(scenes: SceneLayout[]): Map<string, number> {
  const count = new Map<string, number>();
  for (const s of scenes) {
    for (const h of s.hois) {
      const k = `${h.verb}:${s.objects[h.object].category}`;
      count.set(k, (count.get(k) ?? 0) + 1);
    }
  }
  for (const k of count.keys()) assert.ok(SYNTH_INTERACTIONS.some((i) => `${i.verb}:${i.object}` === k), `unlisted ${k}`);
  return count;
}

/** Boxes inside the image and over 2 px, ids in order, persons first, HOIs between valid ids. */
function checkBoxes(scenes: SceneLayout[]): void {
  for (const s of scenes) {
    const size = s.width;
    s.objects.forEach((o, i) => {
      assert.equal(o.id, i);
      const [x1, y1, x2, y2] = o.box;
      assert.ok(x1 >= 0 && y1 >= 0 && x2 <= size && y2 <= size, `box ${o.box} inside ${size}`);
      assert.ok(x2 - x1 > 2 && y2 - y1 > 2, `${o.category} box ${o.box} larger than 2 px`);
    });
    const persons = s.objects.filter((o) => o.category === 'person').length;
    assert.ok(s.objects.slice(0, persons).every((o) => o.category === 'person'), 'persons first');
    for (const h of s.hois) {
      assert.equal(s.objects[h.subject].category, 'person');
      assert.ok(h.object >= 0 && h.object < s.objects.length && h.object !== h.subject);
    }
  }
}

/**
 * The hand, fist or foot is at the object, the weapon or limb at the victim: the boxes touch
 * ((A, stab|hit, B): the weapon's box reaches B; (A, punch|kick, B): A's own box). Returns the count checked.
 */
function checkContacts(scenes: SceneLayout[]): number {
  let checked = 0;
  for (const s of scenes) {
    for (const h of s.hois) {
      const what = s.objects[h.object].category;
      if (h.verb === 'throw' || (h.verb === 'point_at' && what === 'person')) continue;
      const weapon = what === 'person'
        ? s.hois.find((w) => w.subject === h.subject && w.verb === h.verb && s.objects[w.object].category !== 'person')
        : undefined;
      const reach = weapon ? s.objects[weapon.object].box : s.objects[h.subject].box;
      assert.equal(gap(reach, s.objects[h.object].box), 0, `${h.verb} ${what}: boxes apart`);
      checked++;
    }
  }
  return checked;
}

/**
 * Renders scenes 0..n-1 with an owner map: every box-centre pixel shows its own object or one in
 * front of it (in the owner's exact colour), and the own share is returned.
 */
function centreShare(seed: number, n: number, o: SynthOptions): number {
  const size = o.image_size;
  let own = 0, total = 0;
  for (let i = 0; i < n; i++) {
    const L = layoutScene(seed, i, o);
    const c = renderLayout(L, { withIds: true });
    const ids = c.ids as Int16Array;
    L.entities.forEach((e, k) => {
      const id = L.entityIds[k];
      const box = L.objects[id].box;
      const px = Math.floor((box[0] + box[2]) / 2), py = Math.floor((box[1] + box[3]) / 2);
      assert.equal(Math.round((box[0] + box[2]) / 2), px, 'box centres sit on integer points');
      const owner = ids[py * size + px];
      assert.ok(owner >= 0, `scene ${i}: ${e.category} ${id} centre shows ${owner === -2 ? 'the occluder' : 'background'}`);
      const p = (py * size + px) * 3;
      const color = (c.rgb[p] << 16) | (c.rgb[p + 1] << 8) | c.rgb[p + 2];
      const ownerEntity = L.entities[L.entityIds.indexOf(owner)];
      assert.ok(ownerEntity.polys.some((q) => q.color === color), `centre colour #${color.toString(16)} is the owner's`);
      if (owner === id) {
        own++;
        // with lighting off the colour is exact: the object's own colour at its centre
        assert.ok(e.polys.some((q) => q.color === color));
      }
      total++;
    });
  }
  return own / total;
}

describe('synth: options', () => {
  it('fills defaults and rejects unknown keys, bad ranges and min > max', () => {
    const d = parseSynthOptions({});
    assert.equal(d.image_size, 256);
    assert.equal(d.min_people, 1);
    assert.equal(d.max_people, 4);
    assert.equal(d.anomalous_ratio, 0.5);
    assert.ok(!SynthOptionsSchema.safeParse({ image_sise: 128 }).success);
    assert.throws(() => parseSynthOptions({ image_sise: 128 }), (e: unknown) => e instanceof ConfigError && /image_sise/.test(e.message));
    assert.throws(() => parseSynthOptions({ image_size: 32 }), (e: unknown) => e instanceof ConfigError && /image_size/.test(e.message));
    assert.throws(() => parseSynthOptions({ noise: 1.5 }), ConfigError);
    assert.throws(() => parseSynthOptions({ min_people: 3, max_people: 2 }), /min_people \(3\) must be <= max_people \(2\)/);
    assert.throws(() => parseSynthOptions({ max_people: 1 }), /needs max_people >= 2/);
    assert.equal(parseSynthOptions({ max_people: 1, anomalous_ratio: 0 }).max_people, 1);
  });

  it('takes object_scale in [0.5, 3] and person_scale as null or [far, near] fractions', () => {
    const d = parseSynthOptions({});
    assert.equal(d.object_scale, 1);
    assert.equal(d.person_scale, null);
    const o = parseSynthOptions({ object_scale: 1.8, person_scale: [0.5, 0.8] });
    assert.equal(o.object_scale, 1.8);
    assert.deepEqual(o.person_scale, [0.5, 0.8]);
    assert.deepEqual(parseSynthOptions({ person_scale: [0.6, 0.6] }).person_scale, [0.6, 0.6]);
    for (const bad of [0.4, 3.5, -1, '2']) {
      assert.throws(() => parseSynthOptions({ object_scale: bad }), (e: unknown) => e instanceof ConfigError && /object_scale/.test(e.message), String(bad));
    }
    for (const bad of [[0.1, 0.5], [0.5, 0.99], [0.5], [0.4, 0.6, 0.8], 0.6, 'big']) {
      assert.throws(() => parseSynthOptions({ person_scale: bad }), (e: unknown) => e instanceof ConfigError && /person_scale/.test(e.message), JSON.stringify(bad));
    }
    assert.throws(() => parseSynthOptions({ person_scale: [0.8, 0.5] }), /person_scale \[far, near\] needs far <= near/);
  });
});

describe('synth: catalogue', () => {
  it('lists categories, verbs and interactions consistently', () => {
    assert.equal(SYNTH_CATEGORIES.length, 9);
    assert.equal(SYNTH_VERBS.length, 10);
    assert.equal(SYNTH_INTERACTIONS.length, 30);
    for (const i of SYNTH_INTERACTIONS) {
      assert.ok((SYNTH_VERBS as readonly string[]).includes(i.verb), i.verb);
      assert.ok((SYNTH_CATEGORIES as readonly string[]).includes(i.object), i.object);
    }
    const has = (v: string, o: string, a: boolean): boolean =>
      SYNTH_INTERACTIONS.some((i) => i.verb === v && i.object === o && i.anomalous === a);
    assert.ok(has('stab', 'knife', true) && has('stab', 'person', true) && has('kick', 'ball', false));
    assert.ok(has('kick', 'person', true) && has('hold', 'knife', false) && has('hold', 'gun', false));
    assert.ok(has('hand_over', 'knife', false) && has('carry', 'bat', false) && has('punch', 'person', true));
  });
});

describe('synth: determinism', () => {
  it('is a pure function of (seed, index, options)', () => {
    const o = opts({ image_size: 128 });
    const digest = (seed: number, i: number): [string, string] => {
      const s = generateScene(seed, i, o);
      return [sha(s.pixels), sha(JSON.stringify({ objects: s.objects, hois: s.hois, anomalous: s.anomalous }))];
    };
    for (const i of [0, 1, 17]) assert.deepEqual(digest(3, i), digest(3, i));
    const seen = new Set([0, 1, 2, 3, 4, 5].map((i) => digest(3, i)[0]));
    assert.equal(seen.size, 6, 'different indices give different images');
    assert.notEqual(digest(3, 0)[0], digest(4, 0)[0], 'different seeds give different images');
  });

  it('draws the default scenes byte for byte as before object_scale and person_scale existed', () => {
    // computed with the generator before the two options were added: the defaults must not move a pixel
    const pinned: Array<[number, number, number, string, string]> = [
      [128, 11, 0, 'b7da1a7f3dbfbaf3370a97fb8f0cb86e1ffcf280b53d6f6d830842dbc4e2950b', '5a546b638fadb8e8d49102cc9683925745076c9b1ae1a9162de47cefc8a531c3'],
      [256, 2, 3, 'c743550638f7825b928c0cf8eb5cff2dd59a7bf396705d7fdf6a652b63bda27e', '0014fb9d8d303cf0454656f115846a88d443e4b0b3afd5946abe18efff1c9b84'],
    ];
    for (const [size, seed, index, pixels, json] of pinned) {
      for (const o of [opts({ image_size: size }), opts({ image_size: size, object_scale: 1, person_scale: null })]) {
        const s = generateScene(seed, index, o);
        assert.equal(sha(s.pixels), pixels, `pixels of scene (${seed}, ${index}) at ${size} px`);
        assert.equal(sha(JSON.stringify({ objects: s.objects, hois: s.hois, anomalous: s.anomalous })), json, 'objects and HOIs');
      }
    }
  });

  it('returns RGB pixels of the stated size that match the layout renderer', () => {
    const o = opts({ image_size: 96 });
    const s = generateScene(5, 2, o);
    assert.equal(s.width, 96);
    assert.equal(s.height, 96);
    assert.equal(s.pixels.length, 96 * 96 * 3);
    assert.equal(sha(renderLayout(layoutScene(5, 2, o)).rgb), sha(s.pixels));
    const values = new Set(s.pixels);
    assert.ok(values.size > 40, `a varied image, got ${values.size} distinct byte values`);
  });
});

describe('synth: content statistics', () => {
  const o = opts({ image_size: 128 });
  const scenes = layouts(400, o);

  it('stages every interaction of the catalogue within 400 scenes', () => {
    const count = stagedPairs(scenes);
    assert.deepEqual(SYNTH_INTERACTIONS.filter((i) => !count.has(`${i.verb}:${i.object}`)), []);
  });

  it('labels an image anomalous exactly when an assault HOI is in it, at the requested rate', () => {
    for (const s of scenes) {
      const assault = s.hois.some((h) => ANOMALOUS.has(`${h.verb}:${s.objects[h.object].category}`));
      assert.equal(s.anomalous, assault);
    }
    const frac = scenes.filter((s) => s.anomalous).length / scenes.length;
    assert.ok(Math.abs(frac - 0.5) < 0.07, `anomalous fraction ${frac}`);
    const few = layouts(300, opts({ image_size: 64, anomalous_ratio: 0.2 }), 2);
    const f2 = few.filter((s) => s.anomalous).length / few.length;
    assert.ok(Math.abs(f2 - 0.2) < 0.06, `anomalous fraction ${f2} at ratio 0.2`);
    assert.ok(layouts(40, opts({ image_size: 64, anomalous_ratio: 0 })).every((s) => !s.anomalous));
    assert.ok(layouts(40, opts({ image_size: 64, anomalous_ratio: 1 })).every((s) => s.anomalous));
  });

  it('shows weapons in normal images (hard negatives) and assaults without weapons', () => {
    const normal = scenes.filter((s) => !s.anomalous);
    const withWeapon = normal.filter((s) => s.objects.some((x) => WEAPONS.has(x.category)));
    const inUse = normal.filter((s) => s.hois.some((h) => WEAPONS.has(s.objects[h.object].category)));
    const lying = normal.filter((s) =>
      s.objects.some((x) => WEAPONS.has(x.category) && !s.hois.some((h) => h.object === x.id)),
    );
    assert.ok(withWeapon.length / normal.length > 0.3, `normal with weapon ${withWeapon.length}/${normal.length}`);
    assert.ok(inUse.length / normal.length > 0.15, `normal with weapon in a normal HOI ${inUse.length}`);
    assert.ok(lying.length / normal.length > 0.08, `normal with a weapon lying around ${lying.length}`);
    const anomalous = scenes.filter((s) => s.anomalous);
    const bare = anomalous.filter((s) => !s.objects.some((x) => WEAPONS.has(x.category)));
    assert.ok(bare.length / anomalous.length > 0.12, `weaponless assaults ${bare.length}/${anomalous.length}`);
    const none = layouts(150, opts({ image_size: 64, hard_negative_ratio: 0 }), 3).filter((s) => !s.anomalous);
    assert.ok(none.every((s) => !s.objects.some((x) => WEAPONS.has(x.category))), 'hard_negative_ratio 0: no weapons in normal images');
  });

  it('keeps the "a weapon is present" rule well below AUC 1', () => {
    const sample = scenes.slice(0, 300);
    const score = (s: SceneLayout): number => (s.objects.some((x) => WEAPONS.has(x.category)) ? 1 : 0);
    const a = auc(sample.filter((s) => s.anomalous).map(score), sample.filter((s) => !s.anomalous).map(score));
    assert.ok(a > 0.55 && a < 0.8, `weapon-present AUC ${a.toFixed(3)}`);
  });

  it('uses 1-4 people and varies the people count', () => {
    const counts = [0, 0, 0, 0, 0, 0];
    for (const s of scenes) counts[s.objects.filter((x) => x.category === 'person').length]++;
    assert.equal(counts[0] + counts[5], 0);
    for (const k of [1, 2, 3, 4]) assert.ok(counts[k] >= 20, `people counts ${counts}`);
  });
});

describe('synth: boxes and geometry', () => {
  for (const size of [64, 128, 256]) {
    it(`gives valid boxes, ids and HOIs at ${size} px`, () => {
      checkBoxes(layouts(size === 256 ? 60 : 120, opts({ image_size: size }), 7));
    });
  }

  it('puts the hand, fist or foot at the object, and the weapon or limb at the victim (boxes touch)', () => {
    assert.ok(checkContacts(layouts(200, opts({ image_size: 128 }), 8)) > 200);
  });

  it('paints every box-centre pixel with the object itself (or an object in front of it)', () => {
    for (const [size, occlusion] of [[128, 0], [256, 0], [128, 1]] as const) {
      const own = centreShare(9, 60, clean({ image_size: size, occlusion }));
      assert.ok(own > 0.97, `${size} px occlusion ${occlusion}: own centre share ${own.toFixed(3)}`);
    }
  });

  it('draws occluders when asked, never over a box centre', () => {
    const withOcc = layouts(40, clean({ image_size: 128, occlusion: 1 }), 4).filter((s) => s.occluders.length > 0);
    assert.ok(withOcc.length > 25, `occluded scenes ${withOcc.length}/40`);
    assert.ok(layouts(20, clean({ image_size: 128 }), 4).every((s) => s.occluders.length === 0));
  });
});

describe('synth: object_scale and person_scale', () => {
  const THINGS = ['knife', 'gun', 'bottle', 'cup', 'phone', 'ball'];
  /** Median sqrt(w * h) of each category's boxes. */
  const sides = (scenes: SceneLayout[]): Map<string, number> => {
    const v = new Map<string, number[]>();
    for (const s of scenes) for (const o of s.objects) v.set(o.category, [...(v.get(o.category) ?? []), side(o.box)]);
    return new Map([...v].map(([c, x]) => [c, median(x)]));
  };
  // the recommended 128 px setting: legible things, people about 0.5-0.8 of the image height
  const big = opts({ image_size: 128, object_scale: 2, person_scale: [0.5, 0.8] });
  let scaled: SceneLayout[] = [];
  before(() => {
    scaled = layouts(400, big);
  });

  it('enlarges every thing by object_scale (bat and bag up to their caps) and leaves people alone', () => {
    const base = sides(layouts(120, opts({ image_size: 256 }), 5));
    for (const [k, lo, hi] of [[2, 1.75, 2.25], [0.5, 0.4, 0.65]]) {
      const m = sides(layouts(120, opts({ image_size: 256, object_scale: k }), 5));
      for (const c of THINGS) {
        const r = (m.get(c) as number) / (base.get(c) as number);
        assert.ok(r > lo && r < hi, `${c} at object_scale ${k}: median side x${r.toFixed(2)}`);
      }
      const p = (m.get('person') as number) / (base.get('person') as number);
      assert.ok(Math.abs(p - 1) < 0.06, `people x${p.toFixed(2)} at object_scale ${k}`);
    }
    const m2 = sides(layouts(120, opts({ image_size: 256, object_scale: 2 }), 5));
    const bat = (m2.get('bat') as number) / (base.get('bat') as number);
    const bag = (m2.get('bag') as number) / (base.get('bag') as number);
    assert.ok(bat > 1.1 && bat < 1.35, `bat x${bat.toFixed(2)} (cap 1.25)`);
    assert.ok(bag > 1.25 && bag < 1.5, `bag x${bag.toFixed(2)} (cap 1.4)`);
  });

  it('frames people at the person_scale heights, 1-4 to an image, fewer than by default', () => {
    const h = median(scenesPeopleHeights(scaled));
    assert.ok(h > 0.5 && h < 0.75, `median person height ${h.toFixed(2)} of the image`);
    const byDefault = median(scenesPeopleHeights(layouts(150, opts({ image_size: 128 }))));
    assert.ok(byDefault < 0.5, `default median person height ${byDefault.toFixed(2)}`);
    const counts = [0, 0, 0, 0, 0, 0];
    for (const s of scaled) counts[s.objects.filter((o) => o.category === 'person').length]++;
    assert.equal(counts[0] + counts[5], 0, `people counts ${counts}`);
    for (const k of [1, 2, 3]) assert.ok(counts[k] >= 10, `people counts ${counts}`);
    const mean = (c: number[]): number => c.reduce((a, n, i) => a + n * i, 0) / c.reduce((a, n) => a + n, 0);
    const dflt = [0, 0, 0, 0, 0, 0];
    for (const s of layouts(150, opts({ image_size: 128 }))) dflt[s.objects.filter((o) => o.category === 'person').length]++;
    assert.ok(mean(counts) < mean(dflt), `mean people ${mean(counts).toFixed(2)} vs default ${mean(dflt).toFixed(2)}`);
  });

  it('keeps small things at least 12 px at 128 px with the recommended setting', () => {
    const m = sides(scaled);
    for (const c of THINGS) assert.ok((m.get(c) as number) >= 12, `${c}: median side ${m.get(c)} px`);
  });

  it('keeps boxes valid, every catalogue pair, the labels and a weak weapon cue', () => {
    checkBoxes(scaled);
    const count = stagedPairs(scaled);
    assert.deepEqual(SYNTH_INTERACTIONS.filter((i) => !count.has(`${i.verb}:${i.object}`)), []);
    for (const s of scaled) {
      assert.equal(s.anomalous, s.hois.some((h) => ANOMALOUS.has(`${h.verb}:${s.objects[h.object].category}`)));
    }
    const score = (s: SceneLayout): number => (s.objects.some((x) => WEAPONS.has(x.category)) ? 1 : 0);
    const a = auc(scaled.filter((s) => s.anomalous).map(score), scaled.filter((s) => !s.anomalous).map(score));
    assert.ok(a > 0.55 && a < 0.8, `weapon-present AUC ${a.toFixed(3)}`);
  });

  it('keeps hands, feet, weapons and victims in contact', () => {
    assert.ok(checkContacts(scaled.slice(0, 200)) > 150);
    assert.ok(checkContacts(layouts(100, opts({ image_size: 128, object_scale: 3 }), 8)) > 100);
    assert.ok(checkContacts(layouts(100, opts({ image_size: 128, object_scale: 0.5, person_scale: [0.3, 0.95] }), 8)) > 100);
  });

  it('paints every box-centre pixel with the object itself', () => {
    const own = centreShare(9, 40, clean({ image_size: 128, object_scale: 2, person_scale: [0.5, 0.8] }));
    assert.ok(own > 0.97, `own centre share ${own.toFixed(3)}`);
  });
});

describe('synth: rasterizer', () => {
  it('fills a rectangle exactly by pixel centres', () => {
    const c = createCanvas(5, 5, true);
    fillPolygon(c, [1, 1, 3, 1, 3, 3, 1, 3], 0xff0000, 7);
    const painted: string[] = [];
    for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) if ((c.ids as Int16Array)[y * 5 + x] === 7) painted.push(`${x},${y}`);
    assert.deepEqual(painted, ['1,1', '2,1', '1,2', '2,2']);
    assert.deepEqual([...c.rgb.subarray((1 * 5 + 1) * 3, (1 * 5 + 1) * 3 + 3)], [255, 0, 0]);
  });

  it('paints exactly the pixels whose centres polygonCovers accepts', () => {
    const shapes = [
      ellipsePoly(10.3, 9.7, 7.2, 4.1, 0.6),
      capsulePoly(2.2, 3.1, 1.3, 17.5, 15.2, 3.4),
      [1, 1, 18, 4, 6, 18, 12, 2.5, 3, 12], // self-intersecting star-like: even-odd
    ];
    for (const poly of shapes) {
      const c = createCanvas(20, 20, true);
      fillPolygon(c, poly, 0x00ff00, 1);
      let n = 0;
      for (let y = 0; y < 20; y++) {
        for (let x = 0; x < 20; x++) {
          const painted = (c.ids as Int16Array)[y * 20 + x] === 1;
          assert.equal(painted, polygonCovers(poly, x + 0.5, y + 0.5), `pixel ${x},${y}`);
          if (painted) n++;
        }
      }
      assert.ok(n > 10);
    }
  });
});

describe('png', () => {
  it('computes the standard CRC-32 check value', () => {
    assert.equal(crc32(Buffer.from('123456789', 'ascii')), 0xcbf43926);
  });

  it('round-trips RGB and RGBA through pngjs', () => {
    for (const [w, h, ch] of [[37, 11, 3], [16, 16, 4], [64, 48, 3], [5, 3, 4]] as const) {
      const px = new Uint8Array(w * h * ch);
      let s = 12345;
      for (let i = 0; i < px.length; i++) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        px[i] = i % 7 === 0 ? s >>> 24 : (i * 13) & 255;
      }
      const png = encodePng(px, w, h, ch);
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const d = PNG.sync.read(png);
      assert.equal(d.width, w);
      assert.equal(d.height, h);
      for (let i = 0; i < w * h; i++) {
        for (let k = 0; k < 4; k++) {
          const want = k < ch ? px[i * ch + k] : 255;
          if (d.data[i * 4 + k] !== want) assert.fail(`pixel ${i} channel ${k}: ${d.data[i * 4 + k]} != ${want}`);
        }
      }
      assert.equal(sha(encodePng(px, w, h, ch)), sha(png), 'deterministic bytes');
    }
  });

  it('round-trips a generated scene and rejects a wrong buffer size', () => {
    const s = generateScene(1, 0, opts({ image_size: 64 }));
    const d = PNG.sync.read(encodePng(s.pixels, 64, 64));
    const rgb = new Uint8Array(64 * 64 * 3);
    for (let i = 0; i < 64 * 64; i++) for (let k = 0; k < 3; k++) rgb[i * 3 + k] = d.data[i * 4 + k];
    assert.equal(sha(rgb), sha(s.pixels));
    assert.throws(() => encodePng(new Uint8Array(10), 2, 2), /expected 12 bytes/);
  });
});
