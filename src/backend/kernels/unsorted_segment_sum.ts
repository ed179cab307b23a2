/**
 * UnsortedSegmentSum for the wasm backend (missing there; it is the gradient of gather, so every
 * embedding needs it), as one ScatterNd: ScatterNd adds the updates of repeated indices.
 *   out[s, ...] = sum_{n : ids[n] == s} x[n, ...]
 *
 * Ids outside [0, numSegments) are dropped, as TensorFlow does: they are sent to an extra
 * segment that is cut off. Reading the ids to check them is cheap (one int32 per row) and keeps
 * an out-of-range id from writing outside the output on the wasm heap.
 */
import { tf } from '../tf';
import { compositeKernel } from './scope';

export const unsortedSegmentSumConfig = compositeKernel(tf.UnsortedSegmentSum, (scope, inputs, attrs) => {
  const { x, segmentIds } = inputs;
  const { numSegments } = attrs as { numSegments: number };
  const idRank = segmentIds.shape.length;
  const n = segmentIds.shape.reduce((p, d) => p * d, 1);
  const rest = x.shape.slice(idRank);
  const updates = scope.reshape(x, [n, ...rest]);

  const ids = scope.backend.readSync(segmentIds.dataId) as ArrayLike<number>;
  let inRange = true;
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < numSegments)) { inRange = false; break; }
  }
  if (inRange) {
    const indices = scope.reshape(segmentIds, [n, 1]);
    return scope.run(tf.ScatterNd, { indices, updates }, { shape: [numSegments, ...rest] });
  }
  const mapped = Int32Array.from(ids, (id) => (id >= 0 && id < numSegments ? id : numSegments));
  const indices = scope.constant([n, 1], 'int32', mapped);
  const full = scope.run(tf.ScatterNd, { indices, updates }, { shape: [numSegments + 1, ...rest] });
  return scope.slice(full, rest.map(() => 0).concat([0]), [numSegments, ...rest]);
});
