/**
 * Entry script of the wasm backend's pthread workers in Node (see ./wasm_threads.ts).
 *
 * tfjs-backend-wasm hands emscripten its worker script as a Blob URL, and the main script as a
 * Blob; Node's worker_threads can load neither. This file is the worker script instead: it
 * points the worker's `URL.createObjectURL` (which the emscripten worker calls on the main-script
 * Blob before `importScripts`) at the threaded-SIMD main script on disk, then runs the emscripten
 * worker code that tfjs ships as a string.
 *
 * Started with `workerData.preflight`, it only checks that both scripts load and compile, and
 * answers `{ ok, error? }`: a worker that fails inside emscripten takes the process down, so
 * the loader checks first.
 */
import * as fs from 'node:fs';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

const PKG = '@tensorflow/tfjs-backend-wasm/wasm-out/';
const MAIN_SCRIPT = `${PKG}tfjs-backend-wasm-threaded-simd.js`;
const WORKER_SCRIPT = `${PKG}tfjs-backend-wasm-threaded-simd.worker.js`;

type WorkerBody = (req: NodeJS.Require, filename: string, dirname: string) => void;

function prepare(): { mainScript: string; body: WorkerBody } {
  const mainScript = require.resolve(MAIN_SCRIPT);
  const contents = (require(WORKER_SCRIPT) as { wasmWorkerContents: string }).wasmWorkerContents;
  // The contents come from a template literal, so "\n" inside its string literals became real
  // newlines; tfjs escapes them back the same way before making its Blob.
  const body = new Function('require', '__filename', '__dirname', contents.replace(/\n/g, '\\n')) as WorkerBody;
  return { mainScript, body };
}

function preflight(): { ok: boolean; error?: string } {
  try {
    const { mainScript } = prepare();
    // Compile (not run) the main script the way the worker's importScripts would.
    new Function(fs.readFileSync(mainScript, 'utf8'));
    return { ok: true };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

if (!isMainThread && parentPort !== null) {
  if ((workerData as { preflight?: boolean } | null)?.preflight === true) {
    parentPort.postMessage(preflight());
  } else {
    const { mainScript, body } = prepare();
    URL.createObjectURL = () => mainScript;
    URL.revokeObjectURL = () => undefined;
    body(require, __filename, __dirname);
  }
}
