//! wppconnect-server requests and replies (contract §1-§2), as data. The shell performs
//! the HTTP exchange; building the request and judging the reply happen here.

use crate::core::session_id::SessionId;
use crate::core::settings::{SecretKey, ServerUrl};
use crate::core::status::ServerStatus;
use crate::core::storage::Token;
use crate::core::text::Text;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Replies larger than this are refused unread: a QR data URL is a few kilobytes.
pub const MAX_REPLY_BYTES: usize = 1 << 20;
/// How long one request may take before it counts as timed out.
pub const REQUEST_TIMEOUT_MS: u32 = 10_000;
/// Session name used by "Test connection": generate-token has no side effect on the server.
const PROBE_SESSION: &str = "wpp-tabs-probe";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One HTTP request to the server. `Debug` redacts the URL and token: the secret-bearing
/// generate-token path must not reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: Method,
    pub url: String,
    pub bearer: Option<Token>,
    /// JSON body. Sent with `Content-Type: application/json` only when present: a GET with
    /// that header hits the server's `res.send` wrapper quirk (§2).
    pub json_body: Option<String>,
    /// How long the request may take: [`REQUEST_TIMEOUT_MS`], unless the server holds it.
    pub timeout_ms: u32,
}

impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let route = self.url.rsplit('/').next().unwrap_or_default();
        write!(f, "{} …/{route}", self.method.as_str())
    }
}

impl ApiRequest {
    /// `POST /api/:session/:secretkey/generate-token` (§1.1): the secret is a path segment.
    pub fn generate_token(server: &ServerUrl, session: &SessionId, secret: &SecretKey) -> Self {
        Self::mint(server, session.as_str(), secret)
    }

    /// Checks the URL and the secret without touching any session (generate-token only hashes).
    pub fn probe_secret(server: &ServerUrl, secret: &SecretKey) -> Self {
        Self::mint(server, PROBE_SESSION, secret)
    }

    fn mint(server: &ServerUrl, session: &str, secret: &SecretKey) -> Self {
        ApiRequest {
            method: Method::Post,
            url: format!(
                "{server}/api/{session}/{}/generate-token",
                percent_encode(secret.expose())
            ),
            bearer: None,
            json_body: None,
            timeout_ms: REQUEST_TIMEOUT_MS,
        }
    }

    /// `POST start-session` with `waitQrCode: false`: the held-open variant never answers when
    /// no QR is needed (§2.1), so the worker polls instead.
    pub fn start_session(server: &ServerUrl, session: &SessionId, token: &Token) -> Self {
        let mut req = Self::session_route(server, session, token, Method::Post, "start-session");
        req.json_body = Some(r#"{"waitQrCode":false}"#.to_owned());
        req
    }

    /// `POST start-session` with `{phone, waitQrCode: true}` (§2.1): the server holds it until
    /// the pairing code exists, and answers the code only then; `wait_ms` bounds the hold.
    pub fn start_session_by_phone(
        server: &ServerUrl,
        session: &SessionId,
        token: &Token,
        phone: &PairingPhone,
        wait_ms: u32,
    ) -> Self {
        let mut req = Self::session_route(server, session, token, Method::Post, "start-session");
        let body = serde_json::json!({"phone": phone.digits(), "waitQrCode": true});
        req.json_body = Some(body.to_string());
        req.timeout_ms = wait_ms;
        req
    }

    pub fn status_session(server: &ServerUrl, session: &SessionId, token: &Token) -> Self {
        Self::session_route(server, session, token, Method::Get, "status-session")
    }

    pub fn logout_session(server: &ServerUrl, session: &SessionId, token: &Token) -> Self {
        Self::session_route(server, session, token, Method::Post, "logout-session")
    }

    pub fn close_session(server: &ServerUrl, session: &SessionId, token: &Token) -> Self {
        Self::session_route(server, session, token, Method::Post, "close-session")
    }

    /// `GET host-device` (§2.10): the linked account's pushname and number.
    pub fn host_device(server: &ServerUrl, session: &SessionId, token: &Token) -> Self {
        Self::session_route(server, session, token, Method::Get, "host-device")
    }

    /// `GET get-phone-number` (§2.10): the linked account's number only.
    pub fn phone_number(server: &ServerUrl, session: &SessionId, token: &Token) -> Self {
        Self::session_route(server, session, token, Method::Get, "get-phone-number")
    }

    /// `GET /api/:secretkey/show-all-sessions` (§2.7): no token, the secret is a path segment.
    pub fn show_all_sessions(server: &ServerUrl, secret: &SecretKey) -> Self {
        ApiRequest {
            method: Method::Get,
            url: format!(
                "{server}/api/{}/show-all-sessions",
                percent_encode(secret.expose())
            ),
            bearer: None,
            json_body: None,
            timeout_ms: REQUEST_TIMEOUT_MS,
        }
    }

    /// Unauthenticated liveness check (§2.9).
    pub fn healthz(server: &ServerUrl) -> Self {
        ApiRequest {
            method: Method::Get,
            url: format!("{server}/healthz"),
            bearer: None,
            json_body: None,
            timeout_ms: REQUEST_TIMEOUT_MS,
        }
    }

    fn session_route(
        server: &ServerUrl,
        session: &SessionId,
        token: &Token,
        method: Method,
        route: &str,
    ) -> Self {
        ApiRequest {
            method,
            url: format!("{server}/api/{session}/{route}"),
            bearer: Some(token.clone()),
            json_body: None,
            timeout_ms: REQUEST_TIMEOUT_MS,
        }
    }

    /// The `Authorization` header: exactly one space, as the server splits on it (§1.2).
    pub fn authorization(&self) -> Option<String> {
        self.bearer
            .as_ref()
            .map(|t| format!("Bearer {}", t.expose()))
    }
}

/// What came back over HTTP, before judging it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// Why a request failed, in terms a person can act on. Never carries a token or secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// No HTTP answer at all: server down, wrong URL, connection dropped.
    Unreachable,
    Timeout,
    WrongSecret,
    /// 401: the token does not match this session and the secret.
    Unauthorized,
    /// A reply that does not follow the contract (bad JSON, HTML error page, too large).
    Malformed(String),
    /// 404 from the server's `statusConnection`: the route needs a connected session (§2.10).
    NotConnected,
    /// Any other error reply, with the server's own message when it gave one.
    Server {
        status: u16,
        message: String,
    },
    /// The browser could not read or write the extension's own storage.
    Storage(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unreachable => f.write_str(
                "Cannot reach the wppconnect-server. Is it running, and is the server URL right?",
            ),
            ApiError::Timeout => f.write_str("The wppconnect-server did not answer in time."),
            ApiError::WrongSecret => {
                f.write_str("The server refused the secret key. Check it in the options.")
            }
            ApiError::Unauthorized => f.write_str(
                "The server refused this session's token (401). Was the secret key changed?",
            ),
            ApiError::Malformed(what) => {
                write!(
                    f,
                    "The server sent a reply this extension cannot read: {what}."
                )
            }
            ApiError::NotConnected => f.write_str("The session is not connected on the server."),
            ApiError::Server { status, message } => {
                write!(f, "The server reported an error ({status}): {message}")
            }
            ApiError::Storage(why) => {
                write!(f, "The browser could not save this session's data: {why}")
            }
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// What the user reads: the [`fmt::Display`] sentence, from the catalogue.
    pub fn text(&self) -> Text {
        match self {
            ApiError::Unreachable => Text::new("error_unreachable"),
            ApiError::Timeout => Text::new("error_timeout"),
            ApiError::WrongSecret => Text::new("error_wrong_secret"),
            ApiError::Unauthorized => Text::new("error_unauthorized"),
            ApiError::Malformed(what) => Text::new("error_malformed").arg(what),
            ApiError::NotConnected => Text::new("error_not_connected"),
            ApiError::Server { status, message } => {
                Text::new("error_server").arg(status).arg(message)
            }
            ApiError::Storage(why) => Text::new("error_storage").arg(why),
        }
    }

    /// Stable short code for the popup's `data-error` and the tests.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unreachable => "unreachable",
            ApiError::Timeout => "timeout",
            ApiError::WrongSecret => "wrong-secret",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Malformed(_) => "malformed",
            ApiError::NotConnected => "not-connected",
            ApiError::Server { .. } => "server",
            ApiError::Storage(_) => "storage",
        }
    }
}

