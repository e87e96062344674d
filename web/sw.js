// glassbox's service worker: after the first visit the page works with the network cut.
// The page itself fills the cache with everything it loaded (see offline.js); this worker
// answers from the cache when the network fails, and keeps what it fetches.
const CACHE = 'glassbox-v1';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    // The page: the network first, so a new deployment shows at once; the cache when offline.
    event.respondWith(fetch(request).then((response) => keep(request, response)).catch(() => cached(request)));
    return;
  }
  // Assets have content-hashed names (models are fixed files): the cache first.
  event.respondWith(cached(request).then((hit) => hit ?? fetch(request).then((response) => keep(request, response))));
});

async function cached(request) {
  const cache = await caches.open(CACHE);
  return (await cache.match(request, { ignoreSearch: request.mode === 'navigate' })) ?? undefined;
}

async function keep(request, response) {
  if (response.ok) {
    const cache = await caches.open(CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}
