/**
 * `quickstart`: the whole pipeline on the embedded synthetic default, in one folder:
 *
 *   <out>/dataset/  extractor/  vlp/  export/  explain/
 *   <out>/config.yaml     the resolved quickstart config
 *   <out>/quickstart.json what each stage produced (fingerprints, times, metrics)
 *   <out>/results.md      the results table printed at the end
 *
 * Stages run in order (see stages.ts). Before each, `decide` compares its output with the record
 * in quickstart.json: a complete output made with the same settings and inputs is reused; an
 * interrupted training run is resumed from its last checkpoint; anything else is redone, except
 * an output quickstart has no record of (or made with other settings), which is left alone
 * unless --overwrite. --overwrite redoes every stage.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeResolvedConfig } from '../config/load';
import { UsageError } from '../errors';
import { writeFileAtomic } from '../fs_atomic';
import { log } from '../logger';
import { listCheckpoints } from '../train/checkpoint';
import { type QuickstartConfig, resolveStageConfigs } from './config';
import { quickstartPaths, quickstartStages, type Stage } from './stages';
import { fingerprint, type QuickstartState, readState, type StageName, type StageRecord, STATE_FORMAT_VERSION, writeState } from './state';
import { formatSeconds, resultsTable, type TableRow } from './table';

export { loadQuickstartConfig, QuickstartConfigSchema, type QuickstartConfig } from './config';

export const RESULTS_FILE = 'results.md';

export interface QuickstartRequest {
  config: QuickstartConfig;
  /** The quickstart folder (default of the CLI: runs/quickstart). */
  out: string;
  /** Redo every stage, replacing what is there. */
  overwrite?: boolean;
}

export type StageStatus = 'ran' | 'resumed' | 'reused';

export interface QuickstartResult {
  out: string;
  /** Wall seconds of this call. */
  seconds: number;
  stages: Array<{ name: StageName; title: string; status: StageStatus; record: StageRecord }>;
  /** The results table (Markdown). */
  table: string;
  resultsFile: string;
}

export type Decision = 'reuse' | 'resume' | 'fresh' | 'refuse';

export interface DecisionInput {
  /** The stage's output exists (complete or not). */
  exists: boolean;
  /** ... and is complete. */
  complete: boolean;
  /** quickstart.json's record of the stage, if any. */
  previous: StageRecord | undefined;
  fingerprint: string;
  /** A training stage whose run folder holds at least one complete checkpoint. */
  canResume: boolean;
  /** A stage it reads from was redone in this call. */
  upstreamRedone: boolean;
  overwrite: boolean;
}

/** What to do with one stage (see the file comment). */
export function decide(d: DecisionInput): Decision {
  if (!d.exists || d.overwrite) return 'fresh';
  if (d.previous?.fingerprint !== d.fingerprint) return 'refuse';
  if (d.upstreamRedone) return 'fresh';
  if (d.previous.status === 'complete' && d.complete && !d.previous.partial) return 'reuse';
  return d.canResume ? 'resume' : 'fresh';
}

function relative(out: string, target: string): string {
  return path.relative(out, target).split(path.sep).join('/') || '.';
}

export async function runQuickstart(req: QuickstartRequest): Promise<QuickstartResult> {
  const started = Date.now();
  const q = req.config;
  const overwrite = req.overwrite ?? false;
  // Every stage config is resolved (and validated) before anything runs.
  const configs = resolveStageConfigs(q);
  const paths = quickstartPaths(req.out);
  const state: QuickstartState = overwrite ? { format_version: STATE_FORMAT_VERSION, stages: {} } : readState(paths.out);
  writeResolvedConfig(paths.out, q);
  const stages = quickstartStages({ q, configs, paths });
  log.info(`quickstart in ${paths.out}: ${stages.length} stages (${stages.map((s) => s.name).join(', ')})`);

  const fingerprints = new Map<StageName, string>();
  const redone = new Set<StageName>();
  const done: QuickstartResult['stages'] = [];
  for (const [i, stage] of stages.entries()) {
    const label = `[${i + 1}/${stages.length}] ${stage.title}`;
    const fp = fingerprint({ stage: stage.name, key: stage.key, inputs: stage.inputs.map((n) => fingerprints.get(n)) });
    fingerprints.set(stage.name, fp);
    const previous = state.stages[stage.name];
    const decision = decide({
      exists: fs.existsSync(stage.artefact), complete: stage.complete(), previous, fingerprint: fp,
      canResume: stage.resumable && listCheckpoints(stage.artefact).length > 0,
      upstreamRedone: stage.inputs.some((n) => redone.has(n)), overwrite,
    });
    const rel = relative(paths.out, stage.artefact);
    if (decision === 'refuse') {
      throw new UsageError(
        `${stage.artefact} exists but was not made by quickstart with these settings and inputs `
        + `(${previous ? 'settings changed since' : `no record in ${path.join(paths.out, 'quickstart.json')}`}): `
        + 'pass --overwrite to redo it (and what follows), or choose another --out',
      );
    }
    if (decision === 'reuse') {
      log.info(`${label}: reusing ${rel} (complete, same settings; --overwrite redoes it)`);
      done.push({ name: stage.name, title: stage.title, status: 'reused', record: previous! });
      continue;
    }
    done.push(await runStage(stage, decision === 'resume', label, { fp, rel, state, out: paths.out }));
    redone.add(stage.name);
  }

  const seconds = (Date.now() - started) / 1000;
  const rows: TableRow[] = done.map((s) => ({ title: s.title, status: s.status, record: s.record }));
  const table = resultsTable(rows, paths.out, seconds);
  const resultsFile = path.join(paths.out, RESULTS_FILE);
  writeFileAtomic(resultsFile, `# quickstart results\n\n${table}\n`);
  log.info(`quickstart finished in ${formatSeconds(seconds)}; results in ${resultsFile}`);
  return { out: paths.out, seconds, stages: done, table, resultsFile };
}

async function runStage(
  stage: Stage, resume: boolean, label: string, ctx: { fp: string; rel: string; state: QuickstartState; out: string },
): Promise<QuickstartResult['stages'][number]> {
  log.info(`${label}: start${resume ? ` (resuming ${ctx.rel} from its last checkpoint)` : ''}`);
  // Recorded before the work: an interrupted training stage is then known as ours and resumable.
  ctx.state.stages[stage.name] = { fingerprint: ctx.fp, status: 'running', seconds: 0, artefact: ctx.rel, metrics: {}, summary: '', partial: false, notes: [] };
  writeState(ctx.out, ctx.state);
  const t0 = Date.now();
  const r = await stage.run({ resume });
  const record: StageRecord = {
    fingerprint: ctx.fp, status: 'complete', seconds: (Date.now() - t0) / 1000, artefact: ctx.rel,
    metrics: r.metrics, summary: r.summary, partial: r.partial ?? false, notes: r.notes,
  };
  ctx.state.stages[stage.name] = record;
  writeState(ctx.out, ctx.state);
  log.info(`${label}: done in ${formatSeconds(record.seconds)}: ${r.summary}`);
  return { name: stage.name, title: stage.title, status: resume ? 'resumed' : 'ran', record };
}
