//! The popup: renders the [`TabView`] the worker pushes, and turns clicks into requests.
//! It paints the cached session first (straight from `storage.session`), then goes live.

use super::browser::{console_warn, js_error_text, json_text, object, on_click, runtime, to_js};
use super::store::BrowserStorage;
use crate::core::messages::{decode_text, encode, PopupRequest, WorkerPush, POPUP_PORT};
use crate::core::session::{display_id, TabView};
use crate::core::storage::TabId;
use crate::core::store::Store;
use gloo_timers::callback::Timeout;
use js_sys::Array;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_extensions_sys::{chrome, Port};
use web_sys::{Document, Element, HtmlElement};

/// How long "Copied" stays on the copy button.
const COPIED_MS: u32 = 1_500;
/// Delay before reconnecting to a worker that went away (stopped or updated).
const RECONNECT_MS: u32 = 250;

thread_local! {
    static POPUP: RefCell<Option<PopupState>> = const { RefCell::new(None) };
}

struct PopupState {
    port: Option<Port>,
    full_id: Option<String>,
    /// The last live view, which decides what "Log out" does.
    view: Option<TabView>,
    /// The logout confirmation is open.
    confirming: bool,
    /// Opened by the context menu (`?confirm=logout`) to confirm a logout, and only for that.
    confirm_window: bool,
}

#[wasm_bindgen]
pub async fn popup_main() {
    let Some(tab) = target_tab().await else {
        return show_error("This popup could not tell which tab it belongs to.");
    };
    let confirm_window = url_param("confirm").as_deref() == Some("logout");
    POPUP.with(|p| {
        *p.borrow_mut() = Some(PopupState {
            port: None,
            full_id: None,
            view: None,
            confirming: false,
            confirm_window,
        })
    });
    wire_buttons();
    paint_cached(tab).await;
    connect(tab);
}

fn url_param(name: &str) -> Option<String> {
    let search = document().location()?.search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
}

/// `popup.html?tab=<id>` names the tab; otherwise it is the active tab of this window.
async fn target_tab() -> Option<TabId> {
    if let Some(tab) = url_param("tab") {
        return TabId::new(tab.parse().ok()?);
    }
    let query = object(&[("active", true.into()), ("currentWindow", true.into())]);
    let tabs: Array = chrome().tabs().query(&query).await.ok()?.dyn_into().ok()?;
    let tab: web_extensions_sys::Tab = tabs.get(0).unchecked_into();
    TabId::new(tab.id()?.into())
}

/// First paint from storage, before the worker answers: ID and last known status.
async fn paint_cached(tab: TabId) {
    let store = Store::new(&BrowserStorage);
    let Ok(Some(id)) = store.tab_session(tab).await else {
        return;
    };
    let last_status = store
        .record(&id)
        .await
        .ok()
        .flatten()
        .and_then(|r| r.last_status);
    let view = TabView::cached(&id, last_status, js_sys::Date::now());
    render(&view, ViewSource::Cache);
}

fn connect(tab: TabId) {
    let port = chrome()
        .runtime()
        .connect(None, &object(&[("name", POPUP_PORT.into())]));
    let on_message = Closure::<dyn Fn(JsValue)>::new(|message: JsValue| {
        match decode_text::<WorkerPush>(&json_text(&message)) {
            Ok(WorkerPush::State { view }) => {
                render(&view, ViewSource::Worker);
                follow_confirmation(view);
            }
            // Never silent: what is on screen may be out of date, and the user must know.
            Err(err) => {
                console_warn(&format!("wpp-tabs: worker message refused: {err}"));
                show_error(&format!(
                    "This popup could not read an update from the extension ({err}). \
                     What it shows may be out of date: close and reopen it."
                ));
            }
        }
    });
    // The worker went away (the browser stopped it, or the extension reloaded): reconnect,
    // which wakes it again, and re-subscribe.
    let on_disconnect = Closure::<dyn Fn()>::new(move || {
        with_popup(|p| p.port = None);
        Timeout::new(RECONNECT_MS, move || connect(tab)).forget();
    });
    port.on_message()
        .add_listener(on_message.as_ref().unchecked_ref());
    port.on_disconnect()
        .add_listener(on_disconnect.as_ref().unchecked_ref());
    on_message.forget();
    on_disconnect.forget();
    with_popup(|p| p.port = Some(port));
    send(PopupRequest::Subscribe { tab_id: tab });
}

