/**
 * The error hierarchy. Every error the user can cause carries an exit code and a message that
 * names the file / line / field, what was expected and what was found.
 * Exit codes: 2 = usage or configuration, 1 = runtime (data, checkpoint, export, ...).
 */
export class HoiError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad command line (unknown flag value, missing argument). Exit code 2. */
export class UsageError extends HoiError {
  override readonly exitCode = 2;
}

/** Bad configuration file or --set override: unknown key, wrong type, out of range. Exit code 2. */
export class ConfigError extends HoiError {
  override readonly exitCode = 2;
}

/** Bad input data: missing image, malformed line, box outside the image, unknown category. */
export class DataError extends HoiError {}

/** A checkpoint that is missing, incomplete, of another format version or another model. */
export class CheckpointError extends HoiError {}

/** An ONNX export that fails or does not match the training framework. */
export class ExportError extends HoiError {}

/** A tensor whose shape does not fit what an operation expects. */
export class ShapeError extends HoiError {}

/** A backend that was asked for but cannot be loaded. */
export class BackendError extends HoiError {}

/** Formats `file:line` (line 1-based) or `file[index]` for messages that point into inputs. */
export function where(file: string, line?: number, field?: string): string {
  let s = file;
  if (line !== undefined) s += `:${line}`;
  if (field !== undefined) s += ` field '${field}'`;
  return s;
}
