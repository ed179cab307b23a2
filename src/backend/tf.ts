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
 * The cpu backend prints its banner when `firstUse` is still set at its first write. The engine
 * may build the backend more than once (each initialization calls the registered factory), so
 * the factory itself is wrapped to clear the flag on every instance; tfjs's other warnings stay.
 */
function silenceCpuBanner(): void {
  type Factory = { factory: () => unknown };
  const registry = (tf.engine() as unknown as { registryFactory: Record<string, Factory> }).registryFactory;
  const entry = registry.cpu;
  if (!entry) return;
  const make = entry.factory;
  entry.factory = () => {
    const backend = make() as { firstUse?: boolean };
    if (typeof backend.firstUse === 'boolean') backend.firstUse = false;
    return backend;
  };
  const existing = tf.engine().registry.cpu as unknown as { firstUse?: boolean } | undefined;
  if (existing && typeof existing.firstUse === 'boolean') existing.firstUse = false;
}

export { tf };
