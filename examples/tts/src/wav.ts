/** 16-bit mono PCM audio, as flite produces it. */
export interface PcmAudio {
  /** Samples per second. */
  sampleRate: number;
  samples: Int16Array;
}

/** What a WAV file's header says, plus its samples. */
export interface ParsedWav extends PcmAudio {
  /** 1 for integer PCM. */
  audioFormat: number;
  channels: number;
  bitsPerSample: number;
  /** Bytes in the `data` chunk. */
  dataBytes: number;
}

/** Why a buffer is not a WAV file this example can read. */
export class WavFormatError extends Error {
  override name = 'WavFormatError' as const;
}

const HEADER_BYTES = 44;

/**
 * Reads a RIFF/WAVE buffer: walks the chunks to `fmt ` and `data` (skipping any others) and
 * returns the samples when the format is 16-bit PCM.
 */
export function parseWav(wav: Uint8Array): ParsedWav {
  const view = new DataView(wav.buffer, wav.byteOffset, wav.byteLength);
  const tag = (at: number) => String.fromCharCode(wav[at]!, wav[at + 1]!, wav[at + 2]!, wav[at + 3]!);
  if (wav.byteLength < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new WavFormatError('not a RIFF/WAVE file');
  let fmt: { audioFormat: number; channels: number; sampleRate: number; bitsPerSample: number } | undefined;
  let at = 12;
  while (at + 8 <= wav.byteLength) {
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      fmt = {
        audioFormat: view.getUint16(body, true),
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        bitsPerSample: view.getUint16(body + 14, true),
      };
    } else if (id === 'data') {
      if (!fmt) throw new WavFormatError('data chunk before fmt chunk');
      if (body + size > wav.byteLength) throw new WavFormatError(`data chunk claims ${size} bytes, file has ${wav.byteLength - body}`);
      if (fmt.audioFormat !== 1 || fmt.bitsPerSample !== 16) {
        throw new WavFormatError(`unsupported WAV format ${fmt.audioFormat} with ${fmt.bitsPerSample} bits per sample`);
      }
      // Copy: the samples must be 2-byte aligned whatever the buffer's offset.
      const samples = new Int16Array(size / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(body + i * 2, true);
      return { ...fmt, dataBytes: size, samples };
    }
    at = body + size + (size % 2);
  }
  throw new WavFormatError('no data chunk');
}

/** Writes mono 16-bit PCM as a 44-byte-header WAV file. */
export function encodeWav(audio: PcmAudio): Buffer {
  const dataBytes = audio.samples.length * 2;
  const out = Buffer.alloc(HEADER_BYTES + dataBytes);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + dataBytes, 4);
  out.write('WAVE', 8, 'ascii');
  out.write('fmt ', 12, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(audio.sampleRate, 24);
  out.writeUInt32LE(audio.sampleRate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < audio.samples.length; i++) out.writeInt16LE(audio.samples[i]!, HEADER_BYTES + i * 2);
  return out;
}

/** Joins clips of one sample rate end to end. */
export function concatPcm(clips: readonly PcmAudio[]): PcmAudio {
  const first = clips[0];
  if (!first) throw new RangeError('concatPcm needs at least one clip');
  const total = clips.reduce((n, c) => n + c.samples.length, 0);
  const samples = new Int16Array(total);
  let at = 0;
  for (const clip of clips) {
    if (clip.sampleRate !== first.sampleRate) throw new RangeError(`sample rates differ: ${first.sampleRate} and ${clip.sampleRate}`);
    samples.set(clip.samples, at);
    at += clip.samples.length;
  }
  return { sampleRate: first.sampleRate, samples };
}

/** Root mean square of the samples, on a 0–1 scale (full-scale square wave = 1). */
export function rms(samples: Int16Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (const s of samples) sum += (s / 32768) ** 2;
  return Math.sqrt(sum / samples.length);
}

/** How many `frameMs` frames have an RMS above `threshold` (0–1): a crude voice-activity count. */
export function loudFrames(audio: PcmAudio, frameMs = 20, threshold = 0.02): number {
  const size = Math.max(1, Math.round((audio.sampleRate * frameMs) / 1000));
  let count = 0;
  for (let at = 0; at + size <= audio.samples.length; at += size) {
    if (rms(audio.samples.subarray(at, at + size)) > threshold) count++;
  }
  return count;
}
