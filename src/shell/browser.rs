//! Small bindings to what `web-extensions-sys` does not cover, and helpers shared by the pages.

use js_sys::{Object, Promise, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_extensions_sys::chrome;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, present in pages and in the service worker alike.
    #[wasm_bindgen(js_name = fetch)]
    pub fn global_fetch(request: &web_sys::Request) -> Promise;

    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    pub fn console_warn(message: &str);
}

/// Looks up `chrome.<path>` (e.g. `["action", "setBadgeText"]`) and calls it with `args`.
/// Used for APIs the bindings crate lacks; each call site names the API it needs.
pub fn call_api(path: &[&str], args: &[JsValue]) -> Result<JsValue, JsValue> {
    let browser: &web_extensions_sys::Browser = chrome();
    let mut this: JsValue = JsValue::from(browser.as_ref() as &JsValue);
    let (method, namespaces) = path.split_last().expect("non-empty API path");
    for name in namespaces {
        this = Reflect::get(&this, &JsValue::from_str(name))?;
    }
    let function: js_sys::Function = Reflect::get(&this, &JsValue::from_str(method))?.dyn_into()?;
    function.apply(&this, &args.iter().collect::<js_sys::Array>())
}

/// Like [`call_api`], awaiting the promise MV3 APIs return.
pub async fn call_api_async(path: &[&str], args: &[JsValue]) -> Result<JsValue, JsValue> {
    let result = call_api(path, args)?;
    match result.dyn_into::<Promise>() {
        Ok(promise) => JsFuture::from(promise).await,
        Err(value) => Ok(value),
    }
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

/// `{key: value}` as a JS object.
pub fn object_with(key: &str, value: &JsValue) -> Object {
    let object = Object::new();
    Reflect::set(&object, &JsValue::from_str(key), value).expect("setting a plain property");
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

/// The extension's own origin, e.g. `chrome-extension://<id>/`.
pub fn extension_base_url() -> String {
    call_api(&["runtime", "getURL"], &[JsValue::from_str("")])
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// Only the extension's own pages may talk to the worker.
pub fn is_own_page(sender_id: Option<String>, sender_url: Option<String>) -> bool {
    let own_id = Reflect::get(&chrome().runtime(), &JsValue::from_str("id"))
        .ok()
        .and_then(|v| v.as_string());
    let base = extension_base_url();
    sender_id.is_some()
        && sender_id == own_id
        && !base.is_empty()
        && sender_url.is_some_and(|url| url.starts_with(&base))
}

pub fn js_error_text(err: &JsValue) -> String {
    err.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| err.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}

/// Calls `handler` on clicks of the page element with this ID, if the page has one.
pub fn on_click(id: &str, handler: impl Fn() + 'static) {
    let Some(element) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
    else {
        return;
    };
    let closure = Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
        event.prevent_default();
        handler();
    });
    element
        .add_event_listener_with_callback("click", closure.as_ref().unchecked_ref())
        .expect("adding a click listener");
    // Page elements live as long as the page.
    closure.forget();
}
