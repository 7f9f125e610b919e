//! The background worker. The JS loader registers every listener synchronously and calls the
//! `worker_on_*` exports below once the module is ready. State lives in `storage.session`;
//! the in-memory map is a cache rebuilt on demand after the browser stops the worker.

use super::browser::{
    call_api, call_api_async, console_warn, from_js, is_own_page, now_ms, object_with, random_u64,
    to_js,
};
use super::{http, store};
use crate::core::api::{self, ApiError, ApiRequest, LogoutOutcome};
use crate::core::messages::{
    decode, encode, MessageError, OptionsReply, OptionsRequest, PopupRequest, WorkerPush,
    POPUP_PORT,
};
use crate::core::session::{Phase, SessionState, TabView, SLOW_REFRESH_MINUTES};
use crate::core::session_id::SessionId;
use crate::core::settings::{SecretKey, ServerUrl, Settings};
use crate::core::storage::{SessionRecord, TabId, Token};
use gloo_timers::future::TimeoutFuture;
use js_sys::{Array, Reflect};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_extensions_sys::{MessageSender, Port};

/// The context-menu entry on the page and on the toolbar button.
const LOGOUT_MENU_ID: &str = "logout-tab-session";
const REFRESH_ALARM: &str = "wpp-tabs-refresh";

thread_local! {
    static WORKER: RefCell<Worker> = RefCell::new(Worker::default());
}

#[derive(Default)]
struct Worker {
    tabs: HashMap<TabId, TabSession>,
    popups: Vec<Popup>,
    next_popup: u32,
    /// The view last pushed for each tab: a refresh pushes only what changed, including
    /// changes that time alone makes (a session turning stuck).
    shown: HashMap<TabId, TabView>,
    /// The server URL or secret is missing, so nothing can be paired.
    settings_missing: bool,
}

/// A tab's bound session, as cached in memory.
struct TabSession {
    record: SessionRecord,
    state: SessionState,
    polling: bool,
}

/// An open popup's port, and the tab it watches once it has subscribed.
struct Popup {
    key: u32,
    port: Port,
    tab: Option<TabId>,
}

fn with_worker<R>(f: impl FnOnce(&mut Worker) -> R) -> R {
    WORKER.with(|w| f(&mut w.borrow_mut()))
}

/// Runs `f` on the tab's cached session, if it has one. Never held across an `await`.
fn with_tab<R>(tab: TabId, f: impl FnOnce(&mut TabSession) -> R) -> Option<R> {
    with_worker(|w| w.tabs.get_mut(&tab).map(f))
}

fn has_popup(tab: TabId) -> bool {
    with_worker(|w| w.popups.iter().any(|p| p.tab == Some(tab)))
}

fn storage_error(err: store::StoreError) -> ApiError {
    ApiError::Storage(err.0)
}

// ---- entry points called by the JS loader ----

#[wasm_bindgen]
pub fn worker_on_installed() {
    create_menu();
    spawn_local(ensure_refresh_alarm());
}

#[wasm_bindgen]
pub fn worker_on_startup() {
    spawn_local(ensure_refresh_alarm());
}

/// A popup connected. `early` holds the messages the loader buffered before Wasm was ready.
#[wasm_bindgen]
pub fn worker_on_connect(port: Port, early: Array) {
    let sender = port.sender();
    let trusted = port.name() == POPUP_PORT && sender.is_some_and(|s| is_own_page(s.id(), s.url()));
    if !trusted {
        console_warn("wpp-tabs: refused a connection that is not from the extension's popup");
        port.disconnect();
        return;
    }
    let key = with_worker(|w| {
        w.next_popup += 1;
        w.popups.push(Popup {
            key: w.next_popup,
            port: port.clone(),
            tab: None,
        });
        w.next_popup
    });
    let on_message = Closure::<dyn Fn(JsValue)>::new(move |message: JsValue| {
        spawn_local(on_popup_message(key, message));
    });
    let on_disconnect = Closure::<dyn Fn()>::new(move || {
        with_worker(|w| w.popups.retain(|p| p.key != key));
    });
    port.on_message()
        .add_listener(on_message.as_ref().unchecked_ref());
    port.on_disconnect()
        .add_listener(on_disconnect.as_ref().unchecked_ref());
    // The port's listeners live as long as the port; the browser drops them with it.
    on_message.forget();
    on_disconnect.forget();
    for message in early.iter() {
        spawn_local(on_popup_message(key, message));
    }
}

