//! The Sessions page: every session this browser knows and every session its servers list,
//! one group per server. It renders only the [`SessionsView`] the worker pushes and sends what
//! the user asks. Rows are updated in place, keyed by session ID, so that focus, a name being
//! typed and the selection survive a push. Selection, filter and search are the page's own:
//! a bulk action names only the rows that are selected and shown.

use super::browser::{
    append, console_warn, document, element, from_wire_name, hide, input, js_error_text,
    keep_worker_connected, make, object, on_click, on_event, post_to_worker, runtime, set_disabled,
    set_hidden, show_result, show_unreadable_update, text_el, to_js, wire_name,
};
use super::i18n::{date_time, msg, tr};
use crate::core::index::{describe_monitoring, Label};
use crate::core::messages::{
    encode, ServerGroup, SessionAction, SessionRow, SessionsPush, SessionsRequest, SessionsView,
    SESSIONS_PORT,
};
use crate::core::status::ServerStatus;
use crate::core::text::Text;
use gloo_timers::callback::Timeout;
use js_sys::{Array, Promise};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{Element, HtmlElement, HtmlInputElement};

/// The largest file offered for import, and the most sessions one `Act` names: the worker's
/// own bounds.
use crate::core::messages::{MAX_BULK as MAX_PER_ACT, MAX_IMPORT_BYTES};
/// How long the export's object URL lives after its download started.
const REVOKE_MS: u32 = 10_000;

/// The table's column headers (their messages), and whether each is a narrow one.
const COLUMNS: [(&str, bool); 8] = [
    ("sessions_column_select", true),
    ("sessions_column_colour", true),
    ("sessions_column_name", false),
    ("sessions_column_account", false),
    ("sessions_column_status", false),
    ("sessions_column_tab", false),
    ("sessions_column_last_seen", false),
    ("sessions_column_actions", false),
];

/// Each row's action buttons, in the order they show, with their text's message (the bulk
/// buttons and the confirmations say the same words).
const ACTIONS: [(SessionAction, &str); 7] = [
    (SessionAction::FocusTab, "sessions_action_focus_tab"),
    (SessionAction::Attach, "sessions_action_attach"),
    (SessionAction::Detach, "sessions_action_detach"),
    (SessionAction::Restart, "sessions_action_restart"),
    (SessionAction::Close, "sessions_action_close"),
    (SessionAction::Logout, "sessions_action_logout"),
    (SessionAction::Forget, "sessions_action_forget"),
];

/// The few DOM calls this page needs beyond the `web-sys` features the crate enables.
#[wasm_bindgen]
extern "C" {
    type Styled;
    #[wasm_bindgen(method, getter)]
    fn style(this: &Styled) -> Style;
    type Style;
    #[wasm_bindgen(method, js_name = setProperty)]
    fn set_property(this: &Style, name: &str, value: &str);
    #[wasm_bindgen(method, js_name = removeProperty)]
    fn remove_property(this: &Style, name: &str) -> String;

    /// `<select>`'s value.
    type Select;
    #[wasm_bindgen(method, getter)]
    fn value(this: &Select) -> String;

    /// `<input type=file>` and the file picked.
    type FileInput;
    #[wasm_bindgen(method, getter)]
    fn files(this: &FileInput) -> Option<FileList>;
    type FileList;
    #[wasm_bindgen(method)]
    fn item(this: &FileList, index: u32) -> Option<PickedFile>;
    type PickedFile;
    #[wasm_bindgen(method, getter)]
    fn size(this: &PickedFile) -> f64;
    #[wasm_bindgen(method)]
    fn text(this: &PickedFile) -> Promise;

    type Blob;
    #[wasm_bindgen(constructor, catch)]
    fn new(parts: &Array, options: &js_sys::Object) -> Result<Blob, JsValue>;
    #[wasm_bindgen(js_namespace = URL, js_name = createObjectURL, catch)]
    fn create_object_url(blob: &Blob) -> Result<String, JsValue>;
    #[wasm_bindgen(js_namespace = URL, js_name = revokeObjectURL)]
    fn revoke_object_url(url: &str);
}

thread_local! {
    static PAGE: RefCell<Page> = RefCell::new(Page::default());
}

