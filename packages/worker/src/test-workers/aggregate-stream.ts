// A streaming worker for the local-mode tests: an async generator yielding one chunk per token,
// with aggregateStream, so the job's output is the list of every chunk.
import { defineWorker } from '../define-worker.ts';

export default defineWorker({
  aggregateStream: true,
  async *handler(job) {
    const { tokens } = job.input as { tokens: string[] };
    for (const [index, token] of tokens.entries()) yield { index, token };
  },
});
