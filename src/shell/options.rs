//! The options page: the list of servers (add, edit, remove, choose the default; each with its
//! URL, secret key and where to keep it, and "Test connection"), and what the extension does on
//! its own (closed tabs, notifications, stale sessions). The form edits one server at a time, the one chosen
//! in `#server-select`. The page validates with the core's types; the worker validates again
//! on receipt and stays the judge (a changed URL without its secret, removing a server that
//! still has sessions).

use super::browser::{
    clear_children, document, element, from_wire_name, input, js_error_text, json_text, on_click,
    on_event, select_element, set_hidden, show_pending, show_result, to_js, wire_name,
};
use super::i18n::{msg, number, tr};
use crate::core::messages::{decode_text, encode, OptionsReply, OptionsRequest, ServerSummary};
use crate::core::settings::{
    check_transport, is_insecure, parse_server_name, ClosedTab, Remember, SecretKey, ServerId,
    ServerUrl, SettingsError, StaleAfterDays,
};
use crate::core::text::Text;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use web_extensions_sys::chrome;
use web_sys::{Document, HtmlSelectElement};

/// The `#server-select` value of "Add a server…".
const NEW: &str = "new";

/// The servers as the worker last described them: what the form is filled from.
#[derive(Default)]
struct Known {
    servers: Vec<ServerSummary>,
    default_server: Option<ServerId>,
}

thread_local! {
    static KNOWN: RefCell<Known> = RefCell::default();
}

#[cfg_attr(feature = "entry-options", wasm_bindgen)]
pub async fn options_main() {
    on_event("server-select", "change", |_| {
        fill_form();
        report_pending("");
    });
    on_event("server-url", "input", |_| show_insecure_warning());
    on_click("save", || wasm_bindgen_futures::spawn_local(save()));
    on_click("test-connection", || {
        wasm_bindgen_futures::spawn_local(test_connection())
    });
    on_click("remove-server", || {
        wasm_bindgen_futures::spawn_local(remove())
    });
    on_click("save-preferences", || {
        wasm_bindgen_futures::spawn_local(save_preferences())
    });
    super::unlock::wire_options();
    // The fields stay disabled until they show what is saved: typing earlier would be lost.
    match load(None, true).await {
        Ok(()) => {
            for id in ["settings-fields", "preferences-fields"] {
                if let Some(fields) = element(id) {
                    let _ = fields.remove_attribute("disabled");
                }
            }
        }
        Err(why) => report(false, &why),
    }
    if let Some(body) = document().body() {
        let _ = body.set_attribute("aria-busy", "false");
    }
}

/// Reads the settings from the worker and shows them, with `select` (or else the default
/// server) chosen; the preferences only on the first load, so that a save of the servers does
/// not undo a change to them not yet saved.
pub(super) async fn load(select: Option<ServerId>, preferences: bool) -> Result<(), String> {
    match ask(&OptionsRequest::GetSettings).await? {
        OptionsReply::Settings {
            servers,
            default_server,
            closed_tab,
            notify_drops,
            stale_after_days,
            auto_forget_stale,
        } => {
            KNOWN.with(|known| {
                *known.borrow_mut() = Known {
                    servers,
                    default_server: Some(default_server),
                }
            });
            render_servers(select);
            if preferences {
                // Its option values are the wire names of `ClosedTab`.
                set_select_value("closed-tab", wire_name(closed_tab));
                if let Some(input) = input("notify-drops") {
                    input.set_checked(notify_drops);
                }
                if let Some(input) = input("stale-after-days") {
                    input.set_value(&stale_after_days.days().to_string());
                }
                if let Some(input) = input("auto-forget-stale") {
                    input.set_checked(auto_forget_stale);
                }
            }
            Ok(())
        }
        OptionsReply::Error { message } => Err(tr(&message)),
        other => Err(unexpected(&other)),
    }
}

