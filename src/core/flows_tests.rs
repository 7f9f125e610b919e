//! The worker's flows, natively, against in-memory fakes: a scripted wppconnect-server, the
//! two storage areas, and a shell that records what it was told to show. Time is tokio's
//! paused clock, so a 150 s threshold passes in no real time.

use crate::core::api::{Account, ApiError, CloseOutcome, LogoutOutcome, StatusReply};
use crate::core::messages::{encode, OptionsRequest, PopupRequest, SessionsView, WorkerPush};
use crate::core::push::{SocketKey, SocketSignal};
use crate::core::server::Server;
use crate::core::session::{Badge, PairAction, Phase, TabTitle, TabView};
use crate::core::session_id::SessionId;
use crate::core::settings::{Remember, SecretKey, ServerId, ServerUrl, Settings};
use crate::core::status::ServerStatus;
use crate::core::storage::{keys, TabId, Token};
use crate::core::store::memory::MemoryKv;
use crate::core::store::{Area, Store};
use crate::core::text::Text;
use crate::core::timings::Timings;
use crate::core::worker::{
    Notice, PageKind, PortKey, Shell, Worker, LOGOUT_MENU_ID, REFRESH_ALARM,
};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// An options reply's message, in English.
fn message_of(reply: &Value) -> String {
    serde_json::from_value::<Text>(reply["message"].clone())
        .map(|t| t.english())
        .unwrap_or_else(|e| panic!("no message in {reply}: {e}"))
}

mod phone;
mod push;

const SECRET: &str = "THISISMYSECURETOKEN";
const URL: &str = "http://127.0.0.1:21465";
const URL2: &str = "http://127.0.0.1:21999";
const SECRET2: &str = "ANOTHERSERVERSSECRET";
const QR: &str = "data:image/png;base64,iVBORw0KGgo";
const T: Timings = Timings::SHIPPED;

// ---- a scripted server ----

#[derive(Default)]
struct FakeServer {
    sessions: RefCell<HashMap<String, ServerStatus>>,
    tokens: RefCell<HashMap<String, Vec<String>>>,
    /// Extra round trips a route takes: a slow server.
    slow: RefCell<HashMap<&'static str, usize>>,
    /// Errors the next calls of a route answer with, in order.
    failures: RefCell<HashMap<&'static str, VecDeque<ApiError>>>,
    /// Every call: (route, session).
    calls: RefCell<Vec<(&'static str, String)>>,
    minted: Cell<u32>,
    /// The account each connected session was linked to by its (simulated) scan; one is
    /// made up the first time a connected session is asked for it.
    accounts: RefCell<HashMap<String, Account>>,
    /// The server's SECRET_KEY, when not [`SECRET`].
    secret: RefCell<Option<String>>,
    /// start-session with a phone number is held and never answered.
    hold_phone: Cell<bool>,
    /// Pairing codes given so far.
    codes: Cell<u32>,
}

impl FakeServer {
    /// Records the call, yields as a network round trip would, then answers any scripted
    /// failure.
    async fn call(&self, route: &'static str, id: &str) -> Result<(), ApiError> {
        self.calls.borrow_mut().push((route, id.to_owned()));
        let round_trips = 1 + self.slow.borrow().get(route).copied().unwrap_or(0);
        for _ in 0..round_trips {
            tokio::task::yield_now().await;
        }
        let next = self
            .failures
            .borrow_mut()
            .get_mut(route)
            .and_then(VecDeque::pop_front);
        next.map_or(Ok(()), Err)
    }

    fn authorize(&self, id: &SessionId, token: &Token) -> Result<(), ApiError> {
        let tokens = self.tokens.borrow();
        let ok = tokens
            .get(id.as_str())
            .is_some_and(|t| t.iter().any(|t| t == token.expose()));
        ok.then_some(()).ok_or(ApiError::Unauthorized)
    }

    fn status(&self, id: &SessionId) -> StatusReply {
        let status = self
            .sessions
            .borrow()
            .get(id.as_str())
            .copied()
            .unwrap_or(ServerStatus::Closed);
        // The real server keeps a stale QR after CONNECTED and CLOSED (§2.2).
        StatusReply {
            status,
            qr: Some(QR.to_owned()),
        }
        .with_qr_rule()
    }

    fn fail(&self, route: &'static str, err: ApiError) {
        self.failures
            .borrow_mut()
            .entry(route)
            .or_default()
            .push_back(err);
    }

    fn set(&self, id: &SessionId, status: ServerStatus) {
        self.sessions.borrow_mut().insert(id.to_string(), status);
    }

    fn count(&self, route: &str) -> usize {
        self.calls
            .borrow()
            .iter()
            .filter(|(r, _)| *r == route)
            .count()
    }

    /// `ABCD-0001`, `ABCD-0002`, ...
    fn next_code(&self) -> crate::core::api::PairingCode {
        self.codes.set(self.codes.get() + 1);
        crate::core::api::PairingCode::parse(&format!("ABCD{:04}", self.codes.get())).unwrap()
    }

    fn routes(&self) -> Vec<&'static str> {
        self.calls.borrow().iter().map(|(r, _)| *r).collect()
    }
}

trait QrRule {
    fn with_qr_rule(self) -> Self;
}

impl QrRule for StatusReply {
    /// As `core::api` parses it: a QR only with QRCODE.
    fn with_qr_rule(mut self) -> Self {
        if self.status != ServerStatus::QrCode {
            self.qr = None;
        }
        self
    }
}

struct FakeServerAt<'a>(&'a FakeServer);

/// `statusConnection`, then the account: the one a connected session's scan linked, made up
/// (`55119` + 8 digits, "Fake <n>") the first time it is asked for.
fn linked_account(server: &FakeServer, id: &SessionId) -> Result<Account, ApiError> {
    if server.status(id).status != ServerStatus::Connected {
        return Err(ApiError::NotConnected);
    }
    let mut accounts = server.accounts.borrow_mut();
    let n = accounts.len();
    let account = accounts.entry(id.to_string()).or_insert_with(|| Account {
        phone: format!("55119{n:08}"),
        name: Some(format!("Fake {n}")),
    });
    Ok(account.clone())
}

impl Server for FakeServerAt<'_> {
    async fn generate_token(&self, id: &SessionId, secret: &SecretKey) -> Result<Token, ApiError> {
        self.0.call("generate-token", id.as_str()).await?;
        if secret.expose() != self.0.secret.borrow().as_deref().unwrap_or(SECRET) {
            return Err(ApiError::WrongSecret);
        }
        let n = self.0.minted.get() + 1;
        self.0.minted.set(n);
        let token = Token::parse(&format!("$2b$04$token{n:0>20}")).unwrap();
        let mut tokens = self.0.tokens.borrow_mut();
        tokens
            .entry(id.to_string())
            .or_default()
            .push(token.expose().to_owned());
        Ok(token)
    }

    async fn start_session(&self, id: &SessionId, token: &Token) -> Result<StatusReply, ApiError> {
        self.0.call("start-session", id.as_str()).await?;
        self.0.authorize(id, token)?;
        let running = self.0.sessions.borrow().get(id.as_str()).copied();
        match running {
            None | Some(ServerStatus::Closed) => {
                // A fresh start answers CLOSED, meaning "starting" (§2.1).
                self.0.set(id, ServerStatus::Initializing);
                Ok(StatusReply {
                    status: ServerStatus::Closed,
                    qr: None,
                })
            }
            Some(_) => Ok(self.0.status(id)),
        }
    }

    /// Held until the code exists, which it gives only to a session it has no entry for
    /// (§2.1); others get their status at once.
    async fn start_session_by_phone(
        &self,
        id: &SessionId,
        token: &Token,
        phone: &crate::core::api::PairingPhone,
        _wait_ms: u32,
    ) -> Result<crate::core::api::PhoneStartReply, ApiError> {
        self.0.call("start-session-by-phone", id.as_str()).await?;
        self.0.authorize(id, token)?;
        assert!(!phone.digits().is_empty());
        if self.0.hold_phone.get() {
            self.0.set(id, ServerStatus::Initializing);
            std::future::pending::<()>().await;
        }
        let known = self.0.sessions.borrow().contains_key(id.as_str());
        if known {
            return Ok(crate::core::api::PhoneStartReply {
                status: self.0.status(id),
                code: None,
            });
        }
        self.0.set(id, ServerStatus::PhoneCode);
        Ok(crate::core::api::PhoneStartReply {
            status: StatusReply {
                status: ServerStatus::PhoneCode,
                qr: None,
            },
            code: Some(self.0.next_code()),
        })
    }

    async fn status_session(&self, id: &SessionId, token: &Token) -> Result<StatusReply, ApiError> {
        self.0.call("status-session", id.as_str()).await?;
        self.0.authorize(id, token)?;
        Ok(self.0.status(id))
    }

    async fn close_session(&self, id: &SessionId, token: &Token) -> Result<CloseOutcome, ApiError> {
        self.0.call("close-session", id.as_str()).await?;
        self.0.authorize(id, token)?;
        let was = self.0.status(id).status;
        self.0.set(id, ServerStatus::Closed);
        // The real server answers 500 for a session that never connected (§2.5).
        Ok(match was {
            ServerStatus::Connected | ServerStatus::Closed => CloseOutcome::Closed,
            _ => CloseOutcome::Placeholder,
        })
    }

    async fn logout_session(
        &self,
        id: &SessionId,
        token: &Token,
    ) -> Result<LogoutOutcome, ApiError> {
        self.0.call("logout-session", id.as_str()).await?;
        self.0.authorize(id, token)?;
        if self.0.status(id).status != ServerStatus::Connected {
            return Ok(LogoutOutcome::NotConnected);
        }
        self.0.set(id, ServerStatus::Closed);
        Ok(LogoutOutcome::LoggedOut)
    }

    async fn host_device(&self, id: &SessionId, token: &Token) -> Result<Account, ApiError> {
        self.0.call("host-device", id.as_str()).await?;
        self.0.authorize(id, token)?;
        linked_account(self.0, id)
    }

    async fn phone_number(&self, id: &SessionId, token: &Token) -> Result<Account, ApiError> {
        self.0.call("get-phone-number", id.as_str()).await?;
        self.0.authorize(id, token)?;
        let account = linked_account(self.0, id)?;
        Ok(Account {
            name: None,
            ..account
        })
    }

    async fn show_all_sessions(&self, secret: &SecretKey) -> Result<Vec<SessionId>, ApiError> {
        self.0.call("show-all-sessions", "").await?;
        if secret.expose() != self.0.secret.borrow().as_deref().unwrap_or(SECRET) {
            return Err(ApiError::WrongSecret);
        }
        // The token store: every session that was ever started, sorted like wpp-sim's.
        let mut ids: Vec<SessionId> = self
            .0
            .sessions
            .borrow()
            .keys()
            .filter_map(|k| SessionId::parse(k).ok())
            .collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(ids)
    }

    async fn healthz(&self) -> Result<(), ApiError> {
        self.0.call("healthz", "").await
    }

    async fn probe_secret(&self, secret: &SecretKey) -> Result<(), ApiError> {
        self.0.call("probe", "").await?;
        (secret.expose() == SECRET)
            .then_some(())
            .ok_or(ApiError::WrongSecret)
    }
}

// ---- a recording shell ----

