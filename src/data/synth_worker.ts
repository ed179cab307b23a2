/**
 * Worker thread for synth rendering: draws scenes by index, writes their PNGs and returns the
 * annotations. A scene depends only on (seed, index, options), so the order in which workers
 * finish does not change a byte of the output.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { encodePng } from './png';
import { generateScene, type SynthScene } from './synth';
import type { SynthOptions } from './synth/options';

export interface SynthJob {
  seed: number;
  options: SynthOptions;
  imagesDir: string;
  indices: number[];
}

export type RenderedScene = Omit<SynthScene, 'pixels'> & { index: number };

export function imageFileName(index: number): string {
  return `${String(index).padStart(6, '0')}.png`;
}

/** Renders and writes the scenes of one job (used in-process and by the worker). */
export function renderJob(job: SynthJob): RenderedScene[] {
  return job.indices.map((index) => {
    const scene = generateScene(job.seed, index, job.options);
    fs.writeFileSync(path.join(job.imagesDir, imageFileName(index)), encodePng(scene.pixels, scene.width, scene.height));
    const { pixels: _pixels, ...meta } = scene;
    return { ...meta, index };
  });
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (job: SynthJob) => {
    try {
      port.postMessage({ ok: true, scenes: renderJob(job) });
    } catch (err) {
      port.postMessage({ ok: false, error: (err as Error).stack ?? String(err) });
    }
  });
}