/// A status as `status-session` or `start-session` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReply {
    pub status: ServerStatus,
    /// A `data:image/png;base64,` URL, kept only while the status is `QRCODE`: the server
    /// keeps returning a stale one after CONNECTED and CLOSED (§2.2).
    pub qr: Option<String>,
}

/// How `logout-session` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogoutOutcome {
    LoggedOut,
    /// 404: the server only logs out connected sessions (§2.6); close-session instead.
    NotConnected,
}

/// The WhatsApp account a connected session is linked to (§2.10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// The number, digits only, country code first ([`PHONE_DIGITS`] of them).
    pub phone: String,
    /// The account's pushname, cleaned like other server text ([`clip`]); `None` when the
    /// server gave none (or an empty one).
    pub name: Option<String>,
}

/// How many digits a phone number may have (E.164 allows 15; WhatsApp ids stay well inside).
pub const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 5..=20;

impl Account {
    /// `Loja Centro (+5521999990001)`, or `+5521999990001` without a name.
    pub fn display(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} (+{})", self.phone),
            None => format!("+{}", self.phone),
        }
    }

    /// From a serialized wid `<digits>@c.us` (`client.getWid()`) and an optional pushname.
    fn from_wid(
        wid: Option<&serde_json::Value>,
        name: Option<&serde_json::Value>,
    ) -> Result<Self, ApiError> {
        let wid = match wid {
            None | Some(serde_json::Value::Null) => {
                return Err(malformed("the reply has no phone number"))
            }
            Some(w) => w
                .as_str()
                .ok_or_else(|| malformed("the phone number is not a string"))?,
        };
        let phone = wid
            .strip_suffix("@c.us")
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| malformed("the phone number is not of the form <digits>@c.us"))?;
        if !PHONE_DIGITS.contains(&phone.len()) {
            return Err(malformed(&format!(
                "the phone number does not have {} to {} digits",
                PHONE_DIGITS.start(),
                PHONE_DIGITS.end()
            )));
        }
        let name = name
            .and_then(serde_json::Value::as_str)
            .map(|n| clip(n).trim().to_owned())
            .filter(|n| !n.is_empty());
        Ok(Account {
            phone: phone.to_owned(),
            name,
        })
    }
}

/// How many digits a number to pair by has, country code included (E.164's 15 at most).
pub const PAIRING_PHONE_DIGITS: std::ops::RangeInclusive<usize> = 8..=15;

/// The number to pair by (start-session's `phone`, §2.1): digits only, country code first,
/// as typed with any spaces, `+`, `-` and parentheses taken out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PairingPhone(String);

impl PairingPhone {
    /// `Err`: the catalogue key of what is wrong with the number, for the user.
    pub fn parse(typed: &str) -> Result<PairingPhone, &'static str> {
        let digits: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '+' | '-' | '(' | ')'))
            .collect();
        if digits.is_empty() {
            return Err("phone_error_empty");
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("phone_error_digits");
        }
        if digits.starts_with('0') {
            return Err("phone_error_leading_zero");
        }
        if !PAIRING_PHONE_DIGITS.contains(&digits.len()) {
            return Err("phone_error_length");
        }
        Ok(PairingPhone(digits))
    }

    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PairingPhone {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PairingPhone::parse(&s)
    }
}

impl From<PairingPhone> for String {
    fn from(p: PairingPhone) -> String {
        p.0
    }
}

/// The code to type on the phone: 8 letters and digits, which WhatsApp shows as `ABCD-EFGH`.
/// The server's spelling is unconfirmed (§2.1 shows `ABCD-1234`), so both forms are read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PairingCode(String);

impl PairingCode {
    pub fn parse(raw: &str) -> Result<PairingCode, &'static str> {
        let plain = match raw.split_once('-') {
            Some((a, b)) if a.len() == 4 && b.len() == 4 => format!("{a}{b}"),
            Some(_) => return Err("a pairing code is 8 letters and digits"),
            None => raw.to_owned(),
        };
        if plain.len() != 8 || !plain.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("a pairing code is 8 letters and digits");
        }
        Ok(PairingCode(plain.to_ascii_uppercase()))
    }

    /// `ABCD-EFGH`, as WhatsApp shows it.
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..4], &self.0[4..])
    }
}

impl TryFrom<String> for PairingCode {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PairingCode::parse(&s)
    }
}

impl From<PairingCode> for String {
    fn from(c: PairingCode) -> String {
        c.display()
    }
}

/// What start-session with `{phone, waitQrCode: true}` answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneStartReply {
    pub status: StatusReply,
    /// Only in the `phoneCode` answer, which a session the server had no entry for gets.
    pub code: Option<PairingCode>,
}

pub fn parse_token_reply(reply: &HttpReply, session: &SessionId) -> Result<Token, ApiError> {
    parse_minted(reply, Some(session.as_str()))
}

