//! The Diagnostics page: for each server, the requests by route, the failures by kind and the
//! latency; the last events; the whole as text to copy into a bug report. It renders only the
//! (already redacted) [`DiagnosticsView`] the worker pushes, live, and asks for a fresh one on
//! `#refresh`.

use super::browser::{
    append, console_warn, document, element, js_error_text, keep_worker_connected, make, object,
    on_click, post_to_worker, set_hidden, show_error, show_result, show_unreadable_update, text_el,
    to_js,
};
use super::i18n::{msg, number, tr};
use crate::core::diagnostics::{report_text, DiagnosticsView, ServerReport};
use crate::core::messages::{encode, DiagnosticsPush, DiagnosticsRequest, DIAGNOSTICS_PORT};
use crate::core::text::Text;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{Element, HtmlElement};

/// The `<textarea>` calls this page needs beyond the `web-sys` features the crate enables.
#[wasm_bindgen]
extern "C" {
    type TextArea;
    #[wasm_bindgen(method, setter)]
    fn set_value(this: &TextArea, value: &str);
    #[wasm_bindgen(method)]
    fn select(this: &TextArea);
}

thread_local! {
    static PAGE: RefCell<Page> = RefCell::new(Page::default());
}

#[derive(Default)]
struct Page {
    /// The last view as text: what "Copy diagnostics" copies.
    text: String,
}

fn with_page<R>(f: impl FnOnce(&mut Page) -> R) -> R {
    PAGE.with(|p| f(&mut p.borrow_mut()))
}

#[cfg_attr(feature = "entry-diagnostics", wasm_bindgen)]
pub fn diagnostics_main() {
    on_click("refresh", || send(DiagnosticsRequest::Refresh));
    on_click("copy-diagnostics", || spawn_local(copy()));
    connect();
}

fn connect() {
    keep_worker_connected(
        DIAGNOSTICS_PORT,
        |push| match push {
            Ok(DiagnosticsPush::Diagnostics { view }) => render(&view),
            Ok(DiagnosticsPush::Notice { ok, message }) => {
                show_result("copy-status", ok, &super::i18n::tr(&message))
            }
            Ok(DiagnosticsPush::Other) => console_warn("wpp-tabs: another page's view sent here"),
            Err(err) => show_unreadable_update(&err),
        },
        to_js(&encode(&DiagnosticsRequest::Subscribe)),
        None,
    );
}

/// Posts `request` to the worker; says so on the page when there is no worker to take it.
fn send(request: DiagnosticsRequest) {
    if !post_to_worker(&to_js(&encode(&request))) {
        show_error(&msg("common_worker_restarting"));
    }
}

// ---- rendering --------------------------------------------------------------------------

fn render(view: &DiagnosticsView) {
    let text = report_text(view);
    with_page(|p| p.text = text.clone());
    if let Some(summary) = element("summary") {
        let summary_text = match view.since {
            Some(since) => Text::new("diagnostics_summary")
                .arg(&view.version)
                .arg(utc_time(since)),
            None => Text::new("diagnostics_summary_empty").arg(&view.version),
        };
        let summary_text = summary_text
            .arg(number(f64::from(view.instances)))
            .arg(tr(&view.window.text()));
        summary.set_text_content(Some(&tr(&summary_text)));
    }
    if let Some(container) = element("servers") {
        container.set_text_content(None);
        for server in &view.servers {
            append(&container, &server_section(server));
        }
    }
    render_events(view);
    // The text is not replaced while the user is in it (selecting, say).
    if let Some(area) = element("diagnostics-text") {
        if document().active_element().as_ref() != Some(&area) {
            area.unchecked_ref::<TextArea>().set_value(&text);
        }
    }
    set_hidden("loading", true);
    set_hidden("error", true);
    if let Some(body) = document().body() {
        let _ = body.set_attribute("aria-busy", "false");
        let _ = body.set_attribute("data-source", "worker");
    }
}

