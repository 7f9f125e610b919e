//! The shell's own pieces, run as Wasm in Node (`wasm-bindgen-test-runner`): the CSPRNG and
//! clock feeding session IDs, and `fetch` against wpp-sim over real HTTP, judged by the core.
//! `scripts/test.sh` starts wpp-sim and passes its URL in `WPP_SIM_URL` at build time.

use super::browser::{now_ms, random_u64};
use super::http::Fetch;
use crate::core::api::{self, ApiError, ApiRequest};
use crate::core::server::{HttpServer, Server, Transport};
use crate::core::session_id::SessionId;
use crate::core::settings::{SecretKey, ServerUrl};
use crate::core::status::ServerStatus;
use crate::core::storage::Token;
use wasm_bindgen_test::wasm_bindgen_test;

fn sim_url() -> ServerUrl {
    let Some(url) = option_env!("WPP_SIM_URL") else {
        panic!(
            "build the Wasm tests with WPP_SIM_URL set to a running wpp-sim (scripts/test.sh does)"
        );
    };
    ServerUrl::parse(url).expect("WPP_SIM_URL is a server URL")
}

fn secret() -> SecretKey {
    SecretKey::parse("THISISMYSECURETOKEN").unwrap()
}

fn server(url: ServerUrl) -> HttpServer<'static, Fetch> {
    HttpServer {
        url,
        transport: &Fetch,
    }
}

async fn mint(url: &ServerUrl, id: &SessionId) -> Token {
    server(url.clone())
        .generate_token(id, &secret())
        .await
        .expect("a token for this session")
}

#[wasm_bindgen_test]
fn ids_from_the_browser_clock_and_csprng_are_valid_and_distinct() {
    let ids: Vec<SessionId> = (0..64)
        .map(|_| SessionId::generate(now_ms() as u64, random_u64()))
        .collect();
    for id in &ids {
        assert_eq!(SessionId::parse(id.as_str()).as_ref(), Ok(id));
    }
    let mut unique = ids.clone();
    unique.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
    assert!(
        now_ms() > 1.7e12,
        "the clock is in milliseconds since the epoch"
    );
}

#[wasm_bindgen_test]
async fn mints_a_token_and_starts_a_session_over_real_http() {
    let url = sim_url();
    let id = SessionId::generate(now_ms() as u64, random_u64());
    let token = mint(&url, &id).await;
    let sim = server(url.clone());
    let status = sim.start_session(&id, &token).await.expect("a status");
    assert_eq!(
        status.status,
        ServerStatus::Closed,
        "a fresh start answers CLOSED"
    );
    let status = sim
        .status_session(&id, &token)
        .await
        .expect("a status")
        .status;
    assert!(
        matches!(status, ServerStatus::Initializing | ServerStatus::QrCode),
        "{status}"
    );
}

#[wasm_bindgen_test]
async fn a_wrong_secret_and_a_foreign_token_are_told_apart() {
    let url = sim_url();
    let id = SessionId::generate(now_ms() as u64, random_u64());
    let wrong = SecretKey::parse("not-the-secret").unwrap();
    let sim = server(url.clone());
    assert_eq!(
        sim.generate_token(&id, &wrong).await,
        Err(ApiError::WrongSecret)
    );

    let other = SessionId::generate(now_ms() as u64, random_u64());
    let others_token = mint(&url, &other).await;
    assert_eq!(
        sim.status_session(&id, &others_token).await,
        Err(ApiError::Unauthorized)
    );
}

#[wasm_bindgen_test]
async fn a_server_that_is_down_is_unreachable() {
    // Port 9 (discard) is closed on loopback: the connection is refused at once.
    let down = ServerUrl::parse("http://127.0.0.1:9").unwrap();
    assert_eq!(server(down).healthz().await, Err(ApiError::Unreachable));
}

#[wasm_bindgen_test]
async fn a_reply_slower_than_the_timeout_is_a_timeout() {
    let url = sim_url();
    let id = SessionId::generate(now_ms() as u64, random_u64());
    let token = mint(&url, &id).await;
    let delay_ms = u64::from(api::REQUEST_TIMEOUT_MS) + 3_000;
    let fault = ApiRequest {
        method: api::Method::Post,
        url: format!("{url}/__sim/faults"),
        bearer: None,
        json_body: Some(format!(
            r#"{{"route":"status-session","session":"{id}","kind":"delay","delay_ms":{delay_ms}}}"#
        )),
        timeout_ms: api::REQUEST_TIMEOUT_MS,
    };
    assert_eq!(Fetch.send(&fault).await.map(|r| r.status), Ok(200));
    // The server answers only after the delay; the request must give up before that.
    let result = server(url).status_session(&id, &token).await;
    assert_eq!(result, Err(ApiError::Timeout));
}

