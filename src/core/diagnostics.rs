//! Monitoring and diagnostics: every request the worker sends, counted by server and route
//! with its outcome and latency, and a bounded ring of the last [`RING_CAPACITY`] events
//! (state changes, errors, worker restarts, panics, rejected messages, storage errors).
//!
//! Everything that enters the log is redacted first ([`redact`]): no token, no secret key, and
//! session IDs shortened as the popup shows them. The log lives in the worker's memory and is
//! written to `storage.session` ([`LOG_KEY`]) at most every [`FLUSH_MS`], so a restart of the
//! worker keeps it and a browser restart ends it. The Diagnostics page shows it
//! ([`DiagnosticsView`]) and copies it as text ([`report_text`]) for a bug report.
//!
//! Requests are counted in one place, [`Recording`]: the [`Server`] every flow gets from
//! `Worker::server` is wrapped in it.

use crate::core::api::{
    is_bidi_control, percent_encode, Account, ApiError, CloseOutcome, LogoutOutcome, StatusReply,
};
use crate::core::messages::{decode_text, DiagnosticsRequest, WorkerPush};
use crate::core::server::Server;
use crate::core::session::display_id;
use crate::core::session_id::SessionId;
use crate::core::settings::{SecretKey, ServerId, ServerUrl, Settings};
use crate::core::status::ServerStatus;
use crate::core::storage::Token;
use crate::core::store::{Area, KeyValue, StoreError};
use crate::core::text::Text;
use crate::core::worker::{PortKey, Shell, Worker};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::rc::Rc;

/// The most events the ring keeps: the 201st drops the oldest.
pub const RING_CAPACITY: usize = 200;
/// Latency is summarised over the requests of the last 10 minutes...
pub const WINDOW_MS: f64 = 10.0 * 60_000.0;
/// ...and at most the last 500 of them per server, which bounds the memory it takes.
pub const WINDOW_MAX: usize = 500;
/// Servers tracked at once: the settings hold a few, but "Test connection" may try any URL;
/// the least recently used goes first.
pub const MAX_TRACKED_SERVERS: usize = 16;
/// The log is written to storage this long after its first change since the last write: a
/// busy minute costs 30 writes, never one per request.
pub const FLUSH_MS: u32 = 2_000;
/// The longest text of one event, in characters.
const MAX_TEXT_CHARS: usize = 400;

/// `storage.session`: the log, as [`Log`] (memory only: a browser restart ends it).
pub const LOG_KEY: &str = "wpp_diagnostics";
/// `storage.session`: `wpp_diag_panic_<ms>`, a [`PanicLine`] the panic hook wrote, for the
/// next worker instance to move into the log. The hook cannot reach the log itself: the
/// instance that panicked is dead.
pub const PANIC_PREFIX: &str = "wpp_diag_panic_";

/// What the report says of the socket until push is tracked here ([`PushState::Polling`]).
pub const NO_PUSH: &str = "no push connection (polling)";

// ---- the log's parts ----------------------------------------------------------------------

/// One route of the server, as the statistics count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    GenerateToken,
    StartSession,
    StatusSession,
    CloseSession,
    LogoutSession,
    HostDevice,
    GetPhoneNumber,
    ShowAllSessions,
    Healthz,
    /// "Test connection": generate-token for a probe name.
    Probe,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::GenerateToken => "generate-token",
            Route::StartSession => "start-session",
            Route::StatusSession => "status-session",
            Route::CloseSession => "close-session",
            Route::LogoutSession => "logout-session",
            Route::HostDevice => "host-device",
            Route::GetPhoneNumber => "get-phone-number",
            Route::ShowAllSessions => "show-all-sessions",
            Route::Healthz => "healthz",
            Route::Probe => "probe",
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A session's status changed.
    State,
    /// A request failed.
    Error,
    /// A fresh worker instance loaded its state.
    Restart,
    /// The worker panicked (written by the panic hook, read by the next instance).
    Panic,
    /// A message the worker refused (malformed, not from the extension's pages, out of turn).
    Rejected,
    /// The browser's storage failed.
    Storage,
    /// Anything else the worker warned about.
    Warning,
    /// A server's Socket.IO connection came up or was lost.
    Push,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::State => "state",
            EventKind::Error => "error",
            EventKind::Restart => "restart",
            EventKind::Panic => "panic",
            EventKind::Rejected => "rejected",
            EventKind::Storage => "storage",
            EventKind::Warning => "warning",
            EventKind::Push => "push",
        }
    }
}

/// One entry of the ring. Its text is redacted before it is built ([`Event::new`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// When it happened (ms since the epoch); the last time, for a repeated event.
    pub at: f64,
    pub kind: EventKind,
    /// The server's ID, or its URL when it is not in the settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The session, shortened ([`display_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub text: String,
    /// How many times in a row it happened: a server that is down fails every poll, and one
    /// line says so better than 200.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

impl Event {
    /// An event with its text (and server) redacted against `secrets`.
    pub fn new(
        at: f64,
        kind: EventKind,
        server: Option<&str>,
        session: Option<&SessionId>,
        text: &str,
        secrets: &[&str],
    ) -> Event {
        Event {
            at,
            kind,
            server: server.map(|s| redact(s, secrets)),
            session: session.map(display_id),
            text: redact(text, secrets),
            count: 1,
        }
    }

    fn repeats(&self, other: &Event) -> bool {
        (self.kind, &self.server, &self.session, &self.text)
            == (other.kind, &other.server, &other.session, &other.text)
    }
}

/// Requests and failures of one route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub requests: u32,
    pub failures: u32,
}

