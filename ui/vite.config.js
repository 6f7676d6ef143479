// Vite builds the UI for the scheduler to embed and serve at /ui/
// (scheduler/build.rs runs `npm run build -- --outDir $OUT_DIR/ui`).
// Preact's JSX through esbuild: no framework plugin needed.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/ui/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { outDir: 'dist', sourcemap: false, chunkSizeWarningLimit: 200 },
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
