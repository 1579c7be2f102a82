import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectMedia, findMedia, sniffBytes } from './media-detect.ts';

const b64 = (bytes: number[] | string, pad = 40) => {
  const arr = typeof bytes === 'string' ? [...bytes].map((c) => c.charCodeAt(0)) : bytes;
  const full = [...arr, ...new Array(pad).fill(0)];
  return btoa(String.fromCharCode(...full));
};

test('sniffs the known signatures from base64', () => {
  const cases: [string, string][] = [
    [b64('RIFF\x24\x00\x00\x00WAVEfmt '), 'audio/wav'],
    [b64('RIFF\x24\x00\x00\x00WEBPVP8 '), 'image/webp'],
    [b64('ID3\x04\x00'), 'audio/mpeg'],
    [b64([0xff, 0xfb, 0x90, 0x64]), 'audio/mpeg'],
    [b64('OggS\x00\x02'), 'audio/ogg'],
    [b64('fLaC\x00'), 'audio/flac'],
    [b64([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'image/png'],
    [b64([0xff, 0xd8, 0xff, 0xe0]), 'image/jpeg'],
    [b64('GIF89a'), 'image/gif'],
    [b64('\x00\x00\x00\x20ftypisom'), 'video/mp4'],
    [b64('\x00\x00\x00\x14ftypqt  '), 'video/quicktime'],
    [b64([0x1a, 0x45, 0xdf, 0xa3]), 'video/webm'],
  ];
  for (const [text, mime] of cases) assert.equal(detectMedia(text)?.mime, mime, mime);
  assert.equal(detectMedia(b64('hello world, this is text'))?.mime, undefined);
  assert.equal(detectMedia('just a sentence that is long enough'), null);
  assert.equal(detectMedia('//uQxAAAAAAAAAAAAAAAAAAA'), null, 'too short to be media');
  assert.equal(detectMedia('b27c4a6e-6463-47ac-9613-0b00ea6400da-u1'), null);
  assert.equal(sniffBytes(new Uint8Array([1, 2])), null);
});

test('data: and http(s) URLs', () => {
  assert.deepEqual(detectMedia('data:audio/wav;base64,UklGRg=='), { kind: 'audio', mime: 'audio/wav', source: { url: 'data:audio/wav;base64,UklGRg==' } });
  assert.equal(detectMedia('https://bucket.example/out/frame.PNG?sig=1')?.kind, 'image');
  assert.equal(detectMedia('http://x/y/clip.webm')?.mime, 'video/webm');
  assert.equal(detectMedia('https://example.com/page.html'), null);
});

test('findMedia walks objects and arrays', () => {
  const wav = b64('RIFF\x24\x00\x00\x00WAVEfmt ');
  const found = findMedia({ text: 'hi', audio: wav, frames: ['x', 'data:image/png;base64,iVBORw0KGgo='], 'odd key': { v: 'https://h/a.mp3' } });
  assert.deepEqual(
    found.map((f) => [f.path, f.kind]),
    [
      ['output.audio', 'audio'],
      ['output.frames[1]', 'image'],
      ['output["odd key"].v', 'audio'],
    ],
  );
  assert.deepEqual(findMedia(wav).map((f) => f.path), ['output']);
});
