//! Typed bindings to what `web-extensions-sys` does not cover, and helpers shared by the
//! pages. Every `chrome.*` call the extension makes goes through a typed function.

use crate::core::messages::{self, decode_text, MessageError, Validate};
use gloo_timers::callback::Timeout;
use js_sys::{Object, Promise, Reflect};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_extensions_sys::{chrome, Port};
use web_sys::{Document, Element, HtmlInputElement, HtmlSelectElement};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, present in pages and in the service worker alike.
    #[wasm_bindgen(js_name = fetch)]
    pub fn global_fetch(request: &web_sys::Request) -> Promise;

    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    pub fn console_warn(message: &str);

    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub fn console_error(message: &str);

    /// The `chrome` namespace, for the APIs the bindings crate lacks.
    #[wasm_bindgen(extends = Object)]
    pub type Namespaces;
    #[wasm_bindgen(method, getter)]
    fn action(this: &Namespaces) -> ActionApi;
    #[wasm_bindgen(method, getter)]
    fn alarms(this: &Namespaces) -> AlarmsApi;
    #[wasm_bindgen(method, getter)]
    fn runtime(this: &Namespaces) -> RuntimeApi;
    #[wasm_bindgen(method, getter)]
    fn notifications(this: &Namespaces) -> NotificationsApi;
    #[wasm_bindgen(method, getter)]
    fn i18n(this: &Namespaces) -> I18nApi;

    /// `chrome.i18n`: the catalogue in the browser's language.
    pub type I18nApi;
    #[wasm_bindgen(method, js_name = getMessage)]
    pub fn get_message(this: &I18nApi, name: &str, substitutions: &js_sys::Array) -> String;

    /// `chrome.action`, with the badge calls the bindings crate lacks.
    pub type ActionApi;
    #[wasm_bindgen(method, catch, js_name = setBadgeText)]
    pub async fn set_badge_text(this: &ActionApi, details: &Object) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = setBadgeBackgroundColor)]
    pub async fn set_badge_background_color(
        this: &ActionApi,
        details: &Object,
    ) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method, catch, js_name = setTitle)]
    pub async fn set_title(this: &ActionApi, details: &Object) -> Result<JsValue, JsValue>;

    /// `chrome.notifications`, absent from the bindings crate.
    pub type NotificationsApi;
    #[wasm_bindgen(method, catch, js_name = create)]
    pub async fn create_notification(
        this: &NotificationsApi,
        id: &str,
        options: &Object,
    ) -> Result<JsValue, JsValue>;

    /// `chrome.alarms`, absent from the bindings crate.
    pub type AlarmsApi;
    #[wasm_bindgen(method, catch)]
    pub async fn get(this: &AlarmsApi, name: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    pub async fn create(this: &AlarmsApi, name: &str, info: &Object) -> Result<JsValue, JsValue>;

    /// `chrome.runtime`'s ID and URL, absent from the bindings crate.
    pub type RuntimeApi;
    #[wasm_bindgen(method, getter)]
    pub fn id(this: &RuntimeApi) -> Option<String>;
    #[wasm_bindgen(method, js_name = getURL)]
    pub fn get_url(this: &RuntimeApi, path: &str) -> String;
    #[wasm_bindgen(method, catch, js_name = openOptionsPage)]
    pub async fn open_options_page(this: &RuntimeApi) -> Result<JsValue, JsValue>;

    /// The popup's port to the worker, opened and subscribed by `popup.js` before the popup's
    /// Wasm loads; it holds what the worker pushes until [`keep_worker_connected`] adopts it.
    pub type EarlyPort;
    #[wasm_bindgen(method, getter)]
    fn port(this: &EarlyPort) -> Port;
    /// The tab the popup is for: a number, or `null` when there is none.
    #[wasm_bindgen(method, getter)]
    pub fn tab(this: &EarlyPort) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn adopt(this: &EarlyPort, on_message: &js_sys::Function, on_disconnect: &js_sys::Function);

    /// A `runtime.Port` whose `postMessage` may throw (the other end has gone).
    pub type FalliblePort;
    #[wasm_bindgen(method, catch, js_name = postMessage)]
    fn post_message(this: &FalliblePort, message: &JsValue) -> Result<(), JsValue>;
}

