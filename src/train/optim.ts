/**
 * AdamW with decoupled weight decay, following PyTorch's `torch.optim.AdamW` (foreach=False):
 *
 *   p  <- p * (1 - lr * wd)                       (skipped for no-decay parameters)
 *   m  <- b1 * m + (1 - b1) * g
 *   v  <- b2 * v + (1 - b2) * g^2
 *   p  <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * which is `p - lr * mhat / (sqrt(vhat) + eps)` with mhat = m / (1 - b1^t), vhat = v / (1 - b2^t).
 * The step count t is kept per parameter (as PyTorch does), so a parameter that receives no
 * gradient in some step keeps its own bias correction.
 *
 * `step(grads, lr, gradScale)` multiplies the gradients by `gradScale` as it reads them (the
 * gradient-clipping coefficient, without materializing scaled copies). The update of one parameter
 * is one kernel call on wasm (`adamwUpdate`, src/backend/kernels/optimizer_step.ts).
 *
 * State lives in tf.Variables updated in place with `assign`: one step allocates nothing that
 * outlives it.
 */
import { adamwUpdate } from '../backend/kernels/optimizer_step';
import { tf } from '../backend/tf';
import { CheckpointError, ShapeError } from '../errors';

export interface AdamWOptions {
  /** Default learning rate; `step(grads, lr)` overrides it per step (schedules). */
  lr: number;
  /** (beta1, beta2); default (0.9, 0.999). */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay; default 0.01 (PyTorch's default). */
  weightDecay?: number;
  /** Parameters for which weight decay is skipped; default `defaultNoDecay`. */
  noDecay?: (name: string) => boolean;
}

/**
 * The default no-decay rule (the GPT-2/minGPT convention: decay only weight matrices and
 * kernels). A dotted parameter name is excluded from weight decay when
 *   - its last segment is `bias` (`fc.bias`, `bias`), or
 *   - any segment contains `norm`, case-insensitively (`norm1.weight`, `ln_norm.gamma`,
 *     `encoder.layernorm.weight`, `bn_norm`, `groupNorm.beta`), or
 *   - any segment is `bn`, `ln` or `ln` followed by digits or `_...`, or `bn` followed by digits
 *     (`layer1.0.bn1.weight`, `h.0.ln_1.weight`, `ln_f.weight`, `decoder.ln2.bias`), or
 *   - any segment starts with `running` (`bn1.running_mean`, `bn1.running_var`: buffers, never
 *     decayed even if registered as parameters), or
 *   - its last segment is `gamma` or `beta` (Keras-style norm scale/shift).
 * Embeddings (`wte.weight`) and positional tables are decayed, as in PyTorch's plain AdamW.
 */
export function defaultNoDecay(name: string): boolean {
  const parts = name.split('.');
  const last = parts[parts.length - 1];
  if (last === 'bias' || last === 'gamma' || last === 'beta') return true;
  for (const p of parts) {
    const lower = p.toLowerCase();
    if (lower.includes('norm')) return true;
    if (/^(bn|ln)\d*$/.test(lower) || /^ln_\w+$/.test(lower)) return true;
    if (lower.startsWith('running')) return true;
  }
  return false;
}

interface ParamState {
  expAvg: tf.Variable;
  expAvgSq: tf.Variable;
  step: number;
}

const SUFFIX_AVG = '.exp_avg';
const SUFFIX_SQ = '.exp_avg_sq';
const SUFFIX_STEP = '.step';
/** Key of the optimizer-wide step count (number of `step()` calls) in the state dict. */
export const ADAMW_STEP_KEY = 'step';

export class AdamW {
  readonly params: Map<string, tf.Variable>;
  readonly lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly noDecay: (name: string) => boolean;
  /** Number of `step()` calls so far (restored by `loadStateDict`). */
  stepCount = 0;
  private readonly state = new Map<string, ParamState>();

  constructor(params: Map<string, tf.Variable>, opts: AdamWOptions) {
    this.params = new Map(params);
    this.lr = opts.lr;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.noDecay = opts.noDecay ?? defaultNoDecay;
    checkHyper('lr', this.lr, 0);
    checkHyper('betas[0]', this.betas[0], 0, 1);
    checkHyper('betas[1]', this.betas[1], 0, 1);
    checkHyper('eps', this.eps, 0);
    checkHyper('weightDecay', this.weightDecay, 0);
    const keys = new Set<string>([ADAMW_STEP_KEY]);
    for (const [name, p] of this.params) {
      if (p.dtype !== 'float32') throw new ShapeError(`AdamW: parameter '${name}' has dtype ${p.dtype}, expected float32`);
      for (const key of [name + SUFFIX_AVG, name + SUFFIX_SQ, name + SUFFIX_STEP]) {
        if (keys.has(key)) throw new ShapeError(`AdamW: parameter name '${name}' makes the state key '${key}' ambiguous`);
        keys.add(key);
      }
      this.state.set(name, { expAvg: zeroVariable(p), expAvgSq: zeroVariable(p), step: 0 });
    }
  }

  /** Whether weight decay applies to `name`. */
  decays(name: string): boolean {
    return this.weightDecay > 0 && !this.noDecay(name);
  }