/// What one server was asked, and how it went.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub url: String,
    /// The last request's time, for evicting the least recently used server.
    pub last_at: f64,
    pub routes: BTreeMap<Route, Count>,
    /// Failures by [`ApiError::code`].
    pub failures: BTreeMap<String, u32>,
    /// `(at, ms)` of the most recent requests, oldest first, at most [`WINDOW_MAX`].
    pub samples: VecDeque<(f64, f64)>,
}

/// The log as it is kept and stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    /// When the first thing was recorded in this browser session.
    #[serde(default)]
    pub since: Option<f64>,
    /// Worker instances that loaded this log, the current one included.
    #[serde(default)]
    pub instances: u32,
    #[serde(default)]
    pub events: VecDeque<Event>,
    #[serde(default)]
    pub servers: Vec<Tally>,
}

impl Log {
    /// Adds an event; the same one again only counts once more.
    pub fn push(&mut self, event: Event) {
        self.since.get_or_insert(event.at);
        if let Some(last) = self.events.back_mut().filter(|last| last.repeats(&event)) {
            last.count = last.count.saturating_add(event.count);
            last.at = event.at;
            return;
        }
        self.events.push_back(event);
        while self.events.len() > RING_CAPACITY {
            self.events.pop_front();
        }
    }

    /// Counts one request to `url`: its route, its failure's kind if it failed, its latency.
    pub fn record(&mut self, url: &str, route: Route, failure: Option<&str>, ms: f64, at: f64) {
        self.since.get_or_insert(at);
        let index = match self.servers.iter().position(|t| t.url == url) {
            Some(index) => index,
            None => {
                if self.servers.len() >= MAX_TRACKED_SERVERS {
                    self.evict_one();
                }
                self.servers.push(Tally {
                    url: url.to_owned(),
                    ..Tally::default()
                });
                self.servers.len() - 1
            }
        };
        let tally = &mut self.servers[index];
        tally.last_at = at;
        let count = tally.routes.entry(route).or_default();
        count.requests = count.requests.saturating_add(1);
        if let Some(kind) = failure {
            count.failures = count.failures.saturating_add(1);
            let n = tally.failures.entry(kind.to_owned()).or_default();
            *n = n.saturating_add(1);
        }
        tally.samples.push_back((at, ms.max(0.0)));
        while tally.samples.len() > WINDOW_MAX {
            tally.samples.pop_front();
        }
    }

    fn evict_one(&mut self) {
        if let Some(oldest) = self
            .servers
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.last_at.total_cmp(&b.1.last_at))
            .map(|(i, _)| i)
        {
            self.servers.remove(oldest);
        }
    }

    /// Puts `older` (the log a previous instance stored) before what this one recorded.
    pub fn merge_older(&mut self, older: Log) {
        let mut events = older.events;
        events.extend(self.events.drain(..));
        self.events = events;
        for mut tally in older.servers {
            if let Some(mine) = self.servers.iter_mut().find(|t| t.url == tally.url) {
                for (route, count) in &mine.routes {
                    let sum = tally.routes.entry(*route).or_default();
                    sum.requests = sum.requests.saturating_add(count.requests);
                    sum.failures = sum.failures.saturating_add(count.failures);
                }
                for (kind, n) in &mine.failures {
                    let sum = tally.failures.entry(kind.clone()).or_default();
                    *sum = sum.saturating_add(*n);
                }
                tally.samples.extend(mine.samples.drain(..));
                tally.last_at = tally.last_at.max(mine.last_at);
                *mine = tally;
            } else {
                self.servers.push(tally);
            }
        }
        self.since = match (older.since, self.since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.instances = self.instances.saturating_add(older.instances);
        self.bound();
    }

    /// Enforces every bound: after a merge, and on a log read back from storage.
    pub fn bound(&mut self) {
        while self.events.len() > RING_CAPACITY {
            self.events.pop_front();
        }
        for tally in &mut self.servers {
            while tally.samples.len() > WINDOW_MAX {
                tally.samples.pop_front();
            }
        }
        while self.servers.len() > MAX_TRACKED_SERVERS {
            self.evict_one();
        }
    }

    /// What the Diagnostics page shows at `now`: each server of the settings (requests or
    /// not), then any other URL that was asked (a connection test).
    pub fn view(&self, now: f64, settings: &Settings) -> DiagnosticsView {
        let mut servers: Vec<ServerReport> = settings
            .servers
            .iter()
            .map(|config| {
                let tally = self
                    .servers
                    .iter()
                    .find(|t| t.url == config.server_url.as_str());
                ServerReport::of(
                    Some(config.id.clone()),
                    Some(config.name.clone()),
                    config.server_url.as_str(),
                    tally,
                    now,
                )
            })
            .collect();
        for tally in &self.servers {
            let known = settings
                .servers
                .iter()
                .any(|s| s.server_url.as_str() == tally.url);
            if !known {
                servers.push(ServerReport::of(None, None, &tally.url, Some(tally), now));
            }
        }
        DiagnosticsView {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            generated_at: now,
            since: self.since,
            instances: self.instances,
            window: LatencyWindow {
                minutes: (WINDOW_MS / 60_000.0) as u32,
                per_server: WINDOW_MAX as u32,
            },
            servers,
            events: self.events.iter().cloned().collect(),
        }
    }
}

/// The median (the mean of the middle two for an even count) of sorted values.
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The `p`th percentile of sorted values by the nearest-rank method: the smallest value
/// with at least `p`% of the values at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

// ---- the page's view ----------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteReport {
    pub route: Route,
    pub requests: u32,
    pub failures: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KindCount {
    pub kind: String,
    pub count: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub requests: u32,
    pub median_ms: f64,
    pub p95_ms: f64,
}

/// The push socket's state, as the Diagnostics page knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PushState {
    /// Not tracked here yet: the figures are the polls'.
    Polling,
}