/// Rebuilds `#server-select`: one option per server, then "Add a server…"; chooses `select`
/// if it is still there, or else the default server, and fills the form from it.
fn render_servers(select: Option<ServerId>) {
    let Some(list) = select_element("server-select") else {
        return;
    };
    let doc = document();
    clear_children(&list);
    let chosen = KNOWN.with(|known| {
        let known = known.borrow();
        for server in &known.servers {
            let is_default = known.default_server.as_ref() == Some(&server.id);
            let key = match is_default {
                true => "options_server_choice_default",
                false => "options_server_choice",
            };
            let text = Text::new(key).arg(&server.name).arg(&server.server_url);
            add_option(&doc, &list, server.id.as_str(), &tr(&text));
        }
        let wanted = select.filter(|id| known.servers.iter().any(|s| &s.id == id));
        wanted
            .or_else(|| known.default_server.clone())
            .or_else(|| known.servers.first().map(|s| s.id.clone()))
    });
    add_option(&doc, &list, NEW, &msg("options_add_server"));
    list.set_value(chosen.as_ref().map_or(NEW, ServerId::as_str));
    fill_form();
}

fn add_option(doc: &Document, list: &HtmlSelectElement, value: &str, text: &str) {
    if let Ok(option) = doc.create_element("option") {
        let _ = option.set_attribute("value", value);
        option.set_text_content(Some(text));
        let _ = list.append_child(&option);
    }
}

/// The server chosen in `#server-select`: `None` for "Add a server…".
fn selected() -> Option<ServerSummary> {
    let value = select_element("server-select")?.value();
    let id = ServerId::parse(&value)?;
    KNOWN.with(|known| known.borrow().servers.iter().find(|s| s.id == id).cloned())
}

fn is_default(id: &ServerId) -> bool {
    KNOWN.with(|known| known.borrow().default_server.as_ref() == Some(id))
}

/// Fills the form from the chosen server's summary (never a secret: the worker sends none),
/// or empties it for a new server.
fn fill_form() {
    let server = selected();
    let count = KNOWN.with(|known| known.borrow().servers.len());
    let set_value = |id: &str, value: &str| {
        if let Some(input) = input(id) {
            input.set_value(value);
            let _ = input.remove_attribute("aria-invalid");
        }
    };
    let set_checked = |id: &str, checked: bool| {
        if let Some(input) = input(id) {
            input.set_checked(checked);
        }
    };
    set_value("server-name", server.as_ref().map_or("", |s| &s.name));
    set_value(
        "server-url",
        server.as_ref().map_or("", |s| s.server_url.as_str()),
    );
    set_value("secret-key", "");
    if let Some(secret) = input("secret-key") {
        let saved = server.as_ref().is_some_and(|s| s.has_secret);
        let placeholder = match saved {
            true => msg("options_secret_kept"),
            false => String::new(),
        };
        secret.set_placeholder(&placeholder);
    }
    super::unlock::fill_options(server.as_ref());
    set_checked(
        "allow-insecure-http",
        server.as_ref().is_some_and(|s| s.allow_insecure_http),
    );
    let default = server.as_ref().is_some_and(|s| is_default(&s.id));
    if let Some(make_default) = input("make-default") {
        make_default.set_checked(default);
        make_default.set_disabled(default);
    }
    set_hidden("remove-server", server.is_none() || count <= 1);
    let sessions = match server.as_ref().map(|s| s.sessions) {
        None => String::new(),
        Some(0) => msg("options_server_sessions_none"),
        Some(1) => msg("options_server_sessions_one"),
        Some(n) => tr(&Text::new("options_server_sessions_other").arg(number(f64::from(n)))),
    };
    if let Some(hint) = element("server-sessions") {
        hint.set_text_content(Some(&sessions));
    }
    show_insecure_warning();
}

/// The server form as typed; an empty secret means "keep the saved one".
struct Form {
    name: String,
    server_url: ServerUrl,
    secret_key: Option<SecretKey>,
    remember: Remember,
    allow_insecure_http: bool,
    make_default: bool,
}

