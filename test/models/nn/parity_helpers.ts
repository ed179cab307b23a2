/**
 * Test helpers: seeded inputs, layout transposes, ONNX Runtime sessions, max-abs-diff parity, and
 * a record of the measured differences (printed by the parity suites).
 */
import * as ort from 'onnxruntime-node';
import { tf } from '../../../src/backend/tf';
import { Rng } from '../../../src/data/rng';
import { Dim, OnnxGraph } from '../../../src/export/onnx_graph';

/** Standard-normal tensor from a seed (values platform independent). */
export function randn(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = new Rng(seed, 'test-input');
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.normal(0, scale);
  return tf.tensor(data, shape, 'float32');
}

/** Uniform ints in [0, hi). */
export function randInt(shape: number[], hi: number, seed: number): tf.Tensor {
  const rng = new Rng(seed, 'test-ids');
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Int32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.int(0, hi - 1);
  return tf.tensor(data, shape, 'int32');
}

export function nhwcToNchw(t: tf.Tensor): tf.Tensor {
  return tf.transpose(t, [0, 3, 1, 2]);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d; // NaN propagates as NaN
  }
  return m;
}

export interface OrtFeed {
  data: Float32Array | Int32Array | BigInt64Array;
  dims: number[];
}

/** Runs model bytes in onnxruntime-node; returns outputs by name. */
export async function runOrt(bytes: Uint8Array, feeds: Record<string, OrtFeed>): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [k, f] of Object.entries(feeds)) {
      const type = f.data instanceof Float32Array ? 'float32' : f.data instanceof BigInt64Array ? 'int64' : 'int32';
      inputs[k] = new ort.Tensor(type, f.data, f.dims);
    }
    const res = await session.run(inputs);
    const out: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const [k, v] of Object.entries(res)) out[k] = { data: v.data as Float32Array, dims: [...v.dims] };
    return out;
  } finally {
    await session.release();
  }
}

/** Float feed from a tensor. */
export function feed(t: tf.Tensor): OrtFeed {
  return { data: t.dataSync() as Float32Array, dims: [...t.shape] };
}

/** int64 feed from an int32 tensor. */
export function feedInt64(t: tf.Tensor): OrtFeed {
  return { data: BigInt64Array.from(t.dataSync() as Int32Array, (v) => BigInt(v)), dims: [...t.shape] };
}

/** Measured max abs differences, by case name (reported at the end of the parity suites). */
export const parityRecord = new Map<string, number>();

export function record(name: string, diff: number): number {
  parityRecord.set(name, Math.max(diff, parityRecord.get(name) ?? 0));
  return diff;
}

/** A graph with one float input 'x' and one output 'y' taken from `emit`. */
export function singleIoGraph(name: string, inShape: Dim[], outShape: Dim[], emit: (g: OnnxGraph, x: string) => string): Uint8Array {
  const g = new OnnxGraph(name);
  const x = g.input('x', inShape);
  g.output('y', outShape, 'float32', { from: emit(g, x) });
  return g.toModelProto();
}
