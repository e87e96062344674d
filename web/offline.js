// Registers the service worker (web/sw.js) and, once the page has drawn its first view and the
// browser is idle, asks it to keep every file of this build (as offline.json lists them) and to
// drop older builds. Nothing is fetched for the cache before the first view: what the page loaded
// already comes from the browser's HTTP cache, and only the files it has not loaded (the other
// shipped models) come down then. <html data-offline> says how it went ('ready', 'unsupported'
// or 'failed: …'); data-offline-build names the build kept.
async function prepareOffline() {
  const root = document.documentElement.dataset;
  if (!('serviceWorker' in navigator) || !('caches' in window)) {
    root.offline = 'unsupported';
    return;
  }
  try {
    const registration = await navigator.serviceWorker.register('./sw.js');
    // Check for a new worker now rather than whenever the browser would, and wait until it
    // runs: it takes over at once (skipWaiting), and only it knows this build's files.
    await registration.update().catch(() => undefined);
    await activated(registration.installing ?? registration.waiting);
    await new Promise((resolve) => (document.readyState === 'complete' ? resolve() : addEventListener('load', resolve, { once: true })));
    await firstView();
    await idle();
    await navigator.serviceWorker.ready;
    const reply = await new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = (event) => resolve(event.data);
      registration.active.postMessage({ type: 'glassbox:cache-build' }, [channel.port2]);
    });
    if (!reply?.ok) throw new Error(reply?.error ?? 'the service worker did not answer');
    root.offlineBuild = reply.version;
    root.offline = 'ready';
  } catch (error) {
    // Offline use is a convenience: the page works online without it.
    root.offline = `failed: ${error?.message ?? error}`;
  }
}

/** Longest wait for the first view: a page that never draws (an error, say) still gets its cache. */
const FIRST_VIEW_TIMEOUT_MS = 60_000;

/**
 * Resolves once the explorer (`#app`) has drawn a view or shows an error, or after
 * FIRST_VIEW_TIMEOUT_MS; at once on a page without `#app`.
 */
function firstView() {
  const app = document.querySelector('#app');
  const shown = () => !app || app.dataset.state === 'error' || Number(app.dataset.draws) > 0;
  if (shown()) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      observer.disconnect();
      clearTimeout(timer);
      resolve();
    };
    const observer = new MutationObserver(() => shown() && done());
    observer.observe(app, { attributes: true, attributeFilter: ['data-state', 'data-draws'] });
    const timer = setTimeout(done, FIRST_VIEW_TIMEOUT_MS);
  });
}

/** Resolves when the browser is idle (at most two seconds later), so the fill never delays a view. */
function idle() {
  return new Promise((resolve) => ('requestIdleCallback' in window
    ? requestIdleCallback(() => resolve(), { timeout: 2_000 })
    : setTimeout(resolve, 200)));
}

/** Resolves once `worker` (if any) is activated, or replaced. */
function activated(worker) {
  return new Promise((resolve) => {
    const settled = () => !worker || worker.state === 'activated' || worker.state === 'redundant';
    if (settled()) resolve();
    else worker.addEventListener('statechange', () => settled() && resolve());
  });
}

prepareOffline();
