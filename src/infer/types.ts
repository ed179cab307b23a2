/**
 * The result of explaining one image: what `explain --json` prints per image, what the annotated
 * PNG and the HTML page show. Boxes are [x1, y1, x2, y2] in pixels of the image as displayed
 * (EXIF orientation applied), whatever its size.
 */
import type { Box, Severity } from '../data/record';

export type Verdict = 'anomalous' | 'normal';

export interface TripletResult {
  subject: string;
  subject_box: Box;
  verb: string;
  object: string;
  object_box: Box;
  /** interaction x subject x object confidence. */
  score: number;
  /** Taxonomy anomaly type of (verb, object), null for a normal pair. */
  anomaly: string | null;
  severity: Severity | null;
  /** score x severity weight: this triplet's contribution to the image's anomaly score. */
  anomaly_score: number;
}

export interface StageTimings {
  preprocess: number;
  extractor: number;
  decode: number;
  explanation: number;
  /** Annotated PNG (0 when none is written). */
  render: number;
  /** Wall time of the image, all stages. */
  total: number;
}

export interface ImageResult {
  file: string;
  width: number;
  height: number;
  verdict: Verdict;
  /** Max over triplets of anomaly_score; 0 without triplets. */
  anomaly_score: number;
  threshold: number;
  /** Score desc (the decoder's order); at most the run's max_triplets. */
  triplets: TripletResult[];
  /** Triplets decoded before the max_triplets cut. */
  num_triplets: number;
  /** The explainer's text, null when the export has no explainer. */
  explanation: string | null;
  /** The annotated PNG, when written. */
  annotated: string | null;
  timing_ms: StageTimings;
}

export interface ImageFailure {
  file: string;
  /** One line. */
  error: string;
}
