//! The browser as the core's [`Shell`]: `fetch`, `chrome.storage`, ports, badges, timers.

use super::{ports, sockets};
use crate::core::messages::{encode, WorkerPush};
use crate::core::push::SocketKey;
use crate::core::server::{HttpServer, Server};
use crate::core::session::{Badge, TabTitle};
use crate::core::settings::ServerUrl;
use crate::core::storage::TabId;
use crate::core::worker::{Notice, PortKey, Shell};
use crate::shell::browser::{
    action, console_warn, js_error_text, notifications, now_ms, object, random_u64, runtime, to_js,
    try_post_message,
};
use crate::shell::crypto::WebCrypto;
use crate::shell::http::Fetch;
use crate::shell::i18n::{msg, tr};
use crate::shell::store::BrowserStorage;
use gloo_timers::future::TimeoutFuture;
use std::future::Future;
use std::pin::Pin;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_extensions_sys::chrome;

pub struct BrowserShell;

impl Shell for BrowserShell {
    type Storage = BrowserStorage;
    type Crypto = WebCrypto;

    fn server(&self, url: ServerUrl) -> impl Server + '_ {
        HttpServer {
            url,
            transport: &Fetch,
        }
    }

    fn storage(&self) -> &BrowserStorage {
        &BrowserStorage
    }

    fn crypto(&self) -> &WebCrypto {
        &WebCrypto
    }

    fn now_ms(&self) -> f64 {
        now_ms()
    }

    fn random_u64(&self) -> u64 {
        random_u64()
    }

    async fn sleep(&self, ms: u32) {
        TimeoutFuture::new(ms).await;
    }

    async fn tab_exists(&self, tab: TabId) -> bool {
        chrome().tabs().get(tab.get()).await.is_ok()
    }

    async fn open_tab(&self) -> Option<TabId> {
        let info = object(&[("active", false.into())]);
        let tab = chrome().tabs().create(&info).await.ok()?;
        let tab: web_extensions_sys::Tab = tab.unchecked_into();
        TabId::new(tab.id()?.into())
    }

    fn focus_tab(&self, tab: TabId) {
        spawn_local(async move {
            let tabs = chrome().tabs();
            let active = object(&[("active", true.into())]);
            let Ok(updated) = tabs.update(Some(tab.get()), &active).await else {
                return;
            };
            let updated: web_extensions_sys::Tab = updated.unchecked_into();
            let focused = object(&[("focused", true.into())]);
            let _ = chrome()
                .windows()
                .update(updated.window_id(), &focused)
                .await;
        });
    }

    fn set_title(&self, tab: TabId, title: &TabTitle) {
        let title = title.render(tr);
        let details = object(&[("tabId", tab.get().into()), ("title", title.into())]);
        spawn_local(async move {
            // The tab may have closed meanwhile.
            let _ = action().set_title(&details).await;
        });
    }

    fn notify(&self, notice: &Notice) {
        let options = object(&[
            ("type", "basic".into()),
            ("iconUrl", runtime().get_url("icons/icon-128.png").into()),
            ("title", tr(&notice.title).into()),
            ("message", tr(&notice.message).into()),
        ]);
        let id = notice.id.clone();
        spawn_local(async move {
            if let Err(err) = notifications().create_notification(&id, &options).await {
                console_warn(&format!("wpp-tabs: notification: {}", js_error_text(&err)));
            }
        });
    }

    fn open_sessions_page(&self) {
        let info = object(&[("url", runtime().get_url("sessions.html").into())]);
        spawn_local(async move {
            if let Err(err) = chrome().tabs().create(&info).await {
                console_warn(&format!("wpp-tabs: Sessions page: {}", js_error_text(&err)));
            }
        });
    }

    fn post(&self, port: PortKey, push: &WorkerPush) {
        if let Some(port) = ports::get(port) {
            // A popup that closed a moment ago throws here; its disconnect handler cleans up.
            let _ = try_post_message(&port, &to_js(&encode(push)));
        }
    }

    fn set_badge(&self, tab: TabId, badge: &Badge) {
        let tab_id = || ("tabId", tab.get().into());
        let words = badge.text.map(msg).unwrap_or_default();
        let text = object(&[tab_id(), ("text", words.into())]);
        let color = object(&[tab_id(), ("color", badge.color.into())]);
        spawn_local(async move {
            // The tab may have closed meanwhile; a badge for it no longer matters.
            let action = action();
            let _ = action.set_badge_text(&text).await;
            let _ = action.set_badge_background_color(&color).await;
        });
    }

    fn confirm_logout(&self, tab: TabId) {
        let url = runtime().get_url(&format!("popup.html?tab={tab}&confirm=logout"));
        let info = object(&[
            ("url", url.into()),
            ("type", "popup".into()),
            ("width", 340.into()),
            ("height", 480.into()),
        ]);
        spawn_local(async move {
            if let Err(err) = chrome().windows().create(&info).await {
                console_warn(&format!(
                    "wpp-tabs: confirmation window: {}",
                    js_error_text(&err)
                ));
            }
        });
    }

    fn warn(&self, message: &str) {
        console_warn(message);
    }

    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()>>>) {
        spawn_local(task);
    }

    fn socket_open(&self, key: SocketKey, url: &str) {
        sockets::open(key, url);
    }

    fn socket_send(&self, key: SocketKey, text: &str) {
        sockets::send(key, text);
    }

    fn socket_close(&self, key: SocketKey) {
        sockets::close(key);
    }
}
