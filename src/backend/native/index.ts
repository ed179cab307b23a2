/**
 * Native CPU kernels for the wasm backend ('wasm-native'): the heavy training kernels (Conv2D,
 * FusedConv2D, both conv gradients, BatchMatMul, _FusedMatMul) re-registered for 'wasm' so that
 * they run in ONNX Runtime's CPU kernels (MLAS) instead of XNNPACK / our wasm composites. Tensors
 * stay wasm tensors; nothing above the kernels changes.
 *
 * ```ts
 * const status = enableNativeKernels(2); // throws BackendError when ORT is unavailable
 * // ... train ...
 * disableNativeKernels();                // the wasm kernels are back
 * ```
 *
 * Environment: HOI2ANOMALY_NATIVE=off disables them (initBackend then logs why and uses plain
 * wasm); HOI2ANOMALY_NATIVE_MIN_FLOPS sets the size threshold; HOI2ANOMALY_NATIVE_CONV=conv|im2col|nchwc
 * forces the forward-conv variant (benchmarks; nchwc where the shape allows it).
 */
import { tf } from '../tf';
import { BackendError, ConfigError } from '../../errors';
import { log } from '../../logger';
import { WASM } from '../kernels/scope';
import { loadOrtRuntime, ORT_PACKAGE, type NativeCallStats, type OrtRuntime } from './ort_runtime';
import { conv2dGraph, nchwcProbeGraph, selfTestGraph, type BackpropInputVariant, type ConvVariant } from './op_graphs';
import { NATIVE_KERNELS, nativeKernelContext, setNativeKernelContext } from './kernels';

export { NATIVE_KERNELS } from './kernels';
export type { NativeCallStats } from './ort_runtime';

/**
 * Calls below this many FLOPs (2 x multiply-adds) stay on wasm. Measured (2 threads, load 6):
 * native won at every size tried, because a native call costs about 20-40 us plus the copies
 * while the wasm kernel call costs 80-800 us of engine overhead and thread wake-up alone:
 * matMul 8x8 825 vs 42 us, 64x64 709 vs 54 us, 512x512 13.0 vs 2.5 ms; conv 3x3 on
 * [8, 8, 8, 8] 776 vs 212 us, on [8, 8, 8, 512] 103 vs 31 ms. So the default is 0 (every call
 * of a native kernel runs natively); HOI2ANOMALY_NATIVE_MIN_FLOPS sets another threshold.
 */
export const DEFAULT_MIN_FLOPS = 0;

export interface NativeStatus {
  /** e.g. 'onnxruntime-node 1.30.0 (2 threads)'. */
  description: string;
  threads: number;
  version: string;
  /** Channel block of ORT's NCHWc convolutions on this CPU; null: unavailable, not used. */
  nchwcBlock: number | null;
}

export interface NativeOptions {
  minFlops?: number;
  convVariant?: ConvVariant | null;
  backpropInputVariant?: BackpropInputVariant | null;
}

/** Why native kernels are switched off by the environment, or null. */
export function nativeDisabledByEnv(): string | null {
  const v = (process.env.HOI2ANOMALY_NATIVE ?? '').toLowerCase();
  return v === 'off' || v === '0' || v === 'false' ? `HOI2ANOMALY_NATIVE=${process.env.HOI2ANOMALY_NATIVE}` : null;
}

function envOptions(): NativeOptions {
  const out: NativeOptions = {};
  const minFlops = process.env.HOI2ANOMALY_NATIVE_MIN_FLOPS;
  if (minFlops !== undefined && minFlops !== '') {
    const n = Number(minFlops);
    if (!(Number.isFinite(n) && n >= 0)) throw new ConfigError(`HOI2ANOMALY_NATIVE_MIN_FLOPS: a number >= 0 expected, got '${minFlops}'`);
    out.minFlops = n;
  }
  const conv = process.env.HOI2ANOMALY_NATIVE_CONV;
  if (conv !== undefined && conv !== '') {
    if (conv !== 'conv' && conv !== 'im2col' && conv !== 'nchwc') throw new ConfigError(`HOI2ANOMALY_NATIVE_CONV: 'conv', 'im2col' or 'nchwc' expected, got '${conv}'`);
    out.convVariant = conv;
  }
  return out;
}

let status: NativeStatus | null = null;

/**
 * Loads ONNX Runtime with `threads` intra-op threads and registers the native kernels for wasm
 * (the wasm backend must be initialized). Idempotent. Throws BackendError when ORT cannot load
 * or HOI2ANOMALY_NATIVE=off; the wasm kernels then stay as they were.
 */
