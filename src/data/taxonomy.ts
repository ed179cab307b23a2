import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { readYamlObject } from '../config/load';
import { ConfigError } from '../errors';
import type { Severity } from './record';

/**
 * The threat taxonomy: (verb, object category) -> anomaly type and severity, plus explanation
 * templates (paraphrases) for the instruction-tuning text. Keyed by the pair, not the object:
 * `hold knife` is a normal hard negative while `stab knife` is an anomaly. Pairs without a rule
 * are normal. See configs/taxonomy/threat.yaml for the default and the template rules.
 */
export interface TaxonomyRule {
  verb: string;
  object: string;
  anomaly: string | null;
  severity: Severity | null;
  templates: string[];
}

export const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high'];

/** Placeholders a template may use; names are rendered with spaces for underscores. */
export const TEMPLATE_PLACEHOLDERS = ['subject', 'subject_box', 'verb', 'object', 'object_box', 'anomaly', 'severity'] as const;
export type Placeholder = (typeof TEMPLATE_PLACEHOLDERS)[number];

/** Sentence-ending punctuation; allowed only at the end of a template (responses are split on it). */
const SENTENCE_END = /[.!?]/;

const NAME = z.string().regex(/^[a-z][a-z0-9_]*$/, 'expected a lower-case name like `cut_with` or `baseball_bat`');
const PHRASE = z.string().regex(/^[a-z]+( [a-z]+)*$/, 'expected lower-case words separated by single spaces, e.g. `cutting with`');
const WEIGHT = z.number().min(0).max(1);
const TEMPLATES = z.array(z.string().min(1)).min(1);

const RuleSchema = z
  .object({
    verb: NAME,
    /** One category or a list (one rule per category, same labels and templates). */
    object: z.union([NAME, z.array(NAME).min(1)]),
    anomaly: NAME.nullable().default(null),
    severity: z.enum(['low', 'medium', 'high']).nullable().default(null),
    /** Optional for normal rules (the default normal templates are used), required for anomalies. */
    templates: TEMPLATES.optional(),
  })
  .strict();

const TaxonomySchema = z
  .object({
    name: z.string().min(1),
    severity_weights: z.object({ low: WEIGHT, medium: WEIGHT, high: WEIGHT }).strict(),
    verbs: z.record(NAME, PHRASE).default({}),
    weapons: z.array(NAME).default([]),
    default_templates: z.object({ normal: TEMPLATES, anomalous: TEMPLATES }).strict(),
    rules: z.array(RuleSchema).default([]),
  })
  .strict();

export type TaxonomyConfig = z.infer<typeof TaxonomySchema>;

type TemplateKind = 'normal rule' | 'anomalous rule' | 'default normal' | 'default anomalous';

export class Taxonomy {
  readonly name: string;
  readonly weapons: readonly string[];
  readonly severityWeights: Readonly<Record<Severity, number>>;
  /** One rule per (verb, object) pair, in file order (object lists expanded). */
  readonly rules: readonly TaxonomyRule[];
  /** Templates for pairs without a rule (normal) and for anomalous HOIs whose pair has no anomalous rule. */
  readonly defaultTemplates: { readonly normal: readonly string[]; readonly anomalous: readonly string[] };

  private readonly config: TaxonomyConfig;
  private readonly byPair = new Map<string, TaxonomyRule>();
  private readonly phrases: ReadonlyMap<string, string>;

  private constructor(config: TaxonomyConfig) {
    this.config = config;
    this.name = config.name;
    this.weapons = Object.freeze([...config.weapons]);
    this.severityWeights = Object.freeze({ ...config.severity_weights });
    this.defaultTemplates = Object.freeze({
      normal: Object.freeze([...config.default_templates.normal]),
      anomalous: Object.freeze([...config.default_templates.anomalous]),
    });
    const rules: TaxonomyRule[] = [];
    for (const r of config.rules) {
      for (const object of typeof r.object === 'string' ? [r.object] : r.object) {
        const templates = r.templates ?? (r.anomaly === null ? config.default_templates.normal : []);
        const rule: TaxonomyRule = Object.freeze({ verb: r.verb, object, anomaly: r.anomaly, severity: r.severity, templates: Object.freeze([...templates]) as string[] });
        rules.push(rule);
        this.byPair.set(pairKey(r.verb, object), rule);
      }
    }
    this.rules = Object.freeze(rules);
    this.phrases = new Map(Object.entries(config.verbs));
  }