fn with_popup<R>(f: impl FnOnce(&mut PopupState) -> R) -> Option<R> {
    POPUP.with(|p| p.borrow_mut().as_mut().map(f))
}

fn send(request: PopupRequest) {
    let Some(port) = with_popup(|p| p.port.clone()).flatten() else {
        return;
    };
    port.post_message(&to_js(&encode(&request)));
}

fn wire_buttons() {
    on_click("pair", || send(PopupRequest::Pair));
    on_click("logout", ask_logout);
    on_click("logout-confirm", || {
        set_confirming(false);
        send(PopupRequest::Logout);
    });
    on_click("logout-cancel", cancel_logout);
    let on_key = Closure::<dyn Fn(web_sys::KeyboardEvent)>::new(|event: web_sys::KeyboardEvent| {
        if event.key() == "Escape" && with_popup(|p| p.confirming).unwrap_or(false) {
            event.prevent_default();
            cancel_logout();
        }
    });
    let _ = document().add_event_listener_with_callback("keydown", on_key.as_ref().unchecked_ref());
    on_key.forget();
    on_click("copy-session-id", || spawn_local(copy_session_id()));
    on_click("open-options", || {
        spawn_local(async {
            let _ = runtime().open_options_page().await;
        });
    });
}

/// "Log out": at once, or after a confirmation when that would unlink a connected account.
fn ask_logout() {
    let confirm = with_popup(|p| {
        p.view
            .as_ref()
            .is_some_and(TabView::logout_needs_confirmation)
    });
    match confirm.unwrap_or(false) {
        true => set_confirming(true),
        false => send(PopupRequest::Logout),
    }
}

fn cancel_logout() {
    set_confirming(false);
    if with_popup(|p| p.confirm_window).unwrap_or(false) {
        close_window();
    }
}

fn set_confirming(on: bool) {
    with_popup(|p| p.confirming = on);
    set_hidden("logout-confirmation", !on);
    if let Some(button) = element("logout-confirm").and_then(|e| e.dyn_into::<HtmlElement>().ok()) {
        if on {
            let _ = button.focus();
        }
    }
}

/// Keeps the confirmation true to the account: a confirmation window opens it once the
/// account shows connected, and closes once the logout is done; an account that is no longer
/// connected needs no confirmation.
fn follow_confirmation(view: TabView) {
    let needs = view.logout_needs_confirmation();
    let logged_out = view.session_id.is_none();
    let Some((window, confirming, first)) = with_popup(|p| {
        let first = p.view.is_none();
        p.view = Some(view);
        (p.confirm_window, p.confirming, first)
    }) else {
        return;
    };
    if window && first && needs {
        set_confirming(true);
    } else if confirming && !needs {
        set_confirming(false);
    }
    if window && logged_out {
        close_window();
    }
}

fn close_window() {
    if let Some(window) = web_sys::window() {
        let _ = window.close();
    }
}

async fn copy_session_id() {
    let Some(full_id) = with_popup(|p| p.full_id.clone()).flatten() else {
        return;
    };
    let Some(button) = element("copy-session-id") else {
        return;
    };
    let clipboard = web_sys::window().map(|w| w.navigator().clipboard());
    let copied = match clipboard {
        Some(clipboard) => JsFuture::from(clipboard.write_text(&full_id))
            .await
            .map_err(|e| js_error_text(&e)),
        None => Err("no clipboard".to_owned()),
    };
    match copied {
        Ok(_) => {
            button.set_text_content(Some("Copied"));
            Timeout::new(COPIED_MS, move || button.set_text_content(Some("Copy"))).forget();
        }
        Err(why) => {
            console_warn(&format!("wpp-tabs: copy failed: {why}"));
            button.set_text_content(Some("Copy failed: select the ID"));
            if let Some(id) = element("session-id") {
                id.set_text_content(Some(&full_id));
            }
        }
    }
}