#[derive(Default)]
struct FakeShell {
    server: FakeServer,
    /// The server at [`URL2`].
    second: FakeServer,
    kv: MemoryKv,
    crypto: crate::core::lock::fake::FakeCrypto,
    open_tabs: RefCell<HashSet<TabId>>,
    posts: RefCell<Vec<(PortKey, TabView)>>,
    /// Which state pushes carried a paint, in order.
    painted: RefCell<Vec<(PortKey, bool)>>,
    lists: RefCell<Vec<(PortKey, SessionsView)>>,
    notices: RefCell<Vec<Notice>>,
    exports: RefCell<Vec<String>>,
    titles: RefCell<HashMap<TabId, String>>,
    focused: RefCell<Vec<TabId>>,
    next_tab: Cell<i32>,
    badges: RefCell<HashMap<TabId, Badge>>,
    confirmations: RefCell<Vec<TabId>>,
    warnings: RefCell<Vec<String>>,
    rng: Cell<u64>,
    /// What the worker did with its Socket.IO connections, in order.
    sockets: RefCell<Vec<SocketCall>>,
}

#[derive(Clone, Debug, PartialEq)]
enum SocketCall {
    Open(SocketKey, String),
    Send(SocketKey, String),
    Close(SocketKey),
}

impl Shell for FakeShell {
    type Storage = MemoryKv;
    type Crypto = crate::core::lock::fake::FakeCrypto;

    fn server(&self, url: ServerUrl) -> impl Server + '_ {
        match url.as_str() {
            URL2 => FakeServerAt(&self.second),
            _ => FakeServerAt(&self.server),
        }
    }

    fn storage(&self) -> &MemoryKv {
        &self.kv
    }

    fn crypto(&self) -> &Self::Crypto {
        &self.crypto
    }

    fn now_ms(&self) -> f64 {
        // Paused tokio time: starts at a fixed instant and moves only when the test sleeps.
        1.8e12 + elapsed_ms()
    }

    fn random_u64(&self) -> u64 {
        self.rng
            .set(self.rng.get().wrapping_add(0x9e37_79b9_7f4a_7c15));
        self.rng.get()
    }

    async fn sleep(&self, ms: u32) {
        tokio::time::sleep(std::time::Duration::from_millis(ms.into())).await;
    }

    async fn tab_exists(&self, tab: TabId) -> bool {
        self.open_tabs.borrow().contains(&tab)
    }

    async fn open_tab(&self) -> Option<TabId> {
        self.next_tab.set(self.next_tab.get() + 1);
        let tab = TabId::new(1000 + i64::from(self.next_tab.get()))?;
        self.open_tabs.borrow_mut().insert(tab);
        Some(tab)
    }

    fn focus_tab(&self, tab: TabId) {
        self.focused.borrow_mut().push(tab);
    }

    fn set_title(&self, tab: TabId, title: &TabTitle) {
        let title = title.render(Text::english);
        self.titles.borrow_mut().insert(tab, title);
    }

    fn notify(&self, notice: &Notice) {
        self.notices.borrow_mut().push(notice.clone());
    }

    fn open_sessions_page(&self) {}

    fn post(&self, port: PortKey, push: &WorkerPush) {
        match push {
            WorkerPush::State { view, paint } => {
                if let Some(paint) = paint {
                    assert_eq!(paint, &crate::core::paint::paint(view), "painted as viewed");
                }
                self.painted.borrow_mut().push((port, paint.is_some()));
                self.posts.borrow_mut().push((port, (**view).clone()))
            }
            WorkerPush::Sessions { view } => self.lists.borrow_mut().push((port, view.clone())),
            WorkerPush::Exported { text } => self.exports.borrow_mut().push(text.clone()),
            WorkerPush::Notice { message, .. } => {
                self.warnings.borrow_mut().push(message.english())
            }
            WorkerPush::Diagnostics { .. } => {}
        }
    }

    fn set_badge(&self, tab: TabId, badge: &Badge) {
        self.badges.borrow_mut().insert(tab, badge.clone());
    }

    fn confirm_logout(&self, tab: TabId) {
        self.confirmations.borrow_mut().push(tab);
    }

    fn warn(&self, message: &str) {
        self.warnings.borrow_mut().push(message.to_owned());
    }

    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()>>>) {
        tokio::task::spawn_local(task);
    }

    fn socket_open(&self, key: SocketKey, url: &str) {
        self.sockets
            .borrow_mut()
            .push(SocketCall::Open(key, url.to_owned()));
    }

    fn socket_send(&self, key: SocketKey, text: &str) {
        self.sockets
            .borrow_mut()
            .push(SocketCall::Send(key, text.to_owned()));
    }

    fn socket_close(&self, key: SocketKey) {
        self.sockets.borrow_mut().push(SocketCall::Close(key));
    }
}

thread_local! {
    static START: tokio::time::Instant = tokio::time::Instant::now();
}

/// Milliseconds of (paused) test time since the test began.
fn elapsed_ms() -> f64 {
    START.with(|s| s.elapsed().as_millis() as f64)
}

// ---- the scenarios' vocabulary ----

type TestWorker = Rc<Worker<FakeShell>>;

fn tab(n: i64) -> TabId {
    TabId::new(n).unwrap()
}

/// Runs a scenario on a single-threaded executor with paused time.
fn run<F: Future<Output = ()>>(scenario: impl FnOnce(TestWorker) -> F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let worker = Worker::new(FakeShell::default(), T);
    local.block_on(&runtime, scenario(worker));
}

fn shell(w: &TestWorker) -> &FakeShell {
    w.shell()
}

fn settings_for(url: &str, secret: &str) -> Settings {
    let mut settings = Settings::default();
    let server = &mut settings.servers[0];
    server.server_url = ServerUrl::parse(url).unwrap();
    server.secret_key = Some(SecretKey::parse(secret).unwrap());
    settings
}

async fn save_settings(w: &TestWorker) {
    let store = Store::new(&shell(w).kv);
    store
        .save_settings(&settings_for(URL, SECRET))
        .await
        .unwrap();
}

fn save_server(url: &str, secret: Option<&str>, allow_insecure_http: bool) -> OptionsRequest {
    OptionsRequest::SaveServer {
        id: Some(ServerId::first()),
        name: "Main".into(),
        server_url: ServerUrl::parse(url).unwrap(),
        secret_key: secret.map(|s| SecretKey::parse(s).unwrap()),
        remember: Remember::Session,
        allow_insecure_http,
        make_default: false,
    }
}

/// The index entry of a session, as stored in `storage.local`.
fn indexed(w: &TestWorker, id: &SessionId) -> Option<Value> {
    let local = shell(w).kv.area(Area::Local);
    local.get(keys::SESSIONS)?.get(id.as_str()).cloned()
}

/// Every key of every area that mentions the session.
fn keys_of(w: &TestWorker, id: &SessionId) -> Vec<String> {
    let mut found = Vec::new();
    for area in [Area::Session, Area::Local] {
        for (key, value) in shell(w).kv.area(area) {
            if key.contains(id.as_str()) || value == json!(id.as_str()) {
                found.push(key);
            }
        }
    }
    if indexed(w, id).is_some() {
        found.push(keys::SESSIONS.to_owned());
    }
    found.sort();
    found
}

/// What a session attached to tab `n` keeps in storage: the index, the tab and its token.
fn attached_keys(n: i64, id: &SessionId) -> Vec<String> {
    vec![
        keys::SESSIONS.to_owned(),
        keys::tab(tab(n)),
        keys::token(id),
    ]
}

/// Opens a popup on tab `n` (the tab exists) and subscribes it.
async fn open_popup(w: &TestWorker, n: i64) -> PortKey {
    shell(w).open_tabs.borrow_mut().insert(tab(n));
    let port = w.page_connected(PageKind::Popup);
    send(w, port, PopupRequest::Subscribe { tab_id: tab(n) }).await;
    port
}

async fn send(w: &TestWorker, port: PortKey, request: PopupRequest) {
    w.page_message(port, &encode(&request).to_string()).await;
}

/// The popup's "attach this session to my tab".
async fn attach(w: &TestWorker, port: PortKey, id: &SessionId) {
    let session_id = id.clone();
    send(w, port, PopupRequest::Attach { session_id }).await;
}

/// The popup's label (and colour) for its session.
async fn describe(
    w: &TestWorker,
    port: PortKey,
    label: &str,
    colour: Option<crate::core::index::Colour>,
) {
    let label = Some(crate::core::index::Label::parse(label).unwrap());
    send(w, port, PopupRequest::Describe { label, colour }).await;
}

/// The last view pushed to `port`.
fn shown(w: &TestWorker, port: PortKey) -> TabView {
    let posts = shell(w).posts.borrow();
    let last = posts.iter().rev().find(|(p, _)| *p == port);
    last.expect("a view was pushed").1.clone()
}

fn pushes_to(w: &TestWorker, port: PortKey) -> usize {
    shell(w)
        .posts
        .borrow()
        .iter()
        .filter(|(p, _)| *p == port)
        .count()
}

fn session_of(w: &TestWorker, port: PortKey) -> SessionId {
    shown(w, port).session_id.expect("the tab has a session ID")
}

/// The refresh alarm, a minute after whatever came before, as the browser fires it.
async fn minute_alarm(w: &TestWorker) {
    pass(60_000).await;
    w.alarm(REFRESH_ALARM).await;
}

/// Lets every task run for `ms` of virtual time.
async fn pass(ms: u64) {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

fn stored(w: &TestWorker, key: &str) -> Option<Value> {
    shell(w).kv.area(Area::Session).get(key).cloned()
}

/// Pairs tab `n` to a shown QR.
async fn paired_to_qr(w: &TestWorker, n: i64) -> (PortKey, SessionId) {
    let port = open_popup(w, n).await;
    let id = session_of(w, port);
    shell(w).server.set(&id, ServerStatus::QrCode);
    pass(u64::from(T.fast_poll_ms) * 2).await;
    assert_eq!(shown(w, port).qr.as_deref(), Some(QR));
    (port, id)
}

// ---- scenarios ----

#[test]
fn a_popup_with_settings_assigns_an_id_mints_starts_and_shows_the_qr() {
    run(|w| async move {
        save_settings(&w).await;
        let port = open_popup(&w, 1).await;
        let id = session_of(&w, port);
        assert_eq!(
            shell(&w).server.routes(),
            ["generate-token", "start-session"]
        );
        assert_eq!(stored(&w, &keys::tab(tab(1))), Some(json!(id.as_str())));
        assert!(stored(&w, &keys::token(&id)).is_some());
        assert_eq!(shown(&w, port).phase, Phase::Starting);
        // Polling picks up INITIALIZING, then the QR.
        pass(u64::from(T.starting_poll_ms) + 10).await;
        assert_eq!(shown(&w, port).phase, Phase::Initializing);
        shell(&w).server.set(&id, ServerStatus::QrCode);
        pass(u64::from(T.fast_poll_ms) + 10).await;
        let view = shown(&w, port);
        assert_eq!((view.phase, view.qr.as_deref()), (Phase::QrCode, Some(QR)));
        assert_eq!(shell(&w).badges.borrow()[&tab(1)].text, Some("badge_qr"));
        // A scan connects; the stale QR is not shown, and polling stops.
        shell(&w).server.set(&id, ServerStatus::Connected);
        pass(u64::from(T.fast_poll_ms) + 10).await;
        assert_eq!(shown(&w, port).phase, Phase::Connected);
        assert_eq!(shown(&w, port).qr, None);
        let polls = shell(&w).server.count("status-session");
        pass(60_000).await;
        assert_eq!(shell(&w).server.count("status-session"), polls);
        let entry = indexed(&w, &id).unwrap();
        assert_eq!(entry["lastStatus"], "CONNECTED");
        assert!(entry["lastSeenConnected"].is_number());
    });
}

#[test]
fn a_popup_that_starts_pairing_never_offers_a_button_that_is_about_to_vanish() {
    run(|w| async move {
        save_settings(&w).await;
        let port = open_popup(&w, 1).await;
        let posts = shell(&w).posts.borrow().clone();
        let first = &posts.iter().find(|(p, _)| *p == port).unwrap().1;
        assert!(first.busy && first.action.is_none(), "{first:?}");
        assert!(posts
            .iter()
            .all(|(_, v)| v.action != Some(PairAction::Start)));
    });
}

#[test]
fn without_settings_the_popup_asks_for_them_and_saving_them_starts_pairing() {
    run(|w| async move {
        let port = open_popup(&w, 1).await;
        let view = shown(&w, port);
        assert!(view.needs_settings);
        assert_eq!(view.action, None);
        assert!(view.session_id.is_some(), "the tab has its ID already");
        assert!(shell(&w).server.calls.borrow().is_empty());

        let request = save_server(URL, Some(SECRET), false);
        let reply = w.options_message(&encode(&request).to_string()).await;
        assert_eq!(reply["type"], "saved");
        pass(1).await;
        // The open popup follows without being reopened.
        let view = shown(&w, port);
        assert!(!view.needs_settings);
        assert_eq!(view.phase, Phase::Starting);
        assert_eq!(
            shell(&w).server.routes(),
            ["generate-token", "start-session"]
        );
    });
}

#[test]
fn views_are_pushed_only_when_they_change() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, _) = paired_to_qr(&w, 1).await;
        let before = pushes_to(&w, port);
        let polls = shell(&w).server.count("status-session");
        pass(u64::from(T.fast_poll_ms) * 5).await;
        assert!(shell(&w).server.count("status-session") >= polls + 4);
        assert_eq!(
            pushes_to(&w, port),
            before,
            "the same QR is not pushed again"
        );
        // A second popup on the same tab gets the current view at once.
        let second = open_popup(&w, 1).await;
        assert_eq!(shown(&w, second).qr.as_deref(), Some(QR));
    });
}

