// A tiny static file server for dist/, used by the browser tests and the benchmark (`node serve.mjs [dir] [port]`).
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  // WebAssembly.instantiateStreaming refuses any other type.
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.bin': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
};

/**
 * Serves `root` on 127.0.0.1; port 0 picks a free one. Resolves to `{ url, close, notFound }`,
 * where `notFound` lists the paths answered with 404 (the browser's console does not name them).
 * With `fixtures` (a folder), test-only files are served from it under `/__fixtures/`; they
 * are never part of dist/ (the page's `?parity=` check fetches them).
 */
export async function serve(root, port = 0, { fixtures } = {}) {
  const base = path.resolve(root);
  if (!(await stat(base).catch(() => null))?.isDirectory()) {
    throw new Error(`${base} is not a directory: build the page first (trunk build --release --offline)`);
  }
  await assertReleaseBuild(base);
  const notFound = [];
  const server = createServer(async (request, response) => {
    const pathname = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
    const [folder, rest] = fixtures && pathname.startsWith('/__fixtures/')
      ? [path.resolve(fixtures), pathname.slice('/__fixtures'.length)]
      : [base, pathname];
    let file = path.join(folder, rest);
    // Refuse paths that climb out of the served folder.
    if (file !== folder && !file.startsWith(folder + path.sep)) {
      response.writeHead(403).end();
      return;
    }
    if ((await stat(file).catch(() => null))?.isDirectory()) file = path.join(file, 'index.html');
    try {
      const body = await readFile(file);
      const type = MIME_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
      // no-store: Chromium's in-memory cache (a fresh incognito context) fails a cacheable
      // 28 MB wasm with ERR_CACHE_WRITE_FAILURE when a second page loads it at the same time.
      response.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : body);
    } catch {
      notFound.push(pathname);
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}/`;
  const close = () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  });
  return { url, close, notFound };
}

/**
 * Throws when `root/index.html` is a page `trunk serve` wrote: its live-reload script would try
 * `ws://{{__TRUNK_ADDRESS__}}…` and log an error on every load. Nothing to check without one.
 */
export async function assertReleaseBuild(root) {
  const index = await readFile(path.join(root, 'index.html'), 'utf8').catch(() => '');
  if (index.includes('.well-known/trunk/ws') || index.includes('{{__TRUNK_ADDRESS__}}')) {
    throw new Error(`${root}/index.html holds trunk serve's live-reload script: rebuild it with trunk build --release --offline`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [root = 'dist', port = '8080'] = process.argv.slice(2);
  const { url } = await serve(root, Number(port));
  console.log(`serving ${path.resolve(root)} at ${url}`);
}