/// "Test connection": a 201 with any token means the URL and the secret are right.
pub fn parse_probe_reply(reply: &HttpReply) -> Result<(), ApiError> {
    parse_minted(reply, None).map(|_| ())
}

fn parse_minted(reply: &HttpReply, session: Option<&str>) -> Result<Token, ApiError> {
    #[derive(Deserialize)]
    struct Minted {
        status: String,
        session: Option<String>,
        token: String,
    }
    match reply.status {
        200 | 201 => {
            let minted: Minted = parse_json(reply)?;
            if !minted.status.eq_ignore_ascii_case("success") {
                return Err(malformed("generate-token did not report success"));
            }
            if session.is_some_and(|s| minted.session.as_deref().is_some_and(|m| m != s)) {
                return Err(malformed("generate-token answered for another session"));
            }
            Token::parse(&minted.token).ok_or_else(|| malformed("the token has an unexpected form"))
        }
        400 => Err(ApiError::WrongSecret),
        _ => Err(error_reply(reply)),
    }
}

/// `status-session` and `start-session` replies (§2.1, §2.2).
pub fn parse_status_reply(reply: &HttpReply) -> Result<StatusReply, ApiError> {
    #[derive(Deserialize)]
    struct Status {
        status: Option<String>,
        qrcode: Option<String>,
    }
    if reply.status != 200 {
        return Err(error_reply(reply));
    }
    let parsed: Status = parse_json(reply)?;
    let raw = parsed
        .status
        .ok_or_else(|| malformed("the reply has no status"))?;
    let status = ServerStatus::parse(&raw)
        .ok_or_else(|| malformed(&format!("unknown status {:?}", clip(&raw))))?;
    let qr = match (status, parsed.qrcode) {
        (ServerStatus::QrCode, Some(qr)) => Some(qr_data_url(&qr)?),
        _ => None,
    };
    Ok(StatusReply { status, qr })
}

/// start-session with `{phone, waitQrCode: true}` (§2.1), which answers one of:
/// - `{"status":"phoneCode","phone","phoneCode","session"}`: the code, for `phone` and
///   `session` (checked when present);
/// - `{"status":"qrcode","qrcode":<base64 without data: prefix>,..}`: a QR after all;
/// - the status-session shape at once, for a session the server has an entry for; its
///   `{status:null}` entry (after close-session) answers `"status":null`, read as CLOSED.
pub fn parse_phone_start_reply(
    reply: &HttpReply,
    session: &SessionId,
    phone: &PairingPhone,
) -> Result<PhoneStartReply, ApiError> {
    if reply.status != 200 {
        return Err(error_reply(reply));
    }
    // A map, not a struct: `"status": null` differs from no status at all.
    let parsed: serde_json::Map<String, serde_json::Value> = parse_json(reply)?;
    let field = |name: &str| parsed.get(name).filter(|v| !v.is_null());
    let other_session = match field("session") {
        None => false,
        Some(serde_json::Value::String(s)) => !s.is_empty() && s != session.as_str(),
        Some(_) => true,
    };
    if other_session {
        return Err(malformed("start-session answered for another session"));
    }
    let (status, held) = match parsed.get("status") {
        Some(serde_json::Value::Null) => (ServerStatus::Closed, false),
        Some(serde_json::Value::String(raw)) => {
            let status = ServerStatus::parse(raw)
                .ok_or_else(|| malformed(&format!("unknown status {:?}", clip(raw))))?;
            // The held answer spells it `phoneCode`; status-session, `PHONECODE`.
            (status, raw == "phoneCode")
        }
        _ => return Err(malformed("the reply has no status")),
    };
    let code = match field("phoneCode") {
        None => None,
        Some(serde_json::Value::String(code)) => Some(
            PairingCode::parse(code)
                .map_err(|_| malformed("the pairing code has an unexpected form"))?,
        ),
        Some(_) => return Err(malformed("the pairing code is not text")),
    };
    if status == ServerStatus::PhoneCode {
        let for_phone = match field("phone") {
            None => true,
            Some(serde_json::Value::String(p)) => p == phone.digits(),
            Some(serde_json::Value::Number(n)) => n.to_string() == phone.digits(),
            Some(_) => false,
        };
        if !for_phone {
            return Err(malformed("the pairing code is for another phone number"));
        }
        if held && code.is_none() {
            return Err(malformed("the pairing-code reply has no code"));
        }
    } else if code.is_some() {
        return Err(malformed("a pairing code came with another status"));
    }
    let qr = match (status, field("qrcode")) {
        (ServerStatus::QrCode, Some(serde_json::Value::String(qr))) => Some(qr_data_url(qr)?),
        (ServerStatus::QrCode, Some(_)) => return Err(malformed("the QR code is not text")),
        _ => None,
    };
    Ok(PhoneStartReply {
        status: StatusReply { status, qr },
        code,
    })
}

pub fn parse_logout_reply(reply: &HttpReply) -> Result<LogoutOutcome, ApiError> {
    match reply.status {
        200 => {
            let _: serde_json::Value = parse_json(reply)?;
            Ok(LogoutOutcome::LoggedOut)
        }
        404 => Ok(LogoutOutcome::NotConnected),
        _ => Err(error_reply(reply)),
    }
}

/// How `close-session` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    Closed,
    /// 500 for a session that is only a placeholder (INITIALIZING, QRCODE, never started):
    /// the status reads CLOSED afterwards (§2.5), but the real server leaks a hung session's
    /// browser, which keeps the session name's profile locked (RUNNING.md).
    Placeholder,
}

pub fn parse_close_reply(reply: &HttpReply) -> Result<CloseOutcome, ApiError> {
    let outcome = match reply.status {
        200 => CloseOutcome::Closed,
        500 => CloseOutcome::Placeholder,
        _ => return Err(error_reply(reply)),
    };
    let _: serde_json::Value = parse_json(reply)?;
    Ok(outcome)
}

/// `host-device` (§2.10): only `phoneNumber` is needed; `pushname` is taken when it is text.
/// The rest of `response` is WhatsApp Web's and changes with it, so it is not read.
pub fn parse_host_device_reply(reply: &HttpReply) -> Result<Account, ApiError> {
    let response = parse_device_reply(reply, "host-device")?;
    let fields = response
        .as_object()
        .ok_or_else(|| malformed("host-device did not describe the account"))?;
    Account::from_wid(fields.get("phoneNumber"), fields.get("pushname"))
}

/// `get-phone-number` (§2.10): `response` is the serialized wid; no name.
pub fn parse_phone_number_reply(reply: &HttpReply) -> Result<Account, ApiError> {
    let response = parse_device_reply(reply, "get-phone-number")?;
    Account::from_wid(Some(&response), None)
}

