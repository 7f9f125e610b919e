//! Socket.IO v4 over the Engine.IO v4 WebSocket transport, enough for `socket.io-client`
//! with `transports: ['websocket']`: open packet, namespace connect, ping/pong, and every
//! server event broadcast to every socket like upstream's `io.emit` (§4).

use std::sync::Arc;
use std::time::Duration;

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
                    connected = true;
                    Some(format!("40{}", json!({"sid": sid()})))
                } else if text.starts_with("41") {
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
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
