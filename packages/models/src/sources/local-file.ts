import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { SourceError } from '../errors.ts';
import { compileGlobs } from '../glob.ts';
import type { ModelSpec } from '../manifest.ts';
import { checkRelativePath } from '../safe-path.ts';
import type { OpenedBody, PinnedFiles, RemoteFile, Resolution } from './remote-file.ts';

/** Read size when copying local files. */
const READ_CHUNK_BYTES = 1 << 20;

/**
 * Resolves `file:PATH`: one file (named by the manifest's `path`, else its own name) or every file
 * of a folder (`files` globs applied). Files are copied onto the volume like any download, so the
 * layout is the same wherever the weights came from.
 */
export async function resolveLocalFile(spec: ModelSpec, pinned: PinnedFiles | undefined): Promise<Resolution> {
  if (spec.source.kind !== 'file') throw new TypeError(`not a file: source: ${spec.entry.source}`);
  const root = spec.source.path;
  let stats;
  try {
    stats = await stat(root);
  } catch (cause) {
    throw new SourceError(spec.name, spec.entry.source, 'not-found', `${root} does not exist (relative file: paths resolve against the config's folder)`, { cause });
  }
  const file = (relative: string, full: string, size: number, sha256: string | undefined): RemoteFile => ({
    path: relative,
    size,
    sha256,
    gitBlobSha1: undefined,
    open: (offset, signal) => openLocal(full, offset, size, signal),
  });
  if (stats.isFile()) {
    const known = pinned?.files[0];
    return { revision: undefined, files: [file(spec.fileName ?? path.basename(root), root, stats.size, spec.sha256 ?? known?.sha256)] };
  }
  if (!stats.isDirectory()) throw new SourceError(spec.name, spec.entry.source, 'bad-response', `${root} is neither a file nor a folder`);
  if (spec.sha256 !== undefined || spec.size !== undefined || spec.entry.path !== undefined) {
    throw new SourceError(spec.name, spec.entry.source, 'bad-response', `${root} is a folder: sha256, size and path apply to a single file (kiln.lock records each file's digest)`);
  }
  const pins = new Map((pinned?.files ?? []).map((f) => [f.path, f.sha256]));
  const selected = compileGlobs(spec.include);
  const files: RemoteFile[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    const relative = checkRelativePath(path.relative(root, full).split(path.sep).join('/'), `${spec.entry.source} listing`);
    if (!selected(relative)) continue;
    files.push(file(relative, full, (await stat(full)).size, pins.get(relative)));
  }
  if (files.length === 0) throw new SourceError(spec.name, spec.entry.source, 'not-found', `${root} has no files${spec.include.length > 0 ? ` matching ${spec.include.join(', ')}` : ''}`);
  return { revision: undefined, files: files.sort((a, b) => (a.path < b.path ? -1 : 1)) };
}

async function openLocal(full: string, offset: number, size: number, signal: AbortSignal): Promise<OpenedBody> {
  const start = offset <= size ? offset : 0;
  return { body: createReadStream(full, { start, highWaterMark: READ_CHUNK_BYTES, signal }), start, totalSize: size };
}
