/**
 * The hand-written wasm SIMD kernels of ./kernels.wat, instantiated against the tfjs wasm
 * backend's own memory (its emscripten module's): they read and write tensors where
 * they lie on the heap, no copies. Synchronous (WebAssembly.Module / Instance of a ~2 KB module),
 * once per backend memory. `simdKernels(backend)` is null when the backend has no wasm memory
 * (cpu, tensorflow) or the module does not instantiate; the callers then use tfjs ops.
 */
import { log } from '../../../logger';
import type { TensorInfo, WasmHeapBackend } from '../scope';
import { SIMD_WASM_PLAIN, SIMD_WASM_SHARED } from './wasm_binary';

/** kernels.wat's exports; pointers are byte offsets into the heap. */
export interface SimdKernels {
  adamw(p: number, g: number, m: number, v: number, pOut: number, mOut: number, vOut: number, n: number,
    beta1: number, c1: number, beta2: number, c2: number, stepSize: number, invBc2: number, eps: number, decay: number, gradScale: number): void;
  sumSquares(x: number, n: number): number;
  channelSums(u: number, uShift: number, w: number, wShift: number, rows: number, c: number, s1: number, s2: number): void;
  channelAffine2(u: number, w: number, a: number, b: number, k: number, out: number, rows: number, c: number, floor: number): void;
  reluGrad(dy: number, y: number, out: number, n: number): void;
  maxPoolGrad(x: number, dy: number, dx: number, batch: number, h: number, w: number, c: number, oh: number, ow: number,
    kh: number, kw: number, sh: number, sw: number, padTop: number, padLeft: number): void;
}

/** The WebAssembly API used here (the ES2022 lib has no types for it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
declare const WebAssembly: {
  Memory: abstract new (...args: never[]) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
};

/** The part of BackendWasm used here. */
interface WasmBackendInternals {
  /** emscripten module: `wasmMemory` in the threaded build, the export `asm.memory` in the other */
  wasm?: { wasmMemory?: WasmMemory; asm?: { memory?: WasmMemory } };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

const instances = new WeakMap<WasmMemory, SimdKernels | null>();

export function simdKernels(backend: object): SimdKernels | null {
  const wasm = (backend as WasmBackendInternals).wasm;
  const memory = wasm?.wasmMemory ?? wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  let kernels = instances.get(memory);
  if (kernels === undefined) {
    try {
      const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
      const bytes = Buffer.from(shared ? SIMD_WASM_SHARED : SIMD_WASM_PLAIN, 'base64');
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
      kernels = instance.exports as unknown as SimdKernels;
    } catch (e) {
      log.warn(`wasm SIMD kernels unavailable (${e instanceof Error ? e.message : String(e)}): the optimizer step uses tfjs ops, batch norm JavaScript loops, MaxPoolGrad tfjs-wasm's kernel`);
      kernels = null;
    }
    instances.set(memory, kernels);
  }
  return kernels;
}

/** `simdKernels(backend)`, or an error naming `kernel` (for kernels whose op checked it first). */
export function requireSimdKernels(backend: object, kernel: string): SimdKernels {
  const k = simdKernels(backend);
  if (k === null) throw new Error(`${kernel}: the wasm SIMD kernels are not available on this backend (its op falls back to tfjs ops)`);
  return k;
}

/** Byte offset of a tensor's data on the wasm heap. */
export function heapOffset(backend: object, t: TensorInfo): number {
  const data = (backend as WasmBackendInternals).dataIdMap.get(t.dataId);
  if (data === undefined) throw new Error(`wasm SIMD kernels: no heap data for a tensor of shape [${t.shape}]`);
  return data.memoryOffset;
}

/**
 * Float32 scratch on the wasm heap for the SIMD path: `floats` values, freed by `free()`. The
 * views it hands out are made after every allocation (allocating may grow the heap and detach
 * earlier views).
 */
export class HeapScratch {
  private readonly info: TensorInfo;
  readonly offset: number;

  constructor(private readonly backend: object, floats: number) {
    this.info = (backend as unknown as WasmHeapBackend).makeOutput([floats], 'float32');
    this.offset = heapOffset(backend, this.info);
  }

  /** Byte offset of float32 slot `i`. */
  at(i: number): number {
    return this.offset + 4 * i;
  }

  f32(i: number, n: number): Float32Array {
    return new Float32Array((this.backend as unknown as WasmHeapBackend).typedArrayFromHeap(this.info).buffer, this.at(i), n);
  }

  /** float64 view from float32 slot `i` (8-byte aligned: heap allocations are). */
  f64(i: number, n: number): Float64Array {
    return new Float64Array((this.backend as unknown as WasmHeapBackend).typedArrayFromHeap(this.info).buffer, this.at(i), n);
  }

  free(): void {
    (this.backend as unknown as WasmHeapBackend).disposeData(this.info.dataId);
  }
}