#[derive(Default)]
struct Page {
    /// The last list the worker pushed.
    view: Option<SessionsView>,
    /// While the confirmation is open: what "yes" sends, and where focus goes back after.
    confirming: Option<(Vec<SessionsRequest>, Option<HtmlElement>)>,
}

fn with_page<R>(f: impl FnOnce(&mut Page) -> R) -> R {
    PAGE.with(|p| f(&mut p.borrow_mut()))
}

#[cfg_attr(feature = "entry-sessions", wasm_bindgen)]
pub fn sessions_main() {
    wire();
    connect();
}

fn connect() {
    keep_worker_connected(
        SESSIONS_PORT,
        |push| match push {
            Ok(SessionsPush::Sessions { view }) => {
                with_page(|p| p.view = Some(view.clone()));
                render(&view);
            }
            Ok(SessionsPush::Notice { ok, message }) => show_notice(ok, &tr(&message)),
            Ok(SessionsPush::Exported { text }) => save_export(&text),
            Ok(SessionsPush::Other) => console_warn("wpp-tabs: another page's view sent here"),
            Err(err) => show_unreadable_update(&err),
        },
        to_js(&encode(&SessionsRequest::Subscribe)),
        None,
    );
}

/// Posts `request` to the worker; says so on the page when there is no worker to take it.
fn send(request: &SessionsRequest) {
    if !post_to_worker(&to_js(&encode(request))) {
        show_notice(false, &msg("common_worker_restarting"));
    }
}

fn wire() {
    on_click("open-all", || send(&SessionsRequest::OpenAll));
    on_click("forget-stale", forget_stale);
    on_click("export", || send(&SessionsRequest::Export));
    on_click("open-options", || {
        spawn_local(async {
            if let Err(err) = runtime().open_options_page().await {
                let why = Text::new("sessions_options_not_opened").arg(js_error_text(&err));
                show_notice(false, &tr(&why));
            }
        })
    });
    on_event("import-file", "change", |_| spawn_local(import_file()));
    on_event("filter-status", "change", |_| apply_filter());
    on_event("search", "input", |_| apply_filter());
    on_event("select-all", "change", |_| select_all());
    on_event("bulk", "click", |event| {
        if let Some(name) = target_closest(&event, "[data-bulk]")
            .and_then(|button| button.get_attribute("data-bulk"))
        {
            bulk(&name);
        }
    });
    on_event("groups", "click", on_row_click);
    on_event("groups", "change", on_row_change);
    on_click("confirm-yes", || {
        if let Some(requests) = close_confirmation() {
            requests.iter().for_each(send);
        }
    });
    on_click("confirm-no", || {
        close_confirmation();
    });
    let on_key = Closure::<dyn Fn(web_sys::KeyboardEvent)>::new(|event: web_sys::KeyboardEvent| {
        if event.key() == "Escape" && with_page(|p| p.confirming.is_some()) {
            event.prevent_default();
            close_confirmation();
        }
    });
    let _ = document().add_event_listener_with_callback("keydown", on_key.as_ref().unchecked_ref());
    on_key.forget();
}

// ---- rendering --------------------------------------------------------------------------

/// Shows `view`: one section per server, one row per session, in the view's order.
fn render(view: &SessionsView) {
    let Some(container) = element("groups") else {
        return;
    };
    let focused = document().active_element();
    let mut existing = keyed(&container, "data-server-id");
    let sections: Vec<Element> = view
        .groups
        .iter()
        .map(|group| {
            let key = group_key(group);
            let section = existing.remove(&key).unwrap_or_else(|| new_group(&key));
            fill_group(&section, group);
            section
        })
        .collect();
    arrange(&container, &sections);
    let rows = || view.groups.iter().flat_map(|g| &g.sessions);
    set_hidden("loading", true);
    set_hidden("empty", rows().next().is_some());
    set_hidden("error", true);
    if let Some(button) = element("open-all") {
        set_disabled(&button, !rows().any(|r| r.known && r.tab.is_none()));
    }
    if let Some(button) = element("forget-stale") {
        set_disabled(&button, !rows().any(|r| r.known && r.stale));
    }
    if let Some(body) = document().body() {
        let _ = body.set_attribute("aria-busy", "false");
        let _ = body.set_attribute("data-source", "worker");
    }
    apply_filter();
    keep_focus(focused);
}

