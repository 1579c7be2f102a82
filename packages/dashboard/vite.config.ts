import { defineConfig } from 'vite';

// The gateway serves dist/ at `/` and `/assets/*`; in `npx vite` the API goes to a local gateway.
const gateway = process.env.KILN_GATEWAY ?? 'http://127.0.0.1:8090';

export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  // The workspace packages' TypeScript sources (their `kiln-source` export), so no `tsc -b` is needed first.
  resolve: { conditions: ['kiln-source', 'browser', 'module', 'import', 'default'] },
  build: { outDir: 'dist', assetsDir: 'assets', emptyOutDir: true, target: 'es2022', sourcemap: false },
  server: {
    proxy: {
      '/v2': { target: gateway, changeOrigin: true },
      '/kiln': { target: gateway, changeOrigin: true },
    },
  },
});
