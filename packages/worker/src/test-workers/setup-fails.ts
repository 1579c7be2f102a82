// A worker whose setup throws, for the local-mode tests: every job must fail with that error.
import { defineWorker } from '../define-worker.ts';

export default defineWorker({
  setup(): { model: string } {
    throw new Error('model weights not found at /models/missing.onnx');
  },
  handler: (_job, ctx) => ctx.state.model,
});