/// Keeps the keyboard where it was in the list: an element that moved (a renamed row sorts
/// elsewhere) gets the focus back; one the push hid or disabled (a busy row) hands it to the
/// first control still usable in its row.
fn keep_focus(was: Option<Element>) {
    let Some(was) = was.filter(|e| e.closest("#groups").ok().flatten().is_some()) else {
        return;
    };
    let usable = |e: &Element| !e.has_attribute("hidden") && !e.has_attribute("disabled");
    let target = match usable(&was) {
        true => Some(was),
        false => was.closest("tr").ok().flatten().and_then(|tr| {
            part(&tr, "[data-action]:not([hidden]):not([disabled])")
                .or_else(|| part(&tr, "[data-select]"))
        }),
    };
    if let Some(target) = target.and_then(|t| t.dyn_into::<HtmlElement>().ok()) {
        if document().active_element().as_ref() != Some(target.as_ref()) {
            let _ = target.focus();
        }
    }
}

fn group_key(group: &ServerGroup) -> String {
    group
        .id
        .as_ref()
        .map_or_else(|| "none".to_owned(), |id| id.to_string())
}

fn new_group(key: &str) -> Element {
    let section = make("section", "server-group");
    let _ = section.set_attribute("data-server-id", key);
    let heading_id = format!("group-{key}");
    let _ = section.set_attribute("aria-labelledby", &heading_id);
    let heading = make("h2", "");
    heading.set_id(&heading_id);
    let _ = heading.append_with_node_2(&make("span", "server-name"), &make("span", "server-url"));
    let table = make("table", "session-table");
    let head = make("thead", "");
    let head_row = make("tr", "");
    for (title, narrow) in COLUMNS {
        let th = text_el("th", "", &msg(title));
        let _ = th.set_attribute("scope", "col");
        if narrow {
            th.set_class_name("narrow");
        }
        append(&head_row, &th);
    }
    append(&head, &head_row);
    append(&table, &head);
    append(&table, &make("tbody", ""));
    for child in [
        heading,
        make("p", "error group-error"),
        make("p", "hint group-empty"),
        table,
    ] {
        append(&section, &child);
    }
    section
}

fn fill_group(section: &Element, group: &ServerGroup) {
    let name = match group.id {
        Some(_) => group.name.clone(),
        None => msg("sessions_removed_servers"),
    };
    set_text(section, ".server-name", &name);
    let url = group.url.as_deref().unwrap_or_default();
    set_text(section, ".server-url", url);
    if let Some(error) = part(section, ".group-error") {
        let message = group.error.as_ref().map(tr);
        error.set_text_content(message.as_deref());
        hide(&error, group.error.is_none());
    }
    let Some(body) = part(section, "tbody") else {
        return;
    };
    let mut existing = keyed(&body, "data-session-id");
    let rows: Vec<Element> = group
        .sessions
        .iter()
        .map(|row| {
            let tr = existing
                .remove(row.id.as_str())
                .unwrap_or_else(|| new_row(row));
            fill_row(&tr, row);
            tr
        })
        .collect();
    arrange(&body, &rows);
}

/// A row's fixed structure; [`fill_row`] sets everything that comes from the view.
fn new_row(row: &SessionRow) -> Element {
    let el = make("tr", "");
    let _ = el.set_attribute("data-session-id", row.id.as_str());
    let select = make("input", "");
    let _ = select.set_attribute("type", "checkbox");
    let _ = select.set_attribute("data-select", "");
    // The colour's name is written beside its swatch: colour is never the only signal.
    let swatch = make("span", "swatch");
    let _ = swatch.set_attribute("aria-hidden", "true");
    let colour_name = make("span", "colour-name");
    let label = make("input", "");
    let _ = label.set_attribute("type", "text");
    let _ = label.set_attribute("data-field", "label");
    let _ = label.set_attribute("maxlength", "40");
    let _ = label.set_attribute("autocomplete", "off");
    let name = tr(&Text::new("sessions_name_of_session").arg(&row.id));
    let _ = label.set_attribute("aria-label", &name);
    let name = cell(
        "col-name",
        &[&label, &text_el("code", "session-id", row.id.as_str())],
    );
    // Stale is said in words, not by colour alone.
    let stale = text_el("span", "stale-marker", &msg("sessions_stale_marker"));
    let status = cell(
        "col-status",
        &[
            &stale,
            &make("span", "status-text"),
            &make("span", "error row-error"),
            &make("span", "row-stats"),
        ],
    );
    let actions = make("div", "actions");
    for (action, text) in ACTIONS {
        let button = text_el("button", "", &msg(text));
        let _ = button.set_attribute("type", "button");
        let _ = button.set_attribute("data-action", &wire_name(action));
        if matches!(action, SessionAction::Logout) {
            button.set_class_name("danger");
        }
        append(&actions, &button);
    }
    for td in [
        cell("col-select", &[&select]),
        cell("col-colour", &[&swatch, &colour_name]),
        name,
        cell("col-account", &[]),
        status,
        cell("col-tab", &[]),
        cell("col-seen", &[]),
        cell("col-actions", &[&actions]),
    ] {
        append(&el, &td);
    }
    el
}

