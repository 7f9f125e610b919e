//! The simulated server's memory: sessions and their status machine (contract §3), the token
//! store, injected faults and the request log. Everything sits behind one std `Mutex` that is
//! never held across an `.await`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

use crate::{qr, SimConfig};

/// `package.json` version of the server being simulated; reported by `status-session`.
pub(crate) const VERSION: &str = "2.10.4";

const LOG_CAP: usize = 10_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Status {
    Initializing,
    QrCode,
    PhoneCode,
    Connected,
    Closed,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Initializing => "INITIALIZING",
            Status::QrCode => "QRCODE",
            Status::PhoneCode => "PHONECODE",
            Status::Connected => "CONNECTED",
            Status::Closed => "CLOSED",
        }
    }
}

/// One `clientsArray[session]` entry.
pub(crate) struct Session {
    /// `None` is the `{status:null}` entry that close-session leaves behind.
    pub(crate) status: Option<Status>,
    /// False for the `{status:null}` entry: it has no `session` field, so events and the
    /// waitQrCode answer of its next start carry no session (upstream issue #1931).
    pub(crate) named: bool,
    pub(crate) urlcode: Option<String>,
    pub(crate) qr_data_url: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) phone_code: Option<String>,
    pub(crate) config: Value,
    pub(crate) waiters: Vec<oneshot::Sender<Value>>,
    /// Identifies the live timer task; a task whose epoch no longer matches does nothing.
    pub(crate) epoch: u64,
    timer: Option<JoinHandle<()>>,
}

impl Session {
    fn new(named: bool) -> Self {
        Session {
            status: None,
            named,
            urlcode: None,
            qr_data_url: None,
            phone: None,
            phone_code: None,
            config: json!({}),
            waiters: Vec::new(),
            epoch: 0,
            timer: None,
        }
    }

    fn set_timer(&mut self, t: Option<JoinHandle<()>>) {
        if let Some(old) = std::mem::replace(&mut self.timer, t) {
            old.abort();
        }
    }

    /// `session` field value for events: absent on the unnamed placeholder.
    fn put_session(&self, name: &str, obj: &mut Map<String, Value>) {
        if self.named {
            obj.insert("session".into(), Value::String(name.into()));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.set_timer(None);
    }
}

/// What `req.client` looked like when auth ran; used by the `res.send` wrapper quirk.
#[derive(Clone, Debug)]
pub(crate) enum ClientRef {
    None,
    Named(String),
    Unnamed,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub session: String,
    /// As `status-session` would report it (`{status:null}` reads as `CLOSED`).
    pub status: String,
    pub urlcode: Option<String>,
    #[serde(rename = "phoneCode")]
    pub phone_code: Option<String>,
    /// The WhatsApp account whose login the session keeps (from the scan that linked it).
    pub account: Option<Account>,
}

/// The fake WhatsApp account a scan links to a session: what `host-device` and
/// `get-phone-number` report while it is CONNECTED.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Digits only (country code first), as in the wid `<phone>@c.us`.
    pub phone: String,
    pub pushname: String,
}

impl Account {
    /// The deterministic account of a scan without a body: `5511` `9` + 8 digits from a hash
    /// of the session name, pushname `Sim <first 12 characters of the name>`.
    pub fn default_for(session: &str) -> Account {
        Account {
            phone: default_phone(session),
            pushname: default_pushname(session),
        }
    }

    /// `<phone>@c.us`, what `client.getWid()` returns.
    pub fn wid(&self) -> String {
        format!("{}@c.us", self.phone)
    }
}

fn default_phone(session: &str) -> String {
    // FNV-1a: stable across Rust versions and runs (std's hasher is not promised to be).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in session.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("55119{:08}", h % 100_000_000)
}

fn default_pushname(session: &str) -> String {
    format!("Sim {}", session.chars().take(12).collect::<String>())
}

/// Longest phone a scan accepts: room for tests of clients that refuse long numbers.
pub const MAX_SCAN_PHONE_DIGITS: usize = 32;

/// Body of `POST /__sim/sessions/:session/scan`; each field defaults (see [`Account`]).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanAs {
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub pushname: Option<String>,
}

impl ScanAs {
    /// A given phone must be 1 to [`MAX_SCAN_PHONE_DIGITS`] ASCII digits.
    pub fn check(&self) -> Result<(), String> {
        match &self.phone {
            Some(p) if p.is_empty() || !is_digits(p) => Err(format!(
                "phone must be 1 to {MAX_SCAN_PHONE_DIGITS} digits, got {p:?}"
            )),
            _ => Ok(()),
        }
    }
}

