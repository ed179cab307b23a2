import assert from 'node:assert/strict';
import { ConfigError, DataError } from '../../src/errors';
import { HICO_VERBS } from '../../src/data/hico_names';
import { denormalize, formatBox, formatNormalized, parseBox, parseBoxes } from '../../src/data/box_text';
import {
  ANOMALOUS_VERDICTS,
  INSTRUCTIONS,
  MAX_NORMAL_AFTER_ANOMALIES,
  MAX_NORMAL_HOIS,
  NORMAL_MARKER,
  NORMAL_VERDICTS,
  NO_INTERACTIONS,
  buildConversations,
  buildResponse,
  hoiValues,
  renderTemplate,
  type TextRecord,
} from '../../src/data/instructions';
import type { Box, Hoi, HoiObject } from '../../src/data/record';
import { ResponseParser, compileResponseParser, parseResponse, splitSentences, type ParsedTriplet } from '../../src/data/response_parser';
import { Rng } from '../../src/data/rng';
import { Taxonomy, type TaxonomyRule } from '../../src/data/taxonomy';

/** Picks element k (mod length) every time: drives buildResponse through every template index. */
class ForcedRng extends Rng {
  constructor(private readonly k: number) {
    super(0);
  }
  override pick<T>(items: readonly T[]): T {
    return items[this.k % items.length];
  }
}

const SYNTH_THINGS = ['knife', 'gun', 'bat', 'bottle', 'cup', 'phone', 'bag', 'ball'];

function randomBox(rng: Rng, w: number, h: number): Box {
  // edge values on purpose: boxes touching 0 and the far border
  const x1 = rng.chance(0.15) ? 0 : rng.uniform(0, w * 0.7);
  const y1 = rng.chance(0.15) ? 0 : rng.uniform(0, h * 0.7);
  const x2 = rng.chance(0.15) ? w : x1 + (w - x1) * rng.uniform(0.05, 1);
  const y2 = rng.chance(0.15) ? h : y1 + (h - y1) * rng.uniform(0.05, 1);
  return [x1, y1, x2, y2];
}

/** What a response about `h` must parse back to (boxes exact, compared with a tolerance). */
function expectedTriplet(rec: TextRecord, h: Hoi): ParsedTriplet {
  const s = rec.objects.find((o) => o.id === h.subject)!;
  const o = rec.objects.find((x) => x.id === h.object)!;
  const n = (b: Box) => [b[0] / rec.width, b[1] / rec.height, b[2] / rec.width, b[3] / rec.height];
  return { subject_box: n(s.box), object_box: n(o.box), verb: h.verb, object: o.category, anomaly: h.anomaly, severity: h.severity };
}

/** The HOIs a response mentions, in order. */
function mentioned(rec: TextRecord): Hoi[] {
  const anomalous = rec.hois.filter((h) => h.anomaly !== null);
  const normal = rec.hois.filter((h) => h.anomaly === null);
  return anomalous.length > 0 ? [...anomalous, ...normal.slice(0, MAX_NORMAL_AFTER_ANOMALIES)] : normal.slice(0, MAX_NORMAL_HOIS);
}

function assertTriplets(got: ParsedTriplet[], want: ParsedTriplet[], context: string): void {
  assert.equal(got.length, want.length, `${context}: ${got.length} triplets, expected ${want.length}`);
  got.forEach((g, i) => {
    const w = want[i];
    assert.deepEqual(
      { verb: g.verb, object: g.object, anomaly: g.anomaly, severity: g.severity },
      { verb: w.verb, object: w.object, anomaly: w.anomaly, severity: w.severity },
      `${context}: triplet ${i}`,
    );
    for (const k of ['subject_box', 'object_box'] as const) {
      g[k].forEach((v, j) => assert.ok(Math.abs(v - w[k][j]) <= 0.0005 + 1e-9, `${context}: ${k}[${j}] ${v} vs ${w[k][j]}`));
    }
  });
}

