/**
 * A small ONNX graph builder: declare inputs, add initializers and nodes in topological order,
 * declare outputs, serialize to ModelProto bytes (opset 17, IR version 8, producer
 * 'hoi2anomaly'). Modules emit their part of the graph with `toOnnx(g, ...)`, usually through the
 * op helpers of `g.ops(scope)`, which are named and attributed exactly as the ONNX operator spec
 * names them: `o.Gemm(A, B, C, { transB: 1 })`.
 *
 * Names: values and nodes get unique names derived from the scope (`backbone.conv1/Conv`);
 * initializers keep the names they are given (the dotted parameter paths, which are also the
 * checkpoint keys). Layout is the caller's business: graphs are NCHW, initializers are written in
 * the layout the ONNX op expects (the module converts, e.g. conv HWIO -> OIHW).
 *
 * Attribute types: a plain number is INT when it is an integer, except for the attribute names
 * the spec declares as float (`epsilon`, `alpha`, ...); arrays likewise. Wrap a value with
 * `attr.float(...)`, `attr.ints(...)` etc. to force a type.
 */
import * as os from 'node:os';
import { tf } from '../backend/tf';
import { ExportError } from '../errors';
import { log } from '../logger';
import { checkModel } from './onnx_check';
import {
  AttributeObj,
  AttributeType,
  DataType,
  GraphObj,
  ModelObj,
  NodeObj,
  TensorObj,
  ValueInfoObj,
  encodeModel,
} from './onnx_proto';

export const OPSET_VERSION = 17;
export const IR_VERSION = 8;
export const PRODUCER_NAME = 'hoi2anomaly';

/** Element types we write. */
export type OnnxDType = 'float32' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';
/** A dimension: fixed size, or a symbolic name such as 'batch' (dim_param). */
export type Dim = number | string;

export const DTYPE_TO_ONNX: Readonly<Record<OnnxDType, number>> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  int64: DataType.INT64,
  int32: DataType.INT32,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  bool: DataType.BOOL,
};

/** An attribute value with an explicit ONNX attribute type. */
export type TypedAttr =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'floats'; value: number[] }
  | { kind: 'ints'; value: number[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: TensorObj };

export type AttrValue = number | string | readonly number[] | readonly string[] | TypedAttr;
/** Node attributes; entries whose value is undefined are left out (the spec default applies). */
export type Attrs = Record<string, AttrValue | undefined>;

/** Constructors for explicitly typed attributes. */
export const attr = {
  float: (value: number): TypedAttr => ({ kind: 'float', value }),
  int: (value: number): TypedAttr => ({ kind: 'int', value }),
  string: (value: string): TypedAttr => ({ kind: 'string', value }),
  floats: (value: readonly number[]): TypedAttr => ({ kind: 'floats', value: [...value] }),
  ints: (value: readonly number[]): TypedAttr => ({ kind: 'ints', value: [...value] }),
  strings: (value: readonly string[]): TypedAttr => ({ kind: 'strings', value: [...value] }),
  tensor: (value: TensorObj): TypedAttr => ({ kind: 'tensor', value }),
};

/** Attribute names that the operator spec types as FLOAT / FLOATS, so `1` means 1.0 there. */
const FLOAT_ATTRS = new Set([
  'alpha', 'beta', 'gamma', 'epsilon', 'momentum', 'bias', 'lambd', 'cubic_coeff_a',
  'extrapolation_value', 'spatial_scale', 'value_float', 'mean', 'scale', 'high', 'low', 'seed',
  'min', 'max', 'ratio', 'threshold',
]);
const FLOATS_ATTRS = new Set(['value_floats', 'scales']);

function isTyped(v: AttrValue): v is TypedAttr {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'kind' in v;
}

function assertInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v)) throw new ExportError(`ONNX attribute '${name}': integer expected, got ${v}`);
  return v;
}

