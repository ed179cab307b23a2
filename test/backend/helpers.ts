/**
 * Shared helpers of the backend tests: seeded shapes, data made on cpu and re-created on another
 * backend, and the relative difference used as the parity measure.
 */
import { initBackend, tf } from '../../src/backend';

/**
 * Puts the backend that was active before a suite back after it, so that test files that run
 * later (and may rely on tfjs's default cpu) do not inherit wasm from these tests.
 */
export function restoreBackendAfter(): void {
  let previous: string | null = null;
  before(() => {
    previous = (tf.engine().backendName as string | null) ?? null; // null: none chosen yet
  });
  after(async () => {
    await tf.setBackend(previous ?? 'cpu');
  });
}

/** mulberry32: small seeded generator for test shapes and attributes. */
export function makeRng(seed: number): { int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
  };
}

export type BackendId = 'cpu' | 'wasm';

/** Normal random values made on cpu with a seed and read back (the inputs of a parity case). */
export async function cpuData(shape: number[], seed: number): Promise<Float32Array> {
  await initBackend({ name: 'cpu' });
  const t = tf.randomNormal(shape, 0, 1, 'float32', seed);
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return v;
}

/** Runs `f` on `backend` and returns the values of its outputs (read outside any tidy). */
export async function valuesOn(backend: BackendId, f: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await initBackend({ name: backend });
  const out = tf.tidy(f);
  const list = Array.isArray(out) ? out : [out];
  const values = list.map((t) => Float32Array.from(t.dataSync() as ArrayLike<number>));
  tf.dispose(list);
  return values;
}

/** max |a - ref| / max |ref| (or the absolute difference when ref is all zeros). */
export function relDiff(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) return Infinity;
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    if (!(d <= diff)) diff = d; // NaN propagates as a failure
    mag = Math.max(mag, Math.abs(ref[i]));
  }
  return mag > 0 ? diff / mag : diff;
}

/** Collects the worst relative difference per label, printed once by the suite. */
export class ParityTable {
  private readonly worst = new Map<string, { diff: number; cases: number }>();
  add(label: string, diff: number): void {
    const w = this.worst.get(label) ?? { diff: 0, cases: 0 };
    w.diff = Math.max(w.diff, diff);
    w.cases += 1;
    this.worst.set(label, w);
  }
  format(): string {
    return [...this.worst].map(([k, v]) => `  ${k.padEnd(44)} ${v.diff.toExponential(2)}  (${v.cases} cases)`).join('\n');
  }
}

/** Copies a [kh, kw, a, b] filter into one with zeros between taps: dilation as a plain filter. */
export function dilateFilter(w: Float32Array, shape: [number, number, number, number], d: [number, number]): { w: Float32Array; shape: [number, number, number, number] } {
  const [kh, kw, a, b] = shape;
  const eh = (kh - 1) * d[0] + 1, ew = (kw - 1) * d[1] + 1;
  const out = new Float32Array(eh * ew * a * b);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let k = 0; k < a * b; k++) out[((i * d[0]) * ew + j * d[1]) * a * b + k] = w[(i * kw + j) * a * b + k];
    }
  }
  return { w: out, shape: [eh, ew, a, b] };
}

export function subsampleFilter(w: Float32Array, shape: [number, number, number, number], d: [number, number], kh: number, kw: number): Float32Array {
  const [, ew, a, b] = shape;
  const out = new Float32Array(kh * kw * a * b);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let k = 0; k < a * b; k++) out[(i * kw + j) * a * b + k] = w[((i * d[0]) * ew + j * d[1]) * a * b + k];
    }
  }
  return out;
}
