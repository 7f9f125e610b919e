//! HTTP surface: the real server's routes (contract §1-§2), CORS as `cors()` defaults, the
//! per-request log line, fault injection and the `/__sim/` control routes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::socket;
use crate::state::{
    truthy, Account, ClientRef, FaultKind, FaultSpec, LogEntry, ScanAs, Shared, StartReply,
};

static LOG_REQUESTS: AtomicBool = AtomicBool::new(false);

/// Turn the one-line-per-request stderr log on or off (process wide; off by default so test
/// output stays readable; the binary turns it on; `WPP_SIM_LOG=1` also turns it on).
pub fn set_request_logging(on: bool) {
    LOG_REQUESTS.store(on, Ordering::Relaxed);
}

fn logging_on() -> bool {
    LOG_REQUESTS.load(Ordering::Relaxed)
        || std::env::var_os("WPP_SIM_LOG").is_some_and(|v| v == "1")
}

/// Marks a response whose connection must be closed without answering (the `drop` fault).
#[derive(Clone, Copy)]
pub(crate) struct DropConnection;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/socket.io/", any(socket::handler))
        .route("/healthz", get(healthz))
        .route("/", get(index_page))
        .route("/page/:name", get(named_page))
        .route("/__sim/sessions", get(sim_sessions))
        .route("/__sim/sessions/:session/scan", post(sim_scan))
        .route("/__sim/sessions/:session/unlink", post(sim_unlink))
        .route("/__sim/sessions/:session/stuck", post(sim_stuck))
        .route("/__sim/sessions/:session/qr-size", post(sim_qr_size))
        .route("/__sim/faults", post(sim_fault_add).delete(sim_fault_clear))
        .route("/__sim/log", get(sim_log).delete(sim_log_clear))
        .route("/__sim/reset", post(sim_reset))
        .route("/api/*rest", any(api))
        .fallback(not_found)
        .layer(from_fn_with_state(shared.clone(), cors_and_log))
        .with_state(shared)
}

// ---------------------------------------------------------------- CORS + log line

