import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { ensure } from '@kiln/models';
import { defineWorker } from '@kiln/worker';
import { toStandardJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';
import { FliteEngine, VOICES, type Voice } from './flite-engine.ts';
import { s3TargetFromEnv, s3TargetFromJob, uploadAndPresign, type S3Target } from './s3-upload.ts';
import { splitSentences } from './sentences.ts';
import { concatPcm, encodeWav, type PcmAudio } from './wav.ts';

/** The config's model that holds flite's WebAssembly build (`models.flite` in kiln.config.json). */
export const FLITE_MODEL = 'flite';

/** Longest text one job may speak. */
export const MAX_TEXT_CHARS = 5000;

/**
 * What the TTS worker accepts, with the Standard JSON Schema interface (`toStandardJsonSchema`) so
 * that the worker can describe it (`KILN_DESCRIBE=1`) for the dashboard's Run form.
 */
export const TtsInput = toStandardJsonSchema(
  v.object({
    text: v.pipe(
      v.string('text must be a string'),
      v.title('Text'),
      v.description(`English text to speak (at most ${MAX_TEXT_CHARS} characters)`),
      // A regex rather than a check: JSON Schema has `pattern`, so the form knows it too.
      v.regex(/\S/, 'text must not be empty'),
      v.maxLength(MAX_TEXT_CHARS, (issue) => `text has ${issue.received} characters; at most ${MAX_TEXT_CHARS} are allowed`),
    ),
    voice: v.optional(v.pipe(v.picklist(VOICES, (issue) => `unknown voice ${issue.received}; the voices are ${VOICES.join(', ')}`), v.title('Voice'), v.description("One of flite's built-in voices")), 'kal16'),
    format: v.optional(v.pipe(v.picklist(['wav'], 'format must be "wav", the only format this worker writes'), v.title('Format')), 'wav'),
    stream: v.optional(v.pipe(v.boolean('stream must be true or false'), v.title('Stream'), v.description('One chunk per sentence through /stream instead of one WAV')), false),
  }),
);

/** The output of a non-streaming job: the WAV inline, or its presigned URL when a bucket is configured. */
export type TtsOutput = { sample_rate: number; duration_s: number; format: 'wav'; sentences: number } & ({ audio_base64: string } | { audio_url: string });

/** One stream chunk: a sentence and its audio as a complete WAV file. */
export interface TtsChunk {
  index: number;
  text: string;
  audio_base64: string;
  sample_rate: number;
  duration_s: number;
}

export default defineWorker({
  input: TtsInput,
  async setup({ log }) {
    // A few stats when `kiln dev` or an earlier worker already verified it; a verified copy otherwise.
    const folder = await ensure(FLITE_MODEL);
    // Compiling flite's 21 MB WebAssembly module is the cold-start cost; it happens once per process.
    const engine = await FliteEngine.load({ wasmPath: path.join(folder, 'flite.wasm') });
    const bucket = s3TargetFromEnv(process.env, new Date());
    log.info('flite ready', { voices: engine.voices, bucket: bucket ? `${bucket.endpointUrl} (${bucket.bucketName})` : null });
    return { engine, bucket };
  },
  handler(job, ctx) {
    const { text, voice, stream } = job.input;
    const pieces = splitSentences(text);
    if (stream) return speakSentences(pieces, voice, ctx.state.engine, ctx.signal, ctx.progress);
    return (async (): Promise<TtsOutput> => {
      const clips: PcmAudio[] = [];
      for await (const { audio } of synthesizeEach(pieces, voice, ctx.state.engine, ctx.signal, ctx.progress)) clips.push(audio);
      const audio = concatPcm(clips);
      if (audio.samples.length === 0) throw new Error('flite found nothing it can pronounce in the text (it reads English)');
      const wav = encodeWav(audio);
      const meta = { sample_rate: audio.sampleRate, duration_s: audio.samples.length / audio.sampleRate, format: 'wav' as const, sentences: pieces.length };
      const target: S3Target | undefined = s3TargetFromJob(job['s3Config']) ?? ctx.state.bucket;
      if (!target) return { ...meta, audio_base64: wav.toString('base64') };
      const audio_url = await uploadAndPresign(target, `${job.id}/speech.wav`, wav, { contentType: 'audio/wav', signal: ctx.signal });
      return { ...meta, audio_url };
    })();
  },
});

async function* speakSentences(
  pieces: readonly string[],
  voice: Voice,
  engine: FliteEngine,
  signal: AbortSignal,
  progress: (value: unknown) => Promise<void>,
): AsyncGenerator<TtsChunk> {
  for await (const { index, text, audio } of synthesizeEach(pieces, voice, engine, signal, progress)) {
    yield { index, text, audio_base64: encodeWav(audio).toString('base64'), sample_rate: audio.sampleRate, duration_s: audio.samples.length / audio.sampleRate };
  }
}

async function* synthesizeEach(
  pieces: readonly string[],
  voice: Voice,
  engine: FliteEngine,
  signal: AbortSignal,
  progress: (value: unknown) => Promise<void>,
): AsyncGenerator<{ index: number; text: string; audio: PcmAudio }> {
  for (const [index, text] of pieces.entries()) {
    // flite runs synchronously: give pings, progress posts and a cancel a turn between sentences.
    await yieldToLoop();
    signal.throwIfAborted();
    const audio = engine.synthesize(text, voice);
    void progress({ sentence: index + 1, of: pieces.length });
    yield { index, text, audio };
  }
}
