//! The popup: renders the [`TabView`] the worker pushes, and turns clicks into requests.
//! It subscribes, and meanwhile paints the cached session (straight from `storage.session`)
//! unless the live view came first.

use super::browser::{
    clear_children, console_warn, document, element, input, js_error_text, keep_worker_connected,
    object, on_click, on_event, post_to_worker, runtime, select_element, set_disabled, set_hidden,
    to_js, EarlyPort,
};
use super::i18n::{msg, tr};
use super::store::BrowserStorage;
use crate::core::api::PairingPhone;
use crate::core::index::{Colour, Label};
use crate::core::messages::{encode, PopupPush, PopupRequest, POPUP_PORT};
use crate::core::paint::{paint, Paint, PaintText};
use crate::core::session::TabView;
use crate::core::settings::ServerId;
use crate::core::storage::TabId;
use crate::core::store::Store;
use crate::core::text::Text;
use gloo_timers::callback::Timeout;
use std::cell::RefCell;
use std::future::Future;
use std::task::Poll;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_extensions_sys::chrome;
use web_sys::{Element, HtmlElement};

/// How long "Copied" stays on the copy button.
const COPIED_MS: u32 = 1_500;

thread_local! {
    static POPUP: RefCell<Option<PopupState>> = const { RefCell::new(None) };
}

struct PopupState {
    full_id: Option<String>,
    /// The last live view, which decides what "Log out" does.
    view: Option<TabView>,
    /// The logout confirmation is open.
    confirming: bool,
    /// Opened by the context menu (`?confirm=logout`) to confirm a logout, and only for that.
    confirm_window: bool,
    /// The phone number form is open.
    phone_form: bool,
}

/// Runs once the popup's Wasm is loaded, with the port `popup.js` opened and subscribed
/// meanwhile (see `extension/popup.js`).
#[cfg_attr(feature = "entry-popup", wasm_bindgen)]
pub async fn popup_main(early: EarlyPort) {
    let tab = JsFuture::from(early.tab()).await.ok();
    let Some(tab) = tab.and_then(|t| t.as_f64()).and_then(tab_id) else {
        return show_error(&msg("popup_error_no_tab"));
    };
    let confirm_window = url_param("confirm").as_deref() == Some("logout");
    POPUP.with(|p| {
        *p.borrow_mut() = Some(PopupState {
            full_id: None,
            view: None,
            confirming: false,
            confirm_window,
            phone_form: false,
        })
    });
    wire_buttons();
    // Adopted first: the worker's answer does not wait for the storage reads.
    connect(tab, early);
    paint_cached(tab).await;
}

/// A tab ID as JS gives it: a whole number in range (`as` saturates; `TabId` checks range).
fn tab_id(id: f64) -> Option<TabId> {
    (id.fract() == 0.0).then(|| TabId::new(id as i64))?
}

fn url_param(name: &str) -> Option<String> {
    let search = document().location()?.search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
}

/// First paint from storage, unless the worker answered first: ID, name and last known status.
async fn paint_cached(tab: TabId) {
    let store = Store::new(&BrowserStorage);
    // Both reads at once: the index does not wait for the tab's session.
    let (id, index) = both(store.tab_session(tab), store.index()).await;
    let Ok(Some(id)) = id else {
        return;
    };
    let index = index.unwrap_or_default();
    let entry = index.get(&id);
    let mut view = TabView::cached(&id, entry.and_then(|e| e.last_status), js_sys::Date::now());
    if let Some(entry) = entry {
        view.label = Some(entry.label.as_str().to_owned());
        view.colour = Some(entry.colour);
        view.account = entry.account.clone();
    }
    if with_popup(|p| p.view.is_none()).unwrap_or(false) {
        render(&view, ViewSource::Cache);
    }
}

