//! Typed access to the browser's storage, following the one key scheme in
//! `core::storage::keys`. The browser supplies only a raw [`KeyValue`] area pair; where each
//! value goes (and that a token or an unremembered secret only ever goes to `session`) is
//! decided here.

#![allow(async_fn_in_trait)]

use crate::core::session_id::SessionId;
use crate::core::settings::{SecretKey, Settings};
use crate::core::storage::{keys, SessionRecord, TabId, Token};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Area {
    /// `storage.session`: memory only, extension pages only.
    Session,
    /// `storage.local`: on disk. Never a token.
    Local,
}

/// A storage failure, with the browser's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "browser storage failed: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for crate::core::api::ApiError {
    fn from(err: StoreError) -> Self {
        crate::core::api::ApiError::Storage(err.0)
    }
}

/// The browser's `chrome.storage` areas, as JSON values.
pub trait KeyValue {
    async fn get(&self, area: Area, key: &str) -> Result<Option<Value>, StoreError>;
    async fn get_all(&self, area: Area) -> Result<serde_json::Map<String, Value>, StoreError>;
    async fn set(&self, area: Area, key: &str, value: Value) -> Result<(), StoreError>;
    async fn remove(&self, area: Area, keys: &[String]) -> Result<(), StoreError>;
    /// Reports a value that no longer decodes: it counts as absent.
    fn warn(&self, message: &str);
}

/// The extension's stored data, typed.
pub struct Store<'k, K> {
    kv: &'k K,
}

impl<'k, K: KeyValue> Store<'k, K> {
    pub fn new(kv: &'k K) -> Self {
        Store { kv }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        area: Area,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let Some(raw) = self.kv.get(area, key).await? else {
            return Ok(None);
        };
        if raw.is_null() {
            return Ok(None);
        }
        match serde_json::from_value(raw) {
            Ok(value) => Ok(Some(value)),
            Err(why) => {
                self.kv
                    .warn(&format!("wpp-tabs: ignoring unreadable {key}: {why}"));
                Ok(None)
            }
        }
    }

    async fn set<T: Serialize>(&self, area: Area, key: &str, value: &T) -> Result<(), StoreError> {
        let value = serde_json::to_value(value).expect("stored types serialize");
        self.kv.set(area, key, value).await
    }

    pub async fn tab_session(&self, tab: TabId) -> Result<Option<SessionId>, StoreError> {
        self.get(Area::Session, &keys::tab(tab)).await
    }

    pub async fn bind_tab(&self, tab: TabId, id: &SessionId) -> Result<(), StoreError> {
        self.set(Area::Session, &keys::tab(tab), id).await
    }

    pub async fn unbind_tab(&self, tab: TabId) -> Result<(), StoreError> {
        self.kv.remove(Area::Session, &[keys::tab(tab)]).await
    }

    pub async fn record(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        self.get(Area::Session, &keys::session(id)).await
    }

    pub async fn save_record(&self, record: &SessionRecord) -> Result<(), StoreError> {
        self.set(Area::Session, &keys::session(&record.id), record)
            .await
    }

    pub async fn token(&self, id: &SessionId) -> Result<Option<Token>, StoreError> {
        self.get(Area::Session, &keys::token(id)).await
    }

    pub async fn save_token(&self, id: &SessionId, token: &Token) -> Result<(), StoreError> {
        self.set(Area::Session, &keys::token(id), token).await
    }

    /// Removes a logged-out session's three keys, and nothing else.
    pub async fn forget_session(&self, tab: TabId, id: &SessionId) -> Result<(), StoreError> {
        self.kv.remove(Area::Session, &keys::all_for(tab, id)).await
    }

    /// Removes a closed session's record and token, when no tab is bound to it any more.
    pub async fn forget_session_keys(&self, id: &SessionId) -> Result<(), StoreError> {
        self.kv
            .remove(Area::Session, &[keys::session(id), keys::token(id)])
            .await
    }

    /// Every tab that has a session bound to it.
    pub async fn bound_tabs(&self) -> Result<Vec<(TabId, SessionId)>, StoreError> {
        let all = self.kv.get_all(Area::Session).await?;
        Ok(all
            .into_iter()
            .filter_map(|(key, value)| {
                let tab = keys::parse_tab(&key)?;
                Some((tab, serde_json::from_value(value).ok()?))
            })
            .collect())
    }

    /// The settings, with the secret wherever the user chose to keep it.
    pub async fn settings(&self) -> Result<Option<Settings>, StoreError> {
        let Some(mut settings) = self.get::<Settings>(Area::Local, keys::SETTINGS).await? else {
            return Ok(None);
        };
        if !settings.remember_secret {
            settings.secret_key = self.get::<SecretKey>(Area::Session, keys::SECRET).await?;
        }
        Ok(Some(settings))
    }

