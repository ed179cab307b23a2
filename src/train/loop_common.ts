/**
 * Pieces every training loop shares (the extractor's and the explainer's): the trainable
 * parameter list, the gradient step (clip -> AdamW -> dispose), the NaN stop, SIGINT handling,
 * metrics.jsonl + TensorBoard logging, and starting or resuming a run folder. The loops
 * themselves stay flat and readable in their own files (nanoGPT style); only the plumbing is here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../backend/tf';
import { CheckpointError, HoiError } from '../errors';
import { log } from '../logger';
import type { Module } from '../models/nn/module';
import { applyToModel, findLatestCheckpoint, type LoadedCheckpoint, loadCheckpoint, optimizerState } from './checkpoint';
import { clipCoefficient, globalNorm } from './clip';
import type { AdamW } from './optim';
import { TensorBoardWriter } from './tensorboard';

/** The trainable parameters by dotted path, and the tfjs variable name -> path map variableGrads needs. */
export interface TrainableParams {
  params: Map<string, tf.Variable>;
  vars: tf.Variable[];
  nameOf: Map<string, string>;
}

export function trainableParams(model: Module): TrainableParams {
  const params = new Map([...model.namedParameters()].filter(([, v]) => v.trainable));
  return { params, vars: [...params.values()], nameOf: new Map([...params].map(([name, v]) => [v.name, name])) };
}

/**
 * Clips the gradients of `tf.variableGrads` (keyed by tfjs variable name) to `gradClip` (0 = off,
 * the norm is still measured), takes an AdamW step unless the loss or the norm is non-finite, and
 * disposes every gradient. Returns the global gradient norm before clipping.
 */
export function applyGradients(
  optimizer: AdamW, trainable: TrainableParams, rawGrads: tf.NamedTensorMap, loss: number, gradClip: number, lr: number,
): number {
  const grads = new Map<string, tf.Tensor>();
  for (const [varName, g] of Object.entries(rawGrads)) if (g) grads.set(trainable.nameOf.get(varName)!, g);
  const norm = globalNorm([...grads.values()]);
  const scale = gradClip > 0 ? clipCoefficient(norm, gradClip) : 1;
  if (Number.isFinite(loss) && Number.isFinite(norm)) optimizer.step(grads, lr, scale);
  for (const g of grads.values()) g.dispose();
  return norm;
}

/** The NaN stop: a non-finite loss or gradient norm ends the run with the step number. */
export function assertFiniteStep(loss: number, gradNorm: number, step: number, out: string, lrKey = 'train.schedule.lr'): void {
  if (Number.isFinite(loss) && Number.isFinite(gradNorm)) return;
  const what = Number.isFinite(loss) ? `the gradient norm is ${gradNorm}` : `loss is ${loss}`;
  throw new HoiError(`${what} at step ${step}: stopping; the last good checkpoint in ${out} is kept (resume with --resume, perhaps with a lower ${lrKey})`);
}

/**
 * Ctrl-C asks the loop to finish its step, save a checkpoint and stop; a second Ctrl-C exits at
 * once. `dispose()` removes the handler.
 */
export class StopRequest {
  requested = false;
  private readonly onSigint = (): void => {
    if (this.requested) process.exit(130); // a second Ctrl-C does not wait
    this.requested = true;
    log.warn('interrupted: finishing this step, saving a checkpoint, then stopping (Ctrl-C again to quit now)');
  };

  constructor() {
    process.on('SIGINT', this.onSigint);
  }

  dispose(): void {
    process.off('SIGINT', this.onSigint);
  }
}

/** metrics.jsonl (one JSON object a line) and TensorBoard scalars of a run folder. */
export class RunLog {
  readonly metricsFile: string;
  private readonly tb: TensorBoardWriter;

  constructor(out: string) {
    this.metricsFile = path.join(out, 'metrics.jsonl');
    this.tb = new TensorBoardWriter(path.join(out, 'tb'));
  }

  /** A training row (`step`, `lr`, `loss`, ...): every finite number also goes to TensorBoard as `train/<key>`. */
  train(step: number, row: Record<string, number>): void {
    fs.appendFileSync(this.metricsFile, `${JSON.stringify({ step, ...row })}\n`);
    const { time: _time, ...scalars } = row;
    this.tb.scalars(prefixed('train/', scalars), step);
  }

  /** An evaluation row: `{step, split, ...metrics}` and TensorBoard `<split>/<key>`. */
  eval(step: number, split: string, metrics: Record<string, number>): void {
    fs.appendFileSync(this.metricsFile, `${JSON.stringify({ step, split, ...metrics })}\n`);
    this.tb.scalars(prefixed(`${split}/`, metrics), step);
  }

  close(): void {
    this.tb.close();
  }
}

/** Finite values only, keys prefixed (TensorBoard tags). */
export function prefixed(prefix: string, values: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(values)) if (Number.isFinite(v)) out[prefix + k] = v;
  return out;
}

export interface RunStart {
  /** Steps already taken (0 for a fresh run). */
  step: number;
  best: { step: number; value: number } | null;
  /** The checkpoint resumed from, or null. */
  resumedFrom: LoadedCheckpoint | null;
}

/**
 * A fresh run refuses a folder that already holds checkpoints; `resume` loads the last complete
 * checkpoint into the model and optimizer after checking that its model config is the requested
 * one. `prepare` runs on the loaded checkpoint before the weights are applied (e.g. to check
 * the manifest's `run` section).
 */
export function startOrResume(opts: {
  out: string;
  resume: boolean | undefined;
  model: Module;
  modelConfig: unknown;
  optimizer: AdamW;
  prepare?: (ckpt: LoadedCheckpoint) => void;
}): RunStart {
  const existing = fs.existsSync(opts.out) ? findLatestCheckpoint(opts.out) : null;
  if (!opts.resume) {
    if (existing) throw new CheckpointError(`${opts.out} already holds checkpoints (${path.basename(existing)}): pass --resume to continue, or choose another --out`);
    return { step: 0, best: null, resumedFrom: null };
  }
  if (!existing) throw new CheckpointError(`${opts.out}: nothing to resume (no complete step-N checkpoint)`);
  const ckpt = loadCheckpoint(opts.out);
  const requested = JSON.stringify(opts.modelConfig);
  if (JSON.stringify(ckpt.manifest.model_config) !== requested) {
    throw new CheckpointError(`${ckpt.dir}: the checkpoint's model config differs from the requested one:\n  checkpoint ${JSON.stringify(ckpt.manifest.model_config)}\n  requested  ${requested}`);
  }
  opts.prepare?.(ckpt);
  applyToModel(opts.model.stateDict() as Map<string, tf.Variable>, ckpt);
  const state = optimizerState(ckpt);
  try {
    opts.optimizer.loadStateDict(state);
  } finally {
    for (const t of state.values()) t.dispose();
  }
  log.info(`resumed from ${ckpt.dir} at step ${ckpt.step}`);
  return { step: ckpt.step, best: (ckpt.manifest.best as RunStart['best'] | undefined) ?? null, resumedFrom: ckpt };
}

/** Whether `value` beats the best so far (higher is better); NaN never does. */
export function isNewBest(value: number, best: { value: number } | null): boolean {
  return Number.isFinite(value) && (best === null || value > best.value);
}
