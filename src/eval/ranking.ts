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

function checkLengths(scores: readonly number[], labels: readonly unknown[]): void {
  if (scores.length !== labels.length) {
    throw new Error(`scores (${scores.length}) and labels (${labels.length}) differ in length`);
  }
}
