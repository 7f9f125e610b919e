//! One scenario's world: a fresh browser with the extension, its own wpp-sim, the tabs under
//! test and their popups, and the typed popup snapshot every check reads.

use std::collections::HashMap;
use std::time::Duration;

use fantoccini::wd::WindowHandle;
use serde::Deserialize;
use serde_json::{json, Value};
use wpp_tabs::core::messages::PROTOCOL_VERSION;
use wpp_tabs::core::text::Text;

use crate::harness::{ensure, wait_for, wd, Browser, Build, Kind, Look, Result, WAIT};
use crate::sim::Sim;

/// A worker reply's `message` (a catalogue key and its values), in English; empty when it
/// has none.
pub fn english_message(reply: &Value) -> String {
    serde_json::from_value::<Text>(reply["message"].clone())
        .map(|t| t.english())
        .unwrap_or_default()
}

/// Everything a check reads from a popup, in one round trip.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PopupSnapshot {
    /// `body[data-source]`: `paint` (popup-port.js's paint of the worker's first state, before the
    /// module loaded), `cache` (the module's paint from storage) or `worker` (the module's
    /// render of the live view).
    pub source: Option<String>,
    /// `#session-id[title]`: the full session ID.
    pub session_id: Option<String>,
    /// `#status[data-status]`: the raw server status, or `NONE`.
    pub status: Option<String>,
    /// `#status[data-phase]`.
    pub phase: Option<String>,
    pub status_text: String,
    pub qr_visible: bool,
    pub qr_hidden_attr: bool,
    pub qr_src: String,
    pub error_visible: bool,
    pub error_text: String,
    /// `#error[data-error]`.
    pub error_code: Option<String>,
    pub options_link_visible: bool,
    pub pair_visible: bool,
    pub pair_enabled: bool,
    pub pair_text: String,
}

const POPUP_SNAPSHOT: &str = r#"
const q = s => document.querySelector(s);
const vis = e => !!e && !e.hidden && !e.hasAttribute('hidden')
  && getComputedStyle(e).display !== 'none' && getComputedStyle(e).visibility !== 'hidden';
const text = e => e ? e.textContent.trim() : '';
const id = q('#session-id'), st = q('#status'), qr = q('#qr'), er = q('#error'), pair = q('#pair');
return {
  source: document.body ? document.body.getAttribute('data-source') : null,
  sessionId: id ? id.getAttribute('title') : null,
  status: st ? st.getAttribute('data-status') : null,
  phase: st ? st.getAttribute('data-phase') : null,
  statusText: text(st),
  qrVisible: vis(qr),
  qrHiddenAttr: !!qr && qr.hasAttribute('hidden'),
  qrSrc: qr ? (qr.getAttribute('src') || '') : '',
  errorVisible: vis(er),
  errorText: text(er),
  errorCode: er ? er.getAttribute('data-error') : null,
  optionsLinkVisible: vis(q('#open-options')),
  pairVisible: vis(pair),
  pairEnabled: !!pair && !pair.disabled,
  pairText: text(pair),
};
"#;

impl PopupSnapshot {
    pub fn status(&self) -> &str {
        self.status.as_deref().unwrap_or_default()
    }

    pub fn phase(&self) -> &str {
        self.phase.as_deref().unwrap_or_default()
    }

    pub fn id(&self) -> &str {
        self.session_id.as_deref().unwrap_or_default()
    }

    /// QRCODE with the `#qr` image shown (no `hidden`) holding a PNG data URL.
    pub fn qr_shown(&self) -> bool {
        self.status() == "QRCODE"
            && self.qr_visible
            && !self.qr_hidden_attr
            && self.qr_src.starts_with("data:image/png;base64,")
            && self.qr_src.len() > 100
    }

    /// `#pair` can be pressed.
    pub fn can_pair(&self) -> bool {
        self.pair_visible && self.pair_enabled
    }