/// `cors()` defaults: every OPTIONS is a preflight answered 204; everything else gets
/// `Access-Control-Allow-Origin: *`.
async fn cors_and_log(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = redact_path(req.uri().path());
    let mut resp = if method == Method::OPTIONS {
        sh.sockets.count_preflight();
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE"),
        );
        if let Some(v) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
        }
        h.insert(
            header::VARY,
            HeaderValue::from_static("Access-Control-Request-Headers"),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        r
    } else {
        next.run(req).await
    };
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp.headers_mut()
        .insert("x-powered-by", HeaderValue::from_static("Express"));
    if logging_on() {
        let status = if resp.extensions().get::<DropConnection>().is_some() {
            "dropped".to_string()
        } else {
            resp.status().as_u16().to_string()
        };
        eprintln!(
            "{method} {path} {status} {:.1}ms",
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    resp
}

/// Replaces the token of a `session:token` segment and the secret of the secret-key routes.
pub(crate) fn redact_path(path: &str) -> String {
    let Some(rest) = path.strip_prefix("/api/") else {
        return path.to_string();
    };
    let mut segs: Vec<String> = rest.split('/').map(str::to_string).collect();
    // Routes match as the API matches them: after percent-decoding, with or without one
    // trailing slash. Redaction must see them the same way, or the secret slips through.
    let trailing = segs.len() > 1 && segs.last().is_some_and(|s| s.is_empty());
    let n = segs.len() - usize::from(trailing);
    let decoded: Vec<String> = segs.iter().map(|s| pct_decode(s)).collect();
    if n == 3 && decoded[2] == "generate-token" {
        segs[1] = "***".into();
    }
    if n == 2 && decoded[1] == "show-all-sessions" {
        segs[0] = "***".into();
    }
    if let Some(first) = segs.first_mut() {
        let lower = first.to_ascii_lowercase();
        if let Some(i) = lower.find(':').or_else(|| lower.find("%3a")) {
            *first = format!("{}:***", &first[..i]);
        }
    }
    format!("/api/{}", segs.join("/"))
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------- helpers

/// Express `res.json`: `application/json; charset=utf-8`.
fn json_resp(status: u16, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn express_404(method: &Method, path: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot {method} {path}</pre>\n</body>\n</html>\n"
    );
    let mut r = Html(page).into_response();
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

async fn not_found(req: Request) -> Response {
    express_404(req.method(), req.uri().path())
}

const NOT_PRESENT: &str = "Token is not present. Check your header and try again";
const BAD_TOKEN: &str = "Check that the Session and Token are correct";

fn unauthorized_body() -> Value {
    json!({"error": BAD_TOKEN})
}

// ---------------------------------------------------------------- /api dispatcher

#[derive(Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    GenerateToken,
    ShowAll,
    Start,
    Status,
    QrCode,
    Check,
    Close,
    Logout,
    HostDevice,
    PhoneNumber,
}

impl RouteKind {
    fn name(self) -> &'static str {
        match self {
            RouteKind::GenerateToken => "generate-token",
            RouteKind::ShowAll => "show-all-sessions",
            RouteKind::Start => "start-session",
            RouteKind::Status => "status-session",
            RouteKind::QrCode => "qrcode-session",
            RouteKind::Check => "check-connection-session",
            RouteKind::Close => "close-session",
            RouteKind::Logout => "logout-session",
            RouteKind::HostDevice => "host-device",
            RouteKind::PhoneNumber => "get-phone-number",
        }
    }
}

enum Auth {
    Ok(String),
    Missing,
    Invalid(Option<String>),
    NotInformed,
}

/// `verifyToken` (§1.2). Returns the session name and the outcome.
async fn verify(sh: &Arc<Shared>, seg: &str, authorization: Option<&str>) -> (String, Auth) {
    if seg.is_empty() {
        return (String::new(), Auth::NotInformed);
    }
    let mut parts = seg.split(':');
    let session = parts.next().unwrap_or_default().to_string();
    // Path form wins whenever a ':' is present; the header is then ignored.
    let raw = match parts.next() {
        Some(t) => t.to_string(),
        None => {
            // token.split(' ')[1]: any scheme word, exactly one space.
            match authorization
                .and_then(|h| h.split(' ').nth(1))
                .filter(|t| !t.is_empty())
            {
                Some(t) => t.to_string(),
                None => return (session, Auth::Missing),
            }
        }
    };
    let hash = raw.replace('_', "/").replace('-', "+");
    let input = format!("{session}{}", sh.config.secret);
    let ok = tokio::task::spawn_blocking(move || bcrypt::verify(input, &hash).unwrap_or(false))
        .await
        .unwrap_or(false);
    if ok {
        (session, Auth::Ok(raw))
    } else {
        (session, Auth::Invalid(Some(raw)))
    }
}

fn oversized_body() -> Value {
    // ~5 MB of valid JSON.
    json!({"status": "CONNECTED", "padding": "x".repeat(5 * 1024 * 1024)})
}

fn fault_response(f: &FaultSpec) -> Response {
    match f.kind {
        FaultKind::Http500 => json_resp(
            500,
            &json!({"status": "error", "message": "simulated failure"}),
        ),
        FaultKind::Unauthorized => json_resp(401, &unauthorized_body()),
        FaultKind::MalformedJson => {
            let mut r = json_resp(200, &Value::Null);
            *r.body_mut() = Body::from("{\"status\":\"CONNECTED\",\"qrcode\":");
            r
        }
        FaultKind::HtmlError => {
            let mut r = Html("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n").into_response();
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            r
        }
        FaultKind::Oversized => json_resp(200, &oversized_body()),
        FaultKind::Endless => {
            let start = futures_util::stream::once(async {
                Ok::<_, std::convert::Infallible>(Bytes::from_static(
                    br#"{"status":"QRCODE","qrcode":"data:image/png;base64,"#,
                ))
            });
            // Chunks until the client goes away (hyper then drops the stream).
            let rest = futures_util::stream::repeat_with(|| Ok(Bytes::from(vec![b'A'; 64 * 1024])));
            let mut r = json_resp(200, &Value::Null);
            *r.body_mut() = Body::from_stream(futures_util::StreamExt::chain(start, rest));
            r.headers_mut().remove(header::CONTENT_LENGTH);
            r
        }
        FaultKind::Drop => {
            let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            r.extensions_mut().insert(DropConnection);
            r
        }
        FaultKind::Delay => unreachable!("delay answers normally"),
    }
}

/// The `res.send` wrapper (§2): with exactly `Content-Type: application/json` on the request,
/// a JSON body without a truthy `session` gets `req.client ? req.client.session : ''`.
fn decorate(body: &mut Value, client: &ClientRef) {
    let Value::Object(map) = body else { return };
    if truthy(map.get("session")) {
        return;
    }
    match client {
        ClientRef::None => {
            map.insert("session".into(), json!(""));
        }
        ClientRef::Named(n) => {
            map.insert("session".into(), json!(n));
        }
        ClientRef::Unnamed => {
            map.shift_remove("session");
        }
    }
}

async fn api(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 50 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let mut segs: Vec<String> = raw_path["/api/".len()..]
        .split('/')
        .map(pct_decode)
        .collect();
    // Express is not strict about one trailing slash.
    if segs.len() > 1 && segs.last().is_some_and(|s| s.is_empty()) {
        segs.pop();
    }
    let seg: Vec<&str> = segs.iter().map(String::as_str).collect();
    let route = match (&method, seg.as_slice()) {
        (&Method::POST, [_, _, "generate-token"]) => Some(RouteKind::GenerateToken),
        (&Method::GET, [_, "show-all-sessions"]) => Some(RouteKind::ShowAll),
        (&Method::POST, [_, "start-session"]) => Some(RouteKind::Start),
        (&Method::GET, [_, "status-session"]) => Some(RouteKind::Status),
        (&Method::GET, [_, "qrcode-session"]) => Some(RouteKind::QrCode),
        (&Method::GET, [_, "check-connection-session"]) => Some(RouteKind::Check),
        (&Method::POST, [_, "close-session"]) => Some(RouteKind::Close),
        (&Method::POST, [_, "logout-session"]) => Some(RouteKind::Logout),
        (&Method::GET, [_, "host-device"]) => Some(RouteKind::HostDevice),
        (&Method::GET, [_, "get-phone-number"]) => Some(RouteKind::PhoneNumber),
        _ => None,
    };
    let path = redact_path(&raw_path);
    let Some(route) = route else {
        let resp = express_404(&method, &raw_path);
        sh.record(LogEntry {
            method: method.to_string(),
            path,
            route: "unknown".into(),
            session: None,
            token: None,
            auth: "none".into(),
            status: 404,
        });
        return resp;
    };

    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let exact_json = content_type == "application/json";
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());

    let (session, auth) = match route {
        RouteKind::GenerateToken => (Some(seg[0].to_string()), None),
        RouteKind::ShowAll => (None, None),
        _ => {
            let (s, a) = verify(&sh, seg[0], authorization).await;
            (Some(s), Some(a))
        }
    };
    let (auth_label, token) = match &auth {
        None => ("none", None),
        Some(Auth::Ok(t)) => ("ok", Some(t.clone())),
        Some(Auth::Missing) | Some(Auth::NotInformed) => ("missing", None),
        Some(Auth::Invalid(t)) => ("invalid", t.clone()),
    };
    let client = match (&auth, &session) {
        (Some(Auth::Ok(_)), Some(s)) => sh.client_ref(s),
        _ => ClientRef::None,
    };

    let resp = answer(
        &sh,
        route,
        &seg,
        session.as_deref(),
        auth,
        &client,
        exact_json,
        content_type,
        &body,
    )
    .await;
    let status = if resp.extensions().get::<DropConnection>().is_some() {
        0
    } else {
        resp.status().as_u16()
    };
    sh.record(LogEntry {
        method: method.to_string(),
        path,
        route: route.name().into(),
        session,
        token,
        auth: auth_label.into(),
        status,
    });
    resp
}