#[test]
fn a_popup_for_a_tab_that_does_not_exist_is_told_so() {
    run(|w| async move {
        save_settings(&w).await;
        let port = w.page_connected(PageKind::Popup);
        send(&w, port, PopupRequest::Subscribe { tab_id: tab(99) }).await;
        let view = shown(&w, port);
        assert_eq!(view.error.unwrap().code, "no-tab");
        assert_eq!(view.session_id, None);
        assert!(shell(&w).server.calls.borrow().is_empty());
        let keys: Vec<String> = shell(&w).kv.area(Area::Session).keys().cloned().collect();
        assert_eq!(
            keys,
            ["wpp_secret_s1"],
            "no ID was assigned to a tab that does not exist"
        );
    });
}

/// `popup.js` paints the first state before the popup's Wasm loads; later states are the
/// Wasm's to render, and do not carry the paint (nor the QR twice).
#[test]
fn only_a_popups_first_state_carries_its_paint() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, _) = paired_to_qr(&w, 1).await;
        let second = open_popup(&w, 1).await;
        let painted = shell(&w).painted.borrow().clone();
        let of = |port: PortKey| -> Vec<bool> {
            painted
                .iter()
                .filter(|(p, _)| *p == port)
                .map(|(_, p)| *p)
                .collect()
        };
        let first = of(port);
        assert!(first.len() >= 3, "starting, initializing, QR: {first:?}");
        assert!(first[0], "the first state is painted");
        assert!(!first[1..].contains(&true), "only the first: {first:?}");
        assert_eq!(
            of(second),
            [true],
            "a second popup's first state is painted too"
        );
    });
}

#[test]
fn requests_before_subscribing_or_for_a_second_tab_are_refused() {
    run(|w| async move {
        save_settings(&w).await;
        let (_, id) = paired_to_qr(&w, 1).await;
        let stranger = w.page_connected(PageKind::Popup);
        send(&w, stranger, PopupRequest::Logout).await;
        send(&w, stranger, PopupRequest::Pair { server: None }).await;
        w.page_message(
            stranger,
            &json!({"v": 3, "type": "logout", "tabId": 1}).to_string(),
        )
        .await;
        w.page_message(stranger, "null").await;
        assert_eq!(shell(&w).server.count("logout-session"), 0);
        assert!(stored(&w, &keys::token(&id)).is_some());
        let warnings = shell(&w).warnings.borrow().join("\n");
        assert!(warnings.contains("has not subscribed"), "{warnings}");
        assert!(warnings.contains("not an object"), "{warnings}");

        let port = open_popup(&w, 2).await;
        shell(&w).open_tabs.borrow_mut().insert(tab(1));
        send(&w, port, PopupRequest::Subscribe { tab_id: tab(1) }).await;
        send(&w, port, PopupRequest::Logout).await;
        assert!(stored(&w, &keys::token(&id)).is_some(), "tab 1 untouched");
    });
}

#[test]
fn a_refused_token_is_renewed_before_the_next_poll() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = paired_to_qr(&w, 1).await;
        let old = stored(&w, &keys::token(&id)).unwrap();
        shell(&w).server.tokens.borrow_mut().clear();
        pass(u64::from(T.fast_poll_ms) + 10).await;
        assert_eq!(shown(&w, port).error.unwrap().code, "unauthorized");
        assert_eq!(shown(&w, port).qr.as_deref(), Some(QR), "the QR stays");
        pass(u64::from(T.fast_poll_ms) * 3).await;
        let view = shown(&w, port);
        assert_eq!(view.error, None);
        assert_eq!(view.phase, Phase::QrCode);
        assert_ne!(stored(&w, &keys::token(&id)).unwrap(), old);
    });
}

#[test]
fn a_stuck_start_offers_restart_which_closes_then_starts() {
    run(|w| async move {
        save_settings(&w).await;
        let port = open_popup(&w, 1).await;
        let id = session_of(&w, port);
        pass(T.stuck_after_ms as u64 + 5_000).await;
        let view = shown(&w, port);
        assert_eq!(view.phase, Phase::Stuck);
        assert_eq!(view.action, Some(PairAction::Restart));
        assert_eq!(shell(&w).badges.borrow()[&tab(1)].text, Some("badge_error"));
        shell(&w).server.calls.borrow_mut().clear();
        send(&w, port, PopupRequest::Pair { server: None }).await;
        let calls: Vec<_> = shell(&w).server.calls.borrow().clone();
        let calls: Vec<_> = calls
            .into_iter()
            .filter(|(r, _)| *r != "status-session")
            .collect();
        // The hung session is closed (twice: the real server's first close leaves its browser
        // running) and the tab goes on under a fresh name, whose profile is not locked.
        let fresh = session_of(&w, port);
        assert_ne!(fresh, id);
        let expected = [
            ("close-session", id.to_string()),
            ("close-session", id.to_string()),
            ("generate-token", fresh.to_string()),
            ("start-session", fresh.to_string()),
        ];
        assert_eq!(calls, expected);
        assert_eq!(shown(&w, port).phase, Phase::Starting);
        assert_eq!(stored(&w, &keys::tab(tab(1))), Some(json!(fresh.as_str())));
        assert_eq!(
            stored(&w, &keys::token(&id)),
            None,
            "the old session is forgotten"
        );
        assert_eq!(indexed(&w, &id), None);
        assert!(
            indexed(&w, &fresh).is_some(),
            "the name and colour moved along"
        );
        assert!(stored(&w, &keys::token(&fresh)).is_some());
        shell(&w).server.set(&fresh, ServerStatus::QrCode);
        pass(u64::from(T.fast_poll_ms) * 2).await;
        assert_eq!(shown(&w, port).phase, Phase::QrCode);
    });
}

#[test]
fn an_expired_qr_offers_refresh_which_starts_again() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = paired_to_qr(&w, 1).await;
        shell(&w).server.set(&id, ServerStatus::Closed);
        pass(u64::from(T.fast_poll_ms) + 10).await;
        let view = shown(&w, port);
        assert_eq!(
            (view.phase, view.action),
            (Phase::Expired, Some(PairAction::RefreshQr))
        );
        send(&w, port, PopupRequest::Pair { server: None }).await;
        assert_eq!(
            shell(&w).server.count("generate-token"),
            1,
            "the token is kept"
        );
        assert_eq!(shell(&w).server.count("start-session"), 2);
    });
}

#[test]
fn errors_at_each_step_of_pairing_keep_the_session_and_offer_retry() {
    for (route, err) in [
        ("generate-token", ApiError::Unreachable),
        ("generate-token", ApiError::WrongSecret),
        (
            "start-session",
            ApiError::Server {
                status: 500,
                message: "boom".into(),
            },
        ),
        ("start-session", ApiError::Timeout),
    ] {
        run(|w| async move {
            save_settings(&w).await;
            shell(&w).server.fail(route, err.clone());
            let port = open_popup(&w, 1).await;
            let id = session_of(&w, port);
            let view = shown(&w, port);
            assert_eq!(
                view.error.as_ref().map(|e| e.code.as_str()),
                Some(err.code()),
                "{route}"
            );
            assert_eq!(view.action, Some(PairAction::Retry), "{route}");
            assert!(!view.busy);
            assert_eq!(stored(&w, &keys::tab(tab(1))), Some(json!(id.as_str())));
            send(&w, port, PopupRequest::Pair { server: None }).await;
            let view = shown(&w, port);
            assert_eq!(
                view.error, None,
                "{route}: retry works once the server behaves"
            );
            assert_eq!(view.phase, Phase::Starting);
        });
    }
}

#[test]
fn a_storage_failure_while_pairing_is_shown_and_nothing_panics() {
    run(|w| async move {
        save_settings(&w).await;
        let port = open_popup(&w, 1).await;
        *shell(&w).kv.failing.borrow_mut() = Some("QUOTA_BYTES exceeded".into());
        send(&w, port, PopupRequest::Pair { server: None }).await;
        pass(u64::from(T.fast_poll_ms) * 2).await;
        *shell(&w).kv.failing.borrow_mut() = None;
        let view = shown(&w, port);
        assert_eq!(view.session_id, Some(session_of(&w, port)));
    });
}

#[test]
fn only_one_user_request_runs_at_a_time() {
    run(|w| async move {
        save_settings(&w).await;
        let port = open_popup(&w, 1).await;
        let id = session_of(&w, port);
        shell(&w).server.set(&id, ServerStatus::Closed);
        pass(T.start_grace_ms as u64 + 1_000).await;
        assert_eq!(shown(&w, port).action, Some(PairAction::Start));
        let starts = shell(&w).server.count("start-session");
        let (a, b) = (Rc::clone(&w), Rc::clone(&w));
        tokio::join!(
            send(&a, port, PopupRequest::Pair { server: None }),
            send(&b, port, PopupRequest::Pair { server: None })
        );
        assert_eq!(shell(&w).server.count("start-session"), starts + 1);
    });
}

#[test]
fn logout_of_a_connected_session_forgets_exactly_its_keys_and_index_entry() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = paired_to_qr(&w, 1).await;
        let (_, other) = paired_to_qr(&w, 2).await;
        shell(&w).server.set(&id, ServerStatus::Connected);
        send(&w, port, PopupRequest::Logout).await;
        assert_eq!(shell(&w).server.count("logout-session"), 1);
        assert_eq!(shell(&w).server.count("close-session"), 0);
        assert_eq!(keys_of(&w, &id), Vec::<String>::new());
        assert_eq!(keys_of(&w, &other), attached_keys(2, &other));
        assert_eq!(shown(&w, port).session_id, None);
        assert_eq!(shell(&w).badges.borrow()[&tab(1)].text, None);
    });
}

#[test]
fn logout_falls_back_to_close_and_renews_a_refused_token_once() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = paired_to_qr(&w, 1).await;
        shell(&w).server.tokens.borrow_mut().clear();
        shell(&w).server.calls.borrow_mut().clear();
        send(&w, port, PopupRequest::Logout).await;
        assert_eq!(
            shell(&w).server.routes(),
            [
                "logout-session",
                "generate-token",
                "logout-session",
                "close-session"
            ]
        );
        assert_eq!(stored(&w, &keys::token(&id)), None);
    });
}

