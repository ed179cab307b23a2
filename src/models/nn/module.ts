/**
 * The module system: a tree of modules owning named parameters and buffers.
 *
 * - Parameter names are dotted paths from the root (`backbone.layer1.0.conv1.weight`); they are the
 *   checkpoint keys and the ONNX initializer names.
 * - `forward` is synchronous and meant to run inside `tf.tidy`; it returns new tensors and leaves
 *   no others behind (batch-norm running statistics are replaced by `Variable.assign`).
 * - `toOnnx(g, ...inputs)` emits the same computation into an OnnxGraph and returns the output
 *   value name(s). In-memory tensors are NHWC (tfjs) while ONNX graphs are NCHW: each layer's
 *   `toOnnx` emits NCHW ops and converts its initializers to the ONNX layout (conv HWIO -> OIHW).
 *   Export always has eval semantics (running statistics, no dropout).
 * - Parameter values are seeded: a layer built with the same seed has the same weights.
 */
import { tf } from '../../backend/tf';
import { Rng } from '../../data/rng';
import { CheckpointError, ShapeError } from '../../errors';
import type { OnnxGraph, OnnxOps } from '../../export/onnx_graph';
import { InitFn } from './init';

/** A parameter to be created from an initializer: `{ shape, init: init.normal(0.02), seed }`. */
export interface ParamSpec {
  shape: number[];
  init: InitFn;
  /** The layer's seed; the values come from `new Rng(seed, name)`. */
  seed: number;
}

/** Throws ShapeError with a lazily built message when `cond` is false. */
export function assertShape(cond: boolean, message: () => string): asserts cond {
  if (!cond) throw new ShapeError(message());
}

