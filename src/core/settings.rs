//! The user's settings: the wppconnect-servers to talk to, each with its secret key, and
//! what the extension does on its own (closed tabs, notifications).

use crate::core::lock::Sealed;
use crate::core::text::Text;
use serde::{Deserialize, Serialize};
use std::fmt;

pub const DEFAULT_SERVER_URL: &str = "http://localhost:21465";
/// Longer than any real secret; bounds what a page can make the worker store.
const MAX_SECRET_LEN: usize = 512;

/// One wppconnect-server the user added: stored in `storage.local` inside [`Settings`]. Its
/// secret is kept there only when the user asked to remember it, and then in clear only
/// while it has no passphrase; otherwise (memory only, or unlocked) it lives in
/// `storage.session` under the server's own key (`core::store` places it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredServer", into = "StoredServer")]
pub struct ServerConfig {
    pub id: ServerId,
    pub name: String,
    pub server_url: ServerUrl,
    /// How long the secret key is remembered on this computer.
    pub remember: Remember,
    /// When a remembered key is forgotten (ms since the epoch); `None`: never.
    pub remember_until: Option<f64>,
    /// The clear key, wherever it is kept; `None` while it is locked or not entered.
    pub secret_key: Option<SecretKey>,
    /// The remembered key sealed with the user's passphrase: then `storage.local` holds only
    /// this, and never the clear key.
    pub locked_secret: Option<Sealed>,
    /// The user accepted plain `http://` to a server that is not on this computer: the
    /// secret key and tokens then travel readable by anyone on the way.
    pub allow_insecure_http: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            id: ServerId::first(),
            name: DEFAULT_SERVER_NAME.to_owned(),
            server_url: ServerUrl::parse(DEFAULT_SERVER_URL).expect("default URL is valid"),
            remember: Remember::Session,
            remember_until: None,
            secret_key: None,
            locked_secret: None,
            allow_insecure_http: false,
        }
    }
}

/// A server as `storage.local` holds it. `rememberSecret` is the earlier versions' flag: read
/// when `remember` is absent (`true` was "always"), and still written for them to read.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredServer {
    id: ServerId,
    name: String,
    url: ServerUrl,
    #[serde(default)]
    remember_secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remember: Option<Remember>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remember_until: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_key: Option<SecretKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    locked_secret: Option<Sealed>,
    #[serde(default)]
    allow_insecure_http: bool,
}

impl From<StoredServer> for ServerConfig {
    fn from(s: StoredServer) -> Self {
        let remember = s.remember.unwrap_or(match s.remember_secret {
            true => Remember::Always,
            false => Remember::Session,
        });
        // A sealed key counts only while remembered, and then no clear copy is trusted.
        let locked_secret = s.locked_secret.filter(|_| remember.is_remembered());
        ServerConfig {
            id: s.id,
            name: s.name,
            server_url: s.url,
            remember,
            remember_until: s.remember_until.filter(|_| remember.is_remembered()),
            secret_key: s.secret_key.filter(|_| locked_secret.is_none()),
            locked_secret,
            allow_insecure_http: s.allow_insecure_http,
        }
    }
}

impl From<ServerConfig> for StoredServer {
    fn from(s: ServerConfig) -> Self {
        StoredServer {
            id: s.id,
            name: s.name,
            url: s.server_url,
            remember_secret: s.remember.is_remembered(),
            remember: Some(s.remember),
            remember_until: s.remember_until,
            secret_key: s.secret_key,
            locked_secret: s.locked_secret,
            allow_insecure_http: s.allow_insecure_http,
        }
    }
}

/// How long a secret key is remembered on this computer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Remember {
    /// Not remembered: memory only, asked for again after the browser restarts.
    #[default]
    Session,
    Days7,
    Days30,
    Always,
}

impl Remember {
    pub const ALL: [Remember; 4] = [
        Remember::Session,
        Remember::Days7,
        Remember::Days30,
        Remember::Always,
    ];

    pub fn is_remembered(self) -> bool {
        self != Remember::Session
    }

