//! The background worker's state and its one render path. The browser shell implements
//! [`Shell`] (fetch, `chrome.storage`, ports, badges, timers) and forwards events here; every
//! decision is made in this module and in `core::flows` and `core::manager`.
//!
//! State lives in storage: the durable index (`storage.local`) and the tab bindings and
//! tokens (`storage.session`). The maps here are a cache of it, loaded once per worker life.
//! A session's state changes only through [`Worker::update`], which derives the views and
//! badge and sends each page and the badge only what changed.

#![allow(async_fn_in_trait)]

use crate::core::api::ApiError;
use crate::core::index::{SessionEntry, SessionIndex};
use crate::core::messages::{SessionRow, SessionsView, WorkerPush};
use crate::core::paint::paint;
use crate::core::push::SocketKey;
use crate::core::server::Server;
use crate::core::session::{Badge, Phase, SessionState, TabTitle, TabView};
use crate::core::session_id::SessionId;
use crate::core::settings::{ServerConfig, ServerId, ServerUrl, Settings, StaleAfterDays};
use crate::core::storage::TabId;
use crate::core::store::{KeyValue, Store, StoreError};
use crate::core::text::Text;
use crate::core::timings::Timings;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// The context-menu entries on the page and on the toolbar button.
pub const LOGOUT_MENU_ID: &str = "logout-tab-session";
/// The entries' titles: catalogue keys.
pub const LOGOUT_MENU_TITLE: &str = "menu_logout";
pub const SESSIONS_MENU_ID: &str = "open-sessions-page";
/// The keyboard command (manifest `commands`) that opens the Sessions page.
pub const SESSIONS_COMMAND: &str = "open-sessions";
pub const SESSIONS_MENU_TITLE: &str = "menu_sessions";
/// The alarm behind the slow refresh of every session.
pub const REFRESH_ALARM: &str = "wpp-tabs-refresh";
/// A drop notification's ID: this prefix and the session ID.
pub const DROP_NOTIFICATION_PREFIX: &str = "wpp-drop:";

/// What the settings allow for one server, as the last read found them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SettingsVerdict {
    /// No server URL or no secret key yet.
    #[default]
    Missing,
    /// The remembered secret key is locked: its passphrase is needed first.
    Locked,
    /// Plain HTTP to another computer, without the user's opt-in: nothing is sent.
    InsecureRefused,
    /// Plain HTTP to another computer, with the user's opt-in: a lasting warning.
    InsecureAllowed,
    Ready,
}

impl SettingsVerdict {
    pub fn of(server: &ServerConfig) -> SettingsVerdict {
        match (
            server.secret_key.is_some(),
            server.is_insecure(),
            server.check_transport(),
        ) {
            (false, _, _) if server.locked_secret.is_some() => SettingsVerdict::Locked,
            (false, _, _) => SettingsVerdict::Missing,
            (true, _, Err(_)) => SettingsVerdict::InsecureRefused,
            (true, true, Ok(())) => SettingsVerdict::InsecureAllowed,
            (true, false, Ok(())) => SettingsVerdict::Ready,
        }
    }

    pub fn allows_requests(self) -> bool {
        matches!(
            self,
            SettingsVerdict::Ready | SettingsVerdict::InsecureAllowed
        )
    }
}

/// An open page's port, as the shell numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortKey(pub u32);

/// Which page a port belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    Popup,
    Sessions,
    Diagnostics,
}

/// A browser notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub id: String,
    pub title: Text,
    pub message: Text,
}

