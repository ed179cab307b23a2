/**
 * `<out>/quickstart.json`: what each stage of a quickstart run produced, so a second run can
 * reuse complete stages and still print their metrics. A stage record holds a fingerprint of
 * everything its output depends on (its resolved config and its inputs' fingerprints): a stage
 * is reused only when its output is complete and was made with the same fingerprint. The file
 * is rewritten atomically after every stage.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors';
import { writeFileAtomic } from '../fs_atomic';

export const STATE_FILE = 'quickstart.json';
export const STATE_FORMAT_VERSION = 1;

export const STAGE_NAMES = ['dataset', 'extractor', 'eval_extractor', 'vlp', 'eval_vlp', 'export', 'explain'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/** A metric value for the table: a number (fraction, seconds, ...) or a short text. */
export type MetricValue = number | string | null;

export interface StageRecord {
  fingerprint: string;
  /** running: started and not finished (a training stage resumes from its checkpoints). */
  status: 'running' | 'complete';
  /** Wall seconds of the run that completed it. */
  seconds: number;
  /** The stage's folder or file, relative to the quickstart folder. */
  artefact: string;
  metrics: Record<string, MetricValue>;
  /** The key metrics in one line (the results table's cell). */
  summary: string;
  /** Complete but not everything was produced: the next run redoes the stage. */
  partial: boolean;
  /** Remarks for the table (e.g. "explainer export pending"). */
  notes: string[];
}

export interface QuickstartState {
  format_version: number;
  stages: Partial<Record<StageName, StageRecord>>;
}

/** sha256 (first 16 hex digits) of a JSON value with its object keys sorted. */
export function fingerprint(value: unknown): string {
  return createHash('sha256').update(stableJson(value)).digest('hex').slice(0, 16);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  // NaN / Infinity would all print as null: keep them apart
  if (typeof value === 'number' && !Number.isFinite(value)) return JSON.stringify(String(value));
  return JSON.stringify(value);
}

export function readState(out: string): QuickstartState {
  const file = path.join(out, STATE_FILE);
  if (!fs.existsSync(file)) return { format_version: STATE_FORMAT_VERSION, stages: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataError(`${file}: malformed JSON (${(err as Error).message}); remove it or pass --overwrite`, { cause: err });
  }
  const s = parsed as Partial<QuickstartState>;
  if (s.format_version !== STATE_FORMAT_VERSION || typeof s.stages !== 'object' || s.stages === null) {
    throw new DataError(`${file}: expected format_version ${STATE_FORMAT_VERSION} with a 'stages' object, found ${JSON.stringify(s.format_version)}; remove it or pass --overwrite`);
  }
  return s as QuickstartState;
}

export function writeState(out: string, state: QuickstartState): void {
  fs.mkdirSync(out, { recursive: true });
  // Non-finite metrics (an AUC of a one-class split) are written as null, which JSON can hold.
  writeFileAtomic(path.join(out, STATE_FILE), `${JSON.stringify(state, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
}
