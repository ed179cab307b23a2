/**
 * Depthwise convolution gradients for the wasm backend (both missing there), built from its
 * forward DepthwiseConv2dNative. Filter [kh, kw, C, m]; output channel c*m + q.
 *
 * Input gradient: as for Conv2D, a depthwise conv of the stride-dilated, fully padded dy with the
 * spatially flipped filter seen as multiplier 1 ([kh, kw, C*m, 1]), then a sum over the m
 * multiplier channels of each input channel:
 *   dx[b, i, j, c] = sum_q sum_{u, v} dyDil[b, i + u*dh - t, j + v*dw - l, c*m + q] * w[kh-1-u, kw-1-v, c, q]
 *
 * Filter gradient: for each (b, c), the correlation of the padded input plane x[b, :, :, c] with
 * the dy planes of its m outputs. That is one depthwise conv with batch and channels merged:
 * input [1, H, W, B*C], filter dy -> [oh, ow, B*C, m], stride = forward dilation, dilation =
 * forward stride; output [1, kh, kw, B*C*m], summed over B. Measured 2-7x the forward conv,
 * against 12-190x for a loop of strided slices times dy.
 */
import { tf } from '../tf';
import { as4, compositeKernel, pair, PadAttr } from './scope';

type DimRounding = 'floor' | 'round' | 'ceil' | undefined;
interface DepthwiseAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: PadAttr;
  dimRoundingMode: DimRounding;
}

export const depthwiseBackpropInputConfig = compositeKernel(
  tf.DepthwiseConv2dNativeBackpropInput, (scope, inputs, attrs) => {
    const { dy, filter } = inputs;
    const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as DepthwiseAttrs & {
      inputShape: number[];
    };
    const info = tf.backend_util.computeConv2DInfo(
      as4(inputShape), as4(filter.shape), strides, dilations ?? 1, pad, dimRoundingMode, true);
    const [sh, sw] = pair(strides);
    const [dh, dw] = pair(dilations);
    const [kh, kw, C, m] = filter.shape;
    const { batchSize: B, inHeight: H, inWidth: W, outHeight: oh, outWidth: ow } = info;
    const kEffH = info.effectiveFilterHeight, kEffW = info.effectiveFilterWidth;

    const g = scope.dilateRowsCols(dy, sh, sw); // [B, oh*sh, ow*sw, C*m]
    const t = kEffH - 1 - info.padInfo.top, l = kEffW - 1 - info.padInfo.left;
    const p = scope.cropForConv(g, t, H + kEffH - 1 - oh * sh - t, l, W + kEffW - 1 - ow * sw - l);
    const wFlip = scope.reshape(scope.reverse(filter, [0, 1]), [kh, kw, C * m, 1]);
    const out = scope.run(tf.DepthwiseConv2dNative, { x: p.x, filter: wFlip }, {
      strides: [1, 1], dilations: [dh, dw], pad: p.pad, dimRoundingMode: undefined,
    }); // [B, H, W, C*m]
    if (m === 1) return out;
    return scope.sum(scope.reshape(out, [B, H, W, C, m]), [4]); // [B, H, W, C]
  });

export const depthwiseBackpropFilterConfig = compositeKernel(
  tf.DepthwiseConv2dNativeBackpropFilter, (scope, inputs, attrs) => {
    const { x, dy } = inputs;
    const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs as unknown as DepthwiseAttrs & {
      filterShape: number[];
    };
    const info = tf.backend_util.computeConv2DInfo(
      as4(x.shape), as4(filterShape), strides, dilations ?? 1, pad, dimRoundingMode, true);
    const [sh, sw] = pair(strides);
    const [dh, dw] = pair(dilations);
    const [kh, kw, C, m] = filterShape;
    const { batchSize: B, inHeight: H, inWidth: W, outHeight: oh, outWidth: ow } = info;
    const { top, left } = info.padInfo;

    const xT = B === 1 ? x : scope.reshape(scope.transpose(x, [1, 2, 0, 3]), [1, H, W, B * C]); // [1, H, W, B*C]
    const dyT = B === 1 ? dy : scope.transpose(dy, [1, 2, 0, 3]); // [oh, ow, B, C*m]
    const f = scope.reshape(dyT, [oh, ow, B * C, m]);
    const needH = (oh - 1) * sh + (kh - 1) * dh + 1, needW = (ow - 1) * sw + (kw - 1) * dw + 1;
    const p = scope.cropForConv(xT, top, needH - H - top, left, needW - W - left);
    const out = scope.run(tf.DepthwiseConv2dNative, { x: p.x, filter: f }, {
      strides: [dh, dw], dilations: [sh, sw], pad: p.pad, dimRoundingMode: undefined,
    }); // [1, kh, kw, B*C*m]
    if (B === 1) return scope.reshape(out, [kh, kw, C, m]);
    return scope.sum(scope.reshape(out, [kh, kw, B, C, m]), [2]); // [kh, kw, C, m]
  });