#[test]
fn a_logout_the_server_cannot_confirm_changes_nothing() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = paired_to_qr(&w, 1).await;
        shell(&w)
            .server
            .fail("logout-session", ApiError::Unreachable);
        send(&w, port, PopupRequest::Logout).await;
        let view = shown(&w, port);
        assert_eq!(view.error.unwrap().code, "unreachable");
        assert_eq!(view.session_id, Some(id.clone()));
        assert_eq!(
            keys_of(&w, &id),
            [
                keys::SESSIONS.to_owned(),
                keys::tab(tab(1)),
                keys::token(&id)
            ],
            "all kept"
        );
        // Twice refused: the renewal is tried once, then the error shows.
        shell(&w).server.tokens.borrow_mut().clear();
        shell(&w)
            .server
            .fail("generate-token", ApiError::Unreachable);
        send(&w, port, PopupRequest::Logout).await;
        assert_eq!(shown(&w, port).error.unwrap().code, "unreachable");
        assert!(stored(&w, &keys::token(&id)).is_some());
    });
}

#[test]
fn the_menu_logs_out_the_clicked_tab_only() {
    run(|w| async move {
        save_settings(&w).await;
        let (_, a) = paired_to_qr(&w, 1).await;
        let (_, b) = paired_to_qr(&w, 2).await;
        w.menu_clicked(Some(LOGOUT_MENU_ID), Some(tab(2))).await;
        assert_eq!(stored(&w, &keys::token(&b)), None);
        assert!(stored(&w, &keys::token(&a)).is_some());
        w.menu_clicked(Some("other"), Some(tab(1))).await;
        w.menu_clicked(Some(LOGOUT_MENU_ID), None).await;
        assert!(stored(&w, &keys::token(&a)).is_some());
    });
}

#[test]
fn closing_a_tab_keeps_the_server_session_and_its_token() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = paired_to_qr(&w, 1).await;
        w.tab_removed(tab(1)).await;
        assert_eq!(stored(&w, &keys::tab(tab(1))), None);
        assert!(stored(&w, &keys::token(&id)).is_some());
        assert!(indexed(&w, &id).is_some(), "still listed");
        assert_eq!(shown(&w, port).error.unwrap().code, "no-tab");
        // It can be attached to another tab, and carries on there.
        let other = open_popup(&w, 5).await;
        let view = shown(&w, other);
        assert_eq!(view.session_id, None);
        assert_eq!(view.attachable.len(), 1);
        attach(&w, other, &id).await;
        assert_eq!(shown(&w, other).session_id, Some(id.clone()));
        assert_eq!(stored(&w, &keys::tab(tab(5))), Some(json!(id.as_str())));
    });
}

#[test]
fn the_alarm_refreshes_unwatched_sessions_for_their_badges() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = paired_to_qr(&w, 1).await;
        w.page_disconnected(port);
        pass(u64::from(T.fast_poll_ms) * 2).await;
        shell(&w).server.set(&id, ServerStatus::Connected);
        let polls = shell(&w).server.count("status-session");
        pass(u64::from(T.fast_poll_ms) * 3).await;
        assert_eq!(
            shell(&w).server.count("status-session"),
            polls,
            "no popup, no polling"
        );
        w.alarm("another-alarm").await;
        assert_eq!(shell(&w).server.count("status-session"), polls);
        minute_alarm(&w).await;
        assert_eq!(shell(&w).server.count("status-session"), polls + 1);
        assert_eq!(shell(&w).badges.borrow()[&tab(1)].text, Some("badge_on"));
    });
}

#[test]
fn a_restarted_worker_rebuilds_tabs_from_storage() {
    run(|w| async move {
        save_settings(&w).await;
        let (_, id) = paired_to_qr(&w, 1).await;
        // A new worker over the same storage and server: what a browser restart of the
        // service worker leaves.
        let w2 = reopened(&w);
        let port = open_popup(&w2, 1).await;
        assert_eq!(session_of(&w2, port), id);
        assert_eq!(shell(&w2).server.count("generate-token"), 0);
        assert_eq!(shell(&w2).server.count("start-session"), 0);
        assert_eq!(shown(&w2, port).qr.as_deref(), Some(QR));
    });
}

#[test]
fn the_connection_test_merges_the_saved_secret_with_the_verdict() {
    run(|w| async move {
        let test = |secret: Option<&str>| OptionsRequest::TestConnection {
            id: Some(ServerId::first()),
            server_url: ServerUrl::parse(URL).unwrap(),
            secret_key: secret.map(|s| SecretKey::parse(s).unwrap()),
            allow_insecure_http: false,
        };
        let reply = w.options_message(&encode(&test(None)).to_string()).await;
        assert_eq!(
            (
                reply["ok"].clone(),
                message_of(&reply).contains("Enter the secret")
            ),
            (json!(false), true)
        );
        let reply = w
            .options_message(&encode(&test(Some("wrong"))).to_string())
            .await;
        assert!(message_of(&reply).contains("refused the secret"));
        let reply = w
            .options_message(&encode(&test(Some(SECRET))).to_string())
            .await;
        assert_eq!(reply["ok"], true);
        save_settings(&w).await;
        let reply = w.options_message(&encode(&test(None)).to_string()).await;
        assert_eq!(reply["ok"], true, "the saved secret is used");
        shell(&w).server.fail("healthz", ApiError::Unreachable);
        let reply = w.options_message(&encode(&test(None)).to_string()).await;
        assert!(message_of(&reply).contains("Cannot reach"));
    });
}

#[test]
fn options_requests_keep_the_saved_secret_and_never_return_it() {
    run(|w| async move {
        let save = |secret: Option<&str>| save_server(URL, secret, false);
        let reply = w.options_message(&encode(&save(None)).to_string()).await;
        assert_eq!(reply["type"], "error", "a first save needs the secret");
        assert_eq!(
            w.options_message(&encode(&save(Some(SECRET))).to_string())
                .await["type"],
            "saved"
        );
        assert_eq!(
            w.options_message(&encode(&save(None)).to_string()).await["type"],
            "saved"
        );
        let reply = w
            .options_message(&encode(&OptionsRequest::GetSettings).to_string())
            .await;
        assert_eq!(reply["servers"][0]["hasSecret"], true);
        assert!(!reply.to_string().contains(SECRET));
        // A new URL is a new server as far as the secret goes: it must be entered again.
        let moved = save_server("http://127.0.0.1:21466", None, false);
        let reply = w.options_message(&encode(&moved).to_string()).await;
        assert!(message_of(&reply).contains("URL changed"), "{reply}");
        let refused = w
            .options_message(r#"{"v": 1, "type": "getSettings"}"#)
            .await;
        assert!(message_of(&refused).contains("version"));
    });
}

#[test]
fn a_tab_that_finished_loading_gets_its_badge_again() {
    run(|w| async move {
        save_settings(&w).await;
        paired_to_qr(&w, 1).await;
        // What Firefox does on navigation: the badge is gone, the worker did not clear it.
        shell(&w).badges.borrow_mut().clear();
        w.tab_updated(tab(1), Some("loading")).await;
        assert!(shell(&w).badges.borrow().get(&tab(1)).is_none());
        w.tab_updated(tab(1), Some("complete")).await;
        assert_eq!(shell(&w).badges.borrow()[&tab(1)].text, Some("badge_qr"));
    });
}

#[test]
fn plain_http_to_another_computer_needs_the_users_word_and_then_shows_a_warning() {
    run(|w| async move {
        let remote = ServerUrl::parse("http://192.168.1.20:21465").unwrap();
        let save = |allow: bool| save_server(remote.as_str(), Some(SECRET), allow);
        let refused = w.options_message(&encode(&save(false)).to_string()).await;
        assert_eq!(refused["type"], "error");
        assert!(message_of(&refused).contains("unencrypted"), "{refused}");
        assert!(
            shell(&w).kv.area(Area::Local).is_empty(),
            "nothing was saved"
        );
        let test = OptionsRequest::TestConnection {
            id: None,
            server_url: remote.clone(),
            secret_key: Some(SecretKey::parse(SECRET).unwrap()),
            allow_insecure_http: false,
        };
        let tested = w.options_message(&encode(&test).to_string()).await;
        assert_eq!(tested["ok"], false);
        assert!(
            shell(&w).server.calls.borrow().is_empty(),
            "the secret never left"
        );

        // Settings from before the opt-in existed: nothing is sent, and the popup says why.
        let store = Store::new(&shell(&w).kv);
        let mut old = settings_for(remote.as_str(), SECRET);
        old.servers[0].remember = Remember::Always;
        store.save_settings(&old).await.unwrap();
        let port = open_popup(&w, 1).await;
        let view = shown(&w, port);
        assert!(
            view.needs_settings && view.status_text.english().contains("http://"),
            "{view:?}"
        );
        assert!(shell(&w).server.calls.borrow().is_empty());

        // With the user's word: it works, and every view carries the warning.
        assert_eq!(
            w.options_message(&encode(&save(true)).to_string()).await["type"],
            "saved"
        );
        pass(1).await;
        let view = shown(&w, port);
        assert!(view.insecure_server && !view.needs_settings, "{view:?}");
        assert_eq!(shell(&w).server.count("generate-token"), 1);
    });
}

#[test]
fn a_token_renewed_during_a_logout_does_not_come_back() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = paired_to_qr(&w, 1).await;
        w.page_disconnected(port);
        // One refused poll: the next refresh renews the token, slowly, while the menu logs
        // the session out.
        shell(&w)
            .server
            .fail("status-session", ApiError::Unauthorized);
        w.refresh(&id).await;
        shell(&w)
            .server
            .slow
            .borrow_mut()
            .insert("generate-token", 50);
        tokio::join!(
            w.refresh(&id),
            w.menu_clicked(Some(LOGOUT_MENU_ID), Some(tab(1)))
        );
        pass(1).await;
        assert_eq!(
            shell(&w).server.count("close-session"),
            1,
            "the server was told"
        );
        assert_eq!(
            shell(&w).server.count("generate-token"),
            2,
            "the renewal ran"
        );
        assert_eq!(keys_of(&w, &id), Vec::<String>::new(), "came back");
    });
}

#[test]
fn a_task_that_held_a_logged_out_sessions_record_cannot_write_it_back() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = paired_to_qr(&w, 1).await;
        // A status check whose reply lands after the logout finished under it.
        shell(&w)
            .server
            .slow
            .borrow_mut()
            .insert("status-session", 50);
        tokio::join!(w.refresh(&id), send(&w, port, PopupRequest::Logout));
        pass(1).await;
        w.tab_removed(tab(1)).await;
        assert_eq!(keys_of(&w, &id), Vec::<String>::new(), "came back");
    });
}

#[test]
fn the_menu_asks_before_logging_out_a_connected_account() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = paired_to_qr(&w, 1).await;
        shell(&w).server.set(&id, ServerStatus::Connected);
        pass(u64::from(T.fast_poll_ms) + 10).await;
        assert!(shown(&w, port).logout_needs_confirmation());
        w.menu_clicked(Some(LOGOUT_MENU_ID), Some(tab(1))).await;
        assert_eq!(*shell(&w).confirmations.borrow(), [tab(1)]);
        assert_eq!(shell(&w).server.count("logout-session"), 0, "nothing yet");
        assert!(stored(&w, &keys::token(&id)).is_some());
        // The confirmation's own "Log out" is the popup's logout request.
        send(&w, port, PopupRequest::Logout).await;
        assert_eq!(shell(&w).server.count("logout-session"), 1);
        assert_eq!(stored(&w, &keys::token(&id)), None);
    });
}

// ---- the session manager ----

/// Opens a Sessions page and subscribes it.
async fn open_sessions_page(w: &TestWorker) -> PortKey {
    let port = w.page_connected(PageKind::Sessions);
    let request = crate::core::messages::SessionsRequest::Subscribe;
    w.page_message(port, &encode(&request).to_string()).await;
    port
}