/// Reads the form with the core's own checks; an error names its field, which is marked.
fn read_form() -> Result<Form, SettingsError> {
    for id in ["server-name", "server-url", "secret-key"] {
        if let Some(input) = input(id) {
            let _ = input.remove_attribute("aria-invalid");
        }
    }
    let value = |id: &str| input(id).map(|i| i.value()).unwrap_or_default();
    let checked = |id: &str| input(id).is_some_and(|i| i.checked());
    let secret = value("secret-key");
    let form = (|| {
        let name = parse_server_name(&value("server-name"))?;
        let server_url = ServerUrl::parse(&value("server-url"))?;
        let secret_key = match secret.is_empty() {
            true => None,
            false => Some(SecretKey::parse(&secret)?),
        };
        let allow_insecure_http = checked("allow-insecure-http");
        check_transport(&server_url, allow_insecure_http)?;
        Ok(Form {
            name,
            server_url,
            secret_key,
            remember: super::unlock::remember_from_form(),
            allow_insecure_http,
            make_default: checked("make-default"),
        })
    })();
    if let Err(err) = &form {
        mark_invalid(match err {
            SettingsError::BadName => "server-name",
            SettingsError::BadServerUrl(_) | SettingsError::InsecureHttp => "server-url",
            SettingsError::BadSecret(_) => "secret-key",
        });
    }
    form
}

fn mark_invalid(id: &str) {
    if let Some(input) = input(id) {
        let _ = input.set_attribute("aria-invalid", "true");
        let _ = input.focus();
    }
}

/// The warning stays on screen while the URL is plain HTTP to another computer.
fn show_insecure_warning() {
    let url = input("server-url").map(|i| i.value()).unwrap_or_default();
    let insecure = ServerUrl::parse(&url).is_ok_and(|url| is_insecure(&url));
    set_hidden("insecure-warning", !insecure);
}

async fn save() {
    let form = match read_form() {
        Ok(form) => form,
        Err(err) => return report(false, &tr(&err.text())),
    };
    let server = selected();
    // The worker refuses these too; saying so here keeps the typed fields as they are.
    if form.secret_key.is_none() {
        let missing = match &server {
            None => Some("options_no_secret"),
            Some(s) if s.server_url != form.server_url => Some("options_url_changed"),
            Some(s) if !s.has_secret => Some("options_no_secret"),
            Some(_) => None,
        };
        if let Some(why) = missing {
            mark_invalid("secret-key");
            return report(false, &msg(why));
        }
    }
    report_pending(&msg("options_saving"));
    let request = OptionsRequest::SaveServer {
        id: server.map(|s| s.id),
        name: form.name,
        server_url: form.server_url,
        secret_key: form.secret_key,
        remember: form.remember,
        allow_insecure_http: form.allow_insecure_http,
        make_default: form.make_default,
    };
    match ask(&request).await {
        Ok(OptionsReply::Saved { id }) => match load(id, false).await {
            Ok(()) => report(true, &msg("options_saved")),
            Err(why) => report(
                false,
                &tr(&Text::new("options_saved_list_unreadable").arg(why)),
            ),
        },
        Ok(OptionsReply::Error { message }) => report(false, &tr(&message)),
        Ok(other) => report(false, &unexpected(&other)),
        Err(why) => report(false, &why),
    }
}

async fn remove() {
    let Some(server) = selected() else {
        return;
    };
    report_pending(&msg("options_removing"));
    let request = OptionsRequest::RemoveServer {
        id: server.id.clone(),
    };
    match ask(&request).await {
        Ok(OptionsReply::Saved { .. }) => match load(None, false).await {
            Ok(()) => {
                report(true, &tr(&Text::new("options_removed").arg(&server.name)));
                // The button pressed is gone or hidden: keep the keyboard in the form.
                if let Some(list) = select_element("server-select") {
                    let _ = list.focus();
                }
            }
            Err(why) => report(
                false,
                &tr(&Text::new("options_removed_list_unreadable").arg(why)),
            ),
        },
        Ok(OptionsReply::Error { message }) => report(false, &tr(&message)),
        Ok(other) => report(false, &unexpected(&other)),
        Err(why) => report(false, &why),
    }
}

