//! Socket.IO v4 over the Engine.IO v4 WebSocket transport, enough for `socket.io-client`
//! with `transports: ['websocket']`: open packet, namespace connect, ping/pong, and every
//! server event broadcast to every socket like upstream's `io.emit` (§4).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::state::Shared;

const PING_INTERVAL_MS: u64 = 25_000;
/// The event record keeps the latest events only.
const MAX_EMITTED: usize = 10_000;

/// One event as it went out to every socket.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EmittedEvent {
    /// Wall-clock time (ms since the Unix epoch), comparable with a browser's `Date.now()`.
    pub at_ms: u64,
    pub event: String,
    pub session: Option<String>,
    /// The end of a `qrCode` event's data URL: enough to tell which QR a client shows.
    pub data_tail: Option<String>,
}

/// Characters of a QR's data URL kept in [`EmittedEvent::data_tail`].
pub const DATA_TAIL_CHARS: usize = 32;

/// The control surface's view of the sockets: how many joined the namespace, whether new
/// ones are refused (a server whose socket endpoint is down), a signal that drops them all.
pub(crate) struct Sockets {
    joined: AtomicUsize,
    refused: AtomicBool,
    kill: tokio::sync::watch::Sender<u64>,
    emitted: Mutex<Vec<EmittedEvent>>,
    /// CORS preflights (OPTIONS) answered: what a client without host permission adds.
    preflights: AtomicUsize,
}

impl Default for Sockets {
    fn default() -> Self {
        Sockets {
            joined: AtomicUsize::new(0),
            refused: AtomicBool::new(false),
            kill: tokio::sync::watch::channel(0).0,
            emitted: Mutex::new(Vec::new()),
            preflights: AtomicUsize::new(0),
        }
    }
}

impl Sockets {
    pub(crate) fn record(&self, event: &str, payload: &serde_json::Value) {
        let session = payload
            .get("session")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let data_tail = payload
            .get("data")
            .and_then(serde_json::Value::as_str)
            .map(|d| d.chars().rev().take(DATA_TAIL_CHARS).collect::<Vec<_>>())
            .map(|c| c.into_iter().rev().collect());
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut emitted = self.emitted.lock().unwrap_or_else(|e| e.into_inner());
        if emitted.len() >= MAX_EMITTED {
            emitted.remove(0);
        }
        emitted.push(EmittedEvent {
            at_ms,
            event: event.to_owned(),
            session,
            data_tail,
        });
    }

    pub(crate) fn emitted(&self) -> Vec<EmittedEvent> {
        self.emitted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn count_preflight(&self) {
        self.preflights.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn preflights(&self) -> usize {
        self.preflights.load(Ordering::SeqCst)
    }

    pub(crate) fn joined(&self) -> usize {
        self.joined.load(Ordering::SeqCst)
    }

    /// Drops every socket; with `refuse`, new ones are refused until [`Sockets::allow`].
    pub(crate) fn drop_all(&self, refuse: bool) {
        self.refused.store(refuse, Ordering::SeqCst);
        self.kill.send_modify(|n| *n += 1);
    }

    pub(crate) fn allow(&self) {
        self.refused.store(false, Ordering::SeqCst);
    }
}

fn sid() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

pub(crate) async fn handler(
    State(sh): State<Arc<Shared>>,
    uri: Uri,
    ws: Option<WebSocketUpgrade>,
) -> Response {
    let query = uri.query().unwrap_or("");
    let param = |k: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
    };
    if sh.sockets.refused.load(Ordering::SeqCst) {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"message": "sockets refused by the simulator"})),
        )
            .into_response();
    }
    if param("EIO").as_deref() != Some("4") {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"code": 5, "message": "Unsupported protocol version"})),
        )
            .into_response();
    }
    match (param("transport").as_deref(), ws) {
        (Some("websocket"), Some(ws)) => ws.on_upgrade(move |socket| run(socket, sh)),
        // Only the WebSocket transport is simulated; polling gets engine.io's "Transport unknown".
        _ => (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"code": 0, "message": "Transport unknown"})),
        )
            .into_response(),
    }
}

async fn run(mut socket: WebSocket, sh: Arc<Shared>) {
    // Subscribe before the open packet so nothing emitted after the handshake is missed.
    let mut events = sh.events.subscribe();
    let mut shutdown = sh.shutdown.clone();
    let mut kill = sh.sockets.kill.subscribe();
    let open = json!({
        "sid": sid(),
        "upgrades": [],
        "pingInterval": PING_INTERVAL_MS,
        "pingTimeout": 20000,
        "maxPayload": 1000000
    });
    if socket
        .send(Message::Text(format!("0{open}")))
        .await
        .is_err()
    {
        return;
    }
    let mut connected = false;
    let mut ping = tokio::time::interval(Duration::from_millis(PING_INTERVAL_MS));
    ping.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let reply = if text.starts_with("40") {
                    if !connected {
                        sh.sockets.joined.fetch_add(1, Ordering::SeqCst);
                    }
                    connected = true;
                    Some(format!("40{}", json!({"sid": sid()})))
                } else if text.starts_with("41") {
                    if connected {
                        sh.sockets.joined.fetch_sub(1, Ordering::SeqCst);
                    }
                    connected = false;
                    None
                } else if text == "2" {
                    Some("3".to_string())
                } else if text == "1" {
                    break;
                } else {
                    None // "3" pongs and client events: upstream handles none
                };
                if let Some(r) = reply {
                    if socket.send(Message::Text(r)).await.is_err() {
                        break;
                    }
                }
            }
            ev = events.recv() => match ev {
                Ok(frame) => {
                    if connected && socket.send(Message::Text(frame)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            },
            _ = ping.tick() => {
                if socket.send(Message::Text("2".into())).await.is_err() {
                    break;
                }
            }
            _ = shutdown.changed() => break,
            _ = kill.changed() => break,
        }
    }
    if connected {
        sh.sockets.joined.fetch_sub(1, Ordering::SeqCst);
    }
    let _ = socket.send(Message::Close(None)).await;
}
