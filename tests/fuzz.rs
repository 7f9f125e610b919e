//! Property fuzzing of everything that reads untrusted input: the server reply parsers, the
//! message decoders and the settings. Inputs are random mutations of valid samples (from a
//! fixed seed, so a failure replays); each target checks that nothing panics and that what is
//! accepted keeps its promises.
//!
//! `cargo test --test fuzz` runs a short pass (`FUZZ_ITERATIONS`, default 20,000 per target);
//! a long one on demand: `FUZZ_ITERATIONS=2000000 cargo test --release --test fuzz -- --nocapture`.
//! `FUZZ_SEED` picks another sequence.

#![cfg(not(target_arch = "wasm32"))]

use wpp_tabs::core::api::{self, HttpReply};
use wpp_tabs::core::messages::{
    decode_text, encode, DiagnosticsRequest, OptionsReply, OptionsRequest, PopupRequest,
    SessionsRequest, WorkerPush,
};
use wpp_tabs::core::session_id::SessionId;
use wpp_tabs::core::settings::{SecretKey, ServerUrl, Settings};
use wpp_tabs::core::status::ServerStatus;
use wpp_tabs::core::storage::Token;

fn iterations() -> u64 {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

/// xorshift64*: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Rng {
        let seed = std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_cafe_f00d_u64);
        Rng((seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Characters that break parsers: quotes, brackets, escapes, controls, bidi, emoji, NUL.
const SPICE: &[&str] = &[
    "\"", "\\", "{", "}", "[", "]", ":", ",", "\0", "\n", "\u{202e}", "\u{2066}", "é", "😀",
    "null", "true", "-1", "1e309", "\\u0000", "\\ud800", "%", "/", "..", "://", "@", "#", "?", " ",
    "\t", "xn--", "[::1]", ":65536", "ä", "а",
];

/// A mutation of `sample`: characters dropped, repeated, swapped or spiced, or the sample cut.
fn mutate(rng: &mut Rng, sample: &str) -> String {
    let mut chars: Vec<String> = sample.chars().map(String::from).collect();
    for _ in 0..=rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(6) {
            0 if at < chars.len() => drop(chars.remove(at)),
            1 => chars.insert(at, rng.pick(SPICE).to_string()),
            2 if at < chars.len() => {
                let c = chars[at].clone();
                chars.insert(at, c.repeat(1 + rng.below(64)));
            }
            3 => chars.truncate(at),
            4 if at + 1 < chars.len() => chars.swap(at, at + 1),
            _ => chars.insert(at, rng.pick(SPICE).repeat(1 + rng.below(40))),
        }
    }
    chars.concat()
}

fn report(target: &str, inputs: u64, accepted: u64) {
    eprintln!("fuzz {target}: {inputs} inputs, {accepted} accepted, no panic");
}

const TOKEN: &str = "$2b$10$duQ5YYV6fojn5qFiFv.aEuY32_SnHgcmxdfxohnjG4EHJ5_Z6QWhe";

#[test]
fn reply_parsers_never_panic_and_keep_their_promises() {
    let session = SessionId::parse("session_abc_def").unwrap();
    let samples = [
        r#"{"status":"QRCODE","qrcode":"data:image/png;base64,iVBORw0KGgo=","urlcode":"x"}"#
            .to_owned(),
        r#"{"status":"CONNECTED","qrcode":"data:image/png;base64,AAAA"}"#.to_owned(),
        r#"{"status":"CLOSED","qrcode":null,"version":"2.10.4"}"#.to_owned(),
        format!(
            r#"{{"status":"success","session":"session_abc_def","token":"{TOKEN}","full":"x"}}"#
        ),
        r#"{"response":false,"message":"The SECRET_KEY is incorrect"}"#.to_owned(),
        r#"{"status":false,"message":"Error closing session","error":{}}"#.to_owned(),
        r#"{"uptime":1.5,"message":"OK","timestamp":1}"#.to_owned(),
        "<html><body>Bad Gateway</body></html>".to_owned(),
        r#"{"status":"phoneCode","phone":"5521999999999","phoneCode":"ABCD-1234","session":"session_abc_def"}"#
            .to_owned(),
        r#"{"status":"qrcode","qrcode":"iVBORw0KGgo=","urlcode":"2@x","session":"session_abc_def"}"#
            .to_owned(),
        r#"{"status":null,"qrcode":null,"version":"2.10.4","session":""}"#.to_owned(),
    ];
    let phone = api::PairingPhone::parse("5521999999999").unwrap();
    let statuses = [200, 201, 400, 401, 404, 500, 502, 0, 999];
    let types = [
        Some("application/json; charset=utf-8"),
        Some("text/html"),
        None,
        Some("APPLICATION/JSON"),
    ];
    let mut rng = Rng::new(1);
    let (n, mut accepted) = (iterations(), 0);
    for _ in 0..n {
        let reply = HttpReply {
            status: *rng.pick(&statuses),
            content_type: rng.pick(&types).map(str::to_owned),
            body: {
                let sample = rng.pick(&samples).clone();
                mutate(&mut rng, &sample)
            },
        };
        if let Ok(status) = api::parse_status_reply(&reply) {
            accepted += 1;
            // A QR reaches the popup only with QRCODE, and only as a PNG data URL.
            if let Some(qr) = &status.qr {
                assert_eq!(status.status, ServerStatus::QrCode, "{reply:?}");
                assert!(qr.starts_with("data:image/png;base64,"), "{qr}");
            }
        }
        if let Ok(token) = api::parse_token_reply(&reply, &session) {
            assert_eq!(Token::parse(token.expose()).as_ref(), Some(&token));
        }
        if let Ok(start) = api::parse_phone_start_reply(&reply, &session, &phone) {
            // A code only with PHONECODE, as 8 letters and digits; a QR only with QRCODE.
            if let Some(code) = &start.code {
                assert_eq!(start.status.status, ServerStatus::PhoneCode, "{reply:?}");
                let shown = code.display();
                assert!(shown.len() == 9 && shown.as_bytes()[4] == b'-', "{shown}");
            }
            if let Some(qr) = &start.status.qr {
                assert_eq!(start.status.status, ServerStatus::QrCode, "{reply:?}");
                assert!(qr.starts_with("data:image/png;base64,"), "{qr}");
            }
        }
        let _ = api::parse_probe_reply(&reply);
        let _ = api::parse_logout_reply(&reply);
        let _ = api::parse_close_reply(&reply);
        let _ = api::parse_healthz_reply(&reply);
        if let Err(err) = api::parse_status_reply(&reply) {
            let text = err.to_string();
            assert!(
                !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{text:?}"
            );
        }
    }
    report("reply parsers", n, accepted);
}

#[test]
fn message_decoding_never_panics_and_round_trips() {
    let tab = wpp_tabs::core::storage::TabId::new(7).unwrap();
    let samples: Vec<String> = [
        encode(&PopupRequest::Subscribe { tab_id: tab }),
        encode(&PopupRequest::Pair { server: None }),
        encode(&PopupRequest::PairByPhone {
            phone: api::PairingPhone::parse("+55 21 99999-9999").unwrap(),
            server: None,
        }),
        encode(&PopupRequest::Describe {
            label: Some(wpp_tabs::core::index::Label::parse("Loja Centro").unwrap()),
            colour: Some(wpp_tabs::core::index::Colour::Teal),
        }),
        encode(&OptionsRequest::GetSettings),
        encode(&PopupRequest::Unlock {
            server: wpp_tabs::core::settings::ServerId::first(),
            passphrase: wpp_tabs::core::lock::Passphrase::parse("correct horse battery").unwrap(),
        }),
        encode(&OptionsRequest::LockNow {
            id: wpp_tabs::core::settings::ServerId::first(),
        }),
        encode(&OptionsRequest::SaveServer {
            id: wpp_tabs::core::settings::ServerId::parse("s2"),
            name: "Loja".into(),
            server_url: ServerUrl::parse("https://wpp.example.com").unwrap(),
            secret_key: Some(SecretKey::parse("THISISMYSECURETOKEN").unwrap()),
            remember: wpp_tabs::core::settings::Remember::Always,
            allow_insecure_http: false,
            make_default: true,
        }),
        encode(&DiagnosticsRequest::Refresh),
        encode(&SessionsRequest::Act {
            action: wpp_tabs::core::messages::SessionAction::Logout,
            ids: vec![wpp_tabs::core::session_id::SessionId::parse("session_a_b").unwrap()],
        }),
        encode(&OptionsReply::Connection {
            ok: false,
            message: wpp_tabs::core::text::Text::new("options_test_ok"),
        }),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect();
    let mut rng = Rng::new(2);
    let (n, mut accepted) = (iterations(), 0);
    for _ in 0..n {
        let sample = rng.pick(&samples).clone();
        let text = mutate(&mut rng, &sample);
        if let Ok(request) = decode_text::<PopupRequest>(&text) {
            accepted += 1;
            let again = encode(&request).to_string();
            assert_eq!(decode_text::<PopupRequest>(&again), Ok(request));
        }
        if let Ok(request) = decode_text::<OptionsRequest>(&text) {
            accepted += 1;
            let again = encode(&request).to_string();
            assert_eq!(decode_text::<OptionsRequest>(&again), Ok(request));
        }
        if let Ok(request) = decode_text::<DiagnosticsRequest>(&text) {
            accepted += 1;
            let again = encode(&request).to_string();
            assert_eq!(decode_text::<DiagnosticsRequest>(&again), Ok(request));
        }
        if let Ok(request) = decode_text::<SessionsRequest>(&text) {
            accepted += 1;
            let again = encode(&request).to_string();
            assert_eq!(decode_text::<SessionsRequest>(&again), Ok(request));
        }
        let _ = decode_text::<OptionsReply>(&text);
        let _ = decode_text::<WorkerPush>(&text);
    }
    report("message decoding", n, accepted);
}

#[test]
fn settings_parsing_never_panics_and_normalises_once() {
    let urls = [
        "http://localhost:21465",
        "HTTPS://Wpp.Example.com:8443/base/",
        "http://[::1]:21465",
        "https://münchen.example",
        "http://192.168.0.10",
    ]
    .map(str::to_owned);
    let mut rng = Rng::new(3);
    let (n, mut accepted) = (iterations(), 0);
    for _ in 0..n {
        let sample = rng.pick(&urls).clone();
        let input = mutate(&mut rng, &sample);
        if let Ok(url) = ServerUrl::parse(&input) {
            accepted += 1;
            // Normal form is a fixed point, and stays a plain, printable URL.
            assert_eq!(
                ServerUrl::parse(url.as_str()).as_ref(),
                Ok(&url),
                "{input:?}"
            );
            assert!(url.as_str().is_ascii(), "{url}");
            let _ = url.is_loopback();
        }
        if let Ok(secret) = SecretKey::parse(&input) {
            assert_eq!(format!("{secret:?}"), "SecretKey(<redacted>)");
        }
        let json = format!(
            r#"{{"serverUrl":{},"rememberSecret":true}}"#,
            serde_json::json!(input)
        );
        if let Ok((settings, _)) = Settings::from_stored(serde_json::from_str(&json).unwrap()) {
            let _ = settings.default_server().check_transport();
        }
    }
    report("settings", n, accepted);
}
