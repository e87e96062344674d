//! The page: leptos components wired to the model, analysis and charts. The only layer that
//! touches the browser (through [`web`]).

mod bench;
mod diagnostics;
mod explorer;
mod inside;
mod parity;
mod session;
mod training;
mod views;
pub mod web;

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
