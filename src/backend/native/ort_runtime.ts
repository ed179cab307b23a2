/**
 * ONNX Runtime (onnxruntime-node 1.30, CPU) as a synchronous kernel engine for the wasm backend.
 *
 * tfjs kernels are synchronous and the public `InferenceSession.run` returns a Promise, so the
 * plan in the issue was a worker thread plus Atomics.wait. Measured first: the Promise is only a
 * `setImmediate` around the package's native binding (`dist/binding.js`), whose `run` is
 * synchronous, so we call the binding directly on the calling thread: no worker, no thread hop,
 * no shared buffer. A tiny MatMul costs 20 us a call this way (the tfjs wasm matMul of 4x4 costs
 * 80 us with the engine's bookkeeping), so there is no round trip to amortize. The binding is an
 * internal of the package; `package.json` pins onnxruntime-node 1.30, and `loadOrtRuntime` runs
 * a self-test (a 2x3 @ 3x2 MatMul) so that a changed binding shows up as "unavailable", not as
 * wrong numbers.
 *
 * Data: ORT reads the inputs and writes the output in place, as views of the wasm heap, when
 * that heap is a plain ArrayBuffer (wasm with 1 thread). The threaded wasm heap is a
 * SharedArrayBuffer, which the binding rejects ("Invalid argument"): then inputs are copied into
 * reusable staging buffers (one per input slot, grown on demand) and the output out of one.
 * Copying 25 MB (the largest ResNet-18 activation at 224 px, batch 8) took 16-40 ms at load 9
 * against 30-100 ms for the convolution; still, wasm with 1 thread and no copies was not faster
 * over a ResNet-18 step (the other kernels lose XNNPACK's second thread), so wasm-native keeps
 * the wasm thread count asked for.
 *
 * Sessions: one per tiny graph (kernel, shapes, attributes), built on first use (2-10 ms) and
 * cached; each has its own ORT thread pool of `threads` threads that sleep between runs
 * (`session.intra_op.allow_spinning = 0`: spinning threads would take the cores from the wasm
 * threads between native calls) and no memory arena (see sessionOptions).
 */
import * as path from 'node:path';
import { BackendError } from '../../errors';

/** The part of onnxruntime-common's Tensor constructor the binding needs. */
interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}
type OrtTensorConstructor = new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;

/** dist/binding.d.ts of onnxruntime-node 1.30, reduced to what we call. */
interface BindingSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, OrtTensor | null>, options: object): Record<string, OrtTensor>;
  dispose(): void;
}
interface BindingModule {
  binding: { InferenceSession: new () => BindingSession };
  initOrt(): void;
}

export const ORT_PACKAGE = 'onnxruntime-node';

/** A tiny graph ready to run: what the kernel knows before asking the runtime. */
export interface NativePlan {
  /** Cache key: kernel, variant, shapes, attributes; equal keys must mean equal graphs. */
  key: string;
  /** Builds the ONNX model (called once per key): its bytes and the name of its output. */
  build(): { bytes: Uint8Array; output: string };
  /** Graph input names, in the order the kernel passes the tensors. */
  inputNames: readonly string[];
  outShape: number[];
}

/** Per-kernel call counts and time, for the benchmark's profile and the tests. */
export interface NativeCallStats {
  calls: number;
  ms: number;
  sessions: number;
  sessionMs: number;
}

export class OrtRuntime {
  private readonly sessions = new Map<string, { session: BindingSession; output: string }>();
  private readonly staging: Float32Array[] = [];
  readonly stats = new Map<string, NativeCallStats>();
  /**
   * Channel block of ORT's NCHWc kernels on this CPU (16 with AVX-512, 8 with AVX2), or null
   * when the probe or its self-test conv failed (those graph variants are then never chosen; set
   * by enableNativeKernels, ./index.ts).
   */
  nchwcBlock: number | null = null;

  constructor(
    private readonly mod: BindingModule,
    private readonly Tensor: OrtTensorConstructor,
    readonly threads: number,
    readonly version: string,
  ) {}