/** One person acting on an object (a second person when the object is `person`), plus extra normal HOIs. */
function recordFor(verb: string, object: string, taxonomy: Taxonomy, rng: Rng, extraNormal = 0): TextRecord {
  const width = rng.int(32, 640);
  const height = rng.int(32, 480);
  const objects: HoiObject[] = [
    { id: 0, category: 'person', box: randomBox(rng, width, height) },
    { id: 1, category: object, box: randomBox(rng, width, height) },
  ];
  const hois: Hoi[] = [{ subject: 0, object: 1, verb, ...taxonomy.lookup(verb, object) }];
  for (let i = 0; i < extraNormal; i++) {
    const id = objects.length;
    objects.push({ id, category: SYNTH_THINGS[i % SYNTH_THINGS.length], box: randomBox(rng, width, height) });
    hois.push({ subject: 0, object: id, verb: 'hold', anomaly: null, severity: null });
  }
  const label = hois.some((h) => h.anomaly !== null) ? 'anomalous' : 'normal';
  return { width, height, objects, hois, label };
}

describe('data/box_text', () => {
  it('formats normalized boxes with 3 decimals', () => {
    assert.equal(formatBox([12.8, 30, 90, 200], 256, 256), '[0.050,0.117,0.352,0.781]');
    assert.equal(formatBox([0, 0, 640, 480], 640, 480), '[0.000,0.000,1.000,1.000]');
    assert.equal(formatBox([-3, -0.01, 700, 500], 640, 480), '[0.000,0.000,1.000,1.000]'); // clamped
    assert.equal(formatNormalized([0.0004, 0.0005, 0.9995, 1]), '[0.000,0.001,1.000,1.000]');
    assert.throws(() => formatBox([0, 0, 1, 1], 0, 10), DataError);
    assert.deepEqual(denormalize([0.05, 0.125, 0.5, 1], 200, 80), [10, 10, 100, 80]);
  });

  it('parses boxes with spans; strict about values, lenient about spaces', () => {
    const text = 'a [0.050,0.120,0.350,0.780] b [ 0.4 , .5,1, 1.000 ] c [12,30,90,200] [0.5,0.5,0.4,0.6] [0.1,0.2,0.3]';
    const found = parseBoxes(text);
    assert.deepEqual(found, [
      { box: [0.05, 0.12, 0.35, 0.78], start: 2, end: 27 },
      { box: [0.4, 0.5, 1, 1], start: 30, end: 51 },
    ]);
    assert.equal(text.slice(found[0].start, found[0].end), '[0.050,0.120,0.350,0.780]');
    assert.deepEqual(parseBox(' [0,0,1,1] '), [0, 0, 1, 1]);
    assert.equal(parseBox('[0,0,1,1] x'), null);
    assert.equal(parseBox('[0,0,1.2,1]'), null);
  });

  it('round trip within 0.0005 * size, including 0 and the image border', () => {
    const rng = new Rng('box-roundtrip');
    for (let i = 0; i < 2000; i++) {
      const w = rng.int(1, 4000);
      const h = rng.int(1, 4000);
      const box = i < 4 ? ([0, 0, w, h] as Box) : randomBox(rng, w, h);
      const text = formatBox(box, w, h);
      assert.match(text, /^\[\d\.\d{3},\d\.\d{3},\d\.\d{3},\d\.\d{3}\]$/);
      const back = denormalize(parseBox(text)!, w, h);
      const size = [w, h, w, h];
      back.forEach((v, j) => assert.ok(Math.abs(v - box[j]) <= 0.0005 * size[j] + 1e-9, `${text}: ${v} vs ${box[j]}`));
    }
    assert.equal(formatBox([0, 0, 7, 3], 7, 3), '[0.000,0.000,1.000,1.000]');
  });
});

