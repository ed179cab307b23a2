/**
 * Identity without a copy, as the cpu and webgl backends do it: the output shares the input's
 * data and the backend counts references. tfjs tensors are immutable (Variable.assign swaps the
 * data id), so sharing is safe. The wasm kernel copies, and the engine runs Identity to clone every
 * tensor it saves for the backward pass: about 3% of a conv-net training step.
 */
import { tf } from '../tf';
import { WASM } from './scope';

export const identityConfig: tf.KernelConfig = {
  kernelName: tf.Identity,
  backendName: WASM,
  kernelFunc: ({ inputs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') throw new Error('wasm Identity: string tensors are not supported');
    (backend as tf.KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  },
};