  /**
   * Runs the plan's graph on `inputs` (float32 arrays in the graph's input order) and writes its
   * output into `out` (outShape's size). Arrays over an ArrayBuffer go to ORT as they are;
   * arrays over a SharedArrayBuffer (the threaded wasm heap), which the binding rejects, are
   * copied through staging buffers. `statKey` groups the time in `stats`.
   */
  run(plan: NativePlan, inputs: ReadonlyArray<{ data: Float32Array; shape: readonly number[] }>, out: Float32Array, statKey: string): void {
    const t0 = performance.now();
    const { session, output } = this.session(plan, statKey);
    const feeds: Record<string, OrtTensor> = {};
    inputs.forEach((input, i) => {
      let data = input.data;
      if (isShared(data)) {
        data = this.stagingSlot(i, data.length);
        data.set(input.data);
      }
      feeds[plan.inputNames[i]] = new this.Tensor('float32', data, input.shape);
    });
    const target = isShared(out) ? this.stagingSlot(inputs.length, out.length) : out;
    try {
      session.run(feeds, { [output]: new this.Tensor('float32', target, plan.outShape) }, {});
    } catch (e) {
      throw new BackendError(`native kernel ${statKey}: onnxruntime failed on graph ${plan.key}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (target !== out) out.set(target);
    const s = this.stat(statKey);
    s.calls += 1;
    s.ms += performance.now() - t0;
  }

  /** Number of cached sessions (tests check that equal shapes share one). */
  get numSessions(): number {
    return this.sessions.size;
  }

  dispose(): void {
    for (const s of this.sessions.values()) s.session.dispose();
    this.sessions.clear();
    this.staging.length = 0;
  }

  private session(plan: NativePlan, statKey: string): { session: BindingSession; output: string } {
    let s = this.sessions.get(plan.key);
    if (s === undefined) {
      const t0 = performance.now();
      const built = plan.build();
      s = { session: this.load(built.bytes, plan.key), output: built.output };
      this.sessions.set(plan.key, s);
      const st = this.stat(statKey);
      st.sessions += 1;
      st.sessionMs += performance.now() - t0;
    }
    return s;
  }

  load(bytes: Uint8Array, what: string): BindingSession {
    const s = new this.mod.binding.InferenceSession();
    try {
      s.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, sessionOptions(this.threads));
    } catch (e) {
      throw new BackendError(`onnxruntime could not load the native kernel graph ${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return s;
  }

  /**
   * Runs the NCHWc probe graph (ReorderInput of [1, 1, 1, 4], channels last) with an output ORT
   * allocates, and returns the blocked channel count it made: the block size. Null, with the
   * reason, when the runtime lacks the kernels or answers something else.
   */
  probeNchwcBlock(probe: { bytes: Uint8Array; input: string; output: string }): { block: number | null; reason: string } {
    let session: BindingSession | null = null;
    try {
      session = this.load(probe.bytes, 'nchwc-probe');
      const out = session.run({ [probe.input]: new this.Tensor('float32', new Float32Array(4), [1, 1, 1, 4]) }, { [probe.output]: null }, {});
      const dims = out[probe.output]?.dims ?? [];
      const block = Number(dims[1]);
      if (dims.length !== 4 || ![4, 8, 16].includes(block)) return { block: null, reason: `ReorderInput gave dims [${dims.join(', ')}]` };
      return { block, reason: '' };
    } catch (e) {
      return { block: null, reason: e instanceof Error ? e.message : String(e) };
    } finally {
      session?.dispose();
    }
  }

  /** Staging array `i`, of exactly `size` floats, over a buffer that only grows. */
  private stagingSlot(i: number, size: number): Float32Array {
    let buf = this.staging[i];
    if (buf === undefined || buf.length < size) {
      buf = new Float32Array(Math.max(size, Math.ceil((buf?.length ?? 0) * 1.5)));
      this.staging[i] = buf;
    }
    return buf.length === size ? buf : buf.subarray(0, size);
  }

  private stat(key: string): NativeCallStats {
    let s = this.stats.get(key);
    if (s === undefined) {
      s = { calls: 0, ms: 0, sessions: 0, sessionMs: 0 };
      this.stats.set(key, s);
    }
    return s;
  }
}

function isShared(a: Float32Array): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer;
}

function sessionOptions(threads: number): object {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Without the arena a session frees its intermediates after each run: with ~150 sessions
    // (ResNet-18 at two sizes + the extractor) RSS went from 2.4 to 1.8 GiB, same step time.
    enableCpuMemArena: false,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/**
 * Loads onnxruntime-node's synchronous binding and checks it on a 2x3 @ 3x2 MatMul. Throws
 * BackendError with the reason when the package, its native library or the binding's interface
 * is not what this file expects.
 */
export function loadOrtRuntime(threads: number, selfTestGraph: () => Uint8Array): OrtRuntime {
  let mod: BindingModule;
  let Tensor: OrtTensorConstructor;
  let version: string;
  try {
    const main = require.resolve(ORT_PACKAGE);
    mod = require(path.join(path.dirname(main), 'binding.js')) as BindingModule;
    Tensor = (require(ORT_PACKAGE) as { Tensor: OrtTensorConstructor }).Tensor;
    version = (require(path.join(path.dirname(main), '..', 'package.json')) as { version: string }).version;
    if (typeof mod.initOrt !== 'function' || typeof mod.binding?.InferenceSession !== 'function') {
      throw new Error('dist/binding.js does not export initOrt and binding.InferenceSession');
    }
    mod.initOrt();
  } catch (e) {
    throw new BackendError(`${ORT_PACKAGE} failed to load: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const rt = new OrtRuntime(mod, Tensor, threads, version);
  const session = rt.load(selfTestGraph(), 'self-test');
  try {
    const a = Float32Array.of(1, 2, 3, 4, 5, 6);
    const b = Float32Array.of(1, 0, 0, 1, 1, 1);
    const out = new Float32Array(4);
    session.run({ a: new Tensor('float32', a, [2, 3]), b: new Tensor('float32', b, [3, 2]) }, { c: new Tensor('float32', out, [2, 2]) }, {});
    const want = [4, 5, 10, 11];
    if (want.some((v, i) => out[i] !== v)) {
      throw new BackendError(`${ORT_PACKAGE} self-test: MatMul gave [${Array.from(out)}], expected [${want}] (preallocated outputs not written?)`);
    }
  } catch (e) {
    if (e instanceof BackendError) throw e;
    throw new BackendError(`${ORT_PACKAGE} self-test failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  } finally {
    session.dispose();
  }
  return rt;
}
