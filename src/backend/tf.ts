/**
 * The one import of TensorFlow.js for the whole code base: `import { tf } from '../backend/tf'`.
 *
 * The CommonJS build of @tensorflow/tfjs-core registers no gradient functions; the union package
 * @tensorflow/tfjs registers all of them on the same engine (DESIGN, "Facts measured").
 *
 * Importing this file also:
 * - silences the cpu backend's "Hi, looks like you are running TensorFlow.js in Node.js..."
 *   banner, which it prints through console.warn on its first tensor write;
 * - installs our fixes of tfjs gradient functions (./gradients), so that every backend, the cpu
 *   reference included, differentiates the same way.
 *
 * The wasm backend package is *not* imported here: it registers itself with a higher priority
 * than cpu and initializes asynchronously, which would break synchronous tf use before
 * `initBackend()`. `initBackend({ name: 'wasm' })` loads it.
 */
import * as tf from '@tensorflow/tfjs';
import { installGradientFixes } from './gradients';

silenceCpuBanner();
installGradientFixes();

/**
 * The cpu backend prints its banner when `firstUse` is still set at the first write; creating
 * the backend now (cheap, synchronous) and clearing the flag keeps it quiet, without turning off
 * tfjs's other warnings the way `PROD` mode would.
 */
function silenceCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu !== null && typeof cpu.firstUse === 'boolean') cpu.firstUse = false;
}

export { tf };
