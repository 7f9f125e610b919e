//! The Diagnostics page: for each server, the requests by route, the failures by kind and the
//! latency; the last events; the whole as text to copy into a bug report. It renders only the
//! (already redacted) [`DiagnosticsView`] the worker pushes, live, and asks for a fresh one on
//! `#refresh`.

use super::browser::{
    append, console_warn, document, element, js_error_text, keep_worker_connected, make, on_click,
    post_to_worker, set_hidden, show_error, show_result, show_unreadable_update, text_el, to_js,
};
use crate::core::diagnostics::{iso_utc, report_text, DiagnosticsView, ServerReport};
use crate::core::messages::{encode, DiagnosticsPush, DiagnosticsRequest, DIAGNOSTICS_PORT};
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
    );
}

/// Posts `request` to the worker; says so on the page when there is no worker to take it.
fn send(request: DiagnosticsRequest) {
    if !post_to_worker(&to_js(&encode(&request))) {
        show_error("The extension is restarting and did not get that: try again in a moment.");
    }
}

// ---- rendering --------------------------------------------------------------------------

fn render(view: &DiagnosticsView) {
    let text = report_text(view);
    with_page(|p| p.text = text.clone());
    if let Some(summary) = element("summary") {
        let since = view.since.map_or("nothing yet".into(), iso_utc);
        summary.set_text_content(Some(&format!(
            "wpp-tabs {}. Recorded since {since} (UTC); worker instances in this browser \
             session: {}. Latency: {}.",
            view.version, view.instances, view.window
        )));
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
    let heading = text_el("h2", "", &server.name);
    append(&heading, &text_el("span", "server-url", &server.url));
    append(&section, &heading);
    let push = text_el("p", "push-state", &format!("Socket: {}", server.push));
    let _ = push.set_attribute("data-field", "push");
    append(&section, &push);
    if server.routes.is_empty() {
        append(&section, &text_el("p", "hint", "No request yet."));
    } else {
        let table = make("table", "diag-table routes");
        let head = make("tr", "");
        for title in ["Route", "Requests", "Failed"] {
            let th = text_el("th", "", title);
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
                let td = text_el("td", "number", &n.to_string());
                let _ = td.set_attribute("data-field", field);
                append(&tr, &td);
            }
            append(&body, &tr);
        }
        append(&table, &body);
        append(&section, &table);
    }
    let failures = make("p", "failures");
    failures.set_text_content(Some("Failures by kind: "));
    if server.failures.is_empty() {
        append(&failures, &text_el("span", "", "none"));
    }
    for (i, kind) in server.failures.iter().enumerate() {
        if i > 0 {
            append(&failures, &text_el("span", "", ", "));
        }
        let item = text_el("span", "", &format!("{} {}", kind.kind, kind.count));
        let _ = item.set_attribute("data-kind", &kind.kind);
        let _ = item.set_attribute("data-count", &kind.count.to_string());
        append(&failures, &item);
    }
    append(&section, &failures);
    let latency = match &server.latency {
        Some(l) => format!(
            "Latency: median {:.0} ms, p95 {:.0} ms ({} requests in the window)",
            l.median_ms, l.p95_ms, l.requests
        ),
        None => "Latency: no request in the window".into(),
    };
    let latency = text_el("p", "latency", &latency);
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
            text += &format!(" (×{})", event.count);
        }
        for cell in [
            iso_utc(event.at),
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
        Ok(_) => show_result(
            "copy-status",
            true,
            "Copied: paste it into your bug report.",
        ),
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
                "The clipboard is not available here: the text below is selected, press \
                 Ctrl+C (⌘C on a Mac) to copy it.",
            );
        }
    }
}