    /// When a key remembered `now` is forgotten; `None`: never (or not remembered at all).
    pub fn until(self, now: f64) -> Option<f64> {
        const DAY_MS: f64 = 24.0 * 3600.0 * 1000.0;
        match self {
            Remember::Days7 => Some(now + 7.0 * DAY_MS),
            Remember::Days30 => Some(now + 30.0 * DAY_MS),
            Remember::Session | Remember::Always => None,
        }
    }

    /// The wire name (`days7`), as the options page's `<select>` carries it.
    pub fn name(self) -> &'static str {
        match self {
            Remember::Session => "session",
            Remember::Days7 => "days7",
            Remember::Days30 => "days30",
            Remember::Always => "always",
        }
    }
}

/// A name, or the earlier versions' `rememberSecret` flag: `true` is "always".
impl<'de> Deserialize<'de> for Remember {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read as a `Value`: serde's untagged enums buffer through its generic `Content`.
        let wrong = || serde::de::Error::custom("remember: session, days7, days30 or always");
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(Remember::Always),
            serde_json::Value::Bool(false) => Ok(Remember::Session),
            serde_json::Value::String(name) => Remember::ALL
                .into_iter()
                .find(|r| r.name() == name)
                .ok_or_else(wrong),
            _ => Err(wrong()),
        }
    }
}

impl ServerConfig {
    /// A secret key is kept for this server: clear, or sealed with a passphrase.
    pub fn has_secret(&self) -> bool {
        self.secret_key.is_some() || self.locked_secret.is_some()
    }

    /// The clear key belongs in `storage.local`: remembered, without a passphrase.
    pub fn clear_secret_at_rest(&self) -> bool {
        self.remember.is_remembered() && self.locked_secret.is_none()
    }

    /// The remembered key's time is up at `now` (by the worker's clock).
    pub fn remember_expired(&self, now: f64) -> bool {
        self.remember.is_remembered()
            && self.has_secret()
            && self.remember_until.is_some_and(|until| now >= until)
    }

    /// Whether requests to this server travel unencrypted beyond this computer.
    pub fn is_insecure(&self) -> bool {
        is_insecure(&self.server_url)
    }

    /// Refuses plain HTTP beyond this computer unless the user opted in for this server.
    pub fn check_transport(&self) -> Result<(), SettingsError> {
        check_transport(&self.server_url, self.allow_insecure_http)
    }
}

pub const DEFAULT_SERVER_NAME: &str = "My server";
/// More servers than anyone runs by hand; bounds what a page can make the worker store.
pub const MAX_SERVERS: usize = 16;
const MAX_SERVER_NAME_CHARS: usize = 40;

/// A server's short, stable ID (`s1`, `s2`, ...): sessions refer to their server by it, so a
/// server can be renamed or moved to a new URL without losing its sessions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerId(String);

impl ServerId {
    pub fn parse(s: &str) -> Option<ServerId> {
        let digits = s.strip_prefix('s')?;
        let ok = (1..=4).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        ok.then(|| ServerId(s.to_owned()))
    }

    pub fn first() -> ServerId {
        ServerId("s1".to_owned())
    }

    fn number(&self) -> u32 {
        self.0[1..].parse().unwrap_or(0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ServerId {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ServerId::parse(&s).ok_or("a server ID is `s` and a number")
    }
}

impl From<ServerId> for String {
    fn from(id: ServerId) -> String {
        id.0
    }
}

/// A server's display name: trimmed, 1 to 40 characters, no control characters.
pub fn parse_server_name(input: &str) -> Result<String, SettingsError> {
    let name = input.trim();
    if name.is_empty() || name.chars().count() > MAX_SERVER_NAME_CHARS {
        return Err(SettingsError::BadName);
    }
    if name.chars().any(char::is_control) {
        return Err(SettingsError::BadName);
    }
    Ok(name.to_owned())
}

/// What closing a tab does to its session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClosedTab {
    /// The session keeps running on the server and can be attached to another tab.
    #[default]
    KeepRunning,
    /// close-session on the server: the login is kept, the server frees the browser.
    CloseOnServer,
}

/// Stored in `storage.local` under [`crate::core::storage::keys::SETTINGS`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub servers: Vec<ServerConfig>,
    pub default_server: ServerId,
    #[serde(default)]
    pub closed_tab: ClosedTab,
    /// A browser notification when a connected account drops.
    #[serde(default = "yes")]
    pub notify_drops: bool,
    /// A session is stale after this many days without being connected.
    #[serde(default)]
    pub stale_after_days: StaleAfterDays,
    /// The user's word, given once, to close and forget stale sessions by themselves (never
    /// one attached to an open tab).
    #[serde(default)]
    pub auto_forget_stale: bool,
}