async fn sessions_request(
    w: &TestWorker,
    port: PortKey,
    request: crate::core::messages::SessionsRequest,
) {
    w.page_message(port, &encode(&request).to_string()).await;
}

/// The Sessions page's action on one session.
async fn act(
    w: &TestWorker,
    page: PortKey,
    action: crate::core::messages::SessionAction,
    id: &SessionId,
) {
    let request = crate::core::messages::SessionsRequest::Act {
        action,
        ids: vec![id.clone()],
    };
    sessions_request(w, page, request).await;
}

fn last_list(w: &TestWorker, port: PortKey) -> SessionsView {
    let lists = shell(w).lists.borrow();
    let last = lists.iter().rev().find(|(p, _)| *p == port);
    last.expect("a list was pushed").1.clone()
}

/// Pairs tab `n` and connects it (the phone scanned).
async fn connected(w: &TestWorker, n: i64) -> (PortKey, SessionId) {
    let (port, id) = paired_to_qr(w, n).await;
    shell(w).server.set(&id, ServerStatus::Connected);
    pass(u64::from(T.fast_poll_ms) + 10).await;
    assert_eq!(shown(w, port).phase, Phase::Connected);
    (port, id)
}

/// A new worker over the same `storage.local` and server, with `storage.session` empty:
/// what a browser restart leaves.
fn restarted(w: &TestWorker) -> TestWorker {
    let after = FakeShell::default();
    let local = shell(w).kv.area(Area::Local);
    after.kv.areas.borrow_mut().insert(Area::Local, local);
    *after.server.tokens.borrow_mut() = shell(w).server.tokens.borrow().clone();
    *after.server.sessions.borrow_mut() = shell(w).server.sessions.borrow().clone();
    *after.server.accounts.borrow_mut() = shell(w).server.accounts.borrow().clone();
    Worker::new(after, T)
}

/// A new worker over the same storage (both areas) and server: what a restart of the
/// service worker leaves.
fn reopened(w: &TestWorker) -> TestWorker {
    let after = FakeShell::default();
    *after.kv.areas.borrow_mut() = shell(w).kv.areas.borrow().clone();
    *after.server.tokens.borrow_mut() = shell(w).server.tokens.borrow().clone();
    *after.server.sessions.borrow_mut() = shell(w).server.sessions.borrow().clone();
    Worker::new(after, T)
}

#[test]
fn a_connected_account_is_read_once_and_shown_with_its_session() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = connected(&w, 1).await;
        pass(1).await;
        assert_eq!(shell(&w).server.count("host-device"), 1);
        let account = shown(&w, port).account.expect("the account is shown");
        assert_eq!(indexed(&w, &id).unwrap()["account"]["phone"], account.phone);
        let title = shell(&w).titles.borrow()[&tab(1)].clone();
        assert!(title.contains(&account.phone), "{title}");
        assert!(title.contains("Account 1"), "{title}");
        // Further checks do not read it again.
        w.refresh(&id).await;
        pass(1).await;
        assert_eq!(shell(&w).server.count("host-device"), 1);
    });
}

#[test]
fn the_account_falls_back_to_get_phone_number() {
    run(|w| async move {
        save_settings(&w).await;
        shell(&w).server.fail(
            "host-device",
            ApiError::Server {
                status: 500,
                message: "Erro".into(),
            },
        );
        let (port, _) = connected(&w, 1).await;
        pass(1).await;
        assert_eq!(shell(&w).server.count("get-phone-number"), 1);
        let account = shown(&w, port).account.expect("the number is shown");
        assert_eq!(account.name, None);
    });
}

#[test]
fn after_a_browser_restart_sessions_are_offered_and_reattach_without_a_qr() {
    run(|w| async move {
        save_settings(&w).await;
        let (a_port, a) = connected(&w, 1).await;
        let (_, b) = paired_to_qr(&w, 2).await;
        describe(&w, a_port, "Loja Centro", None).await;
        pass(1).await;
        let w2 = restarted(&w);
        save_settings(&w2).await;
        let port = open_popup(&w2, 7).await;
        let view = shown(&w2, port);
        assert_eq!(view.session_id, None, "nothing attached yet");
        assert_eq!(
            view.action_label.map(|l| l.english()).as_deref(),
            Some("Pair a new account")
        );
        let offered: Vec<&str> = view.attachable.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(offered, ["Account 2", "Loja Centro"]);
        assert_eq!(shell(&w2).server.calls.borrow().len(), 0, "nothing started");
        attach(&w2, port, &a).await;
        pass(1).await;
        let view = shown(&w2, port);
        assert_eq!(
            (view.session_id.as_ref(), view.phase),
            (Some(&a), Phase::Connected)
        );
        assert_eq!(view.qr, None);
        assert_eq!(view.label.as_deref(), Some("Loja Centro"));
        assert!(view.account.is_some());
        assert_eq!(
            shell(&w2).server.routes(),
            ["generate-token", "status-session"],
            "a fresh token, one check, no start"
        );
        assert!(stored(&w2, &keys::token(&a)).is_some());
        // The other stays offered to other tabs.
        let other = open_popup(&w2, 8).await;
        let ids: Vec<SessionId> = shown(&w2, other)
            .attachable
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, [b]);
    });
}

#[test]
fn one_notification_per_drop_naming_the_account() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = connected(&w, 1).await;
        pass(1).await;
        w.page_disconnected(port);
        shell(&w).server.set(&id, ServerStatus::Closed);
        minute_alarm(&w).await;
        minute_alarm(&w).await;
        let notices = shell(&w).notices.borrow().clone();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].id, format!("wpp-drop:{id}"));
        assert!(
            notices[0].message.english().contains("Account 1"),
            "{notices:?}"
        );
        let phone = shell(&w).server.accounts.borrow()[id.as_str()]
            .phone
            .clone();
        assert!(notices[0].message.english().contains(&phone), "{notices:?}");
        // Connected again, then the server stops answering: a second drop, a second notice.
        shell(&w).server.set(&id, ServerStatus::Connected);
        minute_alarm(&w).await;
        shell(&w)
            .server
            .fail("status-session", ApiError::Unreachable);
        shell(&w)
            .server
            .fail("status-session", ApiError::Unreachable);
        minute_alarm(&w).await;
        minute_alarm(&w).await;
        let notices = shell(&w).notices.borrow().clone();
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(
            notices[1].message.english().contains("stopped answering"),
            "{notices:?}"
        );
        // Clicking it brings up the session's tab.
        w.notification_clicked(&notices[1].id).await;
        assert_eq!(*shell(&w).focused.borrow(), [tab(1)]);
    });
}

#[test]
fn a_session_the_user_closed_is_no_drop_and_restarts_without_a_qr() {
    run(|w| async move {
        save_settings(&w).await;
        let (_, id) = connected(&w, 1).await;
        let list = open_sessions_page(&w).await;
        use crate::core::messages::SessionAction;
        act(&w, list, SessionAction::Close, &id).await;
        assert_eq!(shell(&w).server.count("close-session"), 1);
        minute_alarm(&w).await;
        assert!(shell(&w).notices.borrow().is_empty());
        act(&w, list, SessionAction::Restart, &id).await;
        assert_eq!(shell(&w).server.count("start-session"), 2);
    });
}

#[test]
fn each_session_talks_only_to_its_own_server_with_its_own_secret() {
    run(|w| async move {
        save_settings(&w).await;
        *shell(&w).second.secret.borrow_mut() = Some(SECRET2.into());
        let add = OptionsRequest::SaveServer {
            id: None,
            name: "Second".into(),
            server_url: ServerUrl::parse(URL2).unwrap(),
            secret_key: Some(SecretKey::parse(SECRET2).unwrap()),
            remember: Remember::Session,
            allow_insecure_http: false,
            make_default: false,
        };
        let reply = w.options_message(&encode(&add).to_string()).await;
        assert_eq!(reply["id"], "s2", "{reply}");
        // With two servers nothing starts by itself: the popup offers the choice.
        let port = open_popup(&w, 1).await;
        let view = shown(&w, port);
        assert_eq!(view.session_id, None);
        let names: Vec<&str> = view.servers.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["My server", "Second"]);
        assert_eq!(view.default_server, Some(ServerId::first()));
        assert!(shell(&w).server.calls.borrow().is_empty());
        send(&w, port, PopupRequest::Pair { server: None }).await;
        let first = shown(&w, port).session_id.unwrap();
        let port = open_popup(&w, 2).await;
        let s2 = ServerId::parse("s2");
        send(&w, port, PopupRequest::Pair { server: s2 }).await;
        let second_id = shown(&w, port).session_id.unwrap();
        let on = |server: &FakeServer| -> HashSet<String> {
            server
                .calls
                .borrow()
                .iter()
                .map(|(_, id)| id.clone())
                .filter(|id| !id.is_empty())
                .collect()
        };
        assert_eq!(
            on(&shell(&w).second),
            HashSet::from([second_id.to_string()])
        );
        assert!(!on(&shell(&w).server).contains(second_id.as_str()));
        assert!(on(&shell(&w).server).contains(first.as_str()));
        assert_eq!(indexed(&w, &second_id).unwrap()["server"], "s2");
        // The Sessions page groups them by server.
        let list = open_sessions_page(&w).await;
        let groups = last_list(&w, list).groups;
        let ids = |g: usize| -> Vec<SessionId> {
            groups[g]
                .sessions
                .iter()
                .filter(|r| r.known)
                .map(|r| r.id.clone())
                .collect()
        };
        assert_eq!((ids(0), ids(1)), (vec![first], vec![second_id]));
    });
}

#[test]
fn closing_a_tab_can_close_its_session_on_the_server() {
    run(|w| async move {
        save_settings(&w).await;
        let prefs = OptionsRequest::SavePreferences {
            closed_tab: crate::core::settings::ClosedTab::CloseOnServer,
            notify_drops: true,
            stale_after_days: Default::default(),
            auto_forget_stale: false,
        };
        assert_eq!(
            w.options_message(&encode(&prefs).to_string()).await["type"],
            "saved"
        );
        let (_, id) = connected(&w, 1).await;
        w.tab_removed(tab(1)).await;
        assert_eq!(shell(&w).server.count("close-session"), 1);
        assert!(indexed(&w, &id).is_some(), "closed, not forgotten");
        assert!(
            shell(&w).notices.borrow().is_empty(),
            "the user's own close is no drop"
        );
    });
}

#[test]
fn a_tab_closed_before_its_session_started_takes_it_along() {
    run(|w| async move {
        // No settings: the tab gets an ID that never reaches a server.
        let port = open_popup(&w, 1).await;
        let id = session_of(&w, port);
        assert!(indexed(&w, &id).is_some());
        w.tab_removed(tab(1)).await;
        assert_eq!(keys_of(&w, &id), Vec::<String>::new());
    });
}

#[test]
fn export_then_import_restores_the_list_without_a_token_or_secret() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = connected(&w, 1).await;
        describe(
            &w,
            port,
            "Loja Norte",
            Some(crate::core::index::Colour::Teal),
        )
        .await;
        pass(1).await;
        let list = open_sessions_page(&w).await;
        use crate::core::messages::SessionsRequest;
        sessions_request(&w, list, SessionsRequest::Export).await;
        let text = shell(&w)
            .exports
            .borrow()
            .last()
            .cloned()
            .expect("an export");
        assert!(!text.contains(SECRET));
        for tokens in shell(&w).server.tokens.borrow().values() {
            for token in tokens {
                assert!(!text.contains(token.as_str()));
            }
        }
        // Into a fresh browser.
        let fresh = Worker::new(FakeShell::default(), T);
        let page = open_sessions_page(&fresh).await;
        sessions_request(&fresh, page, SessionsRequest::Import { text: text.clone() }).await;
        let entry = indexed(&fresh, &id).expect("imported");
        assert_eq!(
            (entry["label"].clone(), entry["colour"].clone()),
            (json!("Loja Norte"), json!("teal"))
        );
        let settings = shell(&fresh).kv.area(Area::Local)[keys::SETTINGS].clone();
        assert!(settings.to_string().contains(URL), "{settings}");
        // A second import changes nothing; an older copy never replaces a newer entry.
        send_describe_on(&fresh, &id, "Renamed here").await;
        sessions_request(&fresh, page, SessionsRequest::Import { text }).await;
        assert_eq!(indexed(&fresh, &id).unwrap()["label"], "Renamed here");
        sessions_request(&fresh, page, SessionsRequest::Import { text: "{}".into() }).await;
        assert!(!shell(&fresh)
            .warnings
            .borrow()
            .iter()
            .any(|w| w.contains("panick")));
    });
}

