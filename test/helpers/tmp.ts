import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';

/** A fresh temporary folder, removed by the returned cleanup function. */
export function tmpDir(prefix = 'hoi2anomaly-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes a solid-colour RGB PNG of the given size. */
export function writePng(file: string, width: number, height: number, rgb: [number, number, number] = [90, 120, 150]): void {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    png.data[4 * i] = rgb[0];
    png.data[4 * i + 1] = rgb[1];
    png.data[4 * i + 2] = rgb[2];
    png.data[4 * i + 3] = 255;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, PNG.sync.write(png));
}