/// One-off requests from the options page; answers with an [`OptionsReply`].
#[wasm_bindgen]
pub async fn worker_on_message(message: JsValue, sender: MessageSender) -> JsValue {
    if !is_own_page(sender.id(), sender.url()) {
        console_warn("wpp-tabs: ignored a message that is not from the extension's pages");
        return JsValue::UNDEFINED;
    }
    let reply = match from_js::<serde_json::Value>(message)
        .map_err(MessageError::Invalid)
        .and_then(decode::<OptionsRequest>)
    {
        Ok(request) => handle_options(request).await,
        Err(err) => OptionsReply::Error {
            message: err.to_string(),
        },
    };
    to_js(&encode(&reply))
}

#[wasm_bindgen]
pub fn worker_on_tab_removed(tab: TabId) {
    spawn_local(async move {
        let record = with_worker(|w| {
            w.shown.remove(&tab);
            w.tabs.remove(&tab)
        })
        .map(|t| t.record);
        let record = match record {
            Some(record) => Some(record),
            None => match store::tab_session(tab).await {
                Ok(Some(id)) => store::record(&id).await.ok().flatten(),
                _ => None,
            },
        };
        // The server session and its token outlive the tab; only the binding goes.
        if let Err(err) = store::unbind_tab(tab).await {
            console_warn(&err.to_string());
        }
        if let Some(mut record) = record {
            record.tab_id = None;
            if let Err(err) = store::save_record(&record).await {
                console_warn(&err.to_string());
            }
        }
    });
}

/// Firefox resets a tab's badge when it navigates; put it back once the page has loaded.
#[wasm_bindgen]
pub fn worker_on_tab_updated(tab: TabId, change: JsValue) {
    let loaded = Reflect::get(&change, &"status".into())
        .ok()
        .and_then(|s| s.as_string())
        .is_some_and(|s| s == "complete");
    if loaded {
        spawn_local(async move {
            if load_tab(tab).await.is_some() {
                show_badge(tab);
            }
        });
    }
}

/// The "Log out this tab's session" menu entry. Exposed to the loader as a promise, so the
/// click's outcome can be awaited from the background context (devtools, tests).
#[wasm_bindgen]
pub async fn worker_on_menu_clicked(info: JsValue, tab: JsValue) {
    let item = Reflect::get(&info, &"menuItemId".into())
        .ok()
        .and_then(|v| v.as_string());
    let tab_id = Reflect::get(&tab, &"id".into())
        .ok()
        .and_then(|v| v.as_f64())
        .map(|v| v as TabId);
    match (item.as_deref(), tab_id) {
        (Some(LOGOUT_MENU_ID), Some(tab)) if tab >= 0 => logout(tab).await,
        _ => console_warn("wpp-tabs: ignored a menu click without a known item and tab"),
    }
}

/// The slow refresh: keeps every bound session's badge current without a popup open.
#[wasm_bindgen]
pub async fn worker_on_alarm(alarm: JsValue) {
    let name = Reflect::get(&alarm, &"name".into())
        .ok()
        .and_then(|v| v.as_string());
    if name.as_deref() != Some(REFRESH_ALARM) {
        return;
    }
    let bound = match store::bound_tabs().await {
        Ok(bound) => bound,
        Err(err) => return console_warn(&err.to_string()),
    };
    for (tab, _) in bound {
        if load_tab(tab).await.is_some() && !with_tab(tab, |t| t.polling).unwrap_or(true) {
            refresh(tab).await;
        }
    }
}

fn create_menu() {
    let properties = object_with("id", &LOGOUT_MENU_ID.into());
    let set = |key: &str, value: JsValue| {
        Reflect::set(&properties, &key.into(), &value).expect("plain object");
    };
    set("title", "Log out this tab's session".into());
    let contexts: Array = ["page", "action"]
        .iter()
        .map(|c| JsValue::from_str(c))
        .collect();
    set("contexts", contexts.into());
    // The callback reads lastError, so a re-install's duplicate ID is not reported as uncaught.
    let done = Closure::once_into_js(|| {
        let _ = Reflect::get(&web_extensions_sys::chrome().runtime(), &"lastError".into());
    });
    if let Err(err) = call_api(&["contextMenus", "create"], &[properties.into(), done]) {
        console_warn(&format!(
            "wpp-tabs: context menu: {}",
            super::browser::js_error_text(&err)
        ));
    }
}

