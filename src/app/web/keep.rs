//! The model the user opened from disk, kept in this browser (IndexedDB, `web/keep.js`) so that
//! a reload opens it again without asking for its files: the browser keeps the files
//! themselves, and nothing is read until the model opens.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use super::files::PickedFile;

#[wasm_bindgen(module = "/web/keep.js")]
extern "C" {
    #[wasm_bindgen(catch, js_name = keepFiles)]
    async fn keep_files(entries: Array) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = keptFiles)]
    async fn kept_files() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = forgetFiles)]
    async fn forget_files() -> Result<JsValue, JsValue>;
}

/// Keeps `files` in place of the model kept before.
pub async fn keep(files: &[PickedFile]) -> Result<(), String> {
    let entries = Array::new();
    for file in files {
        let entry = Object::new();
        let _ = Reflect::set(&entry, &"file".into(), file.blob());
        let _ = Reflect::set(&entry, &"path".into(), &file.path.as_str().into());
        entries.push(&entry);
    }
    keep_files(entries)
        .await
        .map(|_| ())
        .map_err(|error| describe(&error))
}

/// The files kept, if any.
pub async fn kept() -> Result<Option<Vec<PickedFile>>, String> {
    let entries = kept_files().await.map_err(|error| describe(&error))?;
    if entries.is_undefined() || entries.is_null() {
        return Ok(None);
    }
    let files: Vec<PickedFile> = Array::from(&entries)
        .iter()
        .filter_map(|entry| {
            let file = Reflect::get(&entry, &"file".into()).ok()?;
            let path = Reflect::get(&entry, &"path".into()).ok()?.as_string();
            PickedFile::of(file, path)
        })
        .collect();
    Ok(Some(files).filter(|files| !files.is_empty()))
}

/// Forgets the kept model.
pub async fn forget() -> Result<(), String> {
    forget_files()
        .await
        .map(|_| ())
        .map_err(|error| describe(&error))
}

/// A JavaScript error in words.
fn describe(error: &JsValue) -> String {
    Reflect::get(error, &"message".into())
        .ok()
        .and_then(|message| message.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "this browser cannot keep files (no IndexedDB)".into())
}