#[allow(clippy::too_many_arguments)]
async fn answer(
    sh: &Arc<Shared>,
    route: RouteKind,
    seg: &[&str],
    session: Option<&str>,
    auth: Option<Auth>,
    client: &ClientRef,
    exact_json: bool,
    content_type: &str,
    body: &Bytes,
) -> Response {
    if let Some(f) = sh.take_fault(route.name(), session) {
        if f.kind == FaultKind::Delay {
            tokio::time::sleep(Duration::from_millis(f.delay_ms.unwrap_or(1000))).await;
        } else {
            return fault_response(&f);
        }
    }
    // body-parser runs before routing: a broken JSON body is a 400 HTML page.
    let parsed: Value = if content_type.starts_with("application/json") && !body.is_empty() {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                let mut r = Html(format!(
                    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>SyntaxError: {e}</pre>\n</body>\n</html>\n"
                ))
                .into_response();
                *r.status_mut() = StatusCode::BAD_REQUEST;
                return r;
            }
        }
    } else {
        json!({})
    };
    let reply = |status: u16, mut v: Value| {
        if exact_json {
            decorate(&mut v, client);
        }
        json_resp(status, &v)
    };
    match auth {
        Some(Auth::NotInformed) => return reply(401, json!({"message": "Session not informed"})),
        Some(Auth::Missing) => return reply(401, json!({"message": NOT_PRESENT})),
        Some(Auth::Invalid(_)) => return reply(401, unauthorized_body()),
        _ => {}
    }
    let session = session.unwrap_or_default();
    match route {
        RouteKind::GenerateToken => {
            if seg[1] != sh.config.secret {
                return reply(
                    400,
                    json!({"response": false, "message": "The SECRET_KEY is incorrect"}),
                );
            }
            let input = format!("{session}{}", sh.config.secret);
            let cost = sh.config.bcrypt_cost;
            match tokio::task::spawn_blocking(move || bcrypt::hash(input, cost)).await {
                Ok(Ok(hash)) => {
                    let token = hash.replace('/', "_").replace('+', "-");
                    reply(
                        201,
                        json!({"status": "success", "session": session, "token": token, "full": format!("{session}:{token}")}),
                    )
                }
                Ok(Err(e)) => reply(500, json!({"message": e.to_string()})),
                Err(e) => reply(500, json!({"message": e.to_string()})),
            }
        }
        RouteKind::ShowAll => {
            if seg[0] != sh.config.secret {
                return reply(
                    400,
                    json!({"response": false, "message": "The token is incorrect"}),
                );
            }
            reply(200, json!({"response": sh.all_sessions()}))
        }
        RouteKind::Start => match sh.start_session(session, &parsed) {
            StartReply::Now(v) => reply(200, v),
            StartReply::Wait(rx) => match rx.await {
                Ok(v) => reply(200, v),
                // Nobody will ever answer (closed/reset before the first QR): hang like upstream.
                Err(_) => std::future::pending().await,
            },
        },
        RouteKind::Status => reply(200, sh.status_reply(session)),
        RouteKind::QrCode => match sh.qrcode_reply(session) {
            Ok(png) => {
                let mut r = Response::new(Body::from(png));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
                r
            }
            Err(v) => reply(200, v),
        },
        RouteKind::Check => {
            if sh.is_connected(session) {
                reply(200, json!({"status": true, "message": "Connected"}))
            } else {
                reply(200, json!({"status": false, "message": "Disconnected"}))
            }
        }
        RouteKind::Close => {
            if sh.close_session(session) {
                reply(
                    200,
                    json!({"status": true, "message": "Session successfully closed"}),
                )
            } else {
                // `error` is the caught TypeError as JSON: its own fields only, and the
                // logger (winston) has added `level` to it before it is sent.
                reply(
                    500,
                    json!({"status": false, "message": "Error closing session", "error": {"level": "error"}}),
                )
            }
        }
        RouteKind::Logout => {
            if sh.logout_session(session) {
                reply(
                    200,
                    json!({"status": true, "message": "Session successfully closed"}),
                )
            } else {
                reply(404, not_active_body())
            }
        }
        // §2.10: `statusConnection` first, then `getHostDevice` / `getPhoneNumber`.
        RouteKind::HostDevice => match sh.connected_account(session) {
            Some(account) => reply(200, host_device_body(&account)),
            None => reply(404, not_active_body()),
        },
        RouteKind::PhoneNumber => match sh.connected_account(session) {
            Some(account) => reply(
                200,
                json!({"status": "success", "response": account.wid(), "mapper": "device"}),
            ),
            None => reply(404, not_active_body()),
        },
    }
}

