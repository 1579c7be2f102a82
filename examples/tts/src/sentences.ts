/**
 * Longest piece of text synthesized at once. A stream chunk must stay under RunPod's 1 MB: 200
 * characters are ≈15 s of 16 kHz speech, ≈650 kB as base64.
 */
export const MAX_PIECE_CHARS = 200;

/**
 * Splits text into sentences (after `.`, `!`, `?` or `…` followed by white space, and at blank
 * lines), then splits any sentence longer than `maxChars` at the last comma, semicolon or space
 * before the limit. Pieces are trimmed; empty ones are dropped.
 */
export function splitSentences(text: string, maxChars = MAX_PIECE_CHARS): string[] {
  const sentences = text
    .split(/(?<=[.!?…]["'”’)\]]?)\s+|\n\s*\n/u)
    .map((s) => s.replace(/\s+/gu, ' ').trim())
    .filter((s) => s.length > 0);
  return sentences.flatMap((s) => splitLong(s, maxChars));
}

function splitLong(sentence: string, maxChars: number): string[] {
  const pieces: string[] = [];
  let rest = sentence;
  while (rest.length > maxChars) {
    const window = rest.slice(0, maxChars + 1);
    let cut = Math.max(window.lastIndexOf(', '), window.lastIndexOf('; '));
    if (cut > 0) cut += 1;
    else cut = window.lastIndexOf(' ');
    if (cut <= 0) cut = maxChars;
    pieces.push(rest.slice(0, cut).trim());
    rest = rest.slice(cut).trim();
  }
  if (rest.length > 0) pieces.push(rest);
  return pieces;
}
