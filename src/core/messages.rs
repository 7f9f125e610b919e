//! Typed, versioned messages between the extension's pages and the worker. Every message is
//! an object `{"v": PROTOCOL_VERSION, "type": ..., ...}`, decoded and validated on receipt.

use crate::core::api::MAX_REPLY_BYTES;
use crate::core::session::TabView;
use crate::core::settings::{SecretKey, ServerUrl};
use crate::core::storage::TabId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;

/// 2: a popup names its tab once, when it subscribes.
pub const PROTOCOL_VERSION: u32 = 2;
/// Name of the long-lived port a popup opens to the worker.
pub const POPUP_PORT: &str = "wpp-tabs-popup";
/// Requests from the extension's pages are small: anything larger is refused unread.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// A pushed view carries the QR, which can be as large as the largest reply the worker
/// accepts from the server; the rest of the view is small.
const MAX_PUSH_BYTES: usize = MAX_REPLY_BYTES + 16 * 1024;

/// Popup -> worker, over the popup port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum PopupRequest {
    /// Bind this port to a tab, once, and send its state now and on every change.
    Subscribe { tab_id: TabId },
    /// Start pairing, refresh an expired QR, or restart a stuck session of the bound tab.
    Pair,
    /// Log out the bound tab's session.
    Logout,
}

/// Worker -> popup, over the popup port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum WorkerPush {
    State { view: TabView },
}

/// Options page -> worker, as one-off `runtime.sendMessage` calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum OptionsRequest {
    GetSettings,
    /// `secret_key: None` keeps the secret already saved.
    SaveSettings {
        server_url: ServerUrl,
        secret_key: Option<SecretKey>,
        remember_secret: bool,
        #[serde(default)]
        allow_insecure_http: bool,
    },
    /// `secret_key: None` tests with the saved secret.
    TestConnection {
        server_url: ServerUrl,
        secret_key: Option<SecretKey>,
        #[serde(default)]
        allow_insecure_http: bool,
    },
}

/// Worker -> options page. The secret itself is never sent back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum OptionsReply {
    Settings {
        server_url: ServerUrl,
        remember_secret: bool,
        has_secret: bool,
        allow_insecure_http: bool,
    },
    Saved,
    Connection {
        ok: bool,
        message: String,
    },
    Error {
        message: String,
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
    let body: T = serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| MessageError::Invalid(e.to_string()))?;
    body.validate()?;
    Ok(body)
}

/// Wraps a body in the versioned envelope.
pub fn encode<T: Serialize>(body: &T) -> serde_json::Value {
    let mut value = serde_json::to_value(body).expect("message types serialize");
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("v".into(), PROTOCOL_VERSION.into());
    }
    value
}

/// Checks what the types alone cannot, and bounds each message type's size.
pub trait Validate {
    const MAX_BYTES: usize = MAX_REQUEST_BYTES;

    fn validate(&self) -> Result<(), MessageError> {
        Ok(())
    }
}

