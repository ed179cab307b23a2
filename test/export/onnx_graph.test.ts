/**
 * The ONNX builder and writer: the ModelProto fields (ir_version 8, opset 17, producer), attribute
 * typing (int64 and float), int64 initializers, symbolic dims, a hand-checked Gemm run in
 * onnxruntime-node, and the structural checker.
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../src/backend/tf';
import { ExportError } from '../../src/errors';
import { assertValidModel, checkModel } from '../../src/export/onnx_check';
import { IR_VERSION, OPSET_VERSION, OnnxGraph, attr, makeAttribute } from '../../src/export/onnx_graph';
import { AttributeType, DataType, ModelObj, decodeModel, encodeModel } from '../../src/export/onnx_proto';
import { runOrt } from '../models/nn/parity_helpers';

/** A minimal valid model object to mutate in checker tests: y = Relu(x + w). */
function tinyModel(): ModelObj {
  const g = new OnnxGraph('tiny');
  const x = g.input('x', ['batch', 2]);
  const w = g.initializer('w', new Float32Array([1, -1]), [2]);
  g.output('y', ['batch', 2], 'float32', { from: g.ops('m').Relu(g.ops('m').Add(x, w)) });
  return decodeModel(g.toModelProto());
}

describe('ONNX graph builder and writer', function () {
  this.timeout(20000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('writes ir_version 8, opset 17 of the default domain, producer hoi2anomaly; int64 fields decode as numbers', () => {
    const g = new OnnxGraph('meta');
    const x = g.input('x', ['batch', 3, 4]);
    const t = g.ops('s').Transpose(x, { perm: [0, 2, 1] });
    g.output('y', ['batch', 4, 3], 'float32', { from: g.ops('s').Softmax(t, { axis: -1 }) });
    g.setMetadata('classes', '["person","knife"]');
    const m = decodeModel(g.toModelProto());
    assert.equal(m.ir_version, IR_VERSION);
    assert.equal(IR_VERSION, 8);
    assert.equal(typeof m.ir_version, 'number', 'int64 converted from Long');
    assert.deepEqual(m.opset_import, [{ domain: '', version: OPSET_VERSION }]);
    assert.equal(OPSET_VERSION, 17);
    assert.equal(m.producer_name, 'hoi2anomaly');
    assert.deepEqual(m.metadata_props, [{ key: 'classes', value: '["person","knife"]' }]);
    const nodes = m.graph?.node ?? [];
    assert.deepEqual(nodes.map((n) => [n.op_type, n.name]), [['Transpose', 's/Transpose'], ['Softmax', 's/Softmax'], ['Identity', 'y/Identity']]);
    const a0 = nodes[0].attribute?.[0];
    const a1 = nodes[1].attribute?.[0];
    assert.deepEqual([a0?.name, a0?.type, a0?.ints], ['perm', AttributeType.INTS, [0, 2, 1]]);
    assert.deepEqual([a1?.name, a1?.type, a1?.i], ['axis', AttributeType.INT, -1]);
    const dims = m.graph?.input?.[0].type?.tensor_type?.shape?.dim;
    assert.deepEqual(dims, [{ dim_param: 'batch' }, { dim_value: 3 }, { dim_value: 4 }]);
    assert.equal(m.graph?.input?.[0].type?.tensor_type?.elem_type, DataType.FLOAT);
  });

  it('types attributes as the spec does: float names, int lists, explicit wrappers', () => {
    assert.deepEqual(makeAttribute('epsilon', 1), { name: 'epsilon', type: AttributeType.FLOAT, f: 1 });
    assert.deepEqual(makeAttribute('alpha', 0.5), { name: 'alpha', type: AttributeType.FLOAT, f: 0.5 });
    assert.deepEqual(makeAttribute('axis', 1), { name: 'axis', type: AttributeType.INT, i: 1 });
    assert.deepEqual(makeAttribute('pads', [0, 1, 0, 1]), { name: 'pads', type: AttributeType.INTS, ints: [0, 1, 0, 1] });
    assert.deepEqual(makeAttribute('scales', [1, 2]), { name: 'scales', type: AttributeType.FLOATS, floats: [1, 2] });
    assert.deepEqual(makeAttribute('value', attr.float(3)), { name: 'value', type: AttributeType.FLOAT, f: 3 });
    const s = makeAttribute('mode', 'linear');
    assert.equal(s.type, AttributeType.STRING);
    assert.equal(new TextDecoder().decode(s.s), 'linear');
    assert.throws(() => makeAttribute('axis', attr.int(1.5)), /integer expected, got 1.5/);
    // Large int64 attribute values survive encode/decode.
    const g = new OnnxGraph('big');
    const x = g.input('x', [2]);
    g.output('y', [2], 'float32', { from: g.node('Identity', [x], {}) });
    const obj = g.toModelObject();
    obj.graph!.node![0].attribute = [makeAttribute('big', 2 ** 40 + 3), makeAttribute('neg', [-(2 ** 33), -1])];
    const back = decodeModel(encodeModel(obj));
    assert.deepEqual(back.graph?.node?.[0].attribute?.map((a) => a.i ?? a.ints), [2 ** 40 + 3, [-(2 ** 33), -1]]);
  });

  it('runs Gemm(A, B, C, {transB: 1, alpha}) in onnxruntime against a hand computation', async () => {
    const g = new OnnxGraph('gemm');
    const a = g.input('A', ['batch', 3]);
    const b = g.initializer('B', new Float32Array([1, 0, 2, 0, 1, -1]), [2, 3]); // [N=2, K=3], transposed
    const c = g.initializer('C', [0.5, -0.5], [2]);
    g.output('Y', ['batch', 2], 'float32', { from: g.ops('').Gemm(a, b, c, { transB: 1, alpha: 2 }) });
    const out = await runOrt(g.toModelProto(), { A: { data: new Float32Array([1, 2, 3, -1, 0, 1]), dims: [2, 3] } });
    // Row [1,2,3]: 2*(1+6)+0.5 = 14.5, 2*(2-3)-0.5 = -2.5. Row [-1,0,1]: 2*(1)+0.5 = 2.5, 2*(-1)-0.5 = -2.5.
    assert.deepEqual(Array.from(out.Y.data), [14.5, -2.5, 2.5, -2.5]);
  });

  it('writes int64 initializers and constants (Reshape with 0 and -1), shared when equal', async () => {
    const g = new OnnxGraph('reshape');
    const x = g.input('x', ['batch', 2, 3]);
    const s1 = g.constant([0, -1], 'int64');
    const s2 = g.constant([0, -1], 'int64');
    assert.equal(s1, s2, 'equal small constants are shared');
    g.output('y', ['batch', 6], 'float32', { from: g.ops('r').Reshape(x, s1) });
    const bytes = g.toModelProto();
    const init = decodeModel(bytes).graph?.initializer?.[0];
    assert.equal(init?.data_type, DataType.INT64);
    assert.deepEqual(init?.dims, [2]);
    const raw = init?.raw_data as Uint8Array;
    const vals = new BigInt64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    assert.deepEqual(Array.from(vals), [0n, -1n]);
    const out = await runOrt(bytes, { x: { data: Float32Array.from({ length: 12 }, (_, i) => i), dims: [2, 2, 3] } });
    assert.deepEqual(out.y.dims, [2, 6]);
    assert.equal(out.y.data[7], 7);
  });

  it('initializers from tfjs tensors; re-adding a tied weight reuses it; conflicting names fail', () => {
    const g = new OnnxGraph('init');
    const t = tf.tensor2d([[1, 2], [3, 4]]);
    assert.equal(g.initializer('w', t), 'w');
    assert.equal(g.initializer('w', t), 'w');
    assert.throws(() => g.initializer('w', new Float32Array(3), [3]), ExportError);
    assert.throws(() => g.initializer('v', new Float32Array(3), [2, 2]), /dims \[2,2\] hold 4 values, got 3/);
    assert.throws(() => g.input('w', [1]), /already used/);
    t.dispose();
  });

  it('the builder refuses a node whose input is not defined yet', () => {
    const g = new OnnxGraph('bad');
    g.input('x', [1]);
    assert.throws(() => g.node('Relu', ['nope']), (e: unknown) => e instanceof ExportError && /input 'nope' is not defined yet/.test(e.message));
    assert.throws(() => g.output('missing', [1]), /no value of that name/);
  });

  it('toModelProto throws ExportError when a structural check fails', () => {
    const g = new OnnxGraph('no_outputs');
    g.input('x', [1]);
    assert.throws(() => g.toModelProto(), (e: unknown) => e instanceof ExportError && /graph has no outputs/.test(e.message));
    const g2 = new OnnxGraph('gelu20');
    const x = g2.input('x', [1]);
    g2.output('y', [1], 'float32', { from: g2.node('Gelu', [x]) });
    assert.throws(() => g2.toModelProto(), /'Gelu' needs opset 20, the model imports opset 17/);
  });
});

describe('ONNX structural checker', () => {
  it('accepts a valid model, from bytes too', () => {
    const m = tinyModel();
    assert.deepEqual(checkModel(m), { errors: [], warnings: [] });
    assert.deepEqual(checkModel(encodeModel(m)).errors, []);
  });

  it('rejects a node input that is not defined (not an input, initializer or earlier output)', () => {
    const m = tinyModel();
    m.graph!.node![0].input = ['x', 'undefined_value'];
    const { errors } = checkModel(m);
    assert.equal(errors.length, 1);
    assert.match(errors[0], /node 0 \(Add 'm\/Add'\): input 'undefined_value' is not a graph input, an initializer or an earlier node's output/);
    assert.throws(() => assertValidModel(m, 'tiny.onnx'), (e: unknown) => e instanceof ExportError && /tiny\.onnx fails 1 structural check/.test(e.message));
  });

  it('rejects nodes out of topological order', () => {
    const m = tinyModel();
    m.graph!.node!.reverse();
    const { errors } = checkModel(m);
    assert.ok(errors.some((e) => /input 'm\/Relu' is not a graph input/.test(e)), errors.join('\n'));
  });

  it('rejects duplicate output names, missing opset, missing types and shapes, bad initializers', () => {
    const dup = tinyModel();
    dup.graph!.node![1].output = ['m/Add'];
    assert.ok(checkModel(dup).errors.some((e) => /output 'm\/Add' is already defined/.test(e)));

    const noOpset = tinyModel();
    noOpset.opset_import = [];
    assert.ok(checkModel(noOpset).errors.includes('no opset_import for the default ONNX domain'));

    const old = tinyModel();
    old.opset_import = [{ domain: '', version: 16 }];
    old.graph!.node![1].op_type = 'LayerNormalization';
    assert.ok(checkModel(old).errors.some((e) => /'LayerNormalization' needs opset 17, the model imports opset 16/.test(e)));

    const typo = tinyModel();
    typo.graph!.node![1].op_type = 'Rleu';
    assert.ok(checkModel(typo).errors.some((e) => /'Rleu' is not an operator of the default ONNX domain/.test(e)));

    const untyped = tinyModel();
    untyped.graph!.input![0].type!.tensor_type!.elem_type = 0;
    delete untyped.graph!.output![0].type!.tensor_type!.shape;
    const e1 = checkModel(untyped).errors;
    assert.ok(e1.some((e) => /graph input 'x': elem_type 0 is not a valid data type/.test(e)));
    assert.ok(e1.some((e) => /graph output 'y': no shape/.test(e)));

    const badInit = tinyModel();
    badInit.graph!.initializer![0].dims = [3];
    assert.ok(checkModel(badInit).errors.some((e) => /initializer 'w': raw_data holds 8 bytes, dims \[3\] of type 1 need 12/.test(e)));

    const noDomain = tinyModel();
    noDomain.graph!.node![0].domain = 'com.example';
    assert.ok(checkModel(noDomain).errors.some((e) => /domain 'com.example' has no opset_import/.test(e)));

    const badAttr = tinyModel();
    badAttr.graph!.node![0].attribute = [{ name: 'axis', type: AttributeType.INT }];
    assert.ok(checkModel(badAttr).errors.some((e) => /attribute 'axis' of type 2 has no 'i' value/.test(e)));
  });

  it('warns about unused initializers and inputs', () => {
    const g = new OnnxGraph('unused');
    const x = g.input('x', [2]);
    g.input('spare', [2]);
    g.initializer('dead', new Float32Array([1, 2]), [2]);
    g.output('y', [2], 'float32', { from: g.node('Relu', [x]) });
    const { errors, warnings } = checkModel(g.toModelObject());
    assert.deepEqual(errors, []);
    assert.deepEqual(warnings, ["initializer 'dead' is not used by any node", "graph input 'spare' is not used by any node"]);
  });
});
