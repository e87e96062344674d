// glassbox's service worker: after one visit the page works with the network cut, and after a
// new deployment it shows the new build's files, never a stale copy of the old ones.
//
// Each build lists every file with its SHA-256 in offline.json (scripts/offline-manifest, run by
// Trunk after each build). This worker keeps a build's files in a cache named after the build,
// `glassbox-<version>`, and keeps the newest manifest it has seen in `glassbox-meta`. Loading
// the page (network first) fetches the newest manifest too; a file that manifest lists comes
// from that build's cache, else from an older build's cache when its bytes are the same (same
// path, same hash, e.g. an unchanged wasm), else from the network, and is kept only when its
// bytes have the listed hash. Once the page has drawn its first view, offline.js asks this worker
// to fill the build's cache with every file listed (from the HTTP cache where the page loaded it
// already); then every other glassbox cache is deleted.

const PREFIX = 'glassbox-';
const META = 'glassbox-meta';
const MANIFEST = 'offline.json';

/** The newest manifest this worker has read, while it runs (a promise; undefined at start). */
let newest;
/** The one filling of a build's cache in progress, shared by every page that asks. */
let filling;

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(request.mode === 'navigate' ? page(request) : file(request, event));
});

self.addEventListener('message', (event) => {
  if (event.data?.type !== 'glassbox:cache-build') return;
  const [port] = event.ports;
  filling ??= fillCache().finally(() => {
    filling = undefined;
  });
  event.waitUntil(filling.then(
    (version) => port?.postMessage({ ok: true, version }),
    (error) => port?.postMessage({ ok: false, error: error?.message ?? String(error) }),
  ));
});

/** The URL of `path` (a manifest path) in the page's folder. */
const urlOf = (path) => new URL(path, self.registration.scope).href;
const buildCache = (manifest) => `${PREFIX}${manifest.version}`;

/**
 * The manifest path `url` stands for: its path inside the page's folder, without the query, with
 * `index.html` for a folder (the page itself is `index.html`); undefined outside the folder.
 */
function pathOf(url) {
  const address = new URL(url);
  address.search = '';
  address.hash = '';
  const scope = self.registration.scope;
  if (!address.href.startsWith(scope)) return undefined;
  const path = decodeURIComponent(address.href.slice(scope.length));
  return path === '' || path.endsWith('/') ? `${path}index.html` : path;
}

/** Whether `value` looks like what scripts/offline-manifest writes. */
const isManifest = (value) => typeof value?.version === 'string' && value.version !== ''
  && typeof value.files === 'object' && value.files !== null;

/**
 * The newest manifest: fetched from the network when `refresh` (and kept in `glassbox-meta`),
 * else the one this worker read last, else the one kept; null or undefined when there is none.
 */
function latest(refresh) {
  if (refresh || !newest) {
    newest = (refresh ? fetchManifest() : Promise.resolve(undefined))
      .then(async (manifest) => (manifest === undefined ? keptManifest(META) : manifest))
      .catch(() => undefined);
  }
  return newest;
}

/**
 * The server's manifest; null when the server answers without one (a build without it, such as
 * `trunk serve`'s: then no file is served from the cache while online); undefined when the
 * server cannot be reached, and the kept manifest serves.
 */
async function fetchManifest() {
  let response;
  try {
    response = await fetch(urlOf(MANIFEST), { cache: 'no-store' });
  } catch {
    return undefined;
  }
  const manifest = response.ok ? await response.json().catch(() => null) : null;
  if (!isManifest(manifest)) return null;
  await putManifest(META, manifest);
  return manifest;
}

async function putManifest(cacheName, manifest) {
  const cache = await caches.open(cacheName);
  const body = JSON.stringify(manifest);
  await cache.put(urlOf(MANIFEST), new Response(body, { headers: { 'content-type': 'application/json' } }));
}

async function keptManifest(cacheName) {
  const kept = await (await caches.open(cacheName)).match(urlOf(MANIFEST));
  const manifest = await kept?.json().catch(() => undefined);
  return isManifest(manifest) ? manifest : undefined;
}