fn fill_row(el: &Element, row: &SessionRow) {
    let status = row.status.map_or("NONE", ServerStatus::as_str);
    let _ = el.set_attribute("data-status", status);
    let _ = el.set_attribute("data-known", if row.known { "true" } else { "false" });
    let _ = match row.tab {
        Some(tab) => el.set_attribute("data-tab", &tab.to_string()),
        None => el.remove_attribute("data-tab"),
    };
    let _ = el.set_attribute("aria-busy", if row.busy { "true" } else { "false" });
    if let Some(select) = part(el, "[data-select]") {
        let name = tr(&Text::new("sessions_select_row").arg(&row.label));
        let _ = select.set_attribute("aria-label", &name);
    }
    if let Some(swatch) = part(el, ".swatch") {
        let style = swatch.unchecked_ref::<Styled>().style();
        let name = match row.colour {
            Some(colour) => {
                style.set_property("--session-colour", colour.css());
                let _ = swatch.set_attribute("data-colour", colour.name());
                msg(colour.key())
            }
            None => {
                style.remove_property("--session-colour");
                let _ = swatch.remove_attribute("data-colour");
                String::new()
            }
        };
        if let Some(label) = part(el, ".colour-name") {
            label.set_text_content(Some(&name));
        }
    }
    if let Some(input) =
        part(el, "[data-field=label]").and_then(|e| e.dyn_into::<HtmlInputElement>().ok())
    {
        // Never under the user's fingers: a name being typed is kept until committed.
        if document().active_element().as_ref() != Some(input.as_ref()) {
            input.set_value(&row.label);
        }
    }
    let account = row.account.as_ref().map(|a| a.display());
    set_text(el, ".col-account", account.as_deref().unwrap_or("—"));
    set_text(el, ".status-text", &tr(&row.status_text));
    if let Some(error) = part(el, ".row-error") {
        let message = row.error.as_ref().map(tr);
        error.set_text_content(message.as_deref());
        hide(&error, row.error.is_none());
    }
    fill_monitoring(el, row);
    let tab = match row.tab {
        Some(tab) => tr(&Text::new("sessions_tab_number").arg(tab)),
        None => msg("sessions_not_in_tab"),
    };
    set_text(el, ".col-tab", &tab);
    let seen = row.last_seen_connected.map(date_time);
    let seen = seen.unwrap_or_else(|| msg("sessions_never_seen"));
    set_text(el, ".col-seen", &seen);
    for (action, text) in ACTIONS {
        let Some(button) = part(el, &format!("[data-action={}]", wire_name(action))) else {
            continue;
        };
        hide(&button, !applies(action, row));
        set_disabled(&button, row.busy);
        let name = Text::new("sessions_action_on")
            .arg(msg(text))
            .arg(&row.label);
        let _ = button.set_attribute("aria-label", &tr(&name));
    }
}