fn yes() -> bool {
    true
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            servers: vec![ServerConfig::default()],
            default_server: ServerId::first(),
            closed_tab: ClosedTab::default(),
            notify_drops: true,
            stale_after_days: StaleAfterDays::default(),
            auto_forget_stale: false,
        }
    }
}

/// "Stale after N days without being connected": 1 to 3650 days (ten years), 30 by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct StaleAfterDays(u16);

impl StaleAfterDays {
    pub const MAX: u16 = 3650;

    pub fn new(days: u32) -> Result<StaleAfterDays, BadStaleDays> {
        match u16::try_from(days) {
            Ok(days @ 1..=StaleAfterDays::MAX) => Ok(StaleAfterDays(days)),
            _ => Err(BadStaleDays),
        }
    }

    /// As typed into the options page: a whole number of days.
    pub fn parse(input: &str) -> Result<StaleAfterDays, BadStaleDays> {
        let days = input.trim().parse().map_err(|_| BadStaleDays)?;
        StaleAfterDays::new(days)
    }

    pub fn days(self) -> u16 {
        self.0
    }
}

impl Default for StaleAfterDays {
    fn default() -> Self {
        StaleAfterDays(30)
    }
}

impl TryFrom<u32> for StaleAfterDays {
    type Error = BadStaleDays;
    fn try_from(days: u32) -> Result<Self, Self::Error> {
        StaleAfterDays::new(days)
    }
}

/// A number of days [`StaleAfterDays`] refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadStaleDays;

impl BadStaleDays {
    /// What the user reads.
    pub fn text(self) -> Text {
        Text::new("options_error_stale_days")
    }
}

/// In English, for decode errors and logs; a test keeps it the catalogue's.
impl fmt::Display for BadStaleDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stale after: a whole number of days, from 1 to 3650.")
    }
}

impl From<StaleAfterDays> for u32 {
    fn from(days: StaleAfterDays) -> u32 {
        u32::from(days.0)
    }
}

/// The shape before several servers: one URL and its secret.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsV1 {
    server_url: ServerUrl,
    #[serde(default)]
    remember_secret: bool,
    #[serde(default)]
    secret_key: Option<SecretKey>,
    #[serde(default)]
    allow_insecure_http: bool,
}

impl Settings {
    /// Reads the stored settings in either shape; the old one-server shape becomes server
    /// `s1`, with nothing lost. The flag says the stored form should be rewritten.
    pub fn from_stored(value: serde_json::Value) -> Result<(Settings, bool), String> {
        if value.get("servers").is_some() {
            let settings: Settings = serde_json::from_value(value).map_err(|e| e.to_string())?;
            settings.check()?;
            return Ok((settings, false));
        }
        let old: SettingsV1 = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let server = ServerConfig {
            server_url: old.server_url,
            remember: match old.remember_secret {
                true => Remember::Always,
                false => Remember::Session,
            },
            secret_key: old.secret_key,
            allow_insecure_http: old.allow_insecure_http,
            ..ServerConfig::default()
        };
        Ok((
            Settings {
                servers: vec![server],
                ..Settings::default()
            },
            true,
        ))
    }

    /// The invariants serde cannot see: at least one server, unique IDs, a default that exists.
    pub fn check(&self) -> Result<(), String> {
        if self.servers.is_empty() || self.servers.len() > MAX_SERVERS {
            return Err(format!("between 1 and {MAX_SERVERS} servers"));
        }
        // A handful of servers: compared pairwise, with no sort to carry.
        let servers = &self.servers;
        let shared = (0..servers.len()).any(|i| servers[..i].iter().any(|s| s.id == servers[i].id));
        if shared {
            return Err("two servers share an ID".into());
        }
        if self.server(&self.default_server).is_none() {
            return Err("the default server does not exist".into());
        }
        Ok(())
    }

