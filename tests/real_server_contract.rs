//! Differential contract test: the same requests, in the same order, to the REAL
//! wppconnect-server (v2.10.4, started by `scripts/real-server.sh`) and to wpp-sim, over
//! everything the real server can do offline; their status codes, content types, CORS headers
//! and JSON bodies must match (tokens, timestamps and uptime are compared by shape).
//!
//! Offline, a started session stays INITIALIZING forever on the real server (its Chromium
//! cannot load WhatsApp Web), so the sim's sessions are marked `stuck` before they start.
//! Where wpp-sim differs on purpose, the step is left out here and listed in wpp-sim/README.md.
//!
//! Runs only with `WPP_REAL_SERVER=1` and a source tree (see `tests/support/real_server.rs`):
//!
//! ```sh
//! WPP_REAL_SERVER=1 cargo test --test real_server_contract -- --nocapture
//! ```

#![cfg(not(target_arch = "wasm32"))]

#[path = "support/real_server.rs"]
mod real_server;

use std::time::{Duration, Instant};

use real_server::{gate, RealServer, SECRET};
use reqwest::{Client, Method};
use serde_json::{json, Value};
use wpp_tabs::core::api::{parse_host_device_reply, parse_phone_number_reply, HttpReply};

/// Session names (short, `^[a-z_]+$`).
const A: &str = "ct_a";
const B: &str = "ct_b";
const D: &str = "ct_d";

/// The response headers compared (CORS and Express's own); `Date`, `ETag`, `Keep-Alive` and
/// friends are not.
const HEADERS: &[&str] = &[
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "vary",
    "x-powered-by",
];

/// What one server answered to one step, normalized for comparison.
#[derive(Clone, Debug, PartialEq)]
struct Obs {
    /// HTTP status; 0 = no answer within the step's timeout; 1 = an observation, not a reply.
    status: u16,
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    /// JSON body (normalized), `{"text": ..}` for other text, `{"png": n}` for images.
    body: Value,
    /// Top-level key order of a JSON object body.
    keys: Vec<String>,
}

impl Obs {
    fn brief(&self) -> String {
        let mut s = format!("{} {}", self.status, self.body);
        if s.len() > 150 {
            s.truncate(150);
            s.push('…');
        }
        s
    }
}

enum Side<'a> {
    Real(&'a RealServer),
    Sim(wpp_sim::SimControl),
}

struct Target<'a> {
    name: &'static str,
    base: String,
    http: Client,
    side: Side<'a>,
    log: Vec<(String, Obs)>,
}

/// A token as generate-token returns it: bcrypt cost 10, `/` replaced by `_`.
fn is_token(t: &str) -> bool {
    t.len() == 60
        && t.starts_with("$2b$10$")
        && t[7..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

/// Replaces what legitimately differs between two servers by its shape.
fn normalize(v: &Value) -> Value {
    let Value::Object(map) = v else {
        return v.clone();
    };
    let mut out = map.clone();
    if let Some(t) = map.get("token").and_then(Value::as_str) {
        out["token"] = json!(if is_token(t) {
            "<token>".to_string()
        } else {
            format!("<not a token: {t}>")
        });
        if let (Some(full), Some(s)) = (
            map.get("full").and_then(Value::as_str),
            map.get("session").and_then(Value::as_str),
        ) {
            out["full"] = json!(if full == format!("{s}:{t}") {
                "<session>:<token>".to_string()
            } else {
                format!("<not session:token: {full}>")
            });
        }
    }
    if let Some(u) = map.get("uptime") {
        out["uptime"] = json!(if u.is_number() { "<number>" } else { "<?>" });
    }
    if let Some(ts) = map.get("timestamp") {
        out["timestamp"] = json!(if ts.as_u64().is_some_and(|t| t > 1_600_000_000_000) {
            "<ms>"
        } else {
            "<?>"
        });
    }
    Value::Object(out)
}

struct Req<'r> {
    method: Method,
    path: String,
    headers: Vec<(&'r str, String)>,
    /// Content-Type and body.
    body: Option<(&'r str, &'r str)>,
    timeout: Duration,
}

fn get(path: impl Into<String>) -> Req<'static> {
    Req {
        method: Method::GET,
        path: path.into(),
        headers: Vec::new(),
        body: None,
        timeout: Duration::from_secs(20),
    }
}

fn post(path: impl Into<String>) -> Req<'static> {
    Req {
        method: Method::POST,
        ..get(path)
    }
}