  /** Loads and validates a taxonomy YAML; every problem is a ConfigError naming the file and key. */
  static load(file: string): Taxonomy {
    return Taxonomy.validate(readYamlObject(file), file);
  }

  /** The built-in `threat` taxonomy (configs/taxonomy/threat.yaml in the package), loaded once. */
  static default(): Taxonomy {
    defaultTaxonomy ??= Taxonomy.load(defaultTaxonomyPath());
    return defaultTaxonomy;
  }

  /** Inverse of toJSON (e.g. the taxonomy stored in a dataset manifest). */
  static fromJSON(obj: unknown): Taxonomy {
    return Taxonomy.validate(obj, 'taxonomy JSON');
  }

  private static validate(raw: unknown, source: string): Taxonomy {
    const parsed = TaxonomySchema.safeParse(raw);
    if (!parsed.success) throw new ConfigError(`${source}: invalid taxonomy:\n  ${formatZodIssues(parsed.error).join('\n  ')}`);
    const problems = checkConfig(parsed.data);
    if (problems.length > 0) throw new ConfigError(`${source}: invalid taxonomy:\n  ${problems.join('\n  ')}`);
    return new Taxonomy(parsed.data);
  }

  lookup(verb: string, object: string): { anomaly: string | null; severity: Severity | null } {
    const rule = this.byPair.get(pairKey(verb, object));
    return rule ? { anomaly: rule.anomaly, severity: rule.severity } : { anomaly: null, severity: null };
  }

  /** Anomaly-score weight of the pair: the severity weight, 0 for a normal pair. */
  weight(verb: string, object: string): number {
    const { severity } = this.lookup(verb, object);
    return severity === null ? 0 : this.severityWeights[severity];
  }

  /** Weight of a severity (0 for null = normal). */
  severityWeight(severity: Severity | null): number {
    return severity === null ? 0 : this.severityWeights[severity];
  }

  /** The rule of a pair, if the taxonomy lists it. */
  rule(verb: string, object: string): TaxonomyRule | undefined {
    return this.byPair.get(pairKey(verb, object));
  }

  /** Explanation templates of the pair: its rule's, or the default normal ones. */
  templatesFor(verb: string, object: string): string[] {
    return [...(this.byPair.get(pairKey(verb, object))?.templates ?? this.defaultTemplates.normal)];
  }

  /**
   * Templates for one HOI given whether it is anomalous. Normally the same as templatesFor; when an
   * annotation disagrees with the taxonomy (an anomaly on a pair the taxonomy calls normal, or the
   * reverse) the default templates of the HOI's own kind are used, so the text states what the
   * record says.
   */
  sentenceTemplates(verb: string, object: string, anomalous: boolean): string[] {
    const rule = this.byPair.get(pairKey(verb, object));
    if (rule && (rule.anomaly !== null) === anomalous) return [...rule.templates];
    return [...(anomalous ? this.defaultTemplates.anomalous : this.defaultTemplates.normal)];
  }

  /** Text form of a verb: the `verbs` entry, else derived (`cut_with` -> `cutting with`). */
  verbPhrase(verb: string): string {
    return this.phrases.get(verb) ?? deriveVerbPhrase(verb);
  }

  /** Verbs the taxonomy names (in `verbs` or in a rule), sorted. */
  knownVerbs(): string[] {
    return [...new Set([...this.phrases.keys(), ...this.rules.map((r) => r.verb)])].sort();
  }

  /** Anomaly types used by the rules, sorted. */
  anomalies(): string[] {
    return [...new Set(this.rules.flatMap((r) => (r.anomaly === null ? [] : [r.anomaly])))].sort();
  }

  /** The whole taxonomy as validated (object lists kept as written); `fromJSON` reads it back. */
  toJSON(): object {
    return JSON.parse(JSON.stringify(this.config)) as object;
  }
}

let defaultTaxonomy: Taxonomy | undefined;

/** Path of the built-in taxonomy: found from this file by walking up to the package root. */
export function defaultTaxonomyPath(): string {
  return path.join(packageRoot(), 'configs', 'taxonomy', 'threat.yaml');
}

/**
 * The folder holding package.json above this module (src/data/ in the sources, dist/src/data/
 * once compiled), so the lookup works from both.
 */
export function packageRoot(start: string = __dirname): string {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new ConfigError(`cannot find the package root (package.json) above ${start}`);
  }
}

/**
 * Generic text form of a verb without a `verbs` entry: underscores become spaces and the first
 * word takes its -ing form (`sit_on` -> `sitting on`, `lie_on` -> `lying on`, `ride` -> `riding`).
 */
