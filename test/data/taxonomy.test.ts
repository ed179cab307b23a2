import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { ConfigError } from '../../src/errors';
import { HICO_VERBS } from '../../src/data/hico_names';
import {
  Taxonomy,
  defaultTaxonomyPath,
  deriveVerbPhrase,
  packageRoot,
  templatePlaceholders,
  verbFromDerivedPhrase,
} from '../../src/data/taxonomy';
import { tmpDir } from '../helpers/tmp';

const SYNTH_THINGS = ['knife', 'gun', 'bat', 'bottle', 'cup', 'phone', 'bag', 'ball'];

/** A small valid taxonomy as a plain object; tests break one field at a time. */
function minimal(): Record<string, any> {
  return {
    name: 'mini',
    severity_weights: { low: 0.2, medium: 0.5, high: 1 },
    verbs: { stab: 'stabbing' },
    weapons: ['knife'],
    default_templates: {
      normal: ['The {subject} at {subject_box} is {verb} the {object} at {object_box}.'],
      anomalous: ['The {subject} at {subject_box} is {verb} the {object} at {object_box} ({anomaly}, {severity} severity).'],
    },
    rules: [
      {
        verb: 'stab',
        object: 'person',
        anomaly: 'assault',
        severity: 'high',
        templates: ['The {subject} at {subject_box} is {verb} the {object} at {object_box} ({anomaly}, {severity} severity).'],
      },
    ],
  };
}