  /**
   * One update. `grads` maps parameter names to gradients (a missing or null entry skips that
   * parameter, like a PyTorch parameter whose `.grad` is None). The gradients are not disposed.
   * `gradScale` multiplies every gradient (clipping by global norm).
   */
  step(grads: Map<string, tf.Tensor> | tf.NamedTensorMap, lr: number = this.lr, gradScale = 1): void {
    checkHyper('lr', lr, 0);
    checkHyper('gradScale', gradScale, 0);
    const entries: Array<[string, tf.Tensor]> = [];
    const iter = grads instanceof Map ? grads.entries() : Object.entries(grads);
    for (const [name, g] of iter) {
      if (g === null || g === undefined) continue;
      const p = this.params.get(name);
      if (!p) {
        throw new ShapeError(`AdamW.step: gradient for unknown parameter '${name}' (known: ${[...this.params.keys()].slice(0, 8).join(', ')}${this.params.size > 8 ? ', ...' : ''})`);
      }
      if (!sameShape(p.shape, g.shape)) {
        throw new ShapeError(`AdamW.step: gradient of '${name}' has shape [${g.shape}], parameter has [${p.shape}]`);
      }
      entries.push([name, g]);
    }
    const [b1, b2] = this.betas;
    for (const [name, g] of entries) {
      const p = this.params.get(name)!;
      const st = this.state.get(name)!;
      const t = st.step + 1;
      const bc1 = 1 - Math.pow(b1, t);
      const bc2Sqrt = Math.sqrt(1 - Math.pow(b2, t));
      const stepSize = lr / bc1;
      const decay = this.decays(name) ? 1 - lr * this.weightDecay : 1;
      const [next, m, v] = adamwUpdate(p, g, st.expAvg, st.expAvgSq, { beta1: b1, beta2: b2, stepSize, bc2Sqrt, eps: this.eps, decay, gradScale });
      st.expAvg.assign(m);
      st.expAvgSq.assign(v);
      p.assign(next);
      tf.dispose([next, m, v]);
      st.step = t;
    }
    this.stepCount++;
  }

  /**
   * The state as tensors (new tensors, owned by the caller): `<param>.exp_avg`,
   * `<param>.exp_avg_sq`, `<param>.step` (int32 scalar, per-parameter count) and `step` (int32
   * scalar, optimizer-wide count).
   */
  stateDict(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [name, st] of this.state) {
      out.set(name + SUFFIX_AVG, st.expAvg.clone());
      out.set(name + SUFFIX_SQ, st.expAvgSq.clone());
      out.set(name + SUFFIX_STEP, tf.scalar(st.step, 'int32'));
    }
    out.set(ADAMW_STEP_KEY, tf.scalar(this.stepCount, 'int32'));
    return out;
  }

  /**
   * Restores a state written by `stateDict` (values are copied; the caller keeps ownership of
   * `state`). Every key must be present with the right shape; extra keys are an error, so a
   * checkpoint of another model or optimizer is caught here and not silently half-loaded.
   */
  loadStateDict(state: Map<string, tf.Tensor>): void {
    const problems: string[] = [];
    const expected = new Set<string>([ADAMW_STEP_KEY]);
    for (const [name, p] of this.params) {
      for (const key of [name + SUFFIX_AVG, name + SUFFIX_SQ]) {
        expected.add(key);
        const t = state.get(key);
        if (!t) problems.push(`missing '${key}'`);
        else if (!sameShape(t.shape, p.shape)) problems.push(`'${key}' has shape [${t.shape}], parameter has [${p.shape}]`);
        else if (t.dtype !== 'float32') problems.push(`'${key}' has dtype ${t.dtype}, expected float32`);
      }
      const key = name + SUFFIX_STEP;
      expected.add(key);
      const t = state.get(key);
      if (!t) problems.push(`missing '${key}'`);
      else if (t.size !== 1) problems.push(`'${key}' should be a scalar, has shape [${t.shape}]`);
    }
    if (!state.has(ADAMW_STEP_KEY)) problems.push(`missing '${ADAMW_STEP_KEY}'`);
    for (const key of state.keys()) if (!expected.has(key)) problems.push(`unexpected '${key}'`);
    if (problems.length > 0) {
      throw new CheckpointError(`AdamW.loadStateDict: ${problems.length} problem(s): ${problems.slice(0, 20).join('; ')}${problems.length > 20 ? '; ...' : ''}`);
    }
    for (const [name, st] of this.state) {
      st.expAvg.assign(state.get(name + SUFFIX_AVG)!);
      st.expAvgSq.assign(state.get(name + SUFFIX_SQ)!);
      st.step = readInt(state.get(name + SUFFIX_STEP)!);
    }
    this.stepCount = readInt(state.get(ADAMW_STEP_KEY)!);
  }

  /** Frees the moment variables (the parameters belong to the model). */
  dispose(): void {
    for (const st of this.state.values()) {
      st.expAvg.dispose();
      st.expAvgSq.dispose();
    }
    this.state.clear();
  }
}

/**
 * A non-trainable zero variable shaped like `p` (non-trainable, so tf.variableGrads() over all
 * variables skips it). The variable shares the initial tensor's data with a reference count,
 * so the initial tensor is disposed here; otherwise each moment would leak one tensor.
 */
function zeroVariable(p: tf.Variable): tf.Variable {
  const z = tf.zerosLike(p);
  const v = tf.variable(z, false);
  z.dispose();
  return v;
}

function readInt(t: tf.Tensor): number {
  const v = t.dataSync()[0];
  if (!Number.isInteger(v) || v < 0) throw new CheckpointError(`AdamW.loadStateDict: step count ${v} is not a non-negative integer`);
  return v;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkHyper(name: string, value: number, lo: number, hiExclusive?: number): void {
  if (!Number.isFinite(value) || value < lo || (hiExclusive !== undefined && value >= hiExclusive)) {
    const range = hiExclusive === undefined ? `>= ${lo}` : `in [${lo}, ${hiExclusive})`;
    throw new RangeError(`AdamW: ${name} must be a finite number ${range}, got ${value}`);
  }
}
