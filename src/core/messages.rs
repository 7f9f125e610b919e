//! Typed, versioned messages between the extension's pages and the worker. Every message is
//! an object `{"v": PROTOCOL_VERSION, "type": ..., ...}`, decoded and validated on receipt.

use crate::core::api::{Account, PairingPhone, MAX_REPLY_BYTES};
use crate::core::index::{Colour, Label, LastError};
use crate::core::lock::Passphrase;
use crate::core::paint::Paint;
use crate::core::session::{Phase, TabView};
use crate::core::session_id::SessionId;
use crate::core::settings::{ClosedTab, Remember, SecretKey, ServerId, ServerUrl, StaleAfterDays};
use crate::core::status::ServerStatus;
use crate::core::storage::TabId;
use crate::core::text::Text;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;

/// 2: a popup names its tab once, when it subscribes. 3: sessions outlive tabs (attach,
/// detach, names, the Sessions page) and settings hold several servers.
pub const PROTOCOL_VERSION: u32 = 3;
/// Name of the long-lived port a popup opens to the worker.
pub const POPUP_PORT: &str = "wpp-tabs-popup";
/// Name of the long-lived port the Sessions page opens to the worker.
pub const SESSIONS_PORT: &str = "wpp-tabs-sessions";
/// Name of the long-lived port the Diagnostics page opens to the worker.
pub const DIAGNOSTICS_PORT: &str = "wpp-tabs-diagnostics";
/// An import carries a whole exported index.
pub const MAX_IMPORT_BYTES: usize = 1024 * 1024;
/// Requests from the extension's pages are small: anything larger is refused unread.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// A pushed view carries the QR, which can be as large as the largest reply the worker
/// accepts from the server, and a popup's first state carries it twice (in its view and its
/// paint); the rest is small.
const MAX_PUSH_BYTES: usize = 2 * MAX_REPLY_BYTES + 16 * 1024;

/// Popup -> worker, over the popup port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum PopupRequest {
    /// Bind this port to a tab, once, and send its state now and on every change.
    Subscribe { tab_id: TabId },
    /// Start pairing, refresh an expired QR, or restart a stuck session of the bound tab.
    /// A tab without a session gets a new one, on `server` or the default server.
    Pair {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<ServerId>,
    },
    /// Pair the bound tab's session by phone number instead of a QR: the server gives a code
    /// to type on the phone. The number is checked on receipt ([`PairingPhone`]). A tab
    /// without a session gets a new one, as with `pair`.
    PairByPhone {
        phone: PairingPhone,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<ServerId>,
    },
    /// Back to pairing the bound tab's session with a QR code.
    PairByQr,
    /// Log out the bound tab's session.
    Logout,
    /// Attach a session that no tab holds to the bound tab, which holds none.
    Attach { session_id: SessionId },
    /// Detach the bound tab's session: it keeps running and stays listed.
    Detach,
    /// Rename or recolour the bound tab's session.
    Describe {
        #[serde(default)]
        label: Option<Label>,
        #[serde(default)]
        colour: Option<Colour>,
    },
    /// The passphrase of `server`'s locked secret key (the one the tab needs).
    Unlock {
        server: ServerId,
        passphrase: Passphrase,
    },
}

/// What the Sessions page can do to the sessions it selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionAction {
    /// Open a new tab holding the session.
    Attach,
    Detach,
    /// Unlink the account and end the session on the server; forget it here.
    Logout,
    /// close-session: the server frees its browser, the login is kept.
    Close,
    /// Start it again (after close, or a stuck start).
    Restart,
    /// Forget it here, without telling the server.
    Forget,
    FocusTab,
}

/// The most rows one bulk action names.
pub const MAX_BULK: usize = 500;

/// Sessions page -> worker, over the Sessions port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum SessionsRequest {
    /// Send the list now and on every change.
    Subscribe,
    Act {
        action: SessionAction,
        ids: Vec<SessionId>,
    },
    Describe {
        id: SessionId,
        #[serde(default)]
        label: Option<Label>,
        #[serde(default)]
        colour: Option<Colour>,
    },
    /// Open one tab per session that no tab holds.
    OpenAll,
    /// Ask for the export file's text (pushed back as `exported`).
    Export,
    Import {
        text: String,
    },
    /// "Close and forget stale sessions", confirmed for the stale sessions the page showed:
    /// each of them that is still stale is closed on its server (best effort) and forgotten.
    ForgetStale {
        ids: Vec<SessionId>,
    },
}

/// Worker -> popup, over the popup port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum WorkerPush {
    State {
        view: Box<TabView>,
        /// The first state a popup gets also carries its paint, for `popup.js` to show before
        /// the popup's Wasm has loaded (see [`crate::core::paint`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paint: Option<Vec<Paint>>,
    },
    Sessions {
        view: SessionsView,
    },
    /// The outcome of something the page asked for.
    Notice {
        ok: bool,
        message: Text,
    },
    Exported {
        text: String,
    },
    /// The Diagnostics page's view (already redacted).
    Diagnostics {
        view: Box<crate::core::diagnostics::DiagnosticsView>,
    },
}

/// What the popup reads of a [`WorkerPush`]: the same wire, with only the popup's own pushes
/// decoded, so that the popup's Wasm module holds no other page's decoder. Each page has its
/// own ([`SessionsPush`], [`DiagnosticsPush`]): another page's push is `Other` (its fields
/// unread), an unknown one is refused as [`WorkerPush`] refuses it. Decoded from the JSON
/// value by hand ([`push_fields`]): serde's derive has no catch-all for an externally tagged
/// enum, the form the message enums derive (see `wire`).
#[derive(Clone, PartialEq)]
pub enum PopupPush {
    State { view: Box<TabView> },
    Notice { ok: bool, message: Text },
    Other,
}

/// What the Sessions page reads of a [`WorkerPush`] (see [`PopupPush`]).
#[derive(Clone, PartialEq)]
pub enum SessionsPush {
    Sessions { view: SessionsView },
    Notice { ok: bool, message: Text },
    Exported { text: String },
    Other,
}