/// `statusConnection`'s answer for a session without a connected client (§2.6, §2.10).
fn not_active_body() -> Value {
    json!({"response": null, "status": "Disconnected", "message": "A sessão do WhatsApp não está ativa."})
}

/// `getHostDevice`: WA-JS `Conn.attributes` (the library's `HostDevice`) plus `phoneNumber`
/// from `client.getWid()`.
fn host_device_body(account: &Account) -> Value {
    json!({
        "status": "success",
        "response": {
            "pushname": account.pushname,
            "platform": "android",
            "wid": {"server": "c.us", "user": account.phone, "_serialized": account.wid()},
            "phone": {
                "device_manufacturer": "samsung",
                "device_model": "SM-A515F",
                "os_version": "13",
                "wa_version": "2.24.6.77"
            },
            "phoneNumber": account.wid()
        },
        "mapper": "device"
    })
}

// ---------------------------------------------------------------- misc real routes

async fn healthz(State(sh): State<Arc<Shared>>, headers: axum::http::HeaderMap) -> Response {
    // The `res.send` wrapper parses what /healthz sends, a plain object, as JSON when the
    // request's Content-Type is exactly `application/json`: it throws, nothing answers.
    if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json")
    {
        return std::future::pending().await;
    }
    let uptime = sh.started.elapsed().as_secs_f64();
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    json_resp(
        200,
        &json!({"uptime": uptime, "message": "OK", "timestamp": timestamp}),
    )
}

