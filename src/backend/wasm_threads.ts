/**
 * Loads tfjs-backend-wasm in Node with XNNPACK threads.
 *
 * Out of the box, tfjs-backend-wasm 4.22 in Node runs single-threaded:
 * 1. the flag WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false under Node (tfjs#3830), so the
 *    SIMD build without threads is loaded;
 * 2. the threaded build's pthread workers are created from a Blob URL (`locateFile` of
 *    `*.worker.js`), which `worker_threads` cannot load; their main script is posted as a Blob;
 * 3. the C++ side caps the thread count at emscripten_num_logical_cores() / 2, which reads
 *    `os.cpus().length` at module start, so a 2-core machine gets 1 thread whatever
 *    setThreadsCount says.
 *
 * During the one call that initializes the backend, without editing node_modules:
 * 1. the flag is set to true and setThreadsCount(n);
 * 2. `URL.createObjectURL` maps the worker Blob to ./wasm_worker.js, a file that runs the
 *    emscripten worker code and resolves the main-script Blob to the threaded script on disk;
 * 3. `os.cpus()` reports 2n entries, so the cap is n.
 * Both globals are restored when initialization ends. The pthread workers are then unref'd so
 * that they do not keep the process alive. If anything fails (no worker file, preflight error,
 * initialization error or timeout), the backend loads single-threaded and one warning says why.
 *
 * Measured (2 vCPU, matMul 1024^2): 1 thread 15-19 GFLOP/s, 2 threads 32-38; identical results.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Blob } from 'node:buffer';
import { Worker } from 'node:worker_threads';
import os = require('node:os');
import type * as TfWasm from '@tensorflow/tfjs-backend-wasm';
import { tf } from './tf';
import { log } from '../logger';
import { BackendError } from '../errors';

/** PTHREAD_POOL_SIZE of the tfjs build and max_num_threads in its backend.cc. */
export const WASM_MAX_THREADS = 8;
export const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';
const WORKER_FILE = path.join(__dirname, 'wasm_worker.js');
const INIT_TIMEOUT_MS = 60_000;
const PREFLIGHT_TIMEOUT_MS = 20_000;

export interface WasmStatus {
  threads: number;
  simd: boolean;
  version: string;
}

let wasmModule: typeof TfWasm | null = null;

/** The wasm backend package, loaded on first use (loading registers the backend and kernels). */
export function requireWasm(): typeof TfWasm {
  if (wasmModule === null) {
    try {
      wasmModule = require(WASM_PACKAGE) as typeof TfWasm;
    } catch (e) {
      throw new BackendError(
        `backend 'wasm' needs ${WASM_PACKAGE}: npm install ${WASM_PACKAGE}@${tf.version_core}`, { cause: e });
    }
  }
  return wasmModule;
}

/** True when the wasm backend instance exists (initialized earlier in this process). */
function wasmInitialized(): boolean {
  return 'wasm' in tf.engine().registry;
}

/**
 * Makes wasm the active backend with `requested` threads (clamped to 1..8). The thread count is
 * fixed for the process once the backend is initialized; a later different request keeps it and
 * warns.
 */
export async function loadWasm(requested: number): Promise<WasmStatus> {
  const wasm = requireWasm();
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
  const threads = Math.min(Math.max(1, Math.floor(requested)), WASM_MAX_THREADS);
  if (requested > WASM_MAX_THREADS) {
    log.warn(`wasm: at most ${WASM_MAX_THREADS} threads (the build's worker pool), got ${requested}`);
  }
  if (wasmInitialized()) {
    await setBackendOrThrow('wasm');
    const actual = wasm.getThreadsCount();
    if (actual !== threads) {
      log.warn(`wasm: already initialized with ${actual} thread(s) in this process; ${threads} requested`);
    }
    return { threads: actual, simd, version: wasm.version_wasm };
  }

  let why: string | null = 'not requested';
  if (threads > 1) {
    why = simd ? await initThreaded(wasm, threads) : 'the threaded build needs WebAssembly SIMD';
    if (why !== null) log.warn(`wasm: ${threads} threads unavailable (${why}); using 1 thread`);
  }
  if (why !== null) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    wasm.setThreadsCount(1);
    await setBackendOrThrow('wasm');
  }
  unrefWorkers();
  return { threads: wasm.getThreadsCount(), simd, version: wasm.version_wasm };
}

/** Initializes the threaded build; null on success, else the reason it did not work. */
async function initThreaded(wasm: typeof TfWasm, threads: number): Promise<string | null> {
  const pre = await preflightWorker();
  if (pre !== null) return pre;
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  const restore = patchGlobalsForThreads(threads);
  try {
    const ok = await withTimeout(tf.setBackend('wasm'), INIT_TIMEOUT_MS);
    if (ok === 'timeout') return `initialization did not finish in ${INIT_TIMEOUT_MS / 1000} s`;
    if (!ok) return 'initialization failed';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    restore();
  }
  return null;
}

function patchGlobalsForThreads(threads: number): () => void {
  const osMut = os as unknown as { cpus: () => os.CpuInfo[] };
  const cpus = osMut.cpus;
  const createObjectURL = URL.createObjectURL;
  osMut.cpus = () => {
    const real = cpus();
    const filler: os.CpuInfo = real[0] ?? { model: '', speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
    return Array.from({ length: 2 * threads }, (_, i) => real[i] ?? filler);
  };
  URL.createObjectURL = (obj: Blob): string =>
    obj instanceof Blob && obj.type === 'application/javascript' ? WORKER_FILE : createObjectURL(obj);
  return () => {
    osMut.cpus = cpus;
    URL.createObjectURL = createObjectURL;
  };
}

/** Loads the worker script in a throw-away worker: a pthread worker that fails would crash us. */
function preflightWorker(): Promise<string | null> {
  if (!fs.existsSync(WORKER_FILE)) return Promise.resolve(`worker script ${WORKER_FILE} not found`);
  if (typeof SharedArrayBuffer === 'undefined') return Promise.resolve('no SharedArrayBuffer');
  return new Promise((resolve) => {
    let done = false;
    const finish = (why: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(why);
    };
    const worker = new Worker(WORKER_FILE, { workerData: { preflight: true } });
    const timer = setTimeout(() => finish('worker preflight timed out'), PREFLIGHT_TIMEOUT_MS);
    worker.once('message', (m: { ok: boolean; error?: string }) =>
      finish(m.ok ? null : `worker preflight: ${m.error ?? 'failed'}`));
    worker.once('error', (e: Error) => finish(`worker preflight: ${e.message}`));
  });
}

/** Pthread workers must not keep the process alive once the work is done. */
function unrefWorkers(): void {
  const backend = tf.engine().registry['wasm'] as unknown as {
    wasm?: { PThread?: { unusedWorkers: Worker[]; runningWorkers: Worker[] } };
  } | undefined;
  const pthread = backend?.wasm?.PThread;
  if (pthread === undefined) return;
  for (const w of [...pthread.unusedWorkers, ...pthread.runningWorkers]) w.unref();
}

async function setBackendOrThrow(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new BackendError(`backend '${name}' failed to initialize (tfjs printed the cause above)`);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
