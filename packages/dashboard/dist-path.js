import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the built dashboard (`dist/` beside this file); the gateway serves it at `/`. */
export const dashboardDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dist');