impl PushState {
    /// What the page shows.
    pub fn text(self) -> Text {
        match self {
            PushState::Polling => Text::new("diagnostics_push_polling"),
        }
    }

    /// What the report says (in English, as the rest of it).
    pub fn report(self) -> &'static str {
        match self {
            PushState::Polling => NO_PUSH,
        }
    }
}

/// Which requests the latency figures cover: those of the last `minutes`, at most the last
/// `per_server`, failed ones included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyWindow {
    pub minutes: u32,
    pub per_server: u32,
}

impl LatencyWindow {
    /// What the page shows.
    pub fn text(self) -> Text {
        Text::new("diagnostics_latency_window")
            .arg(self.minutes)
            .arg(self.per_server)
    }

    /// What the report says: the page's words in English (a test keeps them the same).
    pub fn report(self) -> String {
        format!(
            "median and p95 over the requests of the last {} minutes (at most the last {} \
             per server), failed ones included",
            self.minutes, self.per_server
        )
    }
}

/// What the report calls a server that is not in the settings.
const NOT_IN_SETTINGS: &str = "Not in the settings (a connection test)";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerReport {
    /// `None`: a URL that is not in the settings.
    pub id: Option<ServerId>,
    /// The settings' name; `None` for a URL that is not in them (a connection test).
    pub name: Option<String>,
    pub url: String,
    pub push: PushState,
    pub routes: Vec<RouteReport>,
    pub failures: Vec<KindCount>,
    /// `None`: no request in the window.
    pub latency: Option<Latency>,
}

impl ServerReport {
    fn of(
        id: Option<ServerId>,
        name: Option<String>,
        url: &str,
        tally: Option<&Tally>,
        now: f64,
    ) -> ServerReport {
        let empty = Tally::default();
        let tally = tally.unwrap_or(&empty);
        let mut recent: Vec<f64> = tally
            .samples
            .iter()
            .filter(|(at, _)| now - at <= WINDOW_MS)
            .map(|(_, ms)| *ms)
            .collect();
        recent.sort_unstable_by(f64::total_cmp);
        let latency = median(&recent)
            .zip(percentile(&recent, 95.0))
            .map(|(median_ms, p95_ms)| Latency {
                requests: recent.len() as u32,
                median_ms,
                p95_ms,
            });
        ServerReport {
            id,
            name,
            url: url.to_owned(),
            push: PushState::Polling,
            routes: tally
                .routes
                .iter()
                .map(|(route, count)| RouteReport {
                    route: *route,
                    requests: count.requests,
                    failures: count.failures,
                })
                .collect(),
            failures: tally
                .failures
                .iter()
                .map(|(kind, count)| KindCount {
                    kind: kind.clone(),
                    count: *count,
                })
                .collect(),
            latency,
        }
    }
}

/// What the Diagnostics page shows, pushed by the worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticsView {
    /// The extension's version.
    pub version: String,
    pub generated_at: f64,
    pub since: Option<f64>,
    pub instances: u32,
    /// Which requests the latency figures cover.
    pub window: LatencyWindow,
    pub servers: Vec<ServerReport>,
    /// The ring, oldest first.
    pub events: Vec<Event>,
}

/// The whole view as plain text, for a bug report.
pub fn report_text(view: &DiagnosticsView) -> String {
    let mut out = format!(
        "wpp-tabs {} diagnostics, generated {}\n",
        view.version,
        iso_utc(view.generated_at)
    );
    match view.since {
        Some(since) => out += &format!("Recorded since {} (this browser session)", iso_utc(since)),
        None => out += "Nothing recorded yet in this browser session",
    }
    out += &format!("; worker instances: {}\n", view.instances);
    out += &format!("Latency: {}.\n", view.window.report());
    for server in &view.servers {
        let id = server.id.as_ref().map_or("-".into(), ToString::to_string);
        let name = server.name.as_deref().unwrap_or(NOT_IN_SETTINGS);
        out += &format!("\nServer {name:?} ({id}) {}\n", server.url);
        out += &format!("  socket: {}\n", server.push.report());
        if server.routes.is_empty() {
            out += "  no request yet\n";
        } else {
            out += "  requests by route:\n";
            for r in &server.routes {
                out += &format!(
                    "    {:<18} {:>6} requests, {} failed\n",
                    r.route.as_str(),
                    r.requests,
                    r.failures
                );
            }
        }
        let failures: Vec<String> = server
            .failures
            .iter()
            .map(|f| format!("{} {}", f.kind, f.count))
            .collect();
        out += &format!(
            "  failures by kind: {}\n",
            if failures.is_empty() {
                "none".to_owned()
            } else {
                failures.join(", ")
            }
        );
        match &server.latency {
            Some(l) => {
                out += &format!(
                    "  latency: median {:.0} ms, p95 {:.0} ms ({} requests)\n",
                    l.median_ms, l.p95_ms, l.requests
                )
            }
            None => out += "  latency: no request in the window\n",
        }
    }
    out += &format!(
        "\nLast {} events (at most {RING_CAPACITY}), oldest first:\n",
        view.events.len()
    );
    for e in &view.events {
        out += &format!("  {}  {:<8}", iso_utc(e.at), e.kind.as_str());
        if let Some(server) = &e.server {
            out += &format!(" [{server}]");
        }
        if let Some(session) = &e.session {
            out += &format!(" {session}");
        }
        out += &format!("  {}", e.text);
        if e.count > 1 {
            out += &format!(" (×{})", e.count);
        }
        out.push('\n');
    }
    out
}

/// `2026-11-05T12:34:56.789Z`: UTC, so a report reads the same anywhere.
pub fn iso_utc(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "-".to_owned();
    }
    let ms = ms as i64;
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// (year, month, day) of a count of days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