    pub fn server(&self, id: &ServerId) -> Option<&ServerConfig> {
        self.servers.iter().find(|s| &s.id == id)
    }

    pub fn server_mut(&mut self, id: &ServerId) -> Option<&mut ServerConfig> {
        self.servers.iter_mut().find(|s| &s.id == id)
    }

    pub fn default_server(&self) -> &ServerConfig {
        self.server(&self.default_server)
            .unwrap_or(&self.servers[0])
    }

    /// The ID the next added server gets.
    pub fn next_server_id(&self) -> ServerId {
        let next = self
            .servers
            .iter()
            .map(|s| s.id.number())
            .max()
            .unwrap_or(0)
            + 1;
        ServerId(format!("s{next}"))
    }

    /// The server known by this URL, if any.
    pub fn server_at(&self, url: &ServerUrl) -> Option<&ServerConfig> {
        self.servers.iter().find(|s| &s.server_url == url)
    }
}

pub fn is_insecure(url: &ServerUrl) -> bool {
    url.is_plain_http() && !url.is_loopback()
}

/// The secret key travels in a URL path and every token in a header: over plain HTTP to
/// another machine, anyone on the way can read them.
pub fn check_transport(url: &ServerUrl, allow_insecure_http: bool) -> Result<(), SettingsError> {
    match is_insecure(url) && !allow_insecure_http {
        true => Err(SettingsError::InsecureHttp),
        false => Ok(()),
    }
}

/// An `http(s)://host[:port][/path]` base URL, kept without a trailing slash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerUrl(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingsError {
    BadServerUrl(UrlProblem),
    BadSecret(SecretProblem),
    BadName,
    InsecureHttp,
}

/// Why [`ServerUrl::parse`] refused a URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlProblem {
    TooLong,
    /// Spaces, credentials, a query or a fragment.
    Characters,
    Scheme,
    Port,
    Host,
}

/// Why [`SecretKey::parse`] refused a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretProblem {
    Empty,
    TooLong,
    Control,
}

impl SettingsError {
    /// What the user reads.
    pub fn text(self) -> Text {
        Text::new(match self {
            SettingsError::BadServerUrl(UrlProblem::TooLong) => "options_error_url_too_long",
            SettingsError::BadServerUrl(UrlProblem::Characters) => "options_error_url_characters",
            SettingsError::BadServerUrl(UrlProblem::Scheme) => "options_error_url_scheme",
            SettingsError::BadServerUrl(UrlProblem::Port) => "options_error_url_port",
            SettingsError::BadServerUrl(UrlProblem::Host) => "options_error_url_host",
            SettingsError::BadSecret(SecretProblem::Empty) => "options_error_secret_empty",
            SettingsError::BadSecret(SecretProblem::TooLong) => "options_error_secret_too_long",
            SettingsError::BadSecret(SecretProblem::Control) => "options_error_secret_control",
            SettingsError::BadName => "options_error_name",
            SettingsError::InsecureHttp => "options_error_insecure_http",
        })
    }
}

/// In English, for decode errors (a message or a stored record the worker refuses) and logs;
/// the pages show [`SettingsError::text`]. A test keeps the two the same.
impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SettingsError::BadServerUrl(why) => match why {
                UrlProblem::TooLong => "Server URL: is too long",
                UrlProblem::Characters => {
                    "Server URL: may not contain spaces, credentials, a query or a fragment"
                }
                UrlProblem::Scheme => "Server URL: must start with http:// or https://",
                UrlProblem::Port => "Server URL: has a bad port",
                UrlProblem::Host => "Server URL: has no valid host",
            },
            SettingsError::BadSecret(why) => match why {
                SecretProblem::Empty => "Secret key: is empty",
                SecretProblem::TooLong => "Secret key: is too long",
                SecretProblem::Control => "Secret key: may not contain control characters",
            },
            SettingsError::BadName => {
                "Server name: 1 to 40 characters, without control characters."
            }
            SettingsError::InsecureHttp => {
                "Server URL: plain http:// to another computer would send the secret key \
                 unencrypted. Use https://, or allow plain HTTP for this server."
            }
        })
    }
}