fn page(title: &str) -> Html<String> {
    let t = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n</head>\n<body>\n<h1>{t}</h1>\n<p>A plain page served by wpp-sim.</p>\n</body>\n</html>\n"
    ))
}

async fn index_page() -> Html<String> {
    page("wpp-sim")
}

async fn named_page(Path(name): Path<String>) -> Html<String> {
    page(&name)
}

// ---------------------------------------------------------------- /__sim control

fn sim_error(status: StatusCode, msg: String) -> Response {
    (status, Json(json!({"error": msg}))).into_response()
}

async fn sim_sessions(State(sh): State<Arc<Shared>>) -> Response {
    Json(json!({"sessions": sh.infos()})).into_response()
}

/// Optional body `{"phone": "5521999990001", "pushname": "Loja Centro"}` (either may be left
/// out); no body, or `{}`, links the session's default account.
async fn sim_scan(
    State(sh): State<Arc<Shared>>,
    Path(session): Path<String>,
    body: Bytes,
) -> Response {
    let with: ScanAs = if body.iter().all(u8::is_ascii_whitespace) {
        ScanAs::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(w) => w,
            Err(e) => return sim_error(StatusCode::BAD_REQUEST, e.to_string()),
        }
    };
    if let Err(e) = with.check() {
        return sim_error(StatusCode::BAD_REQUEST, e);
    }
    match sh.scan(&session, with) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => sim_error(StatusCode::CONFLICT, e),
    }
}

