//! Glue to browser APIs; the rest of the app goes through these helpers.

pub mod canvas;
pub mod files;
pub mod keep;

use std::future::Future;

use crate::model::AdapterSummary;
use crate::page::embed::HostPolicy;

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
    let mut style = if prefers_dark() {
        crate::charts::Style::dark()
    } else {
        crate::charts::Style::light()
    };
    // Canvases have `pixel_ratio()` device pixels per CSS pixel: text keeps its size on screen.
    style.font_size = (f64::from(style.font_size) * pixel_ratio()).round() as u32;
    style
}

/// Device pixels per CSS pixel (`devicePixelRatio`: 2 on most HiDPI screens), within 1..=4.
pub fn pixel_ratio() -> f64 {
    web_sys::window()
        .map(|window| window.device_pixel_ratio())
        .filter(|ratio| ratio.is_finite())
        .map_or(1.0, |ratio| ratio.clamp(1.0, 4.0))
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
    use wasm_bindgen::JsCast;
    let performance = match web_sys::window() {
        Some(window) => window.performance(),
        None => js_sys::global()
            .dyn_into::<web_sys::WorkerGlobalScope>()
            .ok()
            .and_then(|scope| scope.performance()),
    };
    performance.map_or(0.0, |performance| performance.now())
}

/// Bytes of the page's WebAssembly memory. It only ever grows, so after a load it is the
/// load's peak (the benchmark reads it from `#app`'s `data-wasm-bytes`).
pub fn wasm_memory_bytes() -> f64 {
    use wasm_bindgen::JsCast;
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .ok()
        .and_then(|memory| memory.buffer().dyn_into::<js_sys::ArrayBuffer>().ok())
        .map_or(0.0, |buffer| f64::from(buffer.byte_length()))
}

/// Lets the browser paint before heavy work continues.
pub async fn next_frame() {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| set_timeout(&resolve, 0));
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Calls `callback` after `ms` milliseconds, in the page or in a worker.
fn set_timeout(callback: &js_sys::Function, ms: i32) {
    use wasm_bindgen::JsCast;
    if let Some(window) = web_sys::window() {
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(callback, ms);
    } else if let Ok(scope) = js_sys::global().dyn_into::<web_sys::WorkerGlobalScope>() {
        let _ = scope.set_timeout_with_callback_and_timeout_and_arguments_0(callback, ms);
    }
}

/// Waits `ms` milliseconds on the browser's clock (a timer, so the page stays responsive).
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| set_timeout(&resolve, ms));
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// The browser's WebGPU adapter: its own words for it (`vendor architecture description`,
/// richer than what wgpu reports) and whether it is a software fallback; `None` without WebGPU.
pub async fn webgpu_adapter() -> Option<AdapterSummary> {
    use js_sys::{Function, Promise, Reflect};
    use wasm_bindgen::JsCast;

    // The page's or a worker's navigator: both have `gpu` where WebGPU is there.
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
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
    // `GPUAdapterInfo.isFallbackAdapter` since Chrome 130; the adapter's own before that.
    let fallback = [&info, &adapter].into_iter().any(|holder| {
        Reflect::get(holder, &"isFallbackAdapter".into())
            .ok()
            .and_then(|value| value.as_bool())
            .unwrap_or(false)
    });
    Some(AdapterSummary {
        description: if parts.is_empty() {
            "unnamed".into()
        } else {
            parts.join(" ")
        },
        fallback,
    })
}

/// The page's query string, `?` included (empty when there is none).
pub fn location_search() -> String {
    web_sys::window()
        .and_then(|window| window.location().search().ok())
        .unwrap_or_default()
}

/// The page's full address.
pub fn location_href() -> String {
    web_sys::window()
        .and_then(|window| window.location().href().ok())
        .unwrap_or_default()
}

/// Reopens the page at `query` (`?` included), a new history entry.
pub fn reopen_with_query(query: &str) {
    if let Some(window) = web_sys::window() {
        let _ = window
            .location()
            .set_search(query.strip_prefix('?').unwrap_or(query));
    }
}

