//! The worker's WebSockets (`core::push` decides when each opens and closes, and reads
//! every frame). Each socket's handlers call the core through the live instance; a panic
//! closes them all first, so no handler of a dead instance ever runs.

use super::worker;
use crate::core::push::{SocketKey, SocketSignal};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, WebSocket};

/// A socket and its handlers, which must live as long as it does.
struct Open {
    socket: WebSocket,
    _handlers: [Closure<dyn FnMut(JsValue)>; 3],
}

thread_local! {
    static SOCKETS: RefCell<HashMap<SocketKey, Open>> = RefCell::default();
}

fn signal(key: SocketKey, signal: SocketSignal) {
    worker().socket_signal(key, signal);
}

pub fn open(key: SocketKey, url: &str) {
    let socket = match WebSocket::new(url) {
        Ok(socket) => socket,
        Err(_) => {
            // A URL the browser refuses: reported as a failed connection, after this call.
            wasm_bindgen_futures::spawn_local(async move { signal(key, SocketSignal::Closed) });
            return;
        }
    };
    let on_open = Closure::<dyn FnMut(JsValue)>::new(move |_| signal(key, SocketSignal::Opened));
    let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let text = event
            .dyn_ref::<MessageEvent>()
            .and_then(|e| e.data().as_string());
        // Binary frames are not part of what the server sends: an empty text is refused.
        signal(key, SocketSignal::Text(text.unwrap_or_default()));
    });
    // An error is always followed by a close; the close alone is reported, and the core
    // answers it with `close`, which lets the socket go.
    let on_close = Closure::<dyn FnMut(JsValue)>::new(move |_| signal(key, SocketSignal::Closed));
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    SOCKETS.with(|s| {
        s.borrow_mut().insert(
            key,
            Open {
                socket,
                _handlers: [on_open, on_message, on_close],
            },
        )
    });
}

pub fn send(key: SocketKey, text: &str) {
    SOCKETS.with(|s| {
        if let Some(open) = s.borrow().get(&key) {
            // A socket that is closing throws; its close handler reports it.
            let _ = open.socket.send_with_str(text);
        }
    });
}

/// Closes the socket without a signal: its handlers are detached first, and dropped only
/// after the current event, which may be one of them running.
pub fn close(key: SocketKey) {
    let open = SOCKETS.with(|s| s.borrow_mut().remove(&key));
    if let Some(open) = open {
        detach_and_close(&open.socket);
        wasm_bindgen_futures::spawn_local(async move { drop(open) });
    }
}

/// From the panic hook: every socket closes, silently; the fresh instance opens its own.
pub fn close_all() {
    let _ = SOCKETS.try_with(|s| {
        if let Ok(mut sockets) = s.try_borrow_mut() {
            for (_, open) in sockets.drain() {
                detach_and_close(&open.socket);
                // The instance is dying: its handlers are never dropped while one may run.
                std::mem::forget(open);
            }
        }
    });
}

fn detach_and_close(socket: &WebSocket) {
    socket.set_onopen(None);
    socket.set_onmessage(None);
    socket.set_onclose(None);
    let _ = socket.close();
}