/// The row's staleness (`data-stale`, the "Stale" marker) and its monitoring line.
fn fill_monitoring(el: &Element, row: &SessionRow) {
    let _ = el.set_attribute("data-stale", if row.stale { "true" } else { "false" });
    if let Some(marker) = part(el, ".stale-marker") {
        hide(&marker, !row.stale);
        let days = with_page(|p| p.view.as_ref().map(|v| v.stale_after_days.days()));
        let why = days.map_or_else(
            || msg("sessions_stale_long"),
            |days| tr(&Text::new("sessions_stale_days").arg(days)),
        );
        let _ = marker.set_attribute("title", &why);
    }
    let Some(stats) = part(el, ".row-stats") else {
        return;
    };
    hide(&stats, !row.known);
    let mut line = describe_monitoring(
        row.connected_ms,
        row.drops,
        row.last_seen_connected.is_some(),
        tr,
    );
    if let Some(error) = &row.last_error {
        line = Text::new("sessions_monitoring_last_error")
            .arg(tr(&line))
            .arg(&error.code)
            .arg(date_time(error.at));
    }
    stats.set_text_content(Some(&tr(&line)));
    let _ = stats.set_attribute("data-drops", &row.drops.to_string());
    let _ = stats.set_attribute("data-connected-ms", &row.connected_ms.round().to_string());
}

/// Which actions a row offers.
fn applies(action: SessionAction, row: &SessionRow) -> bool {
    match action {
        SessionAction::Attach => row.tab.is_none(),
        SessionAction::Detach | SessionAction::FocusTab => row.tab.is_some(),
        // A session only the server lists is adopted by the worker when acted on.
        SessionAction::Logout | SessionAction::Close | SessionAction::Restart => true,
        // Forgetting is about this browser's list: nothing to forget of an unknown one.
        SessionAction::Forget => row.known,
    }
}

// ---- filter, search and selection -------------------------------------------------------

#[derive(Clone, Copy)]
enum StatusFilter {
    All,
    Connected,
    Pairing,
    Closed,
    Stale,
    Unknown,
}

impl StatusFilter {
    fn parse(value: &str) -> StatusFilter {
        match value {
            "connected" => StatusFilter::Connected,
            "pairing" => StatusFilter::Pairing,
            "closed" => StatusFilter::Closed,
            "stale" => StatusFilter::Stale,
            "unknown" => StatusFilter::Unknown,
            _ => StatusFilter::All,
        }
    }

    fn keeps(self, row: &SessionRow) -> bool {
        use ServerStatus::*;
        match self {
            StatusFilter::All => true,
            StatusFilter::Connected => row.status == Some(Connected),
            StatusFilter::Pairing => {
                matches!(row.status, Some(QrCode | PhoneCode | Initializing))
            }
            StatusFilter::Closed => row.status == Some(Closed),
            StatusFilter::Stale => row.stale,
            StatusFilter::Unknown => !row.known,
        }
    }
}

/// Case-insensitive, in the name and the account's name; digits also in its number.
fn matches_search(row: &SessionRow, query: &str) -> bool {
    let query = query.trim().to_lowercase();
    if query.is_empty() || row.label.to_lowercase().contains(&query) {
        return true;
    }
    let Some(account) = &row.account else {
        return false;
    };
    if account
        .name
        .as_ref()
        .is_some_and(|n| n.to_lowercase().contains(&query))
    {
        return true;
    }
    let is_number = query
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    is_number && !digits.is_empty() && account.phone.contains(&digits)
}

/// Shows the rows that pass the status filter and the search, and unselects the others, so
/// that a bulk action never touches a row out of sight.
fn apply_filter() {
    let filter = StatusFilter::parse(
        &element("filter-status")
            .map_or_else(String::new, |e| e.unchecked_into::<Select>().value()),
    );
    let query = input("search").map(|i| i.value()).unwrap_or_default();
    let view = with_page(|p| p.view.clone()).unwrap_or(SessionsView {
        groups: vec![],
        stale_after_days: Default::default(),
    });
    let by_id: HashMap<&str, &SessionRow> = view
        .groups
        .iter()
        .flat_map(|g| &g.sessions)
        .map(|r| (r.id.as_str(), r))
        .collect();
    let (mut total, mut shown_total) = (0, 0);
    for section in element("groups").map(|g| children(&g)).unwrap_or_default() {
        let mut shown = 0;
        let rows = rows_of(&section);
        for tr in &rows {
            let id = tr.get_attribute("data-session-id").unwrap_or_default();
            let keep = by_id
                .get(id.as_str())
                .is_some_and(|row| filter.keeps(row) && matches_search(row, &query));
            hide(tr, !keep);
            if !keep {
                if let Some(select) = checkbox(tr) {
                    select.set_checked(false);
                }
            }
            shown += usize::from(keep);
        }
        if let Some(table) = part(&section, "table") {
            hide(&table, shown == 0);
        }
        if let Some(empty) = part(&section, ".group-empty") {
            empty.set_text_content(Some(&msg(match rows.is_empty() {
                true => "sessions_group_empty",
                false => "sessions_group_no_match",
            })));
            hide(&empty, shown > 0);
        }
        total += rows.len();
        shown_total += shown;
    }
    set_hidden("no-match", total == 0 || shown_total > 0);
    update_selection();
}

