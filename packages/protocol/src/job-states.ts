/** Every status a RunPod job can report, in lifecycle order (`RUNNING` from the docs is never returned by the API). */
export const JOB_STATES = ['IN_QUEUE', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'] as const;

/** A job status as RunPod spells it. */
export type JobState = (typeof JOB_STATES)[number];

/** Statuses after which a job never changes again (the JS SDK's `isCompleted` set; Python's omits CANCELLED). */
export const TERMINAL_STATES = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'] as const;

/** A status after which a job never changes again. */
export type TerminalState = (typeof TERMINAL_STATES)[number];

const terminal: ReadonlySet<string> = new Set(TERMINAL_STATES);
const all: ReadonlySet<string> = new Set(JOB_STATES);

/** Whether `state` is final (COMPLETED, FAILED, CANCELLED or TIMED_OUT). */
export function isTerminalState(state: JobState): state is TerminalState {
  return terminal.has(state);
}

/** Whether `value` is one of RunPod's job statuses. */
export function isJobState(value: unknown): value is JobState {
  return typeof value === 'string' && all.has(value);
}
