// Registers the service worker and stores everything the page needs to run offline: the
// files it has loaded so far and the shipped models. <html data-offline> says how it went.
const CACHE = 'glassbox-v1';
const MODELS = ['models/reverse.safetensors', 'models/sort.safetensors', 'models/language.safetensors'];

async function prepareOffline() {
  if (!('serviceWorker' in navigator) || !('caches' in window)) {
    document.documentElement.dataset.offline = 'unsupported';
    return;
  }
  try {
    await navigator.serviceWorker.register('./sw.js');
    await new Promise((resolve) => (document.readyState === 'complete' ? resolve() : addEventListener('load', resolve, { once: true })));
    const loaded = performance.getEntriesByType('resource')
      .map((entry) => entry.name)
      .filter((url) => new URL(url).origin === location.origin);
    const page = new URL('./', location.href).href;
    const cache = await caches.open(CACHE);
    await cache.addAll([...new Set([page, ...loaded, ...MODELS.map((model) => new URL(model, page).href)])]);
    document.documentElement.dataset.offline = 'ready';
  } catch (error) {
    // Offline use is a convenience: the page works online without it.
    document.documentElement.dataset.offline = `failed: ${error}`;
  }
}

prepareOffline();
