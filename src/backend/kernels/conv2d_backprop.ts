/**
 * Convolution gradients for the wasm backend, built from its forward Conv2D (XNNPACK).
 *
 * Conv2DBackpropInput (dx, also the forward of conv2dTranspose): wasm has a native kernel, but it
 * is a plain loop about 10x slower than the forward conv. Here: dilate dy by the stride
 * (zeros between rows / columns), pad it to the "full" size, and run a forward conv with the
 * filter flipped in space and its in/out channels swapped:
 *   dx[b, i, j, ci] = sum_{u, v, co} dyDil[b, i + u - t, j + v - l, co] * w[kh-1-u, kw-1-v, ci, co]
 * with t = kh-1-padTop, l = kw-1-padLeft.
 *
 * Conv2DBackpropFilter (dw): missing on wasm. The filter gradient is itself a convolution once
 * batch and channels trade places:
 *   dw[u, v, ci, co] = sum_{b, oh, ow} xPad[b, oh*sh + u, ow*sw + v, ci] * dy[b, oh, ow, co]
 * = conv of x^T [ci, H, W, B] (batch = ci, channels = B) with dy^T [oh, ow, B, co] as the filter,
 * stride 1 and *dilation* (sh, sw); output [ci, kh, kw, co], transposed to [kh, kw, ci, co].
 *
 * Both take NCHW by transposing to NHWC (the wasm Conv2D is NHWC only). Cost, measured on 2
 * threads, batch 8: dw 1.3-4.5x and dx about 2x the forward conv (native dx: 10-20x).
 */
import { tf } from '../tf';
import { as4, compositeKernel, pair, PadAttr, TensorInfo } from './scope';

type DimRounding = 'floor' | 'round' | 'ceil' | undefined;

export const conv2DBackpropInputConfig = compositeKernel(tf.Conv2DBackpropInput, (scope, inputs, attrs) => {
  const { dy, filter } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as {
    strides: number | [number, number]; pad: PadAttr; dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode: DimRounding; inputShape: number[];
  };
  const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC');
  const info = tf.backend_util.computeConv2DInfo(
    as4(inputShape), as4(filter.shape), strides, 1, pad, dimRoundingMode, false, fmt);
  const nchw = info.dataFormat === 'channelsFirst';
  const [sh, sw] = pair(strides);
  const { inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;

  const g0: TensorInfo = nchw ? scope.transpose(dy, [0, 2, 3, 1]) : dy; // [B, oh, ow, co]
  const g = scope.dilateRowsCols(g0, sh, sw); // [B, oh*sh, ow*sw, co]
  const t = kh - 1 - info.padInfo.top, l = kw - 1 - info.padInfo.left;
  const p = scope.cropForConv(g, t, H + kh - 1 - oh * sh - t, l, W + kw - 1 - ow * sw - l);
  const wFlip = scope.transpose(scope.reverse(filter, [0, 1]), [0, 1, 3, 2]); // [kh, kw, co, ci]
  const dx = scope.run(tf.Conv2D, { x: p.x, filter: wFlip }, {
    strides: [1, 1], pad: p.pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined,
  }); // [B, H, W, ci]
  return nchw ? scope.transpose(dx, [0, 3, 1, 2]) : dx;
});

export const conv2DBackpropFilterConfig = compositeKernel(tf.Conv2DBackpropFilter, (scope, inputs, attrs) => {
  const { x, dy } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as {
    strides: number | [number, number]; pad: PadAttr; dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode: DimRounding; filterShape: number[];
  };
  const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC');
  const info = tf.backend_util.computeConv2DInfo(
    as4(x.shape), as4(filterShape), strides, 1, pad, dimRoundingMode, false, fmt);
  const nchw = info.dataFormat === 'channelsFirst';
  const [sh, sw] = pair(strides);
  const { inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;
  const { top, left } = info.padInfo;

  const xT = scope.transpose(x, nchw ? [1, 2, 3, 0] : [3, 1, 2, 0]); // [ci, H, W, B]
  const needH = (oh - 1) * sh + kh, needW = (ow - 1) * sw + kw;
  const p = scope.cropForConv(xT, top, needH - H - top, left, needW - W - left);
  const f = scope.transpose(dy, nchw ? [2, 3, 0, 1] : [1, 2, 0, 3]); // [oh, ow, B, co]
  const out = scope.run(tf.Conv2D, { x: p.x, filter: f }, {
    strides: [1, 1], pad: p.pad, dataFormat: 'NHWC', dilations: [sh, sw], dimRoundingMode: undefined,
  }); // [ci, kh, kw, co]
  return scope.transpose(out, [1, 2, 0, 3]); // [kh, kw, ci, co]
});
