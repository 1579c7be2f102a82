export { main, VERSION } from './main.ts';
export { loadWorker } from './load-worker.ts';