async fn sim_unlink(State(sh): State<Arc<Shared>>, Path(session): Path<String>) -> Response {
    match sh.unlink(&session) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => sim_error(StatusCode::CONFLICT, e),
    }
}

async fn sim_stuck(State(sh): State<Arc<Shared>>, Path(session): Path<String>) -> Response {
    sh.stuck(&session);
    Json(json!({"ok": true})).into_response()
}

#[derive(serde::Deserialize)]
struct QrSize {
    bytes: Option<usize>,
}

async fn sim_qr_size(
    State(sh): State<Arc<Shared>>,
    Path(session): Path<String>,
    body: Bytes,
) -> Response {
    let size: QrSize = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return sim_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match sh.set_qr_size(&session, size.bytes) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => sim_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn sim_fault_add(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return sim_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match sh.add_fault(spec) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => sim_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn sim_fault_clear(State(sh): State<Arc<Shared>>) -> Response {
    sh.clear_faults();
    Json(json!({"ok": true})).into_response()
}

async fn sim_log(State(sh): State<Arc<Shared>>) -> Response {
    Json(sh.log()).into_response()
}

async fn sim_log_clear(State(sh): State<Arc<Shared>>) -> Response {
    sh.clear_log();
    Json(json!({"ok": true})).into_response()
}

async fn sim_reset(State(sh): State<Arc<Shared>>) -> Response {
    sh.reset();
    Json(json!({"ok": true})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_tokens_and_secrets() {
        assert_eq!(
            redact_path("/api/s/SECRET/generate-token"),
            "/api/s/***/generate-token"
        );
        assert_eq!(
            redact_path("/api/SECRET/show-all-sessions"),
            "/api/***/show-all-sessions"
        );
        assert_eq!(
            redact_path("/api/s:$2b$10$abc/status-session"),
            "/api/s:***/status-session"
        );
        assert_eq!(
            redact_path("/api/s%3A%242b/status-session"),
            "/api/s:***/status-session"
        );
        assert_eq!(
            redact_path("/api/s/status-session"),
            "/api/s/status-session"
        );
        // The API also answers these spellings: the secret stays out of the log.
        for (path, redacted) in [
            (
                "/api/s/SECRET/generate-token/",
                "/api/s/***/generate-token/",
            ),
            (
                "/api/s/SECRET/generate%2Dtoken",
                "/api/s/***/generate%2Dtoken",
            ),
            (
                "/api/SECRET/show-all-sessions/",
                "/api/***/show-all-sessions/",
            ),
        ] {
            assert_eq!(redact_path(path), redacted);
        }
        assert_eq!(redact_path("/healthz"), "/healthz");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(pct_decode("a%3Ab%24"), "a:b$");
        assert_eq!(pct_decode("100%"), "100%");
        assert_eq!(pct_decode("%zz"), "%zz");
    }

    #[test]
    fn js_truthiness() {
        assert!(truthy(Some(&json!(true))));
        assert!(truthy(Some(&json!("x"))));
        assert!(truthy(Some(&json!(1))));
        assert!(!truthy(Some(&json!(""))));
        assert!(!truthy(Some(&json!(0))));
        assert!(!truthy(Some(&Value::Null)));
        assert!(!truthy(None));
    }

    #[test]
    fn decorate_follows_the_wrapper() {
        let mut v = json!({"status": "CLOSED"});
        decorate(&mut v, &ClientRef::None);
        assert_eq!(v, json!({"status": "CLOSED", "session": ""}));
        let mut v = json!({"status": "CLOSED", "session": ""});
        decorate(&mut v, &ClientRef::Unnamed);
        assert_eq!(v, json!({"status": "CLOSED"}));
        let mut v = json!({"session": "keep"});
        decorate(&mut v, &ClientRef::Named("x".into()));
        assert_eq!(v, json!({"session": "keep"}));
    }
}
