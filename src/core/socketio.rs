//! Socket.IO v4 over Engine.IO v4 (WebSocket transport): the pure codec the worker's push
//! connection speaks, and the decoding of wppconnect-server's events (contract §4).
//!
//! Only text frames and the root namespace are spoken. The server broadcasts every event to
//! every client (§4, issue #1335), so each event says which session it concerns and the
//! worker filters on that; a frame that is not understood is an error, never a guess.

use crate::core::api::{self, MAX_REPLY_BYTES};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

/// Sent after the open packet: join the root namespace.
pub const CONNECT_NAMESPACE: &str = "40";
/// Sent in reply to each ping `"2"`: in Engine.IO v4 the server pings and the client answers.
pub const PONG: &str = "3";

/// The largest frame accepted: a `qrCode` event carrying the largest QR the worker accepts
/// in a status reply (`MAX_REPLY_BYTES`), plus room for the event's name and session.
pub const MAX_FRAME_BYTES: usize = MAX_REPLY_BYTES + 4 * 1024;

/// Engine.IO v4's defaults, used until the open packet says otherwise.
pub const DEFAULT_PING_INTERVAL_MS: u32 = 25_000;
pub const DEFAULT_PING_TIMEOUT_MS: u32 = 20_000;

/// The first reconnect delay, doubled on each failure up to the cap (before jitter).
pub const RECONNECT_BASE_MS: u32 = 1_000;
pub const RECONNECT_CAP_MS: u32 = 60_000;

/// The longest pairing code accepted; WhatsApp's are 8 characters (`ABCD-EFGH` with a dash).
pub const MAX_PHONE_CODE_CHARS: usize = 32;

/// A decoded incoming text frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Engine.IO open packet `0{...}`: the handshake.
    Open(OpenInfo),
    /// `2`: the client must answer [`PONG`].
    Ping,
    /// `3`.
    Pong,
    /// `1`: the server closes the transport.
    Close,
    /// `6`.
    Noop,
    /// `40` or `40{...}`: the root namespace accepted the connection.
    Connected,
    /// `44{"message":...}`: the namespace refused the connection; the message is clipped.
    ConnectError(String),
    /// `41`: the server removed the client from the root namespace.
    Disconnected,
    /// `42[...]`, and every well-formed packet the worker has no use for (see [`decode`]).
    Event(PushEvent),
}

/// The Engine.IO handshake's timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInfo {
    pub sid: String,
    pub ping_interval_ms: u32,
    pub ping_timeout_ms: u32,
}

/// wppconnect-server's socket events (contract §4).
///
/// A `session` is `None` only when the server sent none: the key is absent (JS `undefined`
/// is dropped by `JSON.stringify`, the #1931 case after close-session + restart). Any other
/// non-string value (a number, `null`, an object) is kept as its JSON text, such as
/// `Some("null")`: it names no real session, so it never matches one, whereas reading it as
/// "no session" would let the event count for every session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// `qrCode {data, session}`: `data_url` passed the same check as a status reply's QR.
    QrCode {
        session: Option<String>,
        data_url: String,
    },
    /// `phoneCode {data, phone, session}`: the pairing code to type on the phone.
    PhoneCode {
        session: Option<String>,
        code: String,
    },
    /// `session-logged {status: true, session}`.
    SessionLogged { session: Option<String> },
    /// `session-error "<session>"`.
    SessionError { session: Option<String> },
    /// `whatsapp-status false`: some session was closed or logged out; it says not which.
    WhatsappStatus,
    /// Any other event (received-message, onack, ...) or packet the worker ignores.
    Other,
}

