//! The background worker's state and its one render path. The browser shell implements
//! [`Shell`] (fetch, `chrome.storage`, ports, badges, timers) and forwards events here; every
//! decision is made in this module and in `core::flows`.
//!
//! State lives in storage; the maps here are a cache rebuilt on demand after the browser
//! stops the worker. A tab's state changes only through [`Worker::update`], which derives its
//! view and badge and sends each popup and the badge only what changed.

#![allow(async_fn_in_trait)]

use crate::core::messages::WorkerPush;
use crate::core::server::Server;
use crate::core::session::{Badge, Phase, SessionState, TabView};
use crate::core::session_id::SessionId;
use crate::core::settings::{ServerUrl, Settings};
use crate::core::storage::{SessionRecord, TabId};
use crate::core::store::{KeyValue, Store};
use crate::core::timings::Timings;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// The context-menu entry on the page and on the toolbar button.
pub const LOGOUT_MENU_ID: &str = "logout-tab-session";
pub const LOGOUT_MENU_TITLE: &str = "Log out this tab's session";
/// The alarm behind the slow refresh of every bound session.
pub const REFRESH_ALARM: &str = "wpp-tabs-refresh";

/// What the settings allow, as the last read found them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SettingsVerdict {
    /// No server URL or no secret key yet.
    #[default]
    Missing,
    /// Plain HTTP to another computer, without the user's opt-in: nothing is sent.
    InsecureRefused,
    /// Plain HTTP to another computer, with the user's opt-in: a lasting warning.
    InsecureAllowed,
    Ready,
}

/// An open popup's port, as the shell numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortKey(pub u32);

/// What the worker needs from the browser. Nothing here decides anything.
pub trait Shell {
    type Storage: KeyValue;
    /// The server at `url`: `core::server::HttpServer` over `fetch` in the browser.
    fn server(&self, url: ServerUrl) -> impl Server + '_;
    fn storage(&self) -> &Self::Storage;
    fn now_ms(&self) -> f64;
    fn random_u64(&self) -> u64;
    async fn sleep(&self, ms: u32);
    async fn tab_exists(&self, tab: TabId) -> bool;
    /// Posts to a popup's port; a port that closed meanwhile is ignored.
    fn post(&self, port: PortKey, push: &WorkerPush);
    fn set_badge(&self, tab: TabId, badge: &Badge);
    /// Asks the user to confirm logging out the tab's connected account (the popup page, in
    /// a small window, with the confirmation open).
    fn confirm_logout(&self, tab: TabId);
    fn warn(&self, message: &str);
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()>>>);
}

/// A tab's bound session, as cached in memory.
pub(crate) struct TabSession {
    pub record: SessionRecord,
    pub state: SessionState,
    pub polling: bool,
}

/// An open popup: the tab it watches once subscribed, and the view it was last sent.
#[derive(Default)]
struct Watch {
    tab: Option<TabId>,
    shown: Option<TabView>,
}

#[derive(Default)]
pub(crate) struct State {
    pub tabs: HashMap<TabId, TabSession>,
    ports: HashMap<PortKey, Watch>,
    next_port: u32,
    badges: HashMap<TabId, Badge>,
    /// What the last read of the settings found.
    pub settings: SettingsVerdict,
    /// Tabs the browser said do not exist (tab IDs are not reused within a browser session).
    gone: HashSet<TabId>,
    /// Sessions logged out: none of their keys may be written again.
    forgotten: HashSet<SessionId>,
}

pub struct Worker<S: Shell> {
    pub(crate) shell: S,
    pub(crate) timings: Timings,
    pub(crate) state: RefCell<State>,
}

