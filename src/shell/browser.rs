//! Typed bindings to what `web-extensions-sys` does not cover, and helpers shared by the
//! pages. Every `chrome.*` call the extension makes goes through a typed function.

use crate::core::messages;
use js_sys::{Object, Promise, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use web_extensions_sys::chrome;

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

    /// A `runtime.Port` whose `postMessage` may throw (the other end has gone).
    pub type FalliblePort;
    #[wasm_bindgen(method, catch, js_name = postMessage)]
    fn post_message(this: &FalliblePort, message: &JsValue) -> Result<(), JsValue>;
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

pub fn notifications() -> NotificationsApi {
    namespaces().notifications()
}

/// Serializes plain data to a JS object (maps as objects, not `Map`s).
pub fn to_js<T: Serialize>(value: &T) -> JsValue {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .expect("plain data serializes")
}

pub fn from_js<T: serde::de::DeserializeOwned>(value: JsValue) -> Result<T, String> {
    serde_wasm_bindgen::from_value(value).map_err(|e| e.to_string())
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