async fn ensure_refresh_alarm() {
    let existing = call_api_async(&["alarms", "get"], &[REFRESH_ALARM.into()]).await;
    if existing.is_ok_and(|a| !a.is_undefined() && !a.is_null()) {
        return;
    }
    let info = object_with("periodInMinutes", &SLOW_REFRESH_MINUTES.into());
    if let Err(err) =
        call_api_async(&["alarms", "create"], &[REFRESH_ALARM.into(), info.into()]).await
    {
        console_warn(&format!(
            "wpp-tabs: alarm: {}",
            super::browser::js_error_text(&err)
        ));
    }
}

// ---- popup requests ----

async fn on_popup_message(key: u32, message: JsValue) {
    let request = match from_js::<serde_json::Value>(message)
        .map_err(MessageError::Invalid)
        .and_then(decode::<PopupRequest>)
    {
        Ok(request) => request,
        Err(err) => return console_warn(&format!("wpp-tabs: popup message refused: {err}")),
    };
    let tab = request.tab_id();
    if let PopupRequest::Subscribe { .. } = request {
        with_worker(|w| {
            if let Some(popup) = w.popups.iter_mut().find(|p| p.key == key) {
                popup.tab = Some(tab);
            }
        });
        return subscribe(tab).await;
    }
    let subscribed = with_worker(|w| w.popups.iter().any(|p| p.key == key && p.tab == Some(tab)));
    if !subscribed {
        return console_warn("wpp-tabs: popup asked about a tab it does not watch");
    }
    match request {
        PopupRequest::Pair { .. } => pair(tab).await,
        PopupRequest::Logout { .. } => logout(tab).await,
        PopupRequest::Subscribe { .. } => {}
    }
}

/// A popup opened for `tab`: give the tab its session ID, show its state, then start pairing
/// if it never started or refresh it from the server.
async fn subscribe(tab: TabId) {
    if call_api_async(&["tabs", "get"], &[tab.into()])
        .await
        .is_err()
    {
        return post_to_popups(tab, &TabView::no_such_tab(tab));
    }
    let settings = load_settings().await;
    let server = settings
        .as_ref()
        .map_or_else(|| Settings::default().server_url, |s| s.server_url.clone());
    if let Err(err) = ensure_tab(tab, &server).await {
        console_warn(&format!("wpp-tabs: {err}"));
    }
    push(tab);
    let (phase, has_error) = with_tab(tab, |t| (t.state.phase(now_ms()), t.state.error.is_some()))
        .unwrap_or((Phase::NotStarted, true));
    if phase == Phase::NotStarted && !has_error && settings.is_some() {
        pair(tab).await;
    } else if phase != Phase::NotStarted {
        refresh(tab).await;
        ensure_polling(tab);
    }
}

/// The complete settings (URL and secret), or `None` after flagging them as missing.
async fn load_settings() -> Option<Settings> {
    let settings = match store::settings().await {
        Ok(settings) => settings.filter(|s| s.secret_key.is_some()),
        Err(err) => {
            console_warn(&err.to_string());
            None
        }
    };
    with_worker(|w| w.settings_missing = settings.is_none());
    settings
}

/// The tab's session from memory or storage, cached; `None` if the tab has none.
async fn load_tab(tab: TabId) -> Option<SessionId> {
    if let Some(id) = with_tab(tab, |t| t.record.id.clone()) {
        return Some(id);
    }
    let id = store::tab_session(tab).await.ok().flatten()?;
    let record = match store::record(&id).await {
        Ok(Some(record)) => record,
        // The binding survived without its record: rebuild a minimal one.
        _ => new_record(id.clone(), tab, Settings::default().server_url),
    };
    // Another task may have cached it while this one awaited storage.
    with_worker(|w| {
        w.tabs.entry(tab).or_insert_with(|| TabSession {
            state: SessionState::restored(record.last_status),
            record,
            polling: false,
        });
    });
    Some(id)
}

/// Assigns the tab a fresh session ID unless it already has one.
async fn ensure_tab(tab: TabId, server: &ServerUrl) -> Result<SessionId, store::StoreError> {
    if let Some(id) = load_tab(tab).await {
        return Ok(id);
    }
    let fresh = new_record(
        SessionId::generate(now_ms() as u64, random_u64()),
        tab,
        server.clone(),
    );
    // Check and insert without an await in between, so two requests cannot assign two IDs.
    let (record, created) = with_worker(|w| match w.tabs.get(&tab) {
        Some(existing) => (existing.record.clone(), false),
        None => {
            w.tabs.insert(
                tab,
                TabSession {
                    record: fresh.clone(),
                    state: SessionState::default(),
                    polling: false,
                },
            );
            (fresh, true)
        }
    });
    if created {
        store::save_record(&record).await?;
        store::bind_tab(tab, &record.id).await?;
    }
    Ok(record.id)
}