/** Converts one attribute to its AttributeProto object. */
export function makeAttribute(name: string, value: AttrValue): AttributeObj {
  const typed: TypedAttr = isTyped(value)
    ? value
    : typeof value === 'string'
      ? { kind: 'string', value }
      : typeof value === 'number'
        ? FLOAT_ATTRS.has(name) || !Number.isInteger(value)
          ? { kind: 'float', value }
          : { kind: 'int', value }
        : value.length > 0 && typeof value[0] === 'string'
          ? { kind: 'strings', value: [...(value as readonly string[])] }
          : FLOATS_ATTRS.has(name) || (value as readonly number[]).some((x) => !Number.isInteger(x))
            ? { kind: 'floats', value: [...(value as readonly number[])] }
            : { kind: 'ints', value: [...(value as readonly number[])] };
  const enc = new TextEncoder();
  switch (typed.kind) {
    case 'float': return { name, type: AttributeType.FLOAT, f: typed.value };
    case 'int': return { name, type: AttributeType.INT, i: assertInt(name, typed.value) };
    case 'string': return { name, type: AttributeType.STRING, s: enc.encode(typed.value) };
    case 'floats': return { name, type: AttributeType.FLOATS, floats: typed.value };
    case 'ints': return { name, type: AttributeType.INTS, ints: typed.value.map((v) => assertInt(name, v)) };
    case 'strings': return { name, type: AttributeType.STRINGS, strings: typed.value.map((s) => enc.encode(s)) };
    case 'tensor': return { name, type: AttributeType.TENSOR, t: typed.value };
  }
}

type ArrayData = Float32Array | Float64Array | Int32Array | BigInt64Array | Int8Array | Uint8Array;

function defaultDtype(data: ArrayData | readonly number[] | readonly bigint[]): OnnxDType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data.length > 0 && typeof data[0] === 'bigint') return 'int64';
  return 'float32';
}

/** Little-endian raw bytes of `data` stored as `dtype`. */
function rawBytes(data: ArrayData | readonly number[] | readonly bigint[], dtype: OnnxDType): Uint8Array {
  if (os.endianness() !== 'LE') throw new ExportError('ONNX raw_data is little-endian; big-endian hosts are not supported');
  const n = data.length;
  let typed: ArrayData;
  switch (dtype) {
    case 'float32': typed = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>, Number); break;
    case 'float64': typed = data instanceof Float64Array ? data : Float64Array.from(data as ArrayLike<number>, Number); break;
    case 'int32': typed = data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>, Number); break;
    case 'int8': typed = data instanceof Int8Array ? data : Int8Array.from(data as ArrayLike<number>, Number); break;
    case 'uint8':
    case 'bool': typed = data instanceof Uint8Array ? data : Uint8Array.from(data as ArrayLike<number>, (v) => Number(v)); break;
    case 'int64': {
      if (data instanceof BigInt64Array) { typed = data; break; }
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new ExportError(`int64 tensor: ${v} is not an integer`);
        out[i] = BigInt(v);
      }
      typed = out;
      break;
    }
  }
  // Copy into a fresh buffer: the typed array may be a view into a larger (wasm) buffer.
  return new Uint8Array(typed.buffer.slice(typed.byteOffset, typed.byteOffset + typed.byteLength));
}

function tensorDtype(t: tf.Tensor): OnnxDType {
  switch (t.dtype) {
    case 'float32': return 'float32';
    case 'int32': return 'int32';
    case 'bool': return 'bool';
    default: throw new ExportError(`ONNX initializer from a tfjs tensor of dtype ${t.dtype} is not supported`);
  }
}

export interface NodeOptions {
  /** Node name (made unique); also the base of the output names. Default: the op type. */
  name?: string;
  /** Output value names, or how many outputs to create. Default: one output. */
  outputs?: string[] | number;
  /** Operator domain; default '' (ai.onnx). */
  domain?: string;
}

interface IoDecl {
  name: string;
  shape: Dim[];
  dtype: OnnxDType;
}

export class OnnxGraph {
  readonly name: string;
  docString = '';
  private readonly inputs: IoDecl[] = [];
  private readonly outputs: IoDecl[] = [];
  private readonly initializers = new Map<string, TensorObj>();
  private readonly nodes: NodeObj[] = [];
  /** Every value name in use (inputs, initializers, node outputs). */
  private readonly values = new Set<string>();
  private readonly nodeNames = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly constCache = new Map<string, string>();
  private readonly metadata = new Map<string, string>();
  private readonly opsetImports = new Map<string, number>([['', OPSET_VERSION]]);

