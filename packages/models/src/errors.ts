/**
 * The closed set of errors `@kiln/models` throws. Each has a `name`, typed fields and a message
 * that says what to do next; the CLI prints the message and exits non-zero.
 */

/** One problem in the manifest, the lockfile or a command's input. */
export interface ManifestIssue {
  /** Dotted key, e.g. `models.sam3.source`. */
  readonly key: string;
  /** The offending value (`undefined` when missing). */
  readonly value: unknown;
  /** What is allowed, e.g. `must be hf://org/repo[@revision][/glob], https://…, s3://bucket/key, file:PATH or manual`. */
  readonly rule: string;
}

/** The `models` section of the config, or `kiln.lock`, cannot be used. Lists every issue. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  readonly issues: readonly ManifestIssue[];

  constructor(issues: readonly ManifestIssue[], options?: { cause?: unknown; message?: string; file?: string }) {
    const where = options?.file === undefined ? 'model manifest' : options.file;
    super(options?.message ?? `invalid ${where}:\n${issues.map((i) => `  - ${formatManifestIssue(i)}`).join('\n')}`, { cause: options?.cause });
    this.issues = issues;
  }
}

/** One issue as a line of text. */
export function formatManifestIssue(issue: ManifestIssue): string {
  if (issue.value === undefined) return `${issue.key}: is required: ${issue.rule}`;
  let text: string;
  try {
    text = JSON.stringify(issue.value) ?? String(issue.value);
  } catch {
    text = String(issue.value);
  }
  return `${issue.key}: ${text.length > 80 ? `${text.slice(0, 77)}...` : text} is not allowed: ${issue.rule}`;
}

/** A model name that the manifest does not declare. */
export class ModelNotFoundError extends Error {
  override readonly name = 'ModelNotFoundError';
  readonly model: string;
  /** The names the manifest does declare. */
  readonly known: readonly string[];

  constructor(model: string, known: readonly string[], hint?: string) {
    const list = known.length === 0 ? 'the manifest declares no models' : `known models: ${known.join(', ')}`;
    super(`unknown model '${model}': ${list}${hint === undefined ? '' : ` (${hint})`}`);
    this.model = model;
    this.known = known;
  }
}

/** A path that would leave its folder: `..`, an absolute path, a drive letter or a NUL byte. */
export class UnsafePathError extends Error {
  override readonly name = 'UnsafePathError';
  readonly path: string;
  /** Where the path came from, e.g. `models.sam3.files[0]` or `hf://org/repo listing`. */
  readonly origin: string;

  constructor(pathText: string, origin: string, reason: string) {
    super(`${origin}: refusing path ${JSON.stringify(pathText)}: ${reason}`);
    this.path = pathText;
    this.origin = origin;
  }
}

/** Why a source could not be read. */
export type SourceErrorKind = 'access-denied' | 'not-found' | 'bad-response';

/** A model's source refused, lacks or garbled what was asked (gated repo, 404, size mismatch…). */
export class SourceError extends Error {
  override readonly name = 'SourceError';
  readonly model: string;
  readonly source: string;
  readonly kind: SourceErrorKind;
  /** HTTP status when there was one. */
  readonly status: number | undefined;

  constructor(model: string, source: string, kind: SourceErrorKind, message: string, options?: { status?: number; cause?: unknown }) {
    super(`${model} (${source}): ${message}`, { cause: options?.cause });
    this.model = model;
    this.source = source;
    this.kind = kind;
    this.status = options?.status;
  }
}

/** The connection failed mid-file after every retry. The `.part` file is kept: the next pull resumes it. */
export class DownloadError extends Error {
  override readonly name = 'DownloadError';
  readonly model: string;
  /** Path inside the model folder. */
  readonly file: string;
  /** Bytes already in the `.part` file. */
  readonly bytesDone: number;

  constructor(model: string, file: string, bytesDone: number, attempts: number, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`${model}/${file}: download failed after ${attempts} attempt${attempts === 1 ? '' : 's'} (${why}); ${bytesDone} bytes kept in ${file}.part, the next pull resumes from there`, { cause });
    this.model = model;
    this.file = file;
    this.bytesDone = bytesDone;
  }
}

/** A file's digest is not the one expected. The partial file has been deleted. */
export class ChecksumMismatchError extends Error {
  override readonly name = 'ChecksumMismatchError';
  readonly model: string;
  readonly file: string;
  readonly algorithm: 'sha256' | 'git-sha1' | 'size';
  readonly expected: string;
  readonly actual: string;

  constructor(model: string, file: string, algorithm: 'sha256' | 'git-sha1' | 'size', expected: string, actual: string, what = 'the downloaded file was deleted') {
    super(`${model}/${file}: ${algorithm} mismatch: expected ${expected}, got ${actual}; ${what}`);
    this.model = model;
    this.file = file;
    this.algorithm = algorithm;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The volume has less free space than the files still to download need. Nothing was written. */
export class InsufficientSpaceError extends Error {
  override readonly name = 'InsufficientSpaceError';
  readonly volume: string;
  readonly neededBytes: number;
  readonly availableBytes: number;

  constructor(volume: string, neededBytes: number, availableBytes: number, what: string) {
    super(`not enough space on ${volume} for ${what}: ${formatBytes(neededBytes)} needed, ${formatBytes(availableBytes)} free`);
    this.volume = volume;
    this.neededBytes = neededBytes;
    this.availableBytes = availableBytes;
  }
}

/** `--frozen` was asked and `kiln.lock` does not pin the model as the manifest describes it. */
export class LockfileMismatchError extends Error {
  override readonly name = 'LockfileMismatchError';
  readonly model: string;

  constructor(model: string, reason: string) {
    super(`${model}: ${reason}; run \`kiln models pull ${model}\` without --frozen to update kiln.lock`);
    this.model = model;
  }
}

/** A `manual` model is not on the volume: a person has to fetch it. */
export class ManualModelError extends Error {
  override readonly name = 'ManualModelError';
  readonly model: string;
  readonly instructions: string;

  constructor(model: string, instructions: string) {
    super(`${model} must be installed by hand: ${instructions}\n  then: kiln models add ${model} PATH`);
    this.model = model;
    this.instructions = instructions;
  }
}

/** Another process's lock on a model was lost or could not be kept (e.g. the volume went away). */
export class ModelLockError extends Error {
  override readonly name = 'ModelLockError';
  readonly model: string;
  readonly lockPath: string;

  constructor(model: string, lockPath: string, message: string, options?: { cause?: unknown }) {
    super(`${model}: ${message} (lock ${lockPath})`, options);
    this.model = model;
    this.lockPath = lockPath;
  }
}

/** Every error this package throws on purpose. */
export type ModelsError =
  | ManifestError
  | ModelNotFoundError
  | UnsafePathError
  | SourceError
  | DownloadError
  | ChecksumMismatchError
  | InsufficientSpaceError
  | LockfileMismatchError
  | ManualModelError
  | ModelLockError;

const ERROR_NAMES: ReadonlySet<string> = new Set([
  'ManifestError',
  'ModelNotFoundError',
  'UnsafePathError',
  'SourceError',
  'DownloadError',
  'ChecksumMismatchError',
  'InsufficientSpaceError',
  'LockfileMismatchError',
  'ManualModelError',
  'ModelLockError',
]);

/** Whether `error` is one of {@link ModelsError}. */
export function isModelsError(error: unknown): error is ModelsError {
  return error instanceof Error && ERROR_NAMES.has(error.name);
}

/** `1536` → `1.5 KiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(bytes)} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}