fn new_record(id: SessionId, tab: TabId, server_url: ServerUrl) -> SessionRecord {
    SessionRecord {
        id,
        tab_id: Some(tab),
        server_url,
        created_at: now_ms(),
        last_status: None,
    }
}

/// Starts pairing, refreshes an expired QR, or restarts a stuck session.
async fn pair(tab: TabId) {
    let Some(settings) = load_settings().await else {
        return push(tab);
    };
    if let Err(err) = ensure_tab(tab, &settings.server_url).await {
        console_warn(&format!("wpp-tabs: {err}"));
        return;
    }
    let claimed = with_tab(tab, |t| !std::mem::replace(&mut t.state.busy, true)).unwrap_or(false);
    if !claimed {
        return;
    }
    push(tab);
    let result = pair_steps(tab, &settings).await;
    with_tab(tab, |t| {
        t.state.busy = false;
        if let Err(err) = result {
            t.state.fail(err);
        }
    });
    save_status(tab).await;
    push(tab);
    ensure_polling(tab);
}

async fn pair_steps(tab: TabId, settings: &Settings) -> Result<(), ApiError> {
    let now = now_ms();
    let (id, server, fresh_token, stuck) = with_tab(tab, |t| {
        let phase = t.state.phase(now);
        // A session that never started follows the server URL now in the settings.
        if phase == Phase::NotStarted {
            t.record.server_url = settings.server_url.clone();
        }
        (
            t.record.id.clone(),
            t.record.server_url.clone(),
            t.state.needs_new_token(),
            phase == Phase::Stuck,
        )
    })
    .ok_or(ApiError::Storage("the tab's session vanished".into()))?;
    let stored = store::token(&id).await.map_err(storage_error)?;
    let token = match stored {
        Some(token) if !fresh_token => token,
        _ => {
            let secret = settings.secret_key.as_ref().ok_or(ApiError::WrongSecret)?;
            mint_token(&server, &id, secret).await?
        }
    };
    if stuck {
        let reply = http::send(&ApiRequest::close_session(&server, &id, &token)).await?;
        api::parse_close_reply(&reply)?;
    }
    with_tab(tab, |t| t.state.starting(now_ms()));
    push(tab);
    let reply = http::send(&ApiRequest::start_session(&server, &id, &token)).await?;
    let status = api::parse_status_reply(&reply)?;
    with_tab(tab, |t| t.state.observe(status, now_ms()));
    Ok(())
}

/// A fresh token for a session whose token was refused, with the secret in the settings.
async fn renew_token(server: &ServerUrl, id: &SessionId) -> Result<Token, ApiError> {
    let secret = store::settings()
        .await
        .map_err(storage_error)?
        .and_then(|s| s.secret_key)
        .ok_or(ApiError::Unauthorized)?;
    mint_token(server, id, &secret).await
}

async fn mint_token(
    server: &ServerUrl,
    id: &SessionId,
    secret: &SecretKey,
) -> Result<Token, ApiError> {
    let reply = http::send(&ApiRequest::generate_token(server, id, secret)).await?;
    let token = api::parse_token_reply(&reply, id)?;
    store::save_token(id, &token).await.map_err(storage_error)?;
    Ok(token)
}

/// Logs the tab's session out on the server, then forgets its three keys. If the server
/// cannot be told, nothing is forgotten: the user can try again.
async fn logout(tab: TabId) {
    let Some(id) = load_tab(tab).await else {
        return push(tab);
    };
    let claimed = with_tab(tab, |t| !std::mem::replace(&mut t.state.busy, true)).unwrap_or(false);
    if !claimed {
        return;
    }
    push(tab);
    let server = with_tab(tab, |t| t.record.server_url.clone());
    let result = match server {
        Some(server) => logout_steps(&id, &server).await,
        None => Ok(()),
    };
    let result = match result {
        Ok(()) => store::forget_session(tab, &id).await.map_err(storage_error),
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => {
            with_worker(|w| w.tabs.remove(&tab));
        }
        Err(err) => {
            with_tab(tab, |t| {
                t.state.busy = false;
                t.state.fail(err);
            });
        }
    }
    push(tab);
}

