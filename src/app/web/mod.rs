//! Glue to browser APIs; the rest of the app goes through these helpers.

pub mod canvas;
pub mod files;

use std::future::Future;

/// Runs a future on the browser's event loop. Every task of the app starts here.
#[allow(clippy::disallowed_methods)]
pub fn spawn<F: Future<Output = ()> + 'static>(future: F) {
    wasm_bindgen_futures::spawn_local(future);
}

/// Value of the query parameter `name` in the page's address, if present.
pub fn query_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
}

/// Whether the system asks for a dark colour scheme.
pub fn prefers_dark() -> bool {
    web_sys::window()
        .and_then(|window| {
            window
                .match_media("(prefers-color-scheme: dark)")
                .ok()
                .flatten()
        })
        .is_some_and(|query| query.matches())
}

/// The chart style for the system's colour scheme.
pub fn chart_style() -> crate::charts::Style {
    if prefers_dark() {
        crate::charts::Style::dark()
    } else {
        crate::charts::Style::light()
    }
}

/// Where a mouse event falls on `canvas`, in canvas pixels (the canvas may be scaled by CSS).
pub fn canvas_point(
    canvas: &web_sys::HtmlCanvasElement,
    event: &web_sys::MouseEvent,
) -> Option<(f64, f64)> {
    let rect = canvas.get_bounding_client_rect();
    if rect.width() <= 0.0 || rect.height() <= 0.0 {
        return None;
    }
    let x = (f64::from(event.client_x()) - rect.left()) * f64::from(canvas.width()) / rect.width();
    let y = (f64::from(event.client_y()) - rect.top()) * f64::from(canvas.height()) / rect.height();
    Some((x, y))
}

/// Milliseconds since the page started, for timing.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or(0.0, |performance| performance.now())
}

/// Lets the browser paint before heavy work continues.
pub async fn next_frame() {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// The browser's own words for its WebGPU adapter (`vendor architecture description`), which
/// are richer than what wgpu reports; `None` without WebGPU.
pub async fn webgpu_adapter_description() -> Option<String> {
    use js_sys::{Function, Promise, Reflect};
    use wasm_bindgen::JsCast;

    let navigator = web_sys::window()?.navigator();
    let gpu = Reflect::get(&navigator, &"gpu".into()).ok()?;
    if gpu.is_undefined() || gpu.is_null() {
        return None;
    }
    let request: Function = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let promise: Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let info = Reflect::get(&adapter, &"info".into()).ok()?;
    let parts: Vec<String> = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|key| Reflect::get(&info, &(*key).into()).ok()?.as_string())
        .filter(|part| !part.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}
