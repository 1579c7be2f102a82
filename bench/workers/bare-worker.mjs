// The smallest kiln worker, as a user would deploy it: plain JS on the compiled runtime
// (`node bench/workers/bare-worker.mjs` resolves @kiln/worker to dist/), no input schema, no zod.
// Cold start measures the runtime's own cost beside the echo example's.
import { defineWorker } from '@kiln/worker';

export default defineWorker({
  handler: () => null,
});