/// Runs `a` and `b` together; their outputs once both are done.
async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut done_a, mut done_b) = (None, None);
    std::future::poll_fn(|cx| {
        // A future is polled until it is done, never after.
        if done_a.is_none() {
            if let Poll::Ready(out) = a.as_mut().poll(cx) {
                done_a = Some(out);
            }
        }
        if done_b.is_none() {
            if let Poll::Ready(out) = b.as_mut().poll(cx) {
                done_b = Some(out);
            }
        }
        match (done_a.take(), done_b.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (done_a, done_b) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

fn connect(tab: TabId, early: EarlyPort) {
    keep_worker_connected(
        POPUP_PORT,
        |push| match push {
            Ok(PopupPush::State { view }) => {
                render(&view, ViewSource::Worker);
                follow_confirmation(*view);
            }
            Ok(PopupPush::Notice { ok: false, message }) => show_error(&tr(&message)),
            Ok(_) => {}
            // Never silent: what is on screen may be out of date, and the user must know.
            Err(err) => {
                console_warn(&format!("wpp-tabs: worker message refused: {err}"));
                show_error(&tr(&Text::new("popup_error_unreadable_update").arg(err)));
            }
        },
        to_js(&encode(&PopupRequest::Subscribe { tab_id: tab })),
        Some(early),
    );
}

fn with_popup<R>(f: impl FnOnce(&mut PopupState) -> R) -> Option<R> {
    POPUP.with(|p| p.borrow_mut().as_mut().map(f))
}

/// Posts `request` to the worker; one that finds it gone is lost, as the popup reconnects
/// and shows the state afresh.
fn send(request: PopupRequest) {
    post_to_worker(&to_js(&encode(&request)));
}

fn wire_buttons() {
    super::unlock::wire_popup(send);
    on_click("pair", || {
        let server = select_value("server-choice").and_then(|v| ServerId::parse(&v));
        send(PopupRequest::Pair { server });
    });
    on_click("detach", || send(PopupRequest::Detach));
    on_click("open-sessions", || {
        let url = runtime().get_url("sessions.html");
        let info = object(&[("url", url.into())]);
        spawn_local(async move {
            let _ = chrome().tabs().create(&info).await;
            close_window();
        });
    });
    on_event("label", "change", |_| rename());
    on_event("colour", "change", |_| {
        let colour = select_value("colour").and_then(|v| colour_named(&v));
        if colour.is_some() {
            send(PopupRequest::Describe {
                label: None,
                colour,
            });
        }
    });
    on_click("logout", ask_logout);
    on_click("logout-confirm", || {
        set_confirming(false);
        send(PopupRequest::Logout);
    });
    on_click("logout-cancel", cancel_logout);
    let on_key = Closure::<dyn Fn(web_sys::KeyboardEvent)>::new(|event: web_sys::KeyboardEvent| {
        if event.key() == "Escape" && with_popup(|p| p.confirming).unwrap_or(false) {
            event.prevent_default();
            cancel_logout();
        }
    });
    let _ = document().add_event_listener_with_callback("keydown", on_key.as_ref().unchecked_ref());
    on_key.forget();
    on_click("copy-session-id", || spawn_local(copy_session_id()));
    wire_phone();
    on_click("open-options", || {
        spawn_local(async {
            let _ = runtime().open_options_page().await;
        });
    });
}

/// Pairing by phone number: the form, its check of the number (the worker's own, so nothing
/// invalid is sent), the code's copy button, and the way back to the QR.
fn wire_phone() {
    on_click("pair-by-phone", || {
        let phone = with_popup(|p| {
            p.phone_form = true;
            p.view.as_ref().and_then(|v| v.pairing_phone.clone())
        })
        .flatten();
        if let (Some(field), Some(phone)) = (input("phone"), phone) {
            field.set_value(&format!("+{}", phone.digits()));
        }
        show_phone_error(None);
        render_phone_form(None);
        if let Some(field) = input("phone") {
            let _ = field.focus();
        }
    });
    on_click("phone-cancel", close_phone_form);
    on_click("phone-submit", submit_phone);
    on_event("phone", "input", |_| show_phone_error(None));
    on_click("pair-by-qr", || {
        close_phone_form();
        send(PopupRequest::PairByQr);
    });
    on_click("copy-phone-code", || spawn_local(copy_phone_code()));
}

fn submit_phone() {
    let Some(field) = input("phone") else {
        return;
    };
    match PairingPhone::parse(&field.value()) {
        Ok(phone) => {
            let server = select_value("server-choice").and_then(|v| ServerId::parse(&v));
            close_phone_form();
            send(PopupRequest::PairByPhone { phone, server });
        }
        Err(why) => {
            show_phone_error(Some(&msg(why)));
            let _ = field.focus();
        }
    }
}

fn close_phone_form() {
    with_popup(|p| p.phone_form = false);
    show_phone_error(None);
    render_phone_form(None);
}

fn show_phone_error(message: Option<&str>) {
    if let Some(el) = element("phone-error") {
        el.set_text_content(message);
    }
    set_hidden("phone-error", message.is_none());
    if let Some(field) = input("phone") {
        let invalid = if message.is_some() { "true" } else { "false" };
        let _ = field.set_attribute("aria-invalid", invalid);
    }
}

/// The form shows while open and while the view (`view`, or else the last live one) still
/// allows pairing by phone; the link that opens it shows otherwise.
fn render_phone_form(view: Option<&TabView>) {
    let last = with_popup(|p| p.view.clone()).flatten();
    let view = view.or(last.as_ref());
    let allowed = view.as_ref().is_some_and(|v| v.can_pair_by_phone);
    let open = with_popup(|p| {
        p.phone_form &= allowed;
        p.phone_form
    })
    .unwrap_or(false);
    set_hidden("phone-form", !open);
    set_hidden("pair-by-phone", !allowed || open);
    if let Some(link) = element("pair-by-phone") {
        let again = view.as_ref().is_some_and(|v| v.pairing_phone.is_some());
        link.set_text_content(Some(&msg(match again {
            true => "phone_use_another",
            false => "phone_link_instead",
        })));
    }
}

/// Until when the pairing code works (the code itself is painted), and the ways to switch.
fn render_phone(view: &TabView) {
    if let Some(el) = element("phone-code-expiry") {
        let until = view.phone_code_expires_at.map(|at| {
            let time = js_sys::Date::new(&at.into()).to_locale_time_string("default");
            tr(&Text::new("phone_code_valid_until").arg(String::from(time)))
        });
        el.set_text_content(until.as_deref());
    }
    set_hidden("pair-by-qr", !view.can_pair_by_qr);
    render_phone_form(Some(view));
}

/// The label as typed: sent when valid, otherwise the error shows and the old name returns.
fn rename() {
    let Some(input) = input("label") else {
        return;
    };
    match Label::parse(&input.value()) {
        Ok(label) => send(PopupRequest::Describe {
            label: Some(label),
            colour: None,
        }),
        Err(why) => {
            show_error(&tr(&why.text()));
            let old = with_popup(|p| p.view.as_ref().and_then(|v| v.label.clone())).flatten();
            input.set_value(&old.unwrap_or_default());
        }
    }
}

fn colour_named(name: &str) -> Option<Colour> {
    Colour::ALL.into_iter().find(|c| c.name() == name)
}

fn select_value(id: &str) -> Option<String> {
    let select = select_element(id)?;
    let value = select.value();
    (!value.is_empty()).then_some(value)
}

/// The sessions no tab holds, as buttons that attach one to this tab.
fn render_attach_list(view: &TabView) {
    set_hidden("attach", view.attachable.is_empty());
    let Some(list) = element("attach-list") else {
        return;
    };
    clear_children(&list);
    let doc = document();
    for row in &view.attachable {
        let (Ok(item), Ok(button)) = (doc.create_element("li"), doc.create_element("button"))
        else {
            return;
        };
        let _ = button.set_attribute("type", "button");
        let _ = button.set_attribute("data-session-id", row.id.as_str());
        let _ = button.set_attribute("class", "attach-session");
        let status = row.status.map_or("NONE", |s| s.as_str());
        let _ = button.set_attribute("data-status", status);
        set_colour(&button, row.colour);
        let account = row
            .account
            .as_ref()
            .map(|a| format!(" · {}", a.display()))
            .unwrap_or_default();
        button.set_text_content(Some(&format!(
            "{}{account} — {}",
            row.label,
            tr(&row.status_text)
        )));
        let id = row.id.clone();
        let on_click = Closure::<dyn Fn()>::new(move || {
            send(PopupRequest::Attach {
                session_id: id.clone(),
            })
        });
        let _ = button.add_event_listener_with_callback("click", on_click.as_ref().unchecked_ref());
        on_click.forget();
        let _ = item.append_child(&button);
        let _ = list.append_child(&item);
    }
}

/// Where a new session goes, when there is more than one server.
fn render_server_choice(view: &TabView) {
    set_hidden("server-choice-row", view.servers.is_empty());
    let Some(select) = element("server-choice") else {
        return;
    };
    let current = select_value("server-choice");
    if select.child_element_count() as usize == view.servers.len() {
        return;
    }
    clear_children(&select);
    for (id, name) in &view.servers {
        let Ok(option) = document().create_element("option") else {
            return;
        };
        let _ = option.set_attribute("value", id.as_str());
        option.set_text_content(Some(name));
        let chosen = current
            .as_deref()
            .map_or(view.default_server.as_ref() == Some(id), |c| {
                c == id.as_str()
            });
        if chosen {
            let _ = option.set_attribute("selected", "");
        }
        let _ = select.append_child(&option);
    }
}

/// The session's colour as a CSS custom property, with its name for those who do not see it.
fn set_colour(el: &Element, colour: Option<Colour>) {
    let Some(el) = el.dyn_ref::<HtmlElement>() else {
        return;
    };
    match colour {
        Some(colour) => {
            let _ = el.style().set_property("--session-colour", colour.css());
            let _ = el.set_attribute("data-colour", colour.name());
        }
        None => {
            let _ = el.style().remove_property("--session-colour");
            let _ = el.remove_attribute("data-colour");
        }
    }
}

/// "Log out": at once, or after a confirmation when that would unlink a connected account.
fn ask_logout() {
    let confirm = with_popup(|p| {
        p.view
            .as_ref()
            .is_some_and(TabView::logout_needs_confirmation)
    });
    match confirm.unwrap_or(false) {
        true => set_confirming(true),
        false => send(PopupRequest::Logout),
    }
}

fn cancel_logout() {
    set_confirming(false);
    if with_popup(|p| p.confirm_window).unwrap_or(false) {
        close_window();
    }
}

fn set_confirming(on: bool) {
    with_popup(|p| p.confirming = on);
    set_hidden("logout-confirmation", !on);
    // The safe choice takes the focus, so Enter does not unlink an account by accident; once
    // closed, the focus goes back to the button that opened it.
    let target = if on { "logout-cancel" } else { "logout" };
    if let Some(button) = element(target).and_then(|e| e.dyn_into::<HtmlElement>().ok()) {
        if on || !button.has_attribute("hidden") {
            let _ = button.focus();
        }
    }
}

/// Keeps the confirmation true to the account: a confirmation window opens it once the
/// account shows connected, and closes once the logout is done; an account that is no longer
/// connected needs no confirmation.
fn follow_confirmation(view: TabView) {
    let needs = view.logout_needs_confirmation();
    let logged_out = view.session_id.is_none();
    let Some((window, confirming, first)) = with_popup(|p| {
        let first = p.view.is_none();
        p.view = Some(view);
        (p.confirm_window, p.confirming, first)
    }) else {
        return;
    };
    if window && first && needs {
        set_confirming(true);
    } else if confirming && !needs {
        set_confirming(false);
    }
    if window && logged_out {
        close_window();
    }
}

fn close_window() {
    if let Some(window) = web_sys::window() {
        let _ = window.close();
    }
}

/// Writes `text` to the clipboard.
async fn copy_text(text: &str) -> Result<(), String> {
    let clipboard = web_sys::window().map(|w| w.navigator().clipboard());
    match clipboard {
        Some(clipboard) => JsFuture::from(clipboard.write_text(text))
            .await
            .map(drop)
            .map_err(|e| js_error_text(&e)),
        None => Err("no clipboard".to_owned()),
    }
}

/// "Copied" on `button` for a moment.
fn copied(button: Element) {
    button.set_text_content(Some(&msg("popup_copied")));
    Timeout::new(COPIED_MS, move || {
        button.set_text_content(Some(&msg("popup_copy")));
    })
    .forget();
}

async fn copy_phone_code() {
    let code = with_popup(|p| p.view.as_ref().and_then(|v| v.phone_code.clone())).flatten();
    let (Some(code), Some(button)) = (code, element("copy-phone-code")) else {
        return;
    };
    match copy_text(&code.display()).await {
        Ok(()) => copied(button),
        Err(why) => {
            console_warn(&format!("wpp-tabs: copy failed: {why}"));
            button.set_text_content(Some(&msg("popup_copy_failed_code")));
        }
    }
}

async fn copy_session_id() {
    let Some(full_id) = with_popup(|p| p.full_id.clone()).flatten() else {
        return;
    };
    let Some(button) = element("copy-session-id") else {
        return;
    };
    match copy_text(&full_id).await {
        Ok(()) => copied(button),
        Err(why) => {
            console_warn(&format!("wpp-tabs: copy failed: {why}"));
            button.set_text_content(Some(&msg("popup_copy_failed_id")));
            if let Some(id) = element("session-id") {
                id.set_text_content(Some(&full_id));
            }
        }
    }
}

/// Where a rendered view came from, shown as `data-source` on the body.
#[derive(Clone, Copy)]
enum ViewSource {
    /// The last state stored in `storage.session`, painted before the worker answers.
    Cache,
    /// A live state pushed by the worker.
    Worker,
}

/// Shows `view` and nothing else: every element's state derives from it.
fn render(view: &TabView, source: ViewSource) {
    with_popup(|p| p.full_id = view.session_id.as_ref().map(|id| id.to_string()));
    apply(&paint(view));
    set_hidden("copy-session-id", view.session_id.is_none());
    set_hidden("look", view.label.is_none());
    if let Some(input) = input("label") {
        let focused = document()
            .active_element()
            .is_some_and(|a| a.id() == "label");
        if !focused {
            input.set_value(view.label.as_deref().unwrap_or_default());
        }
    }
    if let Some(select) = select_element("colour") {
        select.set_value(view.colour.map_or("", Colour::name));
    }
    if let Some(look) = element("look") {
        set_colour(&look, view.colour);
    }
    set_hidden("detach", view.session_id.is_none());
    render_attach_list(view);
    render_server_choice(view);
    render_phone(view);
    if let Some(el) = element("pair") {
        el.set_text_content(view.action_label.as_ref().map(tr).as_deref());
        set_disabled(&el, view.busy);
    }
    set_hidden("pair", view.action.is_none());
    if let Some(el) = element("logout") {
        set_disabled(&el, view.busy);
    }
    set_hidden("logout", !view.can_log_out());
    super::unlock::render_popup(view);
    if let Some(body) = document().body() {
        let _ = body.set_attribute("aria-busy", if view.busy { "true" } else { "false" });
        let source = match source {
            ViewSource::Cache => "cache",
            ViewSource::Worker => "worker",
        };
        let _ = body.set_attribute("data-source", source);
    }
}

/// The view's information elements (`popup.js` applies the same list before this module
/// loads).
fn apply(paints: &[Paint]) {
    for p in paints {
        let Some(el) = element(&p.id) else {
            continue;
        };
        let text = match &p.text {
            Some(PaintText::Plain(text)) => Some(text.clone()),
            Some(PaintText::Message(text)) => Some(tr(text)),
            None => None,
        };
        // The same words again would be announced again (the status is a live region), as
        // when this module takes over from popup.js's paint.
        if let Some(text) = text.filter(|t| el.text_content().as_deref() != Some(t)) {
            el.set_text_content(Some(&text));
        }
        for (name, value) in &p.attributes {
            let _ = match value {
                Some(value) => el.set_attribute(name, value),
                None => el.remove_attribute(name),
            };
        }
        set_hidden(&p.id, !p.shown);
    }
}

fn show_error(message: &str) {
    if let Some(el) = element("error") {
        el.set_text_content(Some(message));
        let _ = el.set_attribute("data-error", "popup");
    }
    set_hidden("error", false);
}
