// Builds the console's front end into dist/, which cohort-console serves with
// --assets-dir. No plugin is needed for Preact: esbuild compiles its JSX.
import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, target: 'es2022' },
  // `npm run dev` proxies the API to a console on its default port.
  server: { proxy: { '/api': 'http://127.0.0.1:7080' } },
});