export function deriveVerbPhrase(verb: string): string {
  const words = verb.split('_').filter((w) => w.length > 0);
  if (words.length === 0) return verb;
  words[0] = ingForm(words[0]);
  return words.join(' ');
}

const VOWELS = 'aeiou';
/** Final consonants that double before -ing after a single short vowel (stab, hit, run, stir). */
const DOUBLING = 'bdgkmnprt';

/** English -ing form by the common spelling rules (good for the regular HICO-DET verbs). */
export function ingForm(word: string): string {
  const w = word.toLowerCase();
  if (w.endsWith('ie')) return `${w.slice(0, -2)}ying`;
  if (w.endsWith('e') && w.length > 2 && !/(ee|ye|oe)$/.test(w)) return `${w.slice(0, -1)}ing`;
  if (isShortCvc(w)) return `${w}${w[w.length - 1]}ing`;
  return `${w}ing`;
}

/** One vowel group, ending consonant-vowel-consonant with a doubling consonant: stab, cut, stir. */
function isShortCvc(w: string): boolean {
  const n = w.length;
  if (n < 3) return false;
  const groups = w.match(/[aeiou]+/g) ?? [];
  if (groups.length !== 1 || groups[0].length !== 1) return false;
  return DOUBLING.includes(w[n - 1]) && VOWELS.includes(w[n - 2]) && !VOWELS.includes(w[n - 3]);
}

/**
 * Best-effort inverse of deriveVerbPhrase for a phrase of a verb the taxonomy does not name:
 * the candidate base forms are tried in order and the first whose derived phrase equals the phrase
 * wins (`hopping` -> hop, `lying on` -> lie_on, `kissing` -> kiss, `riding` -> ride).
 * Returns null when the phrase does not start with an -ing word.
 */
export function verbFromDerivedPhrase(phrase: string): string | null {
  const words = phrase.toLowerCase().trim().split(/\s+/);
  const first = words[0];
  if (!first.endsWith('ing') || first.length < 5) return null;
  const stem = first.slice(0, -3);
  const n = stem.length;
  const groups = (stem.match(/[aeiouy]+/g) ?? []).length;
  const candidates: string[] = [];
  if (n <= 2 && stem.endsWith('y')) candidates.push(`${stem.slice(0, -1)}ie`); // lying, tying
  if (n >= 2 && stem[n - 1] === stem[n - 2]) candidates.push(stem.slice(0, -1)); // hopping, sitting
  // a one-syllable C-V-C stem that did not double is most likely a silent-e verb (riding, typing),
  // and so are endings that do not close English verbs (serving, dribbling, squeezing, operating)
  if (
    (groups === 1 && /(^|[^aeiouy])[aeiouy][^aeiouwxy]$/.test(stem)) ||
    /(v|[^aeioul]l|[^cz]z|[^aeiou]c|dg|[aeiou][aeiou]s|[^aeiou]at)$/.test(stem)
  ) {
    candidates.push(`${stem}e`);
  }
  candidates.push(stem, `${stem}e`);
  const base = candidates.find((c) => ingForm(c) === first);
  if (base === undefined) return null;
  return [base, ...words.slice(1)].join('_');
}

/** Placeholder names used by a template, in order of appearance. */
export function templatePlaceholders(template: string): string[] {
  return [...template.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1]);
}

function pairKey(verb: string, object: string): string {
  return `${verb}\u0000${object}`;
}

// ---------------------------------------------------------------------------------------------
// validation beyond the schema: duplicate pairs, labels, templates, verb phrases

