import { setTimeout as delay } from 'node:timers/promises';
import { defineWorker } from '@kiln/worker';
import { z } from 'zod';

/** What the echo worker accepts. Every field but `message` exercises one platform feature. */
export const EchoInput = z.object({
  message: z.string().max(10_000).describe('text to echo back'),
  /** Milliseconds to work before answering; the job's signal cuts it short. */
  sleepMs: z.number().int().min(0).max(600_000).default(0),
  /** Stream the message word by word instead of returning it. */
  stream: z.boolean().default(false),
  /** Report this many progress steps while sleeping. */
  progressSteps: z.number().int().min(0).max(100).default(0),
  /** Throw an error with this message instead of answering. */
  fail: z.string().optional(),
});

export default defineWorker({
  input: EchoInput,
  async setup({ log }) {
    // A real worker loads its model here, once per process.
    log.info('echo worker ready');
    return { startedAt: Date.now() };
  },
  handler(job, ctx) {
    const { message, sleepMs, stream, progressSteps, fail } = job.input;
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