impl std::error::Error for SettingsError {}

impl ServerUrl {
    /// Parses and normalises a base URL: the scheme and host in lower case (`HTTPS://` is
    /// fine), a non-ASCII host label shown as Punycode, a port in 1-65535, no trailing slash.
    pub fn parse(input: &str) -> Result<Self, SettingsError> {
        let bad = SettingsError::BadServerUrl;
        let trimmed = input.trim().trim_end_matches('/');
        if trimmed.len() > 2048 {
            return Err(bad(UrlProblem::TooLong));
        }
        if trimmed
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "?#@\\\"<>".contains(c))
        {
            return Err(bad(UrlProblem::Characters));
        }
        let (scheme, rest) = trimmed.split_once("://").ok_or(bad(UrlProblem::Scheme))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad(UrlProblem::Scheme));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = split_port(authority).ok_or(bad(UrlProblem::Port))?;
        let host = normalise_host(host).ok_or(bad(UrlProblem::Host))?;
        let port = match port {
            Some(port) => format!(":{port}"),
            None => String::new(),
        };
        // A non-ASCII path is shown as it travels: percent-encoded UTF-8.
        let path: String = path
            .chars()
            .map(|c| match c.is_ascii() {
                true => c.to_string(),
                false => c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
            })
            .collect();
        Ok(ServerUrl(format!("{scheme}://{host}{port}{path}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host as normalised (`[::1]` for IPv6).
    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split('/').next().unwrap_or_default();
        split_port(authority).map_or("", |(host, _)| host)
    }

    /// Plain `http://`: what travels to the server can be read on the way.
    pub fn is_plain_http(&self) -> bool {
        self.0.starts_with("http://")
    }

    /// This computer: `localhost`, `127.0.0.0/8` or `[::1]`. Plain HTTP does not leave it.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host == "localhost"
            || host.ends_with(".localhost")
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// `host[:port]` -> (host, port); `None` when the port is empty, not a number or out of range.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let port_at = match authority.strip_prefix('[') {
        Some(v6) => v6.find(']').map(|end| end + 2)?,
        None => authority.find(':').unwrap_or(authority.len()),
    };
    let (host, port) = authority.split_at(port_at.min(authority.len()));
    match port.strip_prefix(':') {
        None if port.is_empty() => Some((host, None)),
        None => None,
        Some(port) => {
            let valid =
                !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
            let port: u16 = port.parse().ok().filter(|_| valid)?;
            (port > 0).then_some((host, Some(port)))
        }
    }
}

/// The host in lower case, each non-ASCII label as `xn--` Punycode; `None` if it is no host.
fn normalise_host(host: &str) -> Option<String> {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: std::net::Ipv6Addr = v6.parse().ok()?;
        return Some(format!("[{ip}]"));
    }
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    let labels: Option<Vec<String>> = host
        .split('.')
        .map(|label| {
            let label = label.to_lowercase();
            let label = match label.is_ascii() {
                true => label,
                false => format!("xn--{}", crate::core::punycode::encode(&label)?),
            };
            let valid = (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            valid.then_some(label)
        })
        .collect();
    Some(labels?.join("."))
}

impl TryFrom<String> for ServerUrl {
    type Error = SettingsError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ServerUrl::parse(&s)
    }
}

