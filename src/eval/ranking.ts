/**
 * Image-level ranking metrics for the anomaly score. Definitions follow scikit-learn
 * (`roc_auc_score`, `average_precision_score`), so numbers can be re-scored by outside tools.
 */

/**
 * ROC AUC = probability that a random positive scores above a random negative, ties counting
 * one half (the Mann-Whitney U statistic over average ranks). NaN when a class is absent.
 */
export function rocAuc(scores: readonly number[], labels: readonly (0 | 1 | boolean)[]): number {
  checkLengths(scores, labels);
  const order = scores.map((s, i) => i).sort((a, b) => scores[a] - scores[b]);
  let positives = 0;
  let rankSumPositives = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && scores[order[j + 1]] === scores[order[i]]) j++;
    const averageRank = (i + j) / 2 + 1; // ranks are 1-based
    for (let k = i; k <= j; k++) {
      if (labels[order[k]]) {
        positives++;
        rankSumPositives += averageRank;
      }
    }
    i = j + 1;
  }
  const negatives = scores.length - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSumPositives - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * Average precision = sum over distinct score thresholds (descending) of
 * (recall_n - recall_{n-1}) * precision_n: the step-wise area, no interpolation.
 * NaN when there is no positive.
 */
export function averagePrecision(scores: readonly number[], labels: readonly (0 | 1 | boolean)[]): number {
  checkLengths(scores, labels);
  const order = scores.map((s, i) => i).sort((a, b) => scores[b] - scores[a]);
  const positives = labels.filter(Boolean).length;
  if (positives === 0) return NaN;
  let tp = 0;
  let fp = 0;
  let ap = 0;
  let lastRecall = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && scores[order[j + 1]] === scores[order[i]]) j++;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]]) tp++;
      else fp++;
    }
    const recall = tp / positives;
    ap += (recall - lastRecall) * (tp / (tp + fp));
    lastRecall = recall;
    i = j + 1;
  }
  return ap;
}

/**
 * The decision threshold on the score that maximizes Youden's J = TPR - FPR ("anomalous when
 * score >= threshold"), over the distinct scores; ties go to the higher threshold (fewer false
 * alarms). Returns the threshold with its TPR and FPR; NaN threshold when a class is absent.
 */
export function youdenThreshold(scores: readonly number[], labels: readonly (0 | 1 | boolean)[]): { threshold: number; tpr: number; fpr: number } {
  checkLengths(scores, labels);
  const positives = labels.filter(Boolean).length;
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) return { threshold: NaN, tpr: NaN, fpr: NaN };
  const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let tp = 0, fp = 0;
  let best = { threshold: NaN, tpr: 0, fpr: 0, j: -Infinity };
  for (let i = 0; i < order.length; ) {
    let k = i;
    while (k + 1 < order.length && scores[order[k + 1]] === scores[order[i]]) k++;
    for (let m = i; m <= k; m++) {
      if (labels[order[m]]) tp++;
      else fp++;
    }
    const tpr = tp / positives, fpr = fp / negatives;
    if (tpr - fpr > best.j) best = { threshold: scores[order[i]], tpr, fpr, j: tpr - fpr };
    i = k + 1;
  }
  return { threshold: best.threshold, tpr: best.tpr, fpr: best.fpr };
}

function checkLengths(scores: readonly number[], labels: readonly unknown[]): void {
  if (scores.length !== labels.length) {
    throw new Error(`scores (${scores.length}) and labels (${labels.length}) differ in length`);
  }
}