#[wasm_bindgen_test]
async fn a_reply_without_a_length_is_cut_off_at_the_cap_while_it_streams() {
    let url = sim_url();
    let id = SessionId::generate(now_ms() as u64, random_u64());
    let token = mint(&url, &id).await;
    let fault = ApiRequest {
        method: api::Method::Post,
        url: format!("{url}/__sim/faults"),
        bearer: None,
        json_body: Some(format!(
            r#"{{"route":"status-session","session":"{id}","kind":"endless"}}"#
        )),
        timeout_ms: api::REQUEST_TIMEOUT_MS,
    };
    assert_eq!(Fetch.send(&fault).await.map(|r| r.status), Ok(200));
    // The body never ends: reading it whole would run into the timeout instead.
    let result = server(url).status_session(&id, &token).await;
    assert_eq!(
        result,
        Err(ApiError::Malformed("the reply is too large".into()))
    );
}

// ---- WebCrypto: the remembered secret's lock (`shell::crypto`) ----

fn passphrase(text: &str) -> crate::core::lock::Passphrase {
    crate::core::lock::Passphrase::parse(text).unwrap()
}

/// Every encoding of `secret` the sealed form could hide it in: none may appear.
fn encodings(secret: &str) -> Vec<String> {
    use crate::core::lock::base64;
    let bytes = secret.as_bytes();
    let utf16: Vec<u8> = secret.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut found = vec![
        secret.to_owned(),
        hex(bytes),
        hex(&utf16),
        base64::encode(&utf16),
    ];
    // Base64 at each alignment, without the chunks the neighbouring bytes could change.
    for skip in 0..3 {
        let text = base64::encode(&bytes[skip..]);
        found.push(text[..text.len() - 4].to_owned());
    }
    found
}

#[wasm_bindgen_test]
async fn a_secret_sealed_with_webcrypto_opens_with_its_passphrase_only() {
    use super::crypto::WebCrypto;
    use crate::core::lock::{Crypto, OpenError, ITERATIONS};
    let right = passphrase("correct horse battery staple");
    let sealed = WebCrypto.seal(&secret(), &right).await.expect("sealed");
    let json = serde_json::to_value(&sealed).unwrap();
    assert_eq!(
        (json["v"].as_u64(), json["kdf"].as_str()),
        (Some(1), Some("PBKDF2-SHA-256"))
    );
    assert_eq!(sealed.iterations(), ITERATIONS);
    let parts = sealed.parts().expect("a well-formed sealed form");
    assert_eq!(
        parts.ciphertext.len(),
        secret().expose().len() + 16,
        "AES-GCM's tag"
    );
    let text = json.to_string();
    for hidden in encodings(secret().expose()) {
        assert!(
            !text.contains(&hidden),
            "the sealed form shows {hidden:?}: {text}"
        );
    }

    let opened = WebCrypto.open(&sealed, &right).await;
    assert_eq!(
        opened.map(|s| s.expose().to_owned()),
        Ok(secret().expose().to_owned())
    );
    let wrong = WebCrypto
        .open(&sealed, &passphrase("correct horse battery stapler"))
        .await;
    assert_eq!(wrong.map(drop), Err(OpenError::WrongPassphrase));

    // A fresh salt and IV each time: the same key sealed twice shares nothing.
    let again = WebCrypto
        .seal(&secret(), &right)
        .await
        .expect("sealed again");
    let (a, b) = (sealed.parts().unwrap(), again.parts().unwrap());
    assert_ne!(a.salt, b.salt);
    assert_ne!(a.iv, b.iv);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[wasm_bindgen_test]
async fn a_tampered_sealed_secret_does_not_open() {
    use super::crypto::WebCrypto;
    use crate::core::lock::{base64, Crypto, OpenError, Sealed};
    let right = passphrase("correct horse battery staple");
    let sealed = WebCrypto.seal(&secret(), &right).await.expect("sealed");
    let mut json = serde_json::to_value(&sealed).unwrap();
    let mut bytes = sealed.parts().unwrap().ciphertext;
    bytes[0] ^= 1;
    json["ciphertext"] = base64::encode(&bytes).into();
    let tampered: Sealed = serde_json::from_value(json).unwrap();
    assert_eq!(
        WebCrypto.open(&tampered, &right).await.map(drop),
        Err(OpenError::WrongPassphrase),
        "AES-GCM's tag catches any change"
    );
}

#[wasm_bindgen_test]
async fn a_passphrase_opens_in_either_unicode_form() {
    use super::crypto::WebCrypto;
    use crate::core::lock::Crypto;
    // "é" precomposed (NFC) and decomposed (NFD): the same passphrase as typed elsewhere.
    let sealed = WebCrypto
        .seal(&secret(), &passphrase("caf\u{e9} au lait"))
        .await
        .expect("sealed");
    let opened = WebCrypto
        .open(&sealed, &passphrase("cafe\u{301} au lait"))
        .await;
    assert!(opened.is_ok());
}