async fn test_connection() {
    let form = match read_form() {
        Ok(form) => form,
        Err(err) => return report(false, &tr(&err.text())),
    };
    report_pending(&msg("options_testing"));
    let request = OptionsRequest::TestConnection {
        id: selected().map(|s| s.id),
        server_url: form.server_url,
        secret_key: form.secret_key,
        allow_insecure_http: form.allow_insecure_http,
    };
    match ask(&request).await {
        Ok(OptionsReply::Connection { ok, message }) => report(ok, &tr(&message)),
        Ok(OptionsReply::Error { message }) => report(false, &tr(&message)),
        Ok(other) => report(false, &unexpected(&other)),
        Err(why) => report(false, &why),
    }
}

async fn save_preferences() {
    let value = select_element("closed-tab").map(|s| s.value());
    let Some(closed_tab) = value.as_deref().and_then(from_wire_name::<ClosedTab>) else {
        return show_result(
            "preferences-status",
            false,
            &msg("options_choose_closed_tab"),
        );
    };
    let days = input("stale-after-days")
        .map(|i| i.value())
        .unwrap_or_default();
    let stale_after_days = match StaleAfterDays::parse(&days) {
        Ok(days) => days,
        Err(why) => {
            if let Some(input) = input("stale-after-days") {
                let _ = input.set_attribute("aria-invalid", "true");
                let _ = input.focus();
            }
            return show_result("preferences-status", false, &tr(&why.text()));
        }
    };
    if let Some(input) = input("stale-after-days") {
        let _ = input.remove_attribute("aria-invalid");
    }
    let request = OptionsRequest::SavePreferences {
        closed_tab,
        notify_drops: input("notify-drops").is_some_and(|i| i.checked()),
        stale_after_days,
        auto_forget_stale: input("auto-forget-stale").is_some_and(|i| i.checked()),
    };
    show_pending("preferences-status", &msg("options_saving"));
    let (ok, message) = match ask(&request).await {
        Ok(OptionsReply::Saved { .. }) => (true, msg("options_saved")),
        Ok(OptionsReply::Error { message }) => (false, tr(&message)),
        Ok(other) => (false, unexpected(&other)),
        Err(why) => (false, why),
    };
    show_result("preferences-status", ok, &message);
}

pub(super) async fn ask(request: &OptionsRequest) -> Result<OptionsReply, String> {
    let reply = chrome()
        .runtime()
        .send_message(None, &to_js(&encode(request)), None)
        .await
        .map_err(|e| tr(&Text::new("options_worker_silent_because").arg(js_error_text(&e))))?;
    if reply.is_undefined() || reply.is_null() {
        return Err(msg("options_worker_silent"));
    }
    decode_text::<OptionsReply>(&json_text(&reply)).map_err(|e| e.to_string())
}

/// A reply that does not answer the request, named by its kind: not by its `Debug` form,
/// whose code (float formatting included) would be all this page used it for.
pub(super) fn unexpected(reply: &OptionsReply) -> String {
    let kind = match reply {
        OptionsReply::Settings { .. } => "settings",
        OptionsReply::Saved { .. } => "saved",
        OptionsReply::Connection { .. } => "connection",
        OptionsReply::Error { .. } => "error",
    };
    tr(&Text::new("options_unexpected_reply").arg(kind))
}

/// The outcome of a server action in `#options-status`, `data-result` `ok` or `error`.
fn report(ok: bool, message: &str) {
    show_result("options-status", ok, message);
}

fn report_pending(message: &str) {
    show_pending("options-status", message);
}

fn set_select_value(id: &str, value: String) {
    if let Some(select) = select_element(id) {
        select.set_value(&value);
    }
}
