// Finds media in a job's output: data: URLs, http(s) URLs with a media extension, and base64
// strings whose first decoded bytes are a known file signature. Pure: no DOM.

export type MediaKind = 'audio' | 'image' | 'video';

export interface MediaRef {
  kind: MediaKind;
  mime: string;
  /** A URL to use as is (data: or http(s)), or base64 to turn into a blob URL. */
  source: { url: string } | { base64: string };
}

export interface FoundMedia extends MediaRef {
  /** Where in the output: `output.audio`, `output.frames[2]`. */
  path: string;
}

const EXTENSIONS: Record<string, [MediaKind, string]> = {
  wav: ['audio', 'audio/wav'],
  mp3: ['audio', 'audio/mpeg'],
  ogg: ['audio', 'audio/ogg'],
  oga: ['audio', 'audio/ogg'],
  opus: ['audio', 'audio/ogg'],
  flac: ['audio', 'audio/flac'],
  m4a: ['audio', 'audio/mp4'],
  aac: ['audio', 'audio/aac'],
  png: ['image', 'image/png'],
  jpg: ['image', 'image/jpeg'],
  jpeg: ['image', 'image/jpeg'],
  gif: ['image', 'image/gif'],
  webp: ['image', 'image/webp'],
  avif: ['image', 'image/avif'],
  svg: ['image', 'image/svg+xml'],
  mp4: ['video', 'video/mp4'],
  m4v: ['video', 'video/mp4'],
  mov: ['video', 'video/quicktime'],
  webm: ['video', 'video/webm'],
  ogv: ['video', 'video/ogg'],
};

/** The media type of a file's first bytes (at least 12), or null. */
export function sniffBytes(b: Uint8Array): { kind: MediaKind; mime: string } | null {
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (b.length < 4) return null;
  if (ascii(0, 4) === 'RIFF' && b.length >= 12) {
    const format = ascii(8, 12);
    if (format === 'WAVE') return { kind: 'audio', mime: 'audio/wav' };
    if (format === 'WEBP') return { kind: 'image', mime: 'image/webp' };
    if (format === 'AVI ') return { kind: 'video', mime: 'video/x-msvideo' };
    return null;
  }
  if (ascii(0, 3) === 'ID3') return { kind: 'audio', mime: 'audio/mpeg' };
  if (ascii(0, 4) === 'OggS') return { kind: 'audio', mime: 'audio/ogg' };
  if (ascii(0, 4) === 'fLaC') return { kind: 'audio', mime: 'audio/flac' };
  if (b[0] === 0x89 && ascii(1, 4) === 'PNG') return { kind: 'image', mime: 'image/png' };
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return { kind: 'image', mime: 'image/jpeg' };
  if (ascii(0, 4) === 'GIF8') return { kind: 'image', mime: 'image/gif' };
  if (b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return { kind: 'video', mime: 'video/webm' };
  if (b.length >= 12 && ascii(4, 8) === 'ftyp') {
    const brand = ascii(8, 12);
    if (brand === 'qt  ') return { kind: 'video', mime: 'video/quicktime' };
    if (brand.startsWith('M4A') || brand.startsWith('M4B')) return { kind: 'audio', mime: 'audio/mp4' };
    return { kind: 'video', mime: 'video/mp4' };
  }
  // MPEG audio frame sync: 11 set bits, then a valid version/layer (not "reserved").
  if (b[0] === 0xff && (b[1]! & 0xe0) === 0xe0 && (b[1]! & 0x18) !== 0x08 && (b[1]! & 0x06) !== 0) return { kind: 'audio', mime: 'audio/mpeg' };
  return null;
}

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** Decodes base64 (standard or url-safe, whitespace ignored) to bytes; null when it is not base64. */
export function decodeBase64(text: string): Uint8Array | null {
  const clean = text.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/');
  const padded = clean + '='.repeat((4 - (clean.length % 4)) % 4);
  try {
    const binary = atob(padded);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

/** What kind of media a string holds, or null. */
export function detectMedia(value: string): MediaRef | null {
  const data = /^data:((audio|image|video)\/[\w.+-]+)[;,]/i.exec(value);
  if (data) return { kind: data[2]!.toLowerCase() as MediaKind, mime: data[1]!.toLowerCase(), source: { url: value } };
  if (/^https?:\/\//i.test(value)) {
    let pathname: string;
    try {
      pathname = new URL(value).pathname;
    } catch {
      return null;
    }
    const ext = /\.([a-z0-9]+)$/i.exec(pathname)?.[1]?.toLowerCase();
    const known = ext === undefined ? undefined : EXTENSIONS[ext];
    return known ? { kind: known[0], mime: known[1], source: { url: value } } : null;
  }
  // Real media is never this short; shorter strings (ids, words) are left alone.
  if (value.length < 48) return null;
  const head = value.slice(0, 64).replace(/\s+/g, '');
  if (!BASE64.test(head.replace(/=+$/, '')) && !BASE64.test(head)) return null;
  const bytes = decodeBase64(head.slice(0, head.length - (head.length % 4)));
  if (!bytes) return null;
  const sniffed = sniffBytes(bytes);
  return sniffed ? { ...sniffed, source: { base64: value } } : null;
}

/** Every media string in `value` (walked through objects and arrays, at most `limit`). */
export function findMedia(value: unknown, path = 'output', limit = 20): FoundMedia[] {
  const found: FoundMedia[] = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown, p: string, depth: number) => {
    if (found.length >= limit || depth > 12) return;
    if (typeof v === 'string') {
      const media = detectMedia(v);
      if (media) found.push({ ...media, path: p });
      return;
    }
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) v.forEach((item, i) => walk(item, `${p}[${i}]`, depth + 1));
    else for (const [k, item] of Object.entries(v)) walk(item, /^[A-Za-z_$][\w$]*$/.test(k) ? `${p}.${k}` : `${p}[${JSON.stringify(k)}]`, depth + 1);
  };
  walk(value, path, 0);
  return found;
}