impl<'r> Req<'r> {
    fn header(mut self, name: &'r str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn bearer(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    fn json(mut self, content_type: &'r str, body: &'r str) -> Self {
        self.body = Some((content_type, body));
        self
    }

    fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
}

impl Target<'_> {
    /// Sends `req`, records the normalized observation under `step`, returns the raw body.
    async fn send(&mut self, step: &str, req: Req<'_>) -> Value {
        let url = format!("{}{}", self.base, req.path);
        let mut rb = self
            .http
            .request(req.method.clone(), &url)
            .timeout(req.timeout);
        for (k, v) in &req.headers {
            rb = rb.header(*k, v);
        }
        if let Some((ct, body)) = req.body {
            rb = rb.header("Content-Type", ct).body(body.to_string());
        }
        let (obs, raw) = match rb.send().await {
            Err(e) if e.is_timeout() => (
                Obs {
                    status: 0,
                    content_type: None,
                    headers: Vec::new(),
                    body: json!("no answer"),
                    keys: Vec::new(),
                },
                Value::Null,
            ),
            Err(e) => panic!("{}: {step}: {} {url}: {e}", self.name, req.method),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let content_type = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let headers: Vec<(String, String)> = HEADERS
                    .iter()
                    .filter_map(|h| {
                        resp.headers()
                            .get(*h)
                            .and_then(|v| v.to_str().ok())
                            .map(|v| (h.to_string(), v.to_string()))
                    })
                    .collect();
                let bytes = resp.bytes().await.unwrap_or_default();
                let raw = if content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("image/"))
                {
                    json!({"png": bytes.len()})
                } else if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                    v
                } else {
                    json!({"text": String::from_utf8_lossy(&bytes)})
                };
                let keys = raw
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                (
                    Obs {
                        status,
                        content_type,
                        headers,
                        body: normalize(&raw),
                        keys,
                    },
                    raw,
                )
            }
        };
        self.log.push((step.to_string(), obs));
        raw
    }

    /// The last reply, as the extension's transport hands it to `core::api`.
    fn last_reply(&self) -> HttpReply {
        let (_, obs) = self.log.last().expect("a step was sent");
        HttpReply {
            status: obs.status,
            content_type: obs.content_type.clone(),
            body: obs.body.to_string(),
        }
    }

    /// host-device and get-phone-number of a session that is not connected: the 404 of
    /// `statusConnection`, which the extension reads as `NotConnected`.
    async fn not_connected(&mut self, step: &str, session: &str, token: &str) {
        for (route, parse) in [
            (
                "host-device",
                parse_host_device_reply as fn(&HttpReply) -> _,
            ),
            ("get-phone-number", parse_phone_number_reply),
        ] {
            self.send(
                &format!("{route}, {step}"),
                get(format!("/api/{session}/{route}")).bearer(token),
            )
            .await;
            let read = parse(&self.last_reply()).map_err(|e| e.code());
            assert_eq!(read, Err("not-connected"), "{}: {route}, {step}", self.name);
            self.note(
                &format!("{route}, {step}, as the extension reads it"),
                json!(read),
            );
        }
    }

    /// Records an observation that is not an HTTP reply.
    fn note(&mut self, step: &str, value: Value) {
        self.log.push((
            step.to_string(),
            Obs {
                status: 1,
                content_type: None,
                headers: Vec::new(),
                body: value,
                keys: Vec::new(),
            },
        ));
    }

    /// The sim's sessions hang in INITIALIZING like the real server's do offline.
    fn before_start(&self, session: &str) {
        if let Side::Sim(c) = &self.side {
            c.stuck(session);
        }
    }

    /// Whether `session`'s profile is held by a browser close-session leaked: on the real
    /// server, its Chromium still runs after close-session; on the sim, its profile lock.
    fn leaked_browser(&self, session: &str) -> bool {
        match &self.side {
            Side::Real(r) => !r.chromium_pids(Some(session)).is_empty(),
            Side::Sim(c) => c.profile_locked(session),
        }
    }

    fn browsers(&self, session: &str) -> usize {
        match &self.side {
            Side::Real(r) => r.chromium_pids(Some(session)).len(),
            Side::Sim(_) => 0,
        }
    }

    async fn token(&mut self, step: &str, session: &str) -> String {
        let v = self
            .send(
                step,
                post(format!("/api/{session}/{SECRET}/generate-token")),
            )
            .await;
        v["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: {step}: no token in {v}", self.name))
            .to_string()
    }

    async fn status(&mut self, step: &str, session: &str, token: &str) -> Value {
        self.send(
            step,
            get(format!("/api/{session}/status-session")).bearer(token),
        )
        .await
    }
}

