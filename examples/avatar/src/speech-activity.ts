import * as ort from 'onnxruntime-node';
import { ANALYSIS_RATE } from './media-input.ts';

/** Samples silero VAD (v4) reads per step at 16 kHz: 32 ms. */
export const VAD_WINDOW = 512;

/** Per video frame: how likely speech is (silero VAD) and how loud the audio is (0…1). */
export interface FrameActivity {
  speech: Float32Array;
  loudness: Float32Array;
}

/** silero VAD, run with onnxruntime-node on the CPU. Load once in `setup()`, share across jobs. */
export class SpeechDetector {
  readonly #session: ort.InferenceSession;

  private constructor(session: ort.InferenceSession) {
    this.#session = session;
  }

  /** Loads `silero_vad.onnx` (v4: inputs `input`, `sr`, `h`, `c`). */
  static async load(modelFile: string): Promise<SpeechDetector> {
    const session = await ort.InferenceSession.create(modelFile, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const missing = ['input', 'sr', 'h', 'c'].filter((n) => !session.inputNames.includes(n));
    if (missing.length > 0) throw new Error(`${modelFile} is not silero VAD v4: it lacks the inputs ${missing.join(', ')}`);
    return new SpeechDetector(session);
  }

  /** Speech probability of each {@link VAD_WINDOW}-sample window, the recurrent state carried across windows. */
  async windowProbabilities(samples: Float32Array, signal: AbortSignal): Promise<Float32Array> {
    const windows = Math.ceil(samples.length / VAD_WINDOW);
    const probabilities = new Float32Array(windows);
    const sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(ANALYSIS_RATE)]), []);
    let h: ort.Tensor = new ort.Tensor('float32', new Float32Array(2 * 64), [2, 1, 64]);
    let c: ort.Tensor = new ort.Tensor('float32', new Float32Array(2 * 64), [2, 1, 64]);
    for (let w = 0; w < windows; w++) {
      // ~0.3 ms each: checking the signal every 64 windows (2 s of audio) is plenty.
      if (w % 64 === 0) signal.throwIfAborted();
      const chunk = new Float32Array(VAD_WINDOW);
      chunk.set(samples.subarray(w * VAD_WINDOW, (w + 1) * VAD_WINDOW));
      const out = await this.#session.run({ input: new ort.Tensor('float32', chunk, [1, VAD_WINDOW]), sr, h, c });
      probabilities[w] = (out['output']!.data as Float32Array)[0]!;
      h = out['hn'] as ort.Tensor;
      c = out['cn'] as ort.Tensor;
    }
    return probabilities;
  }

  /**
   * Per video frame at `fps`: the speech probability of the VAD window under the frame's centre,
   * and the frame's loudness (RMS in dBFS mapped from −50…−10 dB onto 0…1).
   */
  async frameActivity(samples: Float32Array, frames: number, fps: number, signal: AbortSignal): Promise<FrameActivity> {
    const windows = await this.windowProbabilities(samples, signal);
    const speech = new Float32Array(frames);
    const loudness = new Float32Array(frames);
    const perFrame = ANALYSIS_RATE / fps;
    for (let f = 0; f < frames; f++) {
      const centre = (f + 0.5) * perFrame;
      speech[f] = windows[Math.min(windows.length - 1, Math.floor(centre / VAD_WINDOW))] ?? 0;
      const from = Math.floor(f * perFrame);
      const to = Math.min(samples.length, Math.floor((f + 1) * perFrame));
      let sum = 0;
      for (let i = from; i < to; i++) sum += samples[i]! * samples[i]!;
      const rms = to > from ? Math.sqrt(sum / (to - from)) : 0;
      const db = 20 * Math.log10(rms + 1e-9);
      loudness[f] = Math.min(1, Math.max(0, (db + 50) / 40));
    }
    return { speech, loudness };
  }

  /** Frees the ONNX session. */
  async close(): Promise<void> {
    await this.#session.release();
  }
}