/// What the Diagnostics page reads of a [`WorkerPush`] (see [`PopupPush`]).
#[derive(Clone, PartialEq)]
pub enum DiagnosticsPush {
    Diagnostics {
        view: Box<crate::core::diagnostics::DiagnosticsView>,
    },
    Notice {
        ok: bool,
        message: Text,
    },
    Other,
}

/// The `type` of every [`WorkerPush`], as on the wire.
const PUSH_TYPES: &[&str] = &["state", "sessions", "notice", "exported", "diagnostics"];

/// A push's `type` and its other fields. A `type` that is no [`WorkerPush`]'s is refused.
fn push_fields<'de, D: serde::Deserializer<'de>>(
    push: D,
) -> Result<(String, serde_json::Map<String, serde_json::Value>), D::Error> {
    use serde::de::Error;
    let serde_json::Value::Object(mut fields) = serde_json::Value::deserialize(push)? else {
        return Err(D::Error::custom("a push is an object"));
    };
    match fields.remove("type") {
        Some(serde_json::Value::String(tag)) if PUSH_TYPES.contains(&tag.as_str()) => {
            Ok((tag, fields))
        }
        Some(serde_json::Value::String(tag)) => Err(D::Error::unknown_variant(&tag, PUSH_TYPES)),
        _ => Err(D::Error::missing_field("type")),
    }
}

/// Field `name` of a push, as serde's derive reads it (an absent `Option` is `None`).
fn push_field<T: DeserializeOwned, E: serde::de::Error>(
    fields: &mut serde_json::Map<String, serde_json::Value>,
    name: &'static str,
) -> Result<T, E> {
    match fields.remove(name) {
        Some(value) => serde_json::from_value(value).map_err(E::custom),
        None => serde_json::from_value(serde_json::Value::Null).map_err(|_| E::missing_field(name)),
    }
}

impl<'de> Deserialize<'de> for PopupPush {
    fn deserialize<D: serde::Deserializer<'de>>(push: D) -> Result<Self, D::Error> {
        let (tag, mut fields) = push_fields(push)?;
        Ok(match tag.as_str() {
            "state" => PopupPush::State {
                view: push_field(&mut fields, "view")?,
            },
            "notice" => PopupPush::Notice {
                ok: push_field(&mut fields, "ok")?,
                message: push_field(&mut fields, "message")?,
            },
            _ => PopupPush::Other,
        })
    }
}

impl<'de> Deserialize<'de> for SessionsPush {
    fn deserialize<D: serde::Deserializer<'de>>(push: D) -> Result<Self, D::Error> {
        let (tag, mut fields) = push_fields(push)?;
        Ok(match tag.as_str() {
            "sessions" => SessionsPush::Sessions {
                view: push_field(&mut fields, "view")?,
            },
            "notice" => SessionsPush::Notice {
                ok: push_field(&mut fields, "ok")?,
                message: push_field(&mut fields, "message")?,
            },
            "exported" => SessionsPush::Exported {
                text: push_field(&mut fields, "text")?,
            },
            _ => SessionsPush::Other,
        })
    }
}

impl<'de> Deserialize<'de> for DiagnosticsPush {
    fn deserialize<D: serde::Deserializer<'de>>(push: D) -> Result<Self, D::Error> {
        let (tag, mut fields) = push_fields(push)?;
        Ok(match tag.as_str() {
            "diagnostics" => DiagnosticsPush::Diagnostics {
                view: push_field(&mut fields, "view")?,
            },
            "notice" => DiagnosticsPush::Notice {
                ok: push_field(&mut fields, "ok")?,
                message: push_field(&mut fields, "message")?,
            },
            _ => DiagnosticsPush::Other,
        })
    }
}

/// Diagnostics page -> worker, over the Diagnostics port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DiagnosticsRequest {
    /// Send the view now, and again whenever the log changes.
    Subscribe,
    /// Send the view now.
    Refresh,
}

/// One session as the Sessions page and the popup's attach list show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRow {
    pub id: SessionId,
    /// `false`: only the server's `show-all-sessions` lists it.
    pub known: bool,
    pub server: Option<ServerId>,
    pub label: String,
    pub colour: Option<Colour>,
    pub account: Option<Account>,
    pub status: Option<ServerStatus>,
    pub phase: Option<Phase>,
    pub status_text: Text,
    pub error: Option<Text>,
    pub tab: Option<TabId>,
    pub last_seen_connected: Option<f64>,
    pub busy: bool,
    /// Not connected for longer than the settings allow (`SessionEntry::is_stale`).
    #[serde(default)]
    pub stale: bool,
    /// Monitoring, from the index entry: connected time (ms), drops, the last error.
    #[serde(default)]
    pub connected_ms: f64,
    #[serde(default)]
    pub drops: u32,
    #[serde(default)]
    pub last_error: Option<LastError>,
}

impl SessionRow {
    /// Every catalogue message the row carries.
    pub fn texts(&self) -> impl Iterator<Item = &Text> {
        std::iter::once(&self.status_text).chain(&self.error)
    }

    /// A session the server lists but this extension does not know.
    pub fn unknown(id: SessionId, server: ServerId) -> SessionRow {
        SessionRow {
            label: id.as_str().to_owned(),
            id,
            known: false,
            server: Some(server),
            colour: None,
            account: None,
            status: None,
            phase: None,
            status_text: Text::new("status_unknown_session"),
            error: None,
            tab: None,
            last_seen_connected: None,
            busy: false,
            stale: false,
            connected_ms: 0.0,
            drops: 0,
            last_error: None,
        }
    }
}

