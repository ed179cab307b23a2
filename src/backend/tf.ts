/**
 * The one import of TensorFlow.js for the whole code base: `import { tf } from '../backend/tf'`.
 *
 * The CommonJS build of @tensorflow/tfjs-core registers no gradient functions; the union package
 * @tensorflow/tfjs registers all of them on the same engine (DESIGN, "Facts measured").
 */
import * as tf from '@tensorflow/tfjs';

export { tf };
