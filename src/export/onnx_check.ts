/**
 * Structural checks of an ONNX model, after the ONNX IR spec (docs/IR.md) and onnx.checker:
 *
 * - ir_version set; an opset import for the default domain; one for every node domain used;
 * - graph named; graph inputs and outputs typed (tensor elem_type set) and shaped (every dim a
 *   value >= 0 or a symbolic name);
 * - initializers uniquely named, of a known data type, their data size matching their dims;
 * - nodes in topological order: every non-empty input is a graph input, an initializer or the
 *   output of an earlier node; every output name assigned once (SSA);
 * - attributes named, typed, the field of their type present;
 * - operators of the default domain known to opset <= the imported version (a typo or an op from a
 *   later opset, such as Gelu (20) under opset 17, is an error);
 * - graph outputs produced somewhere.
 * Warnings: initializers no node uses, graph inputs no node uses, duplicate node names.
 *
 * It reads the plain model object (see onnx_proto.ts), so it checks graphs being built and files
 * read back from disk alike. It does not infer shapes; onnxruntime does that when it loads a model.
 */
import { ExportError } from '../errors';
import { AttributeObj, AttributeType, DATA_TYPE_BYTES, DataType, GraphObj, ModelObj, ValueInfoObj, decodeModel } from './onnx_proto';

export interface CheckResult {
  errors: string[];
  warnings: string[];
}

/** ai.onnx operators and the opset that introduced them when later than 13 (others: <= 13). */
const OPS_SINCE: Readonly<Record<string, number>> = (() => {
  const base = `Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
    BitShift Cast Ceil Celu Clip Compress Concat ConcatFromSequence Constant ConstantOfShape Conv
    ConvInteger ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Det Div Dropout
    DynamicQuantizeLinear Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor GRU Gather
    GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
    HardSigmoid Hardmax Identity If InstanceNormalization IsInf IsNaN LRN LSTM LeakyRelu Less
    LessOrEqual Log LogSoftmax Loop LpNormalization LpPool MatMul MatMulInteger Max MaxPool MaxRoiPool
    MaxUnpool Mean MeanVarianceNormalization Min Mod Mul Multinomial Neg NegativeLogLikelihoodLoss
    NonMaxSuppression NonZero Not OneHot Or PRelu Pad Pow QLinearConv QLinearMatMul QuantizeLinear RNN
    RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2
    ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare
    Relu Reshape Resize ReverseSequence RoiAlign Round Scan Scatter ScatterElements ScatterND Selu
    SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength Shape Shrink
    Sigmoid Sign Sin Sinh Size Slice Softmax SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth
    Split SplitToSequence Sqrt Squeeze StringNormalizer Sub Sum Tan Tanh TfIdfVectorizer
    ThresholdedRelu Tile TopK Transpose Unique Unsqueeze Upsample Where Xor`;
  const later: Record<string, number> = {
    Trilu: 14, HardSwish: 14, Bernoulli: 15, CastLike: 15, Optional: 15, OptionalGetElement: 15,
    OptionalHasElement: 15, GridSample: 16, LayerNormalization: 17, SequenceMap: 17, DFT: 17, STFT: 17,
    BlackmanWindow: 17, HammingWindow: 17, HannWindow: 17, MelWeightMatrix: 17, BitwiseAnd: 18,
    BitwiseOr: 18, BitwiseXor: 18, BitwiseNot: 18, CenterCropPad: 18, Col2Im: 18, GroupNormalization: 18,
    Mish: 18, DeformConv: 19, AffineGrid: 20, Gelu: 20, ImageDecoder: 20, IsInfinity: 20, RegexFullMatch: 20,
    StringConcat: 20, StringSplit: 20,
  };
  const out: Record<string, number> = {};
  for (const op of base.split(/\s+/).filter(Boolean)) out[op] = 1;
  return { ...out, ...later };
})();

const ATTR_FIELD: Readonly<Record<number, keyof AttributeObj>> = {
  [AttributeType.FLOAT]: 'f',
  [AttributeType.INT]: 'i',
  [AttributeType.STRING]: 's',
  [AttributeType.TENSOR]: 't',
  [AttributeType.GRAPH]: 'g',
  [AttributeType.FLOATS]: 'floats',
  [AttributeType.INTS]: 'ints',
  [AttributeType.STRINGS]: 'strings',
  [AttributeType.TENSORS]: 'tensors',
  [AttributeType.GRAPHS]: 'graphs',
};