async fn logout_steps(id: &SessionId, server: &ServerUrl) -> Result<(), ApiError> {
    let Some(token) = store::token(id).await.map_err(storage_error)? else {
        // No token was ever minted, so the server never heard of this session.
        return Ok(());
    };
    match logout_with(id, server, &token).await {
        Err(ApiError::Unauthorized) => {
            logout_with(id, server, &renew_token(server, id).await?).await
        }
        other => other,
    }
}

async fn logout_with(id: &SessionId, server: &ServerUrl, token: &Token) -> Result<(), ApiError> {
    let reply = http::send(&ApiRequest::logout_session(server, id, token)).await?;
    match api::parse_logout_reply(&reply)? {
        LogoutOutcome::LoggedOut => Ok(()),
        LogoutOutcome::NotConnected => {
            let reply = http::send(&ApiRequest::close_session(server, id, token)).await?;
            api::parse_close_reply(&reply)
        }
    }
}

// ---- status refresh ----

/// Polls fast while a popup watches a session that is pairing; stops by itself otherwise.
fn ensure_polling(tab: TabId) {
    let watched = has_popup(tab);
    let start = with_tab(tab, |t| {
        let wanted = watched && t.state.poll_delay_ms(now_ms()).is_some();
        let start = wanted && !t.polling;
        t.polling |= start;
        start
    })
    .unwrap_or(false);
    if start {
        spawn_local(poll_loop(tab));
    }
}

async fn poll_loop(tab: TabId) {
    loop {
        let delay = with_tab(tab, |t| t.state.poll_delay_ms(now_ms())).flatten();
        let Some(delay) = delay.filter(|_| has_popup(tab)) else {
            break;
        };
        TimeoutFuture::new(delay).await;
        if !has_popup(tab) {
            break;
        }
        match with_tab(tab, |t| t.state.busy) {
            Some(true) => continue,
            Some(false) => refresh(tab).await,
            None => return,
        }
    }
    with_tab(tab, |t| t.polling = false);
}

/// One `status-session` for the tab's session; pushes the result if anything changed.
async fn refresh(tab: TabId) {
    let Some((id, server, renew)) = with_tab(tab, |t| {
        (
            t.record.id.clone(),
            t.record.server_url.clone(),
            t.state.needs_new_token(),
        )
    }) else {
        return;
    };
    let token = match store::token(&id).await {
        Ok(Some(token)) => token,
        Ok(None) => return,
        Err(err) => return console_warn(&err.to_string()),
    };
    let result = poll_status(&server, &id, token, renew).await;
    let observed = with_tab(tab, |t| match result {
        Ok(status) => t.state.observe(status, now_ms()),
        Err(err) => t.state.fail(err),
    });
    if observed.is_none() {
        return;
    }
    save_status(tab).await;
    let view = view_of(tab);
    if with_worker(|w| w.shown.get(&tab) != Some(&view)) {
        push_view(tab, view);
    }
}

/// `status-session` with the stored token, or with a fresh one when the last was refused:
/// generate-token has no side effect, so the session recovers once the server accepts it.
async fn poll_status(
    server: &ServerUrl,
    id: &SessionId,
    token: Token,
    renew: bool,
) -> Result<api::StatusReply, ApiError> {
    let token = match renew {
        true => renew_token(server, id).await?,
        false => token,
    };
    let reply = http::send(&ApiRequest::status_session(server, id, &token)).await?;
    api::parse_status_reply(&reply)
}

/// Writes the last status into the session record when it changed.
async fn save_status(tab: TabId) {
    let record = with_tab(tab, |t| {
        (t.record.last_status != t.state.status).then(|| {
            t.record.last_status = t.state.status;
            t.record.clone()
        })
    })
    .flatten();
    if let Some(record) = record {
        if let Err(err) = store::save_record(&record).await {
            console_warn(&err.to_string());
        }
    }
}

// ---- pushing state out ----

fn view_of(tab: TabId) -> TabView {
    let now = now_ms();
    with_worker(|w| {
        let session = w.tabs.get(&tab);
        let id = session.map(|t| &t.record.id);
        let state = session.map(|t| &t.state);
        let not_started = state.is_none_or(|s| s.phase(now) == Phase::NotStarted);
        if w.settings_missing && not_started {
            return TabView::needs_settings(tab, id);
        }
        state.cloned().unwrap_or_default().view(tab, id, now)
    })
}

/// Sends the tab's view to every popup watching it and updates its badge.
fn push(tab: TabId) {
    push_view(tab, view_of(tab));
}

