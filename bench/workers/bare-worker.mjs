// The smallest kiln worker, as a user would deploy it: plain JS on the compiled runtime
// (`node bench/workers/bare-worker.mjs` resolves @kiln/worker to dist/), no input schema, no schema library.
// Cold start measures the runtime's own cost beside the echo example's (which validates with valibot).
import { defineWorker } from '@kiln/worker';

export default defineWorker({
  handler: () => null,
});
