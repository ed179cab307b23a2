import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../../src/backend/tf';
import { CheckpointError } from '../../src/errors';
import {
  halfToFloat, parseSafetensors, readSafetensors, readSafetensorsHeader, SafetensorsEntry, serializeSafetensors,
  toTensor, writeSafetensors,
} from '../../src/train/safetensors';

/** A file image from a header object (JSON as given, unpadded) and data bytes. */
function image(header: unknown, data: number[] | Uint8Array, pad = false): Buffer {
  let json = JSON.stringify(header);
  if (pad) json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), Buffer.from(data)]);
}

function rejects(buf: Uint8Array, re: RegExp): void {
  assert.throws(() => parseSafetensors(buf, 'bad.safetensors'), (e: unknown) => {
    assert.ok(e instanceof CheckpointError, String(e));
    assert.match(e.message, /^bad\.safetensors: /);
    assert.match(e.message, re);
    return true;
  });
}

describe('train/safetensors', () => {
  let dir: string;
  before(async () => {
    await tf.setBackend('cpu');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-test-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  // The specification's layout, byte by byte: u64 LE header length, JSON header padded with
  // spaces to a multiple of 8, then the data in offset order.
  const header =
    '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}}';
  const expected = Buffer.concat([
    Buffer.from([144, 0, 0, 0, 0, 0, 0, 0]), // 139 bytes of JSON + 5 spaces = 144
    Buffer.from(header + '     ', 'latin1'),
    Buffer.from([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]), // float32 1.0, -2.0
    Buffer.from([0x07, 0x00, 0x00, 0x00]), // int32 7
  ]);

  it('writes the exact bytes of the specification layout', () => {
    assert.equal(header.length, 139);
    const tensors = new Map<string, SafetensorsEntry>([
      ['a', { dtype: 'F32', shape: [2], data: new Float32Array([1, -2]) }],
      ['b', { dtype: 'I32', shape: [1], data: new Int32Array([7]) }],
    ]);
    const buf = serializeSafetensors(tensors, { format: 'pt' });
    assert.equal(buf.length, 8 + 144 + 12);
    assert.ok(buf.equals(expected), `bytes differ:\n${buf.toString('hex')}\n${expected.toString('hex')}`);
    // tf.Tensors serialize to the same bytes.
    const a = tf.tensor1d([1, -2]);
    const b = tf.tensor1d([7], 'int32');
    assert.ok(serializeSafetensors(new Map([['a', a], ['b', b]]), { format: 'pt' }).equals(expected));
    a.dispose();
    b.dispose();
  });

  it('reads the hand-built bytes', () => {
    const { tensors, metadata } = parseSafetensors(expected);
    assert.deepEqual(metadata, { format: 'pt' });
    assert.deepEqual([...tensors.keys()], ['a', 'b']);
    assert.deepEqual(tensors.get('a'), { dtype: 'float32', fileDtype: 'F32', shape: [2], data: new Float32Array([1, -2]) });
    assert.deepEqual(tensors.get('b'), { dtype: 'int32', fileDtype: 'I32', shape: [1], data: new Int32Array([7]) });
  });

  it('reads F16, BF16, I64, U8, I8, BOOL, F64 from an unpadded header at unaligned offsets', () => {
    const data = [
      // F16 [2,3]: 1, -2, 65504, 2^-24, +inf, 0.333251953125
      0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x7c, 0x55, 0x35,
      // BF16 [3]: 1, 3.140625, -123.5
      0x80, 0x3f, 0x49, 0x40, 0xf7, 0xc2,
      // U8 [2]: 0, 255
      0x00, 0xff,
      // I64 [3]: -1, 2147483647, -2147483648
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0x7f, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff, 0xff,
      // BOOL [3]: true, false, true (2 counts as true)
      0x01, 0x00, 0x02,
      // I8 [1]: -3
      0xfd,
      // F64 [1]: 0.5
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f,
    ];
    const buf = image({
      h: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 12] },
      bf: { dtype: 'BF16', shape: [3], data_offsets: [12, 18] },
      u: { dtype: 'U8', shape: [2], data_offsets: [18, 20] },
      i64: { dtype: 'I64', shape: [3], data_offsets: [20, 44] },
      flag: { dtype: 'BOOL', shape: [3], data_offsets: [44, 47] },
      i8: { dtype: 'I8', shape: [1], data_offsets: [47, 48] },
      d: { dtype: 'F64', shape: [1], data_offsets: [48, 56] },
    }, data);
    const t = parseSafetensors(buf).tensors;
    assert.deepEqual(t.get('h'), { dtype: 'float32', fileDtype: 'F16', shape: [2, 3], data: new Float32Array([1, -2, 65504, 2 ** -24, Infinity, 0.333251953125]) });
    assert.deepEqual(t.get('bf'), { dtype: 'float32', fileDtype: 'BF16', shape: [3], data: new Float32Array([1, 3.140625, -123.5]) });
    assert.deepEqual(t.get('u'), { dtype: 'int32', fileDtype: 'U8', shape: [2], data: new Int32Array([0, 255]) });
    assert.deepEqual(t.get('i64'), { dtype: 'int32', fileDtype: 'I64', shape: [3], data: new Int32Array([-1, 2147483647, -2147483648]) });
    assert.deepEqual(t.get('flag'), { dtype: 'bool', fileDtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) });
    assert.deepEqual(t.get('i8'), { dtype: 'int32', fileDtype: 'I8', shape: [1], data: new Int32Array([-3]) });
    assert.deepEqual(t.get('d'), { dtype: 'float32', fileDtype: 'F64', shape: [1], data: new Float32Array([0.5]) });
    assert.ok(Number.isNaN(halfToFloat(0x7e00)));
    assert.equal(halfToFloat(0x8000), -0);
    const tensor = toTensor(t.get('h')!);
    assert.deepEqual(tensor.shape, [2, 3]);
    assert.equal(tensor.dtype, 'float32');
    tensor.dispose();
  });

  it('round-trips through a file (atomically written), tf.Tensors and raw entries alike', () => {
    const file = path.join(dir, 'rt.safetensors');
    const f = tf.tensor2d([[1.5, -0.25, 3], [4, 5e-8, -6e10]]);
    const i = tf.tensor1d([1, -2, 2147483647], 'int32');
    const b = tf.tensor1d([true, false, true], 'bool');
    const scalar = tf.scalar(7.25);
    const tensors = new Map<string, SafetensorsEntry | tf.Tensor>([
      ['layer.weight', f], ['ids', i], ['mask', b], ['scale', scalar],
      ['half', { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xbc00]) }],
      ['pos', { dtype: 'I64', shape: [2], data: new Int32Array([-5, 9]) }],
      ['big', { dtype: 'I64', shape: [1], data: new BigInt64Array([-7n]) }],
      ['empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
    ]);
    writeSafetensors(file, tensors, { format: 'hoi2anomaly', note: 'ünïcødé' });
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('tmp')), []);
    const { tensors: back, metadata } = readSafetensors(file);
    assert.deepEqual(metadata, { format: 'hoi2anomaly', note: 'ünïcødé' });
    assert.deepEqual([...back.keys()], [...tensors.keys()]);
    assert.deepEqual(back.get('layer.weight')!.data, f.dataSync());
    assert.deepEqual(back.get('layer.weight')!.shape, [2, 3]);
    assert.deepEqual(back.get('ids')!.data, new Int32Array([1, -2, 2147483647]));
    assert.deepEqual(back.get('mask'), { dtype: 'bool', fileDtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) });
    assert.deepEqual(back.get('scale'), { dtype: 'float32', fileDtype: 'F32', shape: [], data: new Float32Array([7.25]) });
    assert.deepEqual(back.get('half')!.data, new Float32Array([1, -1]));
    assert.deepEqual(back.get('pos'), { dtype: 'int32', fileDtype: 'I64', shape: [2], data: new Int32Array([-5, 9]) });
    assert.deepEqual(back.get('big')!.data, new Int32Array([-7]));
    assert.deepEqual(back.get('empty')!.shape, [0, 4]);
    const h = readSafetensorsHeader(file);
    assert.equal(h.dataStart % 8, 0);
    assert.deepEqual(h.entries.get('layer.weight'), { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    assert.equal(h.dataStart + [...h.entries.values()].reduce((s, e) => s + e.data_offsets[1] - e.data_offsets[0], 0), fs.statSync(file).size);
    for (const t of [f, i, b, scalar]) t.dispose();
  });

  it('names the file and tensor in errors: truncation, offsets, dtype, I64 range', () => {
    const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    rejects(new Uint8Array(5), /truncated: 5 bytes, less than the 8-byte header length/);
    rejects(expected.subarray(0, 100), /truncated: header length 144 but only 92 bytes follow/);
    rejects(expected.subarray(0, expected.length - 3), /tensor 'b': data_offsets \[8, 12\] reach past the end of the data \(9 bytes; file truncated\?\)/);
    rejects(image(ok, new Array(12).fill(0)), /the tensors cover 8 bytes but the data region has 12 \(trailing bytes\)/);
    rejects(image({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Array(8).fill(0)),
      /tensor 'b' \[4, 8\) overlaps tensor 'a' \(which ends at 8\)/);
    rejects(image({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Array(8).fill(0)), /4 unindexed bytes before tensor 'a'/);
    rejects(image({ w: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, [0]), /tensor 'w': unsupported dtype "F8_E4M3" \(supported: F64, F32/);
    rejects(image({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Array(8).fill(0)), /tensor 'w': data_offsets \[0, 8\] span 8 bytes, but F32 \[3\] needs 12/);
    rejects(image({ w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, new Array(8).fill(0)), /tensor 'w': data_offsets must be \[begin, end\]/);
    rejects(image({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, new Array(8).fill(0)), /tensor 'w': shape must be a list of integers >= 0/);
    rejects(image({ __metadata__: { n: 3 } }, []), /__metadata__ 'n' must be a string, found 3/);
    rejects(image({ i: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, [0, 0, 0, 0x80, 0, 0, 0, 0]),
      /tensor 'i' \(I64\): value 2147483648 at index 0 does not fit in int32/);
    const notJson = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a"')]);
    rejects(notJson, /header is not valid JSON/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(1n << 40n);
    rejects(huge, /header length 1099511627776 exceeds 100000000 bytes/);
    assert.throws(() => readSafetensors(path.join(dir, 'missing.safetensors')), /missing\.safetensors: file not found/);
    const truncatedFile = path.join(dir, 'trunc.safetensors');
    fs.writeFileSync(truncatedFile, expected.subarray(0, expected.length - 1));
    assert.throws(() => readSafetensors(truncatedFile), new RegExp(`^CheckpointError: ${truncatedFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: tensor 'b'.*file truncated`));
  });

  it('rejects writer input whose data does not fit the dtype or shape', () => {
    assert.throws(() => serializeSafetensors(new Map([['x', { dtype: 'F32', shape: [3], data: new Float32Array(2) }]])),
      /tensor 'x' has shape \[3\] \(3 elements\) but 2 values/);
    assert.throws(() => serializeSafetensors(new Map([['x', { dtype: 'F32', shape: [2], data: new Int32Array(2) }]])),
      /tensor 'x' \(F32\) needs Float32Array data, got Int32Array/);
    const c = tf.complex([1], [2]);
    assert.throws(() => serializeSafetensors(new Map([['z', c]])), /tensor 'z' has dtype complex64/);
    c.dispose();
  });
});
