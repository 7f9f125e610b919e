//! What the worker registers with the browser once: the context menu and the refresh alarm.

use crate::core::timings::Timings;
use crate::core::worker::{
    LOGOUT_MENU_ID, LOGOUT_MENU_TITLE, REFRESH_ALARM, SESSIONS_MENU_ID, SESSIONS_MENU_TITLE,
};
use crate::shell::browser::{alarms, console_warn, js_error_text, object};
use crate::shell::i18n::msg;
use js_sys::Array;
use wasm_bindgen::prelude::*;
use web_extensions_sys::chrome;

pub fn create_menu() {
    menu_item(LOGOUT_MENU_ID, &msg(LOGOUT_MENU_TITLE), &["page", "action"]);
    menu_item(SESSIONS_MENU_ID, &msg(SESSIONS_MENU_TITLE), &["action"]);
}

fn menu_item(id: &str, title: &str, contexts: &[&str]) {
    let contexts: Array = contexts.iter().map(|c| JsValue::from_str(c)).collect();
    let properties = object(&[
        ("id", id.into()),
        ("title", title.into()),
        ("contexts", contexts.into()),
    ]);
    // The callback reads lastError, so a re-install's duplicate ID is not reported as uncaught.
    let done = Closure::once_into_js(|| {
        let _ = chrome().runtime().last_error();
    });
    chrome()
        .context_menus()
        .create(&properties, Some(done.unchecked_ref()));
}

pub async fn ensure_refresh_alarm(timings: Timings) {
    let alarms = alarms();
    let existing = alarms.get(REFRESH_ALARM).await;
    if existing.is_ok_and(|a| !a.is_undefined() && !a.is_null()) {
        return;
    }
    let info = object(&[("periodInMinutes", timings.slow_refresh_minutes.into())]);
    if let Err(err) = alarms.create(REFRESH_ALARM, &info).await {
        console_warn(&format!("wpp-tabs: alarm: {}", js_error_text(&err)));
    }
}
