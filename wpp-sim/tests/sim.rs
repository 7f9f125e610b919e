//! Drives the simulator over real HTTP and WebSocket on 127.0.0.1 with fast timers.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use wpp_sim::{FaultKind, FaultSpec, SimConfig};

const SEC: Duration = Duration::from_secs(1);

fn is_pairing_code(c: &str) -> bool {
    let b = c.as_bytes();
    b.len() == 9
        && b[4] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, ch)| i == 4 || ch.is_ascii_uppercase() || ch.is_ascii_digit())
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_token_success_and_wrong_secret() {
    let s = sim().await;
    let r = s
        .http
        .post(s.url(&format!("/api/alpha/{SECRET}/generate-token")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["session"], "alpha");
    let token = v["token"].as_str().unwrap();
    assert!(token.starts_with("$2b$04$"), "{token}");
    assert!(!token.contains('/') && !token.contains('+'));
    assert_eq!(v["full"], format!("alpha:{token}"));
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["status", "session", "token", "full"]);
    // Random salt: a second token differs and both stay valid.
    let t2 = s.token("alpha").await;
    assert_ne!(t2, token);
    assert_eq!(s.get("alpha", token, "status-session").await.status(), 200);
    assert_eq!(s.get("alpha", &t2, "status-session").await.status(), 200);

    let r = s
        .http
        .post(s.url("/api/alpha/WRONG/generate-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"response": false, "message": "The SECRET_KEY is incorrect"})
    );
    // GET is not a route: Express's 404 page.
    let r = s
        .http
        .get(s.url(&format!("/api/alpha/{SECRET}/generate-token")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Cannot GET /api/alpha/"));
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_header_and_path_forms() {
    let s = sim().await;
    let tok = s.token("s1").await;
    let other = s.token("s2").await;
    let closed = json!({"status": "CLOSED", "qrcode": null});
    let not_present = json!({"message": "Token is not present. Check your header and try again"});
    let wrong = json!({"error": "Check that the Session and Token are correct"});
    let url = s.url("/api/s1/status-session");
    let call = |auth: Option<String>| {
        let mut r = s.http.get(&url);
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        async move {
            let r = r.send().await.unwrap();
            let code = r.status().as_u16();
            (code, r.json::<Value>().await.unwrap())
        }
    };
    // A valid token for a never-started session passes auth.
    assert_eq!(
        call(Some(format!("Bearer {tok}"))).await,
        (200, closed.clone())
    );
    // The scheme word is never checked.
    assert_eq!(
        call(Some(format!("Whatever {tok}"))).await,
        (200, closed.clone())
    );
    assert_eq!(call(None).await, (401, not_present.clone()));
    assert_eq!(call(Some(tok.clone())).await, (401, not_present.clone()));
    assert_eq!(
        call(Some(format!("Bearer  {tok}"))).await,
        (401, not_present.clone())
    );
    assert_eq!(
        call(Some("Bearer".into())).await,
        (401, not_present.clone())
    );
    assert_eq!(
        call(Some("Bearer garbage".into())).await,
        (401, wrong.clone())
    );
    assert_eq!(
        call(Some(format!("Bearer {other}"))).await,
        (401, wrong.clone())
    );

    // Path form: the header is ignored, even a wrong one.
    let r = s
        .http
        .get(s.url(&format!("/api/s1:{tok}/status-session")))
        .header("Authorization", format!("Bearer {other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), closed);
    // Percent-encoded form works too (Express decodes params).
    let enc = tok.replace('$', "%24");
    let r = s
        .http
        .get(s.url(&format!("/api/s1%3A{enc}/status-session")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .http
        .get(s.url(&format!("/api/s1:{other}/status-session")))
        .header("Authorization", format!("Bearer {tok}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap(), wrong);
    let r = s
        .http
        .get(s.url("/api/s1:/status-session"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Changing the secret invalidates tokens.
    let s2 = sim_with(SimConfig {
        secret: "OTHER".into(),
        ..SimConfig::fast()
    })
    .await;
    let (code, v) = s2.get_json("s1", &tok, "status-session").await;
    assert_eq!((code, v), (401, wrong));
    s.server.shutdown().await;
    s2.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflight_and_headers() {
    let s = sim().await;
    let r = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/api/s1/status-session"))
        .header("Origin", "chrome-extension://abc")
        .header("Access-Control-Request-Method", "GET")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(
        h["access-control-allow-methods"],
        "GET,HEAD,PUT,PATCH,POST,DELETE"
    );
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization,content-type"
    );
    assert!(h.get("access-control-allow-credentials").is_none());
    assert!(r.bytes().await.unwrap().is_empty());
    // Without Access-Control-Request-Headers nothing is mirrored.
    let r = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/api/s1/start-session"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers().get("access-control-allow-headers").is_none());
    // Normal answers, errors included, carry the origin header.
    let r = s
        .http
        .get(s.url("/api/s1/status-session"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn qr_login_close_restart_logout() {
    let s = sim().await;
    let t = s.token("s1").await;
    let (code, v) = s.post_json("s1", &t, "start-session", None).await;
    assert_eq!(
        (code, v),
        (200, json!({"status": "CLOSED", "qrcode": null}))
    );
    assert_eq!(
        s.status("s1", &t).await,
        json!({"status": "INITIALIZING", "qrcode": null, "version": "2.10.4"})
    );
    let (_, q) = s.get_json("s1", &t, "qrcode-session").await;
    assert_eq!(
        q,
        json!({"status": "INITIALIZING", "message": "QRCode is not available..."})
    );

    let v = s.wait_status("s1", &t, "QRCODE", 3 * SEC).await;
    let urlcode = v["urlcode"].as_str().unwrap().to_string();
    assert!(
        urlcode.starts_with("2@") && urlcode.ends_with("=="),
        "{urlcode}"
    );
    assert_eq!(urlcode.matches(',').count(), 3);
    assert_eq!(v["version"], "2.10.4");
    let data = v["qrcode"].as_str().unwrap();
    let b64 = data
        .strip_prefix("data:image/png;base64,")
        .expect("data URL");
    let small = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(decode_qr(&small), urlcode);

    // qrcode-session: a real ~500 px PNG of the same urlcode.
    let r = s.get("s1", &t, "qrcode-session").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let big = r.bytes().await.unwrap();
    assert_eq!(png_size(&big), (500, 500));
    assert_eq!(decode_qr(&big), urlcode);

    // Idempotent while QRCODE: answers the status-session shape, restarts nothing.
    let (code, again) = s
        .post_json("s1", &t, "start-session", Some(json!({"waitQrCode": true})))
        .await;
    assert_eq!(code, 200);
    assert_eq!(again["status"], "QRCODE");
    assert_eq!(again["urlcode"], urlcode.as_str());

    assert_eq!(
        s.get_json("s1", &t, "check-connection-session").await,
        (200, json!({"status": false, "message": "Disconnected"}))
    );
    let not_active = json!({"response": null, "status": "Disconnected", "message": "A sessão do WhatsApp não está ativa."});
    assert_eq!(
        s.post_json("s1", &t, "logout-session", None).await,
        (404, not_active.clone())
    );

    let (code, v) = s.scan("s1").await;
    assert_eq!((code, v), (200, json!({"ok": true})));
    let v = s.status("s1", &t).await;
    assert_eq!(v["status"], "CONNECTED");
    // Stale QR after login.
    assert_eq!(v["urlcode"], urlcode.as_str());
    assert!(v["qrcode"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    assert_eq!(
        s.get("s1", &t, "qrcode-session").await.headers()["content-type"],
        "image/png"
    );
    assert_eq!(
        s.get_json("s1", &t, "check-connection-session").await,
        (200, json!({"status": true, "message": "Connected"}))
    );
    let (code, v) = s.scan("s1").await;
    assert_eq!(code, 409);
    assert!(v["error"].is_string());

    // close-session keeps the login: the entry is {status:null} and a restart needs no QR.
    assert_eq!(
        s.post_json("s1", &t, "close-session", None).await,
        (
            200,
            json!({"status": true, "message": "Session successfully closed"})
        )
    );
    assert_eq!(
        s.status("s1", &t).await,
        json!({"status": "CLOSED", "qrcode": null})
    );
    let (_, q) = s.get_json("s1", &t, "qrcode-session").await;
    assert_eq!(
        q,
        json!({"status": null, "message": "QRCode is not available..."})
    );
    let (code, v) = s.post_json("s1", &t, "start-session", None).await;
    assert_eq!(
        (code, v),
        (200, json!({"status": "CLOSED", "qrcode": null}))
    );
    assert_eq!(s.status("s1", &t).await["status"], "INITIALIZING");
    let v = s.wait_status("s1", &t, "CONNECTED", 3 * SEC).await;
    assert_eq!(
        v,
        json!({"status": "CONNECTED", "qrcode": null, "version": "2.10.4"})
    );

    // logout forgets the login: the next start needs a QR again.
    assert_eq!(
        s.post_json("s1", &t, "logout-session", None).await,
        (
            200,
            json!({"status": true, "message": "Session successfully closed"})
        )
    );
    assert_eq!(
        s.status("s1", &t).await,
        json!({"status": "CLOSED", "qrcode": null})
    );
    assert_eq!(
        s.post_json("s1", &t, "logout-session", None).await,
        (404, not_active)
    );
    let (_, q) = s.get_json("s1", &t, "qrcode-session").await;
    assert_eq!(q["status"], Value::Null);
    assert!(q["message"]
        .as_str()
        .unwrap()
        .starts_with("Session not started."));
    s.post_json("s1", &t, "start-session", None).await;
    let v = s.wait_status("s1", &t, "QRCODE", 3 * SEC).await;
    assert_ne!(v["urlcode"], urlcode.as_str());
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn qr_rotates_then_auto_closes_with_stale_qr() {
    let s = sim_with(SimConfig {
        init_delay: Duration::from_millis(100),
        qr_rotate: Duration::from_millis(400),
        auto_close: Duration::from_millis(1500),
        ..SimConfig::fast()
    })
    .await;
    let t = s.token("r").await;
    s.post("r", &t, "start-session", None).await;
    let first = s.wait_status("r", &t, "QRCODE", 2 * SEC).await["urlcode"].clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = s.status("r", &t).await;
    assert_eq!(second["status"], "QRCODE");
    assert_ne!(second["urlcode"], first, "QR rotated");

    let v = s.wait_status("r", &t, "CLOSED", 3 * SEC).await;
    // Stale urlcode and qrcode remain after autoClose.
    assert!(v["urlcode"].as_str().unwrap().starts_with("2@"));
    assert!(v["qrcode"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    assert_eq!(v["version"], "2.10.4");
    let stale = v["urlcode"].clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.status("r", &t).await["urlcode"],
        stale,
        "no rotation once CLOSED"
    );
    assert_eq!(
        s.get("r", &t, "qrcode-session").await.headers()["content-type"],
        "image/png"
    );
    assert_eq!(s.scan("r").await.0, 409);

    // Restart from CLOSED: INITIALIZING (stale urlcode still there), then a fresh QR.
    let (_, v) = s.post_json("r", &t, "start-session", None).await;
    assert_eq!(v["status"], "CLOSED");
    assert_eq!(v["urlcode"], stale);
    assert_eq!(s.status("r", &t).await["status"], "INITIALIZING");
    let v = s.wait_status("r", &t, "QRCODE", 2 * SEC).await;
    assert_ne!(v["urlcode"], stale);
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn phone_pairing_code() {
    let s = sim().await;
    let t = s.token("p").await;
    s.post(
        "p",
        &t,
        "start-session",
        Some(json!({"phone": "5521999999999"})),
    )
    .await;
    let v = s.wait_status("p", &t, "PHONECODE", 3 * SEC).await;
    assert_eq!(
        v,
        json!({"status": "PHONECODE", "qrcode": null, "version": "2.10.4"})
    );
    let info = s.server.control().session("p").unwrap();
    assert_eq!(info.status, "PHONECODE");
    assert!(
        is_pairing_code(info.phone_code.as_deref().unwrap()),
        "{info:?}"
    );
    assert_eq!(info.urlcode, None);
    let (_, q) = s.get_json("p", &t, "qrcode-session").await;
    assert_eq!(
        q,
        json!({"status": "PHONECODE", "message": "QRCode is not available..."})
    );
    assert_eq!(s.scan("p").await.0, 200);
    assert_eq!(s.status("p", &t).await["status"], "CONNECTED");
    // The linked account is the number the pairing code was asked for.
    assert_eq!(
        s.get_json("p", &t, "get-phone-number").await,
        (
            200,
            json!({"status": "success", "response": "5521999999999@c.us", "mapper": "device"})
        )
    );
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_qr_code_holds_until_first_qr() {
    let s = sim().await;
    let t = s.token("w").await;
    let started = Instant::now();
    let (code, v) = s
        .post_json("w", &t, "start-session", Some(json!({"waitQrCode": true})))
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "held until the QR"
    );
    assert_eq!(code, 200);
    assert_eq!(v["status"], "qrcode");
    assert_eq!(v["session"], "w");
    let urlcode = v["urlcode"].as_str().unwrap();
    let b64 = v["qrcode"].as_str().unwrap();
    assert!(!b64.starts_with("data:"), "no data: prefix");
    let png = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(decode_qr(&png), urlcode);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["status", "qrcode", "urlcode", "session"]);

    let t2 = s.token("wp").await;
    let (code, v) = s
        .post_json(
            "wp",
            &t2,
            "start-session",
            Some(json!({"waitQrCode": true, "phone": "5511988887777"})),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], "phoneCode");
    assert_eq!(v["phone"], "5511988887777");
    assert_eq!(v["session"], "wp");
    assert!(is_pairing_code(v["phoneCode"].as_str().unwrap()));
    assert_eq!(
        s.server
            .control()
            .session("wp")
            .unwrap()
            .phone_code
            .as_deref(),
        v["phoneCode"].as_str()
    );
    s.server.shutdown().await;
}

/// What a client pairing by phone relies on (§2.1, §2.5, §3): the code comes in the held
/// answer only for a session without an entry; it expires with autoClose like a QR; a session
/// with an entry (expired, or the `{status:null}` a close leaves) is answered at once, with
/// no code.
#[tokio::test(flavor = "multi_thread")]
async fn phone_code_expires_and_only_a_session_without_an_entry_gets_it_in_the_answer() {
    let s = sim_with(SimConfig {
        init_delay: Duration::from_millis(100),
        auto_close: Duration::from_millis(1500),
        ..SimConfig::fast()
    })
    .await;
    let by_phone = json!({"waitQrCode": true, "phone": "5511988887777"});
    let t = s.token("pe").await;
    let (_, v) = s
        .post_json("pe", &t, "start-session", Some(by_phone.clone()))
        .await;
    let first = v["phoneCode"].as_str().unwrap().to_owned();
    assert!(is_pairing_code(&first), "{v}");
    let closed = s.wait_status("pe", &t, "CLOSED", 3 * SEC).await;
    assert_eq!(closed["qrcode"], Value::Null);
    assert_eq!(s.scan("pe").await.0, 409, "an expired code links nothing");
    let started = Instant::now();
    let (code, v) = s
        .post_json("pe", &t, "start-session", Some(by_phone.clone()))
        .await;
    assert!(started.elapsed() < Duration::from_millis(100), "not held");
    assert_eq!(code, 200);
    assert_eq!(v["status"], "CLOSED");
    assert_eq!(v.get("phoneCode"), None);
    s.wait_status("pe", &t, "PHONECODE", 2 * SEC).await;
    let again = s
        .server
        .control()
        .session("pe")
        .unwrap()
        .phone_code
        .unwrap();
    assert!(is_pairing_code(&again));

    let tq = s.token("pq").await;
    s.post("pq", &tq, "start-session", None).await;
    s.wait_status("pq", &tq, "QRCODE", 2 * SEC).await;
    assert_eq!(s.post("pq", &tq, "close-session", None).await.status(), 500);
    let (code, v) = s
        .post_json("pq", &tq, "start-session", Some(by_phone))
        .await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], Value::Null);
    assert_eq!(v.get("phoneCode"), None);
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn close_session_errors_and_placeholders() {
    let s = sim().await;
    let t = s.token("c").await;
    let err =
        json!({"status": false, "message": "Error closing session", "error": {"level": "error"}});
    let closed_ok = json!({"status": true, "message": "Session successfully closed"});
    assert_eq!(
        s.post_json("c", &t, "close-session", None).await,
        (500, err.clone())
    );
    s.post("c", &t, "start-session", None).await;
    assert_eq!(s.status("c", &t).await["status"], "INITIALIZING");
    // A placeholder cannot be closed (500) but its entry is reset anyway.
    assert_eq!(
        s.post_json("c", &t, "close-session", None).await,
        (500, err.clone())
    );
    assert_eq!(
        s.status("c", &t).await,
        json!({"status": "CLOSED", "qrcode": null})
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.status("c", &t).await["status"],
        "CLOSED",
        "old timer cancelled"
    );
    // The {status:null} entry closes at once.
    assert_eq!(
        s.post_json("c", &t, "close-session", None).await,
        (200, closed_ok.clone())
    );
    // Its browser leaked and holds the profile: a start under the same name never leaves
    // INITIALIZING, until the server restarts.
    let ctl = s.server.control();
    assert!(ctl.profile_locked("c"));
    s.post("c", &t, "start-session", None).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(s.status("c", &t).await["status"], "INITIALIZING");
    assert_eq!(
        s.post_json("c", &t, "close-session", None).await,
        (500, err.clone())
    );
    ctl.reset();
    assert!(!ctl.profile_locked("c"));
    s.post("c", &t, "start-session", None).await;
    s.wait_status("c", &t, "QRCODE", 3 * SEC).await;

    // A QRCODE session is a placeholder too.
    let t2 = s.token("c2").await;
    s.post("c2", &t2, "start-session", None).await;
    s.wait_status("c2", &t2, "QRCODE", 3 * SEC).await;
    assert_eq!(
        s.post_json("c2", &t2, "close-session", None).await,
        (500, err)
    );
    assert!(ctl.profile_locked("c2"));
    // After close-session a waitQrCode start answers at once with the {status:null} entry.
    let (code, v) = s
        .post_json(
            "c2",
            &t2,
            "start-session",
            Some(json!({"waitQrCode": true})),
        )
        .await;
    assert_eq!(
        (code, v),
        (
            200,
            json!({"status": null, "qrcode": null, "version": "2.10.4"})
        )
    );
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn close_after_auto_close_or_connected_locks_nothing() {
    // QR codes live 1.5 s: long enough to be seen by polls on a loaded machine.
    let s = sim_with(SimConfig {
        init_delay: Duration::from_millis(100),
        auto_close: Duration::from_millis(1500),
        ..SimConfig::fast()
    })
    .await;
    let ctl = s.server.control();
    // Auto-closed: the library closed its browser; close-session still 500s.
    let t = s.token("a").await;
    s.post("a", &t, "start-session", None).await;
    s.wait_status("a", &t, "CLOSED", 5 * SEC).await;
    assert_eq!(s.post_json("a", &t, "close-session", None).await.0, 500);
    assert!(!ctl.profile_locked("a"));
    s.post("a", &t, "start-session", None).await;
    s.wait_status("a", &t, "QRCODE", 3 * SEC).await;
    // Connected: a real client, closed for real.
    let t = s.token("b").await;
    s.post("b", &t, "start-session", None).await;
    s.wait_status("b", &t, "QRCODE", 3 * SEC).await;
    assert_eq!(s.scan("b").await.0, 200);
    assert_eq!(s.post_json("b", &t, "close-session", None).await.0, 200);
    assert!(!ctl.profile_locked("b"));
    s.post("b", &t, "start-session", None).await;
    s.wait_status("b", &t, "CONNECTED", 3 * SEC).await;
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_session_until_close() {
    // Without the profile lock, a closed stuck session starts normally again.
    let s = sim_with(SimConfig {
        profile_lock: false,
        ..SimConfig::fast()
    })
    .await;
    let t = s.token("k").await;
    let ctl = s.server.control();
    ctl.stuck("k");
    s.post("k", &t, "start-session", None).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(s.status("k", &t).await["status"], "INITIALIZING");
    assert_eq!(s.post_json("k", &t, "logout-session", None).await.0, 404);
    assert_eq!(
        s.post_json("k", &t, "start-session", None).await.1["status"],
        "INITIALIZING"
    );
    assert_eq!(s.post_json("k", &t, "close-session", None).await.0, 500);
    assert!(!ctl.profile_locked("k"));
    s.post("k", &t, "start-session", None).await;
    s.wait_status("k", &t, "QRCODE", 3 * SEC).await;

    // Stuck while already INITIALIZING, via HTTP.
    let t2 = s.token("k2").await;
    s.post("k2", &t2, "start-session", None).await;
    let (code, _) = s.sim_post("/__sim/sessions/k2/stuck", json!({})).await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(s.status("k2", &t2).await["status"], "INITIALIZING");
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_hangs_with_a_json_content_type() {
    let s = sim().await;
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let slow = s
        .http
        .get(s.url("/healthz"))
        .header("Content-Type", "application/json")
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(slow.is_err_and(|e| e.is_timeout()));
    let r = s
        .http
        .get(s.url("/healthz"))
        .header("Content-Type", "application/json; charset=utf-8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unlink_and_control_sessions() {
    let s = sim().await;
    let t = s.token("u").await;
    assert_eq!(
        s.sim_post("/__sim/sessions/u/unlink", json!({})).await.0,
        409
    );
    s.post("u", &t, "start-session", None).await;
    let v = s.wait_status("u", &t, "QRCODE", 3 * SEC).await;
    let list: Value = s
        .http
        .get(s.url("/__sim/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list,
        json!({"sessions": [{"session": "u", "status": "QRCODE", "urlcode": v["urlcode"], "phoneCode": null, "account": null}]})
    );
    assert_eq!(s.scan("u").await.0, 200);
    assert_eq!(
        s.sim_post("/__sim/sessions/u/unlink", json!({})).await,
        (200, json!({"ok": true}))
    );
    assert_eq!(
        s.status("u", &t).await,
        json!({"status": "CLOSED", "qrcode": null})
    );
    s.post("u", &t, "start-session", None).await;
    s.wait_status("u", &t, "QRCODE", 3 * SEC).await;
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn show_all_sessions_healthz_pages() {
    let s = sim().await;
    let a = s.token("a").await;
    let b = s.token("b").await;
    let _only_token = s.token("c").await;
    s.post("b", &b, "start-session", None).await;
    s.post("a", &a, "start-session", None).await;
    let r = s
        .http
        .get(s.url(&format!("/api/{SECRET}/show-all-sessions")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"response": ["a", "b"]})
    );
    let r = s
        .http
        .get(s.url("/api/nope/show-all-sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"response": false, "message": "The token is incorrect"})
    );

    let v: Value = s
        .http
        .get(s.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["message"], "OK");
    assert!(v["uptime"].as_f64().unwrap() >= 0.0);
    assert!(v["timestamp"].as_u64().unwrap() > 1_600_000_000_000);

    let r = s.http.get(s.url("/")).send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("<title>wpp-sim</title>"));
    let page = s
        .http
        .get(s.url("/page/tab-two"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<title>tab-two</title>"));
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn res_send_wrapper_adds_session_on_exact_json_content_type() {
    let s = sim().await;
    let t = s.token("j").await;
    let send = |ct: &'static str, session: &str, body: &str| {
        s.http
            .post(s.url(&format!("/api/{session}/start-session")))
            .header("Authorization", format!("Bearer {t}"))
            .header("Content-Type", ct)
            .body(body.to_string())
            .send()
    };
    // Unknown session: req.client is undefined -> "".
    let v: Value = send("application/json", "j", "{}")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({"status": "CLOSED", "qrcode": null, "session": ""})
    );
    // Known session: its name.
    let v: Value = send("application/json", "j", "{}")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["session"], "j");
    assert_eq!(v["status"], "INITIALIZING");
    // Not an exact match: no session field.
    let v: Value = send("application/json; charset=utf-8", "j", "{}")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v.get("session").is_none());
    // The 401 bodies are decorated too.
    let r = s
        .http
        .get(s.url("/api/j/status-session"))
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "Token is not present. Check your header and try again", "session": ""})
    );
    // A broken JSON body is body-parser's 400 HTML page.
    let r = send("application/json", "j", "{oops").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("SyntaxError"));
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_each_kind() {
    let s = sim().await;
    let t = s.token("f").await;
    let ok = json!({"status": "CLOSED", "qrcode": null});

    s.fault(json!({"route": "status-session", "kind": "http500", "count": 2}))
        .await;
    for _ in 0..2 {
        assert_eq!(
            s.get_json("f", &t, "status-session").await,
            (
                500,
                json!({"status": "error", "message": "simulated failure"})
            )
        );
    }
    assert_eq!(
        s.get_json("f", &t, "status-session").await,
        (200, ok.clone())
    );

    s.fault(json!({"route": "status-session", "kind": "unauthorized"}))
        .await;
    assert_eq!(
        s.get_json("f", &t, "status-session").await,
        (
            401,
            json!({"error": "Check that the Session and Token are correct"})
        )
    );

    s.fault(json!({"route": "status-session", "kind": "malformed_json"}))
        .await;
    let r = s.get("f", &t, "status-session").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let text = r.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    s.fault(json!({"route": "status-session", "kind": "html_error"}))
        .await;
    let r = s.get("f", &t, "status-session").await;
    assert_eq!(r.status(), 502);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("502 Bad Gateway"));

    s.fault(json!({"route": "status-session", "kind": "delay", "delay_ms": 600}))
        .await;
    let started = Instant::now();
    assert_eq!(
        s.get_json("f", &t, "status-session").await,
        (200, ok.clone())
    );
    assert!(started.elapsed() >= Duration::from_millis(600));

    s.fault(json!({"route": "status-session", "kind": "drop"}))
        .await;
    let err = s
        .http
        .get(s.url("/api/f/status-session"))
        .header("Authorization", format!("Bearer {t}"))
        .send()
        .await;
    assert!(err.is_err(), "connection dropped without a response");

    s.fault(json!({"route": "status-session", "kind": "oversized"}))
        .await;
    let r = s.get("f", &t, "status-session").await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert!(body.len() > 4 * 1024 * 1024);
    assert!(serde_json::from_slice::<Value>(&body).is_ok());

    // Session filter and wildcard route.
    let to = s.token("other").await;
    s.fault(json!({"route": "*", "session": "other", "kind": "http500"}))
        .await;
    assert_eq!(s.get_json("f", &t, "status-session").await.0, 200);
    assert_eq!(
        s.get_json("other", &to, "check-connection-session").await.0,
        500
    );

    // A fault on generate-token and on show-all-sessions; DELETE clears pending faults.
    s.fault(json!({"route": "generate-token", "kind": "html_error"}))
        .await;
    let r = s
        .http
        .post(s.url(&format!("/api/g/{SECRET}/generate-token")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    s.fault(json!({"route": "show-all-sessions", "kind": "http500", "count": 5}))
        .await;
    let r = s.http.delete(s.url("/__sim/faults")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .http
        .get(s.url(&format!("/api/{SECRET}/show-all-sessions")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (code, v) = s
        .sim_post("/__sim/faults", json!({"route": "nope", "kind": "drop"}))
        .await;
    assert_eq!(code, 400);
    assert!(v["error"].is_string());
    let (code, _) = s
        .sim_post("/__sim/faults", json!({"route": "*", "kind": "explode"}))
        .await;
    assert_eq!(code, 400);

    // Same through SimControl.
    let ctl = s.server.control();
    ctl.inject_fault(FaultSpec {
        route: "qrcode-session".into(),
        session: Some("f".into()),
        kind: FaultKind::Http500,
        count: 1,
        delay_ms: None,
    })
    .unwrap();
    assert_eq!(s.get_json("f", &t, "qrcode-session").await.0, 500);
    assert_eq!(s.get_json("f", &t, "qrcode-session").await.0, 200);
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_log_counts_and_tokens() {
    let s = sim().await;
    let t1 = s.token("l").await;
    let t2 = s.token("l").await;
    s.get("l", &t1, "status-session").await;
    s.get("l", &t1, "status-session").await;
    s.http
        .get(s.url(&format!("/api/l:{t2}/check-connection-session")))
        .send()
        .await
        .unwrap();
    s.http
        .get(s.url("/api/l/status-session"))
        .send()
        .await
        .unwrap();
    s.get("l", "junk", "status-session").await;

    let log: Value = s
        .http
        .get(s.url("/__sim/log"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reqs = log["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 7, "{log}");
    assert_eq!(
        reqs[0],
        json!({"method": "POST", "path": "/api/l/***/generate-token", "route": "generate-token", "session": "l", "token": null, "auth": "none", "status": 201})
    );
    assert_eq!(reqs[2]["auth"], "ok");
    assert_eq!(reqs[2]["token"], t1.as_str());
    assert_eq!(reqs[2]["path"], "/api/l/status-session");
    assert_eq!(reqs[4]["path"], "/api/l:***/check-connection-session");
    assert_eq!(reqs[4]["token"], t2.as_str());
    assert_eq!(reqs[4]["route"], "check-connection-session");
    assert_eq!(reqs[5]["auth"], "missing");
    assert_eq!(reqs[5]["status"], 401);
    assert_eq!(reqs[6]["auth"], "invalid");
    assert_eq!(reqs[6]["token"], "junk");
    assert_eq!(
        log["sessions"],
        json!({"l": {"authenticated": 3, "tokens": [t1, t2]}})
    );
    assert!(!log.to_string().contains(SECRET), "secret redacted");

    let typed = s.server.control().log();
    assert_eq!(typed.requests.len(), 7);
    assert_eq!(typed.sessions["l"].authenticated, 3);

    let r = s.http.delete(s.url("/__sim/log")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let log: Value = s
        .http
        .get(s.url("/__sim/log"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log, json!({"requests": [], "sessions": {}}));
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_forgets_everything() {
    let s = sim().await;
    let ctl = s.server.control();
    let t = ctl.token_for("z");
    s.post("z", &t, "start-session", None).await;
    s.wait_status("z", &t, "QRCODE", 3 * SEC).await;
    s.fault(json!({"route": "*", "kind": "http500"})).await;
    let (code, _) = s.sim_post("/__sim/reset", json!({})).await;
    assert_eq!(code, 200);
    assert!(ctl.sessions().is_empty());
    assert_eq!(
        s.status("z", &t).await,
        json!({"status": "CLOSED", "qrcode": null})
    );
    let r = s
        .http
        .get(s.url(&format!("/api/{SECRET}/show-all-sessions")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"response": []}));
    assert_eq!(ctl.log().requests.len(), 2);
    s.server.shutdown().await;
}

async fn next_text<S>(ws: &mut S) -> String
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("socket message in time")
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = m {
            return t;
        }
    }
}

/// Reads frames until a `42` event named `name`; returns its payload.
async fn next_event<S>(ws: &mut S, name: &str) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let t = next_text(ws).await;
        if let Some(json) = t.strip_prefix("42") {
            let v: Value = serde_json::from_str(json).unwrap();
            if v[0] == name {
                return v[1].clone();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_io_events() {
    let s = sim().await;
    let ws_url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        s.base.replace("http", "ws")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let open = next_text(&mut ws).await;
    let hs: Value = serde_json::from_str(open.strip_prefix('0').expect("open packet")).unwrap();
    assert!(hs["sid"].as_str().unwrap().len() >= 10);
    assert_eq!(hs["upgrades"], json!([]));
    assert_eq!(hs["pingInterval"], 25000);
    assert_eq!(hs["pingTimeout"], 20000);
    assert_eq!(hs["maxPayload"], 1000000);
    ws.send(Message::Text("40".into())).await.unwrap();
    let connect = next_text(&mut ws).await;
    let c: Value = serde_json::from_str(connect.strip_prefix("40").unwrap()).unwrap();
    assert!(c["sid"].is_string());
    ws.send(Message::Text("2".into())).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "3");

    // A second client gets the same broadcasts (io.emit).
    let (mut ws2, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    next_text(&mut ws2).await;
    ws2.send(Message::Text("40".into())).await.unwrap();
    next_text(&mut ws2).await;

    let t = s.token("sock").await;
    s.post("sock", &t, "start-session", None).await;
    let qr = next_event(&mut ws, "qrCode").await;
    assert_eq!(qr["session"], "sock");
    assert!(qr["data"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    let urlcode = s.status("sock", &t).await["urlcode"]
        .as_str()
        .unwrap()
        .to_string();
    let b64 = qr["data"]
        .as_str()
        .unwrap()
        .trim_start_matches("data:image/png;base64,");
    let png = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(decode_qr(&png), urlcode);
    assert_eq!(next_event(&mut ws2, "qrCode").await["session"], "sock");

    s.scan("sock").await;
    assert_eq!(
        next_event(&mut ws, "session-logged").await,
        json!({"status": true, "session": "sock"})
    );
    s.post("sock", &t, "close-session", None).await;
    assert_eq!(next_event(&mut ws, "whatsapp-status").await, json!(false));

    // After close-session the entry has no session field: events lack it (#1931).
    s.post("sock", &t, "start-session", None).await;
    assert_eq!(
        next_event(&mut ws, "session-logged").await,
        json!({"status": true})
    );

    let tp = s.token("ph").await;
    s.post(
        "ph",
        &tp,
        "start-session",
        Some(json!({"phone": "5521999999999"})),
    )
    .await;
    let pc = next_event(&mut ws, "phoneCode").await;
    assert_eq!(pc["phone"], "5521999999999");
    assert_eq!(pc["session"], "ph");
    assert!(is_pairing_code(pc["data"].as_str().unwrap()));

    s.post("sock", &t, "logout-session", None).await;
    assert_eq!(next_event(&mut ws, "whatsapp-status").await, json!(false));

    // Polling transport is not simulated.
    let r = s
        .http
        .get(s.url("/socket.io/?EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.server.shutdown().await;
    // Shutdown closes the sockets.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(end.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn qr_size_pads_every_qr_to_a_valid_png_of_exactly_n_bytes() {
    const PREFIX: &str = "data:image/png;base64,";
    let decode = |url: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(url.strip_prefix(PREFIX).expect("a PNG data URL"))
            .unwrap()
    };
    let s = sim().await;
    let ws_url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        s.base.replace("http", "ws")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    next_text(&mut ws).await;
    ws.send(Message::Text("40".into())).await.unwrap();
    next_text(&mut ws).await;

    let t = s.token("big").await;
    s.post("big", &t, "start-session", None).await;
    let v = s.wait_status("big", &t, "QRCODE", 3 * SEC).await;
    let plain_len = v["qrcode"].as_str().unwrap().len();

    // Not representable as padded base64, too small, not JSON: 400 with a reason.
    for body in [
        json!({"bytes": 300_023}),
        json!({"bytes": 1000}),
        json!({"bytes": "x"}),
    ] {
        let (code, v) = s.sim_post("/__sim/sessions/big/qr-size", body).await;
        assert_eq!(code, 400, "{v}");
        assert!(v["error"].is_string(), "{v}");
    }

    // Applies to the current QR at once (same urlcode), then to every rotation.
    let n = 300_022;
    let (code, v) = s
        .sim_post("/__sim/sessions/big/qr-size", json!({"bytes": n}))
        .await;
    assert_eq!((code, v), (200, json!({"ok": true})));
    let v = s.status("big", &t).await;
    let url = v["qrcode"].as_str().unwrap();
    assert_eq!(url.len(), n);
    let urlcode = v["urlcode"].as_str().unwrap();
    let png_bytes = decode(url);
    assert_eq!(
        decode_qr(&png_bytes),
        urlcode,
        "still the same, scannable QR"
    );
    // qrcode-session serves that very PNG.
    let r = s.get("big", &t, "qrcode-session").await;
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), png_bytes.as_slice());
    // The socket's qrCode event (the change, then the next rotation) carries it too.
    // (The plain QR's event from the start may come first.)
    let ev = loop {
        let ev = next_event(&mut ws, "qrCode").await;
        if ev["data"].as_str().unwrap().len() == n {
            break ev;
        }
    };
    assert_eq!(ev["session"], "big");
    let rotated = loop {
        let ev = next_event(&mut ws, "qrCode").await;
        let data = ev["data"].as_str().unwrap().to_string();
        if data != url {
            break data;
        }
    };
    assert_eq!(rotated.len(), n);
    let v = s.status("big", &t).await;
    assert_eq!(v["qrcode"].as_str().unwrap(), rotated);
    assert_eq!(decode_qr(&decode(&rotated)), v["urlcode"].as_str().unwrap());
    // waitQrCode's answer (base64 without the prefix) is the same QR.
    let (_, again) = s
        .post_json(
            "big",
            &t,
            "start-session",
            Some(json!({"waitQrCode": true})),
        )
        .await;
    assert_eq!(again["qrcode"].as_str().unwrap().len(), n);

    // null restores plain QR codes from the next rotation on.
    let (code, _) = s
        .sim_post("/__sim/sessions/big/qr-size", json!({"bytes": null}))
        .await;
    assert_eq!(code, 200);
    let deadline = Instant::now() + 5 * SEC;
    loop {
        let v = s.status("big", &t).await;
        let url = v["qrcode"].as_str().unwrap();
        // Plain QR codes differ in size with their content: a plain one is a fraction of N,
        // and still scannable.
        if url.len() < 100_000 {
            assert!(url.len() < plain_len * 4, "{} vs {plain_len}", url.len());
            assert_eq!(decode_qr(&decode(url)), v["urlcode"].as_str().unwrap());
            break;
        }
        assert!(Instant::now() < deadline, "the plain QR never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Request bodies are capped as the real server's `express.json({ limit: '50mb' })` caps them,
/// and the control surface takes only small ones.
#[tokio::test]
async fn request_bodies_over_the_cap_are_refused() {
    let s = sim().await;
    let t = s.token("big-body").await;
    let body = vec![b' '; 50 * 1024 * 1024 + 1];
    let r = s
        .http
        .post(s.url("/api/big-body/start-session"))
        .header("Authorization", format!("Bearer {t}"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let control = vec![b' '; 3 * 1024 * 1024];
    let r = s
        .http
        .post(s.url("/__sim/faults"))
        .body(control)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
}

fn not_active() -> Value {
    json!({"response": null, "status": "Disconnected", "message": "A sessão do WhatsApp não está ativa."})
}

fn host_device(phone: &str, pushname: &str) -> Value {
    json!({
        "status": "success",
        "response": {
            "pushname": pushname,
            "platform": "android",
            "wid": {"server": "c.us", "user": phone, "_serialized": format!("{phone}@c.us")},
            "phone": {
                "device_manufacturer": "samsung",
                "device_model": "SM-A515F",
                "os_version": "13",
                "wa_version": "2.24.6.77"
            },
            "phoneNumber": format!("{phone}@c.us")
        },
        "mapper": "device"
    })
}

fn phone_number(phone: &str) -> Value {
    json!({"status": "success", "response": format!("{phone}@c.us"), "mapper": "device"})
}

async fn sim_account(s: &Sim, session: &str) -> Value {
    let list: Value = s
        .http
        .get(s.url("/__sim/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["session"] == session)
        .map_or(Value::Null, |e| e["account"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn host_device_and_phone_number_follow_the_linked_account() {
    let s = sim().await;
    let t = s.token("acc").await;
    let other = s.token("other").await;
    let routes = ["host-device", "get-phone-number"];

    // Auth runs first: the same 401s as every token route.
    for route in routes {
        assert_eq!(
            s.get_json("acc", &other, route).await,
            (
                401,
                json!({"error": "Check that the Session and Token are correct"})
            )
        );
        let r = s
            .http
            .get(s.url(&format!("/api/acc/{route}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"message": "Token is not present. Check your header and try again"})
        );
        // Never started, then statusConnection's 404.
        assert_eq!(s.get_json("acc", &t, route).await, (404, not_active()));
        // GET only, like upstream.
        let r = s.post("acc", &t, route, None).await;
        assert_eq!(r.status(), 404);
        assert!(r.text().await.unwrap().contains("Cannot POST"));
    }

    s.post("acc", &t, "start-session", None).await;
    assert_eq!(
        s.get_json("acc", &t, "host-device").await,
        (404, not_active())
    );
    s.wait_status("acc", &t, "QRCODE", 3 * SEC).await;
    for route in routes {
        assert_eq!(s.get_json("acc", &t, route).await, (404, not_active()));
    }
    assert_eq!(sim_account(&s, "acc").await, Value::Null);

    // A bad scan body is refused and changes nothing.
    for body in [
        json!({"phone": "+5521999990001"}),
        json!({"phone": ""}),
        json!({"phone": "1".repeat(wpp_sim::MAX_SCAN_PHONE_DIGITS + 1)}),
        json!({"phone": 5521999990001u64}),
    ] {
        let (code, v) = s.sim_post("/__sim/sessions/acc/scan", body).await;
        assert_eq!(code, 400, "{v}");
        assert!(v["error"].is_string());
    }
    let r = s
        .http
        .post(s.url("/__sim/sessions/acc/scan"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(s.status("acc", &t).await["status"], "QRCODE");

    let (code, v) = s
        .sim_post(
            "/__sim/sessions/acc/scan",
            json!({"phone": "5521999990001", "pushname": "Loja Centro"}),
        )
        .await;
    assert_eq!((code, v), (200, json!({"ok": true})));
    let r = s.get("acc", &t, "host-device").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, host_device("5521999990001", "Loja Centro"));
    let keys: Vec<&String> = body["response"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["pushname", "platform", "wid", "phone", "phoneNumber"]
    );
    assert_eq!(
        s.get_json("acc", &t, "get-phone-number").await,
        (200, phone_number("5521999990001"))
    );
    // The path form of the token works as on every token route.
    let r = s
        .http
        .get(s.url(&format!("/api/acc:{t}/get-phone-number")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The res.send wrapper adds "session" with an exact application/json Content-Type.
    let r = s
        .http
        .get(s.url("/api/acc/get-phone-number"))
        .header("Authorization", format!("Bearer {t}"))
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["session"], "acc");
    let account = json!({"phone": "5521999990001", "pushname": "Loja Centro"});
    assert_eq!(sim_account(&s, "acc").await, account);
    assert_eq!(
        s.server.control().session("acc").unwrap().account,
        Some(wpp_sim::Account {
            phone: "5521999990001".into(),
            pushname: "Loja Centro".into()
        })
    );

    // close-session keeps the login, and with it the account.
    assert_eq!(s.post("acc", &t, "close-session", None).await.status(), 200);
    for route in routes {
        assert_eq!(s.get_json("acc", &t, route).await, (404, not_active()));
    }
    assert_eq!(sim_account(&s, "acc").await, account);
    s.post("acc", &t, "start-session", None).await;
    s.wait_status("acc", &t, "CONNECTED", 3 * SEC).await;
    assert_eq!(
        s.get_json("acc", &t, "host-device").await,
        (200, host_device("5521999990001", "Loja Centro"))
    );

    // logout forgets it: the next scan without a body links the default account.
    assert_eq!(
        s.post("acc", &t, "logout-session", None).await.status(),
        200
    );
    assert_eq!(sim_account(&s, "acc").await, Value::Null);
    assert_eq!(
        s.get_json("acc", &t, "get-phone-number").await,
        (404, not_active())
    );
    s.post("acc", &t, "start-session", None).await;
    s.wait_status("acc", &t, "QRCODE", 3 * SEC).await;
    assert_eq!(s.scan("acc").await.0, 200);
    let default = wpp_sim::Account::default_for("acc");
    assert_eq!(default.pushname, "Sim acc");
    assert_eq!(default.phone.len(), 13);
    assert!(default.phone.starts_with("55119"), "{default:?}");
    assert!(default.phone.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(wpp_sim::Account::default_for("acc"), default);
    assert_ne!(wpp_sim::Account::default_for("acd").phone, default.phone);
    assert_eq!(
        s.get_json("acc", &t, "host-device").await,
        (200, host_device(&default.phone, "Sim acc"))
    );

    // unlink drops it too.
    assert_eq!(
        s.sim_post("/__sim/sessions/acc/unlink", json!({})).await.0,
        200
    );
    assert_eq!(sim_account(&s, "acc").await, Value::Null);
    assert_eq!(
        s.get_json("acc", &t, "host-device").await,
        (404, not_active())
    );
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_as_a_partial_account_and_with_no_body() {
    let s = sim().await;
    let ctl = s.server.control();
    let long = "a_rather_long_session_name";
    for name in ["x", "y", long] {
        let t = ctl.token_for(name);
        s.post(name, &t, "start-session", None).await;
        s.wait_status(name, &t, "QRCODE", 3 * SEC).await;
    }
    // Only a phone: the default pushname.
    ctl.scan_as(
        "x",
        wpp_sim::ScanAs {
            phone: Some("351912345678".into()),
            pushname: None,
        },
    )
    .unwrap();
    assert_eq!(
        sim_account(&s, "x").await,
        json!({"phone": "351912345678", "pushname": "Sim x"})
    );
    // Only a pushname, with characters a client must clean: the default phone.
    let r = s
        .http
        .post(s.url("/__sim/sessions/y/scan"))
        .header("Content-Type", "application/json")
        .body(r#"{"pushname":"Ana \u202eevil\u202c"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = ctl.token_for("y");
    assert_eq!(
        s.get_json("y", &t, "host-device").await,
        (
            200,
            host_device(
                &wpp_sim::Account::default_for("y").phone,
                "Ana \u{202e}evil\u{202c}"
            )
        )
    );
    // No body at all.
    let r = s
        .http
        .post(s.url(&format!("/__sim/sessions/{long}/scan")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sim_account(&s, long).await["pushname"], "Sim a_rather_lon");
    // A body for a session that cannot be scanned: 409 as before.
    let (code, _) = s
        .sim_post("/__sim/sessions/x/scan", json!({"phone": "5521999990001"}))
        .await;
    assert_eq!(code, 409);
    assert_eq!(sim_account(&s, "x").await["phone"], "351912345678");
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn account_routes_take_faults_and_log_by_name() {
    let s = sim().await;
    let t = s.token("fa").await;
    s.post("fa", &t, "start-session", None).await;
    s.wait_status("fa", &t, "QRCODE", 3 * SEC).await;
    s.scan("fa").await;
    s.fault(json!({"route": "host-device", "kind": "http500"}))
        .await;
    s.fault(json!({"route": "get-phone-number", "session": "fa", "kind": "malformed_json"}))
        .await;
    assert_eq!(
        s.get_json("fa", &t, "host-device").await,
        (
            500,
            json!({"status": "error", "message": "simulated failure"})
        )
    );
    let r = s.get("fa", &t, "get-phone-number").await;
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());
    assert_eq!(s.get_json("fa", &t, "host-device").await.0, 200);
    assert_eq!(s.get_json("fa", &t, "get-phone-number").await.0, 200);

    s.http
        .get(s.url(&format!("/api/fa:{t}/host-device")))
        .send()
        .await
        .unwrap();
    let log = s.server.control().log();
    let mine: Vec<_> = log
        .requests
        .iter()
        .filter(|e| e.route == "host-device" || e.route == "get-phone-number")
        .collect();
    assert_eq!(mine.len(), 5, "{mine:?}");
    assert_eq!(mine[0].path, "/api/fa/host-device");
    assert_eq!(mine[0].status, 500);
    assert_eq!(mine[1].route, "get-phone-number");
    assert_eq!(mine[4].path, "/api/fa:***/host-device");
    assert_eq!(mine[4].auth, "ok");
    assert_eq!(mine[4].token.as_deref(), Some(t.as_str()));
    let (code, v) = s
        .sim_post(
            "/__sim/faults",
            json!({"route": "host-devices", "kind": "http500"}),
        )
        .await;
    assert_eq!(code, 400, "{v}");
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_outlive_the_clients_that_made_them() {
    let s = sim().await;
    let t = s.token("keep").await;
    // A client that gives up on a held start-session (waitQrCode) and goes away.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let gone = impatient
        .post(s.url("/api/keep/start-session"))
        .header("Authorization", format!("Bearer {t}"))
        .header("Content-Type", "application/json; charset=utf-8")
        .body(r#"{"waitQrCode":true}"#)
        .send()
        .await;
    assert!(gone.is_err(), "the held request timed out client-side");
    drop(impatient);
    // Another client (the suite's own) sees the session go on, pair and answer as its account.
    s.wait_status("keep", &t, "QRCODE", 3 * SEC).await;
    assert_eq!(s.scan("keep").await.0, 200);
    let default = wpp_sim::Account::default_for("keep");
    assert_eq!(
        s.get_json("keep", &t, "get-phone-number").await,
        (200, phone_number(&default.phone))
    );
    s.server.shutdown().await;
}
