// The model's worker. The page posts its own compiled WebAssembly.Module and the address of
// wasm-bindgen's glue; instantiating them here runs the same `start()` as the page, which
// sees there is no `window` and serves the page's requests instead of drawing it.
//
// A Rust panic or an allocation that fails traps inside a task of the wasm's event loop: a
// rejected promise nobody awaits, which never reaches the page's `onerror`. Say so to the
// page in a message of its own, then stop: the page starts a new worker.
const died = (what) => {
  self.postMessage({ died: String(what?.message ?? what ?? 'unknown error') });
  self.close();
};
self.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  died(event.reason);
});
self.addEventListener('error', (event) => {
  event.preventDefault();
  died(event.error ?? event.message);
});
self.onmessage = async (event) => {
  const { glue, module } = event.data;
  self.onmessage = null;
  const bindings = await import(glue);
  await bindings.default({ module_or_path: module });
};