impl PushEvent {
    /// Which session the event concerns: `Some(name)` for a named one, `None` when it carries
    /// no session (whatsapp-status, #1931, or an event the worker ignores).
    pub fn session(&self) -> Option<&str> {
        match self {
            PushEvent::QrCode { session, .. }
            | PushEvent::PhoneCode { session, .. }
            | PushEvent::SessionLogged { session }
            | PushEvent::SessionError { session } => session.as_deref(),
            PushEvent::WhatsappStatus | PushEvent::Other => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Longer than [`MAX_FRAME_BYTES`]; refused before any parsing.
    TooLarge,
    Malformed(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge => write!(
                f,
                "The server sent a Socket.IO frame larger than {MAX_FRAME_BYTES} bytes."
            ),
            FrameError::Malformed(why) => {
                write!(f, "The server sent a malformed Socket.IO frame: {why}.")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// The WebSocket URL of a server's Socket.IO endpoint, from its base URL
/// (`scheme://host[:port][/prefix]`): `ws(s)://host[:port][/prefix]/socket.io/?EIO=4&...`.
/// `None` for anything but http(s) with a host, or with a query, fragment or credentials.
pub fn socket_url(server_url: &str) -> Option<String> {
    let (scheme, rest) = server_url.trim().split_once("://")?;
    let ws = match scheme.to_ascii_lowercase().as_str() {
        "http" => "ws",
        "https" => "wss",
        _ => return None,
    };
    // Same refusals as `ServerUrl::parse`, so the suffix below is the URL's only query.
    if rest
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "?#@\\".contains(c))
    {
        return None;
    }
    let rest = rest.trim_end_matches('/');
    if rest.split('/').next().is_none_or(str::is_empty) {
        return None;
    }
    Some(format!(
        "{ws}://{rest}/socket.io/?EIO=4&transport=websocket"
    ))
}

/// Decodes one text frame. Never panics: a frame too long is [`FrameError::TooLarge`]
/// (checked first), one not understood is [`FrameError::Malformed`]. Well-formed packets
/// the worker has no use for are `Event(PushEvent::Other)`: unknown events, packets for
/// another namespace (the client joins only `/`), acks (it never asks for one) and binary
/// packets (a library object with a Buffer, which no event the worker reads carries).
pub fn decode(text: &str) -> Result<Frame, FrameError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge);
    }
    if text.is_empty() {
        return Err(malformed("an empty frame"));
    }
    let Some((kind, data)) = text.split_at_checked(1) else {
        return Err(malformed("an unknown Engine.IO packet type"));
    };
    match (kind, data) {
        ("0", _) => open(data).map(Frame::Open),
        ("1", "") => Ok(Frame::Close),
        ("2", "") => Ok(Frame::Ping),
        ("3", "") => Ok(Frame::Pong),
        ("4", _) => message(data),
        ("6", "") => Ok(Frame::Noop),
        ("1" | "2" | "3" | "6", _) => Err(malformed("an Engine.IO control packet with data")),
        ("5", _) => Err(malformed(
            "an upgrade packet on a WebSocket-only connection",
        )),
        _ => Err(malformed("an unknown Engine.IO packet type")),
    }
}

fn open(data: &str) -> Result<OpenInfo, FrameError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Handshake {
        sid: String,
        ping_interval: u32,
        ping_timeout: u32,
    }
    let h: Handshake = serde_json::from_str(data)
        .and_then(serde_json::from_value)
        .map_err(|_| malformed("an open packet without a valid handshake"))?;
    if h.sid.is_empty() || h.ping_interval == 0 || h.ping_timeout == 0 {
        return Err(malformed(
            "an open packet with an empty sid or a zero timing",
        ));
    }
    Ok(OpenInfo {
        sid: h.sid,
        ping_interval_ms: h.ping_interval,
        ping_timeout_ms: h.ping_timeout,
    })
}

