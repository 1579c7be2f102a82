import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ensure } from '@kiln/models';
import { defineWorker } from '@kiln/worker';
import * as tf from '@tensorflow/tfjs-core';
import { describable } from '@kiln/example-avatar/src/describable.ts';
import * as v from 'valibot';
import { probeVideo } from './frame-io.ts';
import { RvmMatting } from './matting.ts';
import { ingest, ingestedFrames, preview, roto, type FrameProgress } from './pipeline.ts';
import { collectOutputs, PROJECT_NAME_PATTERN, ProjectNotFoundError, projectNameProblem, projectPaths, readMeta, type ProjectMeta, type ProjectOutputs } from './projects.ts';
import { resolveVideo } from './video-source.ts';

/** The models this worker declares in `kiln.config.json` and gets with `ensure()`: RVM's graph and its weights. */
export const RVM_MODELS = { graph: 'rvm-graph', weights: 'rvm-weights' } as const;

/** The stages `process_video` runs, in this order whatever order the input lists them in. */
export const STAGES = ['ingest', 'roto', 'preview'] as const;

/** Why the seed's `depth` stage is refused. */
export const DEPTH_REFUSAL = 'stage "depth" is not available: no depth-estimation model ships inside an npm package, so this example has none (it does not fake one); use "ingest", "roto" and "preview"';

/** Most frames one job may ingest. */
export const MAX_FRAMES = 3000;

const missing = (issue: v.BaseIssue<unknown>) => (issue.path?.length ? `${String(issue.path.at(-1)!.key)} is required` : 'input must be an object');

const projectName = v.pipe(
  v.string('name must be a string'),
  v.title('Project'),
  // What the check below enforces, as far as JSON Schema can say it (the form's hint; ".." is the check's alone).
  v.metadata({ pattern: PROJECT_NAME_PATTERN.source, description: 'Project folder on the projects volume: letters, digits, ".", "_" or "-"' }),
  v.check((name) => projectNameProblem(name) === undefined, (issue) => projectNameProblem(String(issue.input))!),
);


/** What the VFX worker accepts: one of three actions, as the seed's handler takes them. */
export const VfxInput = describable(v.variant(
  'action',
  [
    v.pipe(v.object({ action: v.literal('health_check') }, missing), v.title('health_check'), v.description('Report the model and the projects folder')),
    v.pipe(
      v.object({
        action: v.literal('process_video'),
        video: v.optional(
          v.pipe(
            v.string('video must be a string: a URL, base64 or a path on the projects volume'),
            v.title('Video'),
            v.description('An http(s) URL, base64 (or a data: URL), or a path inside the projects volume; needed when stages include "ingest"'),
            v.nonEmpty('video must not be empty'),
          ),
        ),
        name: projectName,
        stages: v.optional(
          v.pipe(
            v.array(
              v.pipe(
                v.string('each stage must be a string'),
                // The picklist below ends the input's JSON Schema (a second schema in the pipe): name its options here.
                v.metadata({ enum: [...STAGES] }),
                v.check((s) => s !== 'depth', DEPTH_REFUSAL),
                v.picklist(STAGES, (issue) => `unknown stage ${JSON.stringify(issue.input)}; the stages are ${STAGES.join(', ')}`),
              ),
              'stages must be an array of stage names',
            ),
            v.minLength(1, 'stages must name at least one stage'),
            v.title('Stages'),
            v.description('Run in the order ingest, roto, preview whatever order they are listed in'),
          ),
          [...STAGES],
        ),
        maxFrames: v.optional(v.pipe(v.number('maxFrames must be a number'), v.integer('maxFrames must be a whole number'), v.minValue(1, 'maxFrames must be at least 1'), v.maxValue(MAX_FRAMES, `maxFrames must be at most ${MAX_FRAMES}`), v.title('Max frames')), 300),
        fps: v.optional(v.pipe(v.number('fps must be a number'), v.minValue(1, 'fps must be at least 1'), v.maxValue(60, 'fps must be at most 60'), v.title('FPS'), v.description("Frames per second to ingest; the video's own rate by default"))),
      }, missing),
      v.title('process_video'),
      v.description('Ingest a video into a project, matte it (roto) and render a preview'),
      v.forward(
        v.check((i) => !i.stages.includes('ingest') || i.video !== undefined, 'video is required when stages include "ingest"'),
        ['video'],
      ),
    ),
    v.pipe(v.object({ action: v.literal('get_status'), name: projectName }, missing), v.title('get_status'), v.description("A project's outputs on the volume")),
  ],
  (issue) => {
    if (issue.path?.at(-1)?.key !== 'action') return 'input must be an object with an action: health_check, process_video or get_status';
    if (issue.input === undefined) return 'action is required: health_check, process_video or get_status';
    return `unknown action ${JSON.stringify(issue.input)}; the actions are health_check, process_video and get_status`;
  },
));