/// Puts `query` in the address bar without reloading: as a new history entry when `push`,
/// else in place of the current one. Through `Reflect`, as web-sys's `History` is not enabled.
pub fn set_query(query: &str, push: bool) {
    use wasm_bindgen::{JsCast, JsValue};
    let Some(window) = web_sys::window() else {
        return;
    };
    let path = window.location().pathname().unwrap_or_default();
    let Ok(history) = js_sys::Reflect::get(&window, &JsValue::from_str("history")) else {
        return;
    };
    let method = if push { "pushState" } else { "replaceState" };
    if let Ok(function) = js_sys::Reflect::get(&history, &JsValue::from_str(method))
        && let Ok(function) = function.dyn_into::<js_sys::Function>()
    {
        let url = format!("{path}{query}");
        let _ = function.call3(
            &history,
            &JsValue::NULL,
            &JsValue::from_str(""),
            &JsValue::from_str(&url),
        );
    }
}

/// Calls `on_change` whenever the user goes back or forward in the page's history.
pub fn on_history_change(on_change: impl FnMut() + 'static) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Some(window) = web_sys::window() else {
        return;
    };
    let listener = Closure::<dyn FnMut()>::new(on_change);
    let add = js_sys::Reflect::get(&window, &"addEventListener".into())
        .ok()
        .and_then(|add| add.dyn_into::<js_sys::Function>().ok());
    if let Some(add) = add {
        let _ = add.call2(
            &window,
            &"popstate".into(),
            listener.as_ref().unchecked_ref(),
        );
    }
    // The page lives as long as the listener: it is never removed.
    listener.forget();
}

/// Copies `text` to the clipboard; the promise settles later, so failures are reported to
/// `on_failure` then.
pub fn copy_text(text: &str, on_done: impl FnOnce(Result<(), String>) + 'static) {
    use wasm_bindgen::JsCast;
    let clipboard = web_sys::window()
        .and_then(|window| js_sys::Reflect::get(&window.navigator(), &"clipboard".into()).ok())
        .filter(|clipboard| !clipboard.is_undefined());
    let Some(clipboard) = clipboard else {
        on_done(Err("this browser offers no clipboard here".into()));
        return;
    };
    let write = js_sys::Reflect::get(&clipboard, &"writeText".into())
        .ok()
        .and_then(|write| write.dyn_into::<js_sys::Function>().ok());
    let Some(write) = write else {
        on_done(Err("this browser cannot write to the clipboard".into()));
        return;
    };
    match write.call1(&clipboard, &text.into()) {
        Ok(promise) => {
            let promise = js_sys::Promise::resolve(&promise);
            spawn(async move {
                let outcome = wasm_bindgen_futures::JsFuture::from(promise).await;
                on_done(outcome.map(|_| ()).map_err(|error| format!("{error:?}")));
            });
        }
        Err(error) => on_done(Err(format!("{error:?}"))),
    }
}

/// Whom the page exchanges messages with, read once from its `host` parameter (the page
/// rewrites its address later, so it is never read again); the rules are in [`crate::page::embed`].
fn host_policy() -> &'static HostPolicy {
    static POLICY: std::sync::OnceLock<HostPolicy> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| HostPolicy::from_param(query_param("host").as_deref()))
}

/// What the page should say about its `host` parameter: `Some` when it is not an origin, in
/// which case messages are off both ways.
pub fn embed_host_problem() -> Option<String> {
    host_policy().problem()
}

/// The window that embeds this page in a frame; `None` when the page is not in one.
fn parent_window(window: &web_sys::Window) -> Option<wasm_bindgen::JsValue> {
    js_sys::Reflect::get(window, &"parent".into())
        .ok()
        .filter(|parent| !parent.is_undefined() && !parent.is_null())
        .filter(|parent| !js_sys::Object::is(parent, window))
}

/// The embedding page's origin as the browser names it: `location.ancestorOrigins[0]`
/// (Chromium, Safari), else the origin of `document.referrer` (the page that loaded the frame).
fn parent_origin(window: &web_sys::Window) -> Option<String> {
    let ancestors = js_sys::Reflect::get(&window.location(), &"ancestorOrigins".into()).ok();
    let first = ancestors
        .filter(|list| !list.is_undefined() && !list.is_null())
        .and_then(|list| js_sys::Reflect::get(&list, &0.into()).ok())
        .and_then(|origin| origin.as_string());
    first.or_else(|| {
        let referrer = window.document()?.referrer();
        (!referrer.is_empty())
            .then(|| web_sys::Url::new(&referrer).ok())
            .flatten()
            .map(|url| url.origin())
    })
}

