export { FakeHuggingFaceHub } from './fake-hub.ts';
export type { FakeRepoInput, HubRequest } from './fake-hub.ts';
export { startLoopbackS3 } from './s3-server.ts';
export type { LoopbackS3 } from './s3-server.ts';
