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
    };
    assert_eq!(Fetch.send(&fault).await.map(|r| r.status), Ok(200));
    // The body never ends: reading it whole would run into the timeout instead.
    let result = server(url).status_session(&id, &token).await;
    assert_eq!(
        result,
        Err(ApiError::Malformed("the reply is too large".into()))
    );
}