  constructor(name: string) {
    this.name = name;
  }

  /** A name based on `base` that no value (or, with `forNode`, no node) has yet. */
  uniqueName(base: string, forNode = false): string {
    const taken = forNode ? this.nodeNames : this.values;
    if (!taken.has(base)) return base;
    let k = this.counters.get(base) ?? 1;
    while (taken.has(`${base}_${k}`)) k++;
    this.counters.set(base, k + 1);
    return `${base}_${k}`;
  }

  private claim(name: string, what: string): void {
    if (name === '') throw new ExportError(`ONNX ${what}: empty name`);
    if (this.values.has(name)) throw new ExportError(`ONNX ${what} '${name}': the name is already used by another value`);
    this.values.add(name);
  }

  hasValue(name: string): boolean {
    return this.values.has(name);
  }

  hasInitializer(name: string): boolean {
    return this.initializers.has(name);
  }

  /** Declares a graph input; string dims are symbolic ('batch'). Returns the name. */
  input(name: string, shape: Dim[], dtype: OnnxDType = 'float32'): string {
    this.claim(name, 'input');
    this.inputs.push({ name, shape: [...shape], dtype });
    return name;
  }

  /**
   * Declares a graph output. `name` must be a value produced in the graph; with `from`, an
   * Identity node copies value `from` to a new value `name` (to give an output a stable name).
   */
  output(name: string, shape: Dim[], dtype: OnnxDType = 'float32', opts: { from?: string } = {}): string {
    if (opts.from !== undefined) this.node('Identity', [opts.from], {}, { name: `${name}/Identity`, outputs: [name] });
    else if (!this.values.has(name)) throw new ExportError(`ONNX output '${name}': no value of that name in graph '${this.name}'`);
    if (this.outputs.some((o) => o.name === name)) throw new ExportError(`ONNX output '${name}' declared twice`);
    this.outputs.push({ name, shape: [...shape], dtype });
    return name;
  }

  /**
   * Adds an initializer. A tfjs tensor brings its own dims and dtype (read synchronously); typed
   * arrays and number lists need `dims` (default: 1-D). Re-adding a name with the same dims and
   * dtype returns the existing one (tied weights); anything else under a used name is an error.
   */
  initializer(
    name: string,
    data: tf.Tensor | ArrayData | readonly number[] | readonly bigint[],
    dims?: readonly number[],
    dtype?: OnnxDType,
  ): string {
    let shape: number[];
    let values: ArrayData | readonly number[] | readonly bigint[];
    let dt: OnnxDType;
    if (data instanceof tf.Tensor) {
      shape = dims ? [...dims] : [...data.shape];
      dt = dtype ?? tensorDtype(data);
      values = data.dataSync() as ArrayData;
    } else {
      shape = dims ? [...dims] : [data.length];
      dt = dtype ?? defaultDtype(data);
      values = data;
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== values.length) {
      throw new ExportError(`ONNX initializer '${name}': dims [${shape}] hold ${size} values, got ${values.length}`);
    }
    const existing = this.initializers.get(name);
    if (existing) {
      if (existing.data_type === DTYPE_TO_ONNX[dt] && JSON.stringify(existing.dims) === JSON.stringify(shape)) return name;
      throw new ExportError(`ONNX initializer '${name}' added twice with different dims or dtype`);
    }
    this.claim(name, 'initializer');
    this.initializers.set(name, { name, dims: shape, data_type: DTYPE_TO_ONNX[dt], raw_data: rawBytes(values, dt) });
    return name;
  }

  /**
   * A constant value (stored as an initializer named `name`, default `const_N`). Small constants
   * with identical content are shared. `dims` default to 1-D; pass [] for a scalar.
   */
  constant(values: readonly number[] | ArrayData, dtype: OnnxDType = 'float32', dims?: readonly number[], name?: string): string {
    const shape = dims ? [...dims] : [values.length];
    const key = values.length <= 64 && name === undefined ? `${dtype}|${shape.join(',')}|${Array.from(values as ArrayLike<number>).join(',')}` : null;
    if (key !== null) {
      const hit = this.constCache.get(key);
      if (hit !== undefined) return hit;
    }
    const n = name ?? this.uniqueName(`const_${dtype}_${this.constCache.size}`);
    this.initializer(n, values, shape, dtype);
    if (key !== null) this.constCache.set(key, n);
    return n;
  }