fn push_view(tab: TabId, view: TabView) {
    post_to_popups(tab, &view);
    with_worker(|w| w.shown.insert(tab, view));
    show_badge(tab);
}

fn post_to_popups(tab: TabId, view: &TabView) {
    let message = to_js(&encode(&WorkerPush::State { view: view.clone() }));
    let ports: Vec<Port> = with_worker(|w| {
        w.popups
            .iter()
            .filter(|p| p.tab == Some(tab))
            .map(|p| p.port.clone())
            .collect()
    });
    for port in ports {
        // A popup that closed a moment ago throws here; its disconnect handler cleans up.
        let _ = try_post_message(&port, &message);
    }
}

/// `port.postMessage`, returning the throw of a port whose popup already closed.
fn try_post_message(port: &Port, message: &JsValue) -> Result<JsValue, JsValue> {
    let post: js_sys::Function = Reflect::get(port, &"postMessage".into())?.dyn_into()?;
    post.call1(port, message)
}

fn show_badge(tab: TabId) {
    let now = now_ms();
    let badge = with_worker(|w| w.tabs.get(&tab).map(|t| t.state.badge(now)))
        .unwrap_or_else(|| SessionState::default().badge(now));
    let text = object_with("tabId", &tab.into());
    Reflect::set(&text, &"text".into(), &badge.text.into()).expect("plain object");
    let color = object_with("tabId", &tab.into());
    Reflect::set(&color, &"color".into(), &badge.color.into()).expect("plain object");
    spawn_local(async move {
        // The tab may have closed meanwhile; a badge for it no longer matters.
        let _ = call_api_async(&["action", "setBadgeText"], &[text.into()]).await;
        let _ = call_api_async(&["action", "setBadgeBackgroundColor"], &[color.into()]).await;
    });
}

// ---- options page ----

async fn handle_options(request: OptionsRequest) -> OptionsReply {
    match request {
        OptionsRequest::GetSettings => {
            let settings = store::settings().await.ok().flatten();
            let has_secret = settings.as_ref().is_some_and(|s| s.secret_key.is_some());
            let settings = settings.unwrap_or_default();
            OptionsReply::Settings {
                server_url: settings.server_url,
                remember_secret: settings.remember_secret,
                has_secret,
            }
        }
        OptionsRequest::SaveSettings {
            server_url,
            secret_key,
            remember_secret,
        } => {
            let saved_secret = store::settings()
                .await
                .ok()
                .flatten()
                .and_then(|s| s.secret_key);
            let Some(secret_key) = secret_key.or(saved_secret) else {
                return OptionsReply::Error {
                    message: "Enter the server's secret key.".into(),
                };
            };
            let settings = Settings {
                server_url,
                remember_secret,
                secret_key: Some(secret_key),
            };
            match store::save_settings(&settings).await {
                Ok(()) => {
                    with_worker(|w| w.settings_missing = false);
                    OptionsReply::Saved
                }
                Err(err) => OptionsReply::Error {
                    message: err.to_string(),
                },
            }
        }
        OptionsRequest::TestConnection {
            server_url,
            secret_key,
        } => {
            let secret = match secret_key {
                Some(secret) => Some(secret),
                None => store::settings()
                    .await
                    .ok()
                    .flatten()
                    .and_then(|s| s.secret_key),
            };
            test_connection(&server_url, secret.as_ref()).await
        }
    }
}

async fn test_connection(server: &ServerUrl, secret: Option<&SecretKey>) -> OptionsReply {
    let fail = |message: String| OptionsReply::Connection { ok: false, message };
    let health = match http::send(&ApiRequest::healthz(server)).await {
        Ok(reply) => api::parse_healthz_reply(&reply),
        Err(err) => Err(err),
    };
    if let Err(err) = health {
        return fail(err.to_string());
    }
    let Some(secret) = secret else {
        return fail("The server answers. Enter the secret key to check it too.".into());
    };
    let probe = match http::send(&ApiRequest::probe_secret(server, secret)).await {
        Ok(reply) => api::parse_probe_reply(&reply),
        Err(err) => Err(err),
    };
    match probe {
        Ok(()) => OptionsReply::Connection {
            ok: true,
            message: "Connected: the server answers and accepts the secret key.".into(),
        },
        Err(ApiError::WrongSecret) => {
            fail("The server answers, but refused the secret key.".into())
        }
        Err(err) => fail(err.to_string()),
    }
}
