// Registers the service worker (web/sw.js) and, once the page has loaded, asks it to keep every
// file of this build (as offline.json lists them) and to drop older builds. <html data-offline>
// says how it went ('ready', 'unsupported' or 'failed: …'); data-offline-build names the build kept.
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

/** Resolves once `worker` (if any) is activated, or replaced. */
function activated(worker) {
  return new Promise((resolve) => {
    const settled = () => !worker || worker.state === 'activated' || worker.state === 'redundant';
    if (settled()) resolve();
    else worker.addEventListener('statechange', () => settled() && resolve());
  });
}

prepareOffline();