/// A Socket.IO packet: `<type>[<attachments>-][/<nsp>,][<ack id>][<json>]`.
fn message(data: &str) -> Result<Frame, FrameError> {
    if data.is_empty() {
        return Err(malformed("an empty message packet"));
    }
    let Some((kind, rest)) = data.split_at_checked(1) else {
        return Err(malformed("an unknown Socket.IO packet type"));
    };
    match kind {
        "0" | "1" | "2" | "4" => {}
        "3" | "5" | "6" => return Ok(Frame::Event(PushEvent::Other)),
        _ => return Err(malformed("an unknown Socket.IO packet type")),
    }
    let rest = match rest.strip_prefix('/') {
        None => rest,
        Some(nsp) => match nsp.split_once(',') {
            Some(("", body)) => body, // "/," names the root namespace explicitly
            _ => return Ok(Frame::Event(PushEvent::Other)),
        },
    };
    match kind {
        "0" if rest.is_empty() || is_json_object(rest) => Ok(Frame::Connected),
        "0" => Err(malformed("a connect ack whose data is not a JSON object")),
        "1" if rest.is_empty() => Ok(Frame::Disconnected),
        "1" => Err(malformed("a disconnect packet with data")),
        "4" => connect_error(rest).map(Frame::ConnectError),
        _ => event(rest).map(Frame::Event),
    }
}

fn is_json_object(text: &str) -> bool {
    matches!(serde_json::from_str(text), Ok(Value::Object(_)))
}

/// Socket.IO v4 sends `{"message": ...}`; v2/v3 servers sent the bare string.
fn connect_error(rest: &str) -> Result<String, FrameError> {
    let value: Value =
        serde_json::from_str(rest).map_err(|_| malformed("a connect error without JSON data"))?;
    let message = match &value {
        Value::String(s) => Some(s.as_str()),
        Value::Object(o) => o.get("message").and_then(Value::as_str),
        _ => None,
    };
    message
        .map(api::clip)
        .ok_or(malformed("a connect error without a message"))
}

fn event(rest: &str) -> Result<PushEvent, FrameError> {
    // An ack id may precede the array; the worker never acknowledges.
    let json = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let Ok(Value::Array(items)) = serde_json::from_str(json) else {
        return Err(malformed("an event that is not a JSON array"));
    };
    let Some((Value::String(name), args)) = items.split_first() else {
        return Err(malformed("an event without a name"));
    };
    Ok(match name.as_str() {
        "qrCode" => {
            let obj = object_arg(args, "a qrCode event without an object")?;
            let data = obj
                .get("data")
                .and_then(Value::as_str)
                .ok_or(malformed("a qrCode event without data"))?;
            // The same check as a status reply's QR: only PNG data reaches the popup.
            let data_url = api::qr_data_url(data)
                .map_err(|_| malformed("a qrCode event whose data is not a PNG data URL"))?;
            PushEvent::QrCode {
                session: session_of(obj),
                data_url,
            }
        }
        "phoneCode" => {
            let obj = object_arg(args, "a phoneCode event without an object")?;
            let code = obj
                .get("data")
                .and_then(Value::as_str)
                .ok_or(malformed("a phoneCode event without a code"))?;
            if !is_plausible_code(code) {
                return Err(malformed(
                    "a phoneCode event with an empty, long or odd code",
                ));
            }
            PushEvent::PhoneCode {
                session: session_of(obj),
                code: code.to_owned(),
            }
        }
        "session-logged" => {
            let obj = object_arg(args, "a session-logged event without an object")?;
            if obj.get("status") != Some(&Value::Bool(true)) {
                return Err(malformed("a session-logged event without status true"));
            }
            PushEvent::SessionLogged {
                session: session_of(obj),
            }
        }
        // The session is the bare argument; JSON.stringify writes an `undefined` array
        // element as `null`, so `null` (or no argument) is the #1931 "no session" here.
        "session-error" => PushEvent::SessionError {
            session: match args.first() {
                None | Some(Value::Null) => None,
                Some(v) => Some(session_text(v)),
            },
        },
        "whatsapp-status" => match args.first() {
            Some(Value::Bool(_)) => PushEvent::WhatsappStatus,
            _ => return Err(malformed("a whatsapp-status event without a boolean")),
        },
        _ => PushEvent::Other,
    })
}

fn object_arg<'a>(
    args: &'a [Value],
    why: &'static str,
) -> Result<&'a Map<String, Value>, FrameError> {
    args.first()
        .and_then(Value::as_object)
        .ok_or(malformed(why))
}

/// Absent key: `None` (#1931). Anything else names a session, real or not (see [`PushEvent`]).
fn session_of(obj: &Map<String, Value>) -> Option<String> {
    obj.get("session").map(session_text)
}

