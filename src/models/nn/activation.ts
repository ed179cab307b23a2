/**
 * Activations: ReLU, Sigmoid and GELU (tanh approximation).
 *
 * GELU: opset 17 has no Gelu op (it arrives in opset 20), so the export decomposes it. We use the
 * tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), which is GPT-2's `gelu_new`
 * (so GPT-2 checkpoints keep their behaviour), and compute it with the same sequence of elementwise
 * ops in tfjs and in ONNX (x^3 as x*x*x, not Pow) so both round alike.
 */
import { tf } from '../../backend/tf';
import type { OnnxGraph, OnnxOps } from '../../export/onnx_graph';
import { Module } from './module';

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_K = 0.044715;

/** GELU, tanh approximation (tfjs). */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => {
    const x3 = tf.mul(tf.mul(x, x), x);
    const inner = tf.mul(tf.add(x, tf.mul(x3, GELU_K)), GELU_C);
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1)) as T;
  });
}

/** GELU, tanh approximation, as ONNX nodes (the same op order as `gelu`). */
export function geluOnnx(o: OnnxOps, x: string): string {
  const g = o.g;
  const x3 = o.Mul(o.Mul(x, x), x);
  const inner = o.Mul(o.Add(x, o.Mul(x3, g.constant([GELU_K], 'float32', []))), g.constant([GELU_C], 'float32', []));
  return o.Mul(o.Mul(x, g.constant([0.5], 'float32', [])), o.Add(o.Tanh(inner), g.constant([1], 'float32', [])));
}

export class ReLU extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.relu(x);
  }
  toOnnx(g: OnnxGraph, x: string): string {
    return this.onnxOps(g).Relu(x);
  }
}

export class Sigmoid extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.sigmoid(x);
  }
  toOnnx(g: OnnxGraph, x: string): string {
    return this.onnxOps(g).Sigmoid(x);
  }
}

export class GELU extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return gelu(x);
  }
  toOnnx(g: OnnxGraph, x: string): string {
    return geluOnnx(this.onnxOps(g), x);
  }
}