    /// A short, printable form.
    pub fn brief(&self) -> String {
        let src = &self.qr_src[..self.qr_src.len().min(30)];
        format!(
            "status={:?} phase={:?} ({:?}) id={:?} source={:?} qrVisible={} qrSrc={src:?}..({} B) \
             error={}{:?} pair={}{:?}",
            self.status(),
            self.phase(),
            self.status_text,
            self.session_id,
            self.source,
            self.qr_visible,
            self.qr_src.len(),
            if self.error_visible {
                "visible "
            } else {
                "hidden "
            },
            self.error_text,
            if self.pair_visible {
                "visible "
            } else {
                "hidden "
            },
            self.pair_text,
        )
    }
}

/// `session_<time>_<random>`, lowercase base-36 parts, at most 32 characters.
pub fn is_session_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("session_") else {
        return false;
    };
    let parts: Vec<_> = rest.split('_').collect();
    s.len() <= 32
        && parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        })
}

/// A message a person can act on (not empty, not a raw JS/serde artefact).
pub fn clear_message(text: &str) -> Result<()> {
    let t = text.trim();
    ensure(
        t.len() >= 8,
        format!("#error text too short to be clear: {t:?}"),
    )?;
    for junk in ["undefined", "[object Object]", "JsValue(", "null"] {
        ensure(
            !t.contains(junk),
            format!("#error text looks like a raw artefact ({junk}): {t:?}"),
        )?;
    }
    Ok(())
}

pub struct Tab {
    pub id: i64,
    pub session: Option<String>,
    /// The WebDriver window showing `popup.html?tab=<id>`.
    pub popup: Option<WindowHandle>,
}

/// `(wpp_tab_<tab>` and `wpp_token_<id>` from storage.session, and the session's entry in
/// storage.local's `wpp_sessions` index).
pub type Keys = (Value, Value, Value);

pub struct Ctx {
    pub b: Browser,
    pub sim: Sim,
    /// The control window (the options page) used for storage reads and tab creation.
    pub main: WindowHandle,
    pub tabs: HashMap<&'static str, Tab>,
}

impl Ctx {
    /// A fresh browser with the test build, and a fresh sim with fast timers.
    pub async fn new(kind: Kind) -> Result<Ctx> {
        Ctx::with_sim(kind, Sim::start().await?).await
    }

    pub async fn with_sim(kind: Kind, sim: Sim) -> Result<Ctx> {
        Ctx::with_build(kind, sim, &Build::test()?).await
    }

    /// The world around a browser already running (a restarted one): its current window
    /// becomes the control window, on the options page; no tab is known yet.
    pub async fn with_browser(b: Browser, sim: Sim) -> Result<Ctx> {
        b.open("options.html").await?;
        options_page_ready(&b).await?;
        let main = b.wd.window().await.map_err(wd("current window"))?;
        Ok(Ctx {
            b,
            sim,
            main,
            tabs: HashMap::new(),
        })
    }

    /// A fresh browser that looks as `look` says (language, dark), and a fresh sim.
    pub async fn with_look(kind: Kind, look: &Look<'_>) -> Result<Ctx> {
        let b = Browser::launch_in(kind, &Build::test()?, look)
            .await
            .map_err(|e| format!("cannot launch {kind} ({look:?}) with the extension: {e}"))?;
        Ctx::with_browser(b, Sim::start().await?).await
    }

    pub async fn with_build(kind: Kind, sim: Sim, build: &Build) -> Result<Ctx> {
        let b = Browser::launch(kind, build)
            .await
            .map_err(|e| format!("cannot launch {kind} with the extension: {e}"))?;
        Ctx::with_browser(b, sim).await
    }

    pub async fn to_main(&self) -> Result<()> {
        self.b
            .switch_to(&self.main, "switch to the control window")
            .await
    }

    /// Runs an async script in the control window.
    pub async fn eval(&self, body: &str, args: Vec<Value>) -> Result<Value> {
        self.to_main().await?;
        self.b.eval(body, args).await
    }

    /// `{session, local, sync}`: the extension's storage areas.
    pub async fn storage(&self) -> Result<Value> {
        self.eval(
            "return { session: await api.storage.session.get(null), local: await api.storage.local.get(null),\
             sync: await api.storage.sync.get(null).catch(e => ({ __error: String(e) })) };",
            vec![],
        )
        .await
    }

