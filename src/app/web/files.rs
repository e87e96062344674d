//! Local files in and out: reading what the user picks or drops, fetching bundled assets, and
//! offering bytes as a download. Nothing leaves the machine.

use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A file the user chose, not read yet.
#[derive(Clone, Debug)]
pub struct PickedFile {
    /// Its name, without a path.
    pub name: String,
    /// Its path inside a picked folder (`webkitRelativePath`), else its name.
    pub path: String,
    /// Its size in bytes.
    pub size_bytes: f64,
    blob: web_sys::Blob,
}

impl PickedFile {
    /// Reads the whole file.
    pub async fn read(&self) -> Result<Vec<u8>, String> {
        let buffer = JsFuture::from(self.blob.array_buffer())
            .await
            .map_err(|error| format!("reading {} failed: {}", self.name, describe(&error)))?;
        Ok(Uint8Array::new(&buffer).to_vec())
    }
}

/// A picked file read by range (`Blob.slice`), so that a model's weights are read one tensor
/// at a time and never whole.
impl crate::model::hf::ByteSource for PickedFile {
    fn size(&self) -> u64 {
        self.size_bytes as u64
    }

    async fn read(&self, start: u64, end: u64) -> Result<Vec<u8>, String> {
        let slice = self
            .blob
            .slice_with_f64_and_f64(start as f64, end as f64)
            .map_err(|error| format!("reading {} failed: {}", self.name, describe(&error)))?;
        let buffer = JsFuture::from(slice.array_buffer())
            .await
            .map_err(|error| format!("reading {} failed: {}", self.name, describe(&error)))?;
        Ok(Uint8Array::new(&buffer).to_vec())
    }
}

/// The files of a `FileList` (from an `<input type=file>` or a drop's `dataTransfer`).
///
/// Read through `Reflect` so the page needs no extra web-sys features (each one rebuilds the
/// whole WebGPU stack).
pub fn files_of(list: &JsValue) -> Vec<PickedFile> {
    let length = Reflect::get(list, &"length".into())
        .ok()
        .and_then(|value| value.as_f64())
        .unwrap_or(0.0) as u32;
    (0..length)
        .filter_map(|index| {
            let file = Reflect::get(list, &JsValue::from(index)).ok()?;
            let path = Reflect::get(&file, &"webkitRelativePath".into())
                .ok()
                .and_then(|path| path.as_string())
                .filter(|path| !path.is_empty());
            PickedFile::of(file, path)
        })
        .collect()
}

impl PickedFile {
    /// The JavaScript `File` `file`, at `path` inside a folder (else at its name).
    pub fn of(file: JsValue, path: Option<String>) -> Option<Self> {
        let name = Reflect::get(&file, &"name".into()).ok()?.as_string()?;
        let size_bytes = Reflect::get(&file, &"size".into()).ok()?.as_f64()?;
        Some(Self {
            path: path.unwrap_or_else(|| name.clone()),
            name,
            size_bytes,
            blob: file.unchecked_into(),
        })
    }

    /// The JavaScript `File` (or `Blob`) itself.
    pub fn blob(&self) -> &JsValue {
        &self.blob
    }
}

/// The files chosen in an `<input type=file>`.
pub fn input_files(input: &web_sys::HtmlInputElement) -> Vec<PickedFile> {
    Reflect::get(input, &"files".into())
        .map(|list| files_of(&list))
        .unwrap_or_default()
}

/// The files dropped with a drag-and-drop event.
pub fn dropped_files(event: &web_sys::DragEvent) -> Vec<PickedFile> {
    Reflect::get(event, &"dataTransfer".into())
        .and_then(|transfer| Reflect::get(&transfer, &"files".into()))
        .map(|list| files_of(&list))
        .unwrap_or_default()
}

/// The folders among a drop's items (`webkitGetAsEntry`), taken while the event lasts: its
/// items are readable only then. Empty when nothing dropped is a folder.
pub fn dropped_folders(event: &web_sys::DragEvent) -> Vec<JsValue> {
    let Ok(items) = Reflect::get(event, &"dataTransfer".into())
        .and_then(|transfer| Reflect::get(&transfer, &"items".into()))
    else {
        return Vec::new();
    };
    let length = Reflect::get(&items, &"length".into())
        .ok()
        .and_then(|value| value.as_f64())
        .unwrap_or(0.0) as u32;
    (0..length)
        .filter_map(|index| {
            let item = Reflect::get(&items, &JsValue::from(index)).ok()?;
            let entry = call0(&item, "webkitGetAsEntry")?;
            let is_directory = Reflect::get(&entry, &"isDirectory".into())
                .ok()?
                .as_bool()?;
            is_directory.then_some(entry)
        })
        .collect()
}