async fn send_describe_on(w: &TestWorker, id: &SessionId, label: &str) {
    pass(1).await;
    let page = open_sessions_page(w).await;
    let request = crate::core::messages::SessionsRequest::Describe {
        id: id.clone(),
        label: Some(crate::core::index::Label::parse(label).unwrap()),
        colour: None,
    };
    sessions_request(w, page, request).await;
}

#[test]
fn the_sessions_page_paces_its_checks() {
    run(|w| async move {
        save_settings(&w).await;
        let mut ids = Vec::new();
        for n in 1..=20 {
            let (port, id) = connected(&w, n).await;
            w.page_disconnected(port);
            ids.push(id);
        }
        pass(120_000).await;
        shell(&w).server.calls.borrow_mut().clear();
        let list = open_sessions_page(&w).await;
        pass(u64::from(T.list_refresh_ms) * 3).await;
        let per_minute = |route| shell(&w).server.count(route) as f64 / 3.0;
        assert!(
            per_minute("status-session") <= 21.0,
            "{}",
            per_minute("status-session")
        );
        assert!(
            per_minute("status-session") >= 19.0,
            "{}",
            per_minute("status-session")
        );
        assert_eq!(per_minute("show-all-sessions"), 1.0);
        let rows = last_list(&w, list).groups[0].sessions.len();
        assert_eq!(rows, 20);
        // The alarm leaves the checks to the open page: no second check of a session.
        let before = shell(&w).server.calls.borrow().len();
        w.alarm(REFRESH_ALARM).await;
        assert_eq!(shell(&w).server.calls.borrow().len(), before);
        // Closed, it stops.
        w.page_disconnected(list);
        pass(1_000).await;
        let calls = shell(&w).server.calls.borrow().len();
        pass(u64::from(T.list_refresh_ms) * 2).await;
        assert_eq!(shell(&w).server.calls.borrow().len(), calls);
    });
}

#[test]
fn logging_out_from_the_sessions_page_removes_exactly_that_session() {
    run(|w| async move {
        save_settings(&w).await;
        let (_, a) = connected(&w, 1).await;
        let (_, b) = connected(&w, 2).await;
        let list = open_sessions_page(&w).await;
        use crate::core::messages::{SessionAction, SessionsRequest};
        act(&w, list, SessionAction::Logout, &a).await;
        assert_eq!(keys_of(&w, &a), Vec::<String>::new());
        assert_eq!(keys_of(&w, &b), attached_keys(2, &b));
        let rows: Vec<SessionId> = last_list(&w, list).groups[0]
            .sessions
            .iter()
            .filter(|r| r.known)
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(
            rows,
            std::slice::from_ref(&b),
            "the server's own list may still name it"
        );
        // Detach and open all: the session gets a tab again.
        act(&w, list, SessionAction::Detach, &b).await;
        assert_eq!(stored(&w, &keys::tab(tab(2))), None);
        sessions_request(&w, list, SessionsRequest::OpenAll).await;
        let tab_of_b = last_list(&w, list).groups[0].sessions[0]
            .tab
            .expect("a new tab");
        assert_eq!(stored(&w, &keys::tab(tab_of_b)), Some(json!(b.as_str())));
    });
}

// ---- stale sessions and monitoring ----

const DAY: u64 = 86_400_000;

/// The options page's "Behaviour" save: stale after `days`, the opt-in to forget by itself.
/// The sessions closed on the server so far, in order.
fn closed_on_server(w: &TestWorker) -> Vec<String> {
    shell(w)
        .server
        .calls
        .borrow()
        .iter()
        .filter(|(route, _)| *route == "close-session")
        .map(|(_, id)| id.clone())
        .collect()
}

async fn save_preferences(w: &TestWorker, days: u32, auto_forget_stale: bool) {
    let request = OptionsRequest::SavePreferences {
        closed_tab: crate::core::settings::ClosedTab::KeepRunning,
        notify_drops: true,
        stale_after_days: crate::core::settings::StaleAfterDays::new(days).unwrap(),
        auto_forget_stale,
    };
    let reply = w.options_message(&encode(&request).to_string()).await;
    assert_eq!(reply["type"], "saved", "{reply}");
}

/// The last list's rows, by session ID.
fn rows_by_id(
    w: &TestWorker,
    port: PortKey,
) -> HashMap<SessionId, crate::core::messages::SessionRow> {
    last_list(w, port)
        .groups
        .into_iter()
        .flat_map(|g| g.sessions)
        .map(|r| (r.id.clone(), r))
        .collect()
}

fn stale_ids(w: &TestWorker, port: PortKey) -> Vec<SessionId> {
    let mut ids: Vec<SessionId> = rows_by_id(w, port)
        .into_values()
        .filter(|r| r.stale)
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_session_is_stale_after_n_days_without_being_connected() {
    run(|w| async move {
        save_settings(&w).await;
        let (a_port, a) = connected(&w, 1).await;
        let (b_port, b) = connected(&w, 2).await;
        // C shows its QR and is never scanned: it counts from its creation.
        let (c_port, c) = paired_to_qr(&w, 3).await;
        for port in [a_port, b_port, c_port] {
            w.page_disconnected(port);
        }
        // A is unlinked on the phone; B stays connected, unchecked for a month.
        shell(&w).server.set(&a, ServerStatus::Closed);
        minute_alarm(&w).await;
        assert_eq!(indexed(&w, &a).unwrap()["lastStatus"], "CLOSED");
        pass(29 * DAY).await;
        let page = open_sessions_page(&w).await;
        assert_eq!(stale_ids(&w, page), Vec::<SessionId>::new(), "29 days");
        w.page_disconnected(page);
        pass(DAY + 60_000).await;
        let page = open_sessions_page(&w).await;
        let mut expected = vec![a.clone(), c.clone()];
        expected.sort();
        assert_eq!(stale_ids(&w, page), expected, "30 days and a minute");
        assert_eq!(last_list(&w, page).stale_after_days.days(), 30);
        // Its check finds B still connected: never stale, and its date moves on.
        pass(u64::from(T.list_refresh_ms)).await;
        assert!(!rows_by_id(&w, page)[&b].stale);
        // A longer setting reaches the open page at once.
        save_preferences(&w, 45, false).await;
        assert_eq!(stale_ids(&w, page), Vec::<SessionId>::new(), "45 days");
        assert_eq!(last_list(&w, page).stale_after_days.days(), 45);
        save_preferences(&w, 1, false).await;
        assert_eq!(stale_ids(&w, page), expected, "1 day");
        // Nothing was closed or forgotten by itself.
        assert_eq!(shell(&w).server.count("close-session"), 0);
        for id in [&a, &b, &c] {
            assert!(indexed(&w, id).is_some(), "{id} kept");
        }
    });
}

#[test]
fn the_opt_in_forgets_stale_sessions_but_never_one_attached_to_a_tab() {
    run(|w| async move {
        save_settings(&w).await;
        let (a_port, a) = connected(&w, 1).await;
        let (b_port, b) = connected(&w, 2).await;
        let (c_port, c) = connected(&w, 3).await;
        for port in [a_port, b_port, c_port] {
            w.page_disconnected(port);
        }
        // B's tab is closed: it stays listed, detached, with its token.
        shell(&w).open_tabs.borrow_mut().remove(&tab(2));
        w.tab_removed(tab(2)).await;
        shell(&w).server.set(&a, ServerStatus::Closed);
        shell(&w).server.set(&b, ServerStatus::Closed);
        minute_alarm(&w).await;
        pass(31 * DAY).await;
        // Without the opt-in, a month later, nothing goes.
        minute_alarm(&w).await;
        assert_eq!(shell(&w).server.count("close-session"), 0);
        assert!(indexed(&w, &a).is_some() && indexed(&w, &b).is_some());
        // With it: B (stale, in no tab) is closed on the server and forgotten; A (stale, in
        // a tab) and C (connected) are left alone.
        save_preferences(&w, 30, true).await;
        minute_alarm(&w).await;
        let closes = closed_on_server(&w);
        assert_eq!(closes, [b.to_string()]);
        assert_eq!(keys_of(&w, &b), Vec::<String>::new());
        assert_eq!(keys_of(&w, &a), attached_keys(1, &a));
        assert_eq!(indexed(&w, &c).unwrap()["lastStatus"], "CONNECTED");
        // The next alarms find nothing more to do.
        minute_alarm(&w).await;
        assert_eq!(shell(&w).server.count("close-session"), 1);
        assert!(indexed(&w, &a).is_some());
    });
}

#[test]
fn closing_and_forgetting_stale_sessions_takes_exactly_the_stale_ones() {
    run(|w| async move {
        use crate::core::messages::SessionsRequest;
        save_settings(&w).await;
        let mut ids = Vec::new();
        for n in 1..=3 {
            let (port, id) = connected(&w, n).await;
            w.page_disconnected(port);
            ids.push(id);
        }
        let [a, b, c] = [ids[0].clone(), ids[1].clone(), ids[2].clone()];
        // A unlinked on day 0, C on day 20; B stays connected.
        shell(&w).server.set(&a, ServerStatus::Closed);
        minute_alarm(&w).await;
        pass(20 * DAY).await;
        minute_alarm(&w).await;
        shell(&w).server.set(&c, ServerStatus::Closed);
        minute_alarm(&w).await;
        pass(15 * DAY).await;
        let page = open_sessions_page(&w).await;
        assert_eq!(stale_ids(&w, page), std::slice::from_ref(&a));
        shell(&w).warnings.borrow_mut().clear();
        // A page that (wrongly) named all three: the worker takes only the stale one.
        let request = SessionsRequest::ForgetStale {
            ids: vec![a.clone(), b.clone(), c.clone()],
        };
        sessions_request(&w, page, request).await;
        let closes = closed_on_server(&w);
        assert_eq!(closes, [a.to_string()], "closed on the server first");
        assert_eq!(
            keys_of(&w, &a),
            Vec::<String>::new(),
            "its entry, token and tab binding"
        );
        for (n, id) in [(2, &b), (3, &c)] {
            assert_eq!(
                keys_of(&w, id),
                [
                    keys::SESSIONS.to_owned(),
                    keys::tab(tab(n)),
                    keys::token(id)
                ]
            );
        }
        let rows = rows_by_id(&w, page);
        assert!(!rows.contains_key(&a) || !rows[&a].known);
        assert_eq!(stale_ids(&w, page), Vec::<SessionId>::new());
        let notices = shell(&w).warnings.borrow().clone();
        assert!(
            notices.iter().any(|n| n
                == "Closed and forgot 1 stale session. 2 left alone: no longer stale, or \
                    already gone."),
            "{notices:?}"
        );
        // A server that does not answer does not keep a stale session here.
        w.page_disconnected(page);
        pass(20 * DAY).await;
        let page = open_sessions_page(&w).await;
        assert_eq!(stale_ids(&w, page), std::slice::from_ref(&c));
        shell(&w)
            .server
            .fail("close-session", ApiError::Unreachable);
        sessions_request(
            &w,
            page,
            SessionsRequest::ForgetStale {
                ids: vec![c.clone()],
            },
        )
        .await;
        assert_eq!(keys_of(&w, &c), Vec::<String>::new());
        assert_eq!(shell(&w).server.count("close-session"), 2);
    });
}

#[test]
fn connected_time_drops_and_the_last_error_accumulate() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, a) = connected(&w, 1).await;
        w.page_disconnected(port);
        let entry = |w: &TestWorker| indexed(w, &a).unwrap();
        let seen = |w: &TestWorker| entry(w)["lastSeenConnected"].as_f64().unwrap();
        let time = |w: &TestWorker| entry(w)["connectedMs"].as_f64().unwrap();
        let (seen0, time0) = (seen(&w), time(&w));
        // Checked every minute: each minute counts.
        for _ in 0..3 {
            minute_alarm(&w).await;
        }
        assert_eq!(time(&w) - time0, seen(&w) - seen0);
        assert!(time(&w) - time0 >= 180_000.0, "{}", time(&w));
        // An hour without a check (the browser closed): two alarm periods count, no more.
        let before = time(&w);
        pass(3_600_000).await;
        w.alarm(REFRESH_ALARM).await;
        assert_eq!(time(&w) - before, 120_000.0);
        // Unlinked: one drop, however many checks see it.
        shell(&w).server.set(&a, ServerStatus::Closed);
        minute_alarm(&w).await;
        minute_alarm(&w).await;
        assert_eq!(entry(&w)["drops"], 1);
        let connected_total = time(&w);
        // Paired again (the scan), then the server stops answering: a second drop, and the
        // error with its time; the time it was down does not count as connected.
        shell(&w).server.set(&a, ServerStatus::Connected);
        minute_alarm(&w).await;
        assert_eq!(time(&w), connected_total, "connected again from now");
        let seen_up = seen(&w);
        for _ in 0..2 {
            shell(&w)
                .server
                .fail("status-session", ApiError::Unreachable);
        }
        minute_alarm(&w).await;
        minute_alarm(&w).await;
        let failed_at = shell(&w).now_ms();
        assert_eq!(entry(&w)["drops"], 2);
        assert_eq!(
            entry(&w)["lastError"],
            json!({"code": "unreachable", "at": failed_at})
        );
        assert_eq!(seen(&w), seen_up, "a failed check is no sighting");
        // Back: the gap from the last good check is capped again.
        minute_alarm(&w).await;
        minute_alarm(&w).await;
        assert_eq!(entry(&w)["drops"], 2);
        assert_eq!(entry(&w)["lastStatus"], "CONNECTED");
        assert!(time(&w) > connected_total);
        // The Sessions page shows the same numbers.
        let page = open_sessions_page(&w).await;
        let row = rows_by_id(&w, page)[&a].clone();
        assert_eq!(row.drops, 2);
        assert_eq!(row.connected_ms, time(&w));
        assert_eq!(
            row.last_error.map(|e| e.code).as_deref(),
            Some("unreachable")
        );
        // A failed logout is recorded too.
        w.page_disconnected(page);
        shell(&w).server.fail(
            "logout-session",
            ApiError::Server {
                status: 500,
                message: "Erro".into(),
            },
        );
        let popup = open_popup(&w, 1).await;
        send(&w, popup, PopupRequest::Logout).await;
        assert_eq!(entry(&w)["lastError"]["code"], "server");
    });
}