/// The whole conversation, the same for both servers.
async fn conversation(t: &mut Target<'_>) {
    let secs = Duration::from_secs;
    t.send("healthz", get("/healthz")).await;
    t.send(
        "healthz with Content-Type: application/json (hangs)",
        get("/healthz")
            .header("Content-Type", "application/json")
            .timeout(secs(2)),
    )
    .await;

    // Tokens.
    t.send(
        "generate-token, wrong secret",
        post(format!("/api/{A}/WRONG/generate-token")),
    )
    .await;
    let ta = t.token("generate-token A", A).await;
    let ta2 = t.token("generate-token A again", A).await;
    t.note("a new salt each time", json!(ta != ta2));
    let tb = t.token("generate-token B", B).await;
    let td = t.token("generate-token D", D).await;
    t.send(
        "GET generate-token (no such route)",
        get(format!("/api/{A}/{SECRET}/generate-token")),
    )
    .await;

    // Auth forms, on a session never started.
    t.status("status-session, Bearer token", A, &ta).await;
    t.status("status-session, Bearer second token", A, &ta2)
        .await;
    let st = |p: &str| get(format!("/api/{p}/status-session"));
    t.send(
        "status-session, any scheme word",
        st(A).header("Authorization", format!("Token {ta}")),
    )
    .await;
    t.send(
        "status-session, bare token",
        st(A).header("Authorization", ta.clone()),
    )
    .await;
    t.send("status-session, no Authorization", st(A)).await;
    t.send(
        "status-session, two spaces",
        st(A).header("Authorization", format!("Bearer  {ta}")),
    )
    .await;
    t.send("status-session, garbage token", st(A).bearer("garbage"))
        .await;
    t.send("status-session, B's token for A", st(A).bearer(&tb))
        .await;
    t.send("status-session, path form", st(&format!("{A}:{ta}")))
        .await;
    t.send(
        "status-session, wrong path form wins over a good header",
        st(&format!("{A}:garbage")).bearer(&ta),
    )
    .await;
    t.send(
        "status-session, empty path-form token",
        st(&format!("{A}:")),
    )
    .await;
    t.send(
        "status-session, Origin header (CORS)",
        st(A).bearer(&ta).header("Origin", "chrome-extension://abc"),
    )
    .await;

    // CORS preflights.
    let preflight = |headers: &str| Req {
        method: Method::OPTIONS,
        ..st(A)
            .header("Origin", "chrome-extension://abcdefghijklmnop")
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", headers.to_string())
    };
    t.send("preflight, authorization", preflight("authorization"))
        .await;
    t.send(
        "preflight, authorization,content-type",
        preflight("authorization,content-type"),
    )
    .await;

    // Routes on a session never started.
    t.send(
        "qrcode-session, never started",
        get(format!("/api/{A}/qrcode-session")).bearer(&ta),
    )
    .await;
    t.send(
        "check-connection-session, never started",
        get(format!("/api/{A}/check-connection-session")).bearer(&ta),
    )
    .await;
    t.send(
        "close-session, never started",
        post(format!("/api/{A}/close-session")).bearer(&ta),
    )
    .await;
    t.send(
        "logout-session, never started",
        post(format!("/api/{A}/logout-session")).bearer(&ta),
    )
    .await;
    t.send("healthz after the logout 404", get("/healthz"))
        .await;
    t.not_connected("never started", A, &ta).await;
    t.send(
        "host-device, B's token for A",
        get(format!("/api/{A}/host-device")).bearer(&tb),
    )
    .await;
    t.send(
        "get-phone-number, no Authorization",
        get(format!("/api/{A}/get-phone-number")),
    )
    .await;
    t.send(
        "host-device, never started, Content-Type exactly application/json",
        get(format!("/api/{A}/host-device"))
            .bearer(&ta)
            .header("Content-Type", "application/json"),
    )
    .await;
    t.send("healthz after the host-device 404s", get("/healthz"))
        .await;
    t.send(
        "show-all-sessions, wrong secret",
        get("/api/WRONG/show-all-sessions"),
    )
    .await;
    t.send(
        "show-all-sessions, nothing started",
        get(format!("/api/{SECRET}/show-all-sessions")),
    )
    .await;

    // Start A (exactly application/json: the res.send wrapper adds "session").
    t.before_start(A);
    t.send(
        "start-session A, fresh (Content-Type exactly application/json)",
        post(format!("/api/{A}/start-session"))
            .bearer(&ta)
            .json("application/json", r#"{"waitQrCode":false}"#),
    )
    .await;
    t.status("status-session A after start", A, &ta).await;
    t.send(
        "start-session A again, no body",
        post(format!("/api/{A}/start-session")).bearer(&ta),
    )
    .await;
    t.send(
        "start-session A again, application/json",
        post(format!("/api/{A}/start-session"))
            .bearer(&ta)
            .json("application/json", "{}"),
    )
    .await;
    t.send(
        "qrcode-session A, INITIALIZING",
        get(format!("/api/{A}/qrcode-session")).bearer(&ta),
    )
    .await;
    t.send(
        "check-connection-session A, INITIALIZING",
        get(format!("/api/{A}/check-connection-session")).bearer(&ta),
    )
    .await;
    t.send(
        "logout-session A, INITIALIZING",
        post(format!("/api/{A}/logout-session")).bearer(&ta),
    )
    .await;
    t.status("status-session A after the logout 404", A, &ta)
        .await;
    t.not_connected("INITIALIZING", A, &ta).await;

    // Start B (application/json; charset=utf-8: no "session" added).
    t.before_start(B);
    t.send(
        "start-session B, fresh (application/json; charset=utf-8)",
        post(format!("/api/{B}/start-session"))
            .bearer(&tb)
            .json("application/json; charset=utf-8", r#"{"waitQrCode":false}"#),
    )
    .await;
    let all = t
        .send(
            "show-all-sessions, A and B started",
            get(format!("/api/{SECRET}/show-all-sessions")),
        )
        .await;
    let mut names: Vec<String> = all["response"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    t.note("show-all-sessions, as a set", json!(names));

    tokio::time::sleep(secs(3)).await;
    t.status("status-session A, 3 s later", A, &ta).await;
    t.status("status-session B, 3 s later", B, &tb).await;

    // close-session on INITIALIZING: 500, CLOSED after; the browser leaks.
    t.send(
        "close-session A, INITIALIZING",
        post(format!("/api/{A}/close-session")).bearer(&ta),
    )
    .await;
    t.status("status-session A after close", A, &ta).await;
    t.send(
        "qrcode-session A after close",
        get(format!("/api/{A}/qrcode-session")).bearer(&ta),
    )
    .await;
    t.send(
        "close-session A again",
        post(format!("/api/{A}/close-session")).bearer(&ta),
    )
    .await;
    t.not_connected("after close", A, &ta).await;
    let leaked = t.leaked_browser(A);
    t.note(
        "A's browser leaked by close-session (real: Chromium still runs; sim: profile locked)",
        json!(leaked),
    );

    // A start under the same name: the profile is locked, it never leaves INITIALIZING.
    let browsers_before = t.browsers(A);
    t.send(
        "start-session A after close (application/json)",
        post(format!("/api/{A}/start-session"))
            .bearer(&ta)
            .json("application/json", r#"{"waitQrCode":false}"#),
    )
    .await;
    t.status("status-session A restarted", A, &ta).await;
    tokio::time::sleep(secs(3)).await;
    t.status("status-session A restarted, 3 s later", A, &ta)
        .await;
    let browsers_after = t.browsers(A);
    t.note(
        "restart of A launched no new browser",
        json!(browsers_after <= browsers_before),
    );
    t.send(
        "close-session A restarted",
        post(format!("/api/{A}/close-session")).bearer(&ta),
    )
    .await;
    t.status("status-session A closed again", A, &ta).await;

    // waitQrCode on a fresh session that never shows a QR: no answer.
    t.before_start(D);
    t.send(
        "start-session D, waitQrCode true (hangs)",
        post(format!("/api/{D}/start-session"))
            .bearer(&td)
            .json("application/json", r#"{"waitQrCode":true}"#)
            .timeout(secs(3)),
    )
    .await;
    t.status("status-session D after the held start", D, &td)
        .await;

    t.send(
        "unknown route",
        get(format!("/api/{A}/no-such-route")).bearer(&ta),
    )
    .await;
    t.send("healthz at the end", get("/healthz")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_and_wpp_sim_agree() {
    let src = match gate() {
        Ok(src) => src,
        Err(why) => {
            println!("{why}");
            return;
        }
    };
    let started = Instant::now();
    let real = RealServer::start_async(src)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "real server at {} (start: {:.1} s)",
        real.url,
        real.start_took.as_secs_f64()
    );
    let sim = wpp_sim::SimServer::start(
        wpp_sim::SimConfig {
            secret: SECRET.into(),
            // QR codes would come quickly were the sessions not stuck, so a restart that
            // escaped the profile lock would show.
            init_delay: Duration::from_millis(500),
            ..wpp_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("start wpp-sim");
    let http = Client::builder().build().unwrap();
    let mut real_t = Target {
        name: "real",
        base: real.url.clone(),
        http: http.clone(),
        side: Side::Real(&real),
        log: Vec::new(),
    };
    let mut sim_t = Target {
        name: "sim",
        base: sim.base_url(),
        http,
        side: Side::Sim(sim.control()),
        log: Vec::new(),
    };
    let conv = Instant::now();
    tokio::join!(conversation(&mut real_t), conversation(&mut sim_t));
    let conv_took = conv.elapsed();

    // Real-only checks: the session browsers the real server launched, and none left after stop.
    let launched = real.chromium_pids(None);
    let log_tail = real.log_tail(200_000);
    let already_running = log_tail.contains("already running");

    let mut diffs = Vec::new();
    println!(
        "\n{:<66} {:<34} {:<34}",
        "step", "real wppconnect-server", "wpp-sim"
    );
    assert_eq!(real_t.log.len(), sim_t.log.len(), "step lists differ");
    for ((step, r), (_, s)) in real_t.log.iter().zip(&sim_t.log) {
        let same = r == s;
        println!(
            "{} {step:<64} {:<34} {}",
            if same { " " } else { "≠" },
            truncate(&r.brief(), 34),
            truncate(&s.brief(), 34)
        );
        if !same {
            diffs.push(format!("{step}:\n    real: {r:?}\n    sim:  {s:?}"));
        }
    }
    println!(
        "\nreal server: {} Chromium browser(s) running before stop; \"already running\" in its log: {already_running}",
        launched.len()
    );
    let port = real.port;
    drop((real_t, sim_t));
    let stop = Instant::now();
    real.stop();
    let pids_left = real.chromium_pids(None);
    println!("stop took {:.1} s", stop.elapsed().as_secs_f64());
    drop(real);
    sim.shutdown().await;
    println!(
        "contract test: conversation {:.1} s, whole test {:.1} s",
        conv_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        pids_left.is_empty(),
        "Chromium processes of the real server (port {port}) left after stop: {pids_left:?}"
    );
    assert!(
        !launched.is_empty(),
        "the real server ran no Chromium for its started sessions"
    );
    assert!(
        diffs.is_empty(),
        "{} difference(s) between the real server and wpp-sim:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