/// Every file under the dropped `folders`, depth first, each with its path inside the drop
/// (`gpt2/config.json`), as the folder picker names them.
pub async fn folder_files(folders: Vec<JsValue>) -> Result<Vec<PickedFile>, String> {
    let mut files = Vec::new();
    let mut pending = folders;
    while let Some(folder) = pending.pop() {
        let reader = call0(&folder, "createReader").ok_or("the dropped folder cannot be read")?;
        // `readEntries` gives a batch at a time (100 in Chromium) until it gives none.
        loop {
            let batch = callback_promise(&reader, "readEntries").await?;
            let batch: Array = batch.unchecked_into();
            if batch.length() == 0 {
                break;
            }
            for entry in batch.iter() {
                let is_directory = Reflect::get(&entry, &"isDirectory".into())
                    .ok()
                    .and_then(|value| value.as_bool())
                    .unwrap_or(false);
                if is_directory {
                    pending.push(entry);
                    continue;
                }
                let path = Reflect::get(&entry, &"fullPath".into())
                    .ok()
                    .and_then(|path| path.as_string())
                    .unwrap_or_default();
                let file = callback_promise(&entry, "file").await?;
                let name = Reflect::get(&file, &"name".into())
                    .ok()
                    .and_then(|name| name.as_string())
                    .unwrap_or_default();
                let size_bytes = Reflect::get(&file, &"size".into())
                    .ok()
                    .and_then(|size| size.as_f64())
                    .unwrap_or(0.0);
                files.push(PickedFile {
                    name,
                    path: path.trim_start_matches('/').to_string(),
                    size_bytes,
                    blob: file.unchecked_into(),
                });
            }
        }
    }
    Ok(files)
}

/// `target.method()`, when `target` has such a method and it returns something.
fn call0(target: &JsValue, method: &str) -> Option<JsValue> {
    let function: js_sys::Function = Reflect::get(target, &method.into()).ok()?.dyn_into().ok()?;
    let value = function.call0(target).ok()?;
    (!value.is_null() && !value.is_undefined()).then_some(value)
}

/// Calls the callback-style `target.method(success, failure)` (the file system entries' API)
/// and waits for its answer.
async fn callback_promise(target: &JsValue, method: &str) -> Result<JsValue, String> {
    let function: js_sys::Function = Reflect::get(target, &method.into())
        .ok()
        .and_then(|function| function.dyn_into().ok())
        .ok_or_else(|| format!("the dropped folder has no {method}"))?;
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let _ = function.call2(target, &resolve, &reject);
    });
    JsFuture::from(promise)
        .await
        .map_err(|error| format!("reading the dropped folder failed: {}", describe(&error)))
}

/// Fetches a file that ships with the page (a relative URL, so it works from any sub-path).
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|error| format!("fetching {url} failed: {}", describe(&error)))?;
    let response: web_sys::Response = response
        .dyn_into()
        .map_err(|_| format!("fetching {url} gave no response"))?;
    if !response.ok() {
        return Err(format!("fetching {url} failed: HTTP {}", response.status()));
    }
    let buffer = response.array_buffer().map_err(|error| describe(&error))?;
    let buffer = JsFuture::from(buffer)
        .await
        .map_err(|error| format!("reading {url} failed: {}", describe(&error)))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Offers `bytes` to the user as a download called `file_name`.
pub fn download(file_name: &str, bytes: &[u8]) -> Result<(), String> {
    let document = web_sys::window()
        .and_then(|window| window.document())
        .ok_or("no document")?;
    let parts = Array::of1(&Uint8Array::from(bytes));
    let blob =
        web_sys::Blob::new_with_u8_array_sequence(&parts).map_err(|error| describe(&error))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|error| describe(&error))?;
    let anchor: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|error| describe(&error))?
        .unchecked_into();
    anchor.set_href(&url);
    anchor.set_download(file_name);
    anchor.click();
    revoke_later(url);
    Ok(())
}

/// How long a download's object URL stays valid after its click. The browser reads the blob
/// after `click()` returns, so revoking it at once can cut the download off; a minute is ample
/// for any file the page writes, and the blob is freed then.
pub const REVOKE_AFTER_MS: i32 = 60_000;

/// Revokes the object URL `url` after [`REVOKE_AFTER_MS`]; at once when no timer can be set.
fn revoke_later(url: String) {
    let Some(window) = web_sys::window() else {
        let _ = web_sys::Url::revoke_object_url(&url);
        return;
    };
    let revoke_url = url.clone();
    let revoke = wasm_bindgen::closure::Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&revoke_url);
    });
    if window
        .set_timeout_with_callback_and_timeout_and_arguments_0(
            revoke.unchecked_ref(),
            REVOKE_AFTER_MS,
        )
        .is_err()
    {
        let _ = web_sys::Url::revoke_object_url(&url);
    }
}

/// A JavaScript error in words.
fn describe(error: &JsValue) -> String {
    error
        .as_string()
        .or_else(|| {
            Reflect::get(error, &"message".into())
                .ok()
                .and_then(|message| message.as_string())
        })
        .unwrap_or_else(|| format!("{error:?}"))
}

/// Offers `url` (e.g. a canvas's `data:` URL) as a download called `file_name`.
pub fn download_url(file_name: &str, url: &str) -> Result<(), String> {
    let document = web_sys::window()
        .and_then(|window| window.document())
        .ok_or("no document")?;
    let anchor: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|error| describe(&error))?
        .unchecked_into();
    anchor.set_href(url);
    anchor.set_download(file_name);
    anchor.click();
    Ok(())
}