const VALID_DATA_TYPES = new Set<number>(Object.values(DataType).filter((v) => v !== DataType.UNDEFINED));

function checkValueInfo(v: ValueInfoObj, where: string, errors: string[]): void {
  const tt = v.type?.tensor_type;
  if (!tt) {
    errors.push(`${where} '${v.name}': no tensor type`);
    return;
  }
  if (!tt.elem_type || !VALID_DATA_TYPES.has(tt.elem_type)) errors.push(`${where} '${v.name}': elem_type ${tt.elem_type ?? 'unset'} is not a valid data type`);
  if (!tt.shape) {
    errors.push(`${where} '${v.name}': no shape`);
    return;
  }
  (tt.shape.dim ?? []).forEach((d, k) => {
    const hasValue = d.dim_value !== undefined && d.dim_value !== null;
    const hasParam = typeof d.dim_param === 'string' && d.dim_param !== '';
    if (hasValue && (d.dim_value as number) < 0) errors.push(`${where} '${v.name}': dim ${k} is negative (${d.dim_value})`);
    if (!hasValue && !hasParam) errors.push(`${where} '${v.name}': dim ${k} has neither dim_value nor dim_param`);
  });
}

/** Checks one graph (the main graph; subgraphs are not walked). */
function checkGraph(graph: GraphObj, defaultOpset: number, domains: Set<string>, errors: string[], warnings: string[]): void {
  if (!graph.name) errors.push('graph: name is empty');
  const defined = new Set<string>();
  const inputs = graph.input ?? [];
  const initializers = graph.initializer ?? [];

  for (const v of inputs) {
    if (!v.name) { errors.push('graph input with an empty name'); continue; }
    if (defined.has(v.name)) errors.push(`graph input '${v.name}' declared twice`);
    defined.add(v.name);
    checkValueInfo(v, 'graph input', errors);
  }
  const initNames = new Set<string>();
  for (const t of initializers) {
    if (!t.name) { errors.push('initializer with an empty name'); continue; }
    if (initNames.has(t.name)) errors.push(`initializer '${t.name}' defined twice`);
    initNames.add(t.name);
    defined.add(t.name); // an initializer may share its name with a graph input (its default)
    if (!t.data_type || !VALID_DATA_TYPES.has(t.data_type)) {
      errors.push(`initializer '${t.name}': data_type ${t.data_type ?? 'unset'} is not valid`);
      continue;
    }
    const dims = t.dims ?? [];
    if (dims.some((d) => d < 0)) errors.push(`initializer '${t.name}': negative dim in [${dims}]`);
    const size = dims.reduce((a, b) => a * b, 1);
    const raw = t.raw_data;
    if (raw && raw.length > 0) {
      const bytes = DATA_TYPE_BYTES[t.data_type];
      if (bytes !== undefined && raw.length !== size * bytes) {
        errors.push(`initializer '${t.name}': raw_data holds ${raw.length} bytes, dims [${dims}] of type ${t.data_type} need ${size * bytes}`);
      }
    } else if (t.data_location !== 1) {
      const n = (t.float_data?.length ?? 0) + (t.int32_data?.length ?? 0) + (t.int64_data?.length ?? 0) + (t.double_data?.length ?? 0);
      if (n !== size) errors.push(`initializer '${t.name}': holds ${n} values, dims [${dims}] need ${size}`);
    }
  }

  const used = new Set<string>();
  const nodeNames = new Set<string>();
  (graph.node ?? []).forEach((node, idx) => {
    const label = `node ${idx} (${node.op_type ?? '?'}${node.name ? ` '${node.name}'` : ''})`;
    if (!node.op_type) errors.push(`${label}: op_type is empty`);
    const domain = node.domain ?? '';
    if (domain === '' || domain === 'ai.onnx') {
      const since = node.op_type ? OPS_SINCE[node.op_type] : undefined;
      if (node.op_type && since === undefined) errors.push(`${label}: '${node.op_type}' is not an operator of the default ONNX domain`);
      else if (since !== undefined && since > defaultOpset) errors.push(`${label}: '${node.op_type}' needs opset ${since}, the model imports opset ${defaultOpset}`);
    } else if (!domains.has(domain)) {
      errors.push(`${label}: domain '${domain}' has no opset_import`);
    }
    if (node.name) {
      if (nodeNames.has(node.name)) warnings.push(`node name '${node.name}' is used more than once`);
      nodeNames.add(node.name);
    }
    for (const input of node.input ?? []) {
      if (input === '') continue; // an absent optional input
      if (!defined.has(input)) errors.push(`${label}: input '${input}' is not a graph input, an initializer or an earlier node's output`);
      used.add(input);
    }
    for (const output of node.output ?? []) {
      if (output === '') continue; // an absent optional output
      if (defined.has(output)) errors.push(`${label}: output '${output}' is already defined (values are assigned once)`);
      defined.add(output);
    }
    const attrNames = new Set<string>();
    for (const a of node.attribute ?? []) {
      if (!a.name) { errors.push(`${label}: attribute with an empty name`); continue; }
      if (attrNames.has(a.name)) errors.push(`${label}: attribute '${a.name}' given twice`);
      attrNames.add(a.name);
      const field = a.type !== undefined ? ATTR_FIELD[a.type] : undefined;
      if (field === undefined) { errors.push(`${label}: attribute '${a.name}' has type ${a.type ?? 'unset'}`); continue; }
      const value = a[field];
      // Repeated fields decode as arrays (possibly empty: an empty list is a valid value).
      if (value === undefined || value === null) errors.push(`${label}: attribute '${a.name}' of type ${a.type} has no '${String(field)}' value`);
    }
  });

  const outputNames = new Set<string>();
  for (const v of graph.output ?? []) {
    if (!v.name) { errors.push('graph output with an empty name'); continue; }
    if (outputNames.has(v.name)) errors.push(`graph output '${v.name}' declared twice`);
    outputNames.add(v.name);
    if (!defined.has(v.name)) errors.push(`graph output '${v.name}' is not produced by any node, input or initializer`);
    checkValueInfo(v, 'graph output', errors);
  }
  if ((graph.output ?? []).length === 0) errors.push('graph has no outputs');

  for (const name of initNames) {
    if (!used.has(name) && !outputNames.has(name)) warnings.push(`initializer '${name}' is not used by any node`);
  }
  for (const v of inputs) {
    if (v.name && !used.has(v.name) && !outputNames.has(v.name) && !initNames.has(v.name)) warnings.push(`graph input '${v.name}' is not used by any node`);
  }
}