    /// Saves the settings; the secret goes to `local` only when the user asked to remember
    /// it, and is removed from the other area so it lives in one place.
    pub async fn save_settings(&self, settings: &Settings) -> Result<(), StoreError> {
        let secret_key = [keys::SECRET.to_owned()];
        if settings.remember_secret {
            self.set(Area::Local, keys::SETTINGS, settings).await?;
            return self.kv.remove(Area::Session, &secret_key).await;
        }
        let without_secret = Settings {
            secret_key: None,
            ..settings.clone()
        };
        self.set(Area::Local, keys::SETTINGS, &without_secret)
            .await?;
        match &settings.secret_key {
            Some(secret) => self.set(Area::Session, keys::SECRET, secret).await,
            None => self.kv.remove(Area::Session, &secret_key).await,
        }
    }
}

/// An in-memory [`KeyValue`], for the native tests: two plain maps.
pub mod memory {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct MemoryKv {
        pub areas: RefCell<HashMap<Area, serde_json::Map<String, Value>>>,
        /// When set, every call fails with this message.
        pub failing: RefCell<Option<String>>,
        pub warnings: RefCell<Vec<String>>,
    }

    impl MemoryKv {
        fn check(&self) -> Result<(), StoreError> {
            match &*self.failing.borrow() {
                Some(why) => Err(StoreError(why.clone())),
                None => Ok(()),
            }
        }

        pub fn area(&self, area: Area) -> serde_json::Map<String, Value> {
            self.areas.borrow().get(&area).cloned().unwrap_or_default()
        }
    }

    /// Yields to the executor once, as every call of the browser's storage does: other tasks
    /// run between a read and a write, which is where races live.
    struct YieldOnce(bool);

    impl std::future::Future for YieldOnce {
        type Output = ();
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            if self.0 {
                return std::task::Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }

    impl KeyValue for MemoryKv {
        async fn get(&self, area: Area, key: &str) -> Result<Option<Value>, StoreError> {
            YieldOnce(false).await;
            self.check()?;
            Ok(self.area(area).get(key).cloned())
        }

        async fn get_all(&self, area: Area) -> Result<serde_json::Map<String, Value>, StoreError> {
            YieldOnce(false).await;
            self.check()?;
            Ok(self.area(area))
        }

        async fn set(&self, area: Area, key: &str, value: Value) -> Result<(), StoreError> {
            // The write is issued at once and lands later, as in the browser.
            self.check()?;
            let mut areas = self.areas.borrow_mut();
            areas.entry(area).or_default().insert(key.to_owned(), value);
            Ok(())
        }

        async fn remove(&self, area: Area, keys: &[String]) -> Result<(), StoreError> {
            self.check()?;
            let mut areas = self.areas.borrow_mut();
            let map = areas.entry(area).or_default();
            for key in keys {
                map.remove(key);
            }
            Ok(())
        }

        fn warn(&self, message: &str) {
            self.warnings.borrow_mut().push(message.to_owned());
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::memory::MemoryKv;
    use super::*;
    use crate::core::settings::ServerUrl;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn settings(remember: bool) -> Settings {
        Settings {
            server_url: ServerUrl::parse("http://127.0.0.1:21465").unwrap(),
            remember_secret: remember,
            secret_key: Some(SecretKey::parse("THISISMYSECURETOKEN").unwrap()),
            allow_insecure_http: false,
        }
    }

    #[test]
    fn an_unremembered_secret_lives_only_in_the_session_area() {
        let kv = MemoryKv::default();
        let store = Store::new(&kv);
        block_on(store.save_settings(&settings(false))).unwrap();
        assert!(!Value::Object(kv.area(Area::Local))
            .to_string()
            .contains("THISISMYSECURETOKEN"));
        assert_eq!(kv.area(Area::Session)[keys::SECRET], "THISISMYSECURETOKEN");
        assert_eq!(block_on(store.settings()).unwrap(), Some(settings(false)));

        // Remembering moves it to local and out of session: one place at a time.
        block_on(store.save_settings(&settings(true))).unwrap();
        assert!(kv.area(Area::Session).get(keys::SECRET).is_none());
        assert_eq!(
            kv.area(Area::Local)[keys::SETTINGS]["secretKey"],
            "THISISMYSECURETOKEN"
        );
        assert_eq!(block_on(store.settings()).unwrap(), Some(settings(true)));
    }

    #[test]
    fn unreadable_values_count_as_absent_and_are_reported() {
        let kv = MemoryKv::default();
        let store = Store::new(&kv);
        let (three, four) = (TabId::new(3).unwrap(), TabId::new(4).unwrap());
        block_on(kv.set(Area::Session, &keys::tab(three), Value::from(42))).unwrap();
        block_on(kv.set(Area::Session, &keys::tab(four), Value::from("session_a_b"))).unwrap();
        assert_eq!(block_on(store.tab_session(three)), Ok(None));
        assert_eq!(kv.warnings.borrow().len(), 1);
        assert!(kv.warnings.borrow()[0].contains("wpp_tab_3"));
        let bound = block_on(store.bound_tabs()).unwrap();
        assert_eq!(
            bound,
            vec![(four, SessionId::parse("session_a_b").unwrap())]
        );
    }

    #[test]
    fn storage_failures_surface_as_errors() {
        let kv = MemoryKv::default();
        *kv.failing.borrow_mut() = Some("quota".into());
        let store = Store::new(&kv);
        let err = block_on(store.settings()).unwrap_err();
        assert_eq!(err.to_string(), "browser storage failed: quota");
    }
}
