import * as fs from 'node:fs';
import * as path from 'node:path';

/** Writes a file through a temporary sibling and a rename, so readers never see half a file. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** A temporary folder next to `finalDir` (same file system, so the final rename is atomic). */
export function makeStagingDir(finalDir: string): string {
  const parent = path.dirname(path.resolve(finalDir));
  fs.mkdirSync(parent, { recursive: true });
  return fs.mkdtempSync(path.join(parent, `.${path.basename(finalDir)}.tmp-`));
}

/**
 * Moves a finished staging folder to `finalDir`. An existing `finalDir` is replaced only when
 * `overwrite` is set; it is first moved aside and removed only after the rename succeeded.
 */
export function commitStagingDir(staging: string, finalDir: string, overwrite: boolean): void {
  if (fs.existsSync(finalDir)) {
    if (!overwrite) throw new Error(`${finalDir} already exists (use --overwrite to replace it)`);
    const aside = `${staging}.old`;
    fs.renameSync(finalDir, aside);
    fs.renameSync(staging, finalDir);
    fs.rmSync(aside, { recursive: true, force: true });
  } else {
    fs.renameSync(staging, finalDir);
  }
}
