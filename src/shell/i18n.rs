//! The catalogue in the browser's language: what the core's [`Text`] says, as the user reads it.

use super::browser::i18n;
use crate::core::text::Text;

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