/** `[2, 3, 4]` -> `[2,3,4]`, for messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

export interface LoadStateDictResult {
  missing: string[];
  unexpected: string[];
}

interface ParamEntry {
  variable: tf.Variable;
}

export abstract class Module {
  /** Train mode (batch statistics, dropout) vs eval mode. Set with train()/eval(). */
  training = true;
  private readonly params = new Map<string, ParamEntry>();
  private readonly buffers = new Map<string, tf.Variable>();
  private readonly children = new Map<string, Module>();
  private parentModule: Module | null = null;
  private localName = '';
  private disposed = false;

  /**
   * Registers a parameter under `name` (no dots). From a tensor, the variable takes its value (the
   * caller keeps ownership of the tensor); from a ParamSpec, the values are drawn seeded.
   */
  registerParameter(name: string, value: tf.Tensor | ParamSpec, opts: { trainable?: boolean } = {}): tf.Variable {
    this.checkNewName(name);
    const variable = this.makeVariable(name, value, opts.trainable ?? true);
    this.params.set(name, { variable });
    return variable;
  }

  /** Removes (without disposing) a parameter registered by this module, e.g. merged LoRA adapters. */
  protected removeParameter(name: string): void {
    if (!this.params.delete(name)) throw new Error(`Module ${this.constructor.name}: no parameter '${name}' to remove`);
  }

  /** Registers a buffer: saved in the state dict, never trained (e.g. batch-norm running stats). */
  registerBuffer(name: string, value: tf.Tensor | ParamSpec): tf.Variable {
    this.checkNewName(name);
    const variable = this.makeVariable(name, value, false);
    this.buffers.set(name, variable);
    return variable;
  }

  /** Registers a child module under `name`; its parameters appear as `name.<param>`. */
  registerModule<M extends Module>(name: string, child: M): M {
    this.checkNewName(name);
    if (child.parentModule !== null) {
      throw new Error(`registerModule('${name}'): the module is already registered as '${child.path()}'`);
    }
    child.parentModule = this;
    child.localName = name;
    this.children.set(name, child);
    return child;
  }

  private checkNewName(name: string): void {
    if (name === '' || name.includes('.')) throw new Error(`Module: invalid name '${name}' (non-empty, no dots)`);
    if (this.params.has(name) || this.buffers.has(name) || this.children.has(name)) {
      throw new Error(`Module ${this.constructor.name}: '${name}' is registered twice`);
    }
  }

  private makeVariable(name: string, value: tf.Tensor | ParamSpec, trainable: boolean): tf.Variable {
    if (value instanceof tf.Tensor) return tf.variable(value, trainable);
    const data = value.init(value.shape, new Rng(value.seed, name));
    return tf.tidy(() => tf.variable(tf.tensor(data, value.shape, 'float32'), trainable));
  }

  /** This module's dotted path from the root ('' for the root). */
  path(): string {
    if (this.parentModule === null) return '';
    const p = this.parentModule.path();
    return p === '' ? this.localName : `${p}.${this.localName}`;
  }

  /** The full dotted name of one of this module's parameters or buffers. */
  paramPath(name: string): string {
    const p = this.path();
    return p === '' ? name : `${p}.${name}`;
  }

  /** Own parameter or buffer by local name (throws if absent). */
  protected own(name: string): tf.Variable {
    const v = this.params.get(name)?.variable ?? this.buffers.get(name);
    if (!v) throw new Error(`${this.constructor.name}: no parameter or buffer '${name}'`);
    return v;
  }

  /** Direct children in registration order. */
  namedChildren(): Map<string, Module> {
    return new Map(this.children);
  }

  /** All modules of the tree (this one as ''), dotted paths relative to this module. */
  namedModules(prefix = ''): Map<string, Module> {
    const out = new Map<string, Module>([[prefix, this]]);
    for (const [n, c] of this.children) {
      for (const [k, m] of c.namedModules(prefix === '' ? n : `${prefix}.${n}`)) out.set(k, m);
    }
    return out;
  }

  /** All parameters (trainable or not), dotted paths relative to this module, registration order. */
  namedParameters(prefix = ''): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [n, e] of m.params) out.set(path === '' ? n : `${path}.${n}`, e.variable);
    }
    return out;
  }

  /** All buffers, dotted paths relative to this module. */
  namedBuffers(prefix = ''): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [n, v] of m.buffers) out.set(path === '' ? n : `${path}.${n}`, v);
    }
    return out;
  }

  /**
   * Parameters and buffers by dotted path: what a checkpoint saves. The tensors are the live
   * variables (read them; do not dispose them).
   */
  stateDict(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>(this.namedParameters());
    for (const [k, v] of this.namedBuffers()) out.set(k, v);
    return out;
  }

  /**
   * Copies values into parameters and buffers. Keys missing from `state` or not in the module are
   * errors when `strict` (default), returned otherwise; a shape mismatch is always an error. Checks
   * everything before assigning anything. The caller keeps ownership of the given tensors.
   */
  loadStateDict(state: Map<string, tf.Tensor> | Record<string, tf.Tensor>, opts: { strict?: boolean } = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const given = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !given.has(k));
    const unexpected = [...given.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [k, v] of own) {
      const t = given.get(k);
      if (t && (t.rank !== v.rank || t.shape.some((d, i) => d !== v.shape[i]))) {
        mismatched.push(`${k}: expected ${fmtShape(v.shape)}, found ${fmtShape(t.shape)}`);
      }
    }
    if (mismatched.length > 0 || (strict && (missing.length > 0 || unexpected.length > 0))) {
      const parts: string[] = [];
      const list = (xs: string[]): string => xs.slice(0, 20).join(', ') + (xs.length > 20 ? `, ... (${xs.length} in all)` : '');
      if (missing.length > 0 && strict) parts.push(`missing keys (${missing.length}): ${list(missing)}`);
      if (unexpected.length > 0 && strict) parts.push(`unexpected keys (${unexpected.length}): ${list(unexpected)}`);
      if (mismatched.length > 0) parts.push(`shape mismatches (${mismatched.length}): ${list(mismatched)}`);
      throw new CheckpointError(`loadStateDict(${this.constructor.name}): ${parts.join('; ')}`);
    }
    for (const [k, v] of own) {
      const t = given.get(k);
      if (!t) continue;
      const variable = v as tf.Variable;
      // Same data already (e.g. m.loadStateDict(m.stateDict())): nothing to copy.
      if (t.dataId === variable.dataId) continue;
      if (t.dtype === variable.dtype) variable.assign(t);
      else tf.tidy(() => variable.assign(t.cast(variable.dtype)));
    }
    return { missing, unexpected };
  }

  /** Trainable parameters, in namedParameters order (for optimizers and tf.variableGrads). */
  trainableVariables(): tf.Variable[] {
    return [...this.namedParameters().values()].filter((v) => v.trainable);
  }

  /** Freezes (false) or unfreezes (true) every parameter of this subtree. */
  setTrainable(trainable: boolean): this {
    for (const v of this.namedParameters().values()) v.trainable = trainable;
    return this;
  }

  /** Number of parameter values (buffers excluded). */
  numParameters(): number {
    let n = 0;
    for (const v of this.namedParameters().values()) n += v.size;
    return n;
  }

  /** Sets train (true) or eval (false) mode on the whole subtree. */
  train(mode = true): this {
    for (const m of this.namedModules().values()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Disposes every variable of the subtree. The module is unusable afterwards. */
  dispose(): void {
    for (const m of this.namedModules().values()) {
      if (m.disposed) continue;
      for (const e of m.params.values()) e.variable.dispose();
      for (const v of m.buffers.values()) v.dispose();
      m.disposed = true;
    }
  }

  /** Node-name scope for ONNX: the dotted path, or the class name for a root module. */
  protected onnxScope(): string {
    return this.path() || this.constructor.name;
  }

  /** Op helpers scoped to this module. */
  protected onnxOps(g: OnnxGraph): OnnxOps {
    return g.ops(this.onnxScope());
  }

  /**
   * Adds parameter/buffer `name` as an initializer named by its dotted path, optionally converted
   * to the ONNX layout by `convert` (run in a tidy). Adding it again (tied weights) reuses it.
   */
  protected onnxParam(g: OnnxGraph, name: string, convert?: (t: tf.Tensor) => tf.Tensor): string {
    const full = this.paramPath(name);
    if (g.hasInitializer(full)) return full;
    const v = this.own(name);
    if (!convert) return g.initializer(full, v);
    const t = tf.tidy(() => convert(v));
    try {
      return g.initializer(full, t);
    } finally {
      t.dispose();
    }
  }

  /** The computation; synchronous, for use inside tf.tidy. */
  abstract forward(...inputs: unknown[]): unknown;

  /** Emits the computation (NCHW for images) into `g`; returns the output value name(s). */
  abstract toOnnx(g: OnnxGraph, ...inputs: unknown[]): string | string[];
}

/** Modules taking one tensor and returning one (what Sequential chains). */
export interface UnaryModule extends Module {
  forward(x: tf.Tensor): tf.Tensor;
  toOnnx(g: OnnxGraph, x: string): string;
}

/** Children named '0', '1', ... applied in order (as torch.nn.Sequential). */
export class Sequential extends Module {
  readonly layers: UnaryModule[];

  constructor(layers: UnaryModule[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }

  forward(x: tf.Tensor): tf.Tensor {
    let y = x;
    for (const m of this.layers) y = m.forward(y);
    return y;
  }

  toOnnx(g: OnnxGraph, x: string): string {
    let y = x;
    for (const m of this.layers) y = m.toOnnx(g, y);
    return y;
  }
}