  /** Adds a node; returns the name of its (first) output. */
  node(opType: string, inputs: readonly string[], attrs: Attrs = {}, opts: NodeOptions = {}): string {
    return this.nodeMulti(opType, inputs, attrs, opts)[0];
  }

  /** Adds a node; returns the names of all its outputs. */
  nodeMulti(opType: string, inputs: readonly string[], attrs: Attrs = {}, opts: NodeOptions = {}): string[] {
    for (const i of inputs) {
      if (i !== '' && !this.values.has(i)) {
        throw new ExportError(`ONNX node ${opType} (${opts.name ?? 'unnamed'}): input '${i}' is not defined yet in graph '${this.name}'`);
      }
    }
    const nodeName = this.uniqueName(opts.name ?? opType, true);
    this.nodeNames.add(nodeName);
    let outputs: string[];
    if (Array.isArray(opts.outputs)) {
      outputs = opts.outputs;
    } else {
      const count = typeof opts.outputs === 'number' ? opts.outputs : 1;
      outputs = [];
      for (let k = 0; k < count; k++) outputs.push(this.uniqueName(count === 1 ? nodeName : `${nodeName}:${k}`));
    }
    for (const o of outputs) this.claim(o, `output of node '${nodeName}'`);
    const attribute: AttributeObj[] = [];
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) attribute.push(makeAttribute(k, v));
    const node: NodeObj = { name: nodeName, op_type: opType, input: [...inputs], output: outputs, attribute };
    if (opts.domain) {
      node.domain = opts.domain;
      if (!this.opsetImports.has(opts.domain)) this.opsetImports.set(opts.domain, 1);
    }
    this.nodes.push(node);
    return outputs;
  }

  /** Imports another operator-set domain (e.g. 'com.microsoft') at a version. */
  importOpset(domain: string, version: number): void {
    this.opsetImports.set(domain, version);
  }

  /** Adds a `metadata_props` entry (e.g. class names, input size). */
  setMetadata(key: string, value: string): void {
    this.metadata.set(key, value);
  }

  /** Op helpers whose node names start with `scope` ('backbone.conv1' -> 'backbone.conv1/Conv'). */
  ops(scope: string): OnnxOps {
    return new OnnxOps(this, scope);
  }

  get numNodes(): number {
    return this.nodes.length;
  }

  /** The model as a plain ModelProto object (see onnx_proto.ts). */
  toModelObject(): ModelObj {
    const vi = (d: IoDecl): ValueInfoObj => ({
      name: d.name,
      type: {
        tensor_type: {
          elem_type: DTYPE_TO_ONNX[d.dtype],
          shape: { dim: d.shape.map((x) => (typeof x === 'number' ? { dim_value: x } : { dim_param: x })) },
        },
      },
    });
    const graph: GraphObj = {
      name: this.name,
      node: this.nodes,
      initializer: [...this.initializers.values()],
      input: this.inputs.map(vi),
      output: this.outputs.map(vi),
    };
    if (this.docString) graph.doc_string = this.docString;
    return {
      ir_version: IR_VERSION,
      opset_import: [...this.opsetImports].map(([domain, version]) => ({ domain, version })),
      producer_name: PRODUCER_NAME,
      producer_version: packageVersion(),
      graph,
      metadata_props: [...this.metadata].map(([key, value]) => ({ key, value })),
    };
  }

  /**
   * Serializes to ModelProto bytes. Runs the structural checks of onnx_check first (unless
   * `check: false`): errors throw ExportError, warnings go to the log.
   */
  toModelProto(opts: { check?: boolean } = {}): Uint8Array {
    const model = this.toModelObject();
    if (opts.check ?? true) {
      const { errors, warnings } = checkModel(model);
      for (const w of warnings) log.warn(`ONNX graph '${this.name}': ${w}`);
      if (errors.length > 0) {
        throw new ExportError(`ONNX graph '${this.name}' fails ${errors.length} structural check(s):\n  ${errors.slice(0, 20).join('\n  ')}`);
      }
    }
    return encodeModel(model);
  }
}