// ---- diagnostics ----

/// The diagnostics of the server at [`URL`] as the page would show them: requests by route,
/// failures by kind.
fn diagnosed(w: &TestWorker) -> crate::core::diagnostics::ServerReport {
    let view = w.diagnostics_view();
    let server = view.servers.iter().find(|s| s.url == URL);
    server.expect("the server is listed").clone()
}

fn requests_of(report: &crate::core::diagnostics::ServerReport, route: &str) -> (u32, u32) {
    let row = report.routes.iter().find(|r| r.route.as_str() == route);
    row.map_or((0, 0), |r| (r.requests, r.failures))
}

#[test]
fn diagnostics_count_a_scenarios_requests_by_route_with_failures_by_kind() {
    use crate::core::diagnostics::{report_text, EventKind, LOG_KEY};
    run(|w| async move {
        save_settings(&w).await;
        let (_, id) = paired_to_qr(&w, 1).await;
        // One status-session fails; the server's message names the session and the secret.
        let message = format!("simulated failure of {id} with {SECRET}");
        let failure = ApiError::Server {
            status: 500,
            message,
        };
        shell(&w).server.fail("status-session", failure);
        pass(u64::from(T.fast_poll_ms) + 10).await;
        shell(&w).server.set(&id, ServerStatus::Connected);
        pass(u64::from(T.fast_poll_ms) * 3).await;
        let report = diagnosed(&w);
        assert_eq!(report.id, Some(ServerId::first()));
        for route in [
            "generate-token",
            "start-session",
            "status-session",
            "host-device",
        ] {
            let counted = requests_of(&report, route).0 as usize;
            assert_eq!(counted, shell(&w).server.count(route), "{route}");
            assert!(counted > 0, "{route}");
        }
        assert_eq!(requests_of(&report, "status-session").1, 1);
        let kinds: Vec<(&str, u32)> = report
            .failures
            .iter()
            .map(|f| (f.kind.as_str(), f.count))
            .collect();
        assert_eq!(kinds, [("server", 1)]);
        let latency = report.latency.expect("requests in the window");
        assert!(latency.requests as usize >= shell(&w).server.calls.borrow().len());
        // The events: the failure (redacted) and the state changes, in order.
        let view = w.diagnostics_view();
        let error = view.events.iter().find(|e| e.kind == EventKind::Error);
        let error = error.expect("the failure is an event");
        assert!(error.text.contains("status-session"), "{}", error.text);
        assert_eq!(error.server.as_deref(), Some("s1"));
        assert_eq!(error.session, Some(crate::core::session::display_id(&id)));
        let states: Vec<&str> = view
            .events
            .iter()
            .filter(|e| e.kind == EventKind::State)
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(
            states.last(),
            Some(&"status QRCODE → CONNECTED"),
            "{states:?}"
        );
        assert!(view.events.iter().any(|e| e.kind == EventKind::Restart));
        // No token, no secret, no full session ID: in the report, and in what is stored
        // (memory-only storage.session, written once the log settled).
        let tokens = shell(&w).server.tokens.borrow().clone();
        pass(u64::from(crate::core::diagnostics::FLUSH_MS) + 10).await;
        let stored = stored(&w, LOG_KEY).expect("the log is stored").to_string();
        assert!(shell(&w).kv.area(Area::Local).get(LOG_KEY).is_none());
        let text = report_text(&w.diagnostics_view());
        for copy in [&text, &stored] {
            for token in tokens.values().flatten() {
                assert!(!copy.contains(token.as_str()), "a token in {copy}");
            }
            assert!(
                !copy.contains(SECRET) && !copy.contains(id.as_str()),
                "{copy}"
            );
            assert!(copy.contains("status-session"), "{copy}");
        }
        assert!(text.contains("no push connection (polling)"), "{text}");
    });
}

#[test]
fn the_workers_own_failures_land_in_the_diagnostics_log() {
    use crate::core::diagnostics::EventKind;
    run(|w| async move {
        save_settings(&w).await;
        let (port, _) = paired_to_qr(&w, 1).await;
        // A malformed page message, and a message on a port that is not open.
        w.page_message(port, "{\"v\": 3, \"type\": \"explode\"}")
            .await;
        w.page_message(PortKey(999), "{}").await;
        // A storage failure.
        *shell(&w).kv.failing.borrow_mut() = Some("quota exceeded".into());
        send(&w, port, PopupRequest::Detach).await;
        *shell(&w).kv.failing.borrow_mut() = None;
        let kinds: Vec<(EventKind, String)> = w
            .diagnostics_view()
            .events
            .into_iter()
            .map(|e| (e.kind, e.text))
            .collect();
        let has =
            |kind: EventKind, part: &str| kinds.iter().any(|(k, t)| *k == kind && t.contains(part));
        assert!(
            has(EventKind::Rejected, "popup message refused"),
            "{kinds:?}"
        );
        assert!(has(EventKind::Rejected, "not open"), "{kinds:?}");
        assert!(has(EventKind::Storage, "quota exceeded"), "{kinds:?}");
        // The console still gets them.
        let warnings = shell(&w).warnings.borrow().join("\n");
        assert!(warnings.contains("quota exceeded"), "{warnings}");
    });
}

#[test]
fn the_diagnostics_log_outlives_a_worker_restart_and_shows_its_panic() {
    use crate::core::diagnostics::{EventKind, PanicLine, LOG_KEY, PANIC_PREFIX};
    run(|w| async move {
        save_settings(&w).await;
        let (_, id) = paired_to_qr(&w, 1).await;
        pass(u64::from(crate::core::diagnostics::FLUSH_MS) + 10).await;
        let before = diagnosed(&w);
        assert!(stored(&w, LOG_KEY).is_some());
        // The panic hook's line, as the instance that died wrote it.
        let token = stored(&w, &keys::token(&id)).unwrap();
        let panic = PanicLine::new(
            shell(&w).now_ms(),
            &format!(
                "panicked at src/core/worker.rs:1:1: {id} {}",
                token.as_str().unwrap()
            ),
        );
        let line = serde_json::to_value(&panic).unwrap();
        shell(&w)
            .kv
            .areas
            .borrow_mut()
            .entry(Area::Session)
            .or_default()
            .insert(panic.key(), line);
        // A fresh instance over the same storage.
        let w2 = reopened(&w);
        let port = open_popup(&w2, 1).await;
        assert_eq!(session_of(&w2, port), id);
        let view = w2.diagnostics_view();
        assert_eq!(view.instances, 2);
        let kinds: Vec<EventKind> = view.events.iter().map(|e| e.kind).collect();
        let restarts = kinds.iter().filter(|k| **k == EventKind::Restart).count();
        assert_eq!(restarts, 2, "{kinds:?}");
        let panic = view.events.iter().find(|e| e.kind == EventKind::Panic);
        let panic = panic.expect("the panic is in the log").text.clone();
        assert!(
            panic.contains("worker.rs") && !panic.contains(id.as_str()),
            "{panic}"
        );
        assert!(!panic.contains(token.as_str().unwrap()), "{panic}");
        assert!(view.events.last().unwrap().text.contains("after a panic"));
        // The hook's line moved into the log; the requests before the restart still count.
        let session = shell(&w2).kv.area(Area::Session);
        assert!(!session.keys().any(|k| k.starts_with(PANIC_PREFIX)));
        let now = diagnosed(&w2);
        let counted =
            |r: &crate::core::diagnostics::ServerReport| requests_of(r, "status-session").0;
        assert!(counted(&now) >= counted(&before), "{now:?}");
        assert_eq!(
            requests_of(&now, "generate-token"),
            requests_of(&before, "generate-token")
        );
    });
}

// ---- the remembered secret: its duration and its lock ----

const PASSPHRASE: &str = "correct horse battery staple";
const DAY_MS: u64 = 24 * 3600 * 1000;

fn passphrase(text: &str) -> crate::core::lock::Passphrase {
    crate::core::lock::Passphrase::parse(text).unwrap()
}

/// The options page's save of server s1 at [`URL`], remembered for `remember`.
fn save_remembered(remember: Remember, secret: Option<&str>) -> OptionsRequest {
    OptionsRequest::SaveServer {
        id: Some(ServerId::first()),
        name: "Main".into(),
        server_url: ServerUrl::parse(URL).unwrap(),
        secret_key: secret.map(|s| SecretKey::parse(s).unwrap()),
        remember,
        allow_insecure_http: false,
        make_default: false,
    }
}