/// The `{"status":"success","response":..,"mapper":"device"}` envelope of both device routes,
/// and `statusConnection`'s 404 `{"status":"Disconnected",..}` as [`ApiError::NotConnected`].
fn parse_device_reply(reply: &HttpReply, route: &str) -> Result<serde_json::Value, ApiError> {
    #[derive(Deserialize)]
    struct Device {
        status: Option<serde_json::Value>,
        response: Option<serde_json::Value>,
    }
    match reply.status {
        200 => {
            let device: Device = parse_json(reply)?;
            let success = device.status.as_ref().is_none_or(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case("success"))
            });
            if !success {
                return Err(malformed(&format!("{route} did not report success")));
            }
            device
                .response
                .ok_or_else(|| malformed("the reply has no phone number"))
        }
        404 if is_disconnected(reply) => Err(ApiError::NotConnected),
        _ => Err(error_reply(reply)),
    }
}

/// `statusConnection`'s body. Any other 404 (Express's "Cannot GET" page of a server without
/// the route) stays an error.
fn is_disconnected(reply: &HttpReply) -> bool {
    #[derive(Deserialize)]
    struct Disconnected {
        status: Option<serde_json::Value>,
    }
    parse_json::<Disconnected>(reply)
        .is_ok_and(|d| d.status.as_ref().and_then(|s| s.as_str()) == Some("Disconnected"))
}

/// `show-all-sessions` (§2.7): the names in the server's token store that are this
/// extension's session IDs; other names are skipped. The pre-2023 shape `[{"session": ..}]` is
/// read too.
pub fn parse_show_all_reply(reply: &HttpReply) -> Result<Vec<SessionId>, ApiError> {
    #[derive(Deserialize)]
    struct All {
        response: Option<serde_json::Value>,
    }
    match reply.status {
        200 => {
            let all: All = parse_json(reply)?;
            let names = all
                .response
                .as_ref()
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| malformed("show-all-sessions did not list sessions"))?;
            let mut seen = std::collections::HashSet::new();
            let ids = names
                .iter()
                .filter_map(|n| n.as_str().or_else(|| n.get("session")?.as_str()))
                .filter_map(|n| SessionId::parse(n).ok())
                .filter(|id| seen.insert(id.clone()))
                .collect();
            Ok(ids)
        }
        400 => Err(ApiError::WrongSecret),
        _ => Err(error_reply(reply)),
    }
}

pub fn parse_healthz_reply(reply: &HttpReply) -> Result<(), ApiError> {
    #[derive(Deserialize)]
    struct Health {
        message: String,
    }
    match reply.status {
        200 => match parse_json::<Health>(reply)?.message.as_str() {
            "OK" => Ok(()),
            _ => Err(malformed("/healthz did not say OK")),
        },
        _ => Err(error_reply(reply)),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(reply: &HttpReply) -> Result<T, ApiError> {
    if reply.body.len() > MAX_REPLY_BYTES {
        return Err(malformed("the reply is too large"));
    }
    let is_json = reply
        .content_type
        .as_deref()
        .is_none_or(|ct| ct.to_ascii_lowercase().contains("json"));
    if !is_json {
        return Err(malformed("expected JSON, got another content type"));
    }
    // Through a `Value`: the one text parser the worker holds, so each reply type has one
    // decoder (from a `Value`, as stored data and messages are read) instead of two.
    let value: serde_json::Value = serde_json::from_str(&reply.body)
        .map_err(|_| malformed("the JSON is invalid or incomplete"))?;
    serde_json::from_value(value).map_err(|_| malformed("the JSON is invalid or incomplete"))
}

/// Turns a non-success reply into the error a person sees.
fn error_reply(reply: &HttpReply) -> ApiError {
    if reply.status == 401 {
        return ApiError::Unauthorized;
    }
    if reply.body.len() > MAX_REPLY_BYTES {
        return malformed("the reply is too large");
    }
    let message = serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| {
            ["message", "error"]
                .iter()
                .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(clip))
        });
    match message {
        Some(message) => ApiError::Server {
            status: reply.status,
            message,
        },
        None => malformed(&format!("HTTP {} without a JSON error", reply.status)),
    }
}

/// Only PNG data URLs reach the popup's `<img>`: a server-chosen URL could track the user.
pub(crate) fn qr_data_url(qr: &str) -> Result<String, ApiError> {
    const PREFIX: &str = "data:image/png;base64,";
    let payload = qr.strip_prefix(PREFIX).unwrap_or(qr);
    let valid = !payload.is_empty()
        && payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
    if !valid {
        return Err(malformed("the QR code is not a PNG data URL"));
    }
    Ok(format!("{PREFIX}{payload}"))
}

fn malformed(what: &str) -> ApiError {
    ApiError::Malformed(what.to_owned())
}

/// Server text shown to the user is cut short and stripped of control characters, and of the
/// bidirectional controls that could make it read differently from what it says.
pub fn clip(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .take(200)
        .collect()
}

