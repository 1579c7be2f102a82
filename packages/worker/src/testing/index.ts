export { LoopbackJobServer } from './loopback-job-server.ts';
export type { CannedAnswer, JobApiRoute, LoopbackJobServerOptions, QueuedJob, RecordedRequest } from './loopback-job-server.ts';
export { startWorkerInProcess } from './run-in-process.ts';
export type { InProcessWorker } from './run-in-process.ts';
export { useLoopbackServer } from './use-loopback-server.ts';
