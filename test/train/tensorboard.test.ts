import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { PNG } from 'pngjs';
import * as protobuf from 'protobufjs';
import { encodeTfRecord, maskCrc, maskedCrc32c, TensorBoardWriter } from '../../src/train/tensorboard';

// The subset of tensorflow/core/util/event.proto and framework/summary.proto the writer uses,
// with the field numbers of the originals.
const SCHEMA = `
syntax = "proto3";
package tensorflow;
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
  }
}
message Summary {
  message Image {
    int32 height = 1;
    int32 width = 2;
    int32 colorspace = 3;
    bytes encoded_image_string = 4;
  }
  message Value {
    string tag = 1;
    oneof value {
      float simple_value = 2;
      Image image = 4;
    }
  }
  repeated Value value = 1;
}
`;
const EventType = protobuf.parse(SCHEMA, { keepCase: true }).root.lookupType('tensorflow.Event');

interface DecodedEvent {
  wall_time: number;
  step: number;
  file_version?: string;
  summary?: { value: Array<{ tag: string; simple_value?: number; image?: { height: number; width: number; colorspace: number; encoded_image_string: Buffer } }> };
}

/** Reads a TFRecord file, checking every length and both CRCs of every record. */
function readRecords(file: string): Buffer[] {
  const buf = fs.readFileSync(file);
  const records: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    assert.ok(pos + 12 <= buf.length, `record header truncated at ${pos}`);
    const lenBytes = buf.subarray(pos, pos + 8);
    const len = Number(lenBytes.readBigUInt64LE(0));
    assert.equal(buf.readUInt32LE(pos + 8), maskCrc(crc32c(lenBytes)), `length CRC of record ${records.length}`);
    const data = buf.subarray(pos + 12, pos + 12 + len);
    assert.equal(data.length, len, `record ${records.length} truncated`);
    assert.equal(buf.readUInt32LE(pos + 12 + len), maskCrc(crc32c(data)), `data CRC of record ${records.length}`);
    records.push(data);
    pos += 12 + len + 4;
  }
  return records;
}

function decode(data: Buffer): DecodedEvent {
  return EventType.toObject(EventType.decode(data), { longs: Number, bytes: Buffer, oneofs: false }) as DecodedEvent;
}

describe('train/tensorboard', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tb-test-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('CRC32C and the mask: known answers', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    // rotr15(0xe3069283) = 0x2507c60d; + 0xa282ead8 = 0xc78ab0e5
    assert.equal(maskCrc(0xe3069283), 0xc78ab0e5);
    assert.equal(maskCrc(0), 0xa282ead8);
    assert.equal(maskCrc(0xffffffff), (0xffffffff + 0xa282ead8) % 2 ** 32);
    assert.equal(maskedCrc32c(Buffer.from('123456789')), 0xc78ab0e5);
    // Framing of a 3-byte payload: 8-byte length 3, masked CRC of those 8 bytes, data, masked CRC.
    const rec = encodeTfRecord(Buffer.from('abc'));
    assert.equal(rec.length, 8 + 4 + 3 + 4);
    assert.deepEqual([...rec.subarray(0, 8)], [3, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(rec.readUInt32LE(8), maskCrc(crc32c(Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]))));
    assert.equal(rec.subarray(12, 15).toString(), 'abc');
    // crc32c("abc") = 0x364b3fb7 (RFC 3720 CRC-32C of the ASCII bytes)
    assert.equal(crc32c(Buffer.from('abc')), 0x364b3fb7);
    assert.equal(rec.readUInt32LE(15), maskCrc(0x364b3fb7));
  });

  it('writes file_version first, then scalars and an image, readable back record by record', () => {
    let clock = 1700000000.25;
    const w = new TensorBoardWriter(dir, { now: () => clock });
    assert.equal(path.dirname(w.file), dir);
    assert.equal(path.basename(w.file), `events.out.tfevents.1700000000.${os.hostname()}`);
    const losses = [2.5, 1.25, 0.1];
    losses.forEach((l, i) => {
      clock += 1;
      w.scalar('train/loss', l, i * 10);
    });
    w.scalars({ 'train/lr': 3e-4, 'train/grad_norm': 0.75 }, 30);
    const png = new PNG({ width: 3, height: 2 });
    png.data.fill(200);
    const pngBytes = PNG.sync.write(png);
    w.image('val/example', pngBytes, 2, 3, 40);
    w.scalar('train/loss', 0.05, 2 ** 40); // int64 steps beyond 32 bits
    w.flush();
    w.close();
    w.close(); // idempotent
    assert.throws(() => w.scalar('x', 1, 1), /is closed/);

    const events = readRecords(w.file).map(decode);
    assert.equal(events.length, 7);
    assert.deepEqual(events[0], { wall_time: 1700000000.25, step: 0, file_version: 'brain.Event:2' });
    for (let i = 0; i < 3; i++) {
      assert.equal(events[i + 1].wall_time, 1700000000.25 + i + 1);
      assert.equal(events[i + 1].step, i * 10);
      assert.deepEqual(events[i + 1].summary!.value, [{ tag: 'train/loss', simple_value: Math.fround(losses[i]) }]);
      assert.equal(events[i + 1].file_version, undefined);
    }
    assert.equal(events[4].step, 30);
    assert.deepEqual(events[4].summary!.value, [
      { tag: 'train/lr', simple_value: Math.fround(3e-4) },
      { tag: 'train/grad_norm', simple_value: 0.75 },
    ]);
    const img = events[5].summary!.value[0];
    assert.equal(events[5].step, 40);
    assert.equal(img.tag, 'val/example');
    assert.equal(img.image!.height, 2);
    assert.equal(img.image!.width, 3);
    assert.equal(img.image!.colorspace, 3);
    assert.ok(Buffer.compare(img.image!.encoded_image_string, pngBytes) === 0);
    assert.equal(PNG.sync.read(img.image!.encoded_image_string).width, 3);
    assert.equal(events[6].step, 2 ** 40);
  });

  it('two writers in the same second get separate files; bad tags and steps are rejected', () => {
    const sub = path.join(dir, 'two');
    const a = new TensorBoardWriter(sub, { now: () => 1234 });
    const b = new TensorBoardWriter(sub, { now: () => 1234 });
    assert.notEqual(a.file, b.file);
    assert.match(path.basename(b.file), /^events\.out\.tfevents\.1234\..+\.\d+\.1$/);
    a.scalar('a', 1, 1);
    b.scalar('b', 2, 1);
    assert.throws(() => a.scalar('', 1, 1), /tag must be a non-empty string/);
    assert.throws(() => a.scalar('a', 1, -1), /step must be an integer >= 0, got -1/);
    a.close();
    b.close();
    assert.equal(decode(readRecords(a.file)[1]).summary!.value[0].tag, 'a');
    assert.equal(decode(readRecords(b.file)[1]).summary!.value[0].tag, 'b');
  });
});