// ---- redaction ----------------------------------------------------------------------------

/// `text` as the log may keep it: every known secret (and its URL-encoded form), the path
/// segment a secret takes in a URL, every bcrypt token and every long opaque string replaced;
/// session IDs shortened; control characters gone; at most [`MAX_TEXT_CHARS`].
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out: String = text.chars().take(4 * MAX_TEXT_CHARS).collect();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "<secret>");
        let encoded = percent_encode(secret);
        if encoded != *secret {
            out = out.replace(&encoded, "<secret>");
        }
    }
    for route in ["/generate-token", "/show-all-sessions"] {
        out = secret_segments(&out, route);
    }
    out = replace_tokens(&out);
    out = shorten_session_ids(&out);
    out = replace_opaque_runs(&out);
    let mut clean = String::with_capacity(out.len());
    for c in out.chars() {
        match c {
            '\n' => clean.push_str(" | "),
            c if c.is_control() || is_bidi_control(c) => clean.push(' '),
            c => clean.push(c),
        }
    }
    match clean.chars().count() > MAX_TEXT_CHARS {
        true => clean.chars().take(MAX_TEXT_CHARS).chain(['…']).collect(),
        false => clean,
    }
}

/// The segment before `/generate-token` and `/show-all-sessions` is the secret key, whatever
/// it is: `…/api/<session>/<secret>/generate-token`, `…/api/<secret>/show-all-sessions`.
fn secret_segments(text: &str, route: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(route) {
        let before = &rest[..at];
        match before.rfind('/') {
            Some(slash) if slash + 1 < before.len() => {
                out.push_str(&before[..=slash]);
                out.push_str("<secret>");
            }
            _ => out.push_str(before),
        }
        out.push_str(route);
        rest = &rest[at + route.len()..];
    }
    out.push_str(rest);
    out
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "$./_-".contains(c)
}

/// bcrypt tokens (`$2a$`, `$2b$`, `$2y$`), as wppconnect-server mints them, whole.
fn replace_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("$2") {
        let tail = &rest[at..];
        let is_token = tail.len() > 4 && matches!(&tail[2..4], "a$" | "b$" | "y$");
        out.push_str(&rest[..at]);
        if is_token {
            let len = tail.find(|c| !is_token_char(c)).unwrap_or(tail.len());
            out.push_str("<token>");
            rest = &tail[len..];
        } else {
            out.push_str("$2");
            rest = &tail[2..];
        }
    }
    out.push_str(rest);
    out
}

