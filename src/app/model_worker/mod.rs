//! The model's Web Worker: training runs there, so that a burn-flex step never holds the page.
//!
//! The worker runs this same wasm module: the page posts it its `WebAssembly.Module` (compiled
//! once, cached by the browser) and the URL of wasm-bindgen's glue, and `web/worker.js`
//! instantiates them. [`in_worker`] tells `start()` which side it is on. Messages are the
//! [`crate::worker::protocol`] types, each encoded into one transferred `ArrayBuffer`.

pub mod client;
pub mod host;
pub mod remote;
mod traces;

use wasm_bindgen::{JsCast, JsValue};

use crate::worker::protocol::Envelope;

/// True inside a worker (there is no `window`).
pub fn in_worker() -> bool {
    web_sys::window().is_none()
        && js_sys::global()
            .dyn_into::<web_sys::WorkerGlobalScope>()
            .is_ok()
}

/// Posts `message` to `target` (a `Worker`, or the worker's own global scope), handing its
/// buffer over instead of copying it.
fn post<T: serde::Serialize>(target: &JsValue, message: &Envelope<T>) -> Result<(), String> {
    let bytes = js_sys::Uint8Array::from(message.encode().as_slice());
    let transfer = js_sys::Array::of1(&bytes.buffer());
    let post: js_sys::Function = js_sys::Reflect::get(target, &"postMessage".into())
        .ok()
        .and_then(|function| function.dyn_into().ok())
        .ok_or("this browser cannot post to a worker")?;
    post.call2(target, &bytes, &transfer)
        .map(|_| ())
        .map_err(|error| format!("posting to the model worker failed: {error:?}"))
}

/// The bytes of a message event's `Uint8Array`.
fn bytes_of(event: &web_sys::MessageEvent) -> Option<Vec<u8>> {
    event
        .data()
        .dyn_into::<js_sys::Uint8Array>()
        .ok()
        .map(|array| array.to_vec())
}
