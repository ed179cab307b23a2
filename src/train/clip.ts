/**
 * Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_` (norm_type 2):
 *   norm  = sqrt(sum over every gradient value of g^2)   (= the 2-norm of the per-tensor 2-norms)
 *   coef  = maxNorm / (norm + 1e-6)
 *   g_i  <- g_i * coef   when coef < 1
 * The training loops do not materialize the scaled gradients: AdamW reads them times `coef`
 * (`AdamW.step(grads, lr, coef)`); the norm is one kernel call on wasm (`globalNorm`).
 */
import { globalNorm } from '../backend/kernels/optimizer_step';

export { globalNorm };

/**
 * The factor to multiply the gradients by, for a global norm `norm` and the limit `maxNorm`:
 * maxNorm / (norm + 1e-6) when that is below 1, else 1. A non-finite norm gives 1 (PyTorch would
 * multiply by NaN or 0); the caller decides what to do, e.g. fail the step with its number.
 */
export function clipCoefficient(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new RangeError(`clipCoefficient: maxNorm must be a finite number > 0, got ${maxNorm}`);
  const coef = maxNorm / (norm + 1e-6);
  return Number.isFinite(norm) && coef < 1 ? coef : 1;
}