fn session_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Shown to the user: short, and free of control and bidi characters that could disguise it.
fn is_plausible_code(code: &str) -> bool {
    !code.trim().is_empty()
        && code.chars().count() <= MAX_PHONE_CODE_CHARS
        && !code
            .chars()
            .any(|c| c.is_control() || api::is_bidi_control(c))
}

fn malformed(why: &'static str) -> FrameError {
    FrameError::Malformed(why)
}

/// The delay before reconnect attempt number `failures + 1`: 1 s, 2 s, 4 s, ... capped at
/// 60 s, then scaled by 80-120 % from `random` so clients cut off together (a server restart)
/// do not return in lockstep, even at the cap. For a fixed `random` it never decreases.
pub fn reconnect_delay_ms(failures: u32, random: u64) -> u32 {
    let doublings = failures.saturating_sub(1).min(16); // 2^16 s is past the cap
    let base = (RECONNECT_BASE_MS << doublings).min(RECONNECT_CAP_MS);
    let spread = base / 5;
    let offset = u128::from(2 * spread) * u128::from(random) / u128::from(u64::MAX);
    // offset <= 2 * spread, so it fits.
    base - spread + u32::try_from(offset).unwrap_or(2 * spread)
}

/// How long without any frame before the connection counts as dead: the server pings every
/// `pingInterval` and allows `pingTimeout` for the answer (Engine.IO v4's client rule).
pub fn silence_limit_ms(open: Option<&OpenInfo>) -> u32 {
    match open {
        Some(o) => o.ping_interval_ms.saturating_add(o.ping_timeout_ms),
        None => DEFAULT_PING_INTERVAL_MS + DEFAULT_PING_TIMEOUT_MS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::settings::ServerUrl;

    const QR: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA+/=";

    fn ev(text: &str) -> PushEvent {
        match decode(text) {
            Ok(Frame::Event(e)) => e,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn is_malformed(text: &str) -> bool {
        matches!(decode(text), Err(FrameError::Malformed(_)))
    }

    #[test]
    fn the_frames_wpp_sim_sends() {
        // As wpp-sim/src/socket.rs and state.rs write them (serde_json keeps insertion order).
        assert_eq!(
            decode(
                r#"0{"sid":"Xy12abCD34efGH56ijKL","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
            ),
            Ok(Frame::Open(OpenInfo {
                sid: "Xy12abCD34efGH56ijKL".into(),
                ping_interval_ms: 25_000,
                ping_timeout_ms: 20_000,
            }))
        );
        assert_eq!(
            decode(r#"40{"sid":"Ab12Cd34Ef56Gh78Ij90"}"#),
            Ok(Frame::Connected)
        );
        assert_eq!(decode("2"), Ok(Frame::Ping));
        assert_eq!(decode("3"), Ok(Frame::Pong));
        assert_eq!(
            ev(&format!(
                r#"42["qrCode",{{"data":"{QR}","session":"session_m1_abc"}}]"#
            )),
            PushEvent::QrCode {
                session: Some("session_m1_abc".into()),
                data_url: QR.into(),
            }
        );
        assert_eq!(
            ev(r#"42["phoneCode",{"data":"ABCD-EFGH","phone":"5511999990000","session":"s1"}]"#),
            PushEvent::PhoneCode {
                session: Some("s1".into()),
                code: "ABCD-EFGH".into(),
            }
        );
        assert_eq!(
            ev(r#"42["session-logged",{"status":true,"session":"s1"}]"#),
            PushEvent::SessionLogged {
                session: Some("s1".into())
            }
        );
        assert_eq!(
            ev(r#"42["whatsapp-status",false]"#),
            PushEvent::WhatsappStatus
        );
    }

    #[test]
    fn what_the_client_sends() {
        assert_eq!(CONNECT_NAMESPACE, "40");
        assert_eq!(PONG, "3");
        // The sim's reply to our connect packet is a connect ack.
        assert_eq!(decode(CONNECT_NAMESPACE), Ok(Frame::Connected));
    }

    #[test]
    fn every_engine_io_and_socket_io_kind() {
        assert_eq!(decode("1"), Ok(Frame::Close));
        assert_eq!(decode("6"), Ok(Frame::Noop));
        assert_eq!(decode("40"), Ok(Frame::Connected));
        assert_eq!(decode("40/,{}"), Ok(Frame::Connected));
        assert_eq!(decode("41"), Ok(Frame::Disconnected));
        assert_eq!(
            decode(r#"44{"message":"Not authorized","data":{"x":1}}"#),
            Ok(Frame::ConnectError("Not authorized".into()))
        );
        assert_eq!(
            decode(r#"44"Invalid namespace""#),
            Ok(Frame::ConnectError("Invalid namespace".into()))
        );
        // Server text is clipped like any other shown to the user.
        assert_eq!(
            decode("44{\"message\":\"a\\u0007b\\u202Ec\"}"),
            Ok(Frame::ConnectError("abc".into()))
        );
        let long = format!(r#"44{{"message":"{}"}}"#, "m".repeat(5000));
        match decode(&long) {
            Ok(Frame::ConnectError(m)) => assert_eq!(m.len(), 200),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn open_packet_timings_are_checked() {
        let open = |body: &str| decode(&format!("0{body}"));
        assert!(matches!(
            open(r#"{"sid":"a","pingInterval":300,"pingTimeout":200}"#),
            Ok(Frame::Open(OpenInfo {
                ping_interval_ms: 300,
                ping_timeout_ms: 200,
                ..
            }))
        ));
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"sid":"","pingInterval":1,"pingTimeout":1}"#,
            r#"{"sid":"a","pingInterval":0,"pingTimeout":1}"#,
            r#"{"sid":"a","pingInterval":1,"pingTimeout":0}"#,
            r#"{"sid":"a","pingInterval":-1,"pingTimeout":1}"#,
            r#"{"sid":"a","pingInterval":2.5,"pingTimeout":1}"#,
            r#"{"sid":"a","pingInterval":4294967296,"pingTimeout":1}"#,
            r#"{"sid":7,"pingInterval":1,"pingTimeout":1}"#,
            r#"{"sid":"a","pingInterval":"25000","pingTimeout":1}"#,
            r#"{"sid":"a","pingInterval":1}"#,
            r#"{"sid":"a","pingInterval":1,"pingTimeout":1} x"#,
        ] {
            assert!(matches!(open(bad), Err(FrameError::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn events_without_a_session_issue_1931() {
        // After close-session + restart the session is `undefined`: the key is absent.
        let qr = ev(&format!(r#"42["qrCode",{{"data":"{QR}"}}]"#));
        assert_eq!(
            qr,
            PushEvent::QrCode {
                session: None,
                data_url: QR.into()
            }
        );
        assert_eq!(qr.session(), None);
        assert_eq!(
            ev(r#"42["phoneCode",{"data":"ABCD-EFGH","phone":"55"}]"#).session(),
            None
        );
        assert_eq!(
            ev(r#"42["session-logged",{"status":true}]"#).session(),
            None
        );
        // An `undefined` array element travels as null.
        for text in [r#"42["session-error",null]"#, r#"42["session-error"]"#] {
            assert_eq!(
                ev(text),
                PushEvent::SessionError { session: None },
                "{text}"
            );
        }
        assert_eq!(ev(r#"42["whatsapp-status",false]"#).session(), None);
    }

    #[test]
    fn session_of_each_event() {
        assert_eq!(
            ev(&format!(r#"42["qrCode",{{"session":"a","data":"{QR}"}}]"#)).session(),
            Some("a")
        );
        assert_eq!(
            ev(r#"42["phoneCode",{"data":"X","session":"b"}]"#).session(),
            Some("b")
        );
        assert_eq!(
            ev(r#"42["session-logged",{"status":true,"session":"c"}]"#).session(),
            Some("c")
        );
        assert_eq!(
            ev(r#"42["session-error","d"]"#),
            PushEvent::SessionError {
                session: Some("d".into())
            }
        );
        assert_eq!(ev(r#"42["session-error","d"]"#).session(), Some("d"));
    }

    #[test]
    fn a_session_that_is_not_a_string_names_no_real_session() {
        // Never None: that would let the event count for every session.
        for (value, text) in [
            ("null", "null"),
            ("7", "7"),
            ("true", "true"),
            (r#"{"a":1}"#, r#"{"a":1}"#),
            (r#"["s1"]"#, r#"["s1"]"#),
            (r#""""#, ""),
        ] {
            let qr = ev(&format!(
                r#"42["qrCode",{{"data":"{QR}","session":{value}}}]"#
            ));
            assert_eq!(qr.session(), Some(text), "{value}");
            let logged = ev(&format!(
                r#"42["session-logged",{{"status":true,"session":{value}}}]"#
            ));
            assert_eq!(logged.session(), Some(text), "{value}");
        }
        assert_eq!(ev(r#"42["session-error",5]"#).session(), Some("5"));
        assert_eq!(
            ev(r#"42["session-error",{"session":"s1"}]"#).session(),
            Some(r#"{"session":"s1"}"#)
        );
    }

    #[test]
    fn a_qr_must_pass_the_status_reply_check() {
        for data in [
            "https://evil.example/pixel.png",
            "data:text/html;base64,PHNjcmlwdD4=",
            "data:image/png;base64,",
            "data:image/png;base64,abc def",
            "data:image/png;base64,abc\"",
            "",
        ] {
            let frame = serde_json::json!(["qrCode", {"data": data, "session": "s"}]);
            assert!(is_malformed(&format!("42{frame}")), "{data}");
        }
        for frame in [
            r#"42["qrCode",{"data":5,"session":"s"}]"#,
            r#"42["qrCode",{"session":"s"}]"#,
            r#"42["qrCode","data:image/png;base64,AAAA"]"#,
            r#"42["qrCode",null]"#,
            r#"42["qrCode"]"#,
        ] {
            assert!(is_malformed(frame), "{frame}");
        }
        // The status check also takes the bare base64 that exportQR answers, prefixed.
        assert_eq!(
            ev(r#"42["qrCode",{"data":"AAAA","session":"s"}]"#),
            PushEvent::QrCode {
                session: Some("s".into()),
                data_url: "data:image/png;base64,AAAA".into()
            }
        );
    }

    #[test]
    fn the_largest_qr_fits_and_longer_frames_are_refused_unparsed() {
        let prefix = "data:image/png;base64,";
        let qr = format!("{prefix}{}", "A".repeat(MAX_REPLY_BYTES - prefix.len()));
        let frame = format!(
            r#"42["qrCode",{{"data":"{qr}","session":"session_{}"}}]"#,
            "z".repeat(24)
        );
        assert!(frame.len() <= MAX_FRAME_BYTES);
        assert!(matches!(
            ev(&frame),
            PushEvent::QrCode { data_url, .. } if data_url == qr
        ));
        // Too large is reported before any parsing, whatever the content.
        let huge = format!("42{}", "[".repeat(MAX_FRAME_BYTES - 1));
        assert_eq!(decode(&huge), Err(FrameError::TooLarge));
        assert_eq!(
            decode(&"x".repeat(MAX_FRAME_BYTES + 1)),
            Err(FrameError::TooLarge)
        );
        assert_ne!(
            decode(&"x".repeat(MAX_FRAME_BYTES)),
            Err(FrameError::TooLarge)
        );
    }

    #[test]
    fn phone_codes_are_short_and_plain() {
        let code = |c: &str| {
            let frame =
                serde_json::json!(["phoneCode", {"data": c, "phone": "55", "session": "s"}]);
            decode(&format!("42{frame}"))
        };
        assert!(code("ABCD-EFGH").is_ok());
        assert!(code(&"A".repeat(MAX_PHONE_CODE_CHARS)).is_ok());
        assert!(code(&"é".repeat(MAX_PHONE_CODE_CHARS)).is_ok());
        for bad in [
            String::new(),
            "   ".into(),
            "A".repeat(MAX_PHONE_CODE_CHARS + 1),
            "ABCD\nEFGH".into(),
            "ABCD\u{202E}HGFE".into(),
        ] {
            assert!(
                matches!(code(&bad), Err(FrameError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(is_malformed(
            r#"42["phoneCode",{"data":1234,"session":"s"}]"#
        ));
        assert!(is_malformed(r#"42["phoneCode",{"session":"s"}]"#));
        assert!(is_malformed(r#"42["phoneCode","ABCD-EFGH"]"#));
    }

    #[test]
    fn session_logged_and_whatsapp_status_payloads_are_checked() {
        for bad in [
            r#"42["session-logged",{"status":false,"session":"s"}]"#,
            r#"42["session-logged",{"status":"true","session":"s"}]"#,
            r#"42["session-logged",{"session":"s"}]"#,
            r#"42["session-logged","s"]"#,
            r#"42["session-logged"]"#,
            r#"42["whatsapp-status"]"#,
            r#"42["whatsapp-status","CONNECTED"]"#,
            r#"42["whatsapp-status",null]"#,
        ] {
            assert!(is_malformed(bad), "{bad}");
        }
        assert_eq!(
            ev(r#"42["whatsapp-status",true]"#),
            PushEvent::WhatsappStatus
        );
    }

    #[test]
    fn other_events_and_packets_are_ignored_not_errors() {
        for text in [
            r#"42["received-message",{"response":{"session":"s1","body":"hi"}}]"#,
            r#"42["onack",{"id":{"_serialized":"x"},"ack":3}]"#,
            r#"42["mensagem-enviada",[]]"#,
            r#"42["incomingcall"]"#,
            r#"42["QRCODE",{"data":"not checked"}]"#,
            r#"42/admin,["qrCode",{"data":"x","session":"s1"}]"#,
            r#"42/admin"#,
            r#"40/admin,{"sid":"x"}"#,
            r#"41/admin,"#,
            r#"44/admin,{"message":"no"}"#,
            r#"43[]"#,
            r#"4312["ok"]"#,
            r#"451-["received-message",{"_placeholder":true,"num":0}]"#,
            r#"461-12[{"_placeholder":true,"num":0}]"#,
        ] {
            let e = ev(text);
            assert_eq!(e, PushEvent::Other, "{text}");
            assert_eq!(e.session(), None);
        }
        // An ack id before the array, and "/," for the root namespace, are understood.
        assert_eq!(
            ev(r#"4217["whatsapp-status",false]"#),
            PushEvent::WhatsappStatus
        );
        assert_eq!(
            ev(r#"42/,["whatsapp-status",false]"#),
            PushEvent::WhatsappStatus
        );
    }

    #[test]
    fn garbage_is_malformed_never_a_panic() {
        for text in [
            "",
            "4",
            "42",
            "42[",
            "42[1]",
            "42[]",
            "42{}",
            "42\"qrCode\"",
            "42[\"qrCode\"]",
            "42[null,1]",
            "42[\"whatsapp-status\",false]x",
            "0",
            "0{",
            "5",
            "7",
            "9",
            "x",
            "é",
            "4é",
            "42é",
            "\u{0}",
            "2probe",
            "3probe",
            "1x",
            "6x",
            "40x",
            "40[]",
            "40\"sid\"",
            "41x",
            "41{}",
            "44",
            "44{}",
            "44[1]",
            "44{\"message\":1}",
            "47",
            "4x",
            "4-",
            "42abc[\"x\"]",
        ] {
            assert!(is_malformed(text), "{text:?}: {:?}", decode(text));
        }
        // serde_json's depth limit turns deep nesting into an error, not a stack overflow.
        let deep = format!("42[\"x\",{}]", "[".repeat(100_000));
        assert!(is_malformed(&deep));
        // Every prefix of every real frame decodes to something without panicking.
        let samples = [
            format!(r#"42["qrCode",{{"data":"{QR}","session":"sé"}}]"#),
            r#"0{"sid":"a","pingInterval":25000,"pingTimeout":20000}"#.into(),
            r#"451-/nsp,12["x",{"_placeholder":true}]"#.into(),
            "44{\"message\":\"ünïcødé\"}".into(),
        ];
        for s in &samples {
            for (i, _) in s.char_indices() {
                let _ = decode(&s[..i]);
                let _ = decode(&s[i..]);
            }
        }
    }

    #[test]
    fn errors_read_clearly() {
        assert_eq!(
            FrameError::TooLarge.to_string(),
            format!("The server sent a Socket.IO frame larger than {MAX_FRAME_BYTES} bytes.")
        );
        let err = decode("42[1]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "The server sent a malformed Socket.IO frame: an event without a name."
        );
    }

    #[test]
    fn socket_urls() {
        let q = "socket.io/?EIO=4&transport=websocket";
        for (server, url) in [
            (
                "http://localhost:21465",
                format!("ws://localhost:21465/{q}"),
            ),
            (
                "https://wpp.example.com",
                format!("wss://wpp.example.com/{q}"),
            ),
            (
                "https://wpp.example.com:8443",
                format!("wss://wpp.example.com:8443/{q}"),
            ),
            (
                "https://example.com/wpp",
                format!("wss://example.com/wpp/{q}"),
            ),
            (
                "https://example.com/a/b/",
                format!("wss://example.com/a/b/{q}"),
            ),
            ("http://example.com/", format!("ws://example.com/{q}")),
            ("http://[::1]:21465", format!("ws://[::1]:21465/{q}")),
            ("HTTPS://example.com", format!("wss://example.com/{q}")),
        ] {
            assert_eq!(
                socket_url(server).as_deref(),
                Some(url.as_str()),
                "{server}"
            );
        }
        for bad in [
            "ftp://example.com",
            "ws://example.com",
            "example.com",
            "",
            "http://",
            "http:///path",
            "http://example.com?x=1",
            "http://example.com/#frag",
            "http://user@example.com",
            "http://exa mple.com",
        ] {
            assert_eq!(socket_url(bad), None, "{bad}");
        }
        // Every configured server URL maps.
        for configured in ["http://localhost:21465/", "https://Wpp.Example.com/x/"] {
            let s = ServerUrl::parse(configured).unwrap();
            assert!(socket_url(s.as_str()).is_some(), "{configured}");
        }
    }

    #[test]
    fn reconnect_delays_double_to_the_cap_with_jitter() {
        let mid = u64::MAX / 2;
        let expected = [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000];
        for (i, base) in expected.into_iter().enumerate() {
            let failures = i as u32 + 1;
            assert!(
                reconnect_delay_ms(failures, mid).abs_diff(base) <= 1,
                "{failures}"
            );
            assert_eq!(reconnect_delay_ms(failures, 0), base * 4 / 5);
            assert_eq!(reconnect_delay_ms(failures, u64::MAX), base * 6 / 5);
        }
        // Zero failures counts as the first.
        assert_eq!(reconnect_delay_ms(0, 0), reconnect_delay_ms(1, 0));
        let randoms = [0, 1, 12_345, mid, u64::MAX / 3, u64::MAX - 1, u64::MAX];
        for random in randoms {
            let mut last = 0;
            for failures in (0..100).chain([1_000, u32::MAX - 1, u32::MAX]) {
                let d = reconnect_delay_ms(failures, random);
                assert!(d >= last, "not monotone at {failures} for {random}");
                assert!((800..=72_000).contains(&d), "{d}");
                last = d;
            }
            assert!((48_000..=72_000).contains(&last));
        }
    }

    #[test]
    fn silence_limits() {
        assert_eq!(silence_limit_ms(None), 45_000);
        let open = |i, t| OpenInfo {
            sid: "s".into(),
            ping_interval_ms: i,
            ping_timeout_ms: t,
        };
        assert_eq!(silence_limit_ms(Some(&open(25_000, 20_000))), 45_000);
        assert_eq!(silence_limit_ms(Some(&open(300, 200))), 500);
        assert_eq!(silence_limit_ms(Some(&open(u32::MAX, 5))), u32::MAX);
    }
}