fn is_digits(p: &str) -> bool {
    p.len() <= MAX_SCAN_PHONE_DIGITS && p.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Http500,
    Unauthorized,
    MalformedJson,
    HtmlError,
    Delay,
    Drop,
    Oversized,
    /// A 200 JSON reply that declares no length and never ends: only a client that caps
    /// what it reads while it streams gets out of it before its timeout.
    Endless,
}

fn one() -> u32 {
    1
}

/// Body of `POST /__sim/faults`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FaultSpec {
    /// A route name (`status-session`, `generate-token`, ...) or `*`.
    pub route: String,
    #[serde(default)]
    pub session: Option<String>,
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

pub(crate) const ROUTES: &[&str] = &[
    "status-session",
    "host-device",
    "get-phone-number",
    "generate-token",
    "start-session",
    "qrcode-session",
    "check-connection-session",
    "close-session",
    "logout-session",
    "show-all-sessions",
];

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub method: String,
    /// Request path with tokens and secrets replaced by `***`.
    pub path: String,
    pub route: String,
    pub session: Option<String>,
    /// The token the request carried (header or path form, as sent), if any.
    pub token: Option<String>,
    /// `ok`, `missing`, `invalid`, or `none` for routes without token auth.
    pub auth: String,
    /// HTTP status; 0 when the connection was dropped by a `drop` fault.
    pub status: u16,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionAuth {
    pub authenticated: u64,
    /// Distinct tokens that passed auth for this session, in first-seen order.
    pub tokens: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SimLog {
    pub requests: Vec<LogEntry>,
    pub sessions: BTreeMap<String, SessionAuth>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) sessions: BTreeMap<String, Session>,
    /// Sessions whose WhatsApp login is saved in the (simulated) browser profile, with the
    /// account it belongs to. Kept across close-session and restarts, like the profile;
    /// dropped by logout and unlink.
    logins: HashMap<String, Account>,
    stuck: HashSet<String>,
    /// Sessions whose profile a leaked browser holds (`SimConfig::profile_lock`): their starts
    /// stay INITIALIZING until the server restarts (`reset`).
    locked: HashSet<String>,
    /// Sessions whose QR data URLs are padded to this many bytes (`/__sim/.../qr-size`).
    qr_sizes: HashMap<String, usize>,
    token_store: BTreeSet<String>,
    faults: Vec<FaultSpec>,
    log: Vec<LogEntry>,
    auth: BTreeMap<String, SessionAuth>,
    next_epoch: u64,
}

impl Inner {
    fn bump(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }

    fn live(&mut self, name: &str, epoch: u64) -> Option<&mut Session> {
        self.sessions.get_mut(name).filter(|s| s.epoch == epoch)
    }
}

pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    inner: Mutex<Inner>,
    /// Socket.IO frames (`42[...]`) broadcast to every connected socket, like `io.emit`.
    pub(crate) events: broadcast::Sender<String>,
    /// The sockets' side: who joined, refusals, drops, and when each event went out.
    pub(crate) sockets: crate::socket::Sockets,
    pub(crate) started: Instant,
    pub(crate) shutdown: watch::Receiver<bool>,
}

pub(crate) enum StartReply {
    Now(Value),
    Wait(oneshot::Receiver<Value>),
}

/// JavaScript truthiness of an optional JSON value.
pub(crate) fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn random_b64(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::thread_rng().gen()).collect();
    qr::b64(&bytes)
}

/// Looks like WhatsApp's `2@<ref>,<noise key>,<identity key>,<adv secret>` payload.
fn new_urlcode() -> String {
    format!(
        "2@{},{},{},{}",
        random_b64(66),
        random_b64(32),
        random_b64(32),
        random_b64(16)
    )
}

fn new_pairing_code() -> String {
    const ALPHA: &[u8] = b"ABCDEFGHJKLMNPQRSTVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    let mut half = || -> String {
        (0..4)
            .map(|_| ALPHA[rng.gen_range(0..ALPHA.len())] as char)
            .collect()
    };
    let a = half();
    format!("{}-{}", a, half())
}