/// Each session ID as the popup shows it: its start and end.
fn shorten_session_ids(text: &str) -> String {
    let is_id_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("session_") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let len = tail.find(|c| !is_id_char(c)).unwrap_or(tail.len());
        match SessionId::parse(&tail[..len]) {
            Ok(id) => out.push_str(&display_id(&id)),
            Err(_) => out.push_str(&tail[..len]),
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// Any run of 24 or more letters, digits and `+=_.$-` with both letters and digits: a token
/// of another form, a key, a base64 blob. Words and paths (split at `/`) stay.
fn replace_opaque_runs(text: &str) -> String {
    let is_run_char = |c: char| c.is_ascii_alphanumeric() || "+=_.$-".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let opaque = run.len() >= 24
            && run.chars().any(|c| c.is_ascii_digit())
            && run.chars().any(|c| c.is_ascii_alphabetic());
        out.push_str(if opaque { "<redacted>" } else { run });
        run.clear();
    };
    for c in text.chars() {
        if is_run_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The line the panic hook writes: redacted there (it knows no secret; the next instance
/// redacts it again with the secrets it knows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PanicLine {
    pub at: f64,
    pub text: String,
}

impl PanicLine {
    pub fn new(at: f64, message: &str) -> PanicLine {
        PanicLine {
            at,
            text: redact(message, &[]),
        }
    }

    /// Its `storage.session` key: one per panic, so that two before the next load both stay.
    pub fn key(&self) -> String {
        format!("{PANIC_PREFIX}{}", self.at as u64)
    }
}

// ---- the worker's log ---------------------------------------------------------------------

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Load {
    #[default]
    NotLoaded,
    Loading,
    Loaded,
}

/// The worker's diagnostics: the log, and whether this instance has read back the stored one
/// (until then it must not overwrite it).
#[derive(Default)]
pub struct Diagnostics {
    log: Log,
    load: Load,
    flush_scheduled: bool,
}

fn log_panics(log: &mut Log, panics: &[PanicLine], secrets: &[&str]) {
    for panic in panics {
        let text = format!("the worker panicked: {}", panic.text);
        let event = Event::new(panic.at, EventKind::Panic, None, None, &text, secrets);
        log.push(event);
    }
}

/// The worker's [`Server`], counting every request in the log on its way.
pub struct Recording<'w, S: Shell + 'static, I> {
    worker: &'w Worker<S>,
    url: ServerUrl,
    inner: I,
}

impl<'w, S: Shell + 'static, I: Server> Recording<'w, S, I> {
    pub fn new(worker: &'w Worker<S>, url: ServerUrl, inner: I) -> Self {
        Recording { worker, url, inner }
    }

    async fn timed<T>(
        &self,
        route: Route,
        session: Option<&SessionId>,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let started = self.worker.shell.now_ms();
        let result = call.await;
        let error = result.as_ref().err();
        self.worker
            .request_done(&self.url, route, session, started, error);
        result
    }
}

impl<S: Shell + 'static, I: Server> Server for Recording<'_, S, I> {
    async fn generate_token(&self, id: &SessionId, secret: &SecretKey) -> Result<Token, ApiError> {
        let call = self.inner.generate_token(id, secret);
        self.timed(Route::GenerateToken, Some(id), call).await
    }

    async fn start_session(&self, id: &SessionId, token: &Token) -> Result<StatusReply, ApiError> {
        let call = self.inner.start_session(id, token);
        self.timed(Route::StartSession, Some(id), call).await
    }

    async fn start_session_by_phone(
        &self,
        id: &SessionId,
        token: &Token,
        phone: &crate::core::api::PairingPhone,
        wait_ms: u32,
    ) -> Result<crate::core::api::PhoneStartReply, ApiError> {
        let call = self.inner.start_session_by_phone(id, token, phone, wait_ms);
        self.timed(Route::StartSession, Some(id), call).await
    }

    async fn status_session(&self, id: &SessionId, token: &Token) -> Result<StatusReply, ApiError> {
        let call = self.inner.status_session(id, token);
        self.timed(Route::StatusSession, Some(id), call).await
    }

    async fn close_session(&self, id: &SessionId, token: &Token) -> Result<CloseOutcome, ApiError> {
        let call = self.inner.close_session(id, token);
        self.timed(Route::CloseSession, Some(id), call).await
    }

    async fn logout_session(
        &self,
        id: &SessionId,
        token: &Token,
    ) -> Result<LogoutOutcome, ApiError> {
        let call = self.inner.logout_session(id, token);
        self.timed(Route::LogoutSession, Some(id), call).await
    }

    async fn host_device(&self, id: &SessionId, token: &Token) -> Result<Account, ApiError> {
        let call = self.inner.host_device(id, token);
        self.timed(Route::HostDevice, Some(id), call).await
    }

    async fn phone_number(&self, id: &SessionId, token: &Token) -> Result<Account, ApiError> {
        let call = self.inner.phone_number(id, token);
        self.timed(Route::GetPhoneNumber, Some(id), call).await
    }

    async fn show_all_sessions(&self, secret: &SecretKey) -> Result<Vec<SessionId>, ApiError> {
        let call = self.inner.show_all_sessions(secret);
        self.timed(Route::ShowAllSessions, None, call).await
    }

    async fn healthz(&self) -> Result<(), ApiError> {
        self.timed(Route::Healthz, None, self.inner.healthz()).await
    }

    async fn probe_secret(&self, secret: &SecretKey) -> Result<(), ApiError> {
        let call = self.inner.probe_secret(secret);
        self.timed(Route::Probe, None, call).await
    }
}

impl<S: Shell + 'static> Worker<S> {
    /// Every secret the log must never hold: the secret keys the settings know.
    fn known_secrets(&self) -> Vec<String> {
        let state = self.state.borrow();
        let servers = state.settings.iter().flat_map(|s| &s.servers);
        servers
            .filter_map(|s| s.secret_key.as_ref().map(|k| k.expose().to_owned()))
            .collect()
    }

    /// The server as events name it: its ID when the settings have it, else its URL.
    fn server_name(&self, url: &ServerUrl) -> String {
        let state = self.state.borrow();
        let config = state.settings.as_ref().and_then(|s| s.server_at(url));
        config.map_or_else(|| url.to_string(), |c| c.id.to_string())
    }

    fn change_log(&self, change: impl FnOnce(&mut Log, &[&str])) {
        let secrets = self.known_secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        change(&mut self.diagnostics.borrow_mut().log, &secrets);
        self.diagnostics_changed();
    }

    /// Adds an event to the log, redacted.
    pub(crate) fn log_event(
        &self,
        kind: EventKind,
        server: Option<&ServerId>,
        session: Option<&SessionId>,
        text: &str,
    ) {
        let now = self.shell.now_ms();
        let server = server.map(ToString::to_string);
        self.change_log(|log, secrets| {
            log.push(Event::new(
                now,
                kind,
                server.as_deref(),
                session,
                text,
                secrets,
            ))
        });
    }

    /// A message the worker refused: on the console, and in the log.
    pub(crate) fn rejected(&self, message: &str) {
        self.shell.warn(&format!("wpp-tabs: {message}"));
        self.log_event(EventKind::Rejected, None, None, message);
    }

    /// The browser's storage failed: on the console, and in the log.
    pub(crate) fn storage_failed(&self, err: &StoreError) {
        self.shell.warn(&format!("wpp-tabs: {err}"));
        self.log_event(EventKind::Storage, None, None, &err.to_string());
    }

    /// A session's status changed (as the index records it).
    pub(crate) fn status_changed(
        &self,
        id: &SessionId,
        server: &ServerId,
        from: Option<ServerStatus>,
        to: Option<ServerStatus>,
    ) {
        let name = |s: Option<ServerStatus>| s.map_or("none", ServerStatus::as_str);
        let text = match from {
            Some(_) => format!("status {} → {}", name(from), name(to)),
            None => format!("status {}", name(to)),
        };
        self.log_event(EventKind::State, Some(server), Some(id), &text);
    }

    fn request_done(
        &self,
        url: &ServerUrl,
        route: Route,
        session: Option<&SessionId>,
        started: f64,
        error: Option<&ApiError>,
    ) {
        let now = self.shell.now_ms();
        let server = self.server_name(url);
        self.change_log(|log, secrets| {
            log.record(
                url.as_str(),
                route,
                error.map(ApiError::code),
                now - started,
                now,
            );
            if let Some(err) = error {
                let text = format!("{route} failed ({}): {err}", err.code());
                let event = Event::new(
                    now,
                    EventKind::Error,
                    Some(&server),
                    session,
                    &text,
                    secrets,
                );
                log.push(event);
            }
        });
    }

    /// Reads back the log a previous instance of the worker stored, and the lines the panic
    /// hook left, once per instance: this instance's start is an event.
    pub(crate) async fn load_diagnostics(&self) {
        {
            let mut diagnostics = self.diagnostics.borrow_mut();
            if diagnostics.load != Load::NotLoaded {
                return;
            }
            diagnostics.load = Load::Loading;
        }
        let kv = self.shell.storage();
        let stored = match kv.get_all(Area::Session).await {
            Ok(all) => all,
            Err(err) => {
                self.shell
                    .warn(&format!("wpp-tabs: diagnostics not read back: {err}"));
                serde_json::Map::new()
            }
        };
        let older = match stored
            .get(LOG_KEY)
            .cloned()
            .map(serde_json::from_value::<Log>)
        {
            Some(Ok(mut log)) => {
                log.bound();
                log
            }
            Some(Err(why)) => {
                self.shell
                    .warn(&format!("wpp-tabs: ignoring unreadable {LOG_KEY}: {why}"));
                Log::default()
            }
            None => Log::default(),
        };
        let panics = self.take_panic_lines(&stored).await;
        let now = self.shell.now_ms();
        self.change_log(|log, secrets| {
            log.merge_older(older);
            log_panics(log, &panics, secrets);
            log.instances = log.instances.saturating_add(1);
            let text = match (log.instances, panics.is_empty()) {
                (1, _) => "the worker started (its first instance in this browser session)".into(),
                (n, true) => {
                    format!("the worker started again (instance {n} in this browser session)")
                }
                (n, false) => format!(
                    "the worker started again after a panic (instance {n} in this browser session)"
                ),
            };
            log.push(Event::new(
                now,
                EventKind::Restart,
                None,
                None,
                &text,
                secrets,
            ));
        });
        self.diagnostics.borrow_mut().load = Load::Loaded;
    }

    /// The lines the panic hook left in `storage.session` (`stored`), removed from there.
    async fn take_panic_lines(&self, stored: &serde_json::Map<String, Value>) -> Vec<PanicLine> {
        let mut panics: Vec<PanicLine> = Vec::new();
        let mut keys = Vec::new();
        for (key, value) in stored.iter().filter(|(k, _)| k.starts_with(PANIC_PREFIX)) {
            keys.push(key.clone());
            panics.extend(serde_json::from_value::<PanicLine>(value.clone()).ok());
        }
        panics.sort_unstable_by(|a, b| a.at.total_cmp(&b.at));
        if !keys.is_empty() {
            if let Err(err) = self.shell.storage().remove(Area::Session, &keys).await {
                self.storage_failed(&err);
            }
        }
        panics
    }

    /// Moves into the log a panic line that landed after this instance loaded. The browser
    /// runs one context's storage calls in order, so the hook's write lands before the next
    /// instance reads; this is the safety net should a browser not.
    async fn collect_late_panics(&self) {
        let Ok(stored) = self.shell.storage().get_all(Area::Session).await else {
            return;
        };
        let panics = self.take_panic_lines(&stored).await;
        if !panics.is_empty() {
            self.change_log(|log, secrets| log_panics(log, &panics, secrets));
        }
    }

    /// Something changed: the open Diagnostics pages and the stored copy follow, once, a
    /// moment later.
    fn diagnostics_changed(&self) {
        let schedule = !std::mem::replace(&mut self.diagnostics.borrow_mut().flush_scheduled, true);
        if let Some(worker) = self.me.upgrade().filter(|_| schedule) {
            self.shell
                .spawn(Box::pin(async move { worker.flush_diagnostics().await }));
        }
    }

    async fn flush_diagnostics(self: Rc<Self>) {
        self.shell.sleep(FLUSH_MS).await;
        // A log never read back would overwrite the stored one: read it first.
        self.load_diagnostics().await;
        self.diagnostics.borrow_mut().flush_scheduled = false;
        self.push_diagnostics(None);
        let snapshot = {
            let diagnostics = self.diagnostics.borrow();
            if diagnostics.load != Load::Loaded {
                return;
            }
            serde_json::to_value(&diagnostics.log).expect("the log serializes")
        };
        // Not an event: a failing write would log itself again and again.
        if let Err(err) = self
            .shell
            .storage()
            .set(Area::Session, LOG_KEY, snapshot)
            .await
        {
            self.shell
                .warn(&format!("wpp-tabs: diagnostics not saved: {err}"));
        }
    }

    /// The log as it stands, for the panic hook to store on the way out (what changed since
    /// the last write would die with the instance). `None` before the stored log was read
    /// back (it would be overwritten) and while the log is in use.
    pub fn log_snapshot(&self) -> Option<Value> {
        let diagnostics = self.diagnostics.try_borrow().ok()?;
        let loaded = diagnostics.load == Load::Loaded;
        loaded.then(|| serde_json::to_value(&diagnostics.log).ok())?
    }

    /// The Diagnostics page's view now.
    pub fn diagnostics_view(&self) -> DiagnosticsView {
        let settings = self.settings();
        let now = self.shell.now_ms();
        self.diagnostics.borrow().log.view(now, &settings)
    }

    /// Sends the view to `only`, or to every subscribed Diagnostics page.
    fn push_diagnostics(&self, only: Option<PortKey>) {
        let ports = match only {
            Some(port) => vec![port],
            None => self.diagnostics_ports(),
        };
        if ports.is_empty() {
            return;
        }
        let push = WorkerPush::Diagnostics {
            view: Box::new(self.diagnostics_view()),
        };
        for port in ports {
            self.post(port, &push);
        }
    }

    /// A message on a Diagnostics page's port.
    pub(crate) async fn diagnostics_message(self: &Rc<Self>, port: PortKey, message: &str) {
        let request = match decode_text::<DiagnosticsRequest>(message) {
            Ok(request) => request,
            Err(err) => return self.rejected(&format!("Diagnostics page message refused: {err}")),
        };
        self.load_settings().await;
        // Loading the cache reads the stored log back too.
        self.loaded().await;
        self.load_diagnostics().await;
        self.collect_late_panics().await;
        match request {
            DiagnosticsRequest::Subscribe => {
                if self.subscribe_diagnostics(port) {
                    self.push_diagnostics(Some(port));
                }
            }
            DiagnosticsRequest::Refresh => self.push_diagnostics(Some(port)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "THISISMYSECURETOKEN";
    const ODD_SECRET: &str = "p@ss/w rd?";
    const TOKEN: &str = "$2b$04$duQ5YYV6fojn5qFiFv.aEuY32_SnHgcmxdfxohnjG4EHJ5_Z6QWhe";
    const T0: f64 = 1_800_000_000_000.0;

    fn id() -> SessionId {
        SessionId::generate(1_795_000_000_000, 0xdead_beef_cafe_f00d)
    }

    fn settings() -> Settings {
        let mut settings = Settings::default();
        let server = &mut settings.servers[0];
        server.server_url = ServerUrl::parse("http://127.0.0.1:21465").unwrap();
        server.secret_key = Some(SecretKey::parse(SECRET).unwrap());
        settings
    }

    /// Text that holds everything the log must not: a token, both secrets (plain and as a
    /// URL segment), a full session ID, a QR blob.
    fn leaky(id: &SessionId) -> String {
        format!(
            "GET http://127.0.0.1:21465/api/{id}/{SECRET}/generate-token with Bearer {TOKEN} \
             and {} for {id}: data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAf \
             and /api/{}/show-all-sessions and {ODD_SECRET}\nsecond line",
            percent_encode(ODD_SECRET),
            percent_encode("unknown secret 42"),
        )
    }

    fn assert_clean(text: &str, id: &SessionId) {
        for leak in [
            SECRET,
            ODD_SECRET,
            &percent_encode(ODD_SECRET),
            TOKEN,
            &TOKEN[7..],
            id.as_str(),
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAf",
            "unknown",
        ] {
            assert!(!text.contains(leak), "{leak:?} leaked in {text:?}");
        }
        assert!(text.contains(&display_id(id)), "{text}");
        assert!(!text.contains('\n'), "{text:?}");
    }

    #[test]
    fn redaction_removes_tokens_secrets_and_full_session_ids() {
        let id = id();
        let text = redact(&leaky(&id), &[SECRET, ODD_SECRET]);
        assert_clean(&text, &id);
        assert!(text.contains("<secret>/generate-token"), "{text}");
        assert!(text.contains("<token>"), "{text}");
        // Ordinary words, routes and URLs stay readable.
        let plain = "status-session failed (server): The server reported an error (500)";
        assert_eq!(redact(plain, &[SECRET]), plain);
        assert_eq!(
            redact("http://127.0.0.1:21465", &[]),
            "http://127.0.0.1:21465"
        );
        assert_eq!(redact("$2 and $2x$ stay", &[]), "$2 and $2x$ stay");
        let long = "x".repeat(2_000);
        assert_eq!(redact(&long, &[]).chars().count(), MAX_TEXT_CHARS + 1);
    }

    #[test]
    fn every_kind_of_event_is_redacted_and_so_is_the_report() {
        let id = id();
        let mut log = Log::default();
        let kinds = [
            EventKind::State,
            EventKind::Error,
            EventKind::Restart,
            EventKind::Panic,
            EventKind::Rejected,
            EventKind::Storage,
            EventKind::Warning,
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let server = format!("http://127.0.0.1:21465/{SECRET}");
            let event = Event::new(
                T0 + i as f64,
                kind,
                Some(&server),
                Some(&id),
                &leaky(&id),
                &[SECRET, ODD_SECRET],
            );
            assert_eq!(event.session.as_deref(), Some(display_id(&id).as_str()));
            assert_clean(&event.text, &id);
            assert!(!event.server.as_deref().unwrap().contains(SECRET));
            log.push(event);
        }
        // The panic hook's line knows no secret; the token and the ID go all the same.
        let panic = PanicLine::new(T0, &format!("panicked at src/x.rs:1:2:\n{TOKEN} {id}"));
        assert!(!panic.text.contains(TOKEN) && !panic.text.contains(id.as_str()));
        assert!(panic.key().starts_with(PANIC_PREFIX));
        log.record(
            "http://127.0.0.1:21465",
            Route::StatusSession,
            None,
            5.0,
            T0,
        );
        let report = report_text(&log.view(T0 + 10.0, &settings()));
        for kind in kinds {
            assert!(report.contains(kind.as_str()), "{kind:?}");
        }
        for line in report.lines() {
            assert_clean(&format!("{line} {}", display_id(&id)), &id);
        }
        // What is stored is the same redacted text.
        let stored = serde_json::to_string(&log).unwrap();
        assert!(
            !stored.contains(SECRET) && !stored.contains(TOKEN) && !stored.contains(id.as_str())
        );
    }

    #[test]
    fn the_ring_keeps_the_last_200_events() {
        let mut log = Log::default();
        for n in 0..=RING_CAPACITY {
            let text = format!("event {n}");
            log.push(Event::new(
                T0 + n as f64,
                EventKind::Warning,
                None,
                None,
                &text,
                &[],
            ));
        }
        assert_eq!(log.events.len(), RING_CAPACITY);
        assert_eq!(
            log.events.front().unwrap().text,
            "event 1",
            "the oldest went"
        );
        assert_eq!(log.events.back().unwrap().text, "event 200");
        // The same event again is counted, not added.
        let again = Event::new(T0 + 999.0, EventKind::Warning, None, None, "event 200", &[]);
        log.push(again);
        assert_eq!(log.events.len(), RING_CAPACITY);
        assert_eq!(log.events.back().unwrap().count, 2);
        assert_eq!(log.events.back().unwrap().at, T0 + 999.0);
        // A log read back is held to the same bound.
        let mut big: Log = serde_json::from_value(serde_json::json!({
            "events": (0..300).map(|n| serde_json::json!({"at": n, "kind": "error", "text": n.to_string()})).collect::<Vec<_>>()
        }))
        .unwrap();
        big.bound();
        assert_eq!(big.events.len(), RING_CAPACITY);
        assert_eq!(big.events[0].text, "100");
        assert_eq!(big.events[0].count, 1);
    }

    #[test]
    fn median_and_p95() {
        assert_eq!(median(&[]), None);
        assert_eq!(percentile(&[], 95.0), None);
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(median(&[1.0, 2.0, 3.0]), Some(2.0));
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), Some(2.5));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 95.0), Some(95.0));
        assert_eq!(median(&hundred), Some(50.5));
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&twenty, 95.0), Some(19.0));
        assert_eq!(percentile(&twenty, 100.0), Some(20.0));
    }

    #[test]
    fn latency_covers_the_window_and_counts_cover_everything() {
        let url = "http://127.0.0.1:21465";
        let mut log = Log::default();
        // An old, slow request: counted, but out of the window.
        log.record(url, Route::StatusSession, Some("timeout"), 30_000.0, T0);
        let now = T0 + WINDOW_MS + 60_000.0;
        for (i, ms) in [10.0, 20.0, 30.0, 40.0, 500.0].into_iter().enumerate() {
            let failure = (i == 4).then_some("server");
            log.record(url, Route::StatusSession, failure, ms, now - 1_000.0);
        }
        log.record(url, Route::GenerateToken, None, 5.0, now);
        let view = log.view(now, &settings());
        let server = &view.servers[0];
        assert_eq!(server.id, Some(ServerId::first()));
        assert_eq!(server.push, PushState::Polling);
        assert_eq!(
            server.routes,
            [
                RouteReport {
                    route: Route::GenerateToken,
                    requests: 1,
                    failures: 0
                },
                RouteReport {
                    route: Route::StatusSession,
                    requests: 6,
                    failures: 2
                },
            ]
        );
        let kinds: Vec<(&str, u32)> = server
            .failures
            .iter()
            .map(|f| (f.kind.as_str(), f.count))
            .collect();
        assert_eq!(kinds, [("server", 1), ("timeout", 1)]);
        let latency = server.latency.unwrap();
        assert_eq!(
            (latency.requests, latency.median_ms, latency.p95_ms),
            (6, 25.0, 500.0)
        );
        // The sample window is bounded too.
        for _ in 0..WINDOW_MAX + 10 {
            log.record(url, Route::StatusSession, None, 1.0, now);
        }
        assert_eq!(log.servers[0].samples.len(), WINDOW_MAX);
        let report = report_text(&log.view(now, &settings()));
        assert!(report.contains("status-session"), "{report}");
        assert!(report.contains(NO_PUSH), "{report}");
    }

    #[test]
    fn urls_outside_the_settings_are_tracked_up_to_a_bound() {
        let mut log = Log::default();
        for n in 0..MAX_TRACKED_SERVERS + 3 {
            let url = format!("http://10.0.0.{n}:21465");
            log.record(&url, Route::Healthz, None, 1.0, T0 + n as f64);
        }
        assert_eq!(log.servers.len(), MAX_TRACKED_SERVERS);
        assert!(log.servers.iter().all(|t| t.url != "http://10.0.0.0:21465"));
        let view = log.view(T0 + 100.0, &settings());
        assert_eq!(view.servers.len(), 1 + MAX_TRACKED_SERVERS);
        assert_eq!(view.servers[1].id, None);
        assert_eq!(view.servers[1].name, None);
    }

    #[test]
    fn a_stored_log_merges_before_what_the_new_instance_recorded() {
        let url = "http://127.0.0.1:21465";
        let mut older = Log::default();
        older.record(url, Route::StartSession, Some("server"), 3.0, T0);
        older.push(Event::new(T0, EventKind::Error, None, None, "older", &[]));
        older.instances = 2;
        let older: Log = serde_json::from_value(serde_json::to_value(&older).unwrap()).unwrap();
        let mut current = Log::default();
        current.record(url, Route::StartSession, None, 4.0, T0 + 5.0);
        current.push(Event::new(
            T0 + 5.0,
            EventKind::Rejected,
            None,
            None,
            "newer",
            &[],
        ));
        current.merge_older(older);
        assert_eq!(current.instances, 2);
        assert_eq!(current.since, Some(T0));
        let texts: Vec<&str> = current.events.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["older", "newer"]);
        let tally = &current.servers[0];
        assert_eq!(
            tally.routes[&Route::StartSession],
            Count {
                requests: 2,
                failures: 1
            }
        );
        assert_eq!(tally.samples, [(T0, 3.0), (T0 + 5.0, 4.0)]);
    }

    #[test]
    fn the_report_says_what_the_page_says_in_english() {
        let view = Log::default().view(T0, &settings());
        assert_eq!(view.window.text().english(), view.window.report());
        assert_eq!(PushState::Polling.text().english(), NO_PUSH);
        assert!(report_text(&view).contains(&view.window.report()));
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(iso_utc(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_utc(T0 + 1.0), "2027-01-15T08:00:00.001Z");
        assert_eq!(iso_utc(951_782_400_000.0), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_utc(f64::NAN), "-");
    }
}
