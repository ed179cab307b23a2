/**
 * The IAD-HOI record: one image per JSONL line (see DESIGN "Data").
 * Boxes are absolute pixels [x1, y1, x2, y2] on continuous coordinates.
 */
export type Box = [number, number, number, number];
export type Severity = 'low' | 'medium' | 'high';
export type Label = 'normal' | 'anomalous';

export interface HoiObject {
  id: number;
  category: string;
  box: Box;
}

export interface Hoi {
  /** `id` of the subject (a person). */
  subject: number;
  /** `id` of the object (a thing, or another person). */
  object: number;
  verb: string;
  /** Anomaly type from the taxonomy, or null for a normal interaction. */
  anomaly: string | null;
  severity: Severity | null;
}

export interface Turn {
  from: 'human' | 'gpt';
  value: string;
}

export interface HoiRecord {
  id: string;
  /** Path relative to the dataset folder, e.g. `images/000123.png`. */
  image: string;
  width: number;
  height: number;
  objects: HoiObject[];
  hois: Hoi[];
  /** `anomalous` exactly when some HOI has an anomaly. */
  label: Label;
  /** LLaVA-compatible instruction/response turns. */
  conversations: Turn[];
}

export const SPLITS = ['train', 'val', 'test'] as const;
export type Split = (typeof SPLITS)[number];

/** Format version of a dataset folder's manifest.json; bump on incompatible changes. */
export const DATASET_FORMAT_VERSION = 1;

export function boxArea(b: Box): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

/** IoU on continuous coordinates (no +1), as the HICO-DET protocol computes it. */
export function boxIou(a: Box, b: Box): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  return inter / (boxArea(a) + boxArea(b) - inter);
}
