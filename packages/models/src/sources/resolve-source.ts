import type { ModelSpec } from '../manifest.ts';
import { resolveHttpUrl } from './http-url.ts';
import { resolveHuggingFace } from './huggingface.ts';
import { resolveLocalFile } from './local-file.ts';
import type { PinnedFiles, Resolution, SourceContext } from './remote-file.ts';
import { resolveS3 } from './s3.ts';

/** Resolves any source except `manual` (which a person installs with `kiln models add`). */
export function resolveSource(spec: ModelSpec, pinned: PinnedFiles | undefined, context: SourceContext): Promise<Resolution> {
  switch (spec.source.kind) {
    case 'hf':
      return resolveHuggingFace(spec, pinned, context);
    case 'url':
      return resolveHttpUrl(spec, pinned);
    case 's3':
      return resolveS3(spec, pinned, context);
    case 'file':
      return resolveLocalFile(spec, pinned);
    case 'manual':
      throw new TypeError(`${spec.name} is a manual model: it has no source to resolve`);
  }
}
