/**
 * Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_` (norm_type 2):
 *   norm  = || [ ||g_1||, ||g_2||, ... ] ||      (the 2-norm of the per-tensor 2-norms)
 *   coef  = maxNorm / (norm + 1e-6)
 *   g_i  <- g_i * coef   when coef < 1
 */
import { tf } from '../backend/tf';

export interface ClipResult {
  /** The clipped gradients (the inputs themselves when no scaling was needed). */
  grads: Map<string, tf.Tensor>;
  /** Global norm before clipping; NaN or Infinity when some gradient is not finite. */
  norm: number;
  /** The factor applied (1 when not clipped). */
  scale: number;
}

/**
 * Clips `grads` to global norm `maxNorm`. Ownership: the inputs are consumed. When scaling
 * happens, each input is disposed and replaced by a new tensor; otherwise the same tensors come
 * back. Either way the caller disposes the returned tensors (and only those).
 *
 * A non-finite norm leaves the gradients as they are (PyTorch would multiply by NaN or 0);
 * the caller decides what to do, e.g. fail the step with its number.
 */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor> | tf.NamedTensorMap, maxNorm: number): ClipResult {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new RangeError(`clipByGlobalNorm: maxNorm must be a finite number > 0, got ${maxNorm}`);
  const entries: Array<[string, tf.Tensor]> = grads instanceof Map ? [...grads.entries()] : Object.entries(grads);
  const present = entries.filter(([, g]) => g !== null && g !== undefined);
  if (present.length === 0) return { grads: new Map(), norm: 0, scale: 1 };
  const normT = tf.tidy(() => tf.stack(present.map(([, g]) => tf.norm(g.dtype === 'float32' ? g : g.cast('float32')))).norm());
  const norm = normT.dataSync()[0];
  normT.dispose();
  const coef = maxNorm / (norm + 1e-6);
  if (!Number.isFinite(norm) || coef >= 1) return { grads: new Map(present), norm, scale: 1 };
  const out = new Map<string, tf.Tensor>();
  for (const [name, g] of present) {
    out.set(name, tf.tidy(() => g.mul(coef)));
    g.dispose();
  }
  return { grads: out, norm, scale: coef };
}
