//! The background worker's entry points. The JS loader registers every listener
//! synchronously and calls these exports once the module is ready; each hands its event to
//! the core's [`Worker`], which decides everything.

mod ports;
mod setup;
mod shell;
mod sockets;

use super::browser::{console_error, is_own_page, json_text, now_ms, object, to_js};
use crate::core::diagnostics::{PanicLine, LOG_KEY};
use crate::core::messages::{DIAGNOSTICS_PORT, POPUP_PORT, SESSIONS_PORT};
use crate::core::storage::TabId;
use crate::core::timings::Timings;
use crate::core::worker::{PageKind, PortKey, Worker};
use shell::BrowserShell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_extensions_sys::{MessageSender, Port};

thread_local! {
    static WORKER: Rc<Worker<BrowserShell>> = {
        install_panic_hook();
        Worker::new(BrowserShell, Timings::current())
    };
}

fn worker() -> Rc<Worker<BrowserShell>> {
    WORKER.with(Rc::clone)
}

fn tab_id(id: f64) -> Option<TabId> {
    (id.fract() == 0.0)
        .then_some(id as i64)
        .and_then(TabId::new)
}

#[wasm_bindgen]
extern "C" {
    /// The loader's hook: drops the ports of the instance that panicked, so their popups
    /// reconnect to the fresh one.
    #[wasm_bindgen(catch, js_namespace = globalThis, js_name = wppTabsOnPanic)]
    fn tell_loader_of_panic() -> Result<(), JsValue>;

    /// `storage.session`, whose `set` is called at once (the bindings crate's `set` is an
    /// `async fn`, which calls nothing until polled, and nothing polls in a dying instance).
    type SessionArea;
    #[wasm_bindgen(method, catch, js_name = set)]
    fn set_now(this: &SessionArea, items: &js_sys::Object) -> Result<js_sys::Promise, JsValue>;
}

/// A panic is logged, and the next event runs on a fresh instance of the module (state
/// comes back from storage): one bad event must not leave the worker dead for its life.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!("wpp-tabs: the worker panicked: {info}"));
        record_panic(&info.to_string());
        sockets::close_all();
        wasm_bindgen::handler::schedule_reinit();
        let _ = tell_loader_of_panic();
    }));
}

/// Leaves a redacted line in `storage.session` for the next instance to put in the
/// diagnostics log, and the log itself as it stands: this instance is about to die, and its
/// latest events with it. Best effort, without waiting.
fn record_panic(message: &str) {
    let line = PanicLine::new(now_ms(), message);
    let mut items = vec![(line.key(), to_js(&line))];
    if let Some(log) = WORKER.try_with(|w| w.log_snapshot()).ok().flatten() {
        items.push((LOG_KEY.to_owned(), to_js(&log)));
    }
    let items: Vec<(&str, JsValue)> = items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let area = web_extensions_sys::chrome().storage().session();
    let _ = area.unchecked_ref::<SessionArea>().set_now(&object(&items));
}

/// Does nothing, and so lets the loader start the fresh instance right after a panic: any
/// export call does that, before a stale callback of the old instance can run.
#[wasm_bindgen]
pub fn worker_recover() {}

#[wasm_bindgen]
pub fn worker_on_installed() {
    setup::create_menu();
    spawn_local(setup::ensure_refresh_alarm(worker().timings()));
}

#[wasm_bindgen]
pub fn worker_on_startup() {
    spawn_local(setup::ensure_refresh_alarm(worker().timings()));
}

/// A page connected a port. Returns the key the loader passes with the port's messages, or
/// `undefined` after refusing (and disconnecting) a port that is not one of the extension's
/// own pages.
#[wasm_bindgen]
pub fn worker_on_connect(port: Port) -> Option<u32> {
    let kind = match port.name().as_str() {
        POPUP_PORT => Some(PageKind::Popup),
        SESSIONS_PORT => Some(PageKind::Sessions),
        DIAGNOSTICS_PORT => Some(PageKind::Diagnostics),
        _ => None,
    };
    let kind = kind.filter(|_| port.sender().is_some_and(|s| is_own_page(&s)));
    let Some(kind) = kind else {
        worker().rejected("refused a connection that is not from the extension's pages");
        port.disconnect();
        return None;
    };
    let key = worker().page_connected(kind);
    ports::add(key, port);
    Some(key.0)
}

#[wasm_bindgen]
pub fn worker_on_port_message(key: u32, message: JsValue) {
    let message = json_text(&message);
    let worker = worker();
    spawn_local(async move { worker.page_message(PortKey(key), &message).await });
}

#[wasm_bindgen]
pub fn worker_on_port_disconnect(key: u32) {
    ports::remove(PortKey(key));
    worker().page_disconnected(PortKey(key));
}

/// One-off requests from the options page; answers with an encoded `OptionsReply`.
#[wasm_bindgen]
pub async fn worker_on_message(message: JsValue, sender: MessageSender) -> JsValue {
    if !is_own_page(&sender) {
        worker().rejected("ignored a message that is not from the extension's pages");
        return JsValue::UNDEFINED;
    }
    to_js(&worker().options_message(&json_text(&message)).await)
}

#[wasm_bindgen]
pub async fn worker_on_tab_removed(tab: f64) {
    if let Some(tab) = tab_id(tab) {
        worker().tab_removed(tab).await;
    }
}

#[wasm_bindgen]
pub async fn worker_on_tab_updated(tab: f64, status: Option<String>) {
    if let Some(tab) = tab_id(tab) {
        worker().tab_updated(tab, status.as_deref()).await;
    }
}

/// The context menu. A promise, so a click's outcome can be awaited (devtools, tests).
#[wasm_bindgen]
pub async fn worker_on_menu_clicked(item: Option<String>, tab: Option<f64>) {
    let tab = tab.and_then(tab_id);
    worker().menu_clicked(item.as_deref(), tab).await;
}

#[wasm_bindgen]
pub async fn worker_on_alarm(name: String) {
    worker().alarm(&name).await;
}

#[wasm_bindgen]
pub fn worker_on_command(name: String) {
    worker().command(&name);
}

#[wasm_bindgen]
pub async fn worker_on_notification_clicked(id: String) {
    worker().notification_clicked(&id).await;
}

/// Test builds only: a panic on demand, so the suite can prove the worker survives one.
#[cfg(feature = "test-hooks")]
#[wasm_bindgen]
pub fn worker_test_panic() {
    worker().panic_mid_update();
}
