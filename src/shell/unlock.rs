//! The remembered secret key's duration and lock, on the pages: the popup's `#unlock` form
//! (the passphrase of a locked key), and the options page's remember duration and
//! passphrase section. The worker judges everything; a passphrase is sent once and never
//! kept on the page, and nothing sends a passphrase or a secret back.

use super::browser::{
    element, input, on_click, select_element, set_disabled, set_hidden, show_pending, show_result,
};
use super::i18n::{date_time, msg, tr};
use crate::core::lock::Passphrase;
use crate::core::messages::{OptionsReply, OptionsRequest, PopupRequest, ServerSummary};
use crate::core::session::TabView;
use crate::core::settings::{Remember, ServerId};
use crate::core::text::Text;
use std::cell::RefCell;

thread_local! {
    /// The server the shown form is about: the popup's prompt, or the options page's choice.
    static SERVER: RefCell<Option<ServerId>> = const { RefCell::new(None) };
}

fn server() -> Option<ServerId> {
    SERVER.with(|s| s.borrow().clone())
}

/// Takes the typed passphrase out of `id` (the field is emptied: it stays nowhere).
fn take_passphrase(id: &str) -> Result<Passphrase, String> {
    let field = input(id).ok_or_else(|| msg("unlock_no_field"))?;
    let typed = field.value();
    field.set_value("");
    Passphrase::parse(&typed).map_err(|_| {
        let _ = field.focus();
        tr(&Text::new("unlock_passphrase_length").arg(typed.chars().count()))
    })
}

// ---- the popup ------------------------------------------------------------------------------

/// Wires `#unlock`: its passphrase goes to the worker, for the server the form is about.
pub fn wire_popup(send: fn(PopupRequest)) {
    on_click("unlock-submit", move || {
        let Some(server) = server() else { return };
        match take_passphrase("passphrase") {
            Ok(passphrase) => send(PopupRequest::Unlock { server, passphrase }),
            Err(why) => show_popup_error(Some(&why)),
        }
    });
}

/// Shows `#unlock` while the view says the tab's secret key is locked.
pub fn render_popup(view: &TabView) {
    let prompt = view.unlock.as_ref();
    let appears = prompt.is_some() && element("unlock").is_some_and(|e| e.has_attribute("hidden"));
    set_hidden("unlock", prompt.is_none());
    SERVER.with(|s| *s.borrow_mut() = prompt.map(|p| p.server.clone()));
    let Some(prompt) = prompt else { return };
    if let Some(label) = element("unlock-label") {
        let text = Text::new("unlock_label_of").arg(&prompt.server_name);
        label.set_text_content(Some(&tr(&text)));
    }
    if let Some(button) = element("unlock-submit") {
        set_disabled(&button, prompt.busy);
        button.set_text_content(Some(&msg(match prompt.busy {
            true => "unlock_unlocking",
            false => "unlock_submit",
        })));
    }
    show_popup_error(prompt.error.as_ref().map(tr).as_deref());
    if appears {
        if let Some(field) = input("passphrase") {
            let _ = field.focus();
        }
    }
}

fn show_popup_error(message: Option<&str>) {
    if let Some(el) = element("unlock-error") {
        el.set_text_content(message);
    }
    set_hidden("unlock-error", message.is_none());
}

// ---- the options page -------------------------------------------------------------------------

/// Wires the passphrase section of the options page.
pub fn wire_options() {
    on_click("passphrase-set", || {
        let Some(id) = server() else { return };
        let request = match take_passphrase("passphrase-new") {
            Ok(passphrase) => OptionsRequest::SetPassphrase {
                id: id.clone(),
                passphrase,
            },
            Err(why) => return show_result("lock-status", false, &why),
        };
        show_pending("lock-status", &msg("unlock_encrypting"));
        let done = "unlock_locked_sealed";
        wasm_bindgen_futures::spawn_local(act(request, id, done));
    });
    on_click("lock-now", || {
        let Some(id) = server() else { return };
        show_pending("lock-status", &msg("unlock_locking"));
        let request = OptionsRequest::LockNow { id: id.clone() };
        let done = "unlock_locked_now";
        wasm_bindgen_futures::spawn_local(act(request, id, done));
    });
}

/// Sends `request`; once saved, shows the settings again with server `id` chosen, and the
/// message `done`.
async fn act(request: OptionsRequest, id: ServerId, done: &'static str) {
    let (ok, message) = match super::options::ask(&request).await {
        Ok(OptionsReply::Saved { .. }) => match super::options::load(Some(id), false).await {
            Ok(()) => (true, msg(done)),
            Err(why) => (false, tr(&Text::new("unlock_done_unread").arg(why))),
        },
        Ok(OptionsReply::Error { message }) => (false, tr(&message)),
        Ok(other) => (false, super::options::unexpected(&other)),
        Err(why) => (false, why),
    };
    show_result("lock-status", ok, &message);
}

/// Fills the remember duration and the passphrase section from the chosen server (`None`:
/// a new one).
pub fn fill_options(server: Option<&ServerSummary>) {
    SERVER.with(|s| *s.borrow_mut() = server.map(|s| s.id.clone()));
    let remember = server.map_or(Remember::Session, |s| s.remember);
    if let Some(check) = input("remember-secret") {
        check.set_checked(remember.is_remembered());
    }
    if let Some(select) = select_element("remember-for") {
        let shown = match remember {
            Remember::Session => Remember::Days30,
            other => other,
        };
        select.set_value(shown.name());
    }
    let until = server
        .and_then(|s| s.remember_until)
        .filter(|_| remember.is_remembered());
    if let Some(el) = element("remember-until") {
        let text = until.map(|ms| tr(&Text::new("unlock_remembered_until").arg(date_time(ms))));
        el.set_text_content(text.as_deref());
    }
    set_hidden("remember-until", until.is_none());

    let lockable = server.filter(|s| s.remember.is_remembered() && s.has_secret);
    set_hidden("lock", lockable.is_none());
    show_pending("lock-status", "");
    let Some(server) = lockable else { return };
    let state = match (server.locked, server.unlocked) {
        (false, _) => "unlock_state_clear",
        (true, true) => "unlock_state_unlocked",
        (true, false) => "unlock_state_locked",
    };
    if let Some(el) = element("lock-state") {
        el.set_text_content(Some(&msg(state)));
    }
    if let Some(button) = element("passphrase-set") {
        button.set_text_content(Some(&msg(match server.locked {
            true => "unlock_change_passphrase",
            false => "unlock_lock_with_passphrase",
        })));
        // A new passphrase seals the clear key, which a locked one is not.
        set_disabled(&button, server.locked && !server.unlocked);
    }
    set_hidden("lock-now", !(server.locked && server.unlocked));
}

/// The remember duration as the form says: memory only unless ticked.
pub fn remember_from_form() -> Remember {
    let ticked = input("remember-secret").is_some_and(|i| i.checked());
    let chosen = select_element("remember-for")
        .map(|s| s.value())
        .and_then(|v| Remember::ALL.into_iter().find(|r| r.name() == v));
    match (ticked, chosen) {
        (false, _) => Remember::Session,
        (true, Some(chosen)) if chosen.is_remembered() => chosen,
        (true, _) => Remember::Always,
    }
}
