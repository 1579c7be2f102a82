import { randomUUID } from 'node:crypto';
import { parseErrorString, type Job } from '@kiln/protocol';
import type { Clock } from '@kiln/protocol';
import type { KilnWorker } from './define-worker.ts';
import type { ErrorOrigin } from './error-body.ts';
import { startJob } from './job-runner.ts';
import type { Logger } from './log.ts';
import type { SetupGate } from './setup-gate.ts';

/** What the local modes share with production: the same setup gate, clock, logger and error origin. */
export interface LocalDeps {
  setup: SetupGate<unknown>;
  clock: Clock;
  log: Logger;
  origin: ErrorOrigin;
  tmpRoot?: string;
}

/**
 * Runs one job from `--test-input` (or `test_input.json`) through the same code path as production,
 * streaming handlers included, prints the status object on stdout and returns 1 when the job failed.
 * Progress updates and chunks go to stderr as JSON lines as they happen.
 */
export async function runTestInput(worker: KilnWorker, testInput: unknown, deps: LocalDeps): Promise<number> {
  const given = testInput as Record<string, unknown>;
  const job: Job = { ...given, id: typeof given['id'] === 'string' ? given['id'] : 'local_test', input: given['input'] };
  const started = deps.clock.now();
  const running = startJob(job, {
    definition: worker.definition,
    setup: deps.setup,
    clock: deps.clock,
    log: deps.log,
    origin: deps.origin,
    ...(deps.tmpRoot ? { tmpRoot: deps.tmpRoot } : {}),
    channel: {
      progress: async (value) => void process.stderr.write(JSON.stringify({ progress: value }) + '\n'),
      chunk: async (value) => void process.stderr.write(JSON.stringify({ chunk: value }) + '\n'),
    },
  });
  const outcome = await running.outcome;
  const executionTime = deps.clock.now() - started;
  if (outcome.kind !== 'result') {
    process.stdout.write(JSON.stringify({ id: job.id, status: 'CANCELLED', executionTime }) + '\n');
    return 1;
  }
  const status = outcome.timedOut ? 'TIMED_OUT' : outcome.failed ? 'FAILED' : 'COMPLETED';
  process.stdout.write(JSON.stringify({ id: job.id ?? randomUUID(), status, executionTime, ...outcome.body }) + '\n');
  if (outcome.failed && outcome.body.error !== undefined) {
    const info = parseErrorString(outcome.body.error);
    process.stderr.write(`job failed: ${info ? `${info.error_type}: ${info.error_message}\n${info.error_traceback}` : outcome.body.error}\n`);
  }
  return outcome.failed ? 1 : 0;
}