describe('data/instructions + response_parser', () => {
  const taxonomy = Taxonomy.default();

  it('conversations: <image> + an instruction, then the response; deterministic for a seed', () => {
    const rec: TextRecord = {
      width: 200,
      height: 100,
      label: 'anomalous',
      objects: [
        { id: 0, category: 'person', box: [10, 12, 70, 98] },
        { id: 1, category: 'person', box: [80, 10, 150, 100] },
        { id: 2, category: 'knife', box: [60, 40, 80, 50] },
      ],
      hois: [
        { subject: 0, object: 1, verb: 'stab', anomaly: 'armed_assault', severity: 'high' },
        { subject: 0, object: 2, verb: 'stab', anomaly: 'armed_assault', severity: 'high' },
      ],
    };
    const a = buildConversations(rec, taxonomy, new Rng(7, 'text', 'x'));
    assert.deepEqual(a, buildConversations(rec, taxonomy, new Rng(7, 'text', 'x')));
    assert.equal(a.length, 2);
    assert.equal(a[0].from, 'human');
    assert.ok(a[0].value.startsWith('<image>\n'));
    assert.ok(INSTRUCTIONS.includes(a[0].value.slice('<image>\n'.length)));
    assert.equal(a[1].from, 'gpt');
    // pinned text for rng picks 0: first instruction, first verdict, first template of each rule
    const forced = buildConversations(rec, taxonomy, new ForcedRng(0));
    assert.deepEqual(forced, [
      { from: 'human', value: '<image>\nIs anything abnormal in this image? Explain.' },
      {
        from: 'gpt',
        value:
          'Yes, this image is anomalous. ' +
          'The person at [0.050,0.120,0.350,0.980] is stabbing the person at [0.400,0.100,0.750,1.000] (armed assault, high severity). ' +
          'The person at [0.050,0.120,0.350,0.980] is stabbing someone with the knife at [0.300,0.400,0.400,0.500] (armed assault, high severity).',
      },
    ]);
    // different seeds give different text
    const texts = new Set(Array.from({ length: 12 }, (_, i) => buildConversations(rec, taxonomy, new Rng(i)).map((t) => t.value).join('|')));
    assert.ok(texts.size >= 6, `${texts.size} distinct texts of 12`);
  });

  it('normal responses: verdict, up to 3 interactions, or "No interactions."', () => {
    const rng = new Rng('normal');
    const rec = recordFor('hold', 'cup', taxonomy, rng, 4);
    assert.equal(rec.label, 'normal');
    const text = buildResponse(rec, taxonomy, new ForcedRng(1));
    const sentences = splitSentences(text);
    assert.equal(sentences[0], NORMAL_VERDICTS[1]);
    assert.equal(sentences.length, 1 + MAX_NORMAL_HOIS);
    const empty = buildResponse({ width: 10, height: 10, objects: [], hois: [], label: 'normal' }, taxonomy, new ForcedRng(2));
    assert.equal(empty, `${NORMAL_VERDICTS[2]} ${NO_INTERACTIONS}`);
    assert.deepEqual(parseResponse(empty, taxonomy), { verdict: 'normal', triplets: [] });
  });

  it('anomalous responses: anomalies first, then normal ones after the marker', () => {
    const rec = recordFor('kick', 'person', taxonomy, new Rng('anom'), 3);
    const text = buildResponse(rec, taxonomy, new ForcedRng(0));
    const sentences = splitSentences(text);
    assert.equal(sentences[0], ANOMALOUS_VERDICTS[0]);
    assert.match(sentences[1], /^The person at \[[\d.,]+\] is kicking the person at \[[\d.,]+\] \(fight, medium severity\)\.$/);
    assert.equal(sentences[2], NORMAL_MARKER);
    assert.equal(sentences.length, 3 + MAX_NORMAL_AFTER_ANOMALIES);
    const parsed = parseResponse(text, taxonomy);
    assert.deepEqual(parsed.triplets.map((t) => `${t.verb} ${t.object} ${t.anomaly}`), ['kick person fight', 'hold knife null', 'hold gun null']);
  });

  it('inconsistent records are data errors', () => {
    const rec = recordFor('stab', 'person', taxonomy, new Rng('bad'));
    assert.throws(() => buildResponse({ ...rec, label: 'normal' }, taxonomy, new Rng(1)), DataError);
    assert.throws(() => buildResponse({ ...rec, hois: [{ ...rec.hois[0], object: 9 }] }, taxonomy, new Rng(1)), /object id 9/);
    assert.throws(() => buildResponse({ ...rec, hois: [{ ...rec.hois[0], severity: null }] }, taxonomy, new Rng(1)), /both set or both null/);
  });

  it('round trip over every template of every rule and every verdict form', () => {
    const rng = new Rng('every-template');
    const used = new Set<string>();
    const verdicts = new Set<string>();
    // rules, plus unlisted pairs for the default templates (normal, and anomalous by annotation)
    const cases: Array<{ rule: TaxonomyRule | null; verb: string; object: string; anomalous: boolean }> = [
      ...taxonomy.rules.map((r) => ({ rule: r, verb: r.verb, object: r.object, anomalous: r.anomaly !== null })),
      { rule: null, verb: 'ride', object: 'horse', anomalous: false },
      { rule: null, verb: 'throw', object: 'knife', anomalous: true },
    ];
    for (const c of cases) {
      const templates = taxonomy.sentenceTemplates(c.verb, c.object, c.anomalous);
      for (let k = 0; k < Math.max(templates.length, ANOMALOUS_VERDICTS.length, NORMAL_VERDICTS.length); k++) {
        const rec = recordFor(c.verb, c.object, taxonomy, rng, k % 3);
        if (c.anomalous && c.rule === null) {
          rec.hois[0] = { ...rec.hois[0], anomaly: 'unexpected_act', severity: 'low' };
          rec.label = 'anomalous';
        }
        const text = buildResponse(rec, taxonomy, new ForcedRng(k));
        const h = rec.hois[0];
        const values = hoiValues(h, rec, rec.objects[0], rec.objects[1], taxonomy);
        const sentence = renderTemplate(templates[k % templates.length], values);
        assert.ok(text.includes(sentence), `template ${k % templates.length} of ${c.verb} ${c.object} not used:\n${text}`);
        used.add(`${c.verb} ${c.object} ${templates[k % templates.length]}`);
        const verdict = splitSentences(text)[0];
        verdicts.add(verdict);
        const parsed = parseResponse(text, taxonomy, c.verb === 'ride' ? { verbs: ['ride'] } : {});
        assert.equal(parsed.verdict, rec.label, text);
        assertTriplets(parsed.triplets, mentioned(rec).map((m) => expectedTriplet(rec, m)), text);
      }
    }
    const expectedUsed = cases.reduce((n, c) => n + taxonomy.sentenceTemplates(c.verb, c.object, c.anomalous).length, 0);
    assert.equal(used.size, expectedUsed);
    assert.deepEqual([...verdicts].sort(), [...ANOMALOUS_VERDICTS, ...NORMAL_VERDICTS].sort());
  });

  it('round trip on random records (synth vocabulary and HICO-DET verbs)', () => {
    const rng = new Rng('random-records');
    const pairs = [...taxonomy.rules.map((r) => [r.verb, r.object] as const), ['ride', 'horse'] as const, ['sit_on', 'bench'] as const, ['no_interaction', 'dog'] as const];
    const categories = ['person', ...SYNTH_THINGS, 'baseball_bat', 'sports_ball', 'cell_phone'];
    for (let i = 0; i < 300; i++) {
      const width = rng.int(16, 1024);
      const height = rng.int(16, 1024);
      const nObjects = rng.int(1, 6);
      const objects: HoiObject[] = Array.from({ length: nObjects }, (_, id) => ({
        id,
        category: id === 0 ? 'person' : rng.pick(categories),
        box: randomBox(rng, width, height),
      }));
      const hois: Hoi[] = [];
      for (let j = rng.int(0, 4); j > 0 && nObjects > 1; j--) {
        const [verb, object] = rng.pick(pairs);
        const target = objects[rng.int(1, nObjects - 1)];
        target.category = object;
        hois.push({ subject: 0, object: target.id, verb, ...taxonomy.lookup(verb, object) });
      }
      // several HOIs may now point at an object whose category changed afterwards: relabel
      for (const h of hois) Object.assign(h, taxonomy.lookup(h.verb, objects[h.object].category));
      const rec: TextRecord = { width, height, objects, hois, label: hois.some((h) => h.anomaly !== null) ? 'anomalous' : 'normal' };
      const [, gpt] = buildConversations(rec, taxonomy, new Rng(i));
      const parsed = parseResponse(gpt.value, taxonomy, { verbs: HICO_VERBS });
      assert.equal(parsed.verdict, rec.label, gpt.value);
      assertTriplets(parsed.triplets, mentioned(rec).map((m) => expectedTriplet(rec, m)), gpt.value);
    }
  });

  it('no two templates are ambiguous (default taxonomy, with and without the HICO-DET verbs)', () => {
    assert.deepEqual(compileResponseParser(taxonomy).findAmbiguities(), []);
    assert.deepEqual(compileResponseParser(taxonomy, { verbs: HICO_VERBS }).findAmbiguities(), []);
  });

  it('an ambiguous taxonomy is refused', () => {
    const json = taxonomy.toJSON() as { rules: Array<Record<string, unknown>> };
    json.rules.push(
      { verb: 'hold', object: 'kite', templates: ['The {subject} at {subject_box} is playing with the {object} at {object_box}.'] },
      { verb: 'fly', object: 'kite', templates: ['The {subject} at {subject_box} is playing with the {object} at {object_box}.'] },
    );
    const bad = Taxonomy.fromJSON(json);
    const problems = new ResponseParser(bad).findAmbiguities();
    assert.ok(problems.some((p) => p.startsWith('ambiguous: "The person at') && p.includes('(fly, kite, normal) by rule (fly, kite) template 0')), problems.join('\n'));
    assert.throws(() => parseResponse('Yes, this image is anomalous.', bad), (e: unknown) => e instanceof ConfigError && /ambiguous/.test(e.message));
  });

  describe('parser tolerance', () => {
    const S = '[0.050,0.120,0.350,0.780]';
    const O = '[0.400,0.100,0.900,0.950]';

    it('reads the DESIGN example sentence, spacing and case aside', () => {
      const text = `YES,  this image is ANOMALOUS.\n\nthe person at [0.05, 0.12, 0.35, 0.78]   is stabbing the person at ${O} ( armed assault , high severity )`;
      assert.deepEqual(parseResponse(text, taxonomy), {
        verdict: 'anomalous',
        triplets: [{ subject_box: [0.05, 0.12, 0.35, 0.78], object_box: [0.4, 0.1, 0.9, 0.95], verb: 'stab', object: 'person', anomaly: 'armed_assault', severity: 'high' }],
      });
    });

    it('junk, partial sentences and bad boxes are skipped, not errors', () => {
      assert.deepEqual(parseResponse('', taxonomy), { verdict: null, triplets: [] });
      assert.deepEqual(parseResponse('lorem ipsum [0.1,0.2] {verb} ((( ... ]]', taxonomy), { verdict: null, triplets: [] });
      const truncated = `No, this image looks normal. The person at ${S} is holding the cup at ${O}. The person at ${S} is carrying the bag at [0.400,0.1`;
      const p = parseResponse(truncated, taxonomy);
      assert.equal(p.verdict, 'normal');
      assert.deepEqual(p.triplets.map((t) => `${t.verb} ${t.object}`), ['hold cup']);
      const pixels = `Yes, there is an anomaly in this image. The person at [12,30,90,200] is punching the person at ${O} (fight, medium severity).`;
      assert.deepEqual(parseResponse(pixels, taxonomy).triplets, []);
      const inverted = `The person at [0.5,0.1,0.4,0.2] is holding the cup at ${O}.`;
      assert.deepEqual(parseResponse(inverted, taxonomy).triplets, []);
    });

    it('verdict: known sentences anywhere, else a leading Yes/No, else null', () => {
      assert.equal(parseResponse('Yes, a man is attacking someone.', taxonomy).verdict, 'anomalous');
      assert.equal(parseResponse('No. Everything is calm.', taxonomy).verdict, 'normal');
      assert.equal(parseResponse(`Hmm. No, there is no anomaly in this image.`, taxonomy).verdict, 'normal');
      assert.equal(parseResponse(NO_INTERACTIONS, taxonomy).verdict, null);
      const noVerdict = parseResponse(`The person at ${S} is kicking the ball at ${O}`, taxonomy);
      assert.equal(noVerdict.verdict, null);
      assert.deepEqual(noVerdict.triplets.map((t) => `${t.verb} ${t.object} ${t.anomaly}`), ['kick ball null']);
    });

    it('no space after a period, model text with unknown verbs and anomalies', () => {
      const text = `Yes, this image is anomalous.The person at ${S} is punching the person at ${O} (fight, medium severity).The person at ${S} is riding the horse at ${O}. The person at ${S} is choking the person at ${O} (strangling, high severity).`;
      const p = parseResponse(text, taxonomy);
      assert.equal(p.verdict, 'anomalous');
      assert.deepEqual(
        p.triplets.map((t) => [t.verb, t.object, t.anomaly, t.severity]),
        [
          ['punch', 'person', 'fight', 'medium'],
          ['ride', 'horse', null, null],
          ['choke', 'person', 'strangling', 'high'],
        ],
      );
    });

    it('the text states the triplet, even when the taxonomy disagrees', () => {
      const text = `The person at ${S} is stabbing the cup at ${O} (fight, low severity).`;
      assert.deepEqual(parseResponse(text, taxonomy).triplets.map((t) => [t.verb, t.object, t.anomaly, t.severity]), [['stab', 'cup', 'fight', 'low']]);
      const literal = `Anomaly (armed threat, medium severity): the person at ${S} is waving the baseball bat at ${O} threateningly.`;
      assert.deepEqual(parseResponse(literal, taxonomy).triplets.map((t) => [t.verb, t.object, t.anomaly, t.severity]), [['wield', 'baseball_bat', 'armed_threat', 'medium']]);
    });
  });
});