/// The shown rows, and which of them are selected.
fn shown_rows() -> Vec<(Element, bool)> {
    element("groups")
        .map(|g| children(&g))
        .unwrap_or_default()
        .iter()
        .flat_map(rows_of)
        .filter(|tr| !tr.has_attribute("hidden"))
        .map(|tr| {
            let selected = checkbox(&tr).is_some_and(|c| c.checked());
            (tr, selected)
        })
        .collect()
}

fn update_selection() {
    let rows = shown_rows();
    let selected = rows.iter().filter(|(_, s)| *s).count();
    if let Some(all) = input("select-all") {
        all.set_checked(!rows.is_empty() && selected == rows.len());
        all.set_indeterminate(selected > 0 && selected < rows.len());
        all.set_disabled(rows.is_empty());
    }
    if let Some(count) = element("selection-count") {
        count.set_text_content(Some(&match selected {
            0 => msg("sessions_none_selected"),
            n => tr(&Text::new("sessions_selected_count").arg(n)),
        }));
    }
    if let Some(bulk) = element("bulk") {
        for button in children(&bulk)
            .into_iter()
            .filter(|b| b.has_attribute("data-bulk"))
        {
            set_disabled(&button, selected == 0);
        }
    }
}

fn select_all() {
    let on = input("select-all").is_some_and(|i| i.checked());
    for (tr, _) in shown_rows() {
        if let Some(select) = checkbox(&tr) {
            select.set_checked(on);
        }
    }
    update_selection();
}

// ---- requests ---------------------------------------------------------------------------

fn on_row_click(event: web_sys::Event) {
    let Some(button) = target_closest(&event, "button[data-action]") else {
        return;
    };
    let action = button
        .get_attribute("data-action")
        .and_then(|a| from_wire_name(&a));
    let row = button
        .closest("tr[data-session-id]")
        .ok()
        .flatten()
        .and_then(|tr| tr.get_attribute("data-session-id"))
        .and_then(|id| view_row(&id));
    let (Some(action), Some(row)) = (action, row) else {
        return;
    };
    let request = SessionsRequest::Act {
        action,
        ids: vec![row.id.clone()],
    };
    let name = tr(&Text::new("sessions_quoted_name").arg(&row.label));
    match confirmation(action, &name) {
        Some((question, yes)) => ask(&question, yes, vec![request]),
        None => send(&request),
    }
}

fn on_row_change(event: web_sys::Event) {
    let Some(target) = event
        .target()
        .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
    else {
        return;
    };
    if target.has_attribute("data-select") {
        return update_selection();
    }
    if target.get_attribute("data-field").as_deref() != Some("label") {
        return;
    }
    let Some(row) = target
        .closest("tr[data-session-id]")
        .ok()
        .flatten()
        .and_then(|tr| tr.get_attribute("data-session-id"))
        .and_then(|id| view_row(&id))
    else {
        return;
    };
    match Label::parse(&target.value()) {
        Ok(label) => {
            target.set_value(label.as_str());
            if label.as_str() != row.label {
                send(&SessionsRequest::Describe {
                    id: row.id,
                    label: Some(label),
                    colour: None,
                });
            }
        }
        Err(why) => {
            let why = Text::new("sessions_name_not_changed").arg(tr(&why.text()));
            show_notice(false, &tr(&why));
            target.set_value(&row.label);
        }
    }
}

/// A bulk button: the action on every selected row (shown, as selection implies) it applies to.
fn bulk(name: &str) {
    let Some(action) = from_wire_name::<SessionAction>(name) else {
        return;
    };
    let ids: Vec<_> = shown_rows()
        .into_iter()
        .filter(|(_, selected)| *selected)
        .filter_map(|(tr, _)| view_row(&tr.get_attribute("data-session-id")?))
        .filter(|row| applies(action, row))
        .map(|row| row.id)
        .collect();
    if ids.is_empty() {
        return show_notice(false, &msg("sessions_bulk_none_applies"));
    }
    let count = match ids.len() {
        1 => msg("sessions_count_one"),
        n => tr(&Text::new("sessions_count_other").arg(n)),
    };
    let requests: Vec<_> = ids
        .chunks(MAX_PER_ACT)
        .map(|chunk| SessionsRequest::Act {
            action,
            ids: chunk.to_vec(),
        })
        .collect();
    match confirmation(action, &count) {
        Some((question, yes)) => ask(&question, yes, requests),
        None => requests.iter().for_each(send),
    }
}