impl<S: Shell + 'static> Worker<S> {
    pub fn new(shell: S, timings: Timings) -> Rc<Self> {
        Rc::new(Worker {
            shell,
            timings,
            state: RefCell::default(),
        })
    }

    pub fn shell(&self) -> &S {
        &self.shell
    }

    pub fn timings(&self) -> Timings {
        self.timings
    }

    pub(crate) fn store(&self) -> Store<'_, S::Storage> {
        Store::new(self.shell.storage())
    }

    pub(crate) fn server(&self, url: &ServerUrl) -> impl Server + '_ {
        self.shell.server(url.clone())
    }

    /// Changes the tab's cached session with `f`, then renders the tab. `None` when the tab
    /// has no cached session (nothing changes then, but the tab is still rendered).
    pub(crate) fn update<R>(&self, tab: TabId, f: impl FnOnce(&mut TabSession) -> R) -> Option<R> {
        let result = self.state.borrow_mut().tabs.get_mut(&tab).map(f);
        self.render(tab);
        result
    }

    /// Drops the tab's cached session (logged out, or the tab closed), then renders it.
    pub(crate) fn remove_tab(&self, tab: TabId) -> Option<TabSession> {
        let removed = self.state.borrow_mut().tabs.remove(&tab);
        self.render(tab);
        removed
    }

    /// Reads the tab's cached session. Never held across an `await`.
    pub(crate) fn read<R>(&self, tab: TabId, f: impl FnOnce(&TabSession) -> R) -> Option<R> {
        self.state.borrow().tabs.get(&tab).map(f)
    }

    /// The one render path: derives the tab's view and badge, and sends each watching popup
    /// and the badge only what changed since it was last sent.
    pub(crate) fn render(&self, tab: TabId) {
        let now = self.shell.now_ms();
        let (view, ports, badge) = {
            let mut state = self.state.borrow_mut();
            let view = state.view_of(tab, now);
            let ports: Vec<PortKey> = state
                .ports
                .iter_mut()
                .filter(|(_, w)| w.tab == Some(tab) && w.shown.as_ref() != Some(&view))
                .map(|(key, w)| {
                    w.shown = Some(view.clone());
                    *key
                })
                .collect();
            let badge = state.badge_of(tab, now);
            let badge = match state.gone.contains(&tab) || state.badges.get(&tab) == Some(&badge) {
                true => None,
                false => {
                    state.badges.insert(tab, badge.clone());
                    Some(badge)
                }
            };
            (view, ports, badge)
        };
        if !ports.is_empty() {
            let push = WorkerPush::State { view };
            for port in ports {
                self.shell.post(port, &push);
            }
        }
        if let Some(badge) = badge {
            self.shell.set_badge(tab, &badge);
        }
    }

    /// The browser may reset a tab's badge (Firefox does on navigation): set it again.
    pub(crate) fn forget_badge(&self, tab: TabId) {
        self.state.borrow_mut().badges.remove(&tab);
    }

    pub(crate) fn mark_forgotten(&self, id: &SessionId, forgotten: bool) {
        let mut state = self.state.borrow_mut();
        match forgotten {
            true => state.forgotten.insert(id.clone()),
            false => state.forgotten.remove(id),
        };
    }

    pub(crate) fn is_forgotten(&self, id: &SessionId) -> bool {
        self.state.borrow().forgotten.contains(id)
    }

    pub(crate) fn mark_gone(&self, tab: TabId) {
        self.state.borrow_mut().gone.insert(tab);
    }

    pub(crate) fn set_settings_verdict(&self, verdict: SettingsVerdict) {
        self.state.borrow_mut().settings = verdict;
    }

    /// Test builds only: panics in the middle of an update, with the state borrowed, the
    /// worst case for a module instance that went on after it.
    #[cfg(feature = "test-hooks")]
    pub fn panic_mid_update(&self) {
        let _state = self.state.borrow_mut();
        panic!("a panic the test asked for, mid-update");
    }

    // ---- popup ports ----

    /// A popup connected: the key its messages and pushes go by.
    pub fn popup_connected(&self) -> PortKey {
        let mut state = self.state.borrow_mut();
        state.next_port += 1;
        let key = PortKey(state.next_port);
        state.ports.insert(key, Watch::default());
        key
    }

    pub fn popup_disconnected(&self, port: PortKey) {
        self.state.borrow_mut().ports.remove(&port);
    }

    /// Binds the port to `tab`, once: a port watches one tab for its whole life.
    pub(crate) fn bind_port(&self, port: PortKey, tab: TabId) -> bool {
        let mut state = self.state.borrow_mut();
        match state.ports.get_mut(&port) {
            Some(watch) if watch.tab.is_none() || watch.tab == Some(tab) => {
                watch.tab = Some(tab);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn port_tab(&self, port: PortKey) -> Option<TabId> {
        self.state.borrow().ports.get(&port).and_then(|w| w.tab)
    }

    pub(crate) fn watched(&self, tab: TabId) -> bool {
        self.state
            .borrow()
            .ports
            .values()
            .any(|w| w.tab == Some(tab))
    }

    /// Every tab some popup watches.
    pub(crate) fn watched_tabs(&self) -> Vec<TabId> {
        let state = self.state.borrow();
        let tabs: HashSet<TabId> = state.ports.values().filter_map(|w| w.tab).collect();
        tabs.into_iter().collect()
    }

    // ---- the tab cache ----

    /// The tab's session from memory or storage, cached; `None` if the tab has none.
    pub(crate) async fn load_tab(&self, tab: TabId) -> Option<SessionId> {
        if let Some(id) = self.read(tab, |t| t.record.id.clone()) {
            return Some(id);
        }
        let store = self.store();
        let id = store.tab_session(tab).await.ok().flatten()?;
        let record = match store.record(&id).await {
            Ok(Some(record)) => record,
            // The binding survived without its record: rebuild a minimal one.
            _ => self.new_record(id.clone(), tab, Settings::default().server_url),
        };
        let timings = self.timings;
        // Another task may have cached it while this one awaited storage.
        self.state
            .borrow_mut()
            .tabs
            .entry(tab)
            .or_insert_with(|| TabSession {
                state: SessionState::restored(record.last_status, timings),
                record,
                polling: false,
            });
        Some(id)
    }

    /// Assigns the tab a fresh session ID unless it already has one.
    pub(crate) async fn ensure_tab(
        &self,
        tab: TabId,
        server: &ServerUrl,
    ) -> Result<SessionId, crate::core::store::StoreError> {
        if let Some(id) = self.load_tab(tab).await {
            return Ok(id);
        }
        let id = SessionId::generate(self.shell.now_ms() as u64, self.shell.random_u64());
        let fresh = self.new_record(id, tab, server.clone());
        // Check and insert without an await in between, so two requests cannot assign two IDs.
        let (record, created) = {
            let mut state = self.state.borrow_mut();
            match state.tabs.get(&tab) {
                Some(existing) => (existing.record.clone(), false),
                None => {
                    state.tabs.insert(
                        tab,
                        TabSession {
                            record: fresh.clone(),
                            state: SessionState::new(self.timings),
                            polling: false,
                        },
                    );
                    (fresh, true)
                }
            }
        };
        if created {
            let store = self.store();
            store.save_record(&record).await?;
            store.bind_tab(tab, &record.id).await?;
        }
        Ok(record.id)
    }

    fn new_record(&self, id: SessionId, tab: TabId, server_url: ServerUrl) -> SessionRecord {
        SessionRecord {
            id,
            tab_id: Some(tab),
            server_url,
            created_at: self.shell.now_ms(),
            last_status: None,
        }
    }

    /// Writes the last status into the session record when it changed.
    pub(crate) async fn save_status(&self, tab: TabId) {
        let record = self.state.borrow_mut().tabs.get_mut(&tab).and_then(|t| {
            (t.record.last_status != t.state.status).then(|| {
                t.record.last_status = t.state.status;
                t.record.clone()
            })
        });
        if let Some(record) = record {
            if let Err(err) = self.store().save_record(&record).await {
                self.shell.warn(&err.to_string());
            }
        }
    }
}

impl State {
    fn view_of(&self, tab: TabId, now: f64) -> TabView {
        if self.gone.contains(&tab) {
            return TabView::no_such_tab();
        }
        let session = self.tabs.get(&tab);
        let id = session.map(|t| &t.record.id);
        let not_started = session.is_none_or(|t| t.state.phase(now) == Phase::NotStarted);
        let mut view = match (self.settings, not_started) {
            (SettingsVerdict::Missing, true) => TabView::needs_settings(id, false),
            (SettingsVerdict::InsecureRefused, true) => TabView::needs_settings(id, true),
            _ => match session {
                Some(t) => t.state.view(id, now),
                None => SessionState::default().view(None, now),
            },
        };
        view.insecure_server = self.settings == SettingsVerdict::InsecureAllowed;
        view
    }

    fn badge_of(&self, tab: TabId, now: f64) -> Badge {
        match self.tabs.get(&tab) {
            Some(t) => t.state.badge(now),
            None => SessionState::default().badge(now),
        }
    }
}
