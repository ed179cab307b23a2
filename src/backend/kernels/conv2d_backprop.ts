/**
 * Convolution gradients for the wasm backend, built from its forward Conv2D (XNNPACK).
 *
 * Conv2DBackpropInput (dx, also the forward of conv2dTranspose): wasm has a native kernel, but it
 * is a plain loop about 10x slower than the forward conv. Here, for stride 1, a forward conv of
 * dy padded to the "full" size with the filter flipped in space and its in/out channels swapped:
 *   dx[b, i, j, ci] = sum_{u, v, co} dy[b, i + u - t, j + v - l, co] * w[kh-1-u, kw-1-v, ci, co]
 * with t = kh-1-padTop, l = kw-1-padLeft; for stride s, s*s such convs, one per output phase,
 * interleaved (backpropInputSubPixel).
 *
 * Conv2DBackpropFilter (dw): missing on wasm. The filter gradient is itself a convolution once
 * batch and channels trade places:
 *   dw[u, v, ci, co] = sum_{b, oh, ow} xPad[b, oh*sh + u, ow*sw + v, ci] * dy[b, oh, ow, co]
 * = conv of x^T [ci, H, W, B] (batch = ci, channels = B) with dy^T [oh, ow, B, co] as the filter,
 * stride 1 and *dilation* (sh, sw); output [ci, kh, kw, co], transposed to [kh, kw, ci, co].
 *
 * Both take NCHW by transposing to NHWC (the wasm Conv2D is NHWC only). Cost, measured on 2
 * threads, batch 8: dw 1.3-4.5x and dx 1.2-2x the forward conv (native dx: 10-20x).
 */
import { tf } from '../tf';
import { as4, compositeKernel, KernelScope, pair, PadAttr, TensorInfo } from './scope';

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
  const g: TensorInfo = nchw ? scope.transpose(dy, [0, 2, 3, 1]) : dy; // [B, oh, ow, co]
  const dx = info.strideHeight === 1 && info.strideWidth === 1
    ? backpropInputStride1(scope, g, filter, info)
    : backpropInputSubPixel(scope, g, filter, info);
  return nchw ? scope.transpose(dx, [0, 3, 1, 2]) : dx;
});

/** Stride 1: one "full" conv of dy with the flipped, channel-swapped filter. */
function backpropInputStride1(scope: KernelScope, dy: TensorInfo, filter: TensorInfo,
  info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;
  const t = kh - 1 - info.padInfo.top, l = kw - 1 - info.padInfo.left;
  const p = scope.cropForConv(dy, t, H + kh - 1 - oh - t, l, W + kw - 1 - ow - l);
  const wFlip = scope.flipSwapFilter(filter); // [kh, kw, co, ci]
  return scope.run(tf.Conv2D, { x: p.x, filter: wFlip }, {
    strides: [1, 1], pad: p.pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined,
  }); // [B, H, W, ci]
}

/**
 * Stride s > 1, by phases: the rows i of dx with (i + padTop) mod s = a only see the filter rows
 * a, a + s, a + 2s, ... So dx is s*s small stride-1 convs of dy, one per phase (a, b), each with
 * its sub-filter w[a::s, b::s] flipped and channel-swapped, interleaved back into rows q*s + a
 * and columns r*s + b, and cropped by the padding. Same work as the forward conv; zero-inserting
 * dy and running one conv costs s*s times more.
 */
function backpropInputSubPixel(scope: KernelScope, dy: TensorInfo, filter: TensorInfo,
  info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: ci } = info;
  const { outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const Q = Math.ceil((top + H) / sh), R = Math.ceil((left + W) / sw); // phase grid covering the padded input
  const rowsOfPhases: TensorInfo[] = [];
  for (let a = 0; a < sh; a++) {
    const cols: TensorInfo[] = [];
    for (let b = 0; b < sw; b++) {
      const ma = a < kh ? Math.ceil((kh - a) / sh) : 0, mb = b < kw ? Math.ceil((kw - b) / sw) : 0;
      let phase: TensorInfo;
      if (ma === 0 || mb === 0) {
        phase = scope.run(tf.Fill, {}, { shape: [B, Q, R, ci], value: 0, dtype: 'float32' });
      } else {
        const wSub = scope.flipSwapFilter(filter, a, b, sh, sw); // w[a::sh, b::sw] flipped: [ma, mb, co, ci]
        const p = scope.cropForConv(dy, ma - 1, Q - oh, mb - 1, R - ow);
        phase = scope.run(tf.Conv2D, { x: p.x, filter: wSub }, {
          strides: [1, 1], pad: p.pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined,
        }); // [B, Q, R, ci]
      }
      cols.push(scope.reshape(phase, [B, Q, 1, R, 1, ci]));
    }
    rowsOfPhases.push(sw === 1 ? cols[0] : scope.concat(cols, 4));
  }
  const all = sh === 1 ? rowsOfPhases[0] : scope.concat(rowsOfPhases, 2);
  const interleaved = scope.reshape(all, [B, Q * sh, R * sw, ci]); // row q*sh + a, column r*sw + b
  return scope.slice(interleaved, [0, top, left, 0], [B, H, W, ci]);
}

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
