//! Typed access to the browser's storage, following the one key scheme in
//! `core::storage::keys`. The browser supplies only a raw [`KeyValue`] area pair; where each
//! value goes (and that a token or an unremembered secret only ever goes to `session`) is
//! decided here.

#![allow(async_fn_in_trait)]

use crate::core::index::SessionIndex;
use crate::core::session_id::SessionId;
use crate::core::settings::{SecretKey, Settings};
use crate::core::storage::{keys, TabId, Token};
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

impl StoreError {
    /// What the user reads: the [`fmt::Display`] sentence, from the catalogue.
    pub fn text(&self) -> crate::core::text::Text {
        crate::core::text::Text::new("error_browser_storage").arg(&self.0)
    }
}

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

    pub async fn token(&self, id: &SessionId) -> Result<Option<Token>, StoreError> {
        self.get(Area::Session, &keys::token(id)).await
    }

    pub async fn save_token(&self, id: &SessionId, token: &Token) -> Result<(), StoreError> {
        self.set(Area::Session, &keys::token(id), token).await
    }

    pub async fn forget_token(&self, id: &SessionId) -> Result<(), StoreError> {
        self.kv.remove(Area::Session, &[keys::token(id)]).await
    }

    /// The durable session index; empty when none was ever saved.
    pub async fn index(&self) -> Result<SessionIndex, StoreError> {
        Ok(self
            .get(Area::Local, keys::SESSIONS)
            .await?
            .unwrap_or_default())
    }

    pub async fn save_index(&self, index: &SessionIndex) -> Result<(), StoreError> {
        self.set(Area::Local, keys::SESSIONS, index).await
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

    /// The settings, with each server's secret wherever the user chose to keep it. The
    /// one-server shape is migrated on first read and stored again, with nothing lost.
    pub async fn settings(&self) -> Result<Option<Settings>, StoreError> {
        let Some(raw) = self.kv.get(Area::Local, keys::SETTINGS).await? else {
            return Ok(None);
        };
        let (mut settings, migrated) = match Settings::from_stored(raw) {
            Ok(read) => read,
            Err(why) => {
                self.kv.warn(&format!(
                    "wpp-tabs: ignoring unreadable {}: {why}",
                    keys::SETTINGS
                ));
                return Ok(None);
            }
        };
        if migrated {
            let legacy = self
                .get::<SecretKey>(Area::Session, keys::LEGACY_SECRET)
                .await?;
            let server = &mut settings.servers[0];
            if !server.remember.is_remembered() {
                server.secret_key = legacy;
            }
            self.save_settings(&settings).await?;
            self.kv
                .remove(Area::Session, &[keys::LEGACY_SECRET.to_owned()])
                .await?;
            return Ok(Some(settings));
        }
        for server in settings
            .servers
            .iter_mut()
            .filter(|s| !s.clear_secret_at_rest())
        {
            server.secret_key = self.get(Area::Session, &keys::secret(&server.id)).await?;
        }
        Ok(Some(settings))
    }

    /// Saves the settings. A clear secret goes to `local` only when the user asked to
    /// remember it and gave no passphrase (then `local` holds only the sealed form, and the
    /// unlocked key stays in `session`), and is removed from the other area so it lives in
    /// one place; the secrets of servers no longer listed go too.
    pub async fn save_settings(&self, settings: &Settings) -> Result<(), StoreError> {
        let mut stored = settings.clone();
        for server in stored
            .servers
            .iter_mut()
            .filter(|s| !s.clear_secret_at_rest())
        {
            server.secret_key = None;
        }
        self.set(Area::Local, keys::SETTINGS, &stored).await?;
        let mut stale: Vec<String> = self
            .kv
            .get_all(Area::Session)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| {
                key.starts_with("wpp_secret_")
                    && !settings.servers.iter().any(|s| &keys::secret(&s.id) == key)
            })
            .collect();
        for server in &settings.servers {
            let key = keys::secret(&server.id);
            match (&server.secret_key, server.clear_secret_at_rest()) {
                (Some(secret), false) => self.set(Area::Session, &key, secret).await?,
                _ => stale.push(key),
            }
        }
        self.kv.remove(Area::Session, &stale).await
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
        let mut settings = Settings::default();
        let server = &mut settings.servers[0];
        server.server_url = ServerUrl::parse("http://127.0.0.1:21465").unwrap();
        server.remember = match remember {
            true => crate::core::settings::Remember::Always,
            false => crate::core::settings::Remember::Session,
        };
        server.secret_key = Some(SecretKey::parse("THISISMYSECURETOKEN").unwrap());
        settings
    }

    #[test]
    fn an_unremembered_secret_lives_only_in_the_session_area() {
        let kv = MemoryKv::default();
        let store = Store::new(&kv);
        block_on(store.save_settings(&settings(false))).unwrap();
        assert!(!Value::Object(kv.area(Area::Local))
            .to_string()
            .contains("THISISMYSECURETOKEN"));
        assert_eq!(
            kv.area(Area::Session)["wpp_secret_s1"],
            "THISISMYSECURETOKEN"
        );
        assert_eq!(block_on(store.settings()).unwrap(), Some(settings(false)));

        // Remembering moves it to local and out of session: one place at a time.
        block_on(store.save_settings(&settings(true))).unwrap();
        assert!(kv.area(Area::Session).get("wpp_secret_s1").is_none());
        assert_eq!(
            kv.area(Area::Local)[keys::SETTINGS]["servers"][0]["secretKey"],
            "THISISMYSECURETOKEN"
        );
        assert_eq!(block_on(store.settings()).unwrap(), Some(settings(true)));
    }

    #[test]
    fn each_server_keeps_its_own_secret_and_a_removed_one_takes_it_along() {
        let kv = MemoryKv::default();
        let store = Store::new(&kv);
        let mut two = settings(false);
        let mut second = two.servers[0].clone();
        second.id = two.next_server_id();
        second.secret_key = Some(SecretKey::parse("OTHERSECRET").unwrap());
        two.servers.push(second);
        block_on(store.save_settings(&two)).unwrap();
        assert_eq!(kv.area(Area::Session)["wpp_secret_s2"], "OTHERSECRET");
        assert_eq!(block_on(store.settings()).unwrap(), Some(two.clone()));
        two.servers.pop();
        block_on(store.save_settings(&two)).unwrap();
        assert!(kv.area(Area::Session).get("wpp_secret_s2").is_none());
        assert_eq!(
            kv.area(Area::Session)["wpp_secret_s1"],
            "THISISMYSECURETOKEN"
        );
    }

    #[test]
    fn the_old_settings_shape_migrates_with_its_secret_wherever_it_was() {
        for remember in [false, true] {
            let kv = MemoryKv::default();
            let mut old = serde_json::json!({
                "serverUrl": "https://wpp.example.com",
                "rememberSecret": remember,
                "allowInsecureHttp": false
            });
            if remember {
                old["secretKey"] = "THISISMYSECURETOKEN".into();
            } else {
                block_on(kv.set(
                    Area::Session,
                    keys::LEGACY_SECRET,
                    "THISISMYSECURETOKEN".into(),
                ))
                .unwrap();
            }
            block_on(kv.set(Area::Local, keys::SETTINGS, old)).unwrap();
            let store = Store::new(&kv);
            let settings = block_on(store.settings()).unwrap().unwrap();
            let server = settings.default_server();
            assert_eq!(server.server_url.as_str(), "https://wpp.example.com");
            assert_eq!(
                server.secret_key.as_ref().map(SecretKey::expose),
                Some("THISISMYSECURETOKEN"),
                "remember: {remember}"
            );
            assert!(kv.area(Area::Local)[keys::SETTINGS]
                .get("servers")
                .is_some());
            assert!(kv.area(Area::Session).get(keys::LEGACY_SECRET).is_none());
            assert_eq!(block_on(store.settings()).unwrap(), Some(settings));
        }
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

    #[test]
    fn a_locked_secret_is_at_rest_only_sealed_and_unlocked_only_in_memory() {
        use crate::core::lock::{Sealed, IV_LEN, SALT_LEN};
        let kv = MemoryKv::default();
        let store = Store::new(&kv);
        let mut locked = settings(true);
        locked.servers[0].locked_secret = Some(Sealed::new(&[1; SALT_LEN], &[2; IV_LEN], &[3; 40]));
        block_on(store.save_settings(&locked)).unwrap();
        let server = &kv.area(Area::Local)[keys::SETTINGS]["servers"][0];
        assert!(server.get("secretKey").is_none() && server["lockedSecret"]["v"] == 1);
        assert_eq!(
            kv.area(Area::Session)["wpp_secret_s1"],
            "THISISMYSECURETOKEN"
        );
        assert_eq!(block_on(store.settings()).unwrap(), Some(locked.clone()));
        // Locked again: the clear key leaves memory, the sealed one stays.
        locked.servers[0].secret_key = None;
        block_on(store.save_settings(&locked)).unwrap();
        assert!(kv.area(Area::Session).get("wpp_secret_s1").is_none());
        assert_eq!(block_on(store.settings()).unwrap(), Some(locked));
    }
}
