import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors';
import { writeFileAtomic } from '../fs_atomic';

/**
 * Config loading shared by every command:
 *   schema defaults  <  YAML file (--config)  <  command-line flags  <  --set a.b=value
 * Schemas are strict zod objects: an unknown key or a wrong type is a ConfigError that names the
 * dotted key and where it came from.
 */
export interface LoadOptions {
  /** A YAML file holding only what differs from the defaults. */
  file?: string;
  /** Values from dedicated flags (e.g. --num-images), as dotted keys; undefined values are skipped. */
  flags?: Record<string, unknown>;
  /** `a.b=value` strings from --set; values are parsed as YAML scalars (`3`, `true`, `[1,2]`, `text`). */
  sets?: string[];
}

type Json = Record<string, unknown>;

export function loadConfig<S extends z.ZodTypeAny>(schema: S, opts: LoadOptions = {}): z.infer<S> {
  let raw: Json = {};
  const origin = new Map<string, string>();
  if (opts.file) {
    raw = readYamlObject(opts.file);
    for (const key of leafKeys(raw)) origin.set(key, opts.file);
  }
  for (const [key, value] of Object.entries(opts.flags ?? {})) {
    if (value === undefined) continue;
    setDotted(raw, key, value);
    origin.set(key, 'command line');
  }
  for (const s of opts.sets ?? []) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set '${s}': expected key=value, e.g. --set synth.num_images=100`);
    const key = s.slice(0, eq).trim();
    const text = s.slice(eq + 1);
    let value: unknown;
    try {
      value = text === '' ? '' : YAML.parse(text);
    } catch {
      value = text;
    }
    setDotted(raw, key, value);
    origin.set(key, '--set');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, origin, opts.file));
  return parsed.data;
}

/** Reads a YAML mapping; syntax errors name file:line:col. An empty file is an empty mapping. */
export function readYamlObject(file: string): Json {
  if (!fs.existsSync(file)) throw new ConfigError(`config file not found: ${file}`);
  const text = fs.readFileSync(file, 'utf8');
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = e.linePos?.[0];
    const at = pos ? `${file}:${pos.line}:${pos.col}` : file;
    throw new ConfigError(`${at}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const value: unknown = doc.toJS() ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${file}: expected a mapping of keys at the top level, found ${Array.isArray(value) ? 'a list' : typeof value}`);
  }
  return value as Json;
}

/** Writes the resolved config as YAML beside a run's outputs (atomically). */
export function writeResolvedConfig(dir: string, config: unknown, name = 'config.yaml'): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  writeFileAtomic(file, `# resolved configuration (defaults + file + flags + --set)\n${YAML.stringify(config)}`);
  return file;
}

function setDotted(obj: Json, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur: Json = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i];
    const next = cur[p];
    if (next === undefined || next === null) cur[p] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) {
      throw new ConfigError(`cannot set '${key}': '${parts.slice(0, i + 1).join('.')}' is not a section`);
    }
    cur = cur[p] as Json;
  }
  cur[parts[parts.length - 1]] = value;
}

function leafKeys(obj: Json, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) out.push(...leafKeys(v as Json, key));
    else out.push(key);
  }
  return out;
}

function formatIssues(error: z.ZodError, origin: Map<string, string>, file?: string): string {
  const lines = error.issues.map((issue) => {
    const base = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys
        .map((k) => {
          const key = base ? `${base}.${k}` : k;
          return `key '${key}' (${sourceOf(key, origin, file)}): unknown key`;
        })
        .join('\n  ');
    }
    const key = base || '(root)';
    let detail = issue.message;
    if (issue.code === 'invalid_type') detail = `expected ${issue.expected}, found ${issue.received}`;
    return `key '${key}' (${sourceOf(key, origin, file)}): ${detail}`;
  });
  return `invalid configuration:\n  ${lines.join('\n  ')}`;
}

function sourceOf(key: string, origin: Map<string, string>, file?: string): string {
  for (let k = key; k; k = k.includes('.') ? k.slice(0, k.lastIndexOf('.')) : '') {
    const o = origin.get(k);
    if (o) return o;
  }
  for (const [k, o] of origin) if (k.startsWith(`${key}.`)) return o;
  return file ? `default, not set in ${file}` : 'default';
}