/** `health_check`'s answer. */
export interface HealthOutput {
  status: 'healthy';
  model: string;
  backend: string;
  projects_dir: string;
}

/** `process_video`'s and `get_status`'s answer: the project's outputs on the volume, as `collect_outputs` lists them. */
export type ProjectOutput = {
  project: string;
  project_path: string;
  frames: number;
  width: number;
  height: number;
  fps: number;
} & ProjectOutputs;

/** `process_video`'s answer. */
export type ProcessOutput = ProjectOutput & {
  status: 'completed';
  stages: (typeof STAGES)[number][];
  /** Mean alpha of the mattes (0…1) when roto ran: the share of the picture the model took for foreground. */
  roto_coverage?: number;
  timings_ms: Partial<Record<(typeof STAGES)[number], number>>;
};

export default defineWorker({
  input: VfxInput,
  async setup({ log }) {
    const [graphDir, weightsDir] = await Promise.all([ensure(RVM_MODELS.graph), ensure(RVM_MODELS.weights)]);
    const rvm = await RvmMatting.load(path.join(graphDir, 'rvm.json'), path.join(weightsDir, 'rvm.bin'));
    const projectsDir = path.resolve(process.env['PROJECTS_DIR'] ?? '.kiln/volumes/projects');
    await mkdir(projectsDir, { recursive: true });
    log.info('RVM ready', { graphDir, weightsDir, backend: tf.getBackend(), projectsDir });
    return { rvm, projectsDir };
  },
  async handler(job, ctx): Promise<HealthOutput | ProcessOutput | ProjectOutput> {
    const { projectsDir, rvm } = ctx.state;
    const input = job.input;
    if (input.action === 'health_check') return { status: 'healthy', model: 'rvm (Robust Video Matting, MobileNetV3)', backend: tf.getBackend(), projects_dir: projectsDir };
    const paths = projectPaths(projectsDir, input.name);
    const describe = async (meta: ProjectMeta): Promise<ProjectOutput> => ({
      project: input.name,
      project_path: paths.dir,
      frames: meta.frames,
      width: meta.width,
      height: meta.height,
      fps: meta.fps,
      ...(await collectOutputs(paths)),
    });
    if (input.action === 'get_status') {
      const meta = await readMeta(paths);
      if (!meta) throw new ProjectNotFoundError(input.name, projectsDir);
      return describe(meta);
    }

    const { signal } = ctx;
    const stages = STAGES.filter((s) => input.stages.includes(s));
    const progress: FrameProgress = (stage, frame, of) => void ctx.progress({ stage, frame, of });
    const timings: ProcessOutput['timings_ms'] = {};
    const timed = async <T>(stage: (typeof STAGES)[number], run: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      try {
        return await run();
      } finally {
        timings[stage] = Math.round(performance.now() - t0);
      }
    };
    let meta: ProjectMeta;
    if (stages.includes('ingest')) {
      const video = await resolveVideo(input.video!, projectsDir, ctx.tmpDir, signal);
      const probe = await probeVideo(video.file, signal);
      await mkdir(paths.dir, { recursive: true });
      meta = await timed('ingest', () => ingest(paths, { ...video, probe }, { fps: input.fps, maxFrames: input.maxFrames }, progress, signal));
    } else {
      meta = await ingestedFrames(paths, stages[0]!);
    }
    let coverage: number | undefined;
    if (stages.includes('roto')) coverage = await timed('roto', () => roto(paths, meta, rvm, progress, signal));
    if (stages.includes('preview')) await timed('preview', () => preview(paths, meta, progress, signal));
    return { status: 'completed', stages, ...(await describe(meta)), ...(coverage === undefined ? {} : { roto_coverage: Number(coverage.toFixed(4)) }), timings_ms: timings };
  },
});
