/**
 * Training checkpoints. Layout of a run folder:
 *
 *   runDir/
 *     step-500/  manifest.json  model.safetensors  optimizer.safetensors
 *     step-1000/ ...
 *     last       "step-1000\n"   pointer to the newest saved checkpoint
 *     best       "step-500\n"    pointer set by markBest()
 *
 * `best` is a pointer file, not a copy: no second copy of the weights on disk, and pruning
 * (`keepLast`) never removes the folders `best` or `last` point to. A checkpoint is written into
 * a hidden staging folder (`.step-N.tmp-XXXXXX`) and renamed to `step-N` only when complete, and
 * pointer files are replaced atomically, so a crash never leaves a half-written `step-N` nor a
 * pointer to one. Loading skips staging folders and incomplete ones.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../backend/tf';
import { CheckpointError } from '../errors';
import { commitStagingDir, makeStagingDir, writeFileAtomic } from '../fs_atomic';
import { log } from '../logger';
import { LoadedTensor, readSafetensors, toTensorMap, writeSafetensors } from './safetensors';

/** Bumped when the layout or the meaning of a key changes; loading checks it. */
export const CHECKPOINT_FORMAT_VERSION = 1;

export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const MANIFEST_FILE = 'manifest.json';
const STEP_DIR = /^step-(\d+)$/;

/** What the caller puts in a manifest; extra keys (data-loader state, seed, ...) are kept. */
export interface ManifestInput {
  model_name: string;
  model_config: unknown;
  /** tfjs backend the run used; default `tf.getBackend()`. */
  backend?: string;
  metrics?: Record<string, number>;
  [key: string]: unknown;
}

export interface CheckpointManifest {
  format_version: number;
  model_name: string;
  model_config: unknown;
  step: number;
  backend: string;
  metrics: Record<string, number>;
  /** ISO 8601 time of writing. */
  created: string;
  [key: string]: unknown;
}

export interface CheckpointParts {
  model: Map<string, tf.Tensor>;
  optimizer: Map<string, tf.Tensor>;
  manifest: ManifestInput;
}

export interface SaveOptions {
  /** Keep only this many newest step folders (plus `best`); 0 or undefined keeps all. */
  keepLast?: number;
}

export interface LoadedCheckpoint {
  dir: string;
  step: number;
  manifest: CheckpointManifest;
  model: Map<string, LoadedTensor>;
  /** Empty when loaded with `withOptimizer: false`. */
  optimizer: Map<string, LoadedTensor>;
}

export interface LoadOptions {
  /** For a run folder: which pointer to resolve (default 'last'). */
  which?: 'last' | 'best';
  /** Fail unless the manifest's model_name is this. */
  modelName?: string;
  /** Read optimizer.safetensors too (default true; false for inference and export). */
  withOptimizer?: boolean;
}

export function stepDirName(step: number): string {
  return `step-${step}`;
}

/**
 * Writes `runDir/step-<step>/` (replacing an existing folder of that step) and points `last`
 * at it; then prunes old folders when `keepLast` is set. Returns the checkpoint folder.
 */