/// What the worker needs from the browser. Nothing here decides anything.
pub trait Shell {
    type Storage: KeyValue;
    /// WebCrypto in the browser: seals and opens a remembered secret key.
    type Crypto: crate::core::lock::Crypto;
    /// The server at `url`: `core::server::HttpServer` over `fetch` in the browser.
    fn server(&self, url: ServerUrl) -> impl Server + '_;
    fn storage(&self) -> &Self::Storage;
    fn crypto(&self) -> &Self::Crypto;
    fn now_ms(&self) -> f64;
    fn random_u64(&self) -> u64;
    async fn sleep(&self, ms: u32);
    async fn tab_exists(&self, tab: TabId) -> bool;
    /// Opens a new background tab; `None` when the browser refused.
    async fn open_tab(&self) -> Option<TabId>;
    /// Brings the tab and its window to the front.
    fn focus_tab(&self, tab: TabId);
    /// Posts to a page's port; a port that closed meanwhile is ignored.
    fn post(&self, port: PortKey, push: &WorkerPush);
    fn set_badge(&self, tab: TabId, badge: &Badge);
    /// The toolbar button's tooltip for the tab.
    fn set_title(&self, tab: TabId, title: &TabTitle);
    fn notify(&self, notice: &Notice);
    /// Opens the Sessions page in a tab (or focuses it).
    fn open_sessions_page(&self);
    /// Asks the user to confirm logging out the tab's connected account (the popup page, in
    /// a small window, with the confirmation open).
    fn confirm_logout(&self, tab: TabId);
    fn warn(&self, message: &str);
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()>>>);
    /// Opens a WebSocket to `url`; what happens to it comes back through
    /// [`Worker::socket_signal`] with `key`.
    fn socket_open(&self, key: SocketKey, url: &str);
    /// Sends a text frame; a connection that closed meanwhile is ignored.
    fn socket_send(&self, key: SocketKey, text: &str);
    /// Closes a connection; no signal of it follows.
    fn socket_close(&self, key: SocketKey);
}

/// A session the worker knows: its index entry and its live state.
pub(crate) struct Live {
    pub entry: SessionEntry,
    pub state: SessionState,
    /// The tab it is attached to, if any.
    pub tab: Option<TabId>,
    pub polling: bool,
    /// When its status was last asked (ms), for pacing.
    pub checked_at: f64,
    /// The account was read since it last connected.
    pub account_read: bool,
    /// When a `qrCode` event last brought its QR, or its server's connection (re)joined (ms; 0:
    /// never): a QR newer than that comes by push.
    pub qr_pushed_at: f64,
}

/// An open page: what it watches once subscribed, and what it was last sent.
struct Watch {
    kind: PageKind,
    tab: Option<TabId>,
    subscribed: bool,
    shown_tab: Option<TabView>,
    shown_list: Option<SessionsView>,
}

/// What a server's `show-all-sessions` last said.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RemoteList {
    pub names: Vec<SessionId>,
    pub error: Option<Text>,
}

#[derive(Default)]
pub(crate) struct State {
    loaded: bool,
    pub sessions: HashMap<SessionId, Live>,
    pub tabs: HashMap<TabId, SessionId>,
    ports: HashMap<PortKey, Watch>,
    next_port: u32,
    badges: HashMap<TabId, Badge>,
    titles: HashMap<TabId, TabTitle>,
    /// The settings as last read; `None` before the first read.
    pub settings: Option<Settings>,
    pub remote: BTreeMap<ServerId, RemoteList>,
    /// Tabs the browser said do not exist (tab IDs are not reused within a browser session).
    gone: HashSet<TabId>,
    /// Sessions logged out or forgotten: none of their keys may be written again.
    forgotten: HashSet<SessionId>,
    pub pacing: bool,
    /// Each locked server's unlock tries (wrong passphrases, the delay before the next).
    pub unlocks: HashMap<ServerId, crate::core::lock::Throttle>,
    /// Each server's Socket.IO connection (`core::push`).
    pub push: crate::core::push::Links,
    /// The minute alarm's spread checks are under way: a second alarm adds none.
    pub sweeping: bool,
}

pub struct Worker<S: Shell> {
    pub(crate) shell: S,
    pub(crate) timings: Timings,
    pub(crate) state: RefCell<State>,
    /// The request statistics and the event log (`core::diagnostics`), apart from `state`:
    /// a request or an event is recorded whatever else holds the state.
    pub(crate) diagnostics: RefCell<crate::core::diagnostics::Diagnostics>,
    /// Itself, for the tasks it starts from `&self` (the log's delayed write).
    pub(crate) me: std::rc::Weak<Self>,
}