    /// `storage.local`'s session index.
    pub async fn index(&self) -> Result<Value> {
        Ok(self.storage().await?["local"]["wpp_sessions"].clone())
    }

    /// Waits until `storage.local`'s session index satisfies `pred`; returns it.
    pub async fn wait_index(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        wait_for(&format!("the session index: {what}"), WAIT, || async {
            let i = self.index().await?;
            Ok(if pred(&i) { Ok(i) } else { Err(i.to_string()) })
        })
        .await
    }

    /// One options request over `runtime.sendMessage` (protocol version from the crate).
    pub async fn options_request(&self, mut request: Value) -> Result<Value> {
        request["v"] = json!(PROTOCOL_VERSION);
        self.eval(
            "return await api.runtime.sendMessage(args[0]);",
            vec![request],
        )
        .await
    }

    /// The fast path to settings: the options page's own `saveServer` request for the default
    /// server, `s1`, sent from the control page (the worker saves and updates what it caches),
    /// remember off.
    pub async fn settings_fast(&self) -> Result<()> {
        let reply = self
            .options_request(json!({
                "type": "saveServer",
                "id": "s1",
                "name": "My server",
                "serverUrl": self.sim.server_url(),
                "secretKey": self.sim.secret,
                "rememberSecret": false,
            }))
            .await?;
        ensure(
            reply["type"] == "saved",
            format!("saveServer answered {reply}"),
        )
    }

    /// Creates a background browser tab on a sim page; returns its tabs-API id.
    pub async fn create_tab(&mut self, name: &'static str) -> Result<i64> {
        let url = self.sim.page(name);
        let id = self
            .eval(
                "return (await api.tabs.create({ url: args[0], active: false })).id;",
                vec![json!(url)],
            )
            .await?
            .as_i64()
            .ok_or("tabs.create gave no id")?;
        self.tabs.insert(
            name,
            Tab {
                id,
                session: None,
                popup: None,
            },
        );
        Ok(id)
    }

    pub fn tab(&self, name: &str) -> Result<&Tab> {
        self.tabs
            .get(name)
            .ok_or_else(|| format!("tab {name} was never created"))
    }

    pub fn tab_id(&self, name: &str) -> Result<i64> {
        Ok(self.tab(name)?.id)
    }

    pub fn session_of(&self, name: &str) -> Result<String> {
        self.tab(name)?
            .session
            .clone()
            .ok_or_else(|| format!("tab {name} has no session ID (an earlier step failed)"))
    }

    /// Opens (or reloads) the popup for tab `name` in its own window; leaves it current.
    pub async fn open_popup(&mut self, name: &str) -> Result<()> {
        let tab_id = self.tab_id(name)?;
        let handle = match self.tab(name)?.popup.clone() {
            Some(h) => h,
            None => {
                let h = self.b.new_window().await?;
                self.tabs.get_mut(name).unwrap().popup = Some(h.clone());
                h
            }
        };
        self.b.switch_to(&handle, "switch to the popup").await?;
        self.b.open(&format!("popup.html?tab={tab_id}")).await
    }

    /// Switches to tab `name`'s popup window (leaves it current).
    pub async fn to_popup(&self, name: &str) -> Result<()> {
        let h = self
            .tab(name)?
            .popup
            .clone()
            .ok_or_else(|| format!("no popup open for {name}"))?;
        self.b.switch_to(&h, "switch to the popup").await
    }

    /// Tab `name`'s popup state, as its module rendered it: while only popup-port.js's paint of
    /// the first state is there (`data-source=paint`, the module still loading, its controls
    /// not yet shown), the read waits for the module.
    pub async fn popup(&self, name: &str) -> Result<PopupSnapshot> {
        self.to_popup(name).await?;
        wait_for(
            &format!("popup {name}: its module rendering"),
            WAIT,
            || async {
                let s = self.popup_as_shown().await?;
                Ok(match s.source.as_deref() {
                    Some("paint") => Err(s.brief()),
                    _ => Ok(s),
                })
            },
        )
        .await
    }