/** Runs the structural checks on a model object or on serialized ModelProto bytes. */
export function checkModel(model: ModelObj | Uint8Array): CheckResult {
  const m = model instanceof Uint8Array ? decodeModel(model) : model;
  const errors: string[] = [];
  const warnings: string[] = [];
  if (!m.ir_version || m.ir_version < 3) errors.push(`ir_version ${m.ir_version ?? 'unset'}: at least 3 needed for opset imports`);
  let defaultOpset = 0;
  const domains = new Set<string>();
  for (const o of m.opset_import ?? []) {
    const d = o.domain ?? '';
    if (domains.has(d)) errors.push(`opset_import for domain '${d}' given twice`);
    domains.add(d);
    if (!o.version || o.version < 1) errors.push(`opset_import for domain '${d}': version ${o.version ?? 'unset'}`);
    if (d === '' || d === 'ai.onnx') defaultOpset = o.version ?? 0;
  }
  if (defaultOpset === 0) errors.push('no opset_import for the default ONNX domain');
  if (!m.graph) {
    errors.push('model has no graph');
    return { errors, warnings };
  }
  checkGraph(m.graph, defaultOpset, domains, errors, warnings);
  return { errors, warnings };
}

/** Throws ExportError listing every structural error of the model (`what` names it, e.g. a path). */
export function assertValidModel(model: ModelObj | Uint8Array, what = 'ONNX model'): void {
  const { errors } = checkModel(model);
  if (errors.length > 0) throw new ExportError(`${what} fails ${errors.length} structural check(s):\n  ${errors.join('\n  ')}`);
}

/** Largest |a - b| over two equally long arrays (the export parity measure); Infinity when the lengths differ, NaN propagates. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d;
  }
  return m;
}