async fn options(w: &TestWorker, request: OptionsRequest) -> Value {
    w.options_message(&encode(&request).to_string()).await
}

/// Server s1 as `storage.local` holds it.
fn stored_server(w: &TestWorker) -> Value {
    shell(w).kv.area(Area::Local)[keys::SETTINGS]["servers"][0].clone()
}

/// s1 remembered always and locked with [`PASSPHRASE`] (unlocked in this browser session).
async fn locked(w: &TestWorker) {
    let saved = options(w, save_remembered(Remember::Always, Some(SECRET))).await;
    assert_eq!(saved["type"], "saved", "{saved}");
    let set = OptionsRequest::SetPassphrase {
        id: ServerId::first(),
        passphrase: passphrase(PASSPHRASE),
    };
    let reply = options(w, set).await;
    assert_eq!(reply["type"], "saved", "{reply}");
}

#[test]
fn a_remembered_secret_is_forgotten_when_its_duration_ends() {
    run(|w| async move {
        let reply = options(&w, save_remembered(Remember::Days7, Some(SECRET))).await;
        assert_eq!(reply["type"], "saved");
        let saved_at = shell(&w).now_ms();
        let server = stored_server(&w);
        assert_eq!(server["secretKey"], SECRET);
        assert_eq!(server["remember"], "days7");
        assert_eq!(
            server["rememberUntil"],
            json!(saved_at + (7 * DAY_MS) as f64)
        );
        let (_, id) = connected(&w, 1).await;

        // A second short of a week, nothing happens; then the next read of the settings (here
        // the minute alarm's) forgets the key, by the worker's clock.
        let now = shell(&w).now_ms();
        pass((saved_at + (7 * DAY_MS) as f64 - now) as u64 - 61_000).await;
        minute_alarm(&w).await;
        assert_eq!(stored_server(&w)["secretKey"], SECRET);
        minute_alarm(&w).await;
        let server = stored_server(&w);
        assert!(server.get("secretKey").is_none(), "{server}");
        assert!(server.get("rememberUntil").is_none(), "{server}");
        assert_eq!(server["remember"], "days7", "the user's choice stays");
        assert!(stored(&w, &keys::secret(&ServerId::first())).is_none());
        let local = Value::Object(shell(&w).kv.area(Area::Local)).to_string();
        assert!(!local.contains(SECRET));

        // It is asked for again: a new tab's popup needs the settings, the options page too.
        let minted = shell(&w).server.count("generate-token");
        let port = open_popup(&w, 2).await;
        assert!(shown(&w, port).needs_settings);
        assert_eq!(shown(&w, port).unlock, None);
        assert_eq!(shell(&w).server.count("generate-token"), minted);
        let summary = options(&w, OptionsRequest::GetSettings).await;
        assert_eq!(summary["servers"][0]["hasSecret"], false);
        // Tokens stay in memory as before: the connected session goes on.
        assert!(stored(&w, &keys::token(&id)).is_some());

        // Entered again, it is remembered again for the same duration, from now.
        let reply = options(&w, save_remembered(Remember::Days7, Some(SECRET))).await;
        assert_eq!(reply["type"], "saved");
        let until = shell(&w).now_ms() + (7 * DAY_MS) as f64;
        assert_eq!(stored_server(&w)["rememberUntil"], json!(until));
        pass(1).await;
        assert!(!shown(&w, port).needs_settings, "the open popup goes on");
    });
}

#[test]
fn a_key_remembered_always_or_for_the_session_never_expires_by_time() {
    run(|w| async move {
        options(&w, save_remembered(Remember::Always, Some(SECRET))).await;
        pass(400 * DAY_MS).await;
        minute_alarm(&w).await;
        assert_eq!(stored_server(&w)["secretKey"], SECRET);
        options(&w, save_remembered(Remember::Session, None)).await;
        assert!(stored_server(&w).get("secretKey").is_none());
        assert!(stored_server(&w).get("rememberUntil").is_none());
        pass(400 * DAY_MS).await;
        minute_alarm(&w).await;
        assert_eq!(
            stored(&w, &keys::secret(&ServerId::first())),
            Some(json!(SECRET))
        );
    });
}

#[test]
fn a_locked_secret_is_at_rest_only_sealed_and_a_restart_asks_for_its_passphrase() {
    run(|w| async move {
        locked(&w).await;
        let server = stored_server(&w);
        assert!(server.get("secretKey").is_none(), "{server}");
        assert_eq!(server["lockedSecret"]["kdf"], "PBKDF2-SHA-256");
        assert!(server["lockedSecret"]["iterations"].as_u64() >= Some(600_000));
        let local = Value::Object(shell(&w).kv.area(Area::Local)).to_string();
        assert!(!local.contains(SECRET) && !local.contains(PASSPHRASE));
        // Unlocked for this browser session: the clear key in memory only.
        assert_eq!(
            stored(&w, &keys::secret(&ServerId::first())),
            Some(json!(SECRET))
        );
        let (_, a) = connected(&w, 1).await;

        // After a restart nothing can mint a token: the popup asks for the passphrase.
        let w2 = restarted(&w);
        let port = open_popup(&w2, 7).await;
        let view = shown(&w2, port);
        let prompt = view.unlock.clone().expect("the unlock form");
        assert_eq!(prompt.server, ServerId::first());
        assert_eq!((prompt.busy, prompt.error), (false, None));
        assert!(view.attachable.iter().any(|r| r.id == a), "{view:?}");
        assert!(shell(&w2).server.calls.borrow().is_empty());

        // A wrong passphrase changes nothing stored, and delays the next try.
        let local_before = shell(&w2).kv.area(Area::Local);
        let unlock = |p: &str| PopupRequest::Unlock {
            server: ServerId::first(),
            passphrase: passphrase(p),
        };
        send(&w2, port, unlock("not the passphrase")).await;
        let error = shown(&w2, port).unlock.and_then(|p| p.error);
        assert_eq!(
            error.map(|e| e.english()).as_deref(),
            Some("Wrong passphrase. Try again in 1 s.")
        );
        assert_eq!(shell(&w2).kv.area(Area::Local), local_before);
        assert!(stored(&w2, &keys::secret(&ServerId::first())).is_none());
        // Even the right one is not tried before the delay is over.
        let derived = shell(&w2).crypto.derived.get();
        send(&w2, port, unlock(PASSPHRASE)).await;
        assert_eq!(shell(&w2).crypto.derived.get(), derived, "not tried");
        let error = shown(&w2, port).unlock.and_then(|p| p.error);
        assert_eq!(
            error.map(|e| e.english()).as_deref(),
            Some("Wrong passphrase. Wait 1 s before the next try.")
        );
        pass(1_000).await;
        send(&w2, port, unlock("still not the passphrase")).await;
        let error = shown(&w2, port).unlock.and_then(|p| p.error);
        assert_eq!(
            error.map(|e| e.english()).as_deref(),
            Some("Wrong passphrase. Try again in 2 s.")
        );
        pass(2_000).await;

        // The right one: the clear key in memory, and the popup goes on where it stopped.
        send(&w2, port, unlock(PASSPHRASE)).await;
        pass(1).await;
        let view = shown(&w2, port);
        assert_eq!(view.unlock, None);
        assert!(!view.needs_settings);
        assert_eq!(
            stored(&w2, &keys::secret(&ServerId::first())),
            Some(json!(SECRET))
        );
        assert_eq!(shell(&w2).kv.area(Area::Local), local_before);
        attach(&w2, port, &a).await;
        pass(1).await;
        let view = shown(&w2, port);
        assert_eq!(
            (view.session_id.as_ref(), view.phase),
            (Some(&a), Phase::Connected)
        );
        assert_eq!(
            shell(&w2).server.routes(),
            ["generate-token", "status-session"]
        );
        // And a new tab pairs.
        let other = open_popup(&w2, 8).await;
        assert_eq!(shown(&w2, other).phase, Phase::Starting);
    });
}

#[test]
fn lock_now_asks_again_and_a_forgotten_passphrase_is_no_lockout() {
    run(|w| async move {
        locked(&w).await;
        let port = open_popup(&w, 1).await;
        let id = session_of(&w, port);
        let reply = options(
            &w,
            OptionsRequest::LockNow {
                id: ServerId::first(),
            },
        )
        .await;
        assert_eq!(reply["type"], "saved", "{reply}");
        assert!(stored(&w, &keys::secret(&ServerId::first())).is_none());
        let summary = &options(&w, OptionsRequest::GetSettings).await["servers"][0];
        assert_eq!(
            (&summary["locked"], &summary["unlocked"]),
            (&json!(true), &json!(false))
        );
        assert_eq!(summary["hasSecret"], true);
        assert!(summary.get("secretKey").is_none());

        // Locked, a new passphrase cannot be set (it would need the clear key); saving the
        // server's other fields keeps the lock.
        let set = OptionsRequest::SetPassphrase {
            id: ServerId::first(),
            passphrase: passphrase("another passphrase"),
        };
        assert_eq!(options(&w, set).await["type"], "error");
        let keep = options(&w, save_remembered(Remember::Always, None)).await;
        assert_eq!(keep["type"], "saved", "{keep}");
        assert!(stored_server(&w).get("lockedSecret").is_some());
        let to_memory = options(&w, save_remembered(Remember::Session, None)).await;
        assert_eq!(
            to_memory["type"], "error",
            "memory only needs the clear key"
        );

        // Forgotten: the key entered again replaces the sealed one, and the tab goes on.
        let again = options(&w, save_remembered(Remember::Always, Some(SECRET))).await;
        assert_eq!(again["type"], "saved");
        let server = stored_server(&w);
        assert!(server.get("lockedSecret").is_none(), "{server}");
        assert_eq!(server["secretKey"], SECRET);
        pass(1).await;
        assert_eq!(shown(&w, port).unlock, None);
        assert_eq!(session_of(&w, port), id);
        assert!(shell(&w).server.count("start-session") >= 1);
    });
}

#[test]
fn only_a_remembered_key_is_locked() {
    run(|w| async move {
        options(&w, save_remembered(Remember::Session, Some(SECRET))).await;
        let set = OptionsRequest::SetPassphrase {
            id: ServerId::first(),
            passphrase: passphrase(PASSPHRASE),
        };
        let reply = options(&w, set).await;
        assert_eq!(reply["type"], "error");
        assert!(stored_server(&w).get("lockedSecret").is_none());
        let lock = options(
            &w,
            OptionsRequest::LockNow {
                id: ServerId::first(),
            },
        )
        .await;
        assert_eq!(lock["type"], "error");
        assert_eq!(
            stored(&w, &keys::secret(&ServerId::first())),
            Some(json!(SECRET))
        );
    });
}

#[test]
fn a_failed_start_keeps_its_error_and_retry_while_the_popup_stays_open() {
    run(|w| async move {
        save_settings(&w).await;
        shell(&w).server.fail(
            "start-session",
            ApiError::Server {
                status: 500,
                message: "simulated failure".into(),
            },
        );
        let port = open_popup(&w, 1).await;
        let view = shown(&w, port);
        assert_eq!(view.error.as_ref().map(|e| e.code.as_str()), Some("server"));
        assert_eq!(view.action, Some(PairAction::Retry));
        // The server knows no such session: a status check would say CLOSED. Nothing asks,
        // and the error and its "Try again" stay for as long as the popup is open.
        pass(u64::from(T.fast_poll_ms) * 10).await;
        assert_eq!(shell(&w).server.count("status-session"), 0);
        let view = shown(&w, port);
        assert_eq!(view.action, Some(PairAction::Retry), "{view:?}");
        send(&w, port, PopupRequest::Pair { server: None }).await;
        assert_eq!(shell(&w).server.count("start-session"), 2);
        assert_eq!(shown(&w, port).error, None);
    });
}
