// Players for media found in a job's output: <audio>, <img>, <video>, with blob URLs for base64.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { decodeBase64, findMedia } from './media-detect.ts';
import type { FoundMedia } from './media-detect.ts';

function MediaItem({ media }: { media: FoundMedia }) {
  // Read from the props on every render: the same path may hold another URL after a refresh (a
  // newer progress update), and `media` is a new object whenever the output is (each stream chunk).
  const direct = 'url' in media.source ? media.source.url : null;
  const base64 = 'base64' in media.source ? media.source.base64 : null;
  const [blob, setBlob] = useState<{ base64: string; url: string } | null>(null);
  // Keyed on the bytes themselves, not on `media`: a player is not reset (nor its base64 decoded
  // again) when only other parts of the output changed.
  useEffect(() => {
    if (base64 === null) return;
    const bytes = decodeBase64(base64);
    if (!bytes) return;
    const blobUrl = URL.createObjectURL(new Blob([bytes as BlobPart], { type: media.mime }));
    setBlob({ base64, url: blobUrl });
    return () => URL.revokeObjectURL(blobUrl);
  }, [base64, media.mime]);
  const url = direct ?? (blob !== null && blob.base64 === base64 ? blob.url : null);
  if (!url) return null;
  const label = `${media.path} (${media.mime})`;
  return (
    <figure class="media">
      {media.kind === 'audio' && <audio controls src={url} aria-label={label} preload="metadata" />}
      {media.kind === 'image' && <img src={url} alt={label} />}
      {media.kind === 'video' && <video controls src={url} aria-label={label} preload="metadata" />}
      <figcaption>
        <code>{media.path}</code> · {media.mime}{' '}
        <a href={url} download={`${media.path.replace(/\W+/g, '_')}.${media.mime.split('/')[1]?.replace(/\W.*$/, '') ?? 'bin'}`}>
          Download
        </a>
      </figcaption>
    </figure>
  );
}

/** Every audio, image and video in `output`, each with a player; nothing when there is none. */
export function MediaOutput({ output, path = 'output' }: { output: unknown; path?: string }) {
  const found = useMemo(() => findMedia(output, path), [output, path]);
  if (found.length === 0) return null;
  return (
    <div class="media-list">
      {found.map((m) => (
        <MediaItem key={m.path} media={m} />
      ))}
    </div>
  );
}
