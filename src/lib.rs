//! glassbox: look inside a Transformer while it runs, in the browser.
//!
//! The layers point one way: [`model`] (burn) → [`analysis`] (plain data) → [`charts`]
//! (plotters) → `app` (leptos, browser only). See `ARCHITECTURE.md`.

pub mod analysis;
#[cfg(target_arch = "wasm32")]
pub mod app;
pub mod charts;
pub mod model;

/// Entry point of the page: runs once when the wasm module is instantiated.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    app::mount();
}