impl From<ServerUrl> for String {
    fn from(url: ServerUrl) -> String {
        url.0
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server's `SECRET_KEY`. Its `Debug` never prints the value, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretKey(String);

impl SecretKey {
    pub fn parse(input: &str) -> Result<Self, SettingsError> {
        if input.is_empty() {
            return Err(SettingsError::BadSecret(SecretProblem::Empty));
        }
        if input.len() > MAX_SECRET_LEN {
            return Err(SettingsError::BadSecret(SecretProblem::TooLong));
        }
        if input.chars().any(char::is_control) {
            return Err(SettingsError::BadSecret(SecretProblem::Control));
        }
        Ok(SecretKey(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl TryFrom<String> for SecretKey {
    type Error = SettingsError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SecretKey::parse(&s)
    }
}

impl From<SecretKey> for String {
    fn from(secret: SecretKey) -> String {
        secret.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalised() {
        let url = ServerUrl::parse("  http://localhost:21465/ ").unwrap();
        assert_eq!(url.as_str(), "http://localhost:21465");
        let url = ServerUrl::parse("https://wpp.example.com/base/").unwrap();
        assert_eq!(url.as_str(), "https://wpp.example.com/base");
    }

    #[test]
    fn scheme_and_host_case_ports_and_idn_are_normalised() {
        for (input, normal) in [
            (
                "HTTPS://WPP.Example.COM:8443/Base/",
                "https://wpp.example.com:8443/Base",
            ),
            ("http://127.0.0.1:65535", "http://127.0.0.1:65535"),
            ("http://[::1]:21465", "http://[::1]:21465"),
            ("https://münchen.example", "https://xn--mnchen-3ya.example"),
            ("https://аpple.com", "https://xn--pple-43d.com"),
            ("http://wpp_server:21465", "http://wpp_server:21465"),
            ("https://h/wpp/é", "https://h/wpp/%C3%A9"),
        ] {
            assert_eq!(ServerUrl::parse(input).unwrap().as_str(), normal, "{input}");
        }
    }

    #[test]
    fn plain_http_is_refused_beyond_loopback_without_the_opt_in() {
        for local in [
            "http://localhost:21465",
            "http://127.0.0.7",
            "http://[::1]:1",
            "https://wpp.example.com",
        ] {
            let url = ServerUrl::parse(local).unwrap();
            assert_eq!(check_transport(&url, false), Ok(()), "{local}");
        }
        for remote in [
            "http://wpp.example.com",
            "http://192.168.1.10:21465",
            "http://10.0.0.1",
            "http://[2001:db8::1]",
        ] {
            let url = ServerUrl::parse(remote).unwrap();
            assert_eq!(
                check_transport(&url, false),
                Err(SettingsError::InsecureHttp),
                "{remote}"
            );
            assert_eq!(
                check_transport(&url, true),
                Ok(()),
                "{remote} with the opt-in"
            );
        }
        let stored = serde_json::json!({"serverUrl": "http://wpp.example.com"});
        let (settings, _) = Settings::from_stored(stored).unwrap();
        let server = settings.default_server();
        assert!(
            !server.allow_insecure_http,
            "an old settings record has no opt-in"
        );
        assert!(server.check_transport().is_err());
    }

    #[test]
    fn bad_server_urls_are_refused_with_a_reason() {
        for bad in [
            "",
            "localhost:21465",
            "ftp://x",
            "http://",
            "http:///x",
            "http://:",
            "http://:21465",
            "http://host:",
            "http://host:0",
            "http://host:99999",
            "http://host:+80",
            "http://host:8a",
            "http://[::1",
            "http://[nope]:80",
            "http://-host",
            "http://a..b",
            "http://a b",
            "http://user:pw@host",
            "http://host/?q=1",
            "javascript:alert(1)",
        ] {
            let err = ServerUrl::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("Server URL:"), "{bad}: {err}");
        }
    }

    #[test]
    fn errors_in_english_are_the_catalogues() {
        let urls = [
            UrlProblem::TooLong,
            UrlProblem::Characters,
            UrlProblem::Scheme,
            UrlProblem::Port,
            UrlProblem::Host,
        ];
        let secrets = [
            SecretProblem::Empty,
            SecretProblem::TooLong,
            SecretProblem::Control,
        ];
        let every = urls
            .into_iter()
            .map(SettingsError::BadServerUrl)
            .chain(secrets.into_iter().map(SettingsError::BadSecret))
            .chain([SettingsError::BadName, SettingsError::InsecureHttp]);
        for err in every {
            assert_eq!(err.text().english(), err.to_string(), "{err:?}");
        }
        assert_eq!(BadStaleDays.text().english(), BadStaleDays.to_string());
        assert_eq!(StaleAfterDays::parse(" 0 "), Err(BadStaleDays));
        assert_eq!(
            StaleAfterDays::parse("3650").map(StaleAfterDays::days),
            Ok(3650)
        );
    }

    #[test]
    fn secret_debug_output_is_redacted() {
        let secret = SecretKey::parse("THISISMYSECURETOKEN").unwrap();
        assert_eq!(format!("{secret:?}"), "SecretKey(<redacted>)");
        let server = ServerConfig {
            secret_key: Some(secret),
            ..ServerConfig::default()
        };
        assert!(!format!("{server:?}").contains("THISIS"));
    }

    #[test]
    fn server_json_omits_an_unremembered_secret() {
        let json = serde_json::to_value(ServerConfig::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "s1", "name": "My server", "url": "http://localhost:21465",
                               "rememberSecret": false, "remember": "session", "allowInsecureHttp": false})
        );
        let back: ServerConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, ServerConfig::default());
    }

    #[test]
    fn the_remember_flag_of_earlier_versions_becomes_a_duration_and_is_still_written() {
        let server = |extra: serde_json::Value| {
            let mut json = serde_json::json!({"id": "s1", "name": "a", "url": DEFAULT_SERVER_URL,
                                              "secretKey": "THISISMYSECURETOKEN"});
            json.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value::<ServerConfig>(json).unwrap()
        };
        let old = server(serde_json::json!({"rememberSecret": true}));
        assert_eq!(old.remember, Remember::Always);
        assert!(old.secret_key.is_some(), "nothing is lost");
        assert_eq!(
            server(serde_json::json!({"rememberSecret": false})).remember,
            Remember::Session
        );
        assert_eq!(server(serde_json::json!({})).remember, Remember::Session);
        let week = server(
            serde_json::json!({"rememberSecret": true, "remember": "days7",
                                             "rememberUntil": 1.8e12}),
        );
        assert_eq!(
            (week.remember, week.remember_until),
            (Remember::Days7, Some(1.8e12))
        );
        let json = serde_json::to_value(&week).unwrap();
        assert_eq!(
            (
                &json["rememberSecret"],
                &json["remember"],
                &json["rememberUntil"]
            ),
            (
                &serde_json::json!(true),
                &serde_json::json!("days7"),
                &serde_json::json!(1.8e12)
            )
        );
        let bad = serde_json::json!({"id": "s1", "name": "a", "url": DEFAULT_SERVER_URL,
                                     "remember": "forever"});
        assert!(serde_json::from_value::<ServerConfig>(bad).is_err());
    }

    #[test]
    fn a_sealed_secret_is_trusted_only_remembered_and_never_beside_a_clear_one() {
        use crate::core::lock::{Sealed, IV_LEN, SALT_LEN};
        let sealed =
            serde_json::to_value(Sealed::new(&[1; SALT_LEN], &[2; IV_LEN], &[3; 30])).unwrap();
        let stored = |remember: &str| {
            serde_json::json!({"id": "s1", "name": "a", "url": DEFAULT_SERVER_URL,
                               "remember": remember, "lockedSecret": sealed,
                               "secretKey": "THISISMYSECURETOKEN"})
        };
        let locked: ServerConfig = serde_json::from_value(stored("always")).unwrap();
        assert!(locked.locked_secret.is_some());
        assert_eq!(
            locked.secret_key, None,
            "a clear copy beside the sealed one is dropped"
        );
        let json = serde_json::to_value(&locked).unwrap();
        assert!(json.get("secretKey").is_none() && json["lockedSecret"] == sealed);
        let session: ServerConfig = serde_json::from_value(stored("session")).unwrap();
        assert_eq!(session.locked_secret, None);
    }

    #[test]
    fn servers_with_a_bad_url_or_secret_do_not_deserialize() {
        let bad_url = serde_json::json!({"id": "s1", "name": "a", "url": "nope"});
        assert!(serde_json::from_value::<ServerConfig>(bad_url).is_err());
        let bad_secret = serde_json::json!({"id": "s1", "name": "a", "url": DEFAULT_SERVER_URL, "secretKey": ""});
        assert!(serde_json::from_value::<ServerConfig>(bad_secret).is_err());
        let bad_id = serde_json::json!({"id": "x1", "name": "a", "url": DEFAULT_SERVER_URL});
        assert!(serde_json::from_value::<ServerConfig>(bad_id).is_err());
    }

    #[test]
    fn the_one_server_shape_migrates_with_nothing_lost() {
        let old = serde_json::json!({
            "serverUrl": "https://wpp.example.com",
            "rememberSecret": true,
            "secretKey": "THISISMYSECURETOKEN",
            "allowInsecureHttp": false
        });
        let (settings, migrated) = Settings::from_stored(old).unwrap();
        assert!(migrated);
        let server = settings.default_server();
        assert_eq!(server.id, ServerId::first());
        assert_eq!(server.server_url.as_str(), "https://wpp.example.com");
        assert_eq!(server.remember, Remember::Always);
        assert_eq!(
            server.secret_key.as_ref().map(SecretKey::expose),
            Some("THISISMYSECURETOKEN")
        );
        // Stored again in the new shape, it reads back the same and is not migrated twice.
        let again = Settings::from_stored(serde_json::to_value(&settings).unwrap()).unwrap();
        assert_eq!(again, (settings, false));
    }

    #[test]
    fn settings_invariants_are_checked_on_read() {
        let mut two = Settings::default();
        two.servers.push(ServerConfig::default());
        let json = serde_json::to_value(&two).unwrap();
        assert!(Settings::from_stored(json).is_err(), "duplicate IDs");
        // Apart, not only side by side; distinct IDs pass.
        let id = |s: &str| ServerId::parse(s).unwrap();
        two.servers[1].id = id("s2");
        assert_eq!(two.check(), Ok(()));
        two.servers.push(ServerConfig::default());
        assert_eq!(two.check(), Err("two servers share an ID".to_owned()));
        two.servers[2].id = id("s3");
        assert_eq!(two.check(), Ok(()));
        let orphan = Settings {
            default_server: ServerId::parse("s9").unwrap(),
            ..Settings::default()
        };
        assert!(Settings::from_stored(serde_json::to_value(&orphan).unwrap()).is_err());
        let none = serde_json::json!({"servers": [], "defaultServer": "s1"});
        assert!(Settings::from_stored(none).is_err());
    }

    #[test]
    fn server_ids_and_names_are_validated() {
        for good in ["s1", "s12", "s9999"] {
            assert!(ServerId::parse(good).is_some(), "{good}");
        }
        for bad in ["", "s", "s0", "s01", "S1", "s12345", "s1a", "x1"] {
            assert!(ServerId::parse(bad).is_none(), "{bad}");
        }
        let mut settings = Settings::default();
        assert_eq!(settings.next_server_id().as_str(), "s2");
        settings.servers[0].id = ServerId::parse("s7").unwrap();
        assert_eq!(settings.next_server_id().as_str(), "s8");
        assert_eq!(parse_server_name("  Loja  ").unwrap(), "Loja");
        assert!(parse_server_name(" ").is_err());
        assert!(parse_server_name("a\u{7}b").is_err());
        assert!(parse_server_name(&"x".repeat(41)).is_err());
    }

    #[test]
    fn stale_after_days_is_bounded_and_defaults_for_older_settings() {
        assert_eq!(StaleAfterDays::parse(" 45 ").unwrap().days(), 45);
        assert_eq!(StaleAfterDays::parse("3650").unwrap().days(), 3650);
        for bad in ["0", "3651", "-1", "1.5", "", "thirty", "99999999999"] {
            assert!(StaleAfterDays::parse(bad).is_err(), "{bad}");
        }
        let older = serde_json::json!({"servers": [{"id": "s1", "name": "a", "url": DEFAULT_SERVER_URL}],
                                       "defaultServer": "s1"});
        let (settings, _) = Settings::from_stored(older).unwrap();
        assert_eq!(settings.stale_after_days.days(), 30);
        assert!(!settings.auto_forget_stale);
    }
}