fn phone_of(body: &Value) -> Option<String> {
    match body.get("phone") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

impl Shared {
    pub(crate) fn new(config: SimConfig, shutdown: watch::Receiver<bool>) -> Arc<Self> {
        let (events, _) = broadcast::channel(1024);
        Arc::new(Shared {
            config,
            inner: Mutex::new(Inner::default()),
            events,
            sockets: crate::socket::Sockets::default(),
            started: Instant::now(),
            shutdown,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock must not wedge the simulator for later tests.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn emit(&self, event: &str, payload: Value) {
        let frame = format!("42{}", json!([event, payload]));
        self.sockets.record(event, &payload);
        let _ = self.events.send(frame);
    }

    pub(crate) fn client_ref(&self, name: &str) -> ClientRef {
        match self.lock().sessions.get(name) {
            None => ClientRef::None,
            Some(s) if s.named => ClientRef::Named(name.to_string()),
            Some(_) => ClientRef::Unnamed,
        }
    }

    /// `getSessionState` (§2.2). `None` = it sends nothing (fresh session + waitQrCode).
    pub(crate) fn state_reply(inner: &Inner, name: &str, wait_qr: bool) -> Option<Value> {
        let s = inner.sessions.get(name);
        let no_status = matches!(s, None | Some(Session { status: None, .. }));
        if no_status && !wait_qr {
            return Some(json!({"status": "CLOSED", "qrcode": null}));
        }
        let s = s?;
        let mut obj = Map::new();
        obj.insert("status".into(), json!(s.status.map(Status::as_str)));
        obj.insert("qrcode".into(), json!(s.qr_data_url));
        if let Some(u) = &s.urlcode {
            obj.insert("urlcode".into(), json!(u));
        }
        obj.insert("version".into(), json!(VERSION));
        Some(Value::Object(obj))
    }

    pub(crate) fn status_reply(&self, name: &str) -> Value {
        Self::state_reply(&self.lock(), name, false).expect("always answers without waitQrCode")
    }

    /// `startSession`: `getSessionState` first, then `opendata` (§2.1).
    pub(crate) fn start_session(self: &Arc<Self>, name: &str, body: &Value) -> StartReply {
        let wait_qr = truthy(body.get("waitQrCode"));
        let mut g = self.lock();
        g.token_store.insert(name.to_string());
        let now = Self::state_reply(&g, name, wait_qr);
        // opendata() returns early unless the entry is missing, {status:null} or CLOSED.
        let running = g
            .sessions
            .get(name)
            .is_some_and(|s| !matches!(s.status, None | Some(Status::Closed)));
        if !running {
            let epoch = g.bump();
            // A locked profile: the browser launch fails, upstream leaves INITIALIZING as is.
            let stuck = g.stuck.contains(name) || g.locked.contains(name);
            let s = g
                .sessions
                .entry(name.to_string())
                .or_insert_with(|| Session::new(true));
            s.status = Some(Status::Initializing);
            s.config = body.clone();
            s.phone = phone_of(body);
            s.phone_code = None;
            s.epoch = epoch;
            let timer =
                (!stuck).then(|| tokio::spawn(run_session(self.clone(), name.to_string(), epoch)));
            s.set_timer(timer);
        }
        match now {
            Some(v) => StartReply::Now(v),
            None => {
                let (tx, rx) = oneshot::channel();
                if let Some(s) = g.sessions.get_mut(name) {
                    s.waiters.push(tx);
                }
                StartReply::Wait(rx)
            }
        }
    }

    /// `qrcode-session` (§2.3): PNG bytes, or the JSON answer.
    pub(crate) fn qrcode_reply(&self, name: &str) -> Result<Vec<u8>, Value> {
        let urlcode = {
            let g = self.lock();
            // A sized QR is served as the very PNG its data URL holds.
            let sized = g.qr_sizes.contains_key(name);
            if let Some(url) = g
                .sessions
                .get(name)
                .filter(|_| sized)
                .and_then(|s| s.qr_data_url.as_deref())
            {
                use base64::Engine;
                let b64 = url.strip_prefix(qr::DATA_URL_PREFIX).unwrap_or(url);
                if let Ok(png) = base64::engine::general_purpose::STANDARD.decode(b64) {
                    return Ok(png);
                }
            }
            match g.sessions.get(name) {
                None => {
                    return Err(
                        json!({"status": null, "message": "Session not started. Please, use the /start-session route, for initialization your session"}),
                    )
                }
                Some(s) => match &s.urlcode {
                    Some(u) => u.clone(),
                    None => {
                        return Err(
                            json!({"status": s.status.map(Status::as_str), "message": "QRCode is not available..."}),
                        )
                    }
                },
            }
        };
        Ok(qr::big_png(&urlcode))
    }

    pub(crate) fn is_connected(&self, name: &str) -> bool {
        self.lock()
            .sessions
            .get(name)
            .is_some_and(|s| s.status == Some(Status::Connected))
    }

    /// close-session (§2.5): true = 200.
    ///
    /// - never started, or gone after logout: upstream reads `.status` of `undefined`: 500;
    /// - the `{status:null}` entry an earlier close left: 200 at once, nothing changes;
    /// - any other entry is reset to `{status:null}` first, then upstream calls
    ///   `client.close()`: that works only on a CONNECTED client (200); a session still starting
    ///   (INITIALIZING, QRCODE, PHONECODE) is a plain placeholder without `close`: 500, and its
    ///   browser keeps running and holding the profile (`SimConfig::profile_lock`); after the
    ///   library's auto-close (CLOSED) the browser is gone already: 500, nothing leaked.
    pub(crate) fn close_session(&self, name: &str) -> bool {
        let ok = {
            let mut g = self.lock();
            g.stuck.remove(name);
            let old = match g.sessions.get(name) {
                None => return false,
                Some(s) if s.status.is_none() => return true,
                Some(s) => s.status,
            };
            g.sessions.remove(name);
            let mut placeholder = Session::new(false);
            placeholder.epoch = g.bump();
            g.sessions.insert(name.to_string(), placeholder);
            let starting = matches!(
                old,
                Some(Status::Initializing | Status::QrCode | Status::PhoneCode)
            );
            if starting && self.config.profile_lock {
                g.locked.insert(name.to_string());
            }
            old == Some(Status::Connected)
        };
        if ok {
            self.emit("whatsapp-status", json!(false));
        }
        ok
    }

    pub(crate) fn profile_locked(&self, name: &str) -> bool {
        self.lock().locked.contains(name)
    }

    /// logout-session (§2.6): true = 200, false = the 404 of `statusConnection`.
    pub(crate) fn logout_session(&self, name: &str) -> bool {
        {
            let mut g = self.lock();
            if !g
                .sessions
                .get(name)
                .is_some_and(|s| s.status == Some(Status::Connected))
            {
                return false;
            }
            g.sessions.remove(name);
            g.logins.remove(name);
        }
        self.emit("whatsapp-status", json!(false));
        true
    }

    /// The account behind `host-device` / `get-phone-number`: `None` unless CONNECTED, where
    /// upstream's `statusConnection` answers its 404 (§2.10).
    pub(crate) fn connected_account(&self, name: &str) -> Option<Account> {
        let g = self.lock();
        let connected = g
            .sessions
            .get(name)
            .is_some_and(|s| s.status == Some(Status::Connected));
        connected.then(|| g.logins.get(name).cloned()).flatten()
    }

    pub(crate) fn all_sessions(&self) -> Vec<String> {
        self.lock().token_store.iter().cloned().collect()
    }

    // ---- control surface ----

    pub(crate) fn infos(&self) -> Vec<SessionInfo> {
        let g = self.lock();
        g.sessions
            .iter()
            .map(|(name, s)| SessionInfo {
                session: name.clone(),
                status: s.status.unwrap_or(Status::Closed).as_str().to_string(),
                urlcode: s.urlcode.clone(),
                phone_code: s.phone_code.clone(),
                account: g.logins.get(name).cloned(),
            })
            .collect()
    }

    /// The phone scans the QR (or enters the pairing code) as `with`'s account; what `with`
    /// leaves out defaults: the pairing phone of a PHONECODE session, else
    /// [`Account::default_for`].
    pub(crate) fn scan(&self, name: &str, with: ScanAs) -> Result<(), String> {
        with.check()?;
        let mut g = self.lock();
        let epoch = g.bump();
        let s = g
            .sessions
            .get_mut(name)
            .ok_or_else(|| format!("session {name} is not started"))?;
        match s.status {
            Some(Status::QrCode) | Some(Status::PhoneCode) => {}
            other => {
                return Err(format!(
                    "session {name} is {}, not QRCODE or PHONECODE",
                    other.unwrap_or(Status::Closed).as_str()
                ))
            }
        }
        s.epoch = epoch;
        s.set_timer(None);
        s.status = Some(Status::Connected);
        // start() clears client.qrcode but never urlcode: status-session keeps the stale QR.
        let mut payload = Map::new();
        payload.insert("status".into(), json!(true));
        s.put_session(name, &mut payload);
        let pairing_phone = s.phone.clone().filter(|p| is_digits(p));
        let default = Account::default_for(name);
        let account = Account {
            phone: with.phone.or(pairing_phone).unwrap_or(default.phone),
            pushname: with.pushname.unwrap_or(default.pushname),
        };
        g.logins.insert(name.to_string(), account);
        drop(g);
        self.emit("session-logged", Value::Object(payload));
        Ok(())
    }

    pub(crate) fn unlink(&self, name: &str) -> Result<(), String> {
        let mut g = self.lock();
        match g.sessions.get(name).and_then(|s| s.status) {
            Some(Status::Connected) => {
                // disconnectedMobile: the client is closed and the entry removed (§3).
                g.sessions.remove(name);
                g.logins.remove(name);
                Ok(())
            }
            other => Err(format!(
                "session {name} is {}, not CONNECTED",
                other.unwrap_or(Status::Closed).as_str()
            )),
        }
    }

    pub(crate) fn stuck(&self, name: &str) {
        let mut g = self.lock();
        g.stuck.insert(name.to_string());
        let epoch = g.bump();
        if let Some(s) = g.sessions.get_mut(name) {
            if s.status == Some(Status::Initializing) {
                s.epoch = epoch;
                s.set_timer(None);
            }
        }
    }

    /// `POST /__sim/sessions/:session/qr-size`: from now on (the current QR included), the
    /// session's QR is a valid PNG data URL of exactly `bytes` bytes; `None` restores the
    /// plain QR from the next rotation on.
    pub(crate) fn set_qr_size(&self, name: &str, bytes: Option<usize>) -> Result<(), String> {
        let Some(bytes) = bytes else {
            self.lock().qr_sizes.remove(name);
            return Ok(());
        };
        // Every QR of this simulator has the same dimensions; 1 KiB covers the variation of
        // its compressed size.
        let sample = qr::png(&new_urlcode(), 4, None);
        let min = qr::min_padded_len(&sample) + 1024;
        if bytes < min {
            return Err(format!("bytes must be at least {min}, got {bytes}"));
        }
        qr::padded_data_url(&sample, bytes)?;
        let mut g = self.lock();
        g.qr_sizes.insert(name.to_string(), bytes);
        let Some(s) = g.sessions.get_mut(name) else {
            return Ok(());
        };
        let (Some(urlcode), Some(_)) = (s.urlcode.clone(), s.qr_data_url.as_ref()) else {
            return Ok(());
        };
        let url = qr::padded_data_url(&qr::png(&urlcode, 4, None), bytes)?;
        s.qr_data_url = Some(url.clone());
        if s.status == Some(Status::QrCode) {
            let mut ev = Map::new();
            ev.insert("data".into(), json!(url));
            s.put_session(name, &mut ev);
            drop(g);
            self.emit("qrCode", Value::Object(ev));
        }
        Ok(())
    }

    pub(crate) fn add_fault(&self, f: FaultSpec) -> Result<(), String> {
        if f.route != "*" && !ROUTES.contains(&f.route.as_str()) {
            return Err(format!("unknown route {:?}", f.route));
        }
        if f.count > 0 {
            self.lock().faults.push(f);
        }
        Ok(())
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Consumes one use of the first fault matching this request.
    pub(crate) fn take_fault(&self, route: &str, session: Option<&str>) -> Option<FaultSpec> {
        let mut g = self.lock();
        let i = g.faults.iter().position(|f| {
            (f.route == "*" || f.route == route)
                && (f.session.is_none() || f.session.as_deref() == session)
        })?;
        let f = g.faults[i].clone();
        g.faults[i].count -= 1;
        if g.faults[i].count == 0 {
            g.faults.remove(i);
        }
        Some(f)
    }

    pub(crate) fn record(&self, e: LogEntry) {
        let mut g = self.lock();
        if e.auth == "ok" {
            if let Some(session) = &e.session {
                let a = g.auth.entry(session.clone()).or_default();
                a.authenticated += 1;
                if let Some(t) = &e.token {
                    if !a.tokens.contains(t) {
                        a.tokens.push(t.clone());
                    }
                }
            }
        }
        if g.log.len() >= LOG_CAP {
            g.log.remove(0);
        }
        g.log.push(e);
    }

    pub(crate) fn log(&self) -> SimLog {
        let g = self.lock();
        SimLog {
            requests: g.log.clone(),
            sessions: g.auth.clone(),
        }
    }

    pub(crate) fn clear_log(&self) {
        let mut g = self.lock();
        g.log.clear();
        g.auth.clear();
    }

    pub(crate) fn reset(&self) {
        let old = std::mem::take(&mut *self.lock());
        let mut g = self.lock();
        // Keep epochs growing so that timers of the dropped sessions can never match again.
        g.next_epoch = old.next_epoch + 1;
        drop(g);
        drop(old); // aborts every timer; held waitQrCode requests stay unanswered
    }
}

/// The library's login flow for one start (§3), on real timers.
async fn run_session(sh: Arc<Shared>, name: String, epoch: u64) {
    let cfg = sh.config.clone();
    tokio::time::sleep(cfg.init_delay).await;
    let phone = {
        let mut g = sh.lock();
        let stuck = g.stuck.contains(&name);
        let logged_in = g.logins.contains_key(&name);
        let Some(s) = g.live(&name, epoch) else {
            return;
        };
        if stuck || s.status != Some(Status::Initializing) {
            return;
        }
        if logged_in {
            // Saved profile: isLogged -> inChat, no QR.
            s.status = Some(Status::Connected);
            let mut payload = Map::new();
            payload.insert("status".into(), json!(true));
            s.put_session(&name, &mut payload);
            drop(g);
            sh.emit("session-logged", Value::Object(payload));
            return;
        }
        s.phone.clone()
    };
    let deadline = tokio::time::Instant::now() + cfg.auto_close;

    if let Some(phone) = phone {
        let code = new_pairing_code();
        {
            let mut g = sh.lock();
            let Some(s) = g.live(&name, epoch) else {
                return;
            };
            s.status = Some(Status::PhoneCode);
            s.phone_code = Some(code.clone());
            let mut ev = Map::new();
            ev.insert("data".into(), json!(code));
            ev.insert("phone".into(), json!(phone));
            s.put_session(&name, &mut ev);
            let mut answer = Map::new();
            answer.insert("status".into(), json!("phoneCode"));
            answer.insert("phone".into(), json!(phone));
            answer.insert("phoneCode".into(), json!(code));
            s.put_session(&name, &mut answer);
            for w in s.waiters.drain(..) {
                let _ = w.send(Value::Object(answer.clone()));
            }
            drop(g);
            sh.emit("phoneCode", Value::Object(ev));
        }
        tokio::time::sleep_until(deadline).await;
        let mut g = sh.lock();
        if let Some(s) = g.live(&name, epoch) {
            if s.status == Some(Status::PhoneCode) {
                s.status = Some(Status::Closed);
            }
        }
        return;
    }

    loop {
        let urlcode = new_urlcode();
        let png = qr::png(&urlcode, 4, None);
        {
            let mut g = sh.lock();
            let data_url = match g.qr_sizes.get(&name) {
                Some(&bytes) => qr::padded_data_url(&png, bytes)
                    .unwrap_or_else(|_| format!("{}{}", qr::DATA_URL_PREFIX, qr::b64(&png))),
                None => format!("{}{}", qr::DATA_URL_PREFIX, qr::b64(&png)),
            };
            let b64 = data_url[qr::DATA_URL_PREFIX.len()..].to_string();
            let Some(s) = g.live(&name, epoch) else {
                return;
            };
            s.status = Some(Status::QrCode);
            s.urlcode = Some(urlcode.clone());
            s.qr_data_url = Some(data_url.clone());
            let mut ev = Map::new();
            ev.insert("data".into(), json!(data_url));
            s.put_session(&name, &mut ev);
            if !s.waiters.is_empty() {
                // exportQR strips the data: prefix from what it answers.
                let mut answer = Map::new();
                answer.insert("status".into(), json!("qrcode"));
                answer.insert("qrcode".into(), json!(b64));
                answer.insert("urlcode".into(), json!(urlcode));
                s.put_session(&name, &mut answer);
                for w in s.waiters.drain(..) {
                    let _ = w.send(Value::Object(answer.clone()));
                }
            }
            drop(g);
            sh.emit("qrCode", Value::Object(ev));
        }
        let next = tokio::time::Instant::now() + cfg.qr_rotate;
        if next < deadline {
            tokio::time::sleep_until(next).await;
            continue;
        }
        tokio::time::sleep_until(deadline).await;
        let mut g = sh.lock();
        if let Some(s) = g.live(&name, epoch) {
            if s.status == Some(Status::QrCode) {
                // autoClose: CLOSED, with the stale urlcode (and so a stale qrcode) kept.
                s.status = Some(Status::Closed);
            }
        }
        return;
    }
}