let cachedVersion: string | null = null;
function packageVersion(): string {
  if (cachedVersion === null) {
    try {
      // dist/src/export -> package root
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cachedVersion = String((require('../../../package.json') as { version?: string }).version ?? '0.0.0');
    } catch {
      cachedVersion = '0.0.0';
    }
  }
  return cachedVersion;
}

/**
 * ONNX operators (opset 17 signatures) as methods, each adding one node under a scope and returning
 * its output name. Inputs and attributes are named as in the operator spec. Ops without a helper:
 * `op(opType, inputs, attrs)`.
 */
export class OnnxOps {
  constructor(readonly g: OnnxGraph, readonly scope: string) {}

  /** Any op, one output. */
  op(opType: string, inputs: readonly string[], attrs: Attrs = {}): string {
    return this.g.node(opType, inputs, attrs, { name: this.scope ? `${this.scope}/${opType}` : opType });
  }

  /** Any op, `n` outputs. */
  opMulti(opType: string, inputs: readonly string[], attrs: Attrs, n: number): string[] {
    return this.g.nodeMulti(opType, inputs, attrs, { name: this.scope ? `${this.scope}/${opType}` : opType, outputs: n });
  }

  /** Optional trailing inputs: drops trailing absent ones, keeps inner ones as ''. */
  private static inputs(...xs: Array<string | undefined>): string[] {
    const out = xs.map((x) => x ?? '');
    while (out.length > 0 && out[out.length - 1] === '') out.pop();
    return out;
  }

  // Elementwise and math
  Add(A: string, B: string): string { return this.op('Add', [A, B]); }
  Sub(A: string, B: string): string { return this.op('Sub', [A, B]); }
  Mul(A: string, B: string): string { return this.op('Mul', [A, B]); }
  Div(A: string, B: string): string { return this.op('Div', [A, B]); }
  Pow(X: string, Y: string): string { return this.op('Pow', [X, Y]); }
  Sqrt(X: string): string { return this.op('Sqrt', [X]); }
  Exp(input: string): string { return this.op('Exp', [input]); }
  Neg(X: string): string { return this.op('Neg', [X]); }
  Tanh(input: string): string { return this.op('Tanh', [input]); }
  Erf(input: string): string { return this.op('Erf', [input]); }
  Relu(X: string): string { return this.op('Relu', [X]); }
  Sigmoid(X: string): string { return this.op('Sigmoid', [X]); }
  Softmax(input: string, attrs: { axis?: number } = {}): string { return this.op('Softmax', [input], attrs); }
  MatMul(A: string, B: string): string { return this.op('MatMul', [A, B]); }
  Gemm(A: string, B: string, C?: string, attrs: { alpha?: number; beta?: number; transA?: number; transB?: number } = {}): string {
    return this.op('Gemm', OnnxOps.inputs(A, B, C), attrs);
  }
  Identity(input: string): string { return this.op('Identity', [input]); }
  Cast(input: string, attrs: { to: number }): string { return this.op('Cast', [input], attrs); }

  // Comparison and logic
  Less(A: string, B: string): string { return this.op('Less', [A, B]); }
  LessOrEqual(A: string, B: string): string { return this.op('LessOrEqual', [A, B]); }
  Equal(A: string, B: string): string { return this.op('Equal', [A, B]); }
  Or(A: string, B: string): string { return this.op('Or', [A, B]); }
  Where(condition: string, X: string, Y: string): string { return this.op('Where', [condition, X, Y]); }

