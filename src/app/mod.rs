//! The page: leptos components wired to the model, analysis and charts. The only layer that
//! touches the browser (through [`web`]).

mod bench;
mod diagnostics;
mod explorer;
mod inside;
mod session;
mod training;
mod views;
pub mod web;

/// Installs the panic hook and mounts the page into `<body>`.
pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(explorer::App);
}