describe('data/taxonomy', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (obj: unknown, text?: string): string => {
    const f = path.join(dir, 'tax.yaml');
    fs.writeFileSync(f, text ?? YAML.stringify(obj));
    return f;
  };
  const configError = (fn: () => unknown, ...parts: string[]) =>
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
      for (const p of parts) assert.ok(e.message.includes(p), `message lacks '${p}':\n${e.message}`);
      return true;
    });

  it('loads the built-in threat taxonomy from the package root', () => {
    assert.equal(packageRoot(), path.resolve(__dirname, '..', '..', '..'));
    assert.equal(defaultTaxonomyPath(), path.join(packageRoot(), 'configs', 'taxonomy', 'threat.yaml'));
    const t = Taxonomy.default();
    assert.equal(Taxonomy.default(), t); // loaded once
    assert.equal(t.name, 'threat');
    assert.deepEqual([...t.weapons], ['knife', 'gun', 'bat']);
    assert.deepEqual({ ...t.severityWeights }, { low: 0.3, medium: 0.6, high: 1.0 });
    assert.equal(t.rules.length, 45);
    assert.deepEqual(t.anomalies(), ['armed_assault', 'armed_threat', 'assault', 'fight']);
    const anomalous = t.rules.filter((r) => r.anomaly !== null).map((r) => `${r.verb} ${r.object} ${r.anomaly} ${r.severity}`);
    assert.deepEqual(anomalous, [
      'point_at gun armed_threat high',
      'point_at person armed_threat high',
      'stab knife armed_assault high',
      'stab person armed_assault high',
      'hit bat armed_assault high',
      'hit person assault medium',
      'punch person fight medium',
      'kick person fight medium',
      'wield knife armed_threat medium',
      'wield baseball_bat armed_threat low',
    ]);
    for (const r of t.rules) assert.ok(r.templates.length >= 2, `${r.verb} ${r.object}: ${r.templates.length} templates`);
  });

  it('covers the staged synth pairs: hold / carry / hand_over every object, normal', () => {
    const t = Taxonomy.default();
    for (const verb of ['hold', 'carry', 'hand_over']) {
      for (const object of SYNTH_THINGS) {
        assert.ok(t.rule(verb, object), `${verb} ${object} not listed`);
        assert.deepEqual(t.lookup(verb, object), { anomaly: null, severity: null });
      }
    }
    for (const [verb, object] of [['talk_on', 'phone'], ['throw', 'ball'], ['throw', 'bottle'], ['kick', 'ball']]) {
      assert.ok(t.rule(verb, object), `${verb} ${object} not listed`);
      assert.equal(t.lookup(verb, object).anomaly, null);
    }
  });

  it('lookup is keyed by the pair: anomalous, normal hard negatives, unlisted', () => {
    const t = Taxonomy.default();
    assert.deepEqual(t.lookup('stab', 'person'), { anomaly: 'armed_assault', severity: 'high' });
    assert.deepEqual(t.lookup('stab', 'knife'), { anomaly: 'armed_assault', severity: 'high' });
    assert.deepEqual(t.lookup('point_at', 'gun'), { anomaly: 'armed_threat', severity: 'high' });
    assert.deepEqual(t.lookup('hit', 'person'), { anomaly: 'assault', severity: 'medium' });
    assert.deepEqual(t.lookup('kick', 'person'), { anomaly: 'fight', severity: 'medium' });
    assert.deepEqual(t.lookup('wield', 'baseball_bat'), { anomaly: 'armed_threat', severity: 'low' });
    // same verb, other object: normal
    assert.deepEqual(t.lookup('kick', 'ball'), { anomaly: null, severity: null });
    assert.deepEqual(t.lookup('hit', 'sports_ball'), { anomaly: null, severity: null });
    // weapon in a normal interaction
    assert.deepEqual(t.lookup('hold', 'knife'), { anomaly: null, severity: null });
    assert.deepEqual(t.lookup('cut_with', 'knife'), { anomaly: null, severity: null });
    // unlisted
    assert.deepEqual(t.lookup('ride', 'horse'), { anomaly: null, severity: null });
    assert.deepEqual(t.lookup('stab', 'cake'), { anomaly: null, severity: null });
  });

  it('weights: severity weight of the pair, 0 for normal', () => {
    const t = Taxonomy.default();
    assert.equal(t.weight('stab', 'person'), 1.0);
    assert.equal(t.weight('punch', 'person'), 0.6);
    assert.equal(t.weight('wield', 'baseball_bat'), 0.3);
    assert.equal(t.weight('hold', 'gun'), 0);
    assert.equal(t.weight('ride', 'horse'), 0);
    assert.equal(t.severityWeight('medium'), 0.6);
    assert.equal(t.severityWeight(null), 0);
  });

  it('templates: the rule\'s, else the defaults; by kind when a record disagrees', () => {
    const t = Taxonomy.default();
    const stab = t.templatesFor('stab', 'person');
    assert.equal(stab.length, 3);
    assert.equal(stab[0], 'The {subject} at {subject_box} is {verb} the {object} at {object_box} ({anomaly}, {severity} severity).');
    assert.deepEqual(t.templatesFor('ride', 'horse'), [...t.defaultTemplates.normal]);
    assert.deepEqual(t.templatesFor('hold', 'cup'), [...t.defaultTemplates.normal]); // normal rule without templates
    assert.equal(t.templatesFor('hold', 'knife')[1], 'The {subject} at {subject_box} is {verb} the {object} at {object_box}, which alone is not a threat.');
    assert.deepEqual(t.sentenceTemplates('stab', 'person', true), stab);
    assert.deepEqual(t.sentenceTemplates('stab', 'person', false), [...t.defaultTemplates.normal]);
    assert.deepEqual(t.sentenceTemplates('ride', 'horse', true), [...t.defaultTemplates.anomalous]);
    assert.deepEqual(templatePlaceholders(stab[2]), ['anomaly', 'severity', 'object', 'object_box', 'subject', 'subject_box']);
  });

  it('verb phrases: listed, derived, and inverted for every HICO-DET verb', () => {
    const t = Taxonomy.default();
    assert.equal(t.verbPhrase('stab'), 'stabbing');
    assert.equal(t.verbPhrase('talk_on'), 'talking on');
    assert.equal(t.verbPhrase('hand_over'), 'handing over');
    assert.equal(t.verbPhrase('control'), 'controlling');
    assert.equal(t.verbPhrase('no_interaction'), 'not interacting with');
    const derived: Record<string, string> = {
      sit_on: 'sitting on', lie_on: 'lying on', ride: 'riding', cut_with: 'cutting with', swing: 'swinging',
      stir: 'stirring', eat_at: 'eating at', open: 'opening', fly: 'flying', pick_up: 'picking up', squeeze: 'squeezing',
    };
    for (const [v, p] of Object.entries(derived)) assert.equal(deriveVerbPhrase(v), p, v);
    const phrases = HICO_VERBS.map((v) => t.verbPhrase(v));
    assert.equal(new Set(phrases).size, HICO_VERBS.length); // distinct
    for (const v of HICO_VERBS) {
      if (v === 'control' || v === 'no_interaction') continue; // irregular: listed in the YAML
      assert.equal(verbFromDerivedPhrase(t.verbPhrase(v)), v, v);
    }
    assert.equal(verbFromDerivedPhrase('hoping'), 'hope');
    assert.equal(verbFromDerivedPhrase('hopping'), 'hop');
    assert.equal(verbFromDerivedPhrase('holds'), null);
  });

  it('toJSON / fromJSON round trip', () => {
    const t = Taxonomy.default();
    const json = JSON.parse(JSON.stringify(t.toJSON())) as Record<string, any>;
    assert.equal(json.name, 'threat');
    assert.equal(json.rules.length, 24); // as written: object lists are kept
    const u = Taxonomy.fromJSON(json);
    assert.deepEqual(u.toJSON(), t.toJSON());
    assert.deepEqual(u.rules, t.rules);
    assert.deepEqual(u.lookup('kick', 'person'), { anomaly: 'fight', severity: 'medium' });
    assert.equal(u.verbPhrase('point_at'), 'pointing at');
    configError(() => Taxonomy.fromJSON({ ...json, severity_weights: { low: 2, medium: 0.5, high: 1 } }), 'taxonomy JSON', "key 'severity_weights.low'");
    configError(() => Taxonomy.fromJSON('threat'), 'taxonomy JSON', "key '(root)'", 'expected object, found string');
  });

  it('a minimal YAML loads; anchors and object lists expand', () => {
    const t = Taxonomy.load(write(minimal()));
    assert.equal(t.name, 'mini');
    assert.deepEqual(t.lookup('stab', 'person'), { anomaly: 'assault', severity: 'high' });
    assert.equal(t.weight('stab', 'person'), 1);
    assert.equal(t.verbPhrase('wave'), 'waving');
    const listed = Taxonomy.load(
      write(null, [
        'name: lists',
        'severity_weights: {low: 0.1, medium: 0.2, high: 0.3}',
        'default_templates:',
        "  normal: ['The {subject} at {subject_box} is {verb} the {object} at {object_box}.']",
        "  anomalous: ['The {subject} at {subject_box} is {verb} the {object} at {object_box} ({anomaly}, {severity} severity).']",
        'rules:',
        '  - {verb: hit, object: [person, dog], anomaly: assault, severity: medium, templates: &t ["{subject_box} hits {object_box}: {anomaly}, {severity}."]}',
        '  - {verb: punch, object: person, anomaly: fight, severity: low, templates: *t}',
      ].join('\n')),
    );
    assert.deepEqual(listed.rules.map((r) => `${r.verb} ${r.object} ${r.severity}`), ['hit person medium', 'hit dog medium', 'punch person low']);
    assert.deepEqual(listed.rules[2].templates, ['{subject_box} hits {object_box}: {anomaly}, {severity}.']);
    assert.equal(listed.weight('hit', 'dog'), 0.2);
    assert.deepEqual([...listed.weapons], []);
  });

  describe('bad YAML gives a ConfigError naming the file and key', () => {
    it('unknown keys', () => {
      const file = write({ ...minimal(), colour: 'red' });
      configError(() => Taxonomy.load(file), file, "key 'colour': unknown key");
      const m = minimal();
      m.rules[0].weight = 2;
      configError(() => Taxonomy.load(write(m)), "key 'rules.0.weight': unknown key");
      const d = minimal();
      d.default_templates.rare = ['x'];
      configError(() => Taxonomy.load(write(d)), "key 'default_templates.rare': unknown key");
    });

    it('wrong severity, weight, types, missing keys', () => {
      const m = minimal();
      m.rules[0].severity = 'extreme';
      configError(() => Taxonomy.load(write(m)), "key 'rules.0.severity'", "'low', 'medium', 'high'", "found 'extreme'");
      const w = minimal();
      w.severity_weights.high = 1.5;
      configError(() => Taxonomy.load(write(w)), "key 'severity_weights.high'");
      const n = minimal();
      delete n.name;
      configError(() => Taxonomy.load(write(n)), "key 'name': expected string, found undefined");
      const v = minimal();
      v.verbs = { Stab: 'stabbing' };
      configError(() => Taxonomy.load(write(v)), "key 'verbs.Stab'");
      const p = minimal();
      p.verbs = { stab: 'Stabbing!' };
      configError(() => Taxonomy.load(write(p)), "key 'verbs.stab'", 'lower-case words');
    });

    it('templates: unknown placeholder, missing box, label mismatch, punctuation', () => {
      const m = minimal();
      m.rules[0].templates.push('The {subject} at {subject_box} stabs with the {weapon} at {object_box} ({anomaly}, {severity} severity).');
      configError(() => Taxonomy.load(write(m)), "key 'rules.0.templates.1'", 'unknown placeholder {weapon}');
      const b = minimal();
      b.default_templates.normal = ['The {subject} is {verb} the {object} at {object_box}.'];
      configError(() => Taxonomy.load(write(b)), "key 'default_templates.normal.0'", 'needs {subject_box} exactly once, found 0');
      const a = minimal();
      a.rules[0].templates = ['The {subject} at {subject_box} is {verb} the {object} at {object_box}.'];
      configError(() => Taxonomy.load(write(a)), "key 'rules.0.templates.0'", 'must state {anomaly}');
      const n = minimal();
      n.rules.push({ verb: 'hold', object: 'knife', templates: ['{subject_box} holds {object_box} ({severity}).'] });
      configError(() => Taxonomy.load(write(n)), "key 'rules.1.templates.0'", 'cannot use {severity}');
      const d = minimal();
      d.default_templates.normal = ['The {subject} at {subject_box} is busy. It holds something at {object_box}.'];
      configError(() => Taxonomy.load(write(d)), "key 'default_templates.normal.0'", 'only at the end', 'must use {verb}');
      const j = minimal();
      j.default_templates.normal = ['At {subject_box} {verb}{object} at {object_box}.'];
      configError(() => Taxonomy.load(write(j)), 'no text between them');
    });

    it('rules: half-set labels, missing templates, duplicate pairs, clashing verb phrases', () => {
      const h = minimal();
      h.rules[0].severity = null;
      configError(() => Taxonomy.load(write(h)), "key 'rules.0'", 'both set (an anomaly) or both null');
      const t = minimal();
      delete t.rules[0].templates;
      configError(() => Taxonomy.load(write(t)), "key 'rules.0.templates': required for an anomalous rule");
      const d = minimal();
      d.rules.push({ verb: 'hold', object: ['cup', 'knife'] }, { verb: 'hold', object: 'knife' });
      configError(() => Taxonomy.load(write(d)), "key 'rules.2.object'", 'duplicate rule for (hold, knife), first defined at rules.1.object.1');
      const o = minimal();
      o.rules[0].object = ['person', 3];
      configError(() => Taxonomy.load(write(o)), "key 'rules.0.object.1': expected string, found number");
      o.rules[0].object = 7;
      configError(() => Taxonomy.load(write(o)), "key 'rules.0.object': expected a name or a list of names, found number");
      const c = minimal();
      c.verbs = { stab: 'stabbing', knife_attack: 'stabbing' };
      configError(() => Taxonomy.load(write(c)), "phrase 'stabbing' is also the phrase of verb");
    });

    it('syntax errors and missing files', () => {
      const file = write(null, 'name: threat\nrules: [\n');
      configError(() => Taxonomy.load(file), file, 'invalid YAML');
      configError(() => Taxonomy.load(path.join(dir, 'nope.yaml')), 'not found', 'nope.yaml');
    });
  });
});