fn server_section(server: &ServerReport) -> Element {
    let section = make("section", "server-diag");
    let key = server
        .id
        .as_ref()
        .map_or("none".into(), ToString::to_string);
    let _ = section.set_attribute("data-server-id", &key);
    let _ = section.set_attribute("data-url", &server.url);
    let name = match &server.name {
        Some(name) => name.clone(),
        None => msg("diagnostics_server_not_in_settings"),
    };
    let heading = text_el("h2", "", &name);
    append(&heading, &text_el("span", "server-url", &server.url));
    append(&section, &heading);
    let socket = Text::new("diagnostics_socket").arg(tr(&server.push.text()));
    let push = text_el("p", "push-state", &tr(&socket));
    let _ = push.set_attribute("data-field", "push");
    append(&section, &push);
    if server.routes.is_empty() {
        append(
            &section,
            &text_el("p", "hint", &msg("diagnostics_no_request")),
        );
    } else {
        let table = make("table", "diag-table routes");
        let head = make("tr", "");
        for title in [
            "diagnostics_col_route",
            "diagnostics_col_requests",
            "diagnostics_col_failed",
        ] {
            let th = text_el("th", "", &msg(title));
            let _ = th.set_attribute("scope", "col");
            append(&head, &th);
        }
        let thead = make("thead", "");
        append(&thead, &head);
        append(&table, &thead);
        let body = make("tbody", "");
        for route in &server.routes {
            let tr = make("tr", "");
            let _ = tr.set_attribute("data-route", route.route.as_str());
            append(&tr, &text_el("td", "", route.route.as_str()));
            for (field, n) in [("requests", route.requests), ("failures", route.failures)] {
                let td = text_el("td", "number", &number(f64::from(n)));
                let _ = td.set_attribute("data-field", field);
                append(&tr, &td);
            }
            append(&body, &tr);
        }
        append(&table, &body);
        append(&section, &table);
    }
    let failures = make("p", "failures");
    // The label's own space, which a translation cannot drop.
    let label = format!("{} ", msg("diagnostics_failures_by_kind"));
    failures.set_text_content(Some(&label));
    if server.failures.is_empty() {
        append(
            &failures,
            &text_el("span", "", &msg("diagnostics_failures_none")),
        );
    }
    for (i, kind) in server.failures.iter().enumerate() {
        if i > 0 {
            append(&failures, &text_el("span", "", ", "));
        }
        let count = number(f64::from(kind.count));
        let item = text_el("span", "", &format!("{} {}", kind.kind, count));
        let _ = item.set_attribute("data-kind", &kind.kind);
        let _ = item.set_attribute("data-count", &kind.count.to_string());
        append(&failures, &item);
    }
    append(&section, &failures);
    let latency = match &server.latency {
        Some(l) => Text::new("diagnostics_latency")
            .arg(number(l.median_ms.round()))
            .arg(number(l.p95_ms.round()))
            .arg(number(f64::from(l.requests))),
        None => Text::new("diagnostics_latency_none"),
    };
    let latency = text_el("p", "latency", &tr(&latency));
    let _ = latency.set_attribute("data-field", "latency");
    append(&section, &latency);
    section
}

/// The ring, newest first.
fn render_events(view: &DiagnosticsView) {
    let Some(body) = document().query_selector("#events tbody").ok().flatten() else {
        return;
    };
    body.set_text_content(None);
    for event in view.events.iter().rev() {
        let tr = make("tr", "");
        let _ = tr.set_attribute("data-kind", event.kind.as_str());
        let mut text = event.text.clone();
        if event.count > 1 {
            text += &format!(" (×{})", number(f64::from(event.count)));
        }
        for cell in [
            utc_time(event.at),
            event.kind.as_str().to_owned(),
            event.server.clone().unwrap_or_default(),
            event.session.clone().unwrap_or_default(),
            text,
        ] {
            append(&tr, &text_el("td", "", &cell));
        }
        append(&body, &tr);
    }
    set_hidden("no-events", !view.events.is_empty());
}

/// A time in the browser's locale, in UTC to the millisecond: as the events' column and the
/// copied report (ISO, UTC) say it.
fn utc_time(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "-".to_owned();
    }
    let two = || JsValue::from_str("2-digit");
    let options = object(&[
        ("timeZone", JsValue::from_str("UTC")),
        ("year", JsValue::from_str("numeric")),
        ("month", two()),
        ("day", two()),
        ("hour", two()),
        ("minute", two()),
        ("second", two()),
        ("fractionalSecondDigits", JsValue::from_f64(3.0)),
    ]);
    let date = js_sys::Date::new(&JsValue::from_f64(ms));
    date.to_locale_string("default", &options).into()
}

// ---- copy -------------------------------------------------------------------------------

/// Copies the whole view as text; where the clipboard refuses, selects the text for the user
/// to copy.
async fn copy() {
    let text = with_page(|p| p.text.clone());
    let clipboard = web_sys::window().map(|w| w.navigator().clipboard());
    let copied = match clipboard {
        Some(clipboard) => JsFuture::from(clipboard.write_text(&text))
            .await
            .map_err(|e| js_error_text(&e)),
        None => Err("no clipboard".to_owned()),
    };
    match copied {
        Ok(_) => show_result("copy-status", true, &msg("diagnostics_copied")),
        Err(why) => {
            console_warn(&format!("wpp-tabs: copy failed: {why}"));
            if let Some(area) = element("diagnostics-text") {
                let area_el: &HtmlElement = area.unchecked_ref();
                let area = area.unchecked_ref::<TextArea>();
                area.set_value(&text);
                let _ = area_el.focus();
                area.select();
            }
            show_result(
                "copy-status",
                false,
                &msg("diagnostics_clipboard_unavailable"),
            );
        }
    }
}
