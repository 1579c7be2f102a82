import { writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { ensure } from '@kiln/models';
import { defineWorker, isValidOverlap, overlapRuleMessage, planChunks, type ChunkSpan } from '@kiln/worker';
import * as v from 'valibot';
import { describable } from './describable.ts';
import { VideoEncoder } from './ffmpeg.ts';
import { decodeAudio, decodeImage, readMediaField } from './media-input.ts';
import { blendFrames, chunkOpenness, DEFAULT_MOUTH, renderFrame } from './mouth-renderer.ts';
import { SpeechDetector } from './speech-activity.ts';
import { s3TargetFromEnv, s3TargetFromJob, uploadAndPresign, type S3Target } from '@kiln/example-tts/src/s3-upload.ts';

/** The frame rate OmniAvatar generates at, and the only one this worker writes. */
export const FPS = 25;

/** The model this worker declares in `kiln.config.json` and gets with `ensure()`. */
export const VAD_MODEL = 'silero-vad';

/** Longest audio one job may animate, in seconds. */
export const MAX_AUDIO_S = 120;

const fraction = (name: string) => v.pipe(v.number(`${name} must be a number`), v.minValue(0, `${name} must be between 0 and 1`), v.maxValue(1, `${name} must be between 0 and 1`));


/** What the avatar worker accepts. */
export const AvatarInput = describable(
  v.pipe(
    v.object({
      image: v.pipe(
        v.string('image must be a string: base64 PNG/JPEG or a path'),
        v.title('Image'),
        v.description("The reference image: base64 PNG or JPEG (a data: URL too), or a path inside the worker's folder"),
        v.nonEmpty('image must not be empty'),
      ),
      audio: v.pipe(
        v.string('audio must be a string: a base64 WAV or a path'),
        v.title('Audio'),
        v.description("The speech: a base64 WAV, or a path inside the worker's folder"),
        v.nonEmpty('audio must not be empty'),
      ),
      fps: v.optional(v.pipe(v.literal(FPS, `fps must be ${FPS}, the rate the model generates at`), v.title('FPS')), FPS),
      chunkFrames: v.optional(
        v.pipe(
          v.number('chunkFrames must be a number'),
          v.integer('chunkFrames must be a whole number'),
          v.minValue(2, 'chunkFrames must be at least 2'),
          v.maxValue(400, 'chunkFrames must be at most 400'),
          v.title('Chunk frames'),
          v.description('Frames generated per chunk'),
        ),
        33,
      ),
      overlapFrames: v.optional(
        v.pipe(
          v.number('overlapFrames must be a number'),
          v.title('Overlap frames'),
          v.description('Frames shared by consecutive chunks; fewer than chunkFrames'),
          v.check((n) => isValidOverlap(n), (issue) => overlapRuleMessage('overlapFrames', issue.input as number)),
        ),
        5,
      ),
      mouth: v.optional(
        v.pipe(
          v.object({ x: fraction('mouth.x'), y: fraction('mouth.y'), width: fraction('mouth.width'), height: fraction('mouth.height') }),
          v.title('Mouth'),
          v.description('Where the mouth is in the image, as fractions; the default suits a centred portrait'),
        ),
        DEFAULT_MOUTH,
      ),
      output: v.optional(
        v.pipe(
          v.picklist(['base64', 's3'], 'output must be "base64" or "s3"'),
          v.title('Output'),
          v.description("base64 inline, s3 to the job's s3Config or the endpoint's bucket; by default S3 when a bucket is configured"),
        ),
      ),
    }, (issue) => (issue.path?.length ? `${String(issue.path.at(-1)!.key)} is required` : 'input must be an object with image and audio')),
    v.forward(
      v.check((i) => i.overlapFrames < i.chunkFrames, (issue) => `overlapFrames (${String((issue.input as { overlapFrames: number }).overlapFrames)}) must be smaller than chunkFrames (${String((issue.input as { chunkFrames: number }).chunkFrames)})`),
      ['overlapFrames'],
    ),
  ),
);

/** What a job returns: the mp4 inline or as a presigned URL, and how it was made. */
export type AvatarOutput = {
  duration_s: number;
  frames: number;
  fps: number;
  chunks: number;
  width: number;
  height: number;
  /** Frames on which silero VAD heard speech (probability ≥ 0.5). */
  speech_frames: number;
} & ({ video_base64: string } | { video_url: string });

export default defineWorker({
  input: AvatarInput,
  async setup({ log }) {
    const modelDir = await ensure(VAD_MODEL);
    const vad = await SpeechDetector.load(path.join(modelDir, 'silero_vad.onnx'));
    const bucket = s3TargetFromEnv(process.env, new Date());
    log.info('silero VAD ready', { modelDir, bucket: bucket ? `${bucket.endpointUrl} (${bucket.bucketName})` : null });
    return { vad, bucket };
  },
  async handler(job, ctx): Promise<AvatarOutput> {
    const { fps, chunkFrames, overlapFrames, mouth } = job.input;
    const { signal } = ctx;
    const target: S3Target | undefined = job.input.output === 'base64' ? undefined : (s3TargetFromJob(job['s3Config']) ?? ctx.state.bucket);
    if (job.input.output === 's3' && !target) throw new Error('output "s3" needs the job\'s s3Config or the endpoint\'s BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY');

    const [imageBytes, audioBytes] = await Promise.all([readMediaField('image', job.input.image, process.cwd()), readMediaField('audio', job.input.audio, process.cwd())]);
    const [reference, audio] = await Promise.all([decodeImage(imageBytes, signal), decodeAudio(audioBytes, signal)]);
    if (audio.durationS > MAX_AUDIO_S) throw new Error(`audio is ${audio.durationS.toFixed(1)} s long; at most ${MAX_AUDIO_S} s are allowed`);
    const frames = Math.max(1, Math.round(audio.durationS * fps));
    const plan = planChunks({ totalFrames: frames, chunkFrames, overlapFrames });
    await ctx.progress({ stage: 'speech', frames, chunks: plan.length });
    const activity = await ctx.state.vad.frameActivity(audio.samples, frames, fps, signal);

    const audioFile = path.join(ctx.tmpDir, 'audio.wav');
    const outFile = path.join(ctx.tmpDir, 'avatar.mp4');
    await writeFile(audioFile, audioBytes);
    const encoder = new VideoEncoder({ width: reference.width, height: reference.height, fps, audioFile, outFile, signal });
    // The frames the last chunk shares with the next one wait here until the next chunk's version is blended in.
    let held: Uint8Array[] = [];
    for (const span of plan) {
      await yieldToLoop();
      signal.throwIfAborted();
      const rendered = renderChunk(reference, mouth, chunkOpenness(activity, span), span);
      for (let i = 0; i < span.overlapBefore; i++) rendered[i] = blendFrames(held[i]!, rendered[i]!, i, span.overlapBefore);
      const last = span.index === plan.length - 1;
      const keep = last ? 0 : overlapFrames;
      for (const frame of rendered.slice(0, rendered.length - keep)) await encoder.write(frame);
      held = rendered.slice(rendered.length - keep);
      void ctx.progress({ stage: 'render', chunk: span.index + 1, of: plan.length, frames: [span.start, span.end] });
    }
    await encoder.finish();
    const video = await readFile(outFile);

    let speechFrames = 0;
    for (const p of activity.speech) if (p >= 0.5) speechFrames++;
    const meta = { duration_s: audio.durationS, frames, fps, chunks: plan.length, width: reference.width, height: reference.height, speech_frames: speechFrames };
    if (!target) return { ...meta, video_base64: video.toString('base64') };
    const video_url = await uploadAndPresign(target, `${job.id}/avatar.mp4`, video, { contentType: 'video/mp4', signal });
    return { ...meta, video_url };
  },
});

function renderChunk(reference: Parameters<typeof renderFrame>[0], mouth: Parameters<typeof renderFrame>[1], openness: Float32Array, span: ChunkSpan): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let f = span.start; f < span.end; f++) frames.push(renderFrame(reference, mouth, openness[f - span.start]!));
  return frames;
}
