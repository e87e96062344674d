//! glassbox: look inside a Transformer while it runs, in the browser.
//!
//! The layers point one way: [`model`] (burn) → [`analysis`] (plain data) → [`charts`]
//! (plotters) → `app` (leptos, browser only). See `ARCHITECTURE.md`.

pub mod analysis;
#[cfg(target_arch = "wasm32")]
pub mod app;
pub mod charts;
pub mod format;
pub mod model;
pub mod page;
pub mod share;
pub mod structure;
pub mod train;
pub mod worker;

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    /// The static constructors the wasm linker collects (burn registers kernels with them).
    fn __wasm_call_ctors();
}

/// Entry point of the page, and of its model worker (the same module): runs once when the
/// wasm module is instantiated.
///
/// Calling the constructors here, from an exported function, tells the linker this module is
/// not "command style"; otherwise it reruns every constructor at the start of every call from
/// JavaScript into wasm (measured: most of the time of a redraw).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    // SAFETY: called once, right after instantiation, before any code reads what the
    // constructors register.
    unsafe { __wasm_call_ctors() };
    if app::in_worker() {
        app::serve_worker();
    } else {
        app::mount();
    }
}