/// Delay before reconnecting to a worker that went away (stopped or updated).
const RECONNECT_MS: u32 = 250;

thread_local! {
    /// This page's port to the worker, while one is open.
    static WORKER_PORT: RefCell<Option<Port>> = const { RefCell::new(None) };
    /// Ports this page has opened, shown as `body[data-connections]`: one more per reconnect.
    static CONNECTIONS: Cell<u32> = const { Cell::new(0) };
}

/// What a page keeps open to the worker: the port's name, where pushes go (as JSON text),
/// and the message that subscribes it again on every connection.
struct WorkerLink {
    name: &'static str,
    on_push: Box<dyn Fn(&str)>,
    subscribe: JsValue,
}

/// Keeps this page connected to the worker over a port named `name`. Each push is decoded by
/// the core as the page's own view of a `WorkerPush` (`P`: `PopupPush`, ...) and handed to
/// `on_push`, or why it was refused; `subscribe` is posted on every connection. When the
/// worker goes away (the browser stopped it, or the extension reloaded), the page
/// reconnects, which wakes the worker again, and subscribes again.
pub fn keep_worker_connected<P: DeserializeOwned + Validate>(
    name: &'static str,
    on_push: impl Fn(Result<P, MessageError>) + 'static,
    subscribe: JsValue,
    early: Option<EarlyPort>,
) {
    let link = Rc::new(WorkerLink {
        name,
        on_push: Box::new(move |text| on_push(decode_text::<P>(text))),
        subscribe,
    });
    open_worker_port(link, early);
}

/// Opens a port to the worker and subscribes, or adopts `early`, already subscribed.
fn open_worker_port(link: Rc<WorkerLink>, early: Option<EarlyPort>) {
    let port = match &early {
        Some(early) => early.port(),
        None => chrome()
            .runtime()
            .connect(None, &object(&[("name", link.name.into())])),
    };
    let pushed = Rc::clone(&link);
    let on_message = Closure::<dyn Fn(JsValue)>::new(move |message: JsValue| {
        (pushed.on_push)(&json_text(&message));
    });
    let gone = Rc::clone(&link);
    let on_disconnect = Closure::<dyn Fn()>::new(move || {
        WORKER_PORT.with(|p| p.borrow_mut().take());
        let again = Rc::clone(&gone);
        Timeout::new(RECONNECT_MS, move || open_worker_port(again, None)).forget();
    });
    // Set before the adoption below, which may replay a disconnect.
    WORKER_PORT.with(|p| *p.borrow_mut() = Some(port.clone()));
    let connections = CONNECTIONS.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    show_connections(connections);
    let (on_message_fn, on_disconnect_fn) = (
        on_message.as_ref().unchecked_ref(),
        on_disconnect.as_ref().unchecked_ref(),
    );
    match early {
        Some(early) => early.adopt(on_message_fn, on_disconnect_fn),
        None => {
            port.on_message().add_listener(on_message_fn);
            port.on_disconnect().add_listener(on_disconnect_fn);
            let _ = try_post_message(&port, &link.subscribe);
        }
    }
    // The port's listeners live as long as the page.
    on_message.forget();
    on_disconnect.forget();
}

/// Posts `message` to the worker; `false` when no port is open or the worker has gone.
pub fn post_to_worker(message: &JsValue) -> bool {
    let port = WORKER_PORT.with(|p| p.borrow().clone());
    port.is_some_and(|port| try_post_message(&port, message).is_ok())
}

/// `port.postMessage`, returning the throw of a port whose other end already closed.
pub fn try_post_message(port: &web_extensions_sys::Port, message: &JsValue) -> Result<(), JsValue> {
    port.unchecked_ref::<FalliblePort>().post_message(message)
}