  // Shapes
  Shape(data: string, attrs: { start?: number; end?: number } = {}): string { return this.op('Shape', [data], attrs); }
  Reshape(data: string, shape: string, attrs: { allowzero?: number } = {}): string { return this.op('Reshape', [data, shape], attrs); }
  Transpose(data: string, attrs: { perm: readonly number[] }): string { return this.op('Transpose', [data], attrs); }
  Flatten(input: string, attrs: { axis?: number } = {}): string { return this.op('Flatten', [input], attrs); }
  /** opset 13+: `axes` is an int64 input. */
  Unsqueeze(data: string, axes: string): string { return this.op('Unsqueeze', [data, axes]); }
  Squeeze(data: string, axes?: string): string { return this.op('Squeeze', OnnxOps.inputs(data, axes)); }
  Concat(inputs: readonly string[], attrs: { axis: number }): string { return this.op('Concat', inputs, attrs); }
  /** opset 13+: `split` (sizes) is an int64 input; returns one name per part. */
  Split(input: string, split: string, attrs: { axis?: number }, numOutputs: number): string[] {
    return this.opMulti('Split', [input, split], attrs, numOutputs);
  }
  Slice(data: string, starts: string, ends: string, axes?: string, steps?: string): string {
    return this.op('Slice', OnnxOps.inputs(data, starts, ends, axes, steps));
  }
  Gather(data: string, indices: string, attrs: { axis?: number } = {}): string { return this.op('Gather', [data, indices], attrs); }
  Range(start: string, limit: string, delta: string): string { return this.op('Range', [start, limit, delta]); }
  Expand(input: string, shape: string): string { return this.op('Expand', [input, shape]); }
  /** opset 13-17: `axes` is an attribute of ReduceMean (it becomes an input in opset 18). */
  ReduceMean(data: string, attrs: { axes?: readonly number[]; keepdims?: number } = {}): string {
    return this.op('ReduceMean', [data], attrs);
  }

  // Neural network
  Conv(X: string, W: string, B?: string, attrs: ConvAttrs = {}): string { return this.op('Conv', OnnxOps.inputs(X, W, B), attrs); }
  ConvTranspose(X: string, W: string, B?: string, attrs: ConvTransposeAttrs = {}): string {
    return this.op('ConvTranspose', OnnxOps.inputs(X, W, B), attrs);
  }
  BatchNormalization(X: string, scale: string, B: string, input_mean: string, input_var: string, attrs: { epsilon?: number; momentum?: number } = {}): string {
    return this.op('BatchNormalization', [X, scale, B, input_mean, input_var], attrs);
  }
  LayerNormalization(X: string, Scale: string, B?: string, attrs: { axis?: number; epsilon?: number; stash_type?: number } = {}): string {
    return this.op('LayerNormalization', OnnxOps.inputs(X, Scale, B), attrs);
  }
  MaxPool(X: string, attrs: PoolAttrs & { dilations?: readonly number[]; storage_order?: number }): string { return this.op('MaxPool', [X], attrs); }
  AveragePool(X: string, attrs: PoolAttrs & { count_include_pad?: number }): string { return this.op('AveragePool', [X], attrs); }
  GlobalAveragePool(X: string): string { return this.op('GlobalAveragePool', [X]); }
  Resize(X: string, roi?: string, scales?: string, sizes?: string, attrs: ResizeAttrs = {}): string {
    return this.op('Resize', OnnxOps.inputs(X, roi, scales, sizes), attrs);
  }
}

export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
export type ConvAttrs = {
  auto_pad?: AutoPad;
  dilations?: readonly number[];
  group?: number;
  kernel_shape?: readonly number[];
  pads?: readonly number[];
  strides?: readonly number[];
};
export type ConvTransposeAttrs = ConvAttrs & {
  output_padding?: readonly number[];
  output_shape?: readonly number[];
};
export type PoolAttrs = {
  auto_pad?: AutoPad;
  ceil_mode?: number;
  kernel_shape: readonly number[];
  pads?: readonly number[];
  strides?: readonly number[];
};
export type ResizeAttrs = {
  coordinate_transformation_mode?: 'half_pixel' | 'pytorch_half_pixel' | 'align_corners' | 'asymmetric' | 'tf_crop_and_resize';
  cubic_coeff_a?: number;
  exclude_outside?: number;
  extrapolation_value?: number;
  mode?: 'nearest' | 'linear' | 'cubic';
  nearest_mode?: 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil';
};