    /// The current window's popup state as it is, popup-port.js's paint included.
    pub async fn popup_as_shown(&self) -> Result<PopupSnapshot> {
        let v = self.b.execute(POPUP_SNAPSHOT, vec![]).await?;
        serde_json::from_value(v.clone()).map_err(|e| format!("popup snapshot {v}: {e}"))
    }

    pub async fn wait_popup(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&PopupSnapshot) -> bool,
    ) -> Result<PopupSnapshot> {
        self.wait_popup_within(name, what, WAIT, pred).await
    }

    pub async fn wait_popup_within(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&PopupSnapshot) -> bool,
    ) -> Result<PopupSnapshot> {
        wait_for(&format!("popup {name}: {what}"), timeout, || async {
            let s = self.popup(name).await?;
            Ok(if pred(&s) { Ok(s) } else { Err(s.brief()) })
        })
        .await
    }

    /// Clicks `css` in tab `name`'s popup once it is shown and enabled (a click that loses a
    /// race with a re-render is retried while the element shows again).
    pub async fn click_in_popup(&self, name: &str, css: &str) -> Result<()> {
        self.to_popup(name).await?;
        let b = &self.b;
        wait_for(
            &format!("popup {name}: {css} shown, enabled and clicked"),
            WAIT,
            || async {
                let v = b
                    .execute(
                        "const e = document.querySelector(arguments[0]);\
                     return !!e && !e.hidden && !e.disabled && getComputedStyle(e).display !== 'none';",
                        vec![json!(css)],
                    )
                    .await?;
                if v != json!(true) {
                    return Ok(Err(format!("{css} hidden/disabled/absent")));
                }
                Ok(b.click(css).await)
            },
        )
        .await
    }

    /// Tab `name` paired (as [`Ctx::paired_tab`]) with the server's sockets refused, so its
    /// popup polls: where a fault in the status checks shows. Returns its session ID.
    pub async fn paired_tab_polling(&mut self, name: &'static str) -> Result<String> {
        self.sim.handle().drop_sockets(true);
        self.paired_tab(name).await
    }

    /// Every status check of session `id` fails (HTTP 500) until the faults are cleared;
    /// returns once tab `name`'s popup shows the error.
    pub async fn status_checks_fail(&self, name: &str, id: &str) -> Result<PopupSnapshot> {
        self.sim
            .fault(
                json!({"route": "status-session", "session": id, "kind": "http500", "count": 1000}),
            )
            .await?;
        self.wait_popup(name, "an error", |s| s.error_visible).await
    }

    /// Opens the options page in the current window, once it is ready (see
    /// [`options_page_ready`]).
    pub async fn open_options_page(&self) -> Result<()> {
        self.b.open("options.html").await?;
        options_page_ready(&self.b).await
    }

    /// Types `text` into the field `css` of the current page, replacing what it held.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let e = self.b.find(css).await?;
        e.clear().await.map_err(|e| format!("clear {css}: {e}"))?;
        e.send_keys(text)
            .await
            .map_err(|e| format!("type into {css}: {e}"))
    }

    /// Chooses the option `value` of the `<select>` `css` in the current page.
    pub async fn choose(&self, css: &str, value: &str) -> Result<()> {
        self.b
            .find(css)
            .await?
            .select_by_value(value)
            .await
            .map_err(|e| format!("choose {value} in {css}: {e}"))
    }

    /// Clicks the options page's `button` and waits for its outcome in `#options-status`:
    /// `(data-result, text)`. An earlier outcome is cleared first.
    pub async fn press(&self, button: &str) -> Result<(String, String)> {
        self.press_for(button, "#options-status").await
    }

    /// Clicks `button` and waits for its outcome in the element `status`: `(data-result,
    /// text)`. An earlier outcome is cleared first.
    pub async fn press_for(&self, button: &str, status: &str) -> Result<(String, String)> {
        self.b
            .execute(
                &format!("document.querySelector('{status}').removeAttribute('data-result')"),
                vec![],
            )
            .await?;
        self.wait_true(
            &format!("{button} enabled"),
            &format!("return !document.querySelector('{button}').matches(':disabled');"),
        )
        .await?;
        self.b.click(button).await?;
        self.result_in(status, button, |_| true).await
    }

    /// Types `url` and `secret` into the options page's form and saves it; fails unless the
    /// page reports success. `what` names the server in an error.
    pub async fn save_server_on_page(&self, url: &str, secret: &str, what: &str) -> Result<()> {
        self.type_into("#server-url", url).await?;
        self.type_into("#secret-key", secret).await?;
        let saved = self.press("#save").await?;
        ensure(saved.0 == "ok", format!("save {what}: {saved:?}"))
    }

    /// The options page's result after `button`, `(data-result, text)`, once `data-result`
    /// is set to a value `accept` takes.
    pub async fn options_result(
        &self,
        button: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Result<(String, String)> {
        self.result_in("#options-status", button, accept).await
    }

    /// The result in the element `status` after `button`, `(data-result, text)`, once
    /// `data-result` is set to a value `accept` takes.
    pub async fn result_in(
        &self,
        status: &str,
        button: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Result<(String, String)> {
        let b = &self.b;
        let script = format!(
            "const e = document.querySelector('{status}');\
             return e && [e.getAttribute('data-result'), e.textContent.trim()];"
        );
        wait_for(
            &format!("{status}[data-result] after {button}"),
            WAIT,
            || async {
                let v = b.execute(&script, vec![]).await?;
                Ok(match v[0].as_str().filter(|r| accept(r)) {
                    Some(r) => Ok((r.to_string(), v[1].as_str().unwrap_or_default().to_string())),
                    None => Err(v.to_string()),
                })
            },
        )
        .await
    }

    /// Waits until `script` (run in the current page) returns `true`.
    pub async fn wait_true(&self, what: &str, script: &str) -> Result<()> {
        wait_true_in(&self.b, what, script).await
    }

    /// Opens tab `name`'s popup and waits for its session ID; records it.
    /// Opens tab `name`'s popup until it shows a session ID: a new tab gets one at once,
    /// unless the user has a choice to make (sessions to attach, several servers), when
    /// #pair is pressed once (a new session on the default server).
    pub async fn open_popup_for_id(&mut self, name: &'static str) -> Result<String> {
        self.open_popup(name).await?;
        let clicked = std::cell::Cell::new(false);
        let id = wait_for(
            &format!("popup {name}: a session ID in #session-id[title]"),
            WAIT,
            || async {
                let s = self.popup(name).await?;
                if is_session_id(s.id()) {
                    return Ok(Ok(s.id().to_string()));
                }
                if s.can_pair() && !clicked.get() {
                    clicked.set(self.b.click("#pair").await.is_ok());
                }
                Ok(Err(s.brief()))
            },
        )
        .await?;
        self.tabs.get_mut(name).unwrap().session = Some(id.clone());
        Ok(id)
    }

    /// Gets tab `name`'s popup to show a QR code: the popup starts pairing on its own when it
    /// opens with settings present; if it offers #pair instead, that is clicked.
    pub async fn pair_to_qr(&self, name: &str) -> Result<&'static str> {
        let clicked = std::cell::Cell::new(false);
        wait_for(
            &format!("popup {name}: a QR code (pressing #pair once if offered)"),
            WAIT,
            || async {
                let s = self.popup(name).await?;
                if s.qr_shown() {
                    return Ok(Ok(()));
                }
                // The offer may go away as the worker starts pairing by itself: a click that
                // misses is no failure, the QR is what counts.
                if s.can_pair() && !clicked.get() {
                    clicked.set(self.b.click("#pair").await.is_ok());
                }
                Ok(Err(s.brief()))
            },
        )
        .await?;
        Ok(match clicked.get() {
            true => "started with #pair",
            false => "started by the popup itself",
        })
    }

    /// A new tab `name`, its popup open, paired to a QR code; returns its session ID.
    pub async fn paired_tab(&mut self, name: &'static str) -> Result<String> {
        self.create_tab(name).await?;
        let id = self.open_popup_for_id(name).await?;
        self.pair_to_qr(name).await?;
        Ok(id)
    }

    /// Settings (fast path), tabs A and B paired, A scanned and CONNECTED, B in QRCODE.
    pub async fn a_connected_b_qr(&mut self) -> Result<(String, String)> {
        self.settings_fast().await?;
        let a = self.paired_tab("A").await?;
        let b = self.paired_tab("B").await?;
        self.sim.scan(&a).await?;
        self.wait_popup("A", "CONNECTED after the scan", |s| {
            s.status() == "CONNECTED"
        })
        .await?;
        Ok((a, b))
    }

    pub async fn keys_of(&self, tab_id: i64, session: &str) -> Result<Keys> {
        let st = self.storage().await?;
        let s = &st["session"];
        Ok((
            s[format!("wpp_tab_{tab_id}")].clone(),
            st["local"]["wpp_sessions"][session].clone(),
            s[format!("wpp_token_{session}")].clone(),
        ))
    }

    /// Asserts binding, token and index entry of tab `name` are still stored; returns the
    /// token.
    pub async fn state_kept(&self, name: &str) -> Result<String> {
        let id = self.session_of(name)?;
        let (tab_key, rec, token) = self.keys_of(self.tab_id(name)?, &id).await?;
        ensure(
            tab_key == json!(id),
            format!("wpp_tab_ of {name} is {tab_key}, expected {id}"),
        )?;
        ensure(
            rec.is_object() && rec["label"].is_string(),
            format!("index entry of {id} lost: {rec}"),
        )?;
        token
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("token of {id} lost: {token}"))
    }

    /// Waits until `tab`'s binding, token and index entry are gone.
    pub async fn wait_keys_gone(&self, name: &str) -> Result<()> {
        let (tab, id) = (self.tab_id(name)?, self.session_of(name)?);
        wait_for(
            &format!("{name}'s keys and index entry to go"),
            WAIT,
            || async {
                let k = self.keys_of(tab, &id).await?;
                Ok(if k.0.is_null() && k.1.is_null() && k.2.is_null() {
                    Ok(())
                } else {
                    Err(format!("{k:?}"))
                })
            },
        )
        .await
    }

    /// The toolbar badge text of tab `name`.
    pub async fn badge(&self, name: &str) -> Result<Value> {
        self.eval(
            "return await api.action.getBadgeText({ tabId: args[0] });",
            vec![json!(self.tab_id(name)?)],
        )
        .await
    }

    /// Waits until each named tab's badge reads the expected text.
    pub async fn wait_badges(&self, expected: &[(&str, &str)]) -> Result<String> {
        let mut seen = Vec::new();
        for (name, text) in expected {
            let badge = wait_for(&format!("badge of {name} = {text:?}"), WAIT, || async {
                let badge = self.badge(name).await?;
                Ok(if badge == json!(text) {
                    Ok(badge)
                } else {
                    Err(badge.to_string())
                })
            })
            .await?;
            seen.push(format!("{name}={badge}"));
        }
        Ok(format!("({})", seen.join(", ")))
    }

    /// The sim's log entries for logout-session / close-session.
    pub async fn logouts(&self) -> Result<Vec<Value>> {
        let log = self.sim.log().await?;
        Ok(log["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                ["logout-session", "close-session"]
                    .contains(&r["route"].as_str().unwrap_or_default())
            })
            .collect())
    }
}

/// Waits until the options page in the current window is ready: its Wasm has filled the form
/// from the worker's reply and enabled it (`body[aria-busy=false]`). Typing earlier would be
/// overwritten, and a click on its buttons would do nothing.
pub async fn options_page_ready(b: &Browser) -> Result<()> {
    wait_true_in(
        b,
        "the options page ready (body[aria-busy=false])",
        "return document.body.getAttribute('aria-busy') === 'false';",
    )
    .await
}

/// Waits until `script`, run in `b`'s current window, returns `true`.
async fn wait_true_in(b: &Browser, what: &str, script: &str) -> Result<()> {
    wait_for(what, WAIT, || async {
        let v = b.execute(script, vec![]).await?;
        Ok(if v == json!(true) {
            Ok(())
        } else {
            Err(v.to_string())
        })
    })
    .await
}