fn namespaces() -> &'static Namespaces {
    chrome().unchecked_ref()
}

pub fn action() -> ActionApi {
    namespaces().action()
}

pub fn alarms() -> AlarmsApi {
    namespaces().alarms()
}

pub fn runtime() -> RuntimeApi {
    namespaces().runtime()
}

pub fn i18n() -> I18nApi {
    namespaces().i18n()
}

pub fn notifications() -> NotificationsApi {
    namespaces().notifications()
}

/// Plain data as a JS value, through JSON text (`JSON.parse`): the one serializer the core
/// already has, rather than a second one straight to JS objects.
pub fn to_js<T: Serialize>(value: &T) -> JsValue {
    let text = serde_json::to_string(value).expect("plain data serializes");
    js_sys::JSON::parse(&text).expect("serde_json writes valid JSON")
}

/// A JS object read as JSON (`JSON.stringify`, then the core's parser): what cannot be
/// written as JSON, or is not an object, is an error.
pub fn object_from_js(
    value: &JsValue,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let text = js_sys::JSON::stringify(value)
        .map_err(|e| js_error_text(&e))?
        .as_string()
        .ok_or("not representable as JSON")?;
    match serde_json::from_str(&text).map_err(|e| e.to_string())? {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err("not an object".to_owned()),
    }
}

/// A message as JSON text, for the core to check and decode. The browser serializes it
/// (without recursion in Wasm); what cannot be serialized (cycles, extreme depth) is `null`,
/// which the core refuses.
pub fn json_text(value: &JsValue) -> String {
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|text| text.as_string())
        .unwrap_or_else(|| "null".to_owned())
}

/// `{key: value, ...}` as a JS object.
pub fn object(entries: &[(&str, JsValue)]) -> Object {
    let object = Object::new();
    for (key, value) in entries {
        Reflect::set(&object, &JsValue::from_str(key), value).expect("setting a plain property");
    }
    object
}

pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// 64 bits from the browser's CSPRNG (`crypto.getRandomValues`).
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).expect("the browser CSPRNG is available");
    u64::from_le_bytes(bytes)
}

/// Whether a message or port comes from one of the extension's own pages (judged by the core).
pub fn is_own_page(sender: &web_extensions_sys::MessageSender) -> bool {
    let runtime = runtime();
    let (id, url) = (sender.id(), sender.url());
    let sender = messages::Sender {
        extension_id: id.as_deref(),
        url: url.as_deref(),
    };
    messages::is_own_page(&sender, runtime.id().as_deref(), &runtime.get_url(""))
}

pub fn js_error_text(err: &JsValue) -> String {
    err.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| err.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}

/// The wire name of a plain enum value (`focus-tab`), as the pages' attributes and option
/// values carry it; empty for a value that is not a plain name.
pub fn wire_name<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The enum value a wire name stands for, if any.
pub fn from_wire_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

// ---- the page's DOM ----------------------------------------------------------------------

/// The page's document.
pub fn document() -> Document {
    web_sys::window()
        .and_then(|w| w.document())
        .expect("the page has a document")
}

/// The page element with this ID.
pub fn element(id: &str) -> Option<Element> {
    document().get_element_by_id(id)
}

/// The page's `<input>` with this ID.
pub fn input(id: &str) -> Option<HtmlInputElement> {
    element(id)?.dyn_into().ok()
}

/// The page's `<select>` with this ID.
pub fn select_element(id: &str) -> Option<HtmlSelectElement> {
    element(id)?.dyn_into().ok()
}

/// Sets or removes `el`'s `hidden` attribute.
pub fn hide(el: &Element, hidden: bool) {
    let _ = el.toggle_attribute_with_force("hidden", hidden);
}

/// Sets or removes the `hidden` attribute of the page element with this ID, if it has one.
pub fn set_hidden(id: &str, hidden: bool) {
    if let Some(el) = element(id) {
        hide(&el, hidden);
    }
}

