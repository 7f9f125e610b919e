//! The options page: server URL, secret key and where to keep it, and "Test connection".
//! The page validates with the core's types; the worker validates again on receipt.

use super::browser::{js_error_text, json_text, on_click, on_event, to_js};
use crate::core::messages::{decode_text, encode, OptionsReply, OptionsRequest};
use crate::core::settings::{is_insecure, SecretKey, ServerUrl, SettingsError};
use wasm_bindgen::prelude::*;
use web_extensions_sys::chrome;
use web_sys::{Document, HtmlInputElement};

#[wasm_bindgen]
pub async fn options_main() {
    match ask(&OptionsRequest::GetSettings).await {
        Ok(OptionsReply::Settings {
            server_url,
            remember_secret,
            has_secret,
            allow_insecure_http,
        }) => {
            if let Some(input) = input("server-url") {
                input.set_value(server_url.as_str());
            }
            if let Some(input) = input("remember-secret") {
                input.set_checked(remember_secret);
            }
            if let Some(input) = input("allow-insecure-http") {
                input.set_checked(allow_insecure_http);
            }
            if has_secret {
                if let Some(input) = input("secret-key") {
                    input.set_placeholder("Saved. Leave empty to keep it.");
                }
            }
        }
        Ok(other) => report(false, &format!("Unexpected reply: {other:?}")),
        Err(why) => report(false, &why),
    }
    show_insecure_warning();
    on_event("server-url", "input", |_| show_insecure_warning());
    on_click("save", || wasm_bindgen_futures::spawn_local(save()));
    on_click("test-connection", || {
        wasm_bindgen_futures::spawn_local(test_connection())
    });
    if let Some(fields) = document().get_element_by_id("settings-fields") {
        let _ = fields.remove_attribute("disabled");
    }
}

/// The form as typed; an empty secret means "keep the saved one".
struct Form {
    server_url: ServerUrl,
    secret_key: Option<SecretKey>,
    remember_secret: bool,
    allow_insecure_http: bool,
}

fn read_form() -> Result<Form, SettingsError> {
    let value = |id: &str| input(id).map(|i| i.value()).unwrap_or_default();
    let checked = |id: &str| input(id).is_some_and(|i| i.checked());
    let secret = value("secret-key");
    Ok(Form {
        server_url: ServerUrl::parse(&value("server-url"))?,
        secret_key: match secret.is_empty() {
            true => None,
            false => Some(SecretKey::parse(&secret)?),
        },
        remember_secret: checked("remember-secret"),
        allow_insecure_http: checked("allow-insecure-http"),
    })
}

/// The warning stays on screen while the URL is plain HTTP to another computer.
fn show_insecure_warning() {
    let url = input("server-url").map(|i| i.value()).unwrap_or_default();
    let insecure = ServerUrl::parse(&url).is_ok_and(|url| is_insecure(&url));
    if let Some(warning) = document().get_element_by_id("insecure-warning") {
        let _ = match insecure {
            true => warning.remove_attribute("hidden"),
            false => warning.set_attribute("hidden", ""),
        };
    }
}

async fn save() {
    let form = match read_form() {
        Ok(form) => form,
        Err(err) => return report(false, &err.to_string()),
    };
    let request = OptionsRequest::SaveSettings {
        server_url: form.server_url,
        secret_key: form.secret_key,
        remember_secret: form.remember_secret,
        allow_insecure_http: form.allow_insecure_http,
    };
    match ask(&request).await {
        Ok(OptionsReply::Saved) => {
            if let Some(input) = input("secret-key") {
                input.set_value("");
                input.set_placeholder("Saved. Leave empty to keep it.");
            }
            report(true, "Saved.");
        }
        Ok(OptionsReply::Error { message }) => report(false, &message),
        Ok(other) => report(false, &format!("Unexpected reply: {other:?}")),
        Err(why) => report(false, &why),
    }
}

async fn test_connection() {
    let form = match read_form() {
        Ok(form) => form,
        Err(err) => return report(false, &err.to_string()),
    };
    report_pending("Testing…");
    let request = OptionsRequest::TestConnection {
        server_url: form.server_url,
        secret_key: form.secret_key,
        allow_insecure_http: form.allow_insecure_http,
    };
    match ask(&request).await {
        Ok(OptionsReply::Connection { ok, message }) => report(ok, &message),
        Ok(OptionsReply::Error { message }) => report(false, &message),
        Ok(other) => report(false, &format!("Unexpected reply: {other:?}")),
        Err(why) => report(false, &why),
    }
}

async fn ask(request: &OptionsRequest) -> Result<OptionsReply, String> {
    let reply = chrome()
        .runtime()
        .send_message(None, &to_js(&encode(request)), None)
        .await
        .map_err(|e| {
            format!(
                "The extension's worker did not answer: {}",
                js_error_text(&e)
            )
        })?;
    if reply.is_undefined() || reply.is_null() {
        return Err("The extension's worker did not answer. Reload this page to try again.".into());
    }
    decode_text::<OptionsReply>(&json_text(&reply)).map_err(|e| e.to_string())
}

fn report(ok: bool, message: &str) {
    if let Some(status) = document().get_element_by_id("options-status") {
        status.set_text_content(Some(message));
        let _ = status.set_attribute("data-result", if ok { "ok" } else { "error" });
    }
}

fn report_pending(message: &str) {
    if let Some(status) = document().get_element_by_id("options-status") {
        status.set_text_content(Some(message));
        let _ = status.remove_attribute("data-result");
    }
}

fn document() -> Document {
    web_sys::window()
        .and_then(|w| w.document())
        .expect("the options page has a document")
}

fn input(id: &str) -> Option<HtmlInputElement> {
    document().get_element_by_id(id)?.dyn_into().ok()
}