impl<S: Shell + 'static> Worker<S> {
    pub fn new(shell: S, timings: Timings) -> Rc<Self> {
        Rc::new_cyclic(|me| Worker {
            shell,
            timings,
            state: RefCell::default(),
            diagnostics: RefCell::default(),
            me: me.clone(),
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

    /// The server at `url`; every request to it is counted in the diagnostics.
    pub(crate) fn server(&self, url: &ServerUrl) -> impl Server + '_ {
        let inner = self.shell.server(url.clone());
        crate::core::diagnostics::Recording::new(self, url.clone(), inner)
    }

    /// Changes the session's live state with `f`, then renders it. `None` when the session
    /// is not known (nothing changes then).
    pub(crate) fn update<R>(&self, id: &SessionId, f: impl FnOnce(&mut Live) -> R) -> Option<R> {
        let result = self.state.borrow_mut().sessions.get_mut(id).map(f);
        self.render(id);
        result
    }

    /// Reads the session's live state. Never held across an `await`.
    pub(crate) fn read<R>(&self, id: &SessionId, f: impl FnOnce(&Live) -> R) -> Option<R> {
        self.state.borrow().sessions.get(id).map(f)
    }

    /// The session attached to the tab, if any.
    pub(crate) fn session_of(&self, tab: TabId) -> Option<SessionId> {
        self.state.borrow().tabs.get(&tab).cloned()
    }

    /// Renders what shows the session: its tab, and the Sessions pages.
    pub(crate) fn render(&self, id: &SessionId) {
        let tab = self.read(id, |l| l.tab).flatten();
        if let Some(tab) = tab {
            self.render_tab(tab);
        }
        self.render_lists();
    }

    /// Renders a tab: each popup watching it, its badge and its tooltip, only what changed.
    pub(crate) fn render_tab(&self, tab: TabId) {
        let now = self.shell.now_ms();
        let (view, ports, badge, title) = {
            let mut state = self.state.borrow_mut();
            let view = state.view_of(tab, now);
            // Each port, and whether this is its first state.
            let ports: Vec<(PortKey, bool)> = state
                .ports
                .iter_mut()
                .filter(|(_, w)| {
                    w.kind == PageKind::Popup
                        && w.subscribed
                        && w.tab == Some(tab)
                        && w.shown_tab.as_ref() != Some(&view)
                })
                .map(|(key, w)| (*key, w.shown_tab.replace(view.clone()).is_none()))
                .collect();
            let gone = state.gone.contains(&tab);
            let badge = state.badge_of(tab, now);
            let badge = match gone || state.badges.get(&tab) == Some(&badge) {
                true => None,
                false => {
                    state.badges.insert(tab, badge.clone());
                    Some(badge)
                }
            };
            let title = view.title();
            let title = match gone || state.titles.get(&tab) == Some(&title) {
                true => None,
                false => {
                    state.titles.insert(tab, title.clone());
                    Some(title)
                }
            };
            (view, ports, badge, title)
        };
        for (port, first) in ports {
            let push = WorkerPush::State {
                view: Box::new(view.clone()),
                paint: first.then(|| paint(&view)),
            };
            self.shell.post(port, &push);
        }
        if let Some(badge) = badge {
            self.shell.set_badge(tab, &badge);
        }
        if let Some(title) = title {
            self.shell.set_title(tab, &title);
        }
        self.reconcile_push();
    }

    /// Sends each open Sessions page the list, when it changed; and each popup of a tab
    /// without a session its attach list.
    pub(crate) fn render_lists(&self) {
        let now = self.shell.now_ms();
        let (list, ports, empty_tabs) = {
            let mut state = self.state.borrow_mut();
            let wanted = state
                .ports
                .values()
                .any(|w| w.kind == PageKind::Sessions && w.subscribed);
            let list = wanted.then(|| state.sessions_view(now));
            let ports: Vec<PortKey> = match &list {
                None => vec![],
                Some(list) => state
                    .ports
                    .iter_mut()
                    .filter(|(_, w)| {
                        w.kind == PageKind::Sessions
                            && w.subscribed
                            && w.shown_list.as_ref() != Some(list)
                    })
                    .map(|(key, w)| {
                        w.shown_list = Some(list.clone());
                        *key
                    })
                    .collect(),
            };
            let empty_tabs: Vec<TabId> = state
                .ports
                .values()
                .filter_map(|w| w.tab)
                .filter(|tab| !state.tabs.contains_key(tab))
                .collect();
            (list, ports, empty_tabs)
        };
        if let Some(view) = list.filter(|_| !ports.is_empty()) {
            let push = WorkerPush::Sessions { view };
            for port in ports {
                self.shell.post(port, &push);
            }
        }
        for tab in empty_tabs {
            self.render_tab(tab);
        }
        self.reconcile_push();
    }

    /// Sends one page a push that is not a view (a notice, an export).
    pub(crate) fn post(&self, port: PortKey, push: &WorkerPush) {
        self.shell.post(port, push);
    }

    /// The browser may reset a tab's badge (Firefox does on navigation): set it again.
    pub(crate) fn forget_badge(&self, tab: TabId) {
        let mut state = self.state.borrow_mut();
        state.badges.remove(&tab);
        state.titles.remove(&tab);
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

    pub(crate) fn cache_settings(&self, settings: Settings) {
        self.state.borrow_mut().settings = Some(settings);
    }

    /// The cached settings (read them first with `load_settings`).
    pub(crate) fn settings(&self) -> Settings {
        self.state.borrow().settings.clone().unwrap_or_default()
    }

    /// Test builds only: panics in the middle of an update, with the state borrowed, the
    /// worst case for a module instance that went on after it.
    #[cfg(feature = "test-hooks")]
    pub fn panic_mid_update(&self) {
        let _state = self.state.borrow_mut();
        panic!("a panic the test asked for, mid-update");
    }

    // ---- page ports ----

    /// A page connected: the key its messages and pushes go by.
    pub fn page_connected(&self, kind: PageKind) -> PortKey {
        let mut state = self.state.borrow_mut();
        state.next_port += 1;
        let key = PortKey(state.next_port);
        state.ports.insert(
            key,
            Watch {
                kind,
                tab: None,
                subscribed: false,
                shown_tab: None,
                shown_list: None,
            },
        );
        key
    }

    pub fn page_disconnected(&self, port: PortKey) {
        self.state.borrow_mut().ports.remove(&port);
        self.reconcile_push();
    }

    pub(crate) fn page_kind(&self, port: PortKey) -> Option<PageKind> {
        self.state.borrow().ports.get(&port).map(|w| w.kind)
    }

    /// Binds a popup's port to `tab`, once: a popup watches one tab for its whole life.
    pub(crate) fn bind_port(&self, port: PortKey, tab: TabId) -> bool {
        let mut state = self.state.borrow_mut();
        match state.ports.get_mut(&port) {
            Some(watch)
                if watch.kind == PageKind::Popup
                    && (watch.tab.is_none() || watch.tab == Some(tab)) =>
            {
                watch.tab = Some(tab);
                watch.subscribed = true;
                true
            }
            _ => false,
        }
    }

    /// Subscribes a Sessions page's port to the list.
    pub(crate) fn subscribe_list(&self, port: PortKey) -> bool {
        let mut state = self.state.borrow_mut();
        match state.ports.get_mut(&port) {
            Some(watch) if watch.kind == PageKind::Sessions => {
                watch.subscribed = true;
                watch.shown_list = None;
                true
            }
            _ => false,
        }
    }

    /// Subscribes a Diagnostics page's port to the view.
    pub(crate) fn subscribe_diagnostics(&self, port: PortKey) -> bool {
        let mut state = self.state.borrow_mut();
        match state.ports.get_mut(&port) {
            Some(watch) if watch.kind == PageKind::Diagnostics => {
                watch.subscribed = true;
                true
            }
            _ => false,
        }
    }

    /// The subscribed Diagnostics pages.
    pub(crate) fn diagnostics_ports(&self) -> Vec<PortKey> {
        let state = self.state.borrow();
        let pages = state.ports.iter();
        pages
            .filter(|(_, w)| w.kind == PageKind::Diagnostics && w.subscribed)
            .map(|(key, _)| *key)
            .collect()
    }

    pub(crate) fn port_tab(&self, port: PortKey) -> Option<TabId> {
        self.state.borrow().ports.get(&port).and_then(|w| w.tab)
    }

    /// Whether a popup watches the session's tab.
    pub(crate) fn watched(&self, id: &SessionId) -> bool {
        let state = self.state.borrow();
        let Some(tab) = state.sessions.get(id).and_then(|l| l.tab) else {
            return false;
        };
        state.ports.values().any(|w| w.tab == Some(tab))
    }

    pub(crate) fn list_watched(&self) -> bool {
        self.state
            .borrow()
            .ports
            .values()
            .any(|w| w.kind == PageKind::Sessions && w.subscribed)
    }

    /// Every tab some popup watches.
    pub(crate) fn watched_tabs(&self) -> Vec<TabId> {
        let state = self.state.borrow();
        let tabs: HashSet<TabId> = state.ports.values().filter_map(|w| w.tab).collect();
        tabs.into_iter().collect()
    }

    // ---- the cache ----

    /// Loads the index and the tab bindings from storage, once per worker life.
    pub(crate) async fn ensure_loaded(&self) -> Result<(), StoreError> {
        if self.state.borrow().loaded {
            return Ok(());
        }
        let store = self.store();
        let index = store.index().await?;
        let bound = store.bound_tabs().await?;
        let mut state = self.state.borrow_mut();
        // Another task may have loaded it while this one awaited storage.
        if state.loaded {
            return Ok(());
        }
        state.loaded = true;
        for (id, entry) in index.0 {
            let live = Live {
                state: SessionState::restored(entry.last_status, self.timings),
                account_read: entry.account.is_some(),
                entry,
                tab: None,
                polling: false,
                checked_at: 0.0,
                qr_pushed_at: 0.0,
            };
            state.sessions.entry(id).or_insert(live);
        }
        for (tab, id) in bound {
            if let Some(live) = state.sessions.get_mut(&id) {
                live.tab = Some(tab);
                state.tabs.insert(tab, id);
            }
        }
        Ok(())
    }

    /// Loads the cache, reporting a storage failure: `false` when nothing can be known.
    pub(crate) async fn loaded(&self) -> bool {
        match self.ensure_loaded().await {
            Ok(()) => {
                // A fresh instance of the worker: its diagnostics read back the stored log.
                self.load_diagnostics().await;
                true
            }
            Err(err) => {
                self.storage_failed(&err);
                false
            }
        }
    }

    /// The index as the cache holds it now.
    pub(crate) fn index(&self) -> SessionIndex {
        self.state.borrow().index_view()
    }

    /// Writes the index as it is now. Writes are issued in order, so the last one holds the
    /// latest state.
    pub(crate) async fn save_index(&self) {
        let index = self.index();
        if let Err(err) = self.store().save_index(&index).await {
            self.storage_failed(&err);
        }
    }

    /// A new session on `server`, attached to `tab` when given; its look comes next in line.
    pub(crate) fn new_session(&self, server: &ServerId, tab: Option<TabId>) -> SessionId {
        let now = self.shell.now_ms();
        let id = SessionId::generate(now as u64, self.shell.random_u64());
        let mut state = self.state.borrow_mut();
        let (label, colour) = state.index_view().next_look();
        let entry = SessionEntry {
            server: server.clone(),
            label,
            colour,
            created_at: now,
            updated_at: now,
            last_status: None,
            last_seen_connected: None,
            account: None,
            drop_notified: false,
            connected_ms: 0.0,
            drops: 0,
            last_error: None,
        };
        state.sessions.insert(
            id.clone(),
            Live {
                entry,
                state: SessionState::new(self.timings),
                tab,
                polling: false,
                checked_at: now,
                account_read: false,
                qr_pushed_at: 0.0,
            },
        );
        if let Some(tab) = tab {
            state.tabs.insert(tab, id.clone());
        }
        id
    }

    /// Attaches the session to the tab in memory; the binding is written by the caller.
    /// `false` when the tab already holds another session or the session another tab.
    pub(crate) fn attach_in_memory(&self, id: &SessionId, tab: TabId) -> bool {
        let mut state = self.state.borrow_mut();
        let free_tab = state.tabs.get(&tab).is_none_or(|held| held == id);
        let Some(live) = state.sessions.get_mut(id) else {
            return false;
        };
        if !free_tab || live.tab.is_some_and(|t| t != tab) {
            return false;
        }
        live.tab = Some(tab);
        state.tabs.insert(tab, id.clone());
        true
    }

    /// Detaches the tab's session in memory; the session it held, if any.
    pub(crate) fn detach_in_memory(&self, tab: TabId) -> Option<SessionId> {
        let mut state = self.state.borrow_mut();
        let id = state.tabs.remove(&tab)?;
        if let Some(live) = state.sessions.get_mut(&id) {
            live.tab = None;
        }
        Some(id)
    }

    /// Drops a session from memory; its tab, if any, is rendered empty.
    pub(crate) fn remove_session(&self, id: &SessionId) -> Option<Live> {
        let removed = {
            let mut state = self.state.borrow_mut();
            let removed = state.sessions.remove(id);
            if let Some(tab) = removed.as_ref().and_then(|l| l.tab) {
                state.tabs.remove(&tab);
            }
            removed
        };
        if let Some(tab) = removed.as_ref().and_then(|l| l.tab) {
            self.render_tab(tab);
        }
        self.render_lists();
        removed
    }

    /// Sessions not attached to any tab, oldest first.
    pub(crate) fn unattached(&self) -> Vec<SessionId> {
        let state = self.state.borrow();
        let mut ids: Vec<(&SessionId, f64)> = state
            .sessions
            .iter()
            .filter(|(_, l)| l.tab.is_none())
            .map(|(id, l)| (id, l.entry.created_at))
            .collect();
        ids.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
        ids.into_iter().map(|(id, _)| id.clone()).collect()
    }

    pub(crate) fn session_ids(&self) -> Vec<SessionId> {
        let mut ids: Vec<SessionId> = self.state.borrow().sessions.keys().cloned().collect();
        ids.sort_unstable();
        ids
    }

    /// Records a check's outcome in the index entry (the last status; when connected, the
    /// last seen date and connected time; the error it met) and saves the index when that
    /// changed. A connected check is saved every time: the worker may be stopped at any
    /// moment, and a date or time kept only in memory would be lost with it.
    pub(crate) async fn save_status(&self, id: &SessionId) {
        let now = self.shell.now_ms();
        // Two alarm periods: one alarm may be skipped (a session checked just before it).
        let max_gap_ms = 2.0 * self.timings.slow_refresh_minutes * 60_000.0;
        let before = self.read(id, |l| (l.entry.last_status, l.entry.server.clone()));
        let changed = self
            .state
            .borrow_mut()
            .sessions
            .get_mut(id)
            .is_some_and(|l| {
                // An error (the server unreachable) says nothing of the connection.
                let connected = l.state.phase(now) == Phase::Connected && l.state.error.is_none();
                let error = l.state.error.as_ref().map(ApiError::code);
                l.entry
                    .record_check(l.state.status, connected, error, now, max_gap_ms)
            });
        // The diagnostics log each change of status.
        let after = self.read(id, |l| l.entry.last_status);
        if let (Some((from, server)), Some(to)) = (before, after) {
            if from != to {
                self.status_changed(id, &server, from, to);
            }
        }
        if changed && !self.is_forgotten(id) {
            self.save_index().await;
        }
    }
}

impl State {
    fn index_view(&self) -> SessionIndex {
        // Inserted, not collected: a collected map sorts first, in code of its own.
        let mut index = SessionIndex::default();
        for (id, live) in &self.sessions {
            index.0.insert(id.clone(), live.entry.clone());
        }
        index
    }

    fn verdict_for(&self, server: Option<&ServerId>) -> SettingsVerdict {
        let Some(settings) = &self.settings else {
            return SettingsVerdict::Missing;
        };
        let config = match server {
            Some(id) => settings.server(id),
            None => Some(settings.default_server()),
        };
        config.map_or(SettingsVerdict::Missing, SettingsVerdict::of)
    }

    fn view_of(&self, tab: TabId, now: f64) -> TabView {
        if self.gone.contains(&tab) {
            return TabView::no_such_tab();
        }
        let live = self.tabs.get(&tab).and_then(|id| self.sessions.get(id));
        let id = self.tabs.get(&tab);
        let verdict = self.verdict_for(live.map(|l| &l.entry.server));
        let not_started = live.is_none_or(|l| l.state.phase(now) == Phase::NotStarted);
        let mut view = match (verdict, not_started) {
            (SettingsVerdict::Missing, true) => TabView::needs_settings(id, false),
            (SettingsVerdict::InsecureRefused, true) => TabView::needs_settings(id, true),
            (SettingsVerdict::Locked, true) => {
                let mut view = TabView::needs_settings(id, false);
                view.status_text = Text::new("status_locked");
                view
            }
            _ => match live {
                Some(l) => l.state.view(id, now),
                None => SessionState::new(Timings::current()).view(None, now),
            },
        };
        view.insecure_server = verdict == SettingsVerdict::InsecureAllowed;
        if verdict == SettingsVerdict::Locked {
            view.unlock = self.unlock_prompt(live.map(|l| &l.entry.server));
        }
        match live {
            Some(l) => {
                view.label = Some(l.entry.label.as_str().to_owned());
                view.colour = Some(l.entry.colour);
                view.account = l.entry.account.clone();
                view.server_name = self.server_name(&l.entry.server);
            }
            None => {
                view.attachable = self.rows(now, |l| l.tab.is_none());
                if !view.attachable.is_empty() && view.action.is_some() {
                    view.action_label = Some(Text::new("popup_pair_new_account"));
                }
                if let Some(settings) = self.settings.as_ref().filter(|s| s.servers.len() > 1) {
                    view.servers = settings
                        .servers
                        .iter()
                        .map(|s| (s.id.clone(), s.name.clone()))
                        .collect();
                    view.default_server = Some(settings.default_server.clone());
                }
            }
        }
        view
    }

    /// The unlock form for the tab's server (the default one for a tab without a session).
    fn unlock_prompt(&self, server: Option<&ServerId>) -> Option<crate::core::lock::UnlockPrompt> {
        let settings = self.settings.as_ref()?;
        let config = match server {
            Some(id) => settings.server(id)?,
            None => settings.default_server(),
        };
        let throttle = self.unlocks.get(&config.id);
        Some(crate::core::lock::UnlockPrompt::of(config, throttle))
    }

    fn server_name(&self, id: &ServerId) -> Option<String> {
        let settings = self.settings.as_ref()?;
        Some(settings.server(id)?.name.clone())
    }

    fn badge_of(&self, tab: TabId, now: f64) -> Badge {
        match self.tabs.get(&tab).and_then(|id| self.sessions.get(id)) {
            Some(l) => l.state.badge(now),
            None => SessionState::new(Timings::current()).badge(now),
        }
    }

    fn row(&self, id: &SessionId, live: &Live, now: f64) -> SessionRow {
        SessionRow {
            id: id.clone(),
            known: true,
            server: Some(live.entry.server.clone()),
            label: live.entry.label.as_str().to_owned(),
            colour: Some(live.entry.colour),
            account: live.entry.account.clone(),
            status: live.state.status,
            phase: Some(live.state.phase(now)),
            status_text: live.state.view(Some(id), now).status_text,
            error: live.state.error.as_ref().map(ApiError::text),
            tab: live.tab,
            last_seen_connected: live.entry.last_seen_connected,
            busy: live.state.is_busy(),
            stale: live.entry.is_stale(self.stale_after_days(), now),
            connected_ms: live.entry.connected_ms,
            drops: live.entry.drops,
            last_error: live.entry.last_error.clone(),
        }
    }

    fn stale_after_days(&self) -> StaleAfterDays {
        self.settings
            .as_ref()
            .map(|s| s.stale_after_days)
            .unwrap_or_default()
    }

    /// The known sessions that `keep` selects, as rows, by label.
    fn rows(&self, now: f64, keep: impl Fn(&Live) -> bool) -> Vec<SessionRow> {
        let mut rows: Vec<SessionRow> = self
            .sessions
            .iter()
            .filter(|(_, l)| keep(l))
            .map(|(id, l)| self.row(id, l, now))
            .collect();
        rows.sort_unstable_by(|a, b| a.label.cmp(&b.label).then(a.id.cmp(&b.id)));
        rows
    }

    fn sessions_view(&self, now: f64) -> SessionsView {
        let settings = self.settings.clone().unwrap_or_default();
        let mut groups = Vec::new();
        for server in &settings.servers {
            let mut rows = self.rows(now, |l| l.entry.server == server.id);
            let remote = self.remote.get(&server.id).cloned().unwrap_or_default();
            for name in &remote.names {
                if !self.sessions.contains_key(name) {
                    rows.push(SessionRow::unknown(name.clone(), server.id.clone()));
                }
            }
            groups.push(crate::core::messages::ServerGroup {
                id: Some(server.id.clone()),
                name: server.name.clone(),
                url: Some(server.server_url.as_str().to_owned()),
                error: remote.error,
                sessions: rows,
            });
        }
        let orphans = self.rows(now, |l| settings.server(&l.entry.server).is_none());
        if !orphans.is_empty() {
            groups.push(crate::core::messages::ServerGroup {
                id: None,
                name: String::new(),
                url: None,
                error: None,
                sessions: orphans,
            });
        }
        SessionsView {
            groups,
            stale_after_days: settings.stale_after_days,
        }
    }
}
