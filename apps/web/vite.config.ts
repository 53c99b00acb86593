import react from '@vitejs/plugin-react';
import { defineConfig, type ProxyOptions } from 'vite';

const webPort = Number(process.env.WEB_PORT ?? 5173);
const apiUrl = process.env.API_URL ?? 'http://127.0.0.1:3000';

// The studio is served same-origin with the API through this proxy, so the session cookie
// just works. /internal (the worker router) is deliberately never proxied.
const proxy: Record<string, ProxyOptions> = {
  '/trpc': { target: apiUrl, ws: true, changeOrigin: false },
  '/api': { target: apiUrl, changeOrigin: false },
};

export default defineConfig({
  plugins: [react()],
  server: { port: webPort, strictPort: true, host: '127.0.0.1', proxy },
  preview: { port: webPort, strictPort: true, host: '127.0.0.1', proxy },
  build: { outDir: 'dist', sourcemap: false },
});
