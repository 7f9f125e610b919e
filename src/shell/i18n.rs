//! The catalogue in the browser's language: what the core's [`Text`] says, as the user reads it.

use super::browser::{i18n, object};
use crate::core::text::Text;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// A `Date`, for `toLocaleString` in the user's own locale (`locales` undefined).
    type LocalDate;
    #[wasm_bindgen(method, js_name = toLocaleString)]
    fn locale_text(this: &LocalDate, locales: &JsValue, options: &JsValue) -> String;
}

/// `text` in the browser's language. A key the catalogue lacks (a test keeps that from
/// shipping) shows as itself rather than as nothing.
pub fn tr(text: &Text) -> String {
    let args: js_sys::Array = text
        .args
        .iter()
        .map(|a| wasm_bindgen::JsValue::from_str(a))
        .collect();
    let message = i18n().get_message(&text.key, &args);
    if message.is_empty() {
        text.key.to_string()
    } else {
        message
    }
}

/// The message `key`, which takes no value.
pub fn msg(key: &'static str) -> String {
    tr(&Text::new(key))
}

/// `n` as the browser's locale writes numbers (`1,234.5`, `1.234,5`...).
pub fn number(n: f64) -> String {
    js_sys::Number::from(n).to_locale_string("default").into()
}

/// A moment (ms since the epoch) as the user's locale writes a date and time: `Nov 30, 2026,
/// 3:19 PM`, `30 de nov. de 2026, 15:19`...
pub fn date_time(ms: f64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(ms));
    let options = object(&[
        ("dateStyle", "medium".into()),
        ("timeStyle", "short".into()),
    ]);
    date.unchecked_ref::<LocalDate>()
        .locale_text(&JsValue::UNDEFINED, &options)
}
