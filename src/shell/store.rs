//! `chrome.storage` as the core's [`KeyValue`]: raw JSON in, raw JSON out. Where each value
//! goes is decided by `core::store`.

use super::browser::{console_warn, js_error_text, object, object_from_js, to_js};
use crate::core::store::{Area, KeyValue, StoreError};
use js_sys::Array;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use web_extensions_sys::{chrome, StorageArea};

/// The browser's storage areas.
pub struct BrowserStorage;

fn area(which: Area) -> StorageArea {
    let storage = chrome().storage();
    match which {
        Area::Session => storage.session(),
        Area::Local => storage.local(),
    }
}

fn store_error(err: JsValue) -> StoreError {
    StoreError(js_error_text(&err))
}

impl KeyValue for BrowserStorage {
    async fn get(&self, which: Area, key: &str) -> Result<Option<Value>, StoreError> {
        let all = area(which)
            .get(&JsValue::from_str(key))
            .await
            .map_err(store_error)?;
        let mut all = object_from_js(&all).map_err(StoreError)?;
        Ok(all.remove(key))
    }

    async fn get_all(&self, which: Area) -> Result<serde_json::Map<String, Value>, StoreError> {
        let all = area(which).get(&JsValue::NULL).await.map_err(store_error)?;
        object_from_js(&all).map_err(StoreError)
    }

    async fn set(&self, which: Area, key: &str, value: Value) -> Result<(), StoreError> {
        area(which)
            .set(&object(&[(key, to_js(&value))]))
            .await
            .map(drop)
            .map_err(store_error)
    }

    async fn remove(&self, which: Area, keys: &[String]) -> Result<(), StoreError> {
        let list: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
        area(which)
            .remove(&list)
            .await
            .map(drop)
            .map_err(store_error)
    }

    fn warn(&self, message: &str) {
        console_warn(message);
    }
}
