//! Typed access to `chrome.storage`, following the one key scheme in `core::storage::keys`.
//! Tokens and the unremembered secret go to `storage.session` only.

use super::browser::{from_js, object_with, to_js};
use crate::core::session_id::SessionId;
use crate::core::settings::{SecretKey, Settings};
use crate::core::storage::{keys, SessionRecord, TabId, Token};
use js_sys::{Array, Object, Reflect};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use web_extensions_sys::{chrome, StorageArea};

#[derive(Clone, Copy)]
enum Area {
    Session,
    Local,
}

fn area(which: Area) -> StorageArea {
    let storage = chrome().storage();
    match which {
        Area::Session => storage.session(),
        Area::Local => storage.local(),
    }
}

/// A storage failure, with the browser's words.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "browser storage failed: {}", self.0)
    }
}

fn store_error(err: JsValue) -> StoreError {
    StoreError(super::browser::js_error_text(&err))
}

async fn get_raw(which: Area, key: &str) -> Result<JsValue, StoreError> {
    let all = area(which)
        .get(&JsValue::from_str(key))
        .await
        .map_err(store_error)?;
    Reflect::get(&all, &JsValue::from_str(key)).map_err(store_error)
}

/// Reads one key. A value that no longer decodes counts as absent, and is reported.
async fn get<T: DeserializeOwned>(which: Area, key: &str) -> Result<Option<T>, StoreError> {
    let raw = get_raw(which, key).await?;
    if raw.is_undefined() || raw.is_null() {
        return Ok(None);
    }
    match from_js(raw) {
        Ok(value) => Ok(Some(value)),
        Err(why) => {
            super::browser::console_warn(&format!("wpp-tabs: ignoring unreadable {key}: {why}"));
            Ok(None)
        }
    }
}

async fn set<T: Serialize>(which: Area, key: &str, value: &T) -> Result<(), StoreError> {
    area(which)
        .set(&object_with(key, &to_js(value)))
        .await
        .map(drop)
        .map_err(store_error)
}

async fn remove(which: Area, keys: &[String]) -> Result<(), StoreError> {
    let list: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
    area(which)
        .remove(&list)
        .await
        .map(drop)
        .map_err(store_error)
}

pub async fn tab_session(tab: TabId) -> Result<Option<SessionId>, StoreError> {
    get(Area::Session, &keys::tab(tab)).await
}

pub async fn bind_tab(tab: TabId, id: &SessionId) -> Result<(), StoreError> {
    set(Area::Session, &keys::tab(tab), id).await
}

pub async fn unbind_tab(tab: TabId) -> Result<(), StoreError> {
    remove(Area::Session, &[keys::tab(tab)]).await
}

pub async fn record(id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
    get(Area::Session, &keys::session(id)).await
}

pub async fn save_record(record: &SessionRecord) -> Result<(), StoreError> {
    set(Area::Session, &keys::session(&record.id), record).await
}

pub async fn token(id: &SessionId) -> Result<Option<Token>, StoreError> {
    get(Area::Session, &keys::token(id)).await
}

pub async fn save_token(id: &SessionId, token: &Token) -> Result<(), StoreError> {
    set(Area::Session, &keys::token(id), token).await
}

/// Removes a logged-out session's three keys, and nothing else.
pub async fn forget_session(tab: TabId, id: &SessionId) -> Result<(), StoreError> {
    remove(Area::Session, &keys::all_for(tab, id)).await
}

/// Every tab that has a session bound to it.
pub async fn bound_tabs() -> Result<Vec<(TabId, SessionId)>, StoreError> {
    let all = area(Area::Session)
        .get(&JsValue::NULL)
        .await
        .map_err(store_error)?;
    let mut bound = Vec::new();
    for key in Object::keys(all.unchecked_ref::<Object>()).iter() {
        let Some(tab) = key.as_string().as_deref().and_then(keys::parse_tab) else {
            continue;
        };
        let value = Reflect::get(&all, &key).map_err(store_error)?;
        if let Ok(id) = from_js::<SessionId>(value) {
            bound.push((tab, id));
        }
    }
    Ok(bound)
}

/// The settings, with the secret wherever the user chose to keep it.
pub async fn settings() -> Result<Option<Settings>, StoreError> {
    let Some(mut settings) = get::<Settings>(Area::Local, keys::SETTINGS).await? else {
        return Ok(None);
    };
    if !settings.remember_secret {
        settings.secret_key = get::<SecretKey>(Area::Session, keys::SECRET).await?;
    }
    Ok(Some(settings))
}

/// Saves the settings; the secret goes to `local` only when the user asked to remember it,
/// and is removed from the other area so it lives in one place.
pub async fn save_settings(settings: &Settings) -> Result<(), StoreError> {
    if settings.remember_secret {
        set(Area::Local, keys::SETTINGS, settings).await?;
        remove(Area::Session, &[keys::SECRET.to_owned()]).await
    } else {
        let without_secret = Settings {
            secret_key: None,
            ..settings.clone()
        };
        set(Area::Local, keys::SETTINGS, &without_secret).await?;
        match &settings.secret_key {
            Some(secret) => set(Area::Session, keys::SECRET, secret).await,
            None => remove(Area::Session, &[keys::SECRET.to_owned()]).await,
        }
    }
}