export function saveCheckpoint(runDir: string, step: number, parts: CheckpointParts, opts: SaveOptions = {}): string {
  if (!Number.isSafeInteger(step) || step < 0) throw new CheckpointError(`saveCheckpoint: step must be an integer >= 0, got ${step}`);
  const { model_name, model_config, backend, metrics, ...extra } = parts.manifest;
  if (typeof model_name !== 'string' || model_name === '') throw new CheckpointError('saveCheckpoint: manifest.model_name must be a non-empty string');
  const manifest: CheckpointManifest = {
    format_version: CHECKPOINT_FORMAT_VERSION,
    model_name,
    model_config,
    step,
    backend: backend ?? tf.getBackend(),
    metrics: metrics ?? {},
    created: new Date().toISOString(),
    ...extra,
  };
  fs.mkdirSync(runDir, { recursive: true });
  const finalDir = path.join(runDir, stepDirName(step));
  const staging = makeStagingDir(finalDir);
  try {
    const meta = { format: 'hoi2anomaly', model_name, step: String(step) };
    writeSafetensors(path.join(staging, MODEL_FILE), parts.model, meta);
    writeSafetensors(path.join(staging, OPTIMIZER_FILE), parts.optimizer, meta);
    // The manifest goes last: a folder with a manifest has everything else.
    writeFileAtomic(path.join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    // Flush file data before the rename publishes the folder, so that a power loss cannot leave
    // a renamed folder with empty files.
    for (const f of [MODEL_FILE, OPTIMIZER_FILE, MANIFEST_FILE]) fsyncPath(path.join(staging, f));
    commitStagingDir(staging, finalDir, true);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError(`could not write checkpoint ${finalDir}: ${(err as Error).message}`, { cause: err });
  }
  writePointer(runDir, 'last', step);
  if (opts.keepLast) pruneCheckpoints(runDir, opts.keepLast);
  return finalDir;
}

/** Points `runDir/best` at `step-<step>`, which must be a complete checkpoint. */
export function markBest(runDir: string, step: number): void {
  const dir = path.join(runDir, stepDirName(step));
  if (!isCompleteCheckpoint(dir)) throw new CheckpointError(`markBest: ${dir} is not a complete checkpoint`);
  writePointer(runDir, 'best', step);
}

/**
 * Removes complete step folders beyond the `keepLast` newest ones, except those `best` and
 * `last` point to. Staging and incomplete folders are left alone. Returns the removed folders.
 */
export function pruneCheckpoints(runDir: string, keepLast: number): string[] {
  if (!Number.isInteger(keepLast) || keepLast < 1) throw new CheckpointError(`pruneCheckpoints: keepLast must be an integer >= 1, got ${keepLast}`);
  const all = listCheckpoints(runDir);
  const protect = new Set<string>();
  for (const which of ['best', 'last'] as const) {
    const target = readPointer(runDir, which);
    if (target) protect.add(path.resolve(target));
  }
  const removed: string[] = [];
  for (const c of all.slice(0, Math.max(0, all.length - keepLast))) {
    if (protect.has(path.resolve(c.dir))) continue;
    fs.rmSync(c.dir, { recursive: true, force: true });
    removed.push(c.dir);
  }
  return removed;
}

/** Complete `step-N` folders of a run, oldest first. */
export function listCheckpoints(runDir: string): Array<{ step: number; dir: string }> {
  if (!fs.existsSync(runDir)) return [];
  const out: Array<{ step: number; dir: string }> = [];
  for (const ent of fs.readdirSync(runDir, { withFileTypes: true })) {
    const m = STEP_DIR.exec(ent.name);
    if (!m || !ent.isDirectory()) continue;
    const dir = path.join(runDir, ent.name);
    if (isCompleteCheckpoint(dir)) out.push({ step: Number(m[1]), dir });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** The complete checkpoint with the highest step, or null. */
export function findLatestCheckpoint(runDir: string): string | null {
  const all = listCheckpoints(runDir);
  return all.length > 0 ? all[all.length - 1].dir : null;
}

/** Whether `dir` holds the three files and a manifest that parses with a format version. */
export function isCompleteCheckpoint(dir: string): boolean {
  for (const f of [MANIFEST_FILE, MODEL_FILE, OPTIMIZER_FILE]) if (!fs.existsSync(path.join(dir, f))) return false;
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as { format_version?: unknown };
    return typeof m.format_version === 'number';
  } catch {
    return false;
  }
}

/**
 * Loads a checkpoint from a `step-N` folder, or from a run folder by resolving `last` (default;
 * falls back to the newest complete folder when the pointer is missing or stale) or `best`.
 */
export function loadCheckpoint(dirOrRunDir: string, opts: LoadOptions = {}): LoadedCheckpoint {
  if (!fs.existsSync(dirOrRunDir)) throw new CheckpointError(`checkpoint not found: ${dirOrRunDir}`);
  const dir = resolveCheckpointDir(dirOrRunDir, opts.which ?? 'last');
  const manifest = readManifest(dir);
  if (opts.modelName !== undefined && manifest.model_name !== opts.modelName) {
    throw new CheckpointError(`${dir}: checkpoint of model '${manifest.model_name}', expected '${opts.modelName}'`);
  }
  for (const f of [MODEL_FILE, ...(opts.withOptimizer === false ? [] : [OPTIMIZER_FILE])]) {
    if (!fs.existsSync(path.join(dir, f))) throw new CheckpointError(`${dir}: incomplete checkpoint, ${f} is missing`);
  }
  const model = readSafetensors(path.join(dir, MODEL_FILE)).tensors;
  const optimizer = opts.withOptimizer === false ? new Map<string, LoadedTensor>() : readSafetensors(path.join(dir, OPTIMIZER_FILE)).tensors;
  return { dir, step: manifest.step, manifest, model, optimizer };
}

/** The optimizer state of a loaded checkpoint as tf.Tensors (the caller disposes them). */
export function optimizerState(ckpt: LoadedCheckpoint): Map<string, tf.Tensor> {
  return toTensorMap(ckpt.optimizer);
}

function resolveCheckpointDir(p: string, which: 'last' | 'best'): string {
  if (STEP_DIR.test(path.basename(path.resolve(p))) || fs.existsSync(path.join(p, MODEL_FILE))) {
    if (!isCompleteCheckpoint(p)) throw new CheckpointError(`${p}: incomplete checkpoint (needs ${MANIFEST_FILE}, ${MODEL_FILE}, ${OPTIMIZER_FILE})`);
    return p;
  }
  const target = readPointer(p, which);
  if (target && isCompleteCheckpoint(target)) return target;
  if (which === 'best') {
    throw new CheckpointError(target ? `${p}: 'best' points to ${target}, which is not a complete checkpoint` : `${p}: no 'best' checkpoint has been marked`);
  }
  const latest = findLatestCheckpoint(p);
  if (!latest) throw new CheckpointError(`${p}: no complete checkpoint (no step-N folder with ${MANIFEST_FILE}, ${MODEL_FILE}, ${OPTIMIZER_FILE})`);
  if (target) log.warn(`${p}: 'last' points to ${target}, which is not a complete checkpoint; using ${latest}`);
  return latest;
}

function readManifest(dir: string): CheckpointManifest {
  const file = path.join(dir, MANIFEST_FILE);
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new CheckpointError(`${file}: cannot read the manifest: ${(err as Error).message}`, { cause: err });
  }
  if (m.format_version !== CHECKPOINT_FORMAT_VERSION) {
    throw new CheckpointError(`${file}: format_version ${JSON.stringify(m.format_version)}, this build reads format_version ${CHECKPOINT_FORMAT_VERSION}`);
  }
  if (typeof m.model_name !== 'string') throw new CheckpointError(`${file}: 'model_name' must be a string, found ${JSON.stringify(m.model_name)}`);
  if (!Number.isSafeInteger(m.step)) throw new CheckpointError(`${file}: 'step' must be an integer, found ${JSON.stringify(m.step)}`);
  const folder = STEP_DIR.exec(path.basename(path.resolve(dir)));
  if (folder && Number(folder[1]) !== m.step) {
    throw new CheckpointError(`${file}: manifest step ${String(m.step)} does not match the folder name ${path.basename(dir)}`);
  }
  return m as CheckpointManifest;
}

/**
 * Copies checkpoint weights into the model's variables. Every name must match and every shape
 * and dtype must agree; otherwise one CheckpointError lists all differences. With
 * `strict: false`, missing and unexpected keys are allowed (fine-tuning from a model with other
 * heads) and returned; shape and dtype mismatches are still errors.
 */
export function applyToModel(
  params: Map<string, tf.Variable>,
  checkpoint: LoadedCheckpoint | Map<string, LoadedTensor>,
  opts: { strict?: boolean } = {},
): { missing: string[]; unexpected: string[] } {
  const weights = checkpoint instanceof Map ? checkpoint : checkpoint.model;
  const source = checkpoint instanceof Map ? 'checkpoint' : `checkpoint ${checkpoint.dir}`;
  const strict = opts.strict ?? true;
  const missing = [...params.keys()].filter((k) => !weights.has(k));
  const unexpected = [...weights.keys()].filter((k) => !params.has(k));
  const mismatched: string[] = [];
  for (const [name, v] of params) {
    const w = weights.get(name);
    if (!w) continue;
    if (w.shape.length !== v.shape.length || w.shape.some((d, i) => d !== v.shape[i])) {
      mismatched.push(`${name}: checkpoint [${w.shape}] vs model [${v.shape}]`);
    } else if (w.dtype !== v.dtype) {
      mismatched.push(`${name}: checkpoint ${w.dtype} vs model ${v.dtype}`);
    }
  }
  const problems: string[] = [];
  if (strict && missing.length > 0) problems.push(`missing keys (${missing.length}): ${listSome(missing)}`);
  if (strict && unexpected.length > 0) problems.push(`unexpected keys (${unexpected.length}): ${listSome(unexpected)}`);
  if (mismatched.length > 0) problems.push(`shape/dtype mismatch (${mismatched.length}): ${listSome(mismatched)}`);
  if (problems.length > 0) throw new CheckpointError(`${source} does not fit the model:\n  ${problems.join('\n  ')}`);
  for (const [name, v] of params) {
    const w = weights.get(name);
    if (w) tf.tidy(() => v.assign(tf.tensor(w.data, w.shape, w.dtype)));
  }
  return { missing, unexpected };
}

function listSome(items: string[], max = 20): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')}, ... (${items.length - max} more)`;
}

function writePointer(runDir: string, which: 'last' | 'best', step: number): void {
  writeFileAtomic(path.join(runDir, which), `${stepDirName(step)}\n`);
}

/** The folder a pointer file names, or null when there is no pointer. */
export function readPointer(runDir: string, which: 'last' | 'best'): string | null {
  const file = path.join(runDir, which);
  if (!fs.existsSync(file)) return null;
  const name = fs.readFileSync(file, 'utf8').trim();
  if (!STEP_DIR.test(name)) throw new CheckpointError(`${file}: expected a folder name like 'step-100', found ${JSON.stringify(name.slice(0, 40))}`);
  return path.join(runDir, name);
}

function fsyncPath(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
