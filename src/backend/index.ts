/**
 * Backend choice: tensorflow (tfjs-node-gpu, then tfjs-node: optional peer dependencies the user
 * installs) > wasm (XNNPACK, SIMD, threads; our composite gradient kernels) > cpu. 'wasm-native'
 * is the wasm backend with its heavy kernels run by ONNX Runtime's CPU kernels (./native); when
 * ONNX Runtime cannot load, it logs why and stays plain wasm.
 *
 * ```ts
 * const info = await initBackend({ name: 'auto', threads: 2 }); // logs "backend: wasm (SIMD, 2 threads)"
 * manifest.backend = info;
 * ```
 */
import os = require('node:os');
import { tf } from './tf';
import { log } from '../logger';
import { BackendError, ConfigError } from '../errors';
import { loadWasm, WASM_MAX_THREADS, WASM_PACKAGE } from './wasm_threads';
import { registerWasmKernels } from './kernels';
import { disableNativeKernels, enableNativeKernels, nativeKernelStatus } from './native';

export { tf } from './tf';
export { seedEverything, nextSeed, seedFor, currentSeed, SeedSequence } from './seed';
export { registerWasmKernels, unregisterWasmKernels, COMPOSITE_WASM_KERNELS } from './kernels';
export { installGradientFixes } from './gradients';
export { disableNativeKernels, enableNativeKernels, nativeKernelStats, nativeKernelStatus } from './native';

export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu' | 'wasm-native';
/** 'wasm-native' last: the base backends first, then the variant (messages list them in this order). */
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'tensorflow', 'wasm', 'cpu', 'wasm-native'];

export interface BackendInfo {
  /** The tfjs backend name: 'tensorflow', 'wasm' or 'cpu'. */
  name: string;
  /** Compute threads: the XNNPACK pool for wasm, 1 for cpu, the machine's cores for tensorflow. */
  threads: number;
  /** WebAssembly SIMD (wasm only). */
  simd: boolean;
  /** The npm package that provides the backend. */
  package: string;
  version: string;
  /**
   * wasm only: the native kernel runtime when the heavy kernels run in ONNX Runtime
   * ('wasm-native'), e.g. 'onnxruntime-node 1.30.0 (2 threads)'; absent on plain wasm.
   */
  native?: string;
}

export interface InitBackendOptions {
  name?: BackendName;
  /** Threads for wasm; default: the available cores, at most 8. Ignored by cpu and tensorflow. */
  threads?: number;
}

/** tfjs-node packages in order of preference; both register the backend 'tensorflow'. */
const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

const initialized = new Map<string, BackendInfo>();
let active: BackendInfo | null = null;
let pending: Promise<unknown> = Promise.resolve();

/**
 * Selects and initializes the compute backend and returns what a run manifest records.
 * Idempotent: a second call for the same backend returns the same info ('auto' keeps the backend
 * chosen before). A forced backend that cannot load throws BackendError saying what to install.
 */
export function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  // One initialization at a time: two concurrent first calls must not both load wasm.
  const run = pending.then(() => initBackendNow(opts));
  pending = run.catch(() => undefined);
  return run;
}

async function initBackendNow(opts: InitBackendOptions): Promise<BackendInfo> {
  const name = opts.name ?? 'auto';
  if (!BACKEND_NAMES.includes(name)) {
    throw new ConfigError(`unknown backend '${String(name)}'; expected one of ${BACKEND_NAMES.join(', ')}`);
  }
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1)) {
    throw new ConfigError(`backend threads must be an integer >= 1, got ${String(opts.threads)}`);
  }
  if (name === 'auto' && active !== null) return activate(active);
  const previous = name === 'auto' ? undefined : initialized.get(name);
  if (previous !== undefined) return activate(previous);

  let info: BackendInfo;
  if (name === 'auto') {
    info = (await tryTensorflow()) ?? (await tryWasmNative(opts.threads)) ?? (await initCpu());
  } else if (name === 'tensorflow') {
    info = await initTensorflow();
  } else if (name === 'wasm') {
    info = await initWasm(opts.threads);
  } else if (name === 'wasm-native') {
    info = withNative(await initWasm(opts.threads));
  } else {
    info = await initCpu();
  }
  initialized.set(cacheKey(info), info);
  active = info;
  log.info(describeBackend(info));
  return info;
}

/** The initialized-backends key: 'wasm-native' for wasm with native kernels, else the name. */
function cacheKey(info: BackendInfo): string {
  return info.name === 'wasm' && info.native !== undefined ? 'wasm-native' : info.name;
}

/** `backend: wasm (SIMD, 2 threads)`, `backend: wasm (SIMD, 2 threads; native kernels: onnxruntime-node 1.30.0 (2 threads))`, `backend: cpu`, `backend: tensorflow (@tensorflow/tfjs-node 4.22.0)`. */
export function describeBackend(info: BackendInfo): string {
  if (info.name === 'wasm') {
    const native = info.native !== undefined ? `; native kernels: ${info.native}` : '';
    return `backend: wasm (${info.simd ? 'SIMD, ' : ''}${info.threads} thread${info.threads === 1 ? '' : 's'}${native})`;
  }
  if (info.name === 'tensorflow') return `backend: tensorflow (${info.package} ${info.version})`;
  return `backend: ${info.name}`;
}