/// One server's sessions on the Sessions page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerGroup {
    /// `None`: sessions whose server was removed from the settings (the page names that group).
    pub id: Option<ServerId>,
    /// The server's name, as the user gave it; empty for the removed servers' group.
    pub name: String,
    /// The server's URL, as a [`ServerUrl`] of the settings writes it: shown, never
    /// requested, so the page does not parse it again (the parser, host normalisation and
    /// IPv6 included, would be a sizeable part of the page's Wasm module).
    pub url: Option<String>,
    /// Why the server's own list could not be read.
    pub error: Option<Text>,
    pub sessions: Vec<SessionRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionsView {
    pub groups: Vec<ServerGroup>,
    /// The setting that makes a row stale, for the page to say so.
    #[serde(default)]
    pub stale_after_days: StaleAfterDays,
}

/// Options page -> worker, as one-off `runtime.sendMessage` calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum OptionsRequest {
    GetSettings,
    /// Adds a server (`id: None`) or changes one. `secret_key: None` keeps the secret already
    /// saved, unless the URL changed: a secret goes only to the server it was entered for.
    SaveServer {
        #[serde(default)]
        id: Option<ServerId>,
        name: String,
        server_url: ServerUrl,
        secret_key: Option<SecretKey>,
        /// Earlier versions sent `rememberSecret: bool` (`true`: always).
        #[serde(alias = "rememberSecret")]
        remember: Remember,
        #[serde(default)]
        allow_insecure_http: bool,
        #[serde(default)]
        make_default: bool,
    },
    RemoveServer {
        id: ServerId,
    },
    SavePreferences {
        closed_tab: ClosedTab,
        notify_drops: bool,
        stale_after_days: StaleAfterDays,
        auto_forget_stale: bool,
    },
    /// `secret_key: None` tests with the secret saved for server `id`, if the URL is its own.
    TestConnection {
        #[serde(default)]
        id: Option<ServerId>,
        server_url: ServerUrl,
        secret_key: Option<SecretKey>,
        #[serde(default)]
        allow_insecure_http: bool,
    },
    /// Locks server `id`'s remembered secret key with `passphrase` (or changes the
    /// passphrase of a key that is unlocked): from then on it is stored only sealed.
    SetPassphrase {
        id: ServerId,
        passphrase: Passphrase,
    },
    /// Removes server `id`'s unlocked key from memory: its passphrase is needed again.
    LockNow {
        id: ServerId,
    },
}

/// A server as the options page shows it: never its secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSummary {
    pub id: ServerId,
    pub name: String,
    pub server_url: ServerUrl,
    pub remember: Remember,
    /// When the remembered key will be forgotten (ms since the epoch).
    pub remember_until: Option<f64>,
    pub has_secret: bool,
    /// The remembered key is sealed with a passphrase; `unlocked`: it is open in memory.
    pub locked: bool,
    pub unlocked: bool,
    pub allow_insecure_http: bool,
    /// Sessions in the index that belong to it.
    pub sessions: u32,
}

/// Worker -> options page. A secret itself is never sent back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum OptionsReply {
    Settings {
        servers: Vec<ServerSummary>,
        default_server: ServerId,
        closed_tab: ClosedTab,
        notify_drops: bool,
        stale_after_days: StaleAfterDays,
        auto_forget_stale: bool,
    },
    Saved {
        id: Option<ServerId>,
    },
    Connection {
        ok: bool,
        message: Text,
    },
    Error {
        message: Text,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageError {
    TooLarge,
    TooDeep,
    NotAnObject,
    WrongVersion(Option<u64>),
    Invalid(String),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::TooLarge => f.write_str("message too large"),
            MessageError::TooDeep => f.write_str("message nested too deeply"),
            MessageError::NotAnObject => f.write_str("message is not an object"),
            MessageError::WrongVersion(Some(v)) => {
                write!(f, "message version {v}, expected {PROTOCOL_VERSION}")
            }
            MessageError::WrongVersion(None) => {
                write!(f, "message has no version, expected {PROTOCOL_VERSION}")
            }
            MessageError::Invalid(why) => write!(f, "invalid message: {why}"),
        }
    }
}

impl std::error::Error for MessageError {}

/// Who is on the other end of a message or port, as the browser reports it.
pub struct Sender<'a> {
    pub extension_id: Option<&'a str>,
    pub url: Option<&'a str>,
}

/// Only the extension's own pages may talk to the worker: same extension ID, and a page
/// under the extension's own base URL (`chrome-extension://<id>/`, `moz-extension://<uuid>/`).
pub fn is_own_page(sender: &Sender, own_id: Option<&str>, own_base_url: &str) -> bool {
    sender.extension_id.is_some()
        && sender.extension_id == own_id
        && !own_base_url.is_empty()
        && sender.url.is_some_and(|url| url.starts_with(own_base_url))
}

/// Nesting deeper than this is refused before parsing: no message of ours nests past 3.
const MAX_DEPTH: usize = 16;

/// Decodes a message as it arrives, as JSON text: its size and nesting are checked before
/// anything is parsed, so a hostile message costs neither memory nor stack.
pub fn decode_text<T: DeserializeOwned + Validate>(text: &str) -> Result<T, MessageError> {
    if text.len() > T::MAX_BYTES {
        return Err(MessageError::TooLarge);
    }
    if nesting_exceeds(text, MAX_DEPTH) {
        return Err(MessageError::TooDeep);
    }
    let value = serde_json::from_str(text).map_err(|e| MessageError::Invalid(e.to_string()))?;
    decode_body(value)
}

/// Whether JSON `text` nests arrays and objects deeper than `max`, by one pass without
/// recursion (brackets inside strings do not count).
fn nesting_exceeds(text: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in text.bytes() {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            (false, _, _) => {}
        }
    }
    false
}

/// Checks the envelope, then decodes and validates the body.
pub fn decode<T: DeserializeOwned + Validate>(value: serde_json::Value) -> Result<T, MessageError> {
    if value.to_string().len() > T::MAX_BYTES {
        return Err(MessageError::TooLarge);
    }
    decode_body(value)
}