/** The page itself: the network first, so a new deployment shows at once; the cache when offline. */
async function page(request) {
  const [response, manifest] = await Promise.all([fetch(request).catch(() => undefined), latest(true)]);
  const path = pathOf(request.url);
  if (response) {
    if (response.ok && manifest?.files[path]) await keep(manifest, path, response.clone()).catch(() => false);
    return response;
  }
  return (await cached(manifest, path)) ?? (await caches.match(request, { ignoreSearch: true })) ?? Response.error();
}

/** Any other file of the page's origin; what the network gives is checked and kept after the answer. */
async function file(request, event) {
  const manifest = await latest(false);
  const path = pathOf(request.url);
  if (!manifest?.files[path]) {
    // Not a file of the newest build: the network, or whatever was kept when offline.
    return fetch(request).catch(async (error) => (await caches.match(request)) ?? Promise.reject(error));
  }
  const hit = await cached(manifest, path);
  if (hit) return hit;
  try {
    const response = await fetch(new Request(request, { cache: 'no-cache' }));
    if (response.ok) event.waitUntil(keep(manifest, path, response.clone()).catch(() => false));
    return response;
  } catch (error) {
    // Offline before this build was kept: an older build's copy is better than nothing.
    return (await caches.match(urlOf(path))) ?? Promise.reject(error);
  }
}

/**
 * The kept copy of `path` for `manifest`'s build: from its cache, or copied there from an older
 * build's cache whose manifest gives `path` the same hash; undefined when neither has it.
 */
async function cached(manifest, path) {
  const hash = manifest?.files[path];
  if (!hash) return undefined;
  const cache = await openBuild(manifest);
  const hit = await cache.match(urlOf(path));
  if (hit) return hit;
  for (const name of await caches.keys()) {
    if (!name.startsWith(PREFIX) || name === META || name === buildCache(manifest)) continue;
    if ((await keptManifest(name))?.files[path] !== hash) continue;
    const copy = await (await caches.open(name)).match(urlOf(path));
    if (copy) {
      await cache.put(urlOf(path), copy.clone());
      return copy;
    }
  }
  return undefined;
}

/** The cache of `manifest`'s build, which also holds that manifest (so later builds can reuse its files). */
async function openBuild(manifest) {
  const name = buildCache(manifest);
  if (!(await caches.has(name))) await putManifest(name, manifest);
  return caches.open(name);
}

/** Keeps `response` as `path` of `manifest`'s build when its bytes have the listed hash; says whether it did. */
async function keep(manifest, path, response) {
  const bytes = await response.arrayBuffer();
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
  if (hex !== manifest.files[path]) return false;
  const { status, statusText, headers } = response;
  await (await openBuild(manifest)).put(urlOf(path), new Response(bytes, { status, statusText, headers }));
  return true;
}

/** Keeps every file of the newest build, then deletes every other build's cache; resolves to the build's version. */
async function fillCache() {
  const manifest = await latest(true);
  if (!manifest) throw new Error(`this build has no ${MANIFEST} (scripts/offline-manifest writes it)`);
  for (const path of Object.keys(manifest.files)) {
    if (await cached(manifest, path)) continue;
    // What the page loaded before this worker controlled it is in the HTTP cache: take it from
    // there when its bytes are this build's, and go to the network only for the rest.
    const local = await fetch(urlOf(path), { cache: 'force-cache' }).catch(() => undefined);
    if (local?.ok && (await keep(manifest, path, local))) continue;
    const response = await fetch(urlOf(path), { cache: 'no-cache' });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    if (!(await keep(manifest, path, response))) {
      throw new Error(`${path} is not the file ${MANIFEST} lists (is a deployment under way?)`);
    }
  }
  for (const name of await caches.keys()) {
    if (name.startsWith(PREFIX) && name !== META && name !== buildCache(manifest)) await caches.delete(name);
  }
  return manifest.version;
}