/// Sets or removes `el`'s `disabled` attribute.
pub fn set_disabled(el: &Element, disabled: bool) {
    let _ = el.toggle_attribute_with_force("disabled", disabled);
}

/// An outcome in the page element with this ID: its text, and `data-result` `ok` or `error`.
/// The element holds a polite live region (`role=status`) and an assertive one
/// (`role=alert`): a success is announced when the reader is idle, a failure at once.
pub fn show_result(id: &str, ok: bool, message: &str) {
    set_outcome(id, Some(ok), message);
}

/// Work under way in the outcome element with this ID (as [`show_result`]), announced
/// politely; no `data-result`.
pub fn show_pending(id: &str, message: &str) {
    set_outcome(id, None, message);
}

/// `ok`: `None` while under way.
fn set_outcome(id: &str, ok: Option<bool>, message: &str) {
    let Some(el) = element(id) else { return };
    let (speak, silence) = match ok {
        Some(false) => ("[role=alert]", "[role=status]"),
        _ => ("[role=status]", "[role=alert]"),
    };
    match (el.query_selector(speak), el.query_selector(silence)) {
        (Ok(Some(speak)), Ok(Some(silence))) => {
            silence.set_text_content(None);
            speak.set_text_content(Some(message));
        }
        _ => {
            console_warn(&format!("wpp-tabs: #{id} lacks its two live regions"));
            el.set_text_content(Some(message));
        }
    }
    let _ = match ok {
        None => el.remove_attribute("data-result"),
        Some(ok) => el.set_attribute("data-result", if ok { "ok" } else { "error" }),
    };
}

/// Calls `handler` on clicks of the page element with this ID, if the page has one; the
/// click does nothing else (no form submission).
pub fn on_click(id: &str, handler: impl Fn() + 'static) {
    on_event(id, "click", move |event| {
        event.prevent_default();
        handler();
    });
}

/// Calls `handler` on `event` at the page element with this ID, if the page has one.
pub fn on_event(id: &str, event: &str, handler: impl Fn(web_sys::Event) + 'static) {
    let Some(element) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
    else {
        return;
    };
    let closure = Closure::<dyn Fn(web_sys::Event)>::new(handler);
    element
        .add_event_listener_with_callback(event, closure.as_ref().unchecked_ref())
        .expect("adding an event listener");
    // Page elements live as long as the page.
    closure.forget();
}

/// Removes every child of `el` (not `innerHTML`, which the stores' linters flag).
pub fn clear_children(el: &web_sys::Element) {
    while let Some(child) = el.first_child() {
        let _ = el.remove_child(&child);
    }
}

/// The page itself failed: `message` in `#error`, shown (until the page hides it again).
pub fn show_error(message: &str) {
    if let Some(error) = element("error") {
        error.set_text_content(Some(message));
    }
    set_hidden("error", false);
}

/// A new element with `class` (none when empty).
pub fn make(tag: &str, class: &str) -> Element {
    let el = document().create_element(tag).expect("a valid tag name");
    if !class.is_empty() {
        el.set_class_name(class);
    }
    el
}

/// A new element with `class` (none when empty) and `text`.
pub fn text_el(tag: &str, class: &str, text: &str) -> Element {
    let el = make(tag, class);
    el.set_text_content(Some(text));
    el
}

/// Appends `child` to `parent`.
pub fn append(parent: &Element, child: &Element) {
    let _ = parent.append_child(child);
}

/// A worker message the page could not read: never silent, since what is on screen may be
/// out of date and the user must know.
pub fn show_unreadable_update(err: &MessageError) {
    console_warn(&format!("wpp-tabs: worker message refused: {err}"));
    let text = crate::core::text::Text::new("common_error_unreadable_update").arg(err);
    show_error(&super::i18n::tr(&text));
}

/// The ports a page has opened so far, as `body[data-connections]`.
fn show_connections(connections: u32) {
    if let Some(body) = document().body() {
        let _ = body.set_attribute("data-connections", &connections.to_string());
    }
}
