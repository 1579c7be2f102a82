// A worker with a zod input schema and a setup that leaves a trace, for the describe-mode test:
// `KILN_DESCRIBE=1` must print the schema without running setup (the marker file stays absent).
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { defineWorker } from '../define-worker.ts';

export default defineWorker({
  input: z.object({ text: z.string().describe('What to say'), times: z.number().int().min(1).default(1) }),
  setup() {
    const marker = process.env['SETUP_MARKER'];
    if (marker) writeFileSync(marker, 'setup ran');
    return {};
  },
  handler: (job) => job.input.text.repeat(job.input.times),
});
