/**
 * Absolute path of the built dashboard: the `dist/` folder of `@kiln/dashboard` (made by
 * `npm run build -w @kiln/dashboard`). The folder may not exist yet; the gateway then answers `/`
 * with how to build it.
 *
 * @example
 * import { dashboardDir } from '@kiln/dashboard';
 * new Gateway(config, { dashboardDir });
 */
export declare const dashboardDir: string;