fn decode_body<T: DeserializeOwned + Validate>(
    value: serde_json::Value,
) -> Result<T, MessageError> {
    let serde_json::Value::Object(mut map) = value else {
        return Err(MessageError::NotAnObject);
    };
    match map.remove("v").map(|v| v.as_u64()) {
        Some(Some(v)) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => return Err(MessageError::WrongVersion(v)),
        None => return Err(MessageError::WrongVersion(None)),
    }
    let body =
        T::deserialize(wire::Tagged(map)).map_err(|e| MessageError::Invalid(e.to_string()))?;
    body.validate()?;
    Ok(body)
}

/// Wraps a body in the versioned envelope, its variant's name as `type` beside its fields.
pub fn encode<T: Serialize>(body: &T) -> serde_json::Value {
    use serde_json::Value;
    let mut map = match serde_json::to_value(body).expect("message types serialize") {
        // A unit variant, as serde writes it: its name.
        Value::String(tag) => {
            // Inserted, not collected: a collected map sorts its entries, whose code is large.
            let mut map = serde_json::Map::new();
            map.insert("type".to_owned(), Value::String(tag));
            map
        }
        // A struct variant: `{name: {fields}}`.
        Value::Object(outer) if outer.len() == 1 => {
            let (tag, fields) = outer.into_iter().next().expect("one entry");
            let Value::Object(mut fields) = fields else {
                unreachable!("every message variant is a unit or a struct")
            };
            fields.insert("type".to_owned(), Value::String(tag));
            fields
        }
        _ => unreachable!("a message is an enum"),
    };
    map.insert("v".into(), PROTOCOL_VERSION.into());
    Value::Object(map)
}

/// The wire's `{"type": name, ...fields}`, read by serde's derive for an externally tagged
/// enum (its `type` is the variant, the rest its fields) and, for a decoder of its own, as the
/// object it is. serde's own reading of an internally tagged enum first copies every field into
/// its generic `Content`, whose code was a large part of each module; this reads the fields
/// straight from the `Value`.
mod wire {
    use serde::de::{self, Error as _, IntoDeserializer};
    use serde::Deserializer;
    use serde_json::{Error, Map, Value};

    pub struct Tagged(pub Map<String, Value>);

    impl<'de> Deserializer<'de> for Tagged {
        type Error = Error;

        fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            Value::Object(self.0).deserialize_any(visitor)
        }

        fn deserialize_enum<V: de::Visitor<'de>>(
            mut self,
            _name: &'static str,
            _variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            let tag = match self.0.remove("type") {
                Some(Value::String(tag)) => tag,
                Some(_) => return Err(Error::custom("`type` is not a string")),
                None => return Err(Error::missing_field("type")),
            };
            visitor.visit_enum(Variant(tag, self.0))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map struct
            identifier ignored_any
        }
    }

    /// A variant's name and its fields.
    struct Variant(String, Map<String, Value>);

    impl<'de> de::EnumAccess<'de> for Variant {
        type Error = Error;
        type Variant = Fields;

        fn variant_seed<S: de::DeserializeSeed<'de>>(
            self,
            seed: S,
        ) -> Result<(S::Value, Fields), Error> {
            let name = seed.deserialize(IntoDeserializer::<Error>::into_deserializer(self.0))?;
            Ok((name, Fields(self.1)))
        }
    }

    struct Fields(Map<String, Value>);

    impl<'de> de::VariantAccess<'de> for Fields {
        type Error = Error;

        /// Other fields beside a unit variant's `type` are ignored, as a struct's unknown ones.
        fn unit_variant(self) -> Result<(), Error> {
            Ok(())
        }

        fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
            self,
            seed: S,
        ) -> Result<S::Value, Error> {
            seed.deserialize(Value::Object(self.0))
        }

        fn tuple_variant<V: de::Visitor<'de>>(
            self,
            _len: usize,
            _visitor: V,
        ) -> Result<V::Value, Error> {
            Err(Error::custom("no message variant is a tuple"))
        }

        fn struct_variant<V: de::Visitor<'de>>(
            self,
            _fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            Value::Object(self.0).deserialize_any(visitor)
        }
    }
}

/// Checks what the types alone cannot, and bounds each message type's size.
pub trait Validate {
    const MAX_BYTES: usize = MAX_REQUEST_BYTES;

    fn validate(&self) -> Result<(), MessageError> {
        Ok(())
    }
}

impl Validate for PopupRequest {}
impl Validate for DiagnosticsRequest {}
impl Validate for SessionsRequest {
    const MAX_BYTES: usize = MAX_IMPORT_BYTES;

    fn validate(&self) -> Result<(), MessageError> {
        match self {
            SessionsRequest::Act { ids, .. } | SessionsRequest::ForgetStale { ids }
                if ids.is_empty() || ids.len() > MAX_BULK =>
            {
                Err(MessageError::Invalid(format!(
                    "an action names 1 to {MAX_BULK} sessions"
                )))
            }
            _ => Ok(()),
        }
    }
}
impl Validate for OptionsRequest {}
impl Validate for OptionsReply {
    fn validate(&self) -> Result<(), MessageError> {
        match self {
            OptionsReply::Connection { message, .. } | OptionsReply::Error { message } => {
                valid_texts(std::iter::once(message))
            }
            _ => Ok(()),
        }
    }
}
impl Validate for WorkerPush {
    const MAX_BYTES: usize = MAX_PUSH_BYTES;
}
impl Validate for PopupPush {
    const MAX_BYTES: usize = MAX_PUSH_BYTES;

    fn validate(&self) -> Result<(), MessageError> {
        match self {
            PopupPush::State { view } => valid_texts(view.texts()),
            PopupPush::Notice { message, .. } => valid_texts(std::iter::once(message)),
            PopupPush::Other => Ok(()),
        }
    }
}
impl Validate for SessionsPush {
    const MAX_BYTES: usize = MAX_PUSH_BYTES;

    fn validate(&self) -> Result<(), MessageError> {
        match self {
            SessionsPush::Sessions { view } => valid_texts(view.groups.iter().flat_map(|g| {
                g.error
                    .iter()
                    .chain(g.sessions.iter().flat_map(SessionRow::texts))
            })),
            SessionsPush::Notice { message, .. } => valid_texts(std::iter::once(message)),
            SessionsPush::Exported { .. } | SessionsPush::Other => Ok(()),
        }
    }
}

