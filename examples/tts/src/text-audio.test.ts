import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_PIECE_CHARS, splitSentences } from './sentences.ts';
import { concatPcm, encodeWav, loudFrames, parseWav, rms } from './wav.ts';

test('sentences split after . ! ? and blank lines, white space folded', () => {
  assert.deepEqual(splitSentences('One.  Two!\nThree? "Four." Five\n\nSix'), ['One.', 'Two!', 'Three?', '"Four."', 'Five', 'Six']);
  assert.deepEqual(splitSentences('   '), []);
  assert.deepEqual(splitSentences('Version 2.5 is out.'), ['Version 2.5 is out.']);
});

test('a sentence longer than the piece limit is cut at a comma or space, never above the limit', () => {
  const long = `${'word '.repeat(30)}and then, ${'more '.repeat(60)}end.`;
  const pieces = splitSentences(long);
  assert.ok(pieces.length > 1);
  assert.ok(pieces.every((p) => p.length <= MAX_PIECE_CHARS));
  assert.equal(pieces.join(' ').replace(/\s+/g, ' '), long.trim().replace(/\s+/g, ' '));
  assert.ok(splitSentences('x'.repeat(450)).every((p) => p.length <= MAX_PIECE_CHARS), 'no space at all: hard cut');
});

test('WAV round trip: header fields, samples, odd-sized extra chunks skipped', () => {
  const samples = Int16Array.from({ length: 800 }, (_, i) => Math.round(10_000 * Math.sin(i / 5)));
  const wav = encodeWav({ sampleRate: 8000, samples });
  const parsed = parseWav(wav);
  assert.deepEqual([parsed.audioFormat, parsed.channels, parsed.bitsPerSample, parsed.sampleRate, parsed.dataBytes], [1, 1, 16, 8000, 1600]);
  assert.deepEqual(parsed.samples, samples);
  const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([3, 0, 0, 0]), Buffer.from('abc\0')]);
  const withList = Buffer.concat([wav.subarray(0, 36), list, wav.subarray(36)]);
  assert.deepEqual(parseWav(withList).samples, samples);
  assert.throws(() => parseWav(Buffer.from('not a wav file at all')), /not a RIFF\/WAVE file/);
});

test('energy measures: silence is zero, a tone is loud in every frame', () => {
  const silence = { sampleRate: 8000, samples: new Int16Array(8000) };
  const tone = { sampleRate: 8000, samples: Int16Array.from({ length: 8000 }, (_, i) => Math.round(16_000 * Math.sin(i / 3))) };
  assert.equal(rms(silence.samples), 0);
  assert.ok(Math.abs(rms(tone.samples) - 16_000 / 32768 / Math.SQRT2) < 0.01);
  assert.equal(loudFrames(silence), 0);
  assert.equal(loudFrames(tone), 50);
  assert.equal(concatPcm([silence, tone]).samples.length, 16_000);
  assert.throws(() => concatPcm([silence, { sampleRate: 16_000, samples: new Int16Array(1) }]), /sample rates differ/);
});