/// "Close and forget stale sessions": every stale row the page shows (whatever the filter),
/// asked once, naming how many; the worker takes those still stale when it gets the word.
fn forget_stale() {
    let (ids, days) = with_page(|p| {
        let Some(view) = &p.view else {
            return (vec![], 0);
        };
        let ids: Vec<_> = view
            .groups
            .iter()
            .flat_map(|g| &g.sessions)
            .filter(|r| r.known && r.stale)
            .map(|r| r.id.clone())
            .collect();
        (ids, view.stale_after_days.days())
    });
    if ids.is_empty() {
        return show_notice(true, &msg("sessions_none_stale"));
    }
    let count = match ids.len() {
        1 => msg("sessions_stale_count_one"),
        n => tr(&Text::new("sessions_stale_count_other").arg(n)),
    };
    let requests = ids
        .chunks(MAX_PER_ACT)
        .map(|chunk| SessionsRequest::ForgetStale {
            ids: chunk.to_vec(),
        })
        .collect();
    let question = Text::new("sessions_forget_stale_question")
        .arg(count)
        .arg(days);
    ask(&tr(&question), "sessions_forget_stale_yes", requests);
}

/// The question asked before an action that cannot be undone, and its "yes" (a message).
fn confirmation(action: SessionAction, what: &str) -> Option<(String, &'static str)> {
    let (question, yes) = match action {
        SessionAction::Logout => ("sessions_logout_question", "sessions_action_logout"),
        SessionAction::Forget => ("sessions_forget_question", "sessions_action_forget"),
        _ => return None,
    };
    Some((tr(&Text::new(question).arg(what)), yes))
}

fn view_row(id: &str) -> Option<SessionRow> {
    with_page(|p| {
        p.view
            .as_ref()?
            .groups
            .iter()
            .flat_map(|g| &g.sessions)
            .find(|r| r.id.as_str() == id)
            .cloned()
    })
}

// ---- the confirmation -------------------------------------------------------------------

/// Asks `question`; `yes` is the message of the button that goes ahead.
fn ask(question: &str, yes: &'static str, requests: Vec<SessionsRequest>) {
    let opener = document()
        .active_element()
        .and_then(|e| e.dyn_into::<HtmlElement>().ok());
    with_page(|p| p.confirming = Some((requests, opener)));
    if let Some(q) = element("confirm-question") {
        q.set_text_content(Some(question));
    }
    if let Some(button) = element("confirm-yes") {
        button.set_text_content(Some(&msg(yes)));
    }
    if let Some(page) = element("page") {
        let _ = page.set_attribute("inert", "");
    }
    set_hidden("confirm", false);
    // The safe choice has the focus: Enter does not unlink an account by accident.
    if let Some(no) = element("confirm-no").and_then(|e| e.dyn_into::<HtmlElement>().ok()) {
        let _ = no.focus();
    }
}

/// Closes the confirmation; returns what "yes" would send.
fn close_confirmation() -> Option<Vec<SessionsRequest>> {
    let (requests, opener) = with_page(|p| p.confirming.take())?;
    set_hidden("confirm", true);
    if let Some(page) = element("page") {
        let _ = page.remove_attribute("inert");
    }
    if let Some(opener) = opener.filter(|o| o.is_connected()) {
        let _ = opener.focus();
    }
    Some(requests)
}

// ---- export and import ------------------------------------------------------------------

fn save_export(text: &str) {
    let today = js_sys::Date::new_0();
    let name = format!(
        "wpp-tabs-sessions-{:04}-{:02}-{:02}.json",
        today.get_full_year(),
        today.get_month() + 1,
        today.get_date()
    );
    match download(&name, text) {
        Ok(()) => show_notice(true, &tr(&Text::new("sessions_exported").arg(name))),
        Err(why) => show_notice(false, &tr(&Text::new("sessions_export_not_saved").arg(why))),
    }
}