impl Validate for PopupRequest {}
impl Validate for OptionsRequest {}
impl Validate for OptionsReply {}
impl Validate for WorkerPush {
    const MAX_BYTES: usize = MAX_PUSH_BYTES;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn popup_requests_round_trip_through_the_envelope() {
        let tab_id = TabId::new(5).unwrap();
        for request in [
            PopupRequest::Subscribe { tab_id },
            PopupRequest::Pair,
            PopupRequest::Logout,
        ] {
            let wire = encode(&request);
            assert_eq!(wire["v"], PROTOCOL_VERSION);
            assert_eq!(decode::<PopupRequest>(wire), Ok(request));
        }
        assert_eq!(
            encode(&PopupRequest::Subscribe { tab_id }),
            json!({"v": 2, "type": "subscribe", "tabId": 5})
        );
        assert_eq!(encode(&PopupRequest::Pair), json!({"v": 2, "type": "pair"}));
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
            json!({"v": 2, "type": "explode", "tabId": 1}),
            json!({"v": 2, "type": "subscribe"}),
            json!({"v": 2, "type": "subscribe", "tabId": "1"}),
            json!({"v": 2, "type": "subscribe", "tabId": -3}),
            json!({"v": 2, "type": "subscribe", "tabId": 1.5}),
            json!({"v": 2, "type": "subscribe", "tabId": 4_294_967_296_i64}),
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
            "message version 1, expected 2"
        );
        assert_eq!(
            MessageError::WrongVersion(None).to_string(),
            "message has no version, expected 2"
        );
        let huge = json!({"v": 2, "type": "subscribe", "tabId": 1, "pad": "x".repeat(20_000)});
        assert_eq!(decode::<PopupRequest>(huge), Err(MessageError::TooLarge));
    }

    #[test]
    fn size_and_nesting_are_checked_before_parsing() {
        // A megabyte of nesting, within a push's size: far past serde_json's own limit, and
        // past any stack if it were decoded recursively.
        let deep = format!("{}1{}", "[".repeat(1 << 19), "]".repeat(1 << 19));
        assert_eq!(decode_text::<WorkerPush>(&deep), Err(MessageError::TooDeep));
        let deep_small = format!(
            "{{\"v\":2,\"type\":\"pair\",\"x\":{}1{}}}",
            "[".repeat(20),
            "]".repeat(20)
        );
        assert_eq!(
            decode_text::<PopupRequest>(&deep_small),
            Err(MessageError::TooDeep)
        );
        // Brackets inside strings are text, not nesting.
        let text = format!(r#"{{"v":2,"type":"pair","note":"{}"}}"#, "[".repeat(100));
        assert_eq!(decode_text::<PopupRequest>(&text), Ok(PopupRequest::Pair));
        let escaped = r#"{"v":2,"type":"pair","note":"\"[[[[[[[[[[[[[[[[[[[[[["}"#;
        assert_eq!(decode_text::<PopupRequest>(escaped), Ok(PopupRequest::Pair));
        let big = format!(
            r#"{{"v":2,"type":"pair","pad":"{}"}}"#,
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
        let push = WorkerPush::State {
            view: state.view(None, 1.0),
        };
        let decoded = decode::<WorkerPush>(encode(&push)).expect("the push is accepted");
        let WorkerPush::State { view } = decoded;
        assert_eq!(view.qr.as_deref(), Some(qr.as_str()));
        // Requests from pages stay small.
        let big_request = json!({"v": 2, "type": "pair", "pad": "x".repeat(MAX_REQUEST_BYTES)});
        assert_eq!(
            decode::<PopupRequest>(big_request),
            Err(MessageError::TooLarge)
        );
    }

    #[test]
    fn options_requests_validate_url_and_secret_on_receipt() {
        let ok = json!({"v": 2, "type": "saveSettings", "serverUrl": "http://127.0.0.1:21465/",
                        "secretKey": "THISISMYSECURETOKEN", "rememberSecret": false});
        match decode::<OptionsRequest>(ok).unwrap() {
            OptionsRequest::SaveSettings {
                server_url,
                secret_key,
                remember_secret,
                ..
            } => {
                assert_eq!(server_url.as_str(), "http://127.0.0.1:21465");
                assert_eq!(secret_key.unwrap().expose(), "THISISMYSECURETOKEN");
                assert!(!remember_secret);
            }
            other => panic!("{other:?}"),
        }
        let bad_url = json!({"v": 2, "type": "testConnection", "serverUrl": "file:///etc"});
        let err = decode::<OptionsRequest>(bad_url).unwrap_err().to_string();
        assert!(err.contains("Server URL"), "{err}");
        let keep_secret = json!({"v": 2, "type": "saveSettings", "serverUrl": "http://h", "secretKey": null, "rememberSecret": true});
        assert!(decode::<OptionsRequest>(keep_secret).is_ok());
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
            server_url: ServerUrl::parse("http://h").unwrap(),
            remember_secret: false,
            has_secret: true,
            allow_insecure_http: true,
        };
        assert_eq!(
            encode(&reply),
            json!({"v": 2, "type": "settings", "serverUrl": "http://h", "rememberSecret": false,
                   "hasSecret": true, "allowInsecureHttp": true})
        );
    }
}
