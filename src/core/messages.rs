//! Typed, versioned messages between the extension's pages and the worker. Every message is
//! an object `{"v": PROTOCOL_VERSION, "type": ..., ...}`, decoded and validated on receipt.

use crate::core::session::TabView;
use crate::core::settings::{SecretKey, ServerUrl};
use crate::core::storage::TabId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;

pub const PROTOCOL_VERSION: u32 = 1;
/// Name of the long-lived port a popup opens to the worker.
pub const POPUP_PORT: &str = "wpp-tabs-popup";
/// Messages larger than this are refused before decoding.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// Popup -> worker, over the popup port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum PopupRequest {
    /// Bind this port to a tab and send its state now and on every change.
    Subscribe {
        tab_id: TabId,
    },
    /// Start pairing, refresh an expired QR, or restart a stuck session.
    Pair {
        tab_id: TabId,
    },
    Logout {
        tab_id: TabId,
    },
}

impl PopupRequest {
    pub fn tab_id(&self) -> TabId {
        match self {
            PopupRequest::Subscribe { tab_id }
            | PopupRequest::Pair { tab_id }
            | PopupRequest::Logout { tab_id } => *tab_id,
        }
    }
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
    },
    /// `secret_key: None` tests with the saved secret.
    TestConnection {
        server_url: ServerUrl,
        secret_key: Option<SecretKey>,
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
    NotAnObject,
    WrongVersion(Option<u64>),
    Invalid(String),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::TooLarge => f.write_str("message too large"),
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

/// Checks the envelope, then decodes and validates the body.
pub fn decode<T: DeserializeOwned + Validate>(value: serde_json::Value) -> Result<T, MessageError> {
    if value.to_string().len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge);
    }
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

/// Checks what the types alone cannot.
pub trait Validate {
    fn validate(&self) -> Result<(), MessageError> {
        Ok(())
    }
}

impl Validate for PopupRequest {
    fn validate(&self) -> Result<(), MessageError> {
        if self.tab_id() < 0 {
            return Err(MessageError::Invalid("tab ID must not be negative".into()));
        }
        Ok(())
    }
}

impl Validate for WorkerPush {}
impl Validate for OptionsRequest {}
impl Validate for OptionsReply {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn popup_requests_round_trip_through_the_envelope() {
        for request in [
            PopupRequest::Subscribe { tab_id: 5 },
            PopupRequest::Pair { tab_id: 5 },
            PopupRequest::Logout { tab_id: 0 },
        ] {
            let wire = encode(&request);
            assert_eq!(wire["v"], 1);
            assert_eq!(decode::<PopupRequest>(wire), Ok(request));
        }
        assert_eq!(
            encode(&PopupRequest::Subscribe { tab_id: 5 }),
            json!({"v": 1, "type": "subscribe", "tabId": 5})
        );
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
                json!({"v": 2, "type": "subscribe", "tabId": 1}),
                MessageError::WrongVersion(Some(2)),
            ),
            (
                json!({"v": "1", "type": "subscribe", "tabId": 1}),
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
            json!({"v": 1, "type": "explode", "tabId": 1}),
            json!({"v": 1, "type": "subscribe"}),
            json!({"v": 1, "type": "subscribe", "tabId": "1"}),
            json!({"v": 1, "type": "subscribe", "tabId": -3}),
            json!({"v": 1, "type": "subscribe", "tabId": 1.5}),
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
            MessageError::WrongVersion(Some(2)).to_string(),
            "message version 2, expected 1"
        );
        assert_eq!(
            MessageError::WrongVersion(None).to_string(),
            "message has no version, expected 1"
        );
        let huge = json!({"v": 1, "type": "subscribe", "tabId": 1, "pad": "x".repeat(20_000)});
        assert_eq!(decode::<PopupRequest>(huge), Err(MessageError::TooLarge));
    }

    #[test]
    fn options_requests_validate_url_and_secret_on_receipt() {
        let ok = json!({"v": 1, "type": "saveSettings", "serverUrl": "http://127.0.0.1:21465/",
                        "secretKey": "THISISMYSECURETOKEN", "rememberSecret": false});
        match decode::<OptionsRequest>(ok).unwrap() {
            OptionsRequest::SaveSettings {
                server_url,
                secret_key,
                remember_secret,
            } => {
                assert_eq!(server_url.as_str(), "http://127.0.0.1:21465");
                assert_eq!(secret_key.unwrap().expose(), "THISISMYSECURETOKEN");
                assert!(!remember_secret);
            }
            other => panic!("{other:?}"),
        }
        let bad_url = json!({"v": 1, "type": "testConnection", "serverUrl": "file:///etc"});
        let err = decode::<OptionsRequest>(bad_url).unwrap_err().to_string();
        assert!(err.contains("Server URL"), "{err}");
        let keep_secret = json!({"v": 1, "type": "saveSettings", "serverUrl": "http://h", "secretKey": null, "rememberSecret": true});
        assert!(decode::<OptionsRequest>(keep_secret).is_ok());
    }

    #[test]
    fn replies_never_carry_the_secret() {
        let reply = OptionsReply::Settings {
            server_url: ServerUrl::parse("http://h").unwrap(),
            remember_secret: false,
            has_secret: true,
        };
        assert_eq!(
            encode(&reply),
            json!({"v": 1, "type": "settings", "serverUrl": "http://h", "rememberSecret": false, "hasSecret": true})
        );
    }
}