function checkConfig(c: TaxonomyConfig): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  c.default_templates.normal.forEach((t, i) => problems.push(...checkTemplate(t, 'default normal', `default_templates.normal.${i}`)));
  c.default_templates.anomalous.forEach((t, i) => problems.push(...checkTemplate(t, 'default anomalous', `default_templates.anomalous.${i}`)));
  c.rules.forEach((r, i) => {
    const key = `rules.${i}`;
    if ((r.anomaly === null) !== (r.severity === null)) {
      problems.push(`key '${key}': anomaly and severity are both set (an anomaly) or both null (normal), found anomaly ${JSON.stringify(r.anomaly)}, severity ${JSON.stringify(r.severity)}`);
    }
    if (r.anomaly !== null && r.templates === undefined) {
      problems.push(`key '${key}.templates': required for an anomalous rule (${r.verb}, ${r.anomaly})`);
    }
    const objects = typeof r.object === 'string' ? [r.object] : r.object;
    objects.forEach((o, j) => {
      const where = typeof r.object === 'string' ? `${key}.object` : `${key}.object.${j}`;
      const first = seen.get(pairKey(r.verb, o));
      if (first !== undefined) problems.push(`key '${where}': duplicate rule for (${r.verb}, ${o}), first defined at ${first}`);
      else seen.set(pairKey(r.verb, o), where);
    });
    const kind: TemplateKind = r.anomaly === null ? 'normal rule' : 'anomalous rule';
    (r.templates ?? []).forEach((t, j) => problems.push(...checkTemplate(t, kind, `${key}.templates.${j}`)));
  });
  // verb phrases must be distinct, or the parser could not tell the verbs apart
  const byPhrase = new Map<string, string>();
  const verbs = new Set([...Object.keys(c.verbs), ...c.rules.map((r) => r.verb)]);
  for (const v of verbs) {
    const phrase = c.verbs[v] ?? deriveVerbPhrase(v);
    const other = byPhrase.get(phrase);
    if (other !== undefined) problems.push(`key 'verbs.${v}': phrase '${phrase}' is also the phrase of verb '${other}'`);
    else byPhrase.set(phrase, v);
  }
  return problems;
}

function checkTemplate(t: string, kind: TemplateKind, key: string): string[] {
  const problems: string[] = [];
  const at = `key '${key}'`;
  const names = templatePlaceholders(t);
  const allowed = TEMPLATE_PLACEHOLDERS as readonly string[];
  for (const n of names) {
    if (!allowed.includes(n)) problems.push(`${at}: unknown placeholder {${n}} in "${t}"; allowed: ${TEMPLATE_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}`);
  }
  const literal = t.replace(/\{[^{}]*\}/g, '\u0000');
  if (/[{}]/.test(literal)) problems.push(`${at}: unbalanced brace in "${t}"`);
  if (/\u0000\u0000/.test(literal)) problems.push(`${at}: two placeholders with no text between them in "${t}" (the parser could not split them)`);
  const body = literal.trimEnd().replace(/[.!?]+$/, '');
  if (SENTENCE_END.test(body.replace(/\u0000/g, ''))) problems.push(`${at}: '.', '!' or '?' allowed only at the end of a template, found "${t}"`);
  for (const box of ['subject_box', 'object_box']) {
    const count = names.filter((n) => n === box).length;
    if (count !== 1) problems.push(`${at}: needs {${box}} exactly once, found ${count} in "${t}"`);
  }
  const has = (n: string) => names.includes(n);
  if (kind === 'anomalous rule' || kind === 'default anomalous') {
    for (const n of ['anomaly', 'severity']) if (!has(n)) problems.push(`${at}: an anomalous template must state {${n}}, missing in "${t}"`);
  } else {
    for (const n of ['anomaly', 'severity']) if (has(n)) problems.push(`${at}: a normal template cannot use {${n}} (it is null), found in "${t}"`);
  }
  if (kind === 'default normal' || kind === 'default anomalous') {
    for (const n of ['verb', 'object']) if (!has(n)) problems.push(`${at}: a default template must use {${n}} (there is no rule to imply it), missing in "${t}"`);
  }
  return problems;
}

function formatZodIssues(error: z.ZodError): string[] {
  return error.issues.flatMap((issue): string[] => {
    if (issue.code === 'invalid_union') {
      // `object: name | [names]`: report the branch that got further than a type mismatch
      const inner = issue.unionErrors.flatMap((e) => e.issues);
      const specific = inner.filter((i) => i.code !== 'invalid_type' || i.path.length > issue.path.length);
      if (specific.length > 0) return formatZodIssues(new z.ZodError(specific));
      const found = inner.find((i) => i.code === 'invalid_type');
      return [`key '${issue.path.map(String).join('.')}': expected a name or a list of names, found ${found && found.code === 'invalid_type' ? found.received : 'something else'}`];
    }
    const base = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => `key '${base ? `${base}.${k}` : k}': unknown key`);
    }
    const key = base || '(root)';
    if (issue.code === 'invalid_type') return [`key '${key}': expected ${issue.expected}, found ${issue.received}`];
    if (issue.code === 'invalid_enum_value') return [`key '${key}': expected one of ${issue.options.map((o) => `'${String(o)}'`).join(', ')}, found '${String(issue.received)}'`];
    return [`key '${key}': ${issue.message}`];
  });
}
