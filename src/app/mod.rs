//! The page: leptos components wired to the model, analysis and charts. The only layer that
//! touches the browser (through [`web`]).

mod bench;
mod diagnostics;
mod explorer;
mod inside;
mod model_worker;
mod parity;
mod session;
mod training;
mod views;
pub mod web;

pub use model_worker::in_worker;

/// Installs the panic hook and serves the page's requests: the model worker's side.
pub fn serve_worker() {
    console_error_panic_hook::set_once();
    model_worker::host::serve();
}

/// Installs the panic hook and mounts the page into `<body>`: the explorer, or the internal
/// parity check when the address asks for one (`?parity=tiny`, for the browser tests).
pub fn mount() {
    console_error_panic_hook::set_once();
    if let Some(fixture) = web::query_param("parity") {
        leptos::mount::mount_to_body(move || {
            parity::ParityPage(parity::ParityPageProps { fixture })
        });
        return;
    }
    leptos::mount::mount_to_body(explorer::App);
}