/// Where a rendered view came from, shown as `data-source` on the body.
#[derive(Clone, Copy)]
enum ViewSource {
    /// The last state stored in `storage.session`, painted before the worker answers.
    Cache,
    /// A live state pushed by the worker.
    Worker,
}

/// Shows `view` and nothing else: every element's state derives from it.
fn render(view: &TabView, source: ViewSource) {
    with_popup(|p| p.full_id = view.session_id.as_ref().map(|id| id.to_string()));
    if let Some(el) = element("session-id") {
        match &view.session_id {
            Some(id) => {
                el.set_text_content(Some(&display_id(id)));
                let _ = el.set_attribute("title", id.as_str());
            }
            None => {
                el.set_text_content(Some("—"));
                let _ = el.remove_attribute("title");
            }
        }
    }
    set_hidden("copy-session-id", view.session_id.is_none());
    if let Some(el) = element("status") {
        el.set_text_content(Some(&view.status_text));
        let status = view.status.map_or("NONE", |s| s.as_str());
        let _ = el.set_attribute("data-status", status);
        let phase = serde_json::to_value(view.phase).ok();
        let phase = phase.as_ref().and_then(|p| p.as_str()).unwrap_or_default();
        let _ = el.set_attribute("data-phase", phase);
    }
    if let Some(el) = element("qr") {
        match &view.qr {
            Some(src) => {
                let _ = el.set_attribute("src", src);
                let _ = el.remove_attribute("hidden");
            }
            None => {
                let _ = el.remove_attribute("src");
                let _ = el.set_attribute("hidden", "");
            }
        }
    }
    set_hidden("qr-hint", view.qr.is_none());
    if let Some(el) = element("pair") {
        el.set_text_content(view.action_label.as_deref());
        set_disabled(&el, view.busy);
    }
    set_hidden("pair", view.action.is_none());
    if let Some(el) = element("logout") {
        set_disabled(&el, view.busy);
    }
    set_hidden("logout", !view.can_log_out());
    if let Some(el) = element("error") {
        match &view.error {
            Some(error) => {
                el.set_text_content(Some(&error.message));
                let _ = el.set_attribute("data-error", &error.code);
            }
            None => {
                el.set_text_content(None);
                let _ = el.remove_attribute("data-error");
            }
        }
    }
    set_hidden("error", view.error.is_none());
    set_hidden("open-options", !view.needs_settings);
    set_hidden("insecure-warning", !view.insecure_server);
    if let Some(body) = document().body() {
        let _ = body.set_attribute("aria-busy", if view.busy { "true" } else { "false" });
        let source = match source {
            ViewSource::Cache => "cache",
            ViewSource::Worker => "worker",
        };
        let _ = body.set_attribute("data-source", source);
    }
}

fn show_error(message: &str) {
    if let Some(el) = element("error") {
        el.set_text_content(Some(message));
        let _ = el.set_attribute("data-error", "popup");
    }
    set_hidden("error", false);
}

fn document() -> Document {
    web_sys::window()
        .and_then(|w| w.document())
        .expect("the popup has a document")
}

fn element(id: &str) -> Option<Element> {
    document().get_element_by_id(id)
}

fn set_hidden(id: &str, hidden: bool) {
    if let Some(el) = element(id).and_then(|e| e.dyn_into::<HtmlElement>().ok()) {
        el.set_hidden(hidden);
    }
}

fn set_disabled(el: &Element, disabled: bool) {
    let _ = if disabled {
        el.set_attribute("disabled", "")
    } else {
        el.remove_attribute("disabled")
    };
}