/// A page asks the browser only for keys a catalogue may hold.
fn valid_texts<'a>(mut texts: impl Iterator<Item = &'a Text>) -> Result<(), MessageError> {
    match texts.find(|t| !t.is_valid()) {
        Some(text) => Err(MessageError::Invalid(format!(
            "not a message key: {:?}",
            text.key
        ))),
        None => Ok(()),
    }
}
impl Validate for DiagnosticsPush {
    const MAX_BYTES: usize = MAX_PUSH_BYTES;

    fn validate(&self) -> Result<(), MessageError> {
        match self {
            DiagnosticsPush::Notice { message, .. } => valid_texts(std::iter::once(message)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn popup_requests_round_trip_through_the_envelope() {
        let tab_id = TabId::new(5).unwrap();
        for request in [
            PopupRequest::Subscribe { tab_id },
            PopupRequest::Pair { server: None },
            PopupRequest::Logout,
        ] {
            let wire = encode(&request);
            assert_eq!(wire["v"], PROTOCOL_VERSION);
            assert_eq!(decode::<PopupRequest>(wire), Ok(request));
        }
        assert_eq!(
            encode(&PopupRequest::Subscribe { tab_id }),
            json!({"v": 3, "type": "subscribe", "tabId": 5})
        );
        assert_eq!(
            encode(&PopupRequest::Pair { server: None }),
            json!({"v": 3, "type": "pair"})
        );
    }

    /// The wire is read without serde's `Content` (see `wire`), as its derive read it: a
    /// struct variant's absent optional fields, a unit variant's stray ones, and what is
    /// refused.
    #[test]
    fn the_type_names_the_variant_and_the_rest_are_its_fields() {
        let read = |v: Value| decode::<PopupRequest>(v);
        assert_eq!(
            read(json!({"v": 3, "type": "pair"})),
            Ok(PopupRequest::Pair { server: None })
        );
        assert_eq!(
            read(json!({"v": 3, "type": "describe", "colour": "teal", "stray": 1})),
            Ok(PopupRequest::Describe {
                label: None,
                colour: Some(Colour::Teal)
            })
        );
        assert_eq!(
            read(json!({"v": 3, "type": "logout", "tabId": 9})),
            Ok(PopupRequest::Logout)
        );
        let invalid = |v: Value| match read(v) {
            Err(MessageError::Invalid(why)) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(invalid(json!({"v": 3, "tabId": 1})), "missing field `type`");
        assert_eq!(
            invalid(json!({"v": 3, "type": 7})),
            "`type` is not a string"
        );
        assert!(invalid(json!({"v": 3, "type": "reboot"})).contains("unknown variant `reboot`"));
        assert!(invalid(json!({"v": 3, "type": "subscribe"})).contains("missing field `tabId`"));
        assert!(
            invalid(json!({"v": 3, "type": "subscribe", "tabId": "five"})).contains("invalid type")
        );
    }

    #[test]
    fn pairing_by_phone_carries_a_number_checked_on_receipt() {
        let wire = json!({"v": 3, "type": "pairByPhone", "phone": "+55 (21) 99999-9999"});
        let request = decode::<PopupRequest>(wire).unwrap();
        let phone = PairingPhone::parse("5521999999999").unwrap();
        assert_eq!(
            request,
            PopupRequest::PairByPhone {
                phone: phone.clone(),
                server: None
            }
        );
        assert_eq!(
            encode(&request),
            json!({"v": 3, "type": "pairByPhone", "phone": "5521999999999"})
        );
        assert_eq!(
            decode::<PopupRequest>(json!({"v": 3, "type": "pairByQr"})),
            Ok(PopupRequest::PairByQr)
        );
        for bad in [
            json!("12345"),
            json!("5521 9999x9999"),
            json!(5521999999999u64),
            json!(null),
        ] {
            let wire = json!({"v": 3, "type": "pairByPhone", "phone": bad});
            assert!(
                matches!(decode::<PopupRequest>(wire), Err(MessageError::Invalid(_))),
                "{bad}"
            );
        }
        let err =
            decode::<PopupRequest>(json!({"v": 3, "type": "pairByPhone", "phone": "0219999"}))
                .unwrap_err()
                .to_string();
        assert!(err.contains("phone_error_leading_zero"), "{err}");
    }

    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        let cases = [
            (json!("subscribe"), MessageError::NotAnObject),
            (json!(null), MessageError::NotAnObject),
            (
                json!({"type": "subscribe", "tabId": 1}),
                MessageError::WrongVersion(None),
            ),
            (
                json!({"v": 1, "type": "subscribe", "tabId": 1}),
                MessageError::WrongVersion(Some(1)),
            ),
            (
                json!({"v": "2", "type": "subscribe", "tabId": 1}),
                MessageError::WrongVersion(None),
            ),
        ];
        for (wire, expected) in cases {
            assert_eq!(
                decode::<PopupRequest>(wire.clone()),
                Err(expected),
                "{wire}"
            );
        }
        for wire in [
            json!({"v": 3, "type": "explode", "tabId": 1}),
            json!({"v": 3, "type": "subscribe"}),
            json!({"v": 3, "type": "subscribe", "tabId": "1"}),
            json!({"v": 3, "type": "subscribe", "tabId": -3}),
            json!({"v": 3, "type": "subscribe", "tabId": 1.5}),
            json!({"v": 3, "type": "subscribe", "tabId": 4_294_967_296_i64}),
        ] {
            assert!(
                matches!(
                    decode::<PopupRequest>(wire.clone()),
                    Err(MessageError::Invalid(_))
                ),
                "{wire}"
            );
        }
        assert_eq!(
            MessageError::WrongVersion(Some(1)).to_string(),
            "message version 1, expected 3"
        );
        assert_eq!(
            MessageError::WrongVersion(None).to_string(),
            "message has no version, expected 3"
        );
        let huge = json!({"v": 3, "type": "subscribe", "tabId": 1, "pad": "x".repeat(20_000)});
        assert_eq!(decode::<PopupRequest>(huge), Err(MessageError::TooLarge));
    }

    #[test]
    fn size_and_nesting_are_checked_before_parsing() {
        // A megabyte of nesting, within a push's size: far past serde_json's own limit, and
        // past any stack if it were decoded recursively.
        let deep = format!("{}1{}", "[".repeat(1 << 19), "]".repeat(1 << 19));
        assert_eq!(decode_text::<WorkerPush>(&deep), Err(MessageError::TooDeep));
        let deep_small = format!(
            "{{\"v\":3,\"type\":\"pair\",\"x\":{}1{}}}",
            "[".repeat(20),
            "]".repeat(20)
        );
        assert_eq!(
            decode_text::<PopupRequest>(&deep_small),
            Err(MessageError::TooDeep)
        );
        // Brackets inside strings are text, not nesting.
        let text = format!(r#"{{"v":3,"type":"pair","note":"{}"}}"#, "[".repeat(100));
        assert_eq!(
            decode_text::<PopupRequest>(&text),
            Ok(PopupRequest::Pair { server: None })
        );
        let escaped = r#"{"v":3,"type":"pair","note":"\"[[[[[[[[[[[[[[[[[[[[[["}"#;
        assert_eq!(
            decode_text::<PopupRequest>(escaped),
            Ok(PopupRequest::Pair { server: None })
        );
        let big = format!(
            r#"{{"v":3,"type":"pair","pad":"{}"}}"#,
            "x".repeat(MAX_REQUEST_BYTES)
        );
        assert_eq!(
            decode_text::<PopupRequest>(&big),
            Err(MessageError::TooLarge)
        );
        assert!(matches!(
            decode_text::<PopupRequest>("{"),
            Err(MessageError::Invalid(_))
        ));
        assert_eq!(
            decode_text::<PopupRequest>("null"),
            Err(MessageError::NotAnObject)
        );
    }

    /// The largest QR the worker accepts from the server (a reply of `MAX_REPLY_BYTES`)
    /// must reach the popup; it once was refused above 16 KiB.
    #[test]
    fn a_push_carries_a_qr_as_large_as_the_largest_accepted_reply() {
        use crate::core::session::SessionState;
        use crate::core::timings::Timings;
        let prefix = "data:image/png;base64,";
        let qr = format!("{prefix}{}", "A".repeat(MAX_REPLY_BYTES - prefix.len()));
        let mut state = SessionState::new(Timings::SHIPPED);
        state.starting(0.0);
        state.observe(
            crate::core::api::StatusReply {
                status: crate::core::status::ServerStatus::QrCode,
                qr: Some(qr.clone()),
            },
            1.0,
        );
        let view = state.view(None, 1.0);
        // A popup's first state, which also carries the paint, and any later one.
        for paint in [Some(crate::core::paint::paint(&view)), None] {
            let push = WorkerPush::State {
                view: Box::new(view.clone()),
                paint,
            };
            let text = encode(&push).to_string();
            let decoded = decode_text::<PopupPush>(&text).expect("the push is accepted");
            let PopupPush::State { view } = decoded else {
                panic!("a state push")
            };
            assert_eq!(view.qr.as_deref(), Some(qr.as_str()));
        }
        // Requests from pages stay small.
        let big_request = json!({"v": 3, "type": "pair", "pad": "x".repeat(MAX_REQUEST_BYTES)});
        assert_eq!(
            decode::<PopupRequest>(big_request),
            Err(MessageError::TooLarge)
        );
    }

    #[test]
    fn options_requests_validate_url_and_secret_on_receipt() {
        let ok = json!({"v": 3, "type": "saveServer", "name": "Main", "serverUrl": "http://127.0.0.1:21465/",
                        "secretKey": "THISISMYSECURETOKEN", "rememberSecret": false});
        match decode::<OptionsRequest>(ok).unwrap() {
            OptionsRequest::SaveServer {
                id,
                server_url,
                secret_key,
                remember,
                ..
            } => {
                assert_eq!(id, None);
                assert_eq!(server_url.as_str(), "http://127.0.0.1:21465");
                assert_eq!(secret_key.unwrap().expose(), "THISISMYSECURETOKEN");
                assert_eq!(remember, Remember::Session, "rememberSecret: false");
            }
            other => panic!("{other:?}"),
        }
        let bad_url = json!({"v": 3, "type": "testConnection", "serverUrl": "file:///etc"});
        let err = decode::<OptionsRequest>(bad_url).unwrap_err().to_string();
        assert!(err.contains("Server URL"), "{err}");
        let keep_secret = json!({"v": 3, "type": "saveServer", "id": "s2", "name": "B", "serverUrl": "http://h", "secretKey": null, "rememberSecret": true});
        assert!(decode::<OptionsRequest>(keep_secret).is_ok());
        let bad_id = json!({"v": 3, "type": "removeServer", "id": "server-1"});
        assert!(decode::<OptionsRequest>(bad_id).is_err());
    }

    #[test]
    fn sessions_requests_are_bounded_and_validated() {
        let act = json!({"v": 3, "type": "act", "action": "focus-tab", "ids": ["session_a_b"]});
        assert_eq!(
            decode::<SessionsRequest>(act),
            Ok(SessionsRequest::Act {
                action: SessionAction::FocusTab,
                ids: vec![SessionId::parse("session_a_b").unwrap()]
            })
        );
        let none = json!({"v": 3, "type": "act", "action": "logout", "ids": []});
        assert!(decode::<SessionsRequest>(none).is_err());
        let bad_id = json!({"v": 3, "type": "act", "action": "logout", "ids": ["../x"]});
        assert!(decode::<SessionsRequest>(bad_id).is_err());
        let bad_label = json!({"v": 3, "type": "describe", "id": "session_a_b", "label": "  "});
        assert!(decode::<SessionsRequest>(bad_label).is_err());
        // An import may carry a whole index, far over a popup request's bound.
        let import = json!({"v": 3, "type": "import", "text": "x".repeat(200_000)});
        assert!(decode::<SessionsRequest>(import).is_ok());
        let too_big = json!({"v": 3, "type": "import", "text": "x".repeat(MAX_IMPORT_BYTES)});
        assert_eq!(
            decode::<SessionsRequest>(too_big),
            Err(MessageError::TooLarge)
        );
    }

    #[test]
    fn forget_stale_and_the_stale_setting_are_validated_on_receipt() {
        let ok = json!({"v": 3, "type": "forgetStale", "ids": ["session_a_b"]});
        assert_eq!(
            decode::<SessionsRequest>(ok),
            Ok(SessionsRequest::ForgetStale {
                ids: vec![SessionId::parse("session_a_b").unwrap()]
            })
        );
        let none = json!({"v": 3, "type": "forgetStale", "ids": []});
        assert!(decode::<SessionsRequest>(none).is_err());
        let too_many = json!({"v": 3, "type": "forgetStale",
                              "ids": vec!["session_a_b"; MAX_BULK + 1]});
        assert!(decode::<SessionsRequest>(too_many).is_err());
        let prefs = |days: Value| {
            json!({"v": 3, "type": "savePreferences", "closedTab": "keepRunning",
                   "notifyDrops": true, "staleAfterDays": days, "autoForgetStale": true})
        };
        assert!(decode::<OptionsRequest>(prefs(json!(1))).is_ok());
        assert!(decode::<OptionsRequest>(prefs(json!(3650))).is_ok());
        for bad in [
            json!(0),
            json!(3651),
            json!(-1),
            json!(1.5),
            json!("30"),
            json!(null),
        ] {
            assert!(
                decode::<OptionsRequest>(prefs(bad.clone())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_the_extensions_own_pages_are_trusted() {
        let base = "chrome-extension://abc/";
        let page = |id: Option<&'static str>, url: Option<&'static str>| Sender {
            extension_id: id,
            url,
        };
        let own = page(Some("abc"), Some("chrome-extension://abc/popup.html"));
        assert!(is_own_page(&own, Some("abc"), base));
        for other in [
            page(Some("evil"), Some("chrome-extension://abc/popup.html")),
            page(Some("abc"), Some("https://web.whatsapp.com/")),
            page(Some("abc"), None),
            page(None, Some("chrome-extension://abc/popup.html")),
            page(Some("abc"), Some("chrome-extension://abcd/popup.html")),
        ] {
            assert!(!is_own_page(&other, Some("abc"), base), "{:?}", other.url);
        }
        assert!(!is_own_page(&own, None, base));
        assert!(!is_own_page(&own, Some("abc"), ""));
    }

    #[test]
    fn replies_never_carry_the_secret() {
        let reply = OptionsReply::Settings {
            servers: vec![ServerSummary {
                id: ServerId::parse("s1").unwrap(),
                name: "Main".into(),
                server_url: ServerUrl::parse("http://h").unwrap(),
                remember: Remember::Days7,
                remember_until: Some(1.8e12),
                has_secret: true,
                locked: true,
                unlocked: false,
                allow_insecure_http: true,
                sessions: 2,
            }],
            default_server: ServerId::parse("s1").unwrap(),
            closed_tab: ClosedTab::KeepRunning,
            notify_drops: true,
            stale_after_days: StaleAfterDays::default(),
            auto_forget_stale: false,
        };
        assert_eq!(
            encode(&reply),
            json!({"v": 3, "type": "settings", "servers": [{"id": "s1", "name": "Main",
                   "serverUrl": "http://h", "remember": "days7", "rememberUntil": 1.8e12,
                   "hasSecret": true, "locked": true, "unlocked": false,
                   "allowInsecureHttp": true, "sessions": 2}], "defaultServer": "s1",
                   "closedTab": "keepRunning", "notifyDrops": true, "staleAfterDays": 30,
                   "autoForgetStale": false})
        );
    }

    #[test]
    fn lock_requests_validate_the_passphrase_and_never_print_it() {
        let unlock = |p: &str| json!({"v": 3, "type": "unlock", "server": "s1", "passphrase": p});
        match decode::<PopupRequest>(unlock("correct horse battery")) {
            Ok(PopupRequest::Unlock { server, passphrase }) => {
                assert_eq!(server, ServerId::first());
                assert_eq!(passphrase.expose(), "correct horse battery");
                assert!(!format!("{passphrase:?}").contains("horse"));
            }
            other => panic!("{other:?}"),
        }
        let err = decode::<PopupRequest>(unlock("short1"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("8 to 1024") && !err.contains("short1"),
            "{err}"
        );
        assert!(decode::<PopupRequest>(unlock(&"x".repeat(1025))).is_err());
        let set = json!({"v": 3, "type": "setPassphrase", "id": "s2", "passphrase": "p".repeat(8)});
        assert!(matches!(
            decode::<OptionsRequest>(set),
            Ok(OptionsRequest::SetPassphrase { .. })
        ));
        let lock = json!({"v": 3, "type": "lockNow", "id": "s1"});
        assert_eq!(
            decode::<OptionsRequest>(lock),
            Ok(OptionsRequest::LockNow {
                id: ServerId::first()
            })
        );
        let save = |remember: Value| {
            json!({"v": 3, "type": "saveServer", "name": "a", "serverUrl": "http://127.0.0.1:1",
                   "secretKey": null, "remember": remember})
        };
        for (wire, remember) in [
            (json!("days30"), Remember::Days30),
            (json!(true), Remember::Always),
            (json!(false), Remember::Session),
        ] {
            match decode::<OptionsRequest>(save(wire)) {
                Ok(OptionsRequest::SaveServer { remember: r, .. }) => assert_eq!(r, remember),
                other => panic!("{other:?}"),
            }
        }
        assert!(decode::<OptionsRequest>(save(json!("forever"))).is_err());
    }
}

/// The pages' own decoders of [`WorkerPush`]: the same wire, the same refusals.
#[cfg(test)]
mod page_push_tests {
    use super::*;
    use crate::core::diagnostics::DiagnosticsView;
    use crate::core::session::SessionState;
    use crate::core::timings::Timings;
    use serde_json::json;

    /// One push of every kind, by its wire `type` (a new kind fails to compile here).
    fn every_push() -> Vec<(&'static str, WorkerPush)> {
        let mut state = SessionState::new(Timings::SHIPPED);
        state.starting(0.0);
        let diagnostics: DiagnosticsView = crate::core::diagnostics::Log::default()
            .view(1.0, &crate::core::settings::Settings::default());
        let pushes = vec![
            WorkerPush::State {
                view: Box::new(state.view(None, 1.0)),
                paint: Some(crate::core::paint::paint(&state.view(None, 1.0))),
            },
            WorkerPush::Sessions {
                view: SessionsView {
                    groups: vec![ServerGroup {
                        id: Some(ServerId::first()),
                        name: "Main".into(),
                        url: Some("http://h".into()),
                        error: None,
                        sessions: vec![SessionRow::unknown(
                            SessionId::parse("session_a_b").unwrap(),
                            ServerId::first(),
                        )],
                    }],
                    stale_after_days: StaleAfterDays::default(),
                },
            },
            WorkerPush::Notice {
                ok: false,
                message: Text::new("ext_name").arg("no"),
            },
            WorkerPush::Exported { text: "{}".into() },
            WorkerPush::Diagnostics {
                view: Box::new(diagnostics),
            },
        ];
        pushes
            .into_iter()
            .map(|push| {
                let tag = match push {
                    WorkerPush::State { .. } => "state",
                    WorkerPush::Sessions { .. } => "sessions",
                    WorkerPush::Notice { .. } => "notice",
                    WorkerPush::Exported { .. } => "exported",
                    WorkerPush::Diagnostics { .. } => "diagnostics",
                };
                (tag, push)
            })
            .collect()
    }

    fn text(push: &WorkerPush) -> String {
        encode(push).to_string()
    }

    #[test]
    fn each_page_reads_its_own_pushes_and_knows_the_others() {
        let all = every_push();
        assert_eq!(
            all.iter().map(|(tag, _)| *tag).collect::<Vec<_>>(),
            PUSH_TYPES
        );
        for (tag, push) in &all {
            assert_eq!(encode(push)["type"], *tag);
            let popup = decode_text::<PopupPush>(&text(push)).unwrap();
            let sessions = decode_text::<SessionsPush>(&text(push)).unwrap();
            let diagnostics = decode_text::<DiagnosticsPush>(&text(push)).unwrap();
            match push.clone() {
                WorkerPush::State { view, .. } => {
                    assert!(popup == PopupPush::State { view });
                    assert!(sessions == SessionsPush::Other);
                    assert!(diagnostics == DiagnosticsPush::Other);
                }
                WorkerPush::Sessions { view } => {
                    assert!(popup == PopupPush::Other);
                    assert!(sessions == SessionsPush::Sessions { view });
                    assert!(diagnostics == DiagnosticsPush::Other);
                }
                WorkerPush::Notice { ok, message } => {
                    let m = message.clone();
                    assert!(popup == PopupPush::Notice { ok, message: m });
                    let m = message.clone();
                    assert!(sessions == SessionsPush::Notice { ok, message: m });
                    assert!(diagnostics == DiagnosticsPush::Notice { ok, message });
                }
                WorkerPush::Exported { text } => {
                    assert!(popup == PopupPush::Other);
                    assert!(sessions == SessionsPush::Exported { text });
                    assert!(diagnostics == DiagnosticsPush::Other);
                }
                WorkerPush::Diagnostics { view } => {
                    assert!(popup == PopupPush::Other);
                    assert!(sessions == SessionsPush::Other);
                    assert!(diagnostics == DiagnosticsPush::Diagnostics { view });
                }
            }
        }
    }

    #[test]
    fn a_page_refuses_what_worker_push_refuses() {
        let refused = |wire: serde_json::Value| {
            let text = wire.to_string();
            let all = decode_text::<WorkerPush>(&text).err();
            assert!(all.is_some(), "{wire}");
            assert_eq!(decode_text::<PopupPush>(&text).err(), all, "{wire}");
            assert!(decode_text::<SessionsPush>(&text).is_err(), "{wire}");
            assert!(decode_text::<DiagnosticsPush>(&text).is_err(), "{wire}");
        };
        refused(json!({"v": 3, "type": "explode"}));
        refused(json!({"v": 2, "type": "notice", "ok": true, "message": "x"}));
        refused(json!({"type": "notice", "ok": true, "message": "x"}));
        refused(json!([1]));
        let missing = json!({"v": 3, "type": "notice", "ok": true}).to_string();
        for err in [
            decode_text::<PopupPush>(&missing).err(),
            decode_text::<SessionsPush>(&missing).err(),
            decode_text::<DiagnosticsPush>(&missing).err(),
        ] {
            assert_eq!(
                err,
                Some(MessageError::Invalid("missing field `message`".into()))
            );
        }
        let wrong = json!({"v": 3, "type": "exported", "text": 5}).to_string();
        assert!(matches!(
            decode_text::<SessionsPush>(&wrong),
            Err(MessageError::Invalid(_))
        ));
        let unknown = json!({"v": 3, "type": "explode"}).to_string();
        let Err(MessageError::Invalid(why)) = decode_text::<SessionsPush>(&unknown) else {
            panic!("an unknown push is refused");
        };
        assert!(why.contains("unknown variant `explode`"), "{why}");
        // A view another page shows is not read: its fields may be anything.
        let foreign = json!({"v": 3, "type": "sessions", "view": 5}).to_string();
        assert!(decode_text::<PopupPush>(&foreign) == Ok(PopupPush::Other));
    }
}