/// Posts `message` to the page that embeds this one in an iframe, with the target origin
/// [`HostPolicy::reply_origin`] gives (the `host` parameter, else the parent's own origin);
/// nothing when not embedded or when no origin is known. Messages carry only what the view shows.
pub fn post_to_host(message: &serde_json::Value) {
    use wasm_bindgen::JsCast;
    let Some(window) = web_sys::window() else {
        return;
    };
    let Some(parent) = parent_window(&window) else {
        return;
    };
    let Some(target) = host_policy().reply_origin(parent_origin(&window).as_deref()) else {
        return;
    };
    let Ok(value) = js_sys::JSON::parse(&message.to_string()) else {
        return;
    };
    if let Some(post) = js_sys::Reflect::get(&parent, &"postMessage".into())
        .ok()
        .and_then(|post| post.dyn_into::<js_sys::Function>().ok())
    {
        let _ = post.call2(&parent, &value, &target.into());
    }
}

/// Counts a message on `<html>` (`data-messages-accepted`, `data-messages-refused`), so the
/// embedding page and the tests can see what became of what they posted.
fn count_message(attribute: &str, count: u32) {
    if let Some(root) = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.document_element())
    {
        let _ = root.set_attribute(attribute, &count.to_string());
    }
}

/// Calls `on_message` with the data (as JSON) of each message the embedding page posts to this
/// one: only from `window.parent`, and only from the origin the `host` parameter names, if it
/// names one (see [`crate::page::embed`]). Messages from any other window (a popup, a sibling
/// frame, this page itself) and data that is not a JSON-like object are refused and counted.
pub fn on_host_message(mut on_message: impl FnMut(serde_json::Value) + 'static) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Some(window) = web_sys::window() else {
        return;
    };
    let policy = host_policy();
    let parent = parent_window(&window);
    let (mut accepted, mut refused) = (0_u32, 0_u32);
    let listener =
        Closure::<dyn FnMut(wasm_bindgen::JsValue)>::new(move |event: wasm_bindgen::JsValue| {
            let get = |key: &str| js_sys::Reflect::get(&event, &key.into()).unwrap_or_default();
            let source = get("source");
            let from_parent = parent
                .as_ref()
                .is_some_and(|parent| js_sys::Object::is(&source, parent));
            let origin = get("origin").as_string().unwrap_or_default();
            let value = policy
                .accepts(from_parent, &origin)
                .then(|| js_sys::JSON::stringify(&get("data")).ok())
                .flatten()
                .and_then(|text| text.as_string())
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .filter(serde_json::Value::is_object);
            match value {
                Some(value) => {
                    accepted += 1;
                    count_message("data-messages-accepted", accepted);
                    on_message(value);
                }
                None => {
                    refused += 1;
                    count_message("data-messages-refused", refused);
                }
            }
        });
    if let Some(add) = js_sys::Reflect::get(&window, &"addEventListener".into())
        .ok()
        .and_then(|add| add.dyn_into::<js_sys::Function>().ok())
    {
        let _ = add.call2(
            &window,
            &"message".into(),
            listener.as_ref().unchecked_ref(),
        );
    }
    listener.forget();
}

/// Calls `on_escape` whenever Escape is pressed anywhere in the page.
pub fn on_escape(mut on_escape: impl FnMut() + 'static) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Some(window) = web_sys::window() else {
        return;
    };
    let listener =
        Closure::<dyn FnMut(wasm_bindgen::JsValue)>::new(move |event: wasm_bindgen::JsValue| {
            if js_sys::Reflect::get(&event, &"key".into())
                .ok()
                .and_then(|key| key.as_string())
                .as_deref()
                == Some("Escape")
            {
                on_escape();
            }
        });
    if let Some(add) = js_sys::Reflect::get(&window, &"addEventListener".into())
        .ok()
        .and_then(|add| add.dyn_into::<js_sys::Function>().ok())
    {
        let _ = add.call2(
            &window,
            &"keydown".into(),
            listener.as_ref().unchecked_ref(),
        );
    }
    listener.forget();
}

/// Scrolls the element with `id` into view; nothing when
/// there is no such element.
pub fn scroll_to(id: &str) {
    use wasm_bindgen::{JsCast, JsValue};
    let Some(element) = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.get_element_by_id(id))
    else {
        return;
    };
    if let Ok(function) = js_sys::Reflect::get(&element, &JsValue::from_str("scrollIntoView"))
        && let Ok(function) = function.dyn_into::<js_sys::Function>()
    {
        let _ = function.call0(&element);
    }
}