/** The info of the active backend, or null before initBackend. */
export function activeBackend(): BackendInfo | null {
  return active;
}

async function activate(info: BackendInfo): Promise<BackendInfo> {
  if (tf.getBackend() !== info.name) {
    const ok = await tf.setBackend(info.name);
    if (!ok) throw new BackendError(`backend '${info.name}' could not be re-activated`);
  }
  // 'wasm' and 'wasm-native' share the tfjs backend: the kernels registered say which one runs.
  let out = info;
  if (info.name === 'wasm' && info.native === undefined) disableNativeKernels();
  else if (info.native !== undefined && nativeKernelStatus() === null) out = withNative({ ...info, native: undefined });
  active = out;
  return out;
}

function defaultThreads(): number {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(WASM_MAX_THREADS, cores));
}

async function initCpu(): Promise<BackendInfo> {
  const ok = await tf.setBackend('cpu');
  if (!ok) throw new BackendError('backend cpu failed to initialize');
  const versions = tf.version as Record<string, string>;
  return { name: 'cpu', threads: 1, simd: false, package: '@tensorflow/tfjs-backend-cpu', version: versions['tfjs-backend-cpu'] ?? tf.version_core };
}

async function initWasm(threads: number | undefined): Promise<BackendInfo> {
  const status = await loadWasm(threads ?? defaultThreads());
  disableNativeKernels(); // plain wasm, also after 'wasm-native' earlier in this process
  registerWasmKernels();
  return { name: 'wasm', threads: status.threads, simd: status.simd, package: WASM_PACKAGE, version: status.version };
}

/**
 * Turns native kernels on for the wasm backend just initialized (ORT with as many threads as
 * wasm). When ONNX Runtime cannot load, one line says why and plain wasm is returned.
 */
function withNative(wasm: BackendInfo): BackendInfo {
  const { native: _, ...plain } = wasm;
  try {
    return { ...plain, native: enableNativeKernels(wasm.threads).description };
  } catch (e) {
    log.warn(`native kernels unavailable (${e instanceof Error ? e.message : String(e)}); using wasm`);
    return plain;
  }
}

/** For 'auto': wasm with native kernels (plain wasm where ONNX Runtime cannot load), else null. */
async function tryWasmNative(threads: number | undefined): Promise<BackendInfo | null> {
  const wasm = await tryWasm(threads);
  return wasm ? withNative(wasm) : null;
}

/** For 'auto': wasm if it loads, else null (with a warning) so that cpu is used. */
async function tryWasm(threads: number | undefined): Promise<BackendInfo | null> {
  try {
    return await initWasm(threads);
  } catch (e) {
    log.warn(`backend wasm unavailable, falling back to cpu: ${e instanceof Error ? e.message : String(e)}`);
    return null;
  }
}

function isResolvable(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/**
 * Loads the first installed tfjs-node package. Resolved at run time with a computed name, so
 * that the optional peer dependency is no compile-time or install-time requirement.
 */
async function loadTensorflow(pkg: string): Promise<BackendInfo> {
  try {
    require(pkg);
  } catch (e) {
    throw new BackendError(
      `${pkg} is installed but failed to load (its native libtensorflow is missing or broken): ` +
      `${e instanceof Error ? e.message : String(e)}; reinstall it, or use --backend wasm`, { cause: e });
  }
  if (tf.findBackendFactory('tensorflow') === null) {
    throw new BackendError(
      `${pkg} loaded but registered no 'tensorflow' backend on this @tensorflow/tfjs ` +
      `(${tf.version_core}); install the same version as @tensorflow/tfjs, e.g. npm install ${pkg}@${tf.version_core}`);
  }
  const ok = await tf.setBackend('tensorflow');
  if (!ok) throw new BackendError(`${pkg}: backend 'tensorflow' failed to initialize`);
  let version = 'unknown';
  try {
    version = (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    // packages with an "exports" map may hide package.json; the version is informative only
  }
  return { name: 'tensorflow', threads: os.cpus().length, simd: false, package: pkg, version };
}

async function initTensorflow(): Promise<BackendInfo> {
  const pkg = TENSORFLOW_PACKAGES.find(isResolvable);
  if (pkg === undefined) {
    throw new BackendError(
      `backend 'tensorflow' needs @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node (CPU), ` +
      `neither is installed: npm install @tensorflow/tfjs-node@${tf.version_core} ` +
      `(its install script downloads libtensorflow), or use --backend wasm`);
  }
  return loadTensorflow(pkg);
}

async function tryTensorflow(): Promise<BackendInfo | null> {
  for (const pkg of TENSORFLOW_PACKAGES) {
    if (!isResolvable(pkg)) continue;
    try {
      return await loadTensorflow(pkg);
    } catch (e) {
      log.warn(`${e instanceof Error ? e.message : String(e)}; trying the next backend`);
    }
  }
  return null;
}