fn download(name: &str, text: &str) -> Result<(), String> {
    let parts = Array::of1(&JsValue::from_str(text));
    let blob = Blob::new(&parts, &object(&[("type", "application/json".into())]))
        .map_err(|e| js_error_text(&e))?;
    let url = create_object_url(&blob).map_err(|e| js_error_text(&e))?;
    let link = make("a", "").unchecked_into::<HtmlElement>();
    let _ = link.set_attribute("href", &url);
    let _ = link.set_attribute("download", name);
    link.set_hidden(true);
    let body = document().body().ok_or("the page has no body")?;
    append(&body, &link);
    link.click();
    link.remove();
    Timeout::new(REVOKE_MS, move || revoke_object_url(&url)).forget();
    Ok(())
}

async fn import_file() {
    let Some(picker) = element("import-file") else {
        return;
    };
    let file = picker
        .unchecked_ref::<FileInput>()
        .files()
        .and_then(|f| f.item(0));
    // Picking the same file again is a new change.
    if let Ok(picker) = picker.dyn_into::<HtmlInputElement>() {
        picker.set_value("");
    }
    let Some(file) = file else {
        return;
    };
    let too_large = tr(&Text::new("sessions_import_too_large").arg(MAX_IMPORT_BYTES / 1024));
    if file.size() > MAX_IMPORT_BYTES as f64 {
        return show_notice(false, &too_large);
    }
    let text = match JsFuture::from(file.text()).await {
        Ok(text) => text.as_string().unwrap_or_default(),
        Err(err) => {
            let why = js_error_text(&err);
            return show_notice(
                false,
                &tr(&Text::new("sessions_import_unreadable").arg(why)),
            );
        }
    };
    let request = SessionsRequest::Import { text };
    // Escaped inside the message, the text grows: the worker would refuse it unread.
    if encode(&request).to_string().len() > MAX_IMPORT_BYTES {
        return show_notice(false, &too_large);
    }
    show_notice(true, &msg("sessions_importing"));
    send(&request);
}

// ---- messages on the page ---------------------------------------------------------------

/// The outcome of what the user asked, in the polite live region.
fn show_notice(ok: bool, message: &str) {
    show_result("notice", ok, message);
}

// ---- element helpers --------------------------------------------------------------------

fn cell(class: &str, content: &[&Element]) -> Element {
    let td = make("td", class);
    for child in content {
        append(&td, child);
    }
    td
}

/// The first descendant of `root` matching `selector`.
fn part(root: &Element, selector: &str) -> Option<Element> {
    root.query_selector(selector).ok().flatten()
}

fn set_text(root: &Element, selector: &str, text: &str) {
    if let Some(el) = part(root, selector) {
        el.set_text_content(Some(text));
    }
}

fn children(parent: &Element) -> Vec<Element> {
    std::iter::successors(parent.first_element_child(), Element::next_element_sibling).collect()
}

fn rows_of(section: &Element) -> Vec<Element> {
    part(section, "tbody")
        .map(|b| children(&b))
        .unwrap_or_default()
}

fn checkbox(tr: &Element) -> Option<HtmlInputElement> {
    part(tr, "[data-select]").and_then(|e| e.dyn_into().ok())
}

/// `parent`'s children by the value of their attribute `key`.
fn keyed(parent: &Element, key: &str) -> HashMap<String, Element> {
    children(parent)
        .into_iter()
        .filter_map(|child| Some((child.get_attribute(key)?, child)))
        .collect()
}

/// Makes `wanted` the children of `parent`, in order, moving only what is out of place (a
/// moved element loses focus) and removing the rest.
fn arrange(parent: &Element, wanted: &[Element]) {
    let mut next = parent.first_element_child();
    for child in wanted {
        if next.as_ref() == Some(child) {
            next = child.next_element_sibling();
        } else {
            let _ = parent.insert_before(child, next.as_deref());
        }
    }
    while let Some(stale) = next {
        next = stale.next_element_sibling();
        stale.remove();
    }
}

fn target_closest(event: &web_sys::Event, selector: &str) -> Option<Element> {
    event
        .target()?
        .dyn_into::<Element>()
        .ok()?
        .closest(selector)
        .ok()
        .flatten()
}