export function enableNativeKernels(threads: number): NativeStatus {
  const off = nativeDisabledByEnv();
  if (off !== null) throw new BackendError(`disabled by ${off}`);
  if (status !== null) return status;
  const runtime = loadOrtRuntime(threads, selfTestGraph);
  const nchwc = nchwcBlockSize(runtime);
  runtime.nchwcBlock = nchwc.block;
  if (nchwc.block === null) log.info(`native kernels: ORT's NCHWc convolutions not used (${nchwc.reason}); convs use its plain Conv and im2col graphs`);
  const fallbacks = new Map<string, tf.KernelConfig>();
  for (const k of NATIVE_KERNELS) {
    const existing = tf.getKernel(k.kernelName, WASM);
    if (existing === undefined) {
      runtime.dispose();
      throw new BackendError(`native kernels: wasm has no '${k.kernelName}' kernel to fall back to; initialize the wasm backend first`);
    }
    fallbacks.set(k.kernelName, existing);
  }
  const env = envOptions();
  setNativeKernelContext({ runtime, fallbacks, minFlops: env.minFlops ?? DEFAULT_MIN_FLOPS, convVariant: env.convVariant ?? null, backpropInputVariant: null });
  for (const k of NATIVE_KERNELS) {
    tf.unregisterKernel(k.kernelName, WASM);
    tf.registerKernel(k);
  }
  status = {
    description: `${ORT_PACKAGE} ${runtime.version} (${threads} thread${threads === 1 ? '' : 's'})`, threads, version: runtime.version, nchwcBlock: runtime.nchwcBlock,
  };
  return status;
}

/**
 * The NCHWc block size of this CPU's ORT kernels, checked: the probe's answer (4, 8 or 16), then
 * one 3x3 conv of [1, 4, 5, block] channels through the 'nchwc' graph against a direct loop, so
 * that a CPU whose kernels lay blocks out otherwise (or lack them: a block of 1 reads as 4) falls
 * back to the plain graphs instead of giving wrong numbers.
 */
export function nchwcBlockSize(runtime: OrtRuntime): { block: number | null; reason: string } {
  const probe = runtime.probeNchwcBlock(nchwcProbeGraph());
  if (probe.block === null) return probe;
  const b = probe.block;
  const [H, W] = [4, 5];
  const info = tf.backend_util.computeConv2DInfo([1, H, W, b], [3, 3, b, b], 1, 1, 'same');
  const x = Float32Array.from({ length: H * W * b }, (_, i) => ((i * 7) % 11 - 5) / 8);
  const w = Float32Array.from({ length: 9 * b * b }, (_, i) => ((i * 5) % 13 - 6) / 16);
  const got = new Float32Array(H * W * b);
  try {
    runtime.run({ key: `nchwc-self-test|${b}`, build: () => conv2dGraph(info, 'nchwc', null, b), inputNames: ['x', 'w'], outShape: info.outShape },
      [{ data: x, shape: info.inShape }, { data: w, shape: [3, 3, b, b] }], got, 'nchwc-self-test');
  } catch (e) {
    return { block: null, reason: `block ${b}: ${e instanceof Error ? e.message : String(e)}` };
  } finally {
    runtime.stats.delete('nchwc-self-test');
  }
  let worst = 0, scale = 0;
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      for (let o = 0; o < b; o++) {
        let sum = 0;
        for (let u = 0; u < 3; u++) {
          for (let v = 0; v < 3; v++) {
            const ii = i + u - 1, jj = j + v - 1;
            if (ii < 0 || jj < 0 || ii >= H || jj >= W) continue;
            for (let c = 0; c < b; c++) sum += x[(ii * W + jj) * b + c] * w[((u * 3 + v) * b + c) * b + o];
          }
        }
        worst = Math.max(worst, Math.abs(sum - got[(i * W + j) * b + o]));
        scale = Math.max(scale, Math.abs(sum));
      }
    }
  }
  return worst <= 1e-4 * scale ? { block: b, reason: '' } : { block: null, reason: `block ${b}: self-test conv off by ${worst} (scale ${scale})` };
}

/** Puts the previous wasm kernels back and frees the ORT sessions; idempotent. */
export function disableNativeKernels(): void {
  const c = nativeKernelContext();
  if (c === null) return;
  for (const k of NATIVE_KERNELS) {
    if (tf.getKernel(k.kernelName, WASM) !== k) continue;
    tf.unregisterKernel(k.kernelName, WASM);
    const previous = c.fallbacks.get(k.kernelName);
    if (previous !== undefined) tf.registerKernel(previous);
  }
  setNativeKernelContext(null);
  c.runtime.dispose();
  status = null;
}

/** The status while native kernels are registered, else null. */
export function nativeKernelStatus(): NativeStatus | null {
  return status;
}

/** Changes the threshold or the forced graph variants while enabled (tests, benchmarks). */
export function setNativeOptions(opts: NativeOptions): void {
  const c = nativeKernelContext();
  if (c === null) throw new BackendError('native kernels are not enabled');
  if (opts.minFlops !== undefined) c.minFlops = opts.minFlops;
  if (opts.convVariant !== undefined) c.convVariant = opts.convVariant;
  if (opts.backpropInputVariant !== undefined) c.backpropInputVariant = opts.backpropInputVariant;
}

/** Calls, time and sessions per kernel since enabling (or the last reset). */
export function nativeKernelStats(reset = false): Map<string, NativeCallStats> {
  const c = nativeKernelContext();
  if (c === null) return new Map();
  const copy = new Map([...c.runtime.stats].map(([k, v]) => [k, { ...v }]));
  if (reset) c.runtime.stats.clear();
  return copy;
}

/** Number of cached ORT sessions (one per kernel, shape and attributes). */
export function nativeSessionCount(): number {
  return nativeKernelContext()?.runtime.numSessions ?? 0;
}