/// Unicode's bidirectional controls: marks, embeddings, overrides and isolates.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Percent-encodes everything outside RFC 3986's unreserved set, so a secret with `/`, `?`
/// or `%` stays one path segment (and so `core::diagnostics` finds it to redact).
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "$2b$10$duQ5YYV6fojn5qFiFv.aEuY32_SnHgcmxdfxohnjG4EHJ5_Z6QWhe";

    fn server() -> ServerUrl {
        ServerUrl::parse("http://localhost:21465").unwrap()
    }
    fn session() -> SessionId {
        SessionId::parse("session_abc_def").unwrap()
    }
    fn token() -> Token {
        Token::parse(TOKEN).unwrap()
    }
    fn json(status: u16, body: &str) -> HttpReply {
        HttpReply {
            status,
            content_type: Some("application/json; charset=utf-8".into()),
            body: body.into(),
        }
    }

    #[test]
    fn server_text_loses_control_and_bidi_characters() {
        let body = r#"{"message":"Erro \u202eetiuq\u202c ok\u2066x\u2069\u200f\n"}"#;
        let reply = json(500, body);
        let ApiError::Server { message, .. } = parse_status_reply(&reply).unwrap_err() else {
            panic!("a server error");
        };
        assert_eq!(message, "Erro etiuq okx");
        assert_eq!(clip(&"a".repeat(500)).len(), 200);
    }

    #[test]
    fn generate_token_puts_the_encoded_secret_in_the_path() {
        let secret = SecretKey::parse("THIS/IS?my%key").unwrap();
        let req = ApiRequest::generate_token(&server(), &session(), &secret);
        assert_eq!(req.method, Method::Post);
        assert_eq!(
            req.url,
            "http://localhost:21465/api/session_abc_def/THIS%2FIS%3Fmy%25key/generate-token"
        );
        assert_eq!(req.authorization(), None);
        assert!(
            !format!("{req:?}").contains("THIS"),
            "Debug leaks the secret"
        );
    }

    #[test]
    fn session_routes_carry_the_bearer_token_and_body_only_on_start() {
        let start = ApiRequest::start_session(&server(), &session(), &token());
        assert_eq!(
            start.url,
            "http://localhost:21465/api/session_abc_def/start-session"
        );
        assert_eq!(start.method, Method::Post);
        assert_eq!(start.json_body.as_deref(), Some(r#"{"waitQrCode":false}"#));
        assert_eq!(start.authorization(), Some(format!("Bearer {TOKEN}")));
        assert!(
            !format!("{start:?}").contains("duQ5"),
            "Debug leaks the token"
        );

        let status = ApiRequest::status_session(&server(), &session(), &token());
        assert_eq!(
            (status.method, status.json_body.clone()),
            (Method::Get, None)
        );
        assert!(status.url.ends_with("/api/session_abc_def/status-session"));
        let logout = ApiRequest::logout_session(&server(), &session(), &token());
        assert!(logout.url.ends_with("/logout-session"));
        let close = ApiRequest::close_session(&server(), &session(), &token());
        assert!(close.url.ends_with("/close-session"));
    }

    #[test]
    fn token_reply_success_and_wrong_secret() {
        let ok = json(
            201,
            &format!(
                r#"{{"status":"success","session":"session_abc_def","token":"{TOKEN}","full":"x"}}"#
            ),
        );
        assert_eq!(parse_token_reply(&ok, &session()), Ok(token()));
        let wrong = json(
            400,
            r#"{"response":false,"message":"The SECRET_KEY is incorrect"}"#,
        );
        assert_eq!(
            parse_token_reply(&wrong, &session()),
            Err(ApiError::WrongSecret)
        );
        assert_eq!(parse_probe_reply(&wrong), Err(ApiError::WrongSecret));
        assert_eq!(parse_probe_reply(&ok), Ok(()));
    }

    #[test]
    fn token_reply_for_another_session_or_with_a_bad_token_is_refused() {
        let other = json(
            201,
            &format!(r#"{{"status":"success","session":"other","token":"{TOKEN}"}}"#),
        );
        assert!(matches!(
            parse_token_reply(&other, &session()),
            Err(ApiError::Malformed(_))
        ));
        let bad = json(
            201,
            r#"{"status":"success","token":"has spaces in it, not a token"}"#,
        );
        assert!(matches!(
            parse_token_reply(&bad, &session()),
            Err(ApiError::Malformed(_))
        ));
    }

    #[test]
    fn status_reply_keeps_the_qr_only_in_qrcode() {
        let qr = json(
            200,
            r#"{"status":"QRCODE","qrcode":"data:image/png;base64,iVBORw0K","urlcode":"2@x","version":"2.10.4"}"#,
        );
        assert_eq!(
            parse_status_reply(&qr),
            Ok(StatusReply {
                status: ServerStatus::QrCode,
                qr: Some("data:image/png;base64,iVBORw0K".into())
            })
        );
        let stale = json(
            200,
            r#"{"status":"CONNECTED","qrcode":"data:image/png;base64,iVBORw0K","urlcode":"2@x"}"#,
        );
        assert_eq!(parse_status_reply(&stale).unwrap().qr, None);
        let closed = json(200, r#"{"status":"CLOSED","qrcode":null}"#);
        assert_eq!(
            parse_status_reply(&closed).unwrap().status,
            ServerStatus::Closed
        );
    }

    #[test]
    fn wait_qrcode_shape_is_normalised() {
        let held = json(
            200,
            r#"{"status":"qrcode","qrcode":"iVBORw0KGgo=","urlcode":"2@x","session":"s"}"#,
        );
        let reply = parse_status_reply(&held).unwrap();
        assert_eq!(reply.status, ServerStatus::QrCode);
        assert_eq!(
            reply.qr.as_deref(),
            Some("data:image/png;base64,iVBORw0KGgo=")
        );
    }

    fn phone() -> PairingPhone {
        PairingPhone::parse("5521999999999").unwrap()
    }

    #[test]
    fn start_by_phone_asks_for_the_code_and_may_be_held() {
        let req =
            ApiRequest::start_session_by_phone(&server(), &session(), &token(), &phone(), 60_000);
        assert!(req.url.ends_with("/api/session_abc_def/start-session"));
        assert_eq!(req.method, Method::Post);
        let body: serde_json::Value =
            serde_json::from_str(req.json_body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"phone": "5521999999999", "waitQrCode": true})
        );
        assert_eq!(req.timeout_ms, 60_000);
        let plain = ApiRequest::start_session(&server(), &session(), &token());
        assert_eq!(plain.timeout_ms, REQUEST_TIMEOUT_MS);
    }

    #[test]
    fn an_error_reads_the_same_in_the_log_and_to_the_user() {
        for err in [
            ApiError::Unreachable,
            ApiError::Timeout,
            ApiError::WrongSecret,
            ApiError::Unauthorized,
            ApiError::Malformed("bad JSON".into()),
            ApiError::NotConnected,
            ApiError::Server {
                status: 500,
                message: "boom".into(),
            },
            ApiError::Storage("quota".into()),
        ] {
            assert_eq!(err.text().english(), err.to_string());
        }
    }

    #[test]
    fn a_phone_number_is_digits_with_its_country_code() {
        for (typed, digits) in [
            ("+55 (21) 99999-9999", "5521999999999"),
            ("1 415 555 0100", "14155550100"),
            ("49301234", "49301234"),
            ("123456789012345", "123456789012345"),
        ] {
            assert_eq!(
                PairingPhone::parse(typed).map(|p| p.0),
                Ok(digits.to_owned())
            );
        }
        for typed in [
            "",
            " + ",
            "5521 9999x9999",
            "+55.21.99999.9999",
            "021999999999",
            "0055 21 99999 9999",
            "1234567",
            "1234567890123456",
            "５５２１９９９９９９９９９",
        ] {
            assert!(PairingPhone::parse(typed).is_err(), "{typed:?}");
        }
        let json = serde_json::json!("+55 21 99999-9999");
        let phone: PairingPhone = serde_json::from_value(json).unwrap();
        assert_eq!(serde_json::to_value(&phone).unwrap(), "5521999999999");
        assert!(serde_json::from_value::<PairingPhone>(serde_json::json!("12")).is_err());
    }

    #[test]
    fn a_pairing_code_reads_with_or_without_its_hyphen_and_shows_with_it() {
        for raw in ["ABCD1234", "ABCD-1234", "abcd-1234"] {
            assert_eq!(PairingCode::parse(raw).unwrap().display(), "ABCD-1234");
        }
        for raw in [
            "",
            "ABC-1234",
            "ABCD-12345",
            "ABCD 1234",
            "ABCD_1234",
            "ABCDEFGHI",
            "AB-CD-12-34",
            "ÄBCD1234",
        ] {
            assert!(PairingCode::parse(raw).is_err(), "{raw:?}");
        }
        let code = PairingCode::parse("WXYZ9876").unwrap();
        assert_eq!(serde_json::to_value(&code).unwrap(), "WXYZ-9876");
    }

    #[test]
    fn the_phone_start_reply_carries_the_code_or_a_status() {
        let parse = |body: &str| parse_phone_start_reply(&json(200, body), &session(), &phone());
        let code = parse(
            r#"{"status":"phoneCode","phone":"5521999999999","phoneCode":"ABCD-1234","session":"session_abc_def"}"#,
        )
        .unwrap();
        assert_eq!(code.status.status, ServerStatus::PhoneCode);
        assert_eq!(code.code.unwrap().display(), "ABCD-1234");
        let qr = parse(r#"{"status":"qrcode","qrcode":"iVBORw0KGgo=","urlcode":"2@x","session":"session_abc_def"}"#)
            .unwrap();
        assert_eq!(
            (qr.status.status, qr.status.qr.as_deref(), qr.code),
            (
                ServerStatus::QrCode,
                Some("data:image/png;base64,iVBORw0KGgo="),
                None
            )
        );
        // A session the server has an entry for answers at once, without the code.
        let running = parse(r#"{"status":"PHONECODE","qrcode":null,"version":"2.10.4"}"#).unwrap();
        assert_eq!(
            (running.status.status, running.code),
            (ServerStatus::PhoneCode, None)
        );
        let placeholder =
            parse(r#"{"status":null,"qrcode":null,"version":"2.10.4","session":""}"#).unwrap();
        assert_eq!(placeholder.status.status, ServerStatus::Closed);
        for bad in [
            r#"{"status":"phoneCode","phone":"5521999999999","phoneCode":"ABC","session":"session_abc_def"}"#,
            r#"{"status":"phoneCode","phone":"5511111111111","phoneCode":"ABCD-1234"}"#,
            r#"{"status":"phoneCode","phoneCode":"ABCD-1234","session":"someone_else"}"#,
            r#"{"status":"phoneCode","phone":"5521999999999"}"#,
            r#"{"status":"qrcode","phoneCode":"ABCD-1234"}"#,
            r#"{"status":"phoneCode","phoneCode":12345678}"#,
            r#"{"status":"qrcode","qrcode":"https://evil.example/x.png"}"#,
            r#"{"phoneCode":"ABCD-1234"}"#,
            r#"{"status":"PAIRING"}"#,
            r#"{"status":7}"#,
        ] {
            assert!(matches!(parse(bad), Err(ApiError::Malformed(_))), "{bad}");
        }
        let refused = parse_phone_start_reply(&json(401, "{}"), &session(), &phone());
        assert_eq!(refused, Err(ApiError::Unauthorized));
    }

    #[test]
    fn a_qr_that_is_not_png_data_is_refused() {
        for qr in [
            "https://evil.example/pixel.png",
            "data:text/html;base64,PHNjcmlwdD4=",
            "",
        ] {
            let body = serde_json::json!({"status": "QRCODE", "qrcode": qr}).to_string();
            assert!(
                matches!(
                    parse_status_reply(&json(200, &body)),
                    Err(ApiError::Malformed(_))
                ),
                "{qr}"
            );
        }
    }

    #[test]
    fn malformed_replies_give_clear_errors() {
        let cases = [
            json(200, "{\"status\":\"QRCO"),
            json(200, r#"{"status":"READY"}"#),
            json(200, r#"{"qrcode":null}"#),
            json(200, "[]"),
            HttpReply {
                status: 200,
                content_type: Some("text/html".into()),
                body: "<html>oops</html>".into(),
            },
            json(200, &"x".repeat(MAX_REPLY_BYTES + 1)),
        ];
        for reply in cases {
            let err = parse_status_reply(&reply).unwrap_err();
            assert_eq!(err.code(), "malformed", "{reply:?}");
            assert!(
                err.to_string().starts_with("The server sent a reply"),
                "{err}"
            );
        }
    }

    #[test]
    fn error_statuses_map_to_what_the_user_can_do() {
        let unauthorized = json(
            401,
            r#"{"error":"Check that the Session and Token are correct"}"#,
        );
        assert_eq!(
            parse_status_reply(&unauthorized),
            Err(ApiError::Unauthorized)
        );
        let missing = json(
            401,
            r#"{"message":"Token is not present. Check your header and try again"}"#,
        );
        assert_eq!(parse_status_reply(&missing), Err(ApiError::Unauthorized));
        let inactive = json(
            500,
            r#"{"status":"error","message":"The session is not active","error":{}}"#,
        );
        assert_eq!(
            parse_status_reply(&inactive),
            Err(ApiError::Server {
                status: 500,
                message: "The session is not active".into()
            })
        );
        let html = HttpReply {
            status: 502,
            content_type: Some("text/html".into()),
            body: "<h1>Bad Gateway</h1>".into(),
        };
        assert_eq!(parse_status_reply(&html).unwrap_err().code(), "malformed");
    }

    #[test]
    fn logout_falls_back_when_not_connected_and_close_accepts_the_placeholder_500() {
        let ok = json(
            200,
            r#"{"status":true,"message":"Session successfully closed"}"#,
        );
        assert_eq!(parse_logout_reply(&ok), Ok(LogoutOutcome::LoggedOut));
        let not_connected = json(
            404,
            r#"{"response":null,"status":"Disconnected","message":"A sessão do WhatsApp não está ativa."}"#,
        );
        assert_eq!(
            parse_logout_reply(&not_connected),
            Ok(LogoutOutcome::NotConnected)
        );
        assert_eq!(
            parse_logout_reply(&json(401, "{}")),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(parse_close_reply(&ok), Ok(CloseOutcome::Closed));
        let placeholder = json(
            500,
            r#"{"status":false,"message":"Error closing session","error":{}}"#,
        );
        assert_eq!(
            parse_close_reply(&placeholder),
            Ok(CloseOutcome::Placeholder)
        );
        assert_eq!(
            parse_close_reply(&json(200, "not json"))
                .unwrap_err()
                .code(),
            "malformed"
        );
    }

    #[test]
    fn healthz() {
        let ok = json(200, r#"{"uptime":1.2,"message":"OK","timestamp":1}"#);
        assert_eq!(parse_healthz_reply(&ok), Ok(()));
        assert!(parse_healthz_reply(&json(200, r#"{"message":"nope"}"#)).is_err());
        assert_eq!(
            ApiRequest::healthz(&server()).url,
            "http://localhost:21465/healthz"
        );
    }

    #[test]
    fn server_messages_are_clipped_and_cleaned() {
        let long = format!(r#"{{"message":"{}\u0007"}}"#, "a".repeat(500));
        match parse_status_reply(&json(500, &long)) {
            Err(ApiError::Server { message, .. }) => {
                assert_eq!(message.len(), 200);
                assert!(!message.contains('\u{7}'));
            }
            other => panic!("{other:?}"),
        }
    }

    const NOT_ACTIVE: &str = r#"{"response":null,"status":"Disconnected","message":"A sessão do WhatsApp não está ativa."}"#;

    fn account(phone: &str, name: Option<&str>) -> Account {
        Account {
            phone: phone.into(),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn account_routes_and_show_all_sessions_requests() {
        let host = ApiRequest::host_device(&server(), &session(), &token());
        assert_eq!(
            (host.method, host.url.as_str(), host.json_body.as_deref()),
            (
                Method::Get,
                "http://localhost:21465/api/session_abc_def/host-device",
                None
            )
        );
        assert_eq!(host.authorization(), Some(format!("Bearer {TOKEN}")));
        let number = ApiRequest::phone_number(&server(), &session(), &token());
        assert_eq!(number.method, Method::Get);
        assert_eq!(
            number.url,
            "http://localhost:21465/api/session_abc_def/get-phone-number"
        );
        assert_eq!(number.authorization(), Some(format!("Bearer {TOKEN}")));

        let secret = SecretKey::parse("THIS/IS?my%key").unwrap();
        let all = ApiRequest::show_all_sessions(&server(), &secret);
        assert_eq!(
            (all.method, all.url.as_str(), all.authorization()),
            (
                Method::Get,
                "http://localhost:21465/api/THIS%2FIS%3Fmy%25key/show-all-sessions",
                None
            )
        );
        assert_eq!(all.json_body, None);
        assert!(
            !format!("{all:?}").contains("THIS"),
            "Debug leaks the secret"
        );
    }

    #[test]
    fn host_device_reply_gives_the_number_and_the_pushname() {
        // §2.10, as wpp-sim sends it (WA-JS `Conn.attributes` + `phoneNumber`).
        let full = json(
            200,
            r#"{"status":"success","response":{"pushname":"Loja Centro","platform":"android","wid":{"server":"c.us","user":"5521999990001","_serialized":"5521999990001@c.us"},"phone":{"device_manufacturer":"samsung","device_model":"SM-A515F","os_version":"13","wa_version":"2.24.6.77"},"phoneNumber":"5521999990001@c.us"},"mapper":"device"}"#,
        );
        let acc = parse_host_device_reply(&full).unwrap();
        assert_eq!(acc, account("5521999990001", Some("Loja Centro")));
        assert_eq!(acc.display(), "Loja Centro (+5521999990001)");
        // Multi-device WhatsApp Web: no wid, no phone, a pushname with a trailing space.
        let md = json(
            200,
            r#"{"status":"success","response":{"id":"1","platform":"iphone","smbTos":0,"pushname":"JB ","stale":false,"phoneNumber":"5521999999999@c.us"},"mapper":"device"}"#,
        );
        assert_eq!(
            parse_host_device_reply(&md),
            Ok(account("5521999999999", Some("JB")))
        );
        // Every field but phoneNumber is optional, and a pushname that is not text is dropped.
        for body in [
            r#"{"response":{"phoneNumber":"5521999999999@c.us"}}"#,
            r#"{"status":"success","response":{"pushname":null,"phoneNumber":"5521999999999@c.us"}}"#,
            r#"{"status":"success","response":{"pushname":42,"phoneNumber":"5521999999999@c.us"}}"#,
            r#"{"status":"success","response":{"pushname":" \u200f ","phoneNumber":"5521999999999@c.us"}}"#,
        ] {
            let acc = parse_host_device_reply(&json(200, body)).unwrap();
            assert_eq!(acc, account("5521999999999", None), "{body}");
            assert_eq!(acc.display(), "+5521999999999");
        }
    }

    #[test]
    fn a_pushname_is_clipped_and_loses_bidi_and_control_characters() {
        let body = serde_json::json!({
            "status": "success",
            "response": {
                "pushname": format!("Ana \u{202e}live\u{202c}\n{}", "x".repeat(400)),
                "phoneNumber": "5521999990001@c.us"
            },
            "mapper": "device"
        })
        .to_string();
        let name = parse_host_device_reply(&json(200, &body))
            .unwrap()
            .name
            .unwrap();
        assert!(name.starts_with("Ana livexxx"), "{name}");
        assert_eq!(name.chars().count(), 200);
    }

    #[test]
    fn phone_number_reply_gives_the_number_only() {
        let ok = json(
            200,
            r#"{"status":"success","response":"5521999999999@c.us","mapper":"device"}"#,
        );
        let acc = parse_phone_number_reply(&ok).unwrap();
        assert_eq!(acc, account("5521999999999", None));
        assert_eq!(acc.display(), "+5521999999999");
        let shortest = json(200, r#"{"response":"12345@c.us"}"#);
        assert_eq!(
            parse_phone_number_reply(&shortest),
            Ok(account("12345", None))
        );
        let longest = json(200, &format!(r#"{{"response":"{}@c.us"}}"#, "9".repeat(20)));
        assert_eq!(parse_phone_number_reply(&longest).unwrap().phone.len(), 20);
    }

    #[test]
    fn a_missing_or_odd_phone_number_is_malformed() {
        let cases = [
            (
                r#"{"status":"success","response":{"pushname":"x"},"mapper":"device"}"#,
                true,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":null}}"#,
                true,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":5521999999999}}"#,
                true,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":"5521999999999"}}"#,
                true,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":"5521999999999@lid"}}"#,
                true,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":"5521999999999@g.us"}}"#,
                true,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":"+5521999999999@c.us"}}"#,
                true,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":"5521 9999@c.us"}}"#,
                true,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":"@c.us"}}"#,
                true,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":"1234@c.us"}}"#,
                true,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":"552199999999900000001@c.us"}}"#,
                true,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":"٥٥٢١٩٩٩٩٩@c.us"}}"#,
                true,
            ),
            (
                r#"{"status":"error","response":{"phoneNumber":"5521999999999@c.us"}}"#,
                true,
            ),
            (
                r#"{"status":"success","response":"5521999999999@c.us"}"#,
                true,
            ),
            (r#"{"status":"success","mapper":"device"}"#, false),
            (
                r#"{"status":"success","response":["5521999999999@c.us"]}"#,
                false,
            ),
            (r#"{"status":"success","response":"5521999999999"}"#, false),
            (
                r#"{"status":"success","response":"5521999999999@c.us.evil"}"#,
                false,
            ),
            (
                r#"{"status":"success","response":{"phoneNumber":"5521999999999@c.us"}}"#,
                false,
            ),
            (
                r#"{"status":"success","response":"1234567890123456789012@c.us"}"#,
                false,
            ),
            (r#"{"status":"success","response":"#, false),
            ("[]", false),
            ("null", false),
        ];
        for (body, host) in cases {
            let reply = json(200, body);
            let err = if host {
                parse_host_device_reply(&reply)
            } else {
                parse_phone_number_reply(&reply)
            }
            .unwrap_err();
            assert_eq!(err.code(), "malformed", "{body}: {err}");
            assert!(
                err.to_string().starts_with("The server sent a reply"),
                "{err}"
            );
        }
        let missing = parse_host_device_reply(&json(200, r#"{"response":{}}"#)).unwrap_err();
        assert_eq!(missing, malformed("the reply has no phone number"));
        let odd = parse_phone_number_reply(&json(200, r#"{"response":"5521@lid"}"#)).unwrap_err();
        assert!(odd.to_string().contains("<digits>@c.us"), "{odd}");
        let long = parse_phone_number_reply(&json(
            200,
            &format!(r#"{{"response":"{}@c.us"}}"#, "1".repeat(21)),
        ))
        .unwrap_err();
        assert!(long.to_string().contains("5 to 20 digits"), "{long}");
        let html = HttpReply {
            status: 200,
            content_type: Some("text/html".into()),
            body: "<html></html>".into(),
        };
        assert_eq!(
            parse_host_device_reply(&html).unwrap_err().code(),
            "malformed"
        );
    }

    #[test]
    fn device_routes_map_not_connected_and_errors() {
        let not_active = json(404, NOT_ACTIVE);
        assert_eq!(
            parse_host_device_reply(&not_active),
            Err(ApiError::NotConnected)
        );
        assert_eq!(
            parse_phone_number_reply(&not_active),
            Err(ApiError::NotConnected)
        );
        assert_eq!(ApiError::NotConnected.code(), "not-connected");
        assert_eq!(
            ApiError::NotConnected.to_string(),
            "The session is not connected on the server."
        );
        // A server without the route: Express's 404 page is not "not connected".
        let no_route = HttpReply {
            status: 404,
            content_type: Some("text/html; charset=utf-8".into()),
            body: "<!DOCTYPE html><pre>Cannot GET /api/s/host-device</pre>".into(),
        };
        assert_eq!(
            parse_host_device_reply(&no_route).unwrap_err().code(),
            "malformed"
        );
        assert!(matches!(
            parse_phone_number_reply(&json(404, r#"{"status":"Other","message":"nope"}"#)),
            Err(ApiError::Server { status: 404, .. })
        ));
        for parse in [parse_host_device_reply, parse_phone_number_reply] {
            assert_eq!(
                parse(&json(
                    401,
                    r#"{"error":"Check that the Session and Token are correct"}"#
                )),
                Err(ApiError::Unauthorized)
            );
        }
        let failed = json(
            500,
            r#"{"status":"error","message":"Erro ao recuperar dados do telefone","error":{}}"#,
        );
        assert_eq!(
            parse_host_device_reply(&failed),
            Err(ApiError::Server {
                status: 500,
                message: "Erro ao recuperar dados do telefone".into()
            })
        );
        let failed = json(
            500,
            r#"{"status":"error","message":"Error retrieving phone number","error":{"level":"error"}}"#,
        );
        assert_eq!(
            parse_phone_number_reply(&failed),
            Err(ApiError::Server {
                status: 500,
                message: "Error retrieving phone number".into()
            })
        );
        assert_eq!(
            parse_phone_number_reply(&json(500, "{oops"))
                .unwrap_err()
                .code(),
            "malformed"
        );
    }

    #[test]
    fn account_serde_is_camel_case_and_round_trips() {
        let acc = account("5521999990001", Some("Loja Centro"));
        let v = serde_json::to_value(&acc).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"phone": "5521999990001", "name": "Loja Centro"})
        );
        assert_eq!(serde_json::from_value::<Account>(v).unwrap(), acc);
        let nameless: Account =
            serde_json::from_str(r#"{"phone":"5521999990001","name":null}"#).unwrap();
        assert_eq!(nameless, account("5521999990001", None));
    }

    #[test]
    fn show_all_sessions_keeps_only_this_extensions_ids() {
        let a = "session_m0abc_0000000000001";
        let b = "session_m0abd_0000000000002";
        let body = serde_json::json!({"response": ["mySession", a, "other-app", b, "session_BAD_x", a, 7]})
            .to_string();
        let ids = parse_show_all_reply(&json(200, &body)).unwrap();
        assert_eq!(
            ids,
            vec![SessionId::parse(a).unwrap(), SessionId::parse(b).unwrap()]
        );
        // §2.7's real bodies.
        assert_eq!(
            parse_show_all_reply(&json(200, r#"{"response":["mySession","otherSession"]}"#)),
            Ok(vec![])
        );
        assert_eq!(
            parse_show_all_reply(&json(200, r#"{"response":[]}"#)),
            Ok(vec![])
        );
        // The pre-2023 shape.
        let old = serde_json::json!({"response": [{"session": a, "token": "x"}, {"session": "mySession"}]})
            .to_string();
        assert_eq!(
            parse_show_all_reply(&json(200, &old)),
            Ok(vec![SessionId::parse(a).unwrap()])
        );
        let wrong = json(
            400,
            r#"{"response":false,"message":"The token is incorrect"}"#,
        );
        assert_eq!(parse_show_all_reply(&wrong), Err(ApiError::WrongSecret));
        for bad in [r#"{"response":false}"#, r#"{}"#, "[]", r#"{"response":"#] {
            assert_eq!(
                parse_show_all_reply(&json(200, bad)).unwrap_err().code(),
                "malformed",
                "{bad}"
            );
        }
        assert_eq!(
            parse_show_all_reply(&json(500, r#"{"message":"boom"}"#)),
            Err(ApiError::Server {
                status: 500,
                message: "boom".into()
            })
        );
    }
}
