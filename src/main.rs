//! Entry point of the page: mounts the app (see `app::mount`).

fn main() {
    #[cfg(target_arch = "wasm32")]
    glassbox::app::mount();
}
