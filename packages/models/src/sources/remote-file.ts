import type { ModelSpec } from '../manifest.ts';
import type { S3Settings } from '../settings.ts';

/** The bytes of a file from some offset on, as a source answered. */
export interface OpenedBody {
  /** The bytes, starting at `start`. Breaking out of the iteration releases the connection. */
  readonly body: AsyncIterable<Uint8Array>;
  /** The offset asked for, or 0 when the server ignored the range and sent the whole file. */
  readonly start: number;
  /** The file's total size, when the answer said so. */
  readonly totalSize: number | undefined;
}

/** One file a source will provide. */
export interface RemoteFile {
  /** Path inside the model folder (checked: relative, no `..`). */
  readonly path: string;
  /** Expected size, when known before downloading. */
  readonly size: number | undefined;
  /** Expected SHA-256 (lower-case hex), when known before downloading. */
  readonly sha256: string | undefined;
  /** Hugging Face files kept in git rather than LFS are named by their git blob SHA-1: checked when no SHA-256 is known. */
  readonly gitBlobSha1: string | undefined;
  /** Opens the file from `offset` on (HTTP Range, S3 Range, a file read from a position). */
  open(offset: number, signal: AbortSignal): Promise<OpenedBody>;
}

/** What a source resolved a model to. */
export interface Resolution {
  /** The immutable revision (a Hugging Face commit), when the source has one. */
  readonly revision: string | undefined;
  readonly files: readonly RemoteFile[];
  /** Releases what the resolution holds open (an S3 client's sockets). */
  readonly dispose?: () => void;
}

/** A file already pinned by kiln.lock or the volume's record. */
export interface PinnedFiles {
  readonly revision?: string | undefined;
  readonly files: readonly { readonly path: string; readonly size: number; readonly sha256: string }[];
}

/** What sources need besides the model itself. */
export interface SourceContext {
  readonly hub: { readonly url: string; readonly token: string | undefined };
  readonly s3: S3Settings;
  readonly signal: AbortSignal;
}

/** Resolves one kind of source. `pinned` (from kiln.lock) skips the listing: its files are fetched as they are. */
export type SourceResolver = (spec: ModelSpec, pinned: PinnedFiles | undefined, context: SourceContext) => Promise<Resolution>;

/** Reads `Content-Range: bytes a-b/total` (or `Content-Length` of a whole answer) into start and total. */
export function rangeOf(status: number, headers: { get(name: string): string | null }): { start: number; totalSize: number | undefined } {
  const contentRange = headers.get('content-range');
  const match = contentRange === null ? null : /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(contentRange.trim());
  if (status === 206 && match !== null) return { start: Number(match[1]), totalSize: match[2] === '*' ? undefined : Number(match[2]) };
  const length = headers.get('content-length');
  return { start: 0, totalSize: length === null ? undefined : Number(length) };
}
