import { setTimeout as delay } from 'node:timers/promises';
import { defineWorker } from '@kiln/worker';
import { toStandardJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';

/**
 * What the echo worker accepts. Every field but `message` exercises one platform feature.
 * (valibot rather than zod: any Standard Schema works, and valibot adds ≈4 ms to a cold start where
 * zod 4 adds ≈50 ms; see the README's benchmark section.) `toStandardJsonSchema` lets the worker
 * describe it as a JSON Schema (`KILN_DESCRIBE=1`), from which the dashboard builds its Run form;
 * titles and descriptions become the form's labels and hints.
 */
export const EchoInput = toStandardJsonSchema(
  v.object({
    message: v.pipe(v.string(), v.title('Message'), v.description('Text to send back'), v.maxLength(10_000)),
    sleepMs: v.optional(
      v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(600_000), v.title('Sleep (ms)'), v.description("Milliseconds to work before answering; the job's signal cuts it short")),
      0,
    ),
    stream: v.optional(v.pipe(v.boolean(), v.title('Stream'), v.description('Stream the message word by word instead of returning it')), false),
    progressSteps: v.optional(
      v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100), v.title('Progress steps'), v.description('Report this many progress steps while sleeping')),
      0,
    ),
    fail: v.optional(v.pipe(v.string(), v.title('Fail with'), v.description('Throw an error with this message instead of answering'))),
  }),
);

export default defineWorker({
  input: EchoInput,
  async setup({ log }) {
    // A real worker loads its model here, once per process.
    log.info('echo worker ready');
    return { startedAt: Date.now() };
  },
  handler(job, ctx) {
    const { message, sleepMs, stream, progressSteps, fail } = job.input;
    ctx.log.info(`echoing ${message.length} characters${stream ? ' as a stream' : ''}`);
    if (stream) return words(message, sleepMs, ctx.signal);
    return (async () => {
      const steps = Math.max(1, progressSteps);
      for (let i = 1; i <= steps && sleepMs > 0; i++) {
        await delay(sleepMs / steps, undefined, { signal: ctx.signal });
        if (progressSteps > 0) void ctx.progress({ step: i, of: progressSteps });
      }
      if (fail) throw new Error(fail);
      return { message, workerId: ctx.workerId, uptimeMs: Date.now() - ctx.state.startedAt };
    })();
  },
});

async function* words(message: string, sleepMs: number, signal: AbortSignal) {
  const parts = message.split(/\s+/).filter(Boolean);
  for (const word of parts) {
    if (sleepMs > 0) await delay(sleepMs / parts.length, undefined, { signal });
    yield { word };
  }
}
