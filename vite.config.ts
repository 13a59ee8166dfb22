import { resolve } from 'node:path';
import { defineConfig } from 'vite';

// The front end: plain TypeScript pages, one HTML entry each, built into dist/web.
const root = resolve(import.meta.dirname, 'web');

export default defineConfig({
  root,
  publicDir: false,
  build: {
    outDir: resolve(import.meta.dirname, 'dist/web'),
    emptyOutDir: true,
    sourcemap: true,
    rollupOptions: {
      input: {
        login: resolve(root, 'login.html'),
        portal: resolve(root, 'index.html'),
        shell: resolve(root, 'shell.html'),
        admin: resolve(root, 'admin.html'),
        device: resolve(root, 'device.html'),
      },
    },
  },
  server: {
    proxy: {
      '/api': { target: 'http://127.0.0.1:8080', ws: true },
    },
  },
});
