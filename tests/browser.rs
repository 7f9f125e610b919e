//! Real-browser end-to-end suite: the built extension (`dist/`) in headless Chromium and
//! headless Firefox, against the in-process simulated wppconnect-server (`wpp-sim`).
//!
//! Run `scripts/build.sh` first; then `CARGO_TARGET_DIR=... cargo test --test browser -- --nocapture`.
//! Each test is a scenario group sharing one browser; every scenario inside it is reported as
//! PASS/FAIL on stderr, and the test fails if any scenario failed.

#![cfg(not(target_arch = "wasm32"))]

mod browser {
    pub mod cdp;
    pub mod harness;
    pub mod sim;
    pub mod webdriver;
    pub mod zip;
}

use std::collections::HashMap;
use std::path::PathBuf;

use browser::harness::{wait_for, Browser, Kind, WAIT};
use browser::sim::Sim;
use browser::webdriver::Result;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The built extension

fn dist() -> PathBuf {
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dist");
    for needed in ["chrome/manifest.json", "firefox/manifest.json"] {
        assert!(
            dist.join(needed).is_file(),
            "{} is missing: the extension is not built; run scripts/build.sh first",
            dist.join(needed).display()
        );
    }
    dist
}

async fn launch(kind: Kind) -> Browser {
    let dist = dist();
    let browser = match kind {
        Kind::Chromium => Browser::chromium(&dist.join("chrome")).await,
        Kind::Firefox => {
            let manifest: Value =
                serde_json::from_slice(&std::fs::read(dist.join("firefox/manifest.json")).unwrap())
                    .unwrap();
            let gecko_id = manifest["browser_specific_settings"]["gecko"]["id"]
                .as_str()
                .unwrap_or("wpp-tabs@wpp-tabs.dev")
                .to_string();
            let zip_path = dist.join("wpp-tabs-firefox.zip");
            let zip = if zip_path.is_file() {
                std::fs::read(&zip_path).unwrap()
            } else {
                browser::zip::zip_dir(&dist.join("firefox")).unwrap()
            };
            Browser::firefox(&zip, &gecko_id).await
        }
    };
    browser.unwrap_or_else(|e| panic!("cannot launch {kind} with the extension: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Per-group report

struct Report {
    title: String,
    results: Vec<(String, std::result::Result<String, String>)>,
}

impl Report {
    fn new(kind: Kind, group: &str) -> Report {
        Report {
            title: format!("{kind}/{group}"),
            results: Vec::new(),
        }
    }

    /// Records a scenario outcome (Ok carries an optional note) and prints it at once.
    fn record(&mut self, scenario: &str, outcome: Result<String>) -> bool {
        match &outcome {
            Ok(note) => eprintln!("[{}] PASS {scenario} {note}", self.title),
            Err(e) => eprintln!("[{}] FAIL {scenario}: {e}", self.title),
        }
        let ok = outcome.is_ok();
        self.results.push((scenario.to_string(), outcome));
        ok
    }

    fn finish(self) {
        let failed: Vec<_> = self.results.iter().filter(|(_, r)| r.is_err()).collect();
        let mut summary = format!("\n==== {} ====\n", self.title);
        for (name, r) in &self.results {
            summary += &match r {
                Ok(_) => format!("  PASS {name}\n"),
                Err(e) => format!("  FAIL {name}: {e}\n"),
            };
        }
        eprintln!("{summary}");
        assert!(
            failed.is_empty(),
            "{} of {} scenarios failed:{summary}",
            failed.len(),
            self.results.len()
        );
    }
}

fn ensure(cond: bool, msg: impl Into<String>) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(msg.into())
    }
}

// ---------------------------------------------------------------------------------------------
// Test context: one browser, one sim, the tabs under test

struct Tab {
    id: i64,
    session: Option<String>,
    /// The WebDriver window showing `popup.html?tab=<id>`.
    popup: Option<String>,
}

struct Ctx {
    b: Browser,
    sim: Sim,
    /// The control window (an extension page) used for storage reads and tab creation.
    main: String,
    tabs: HashMap<&'static str, Tab>,
}

const POPUP_SNAPSHOT: &str = r#"
const q = s => document.querySelector(s);
const vis = e => !!e && !e.hidden && !e.hasAttribute('hidden')
  && getComputedStyle(e).display !== 'none' && getComputedStyle(e).visibility !== 'hidden';
const id = q('#session-id'), st = q('#status'), qr = q('#qr'), er = q('#error'), oo = q('#open-options');
return {
  href: location.href,
  idTitle: id ? id.getAttribute('title') : null,
  idText: id ? id.textContent.trim() : null,
  status: st ? st.getAttribute('data-status') : null,
  statusText: st ? st.textContent.trim() : null,
  qrVisible: vis(qr),
  qrHiddenAttr: qr ? qr.hasAttribute('hidden') : null,
  qrSrc: qr ? (qr.getAttribute('src') || '') : '',
  errorVisible: vis(er),
  errorText: er ? er.textContent.trim() : null,
  optionsLinkVisible: vis(oo),
  phase: st ? st.getAttribute('data-phase') : null,
  pairVisible: vis(q('#pair')),
  pairText: q('#pair') ? q('#pair').textContent.trim() : null,
};
"#;

/// A short, printable form of a popup snapshot.
fn brief(s: &Value) -> String {
    let src = s["qrSrc"].as_str().unwrap_or_default();
    format!(
        "status={} ({:?}) id={} qrVisible={} qrSrc={:?}.. error={}{:?}",
        s["status"],
        s["statusText"].as_str().unwrap_or_default(),
        s["idTitle"],
        s["qrVisible"],
        &src[..src.len().min(30)],
        if s["errorVisible"] == true {
            "visible "
        } else {
            "hidden "
        },
        s["errorText"].as_str().unwrap_or_default()
    )
}

/// QRCODE with the `#qr` image shown (no `hidden`) holding a PNG data URL.
fn qr_shown(s: &Value) -> bool {
    s["status"] == "QRCODE"
        && s["qrVisible"] == true
        && s["qrHiddenAttr"] == false
        && s["qrSrc"]
            .as_str()
            .is_some_and(|q| q.starts_with("data:image/png;base64,") && q.len() > 100)
}

fn is_session_id(s: &str) -> bool {
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

impl Ctx {
    async fn new(kind: Kind) -> Ctx {
        let sim = Sim::start().await.unwrap_or_else(|e| panic!("{e}"));
        Ctx::with_sim(kind, sim).await
    }

    async fn with_sim(kind: Kind, sim: Sim) -> Ctx {
        let b = launch(kind).await;
        b.open("options.html")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let main = b.wd.window_handle().await.unwrap();
        Ctx {
            b,
            sim,
            main,
            tabs: HashMap::new(),
        }
    }

    async fn to_main(&self) -> Result<()> {
        self.b.wd.switch_to(&self.main).await
    }

    /// Runs an async script in the control window.
    async fn eval(&self, body: &str, args: Vec<Value>) -> Result<Value> {
        self.to_main().await?;
        self.b.eval(body, args).await
    }

    async fn storage(&self) -> Result<Value> {
        self.eval(
            "return { session: await api.storage.session.get(null), local: await api.storage.local.get(null),\
             sync: await api.storage.sync.get(null).catch(e => ({ __error: String(e) })) };",
            vec![],
        )
        .await
    }

    /// Creates a background browser tab on a sim page; returns its tabs-API id.
    async fn create_tab(&mut self, name: &'static str, page: &str) -> Result<i64> {
        let url = self.sim.page(page);
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

    fn tab(&self, name: &str) -> Result<&Tab> {
        self.tabs
            .get(name)
            .ok_or_else(|| format!("tab {name} was never created"))
    }

    fn session_of(&self, name: &str) -> Result<String> {
        self.tab(name)?
            .session
            .clone()
            .ok_or_else(|| format!("tab {name} has no session ID (earlier step failed)"))
    }

    /// Opens (or reloads) the popup for tab `name` in its own window; leaves it current.
    async fn open_popup(&mut self, name: &str) -> Result<()> {
        let tab_id = self.tab(name)?.id;
        let handle = match self.tab(name)?.popup.clone() {
            Some(h) => h,
            None => {
                let h = self.b.wd.new_window("tab").await?;
                self.tabs.get_mut(name).unwrap().popup = Some(h.clone());
                h
            }
        };
        self.b.wd.switch_to(&handle).await?;
        self.b.open(&format!("popup.html?tab={tab_id}")).await
    }

    /// Switches to tab `name`'s popup window and reads its state.
    async fn popup(&self, name: &str) -> Result<Value> {
        let h = self
            .tab(name)?
            .popup
            .clone()
            .ok_or_else(|| format!("no popup open for {name}"))?;
        self.b.wd.switch_to(&h).await?;
        self.b.wd.execute(POPUP_SNAPSHOT, vec![]).await
    }

    async fn wait_popup(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        wait_for(&format!("popup {name}: {what}"), WAIT, || async {
            let s = self.popup(name).await?;
            Ok(if pred(&s) { Ok(s) } else { Err(brief(&s)) })
        })
        .await
    }

    /// Clicks `css` in tab `name`'s popup once it is shown and enabled.
    async fn click_in_popup(&self, name: &str, css: &str) -> Result<()> {
        self.popup(name).await?;
        let wd = &self.b.wd;
        wait_for(&format!("popup {name}: {css} shown and enabled"), WAIT, || async {
            let v = wd
                .execute(
                    "const e = document.querySelector(arguments[0]);\
                     return !!e && !e.hidden && !e.disabled && getComputedStyle(e).display !== 'none';",
                    vec![json!(css)],
                )
                .await?;
            Ok(if v == json!(true) { Ok(()) } else { Err(format!("{css} hidden/disabled/absent")) })
        })
        .await?;
        wd.click(&wd.find(css).await?).await
    }

    /// Gets tab `name`'s popup to show a QR code: the popup may start pairing on its own when
    /// it opens; otherwise (or when it offers #pair) click #pair. Returns how it started.
    async fn pair_to_qr(&self, name: &str) -> Result<&'static str> {
        let wd = &self.b.wd;
        let first = wait_for(&format!("popup {name}: a QR code or a #pair button"), WAIT, || async {
            let s = self.popup(name).await?;
            if qr_shown(&s) {
                return Ok(Ok(true));
            }
            let pair = wd
                .execute(
                    "const e = document.querySelector('#pair'); return !!e && !e.hidden && !e.disabled;",
                    vec![],
                )
                .await?;
            Ok(if pair == json!(true) { Ok(false) } else { Err(brief(&s)) })
        })
        .await?;
        if first {
            return Ok("started by the popup itself");
        }
        self.click_in_popup(name, "#pair").await?;
        self.wait_popup(name, "QRCODE with a visible data-URL QR", qr_shown)
            .await?;
        Ok("started with #pair")
    }

    /// The status of `session` as the sim reports it in `/__sim/sessions` (None: unknown there).
    async fn sim_status(&self, session: &str) -> Result<Option<String>> {
        Ok(sim_status_in(&self.sim.sessions().await?, session))
    }

    /// `(wpp_tab_<tab>, wpp_session_<id>, wpp_token_<id>)` from storage.session.
    async fn keys_of(&self, tab_id: i64, session: &str) -> Result<(Value, Value, Value)> {
        let st = self.storage().await?;
        let s = &st["session"];
        Ok((
            s[format!("wpp_tab_{tab_id}")].clone(),
            s[format!("wpp_session_{session}")].clone(),
            s[format!("wpp_token_{session}")].clone(),
        ))
    }
}

/// Finds a session's status in the sim's `/__sim/sessions` reply, whatever its exact shape
/// (a map keyed by session, or a list of objects naming the session).
fn sim_status_in(v: &Value, session: &str) -> Option<String> {
    let status_of = |o: &Value| -> Option<String> {
        match o {
            Value::String(s) => Some(s.clone()),
            _ => o
                .get("status")
                .or_else(|| o.get("state"))
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    };
    match v {
        Value::Object(map) => {
            if let Some(inner) = map.get("sessions") {
                return sim_status_in(inner, session);
            }
            map.get(session).and_then(status_of)
        }
        Value::Array(items) => items
            .iter()
            .find(|o| {
                ["session", "name", "id"]
                    .iter()
                    .any(|k| o.get(*k).and_then(Value::as_str) == Some(session))
            })
            .and_then(status_of),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// Waits for the options page to report success (`data-result="ok"`) after `button` was
/// clicked; returns the message shown.
async fn options_result_ok(ctx: &Ctx, button: &str) -> Result<String> {
    let wd = &ctx.b.wd;
    wait_for(
        &format!("#options-status data-result=ok after {button}"),
        WAIT,
        || async {
            let el = wd.find("#options-status").await?;
            let r = wd.attribute(&el, "data-result").await?;
            let t = wd.text(&el).await?;
            Ok(if r.as_deref() == Some("ok") {
                Ok(t)
            } else {
                Err(format!("data-result={r:?} text={t:?}"))
            })
        },
    )
    .await
}

/// Options page UI: server URL + secret, remember off; save and test connection.
async fn set_up_settings(ctx: &Ctx) -> Result<String> {
    ctx.to_main().await?;
    ctx.b.open("options.html").await?;
    let wd = &ctx.b.wd;
    // The page fills the form from the worker's reply once its Wasm is up (and only then wires
    // its buttons): wait for that before typing, or the reply overwrites what was typed.
    wait_for("options page loaded (#server-url filled)", WAIT, || async {
        let v = wd
            .execute("return document.querySelector('#server-url').value", vec![])
            .await?;
        Ok(if v.as_str().is_some_and(|s| !s.is_empty()) {
            Ok(())
        } else {
            Err(v.to_string())
        })
    })
    .await?;
    let url = wd.find("#server-url").await?;
    wd.clear(&url).await?;
    wd.send_keys(&url, &ctx.sim.server_url()).await?;
    let secret = wd.find("#secret-key").await?;
    ensure(
        wd.attribute(&secret, "type").await?.as_deref() == Some("password"),
        "#secret-key is not a password input",
    )?;
    wd.clear(&secret).await?;
    wd.send_keys(&secret, &ctx.sim.secret).await?;
    let remember = wd.find("#remember-secret").await?;
    if wd.property(&remember, "checked").await? == json!(true) {
        wd.click(&remember).await?;
    }
    let typed = wd.property(&url, "value").await?;
    ensure(
        typed == json!(ctx.sim.server_url()),
        format!("#server-url holds {typed} after typing"),
    )?;
    wd.click(&wd.find("#save").await?).await?;
    let saved = options_result_ok(ctx, "#save").await?;
    // Test connection: the sim answers, the secret is right.
    wd.execute(
        "document.querySelector('#options-status').removeAttribute('data-result')",
        vec![],
    )
    .await?;
    wd.click(&wd.find("#test-connection").await?).await?;
    let tested = options_result_ok(ctx, "#test-connection").await?;
    let st = ctx.storage().await?;
    let settings = &st["local"]["wpp_settings"];
    ensure(
        settings["serverUrl"]
            .as_str()
            .map(|s| s.trim_end_matches('/'))
            == Some(&ctx.sim.server_url()),
        format!("storage.local wpp_settings.serverUrl wrong: {settings}"),
    )?;
    ensure(
        settings["rememberSecret"] == json!(false),
        format!("rememberSecret not false: {settings}"),
    )?;
    ensure(
        settings
            .get("secretKey")
            .is_none_or(|v| v.is_null() || v == ""),
        format!("secret stored in storage.local although remember is off: {settings}"),
    )?;
    ensure(
        st["session"]["wpp_secret"] == json!(ctx.sim.secret),
        format!(
            "storage.session wpp_secret should hold the secret, has {}",
            st["session"]["wpp_secret"]
        ),
    )?;
    Ok(format!("(save: {saved:?}; test: {tested:?})"))
}

/// Two tabs get two different IDs of the required form when their popups first open.
async fn two_tabs_two_ids(ctx: &mut Ctx) -> Result<String> {
    let a = ctx.create_tab("A", "A").await?;
    let b = ctx.create_tab("B", "B").await?;
    let before = ctx.storage().await?;
    ensure(
        before["session"].get(format!("wpp_tab_{a}")).is_none(),
        format!(
            "tab A has an ID before its popup ever opened: {}",
            before["session"]
        ),
    )?;
    let mut ids = Vec::new();
    for name in ["A", "B"] {
        ctx.open_popup(name).await?;
        let s = ctx
            .wait_popup(name, "a session ID in #session-id[title]", |s| {
                s["idTitle"].as_str().is_some_and(|t| !t.is_empty())
            })
            .await?;
        let id = s["idTitle"].as_str().unwrap().to_string();
        ensure(
            is_session_id(&id),
            format!("session ID {id:?} does not match ^session_[0-9a-z]+_[0-9a-z]+$ (<= 32 chars)"),
        )?;
        // With settings present the popup starts pairing at once: NONE or a pairing state.
        ensure(
            ["NONE", "CLOSED", "INITIALIZING", "QRCODE"]
                .contains(&s["status"].as_str().unwrap_or_default()),
            format!(
                "a fresh tab's popup shows an unexpected status: {}",
                brief(&s)
            ),
        )?;
        ctx.tabs.get_mut(name).unwrap().session = Some(id.clone());
        ids.push(id);
    }
    ensure(
        ids[0] != ids[1],
        format!("tabs A and B got the same ID {}", ids[0]),
    )?;
    let st = ctx.storage().await?;
    for (tab, id) in [(a, &ids[0]), (b, &ids[1])] {
        ensure(
            st["session"][format!("wpp_tab_{tab}")] == json!(id),
            format!("storage.session wpp_tab_{tab} != {id}: {}", st["session"]),
        )?;
    }
    Ok(format!("(A={} B={})", ids[0], ids[1]))
}

/// Pairing A shows the QR; B is paired too; a scan makes A CONNECTED and leaves B in QRCODE.
async fn pairing_and_scan(ctx: &mut Ctx) -> Result<String> {
    let id_a = ctx.session_of("A")?;
    let id_b = ctx.session_of("B")?;
    let mut how = Vec::new();
    for name in ["A", "B"] {
        how.push(format!("{name}: {}", ctx.pair_to_qr(name).await?));
        let s = ctx.popup(name).await?;
        ensure(
            s["errorVisible"] == false,
            format!("error shown while pairing {name}: {}", brief(&s)),
        )?;
    }
    ctx.sim.scan(&id_a).await?;
    let a = ctx
        .wait_popup("A", "CONNECTED after the scan", |s| {
            s["status"] == "CONNECTED"
        })
        .await?;
    ensure(
        a["qrVisible"] == false && a["qrHiddenAttr"] == true,
        format!("QR still shown once connected: {}", brief(&a)),
    )?;
    let b = ctx.popup("B").await?;
    ensure(
        b["status"] == "QRCODE",
        format!("tab B left QRCODE when A was scanned: {}", brief(&b)),
    )?;
    let sim_a = ctx.sim_status(&id_a).await?;
    let sim_b = ctx.sim_status(&id_b).await?;
    ensure(
        sim_a.as_deref() == Some("CONNECTED"),
        format!("sim says A is {sim_a:?}"),
    )?;
    ensure(
        sim_b.as_deref() != Some("CONNECTED"),
        format!("sim says B is {sim_b:?}"),
    )?;
    // The record follows.
    let rec = wait_for("wpp_session_<A>.lastStatus CONNECTED", WAIT, || async {
        let (_, rec, _) = ctx.keys_of(ctx.tab("A")?.id, &id_a).await?;
        Ok(if rec["lastStatus"] == "CONNECTED" {
            Ok(rec)
        } else {
            Err(rec.to_string())
        })
    })
    .await?;
    for field in ["id", "tabId", "serverUrl", "createdAt", "lastStatus"] {
        ensure(
            rec.get(field).is_some(),
            format!("record wpp_session_{id_a} lacks {field}: {rec}"),
        )?;
    }
    ensure(
        rec["id"] == json!(id_a) && rec["tabId"] == json!(ctx.tab("A")?.id),
        format!("record mismatch: {rec}"),
    )?;
    Ok(format!(
        "(pairing {how:?}; sim: A={sim_a:?} B={sim_b:?}; B popup {})",
        brief(&b)
    ))
}

/// Collects every string inside a JSON value.
fn strings_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings_in(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k.clone());
            strings_in(x, out)
        }),
        _ => {}
    }
}

/// Tokens live only under wpp_token_<id> in storage.session; nothing secret in local/sync;
/// the sim log shows each session authenticated with its own token only.
async fn tokens_and_log(ctx: &Ctx) -> Result<String> {
    let st = ctx.storage().await?;
    let log = ctx.sim.log().await?;
    let requests = log["requests"].as_array().cloned().unwrap_or_default();
    let mut tokens = HashMap::new();
    for name in ["A", "B"] {
        let id = ctx.session_of(name)?;
        let token = st["session"][format!("wpp_token_{id}")]
            .as_str()
            .ok_or_else(|| {
                format!(
                    "no string wpp_token_{id} in storage.session: {}",
                    st["session"]
                )
            })?
            .to_string();
        let minted: Vec<String> = log["sessions"][&id]["tokens"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        ensure(
            minted.contains(&token),
            format!("stored token of {name} is not one the sim minted for {id}: {minted:?}"),
        )?;
        let last_used = requests
            .iter()
            .filter(|r| r["session"] == json!(id) && r["auth"] == "ok")
            .filter_map(|r| r["token"].as_str())
            .next_back();
        ensure(
            last_used == Some(token.as_str()),
            format!(
                "{name}: last authenticated request used {last_used:?}, storage has another token"
            ),
        )?;
        tokens.insert(id, (token, minted));
    }
    // Only the session area holds tokens, and only under wpp_token_*.
    for (key, value) in st["session"].as_object().cloned().unwrap_or_default() {
        let mut strings = Vec::new();
        strings_in(&value, &mut strings);
        for (id, (token, _)) in &tokens {
            if strings.contains(token) {
                ensure(
                    key == format!("wpp_token_{id}"),
                    format!("token of {id} also stored under {key}"),
                )?;
            }
        }
    }
    for area in ["local", "sync"] {
        let mut strings = Vec::new();
        strings_in(&st[area], &mut strings);
        for (id, (_, minted)) in &tokens {
            ensure(
                !strings
                    .iter()
                    .any(|s| minted.iter().any(|t| s.contains(t.as_str()))),
                format!("a token of {id} is in storage.{area}: {}", st[area]),
            )?;
        }
        ensure(
            !strings.iter().any(|s| s.contains(&ctx.sim.secret)),
            format!(
                "the secret is in storage.{area} with remember off: {}",
                st[area]
            ),
        )?;
        ensure(
            !strings.iter().any(|s| s.starts_with("wpp_token_")),
            format!("wpp_token_* key in storage.{area}"),
        )?;
    }
    // Log: every authenticated request for a session carries that session's own token.
    let mut checked = 0;
    for r in &requests {
        let Some(session) = r["session"].as_str() else {
            continue;
        };
        let Some((_, minted)) = tokens.get(session) else {
            continue;
        };
        let auth = r["auth"].as_str().unwrap_or_default();
        if auth == "none" {
            continue;
        }
        ensure(
            auth == "ok",
            format!(
                "request {} {} for {session} had auth={auth}: {r}",
                r["method"], r["path"]
            ),
        )?;
        let tok = r["token"].as_str().unwrap_or_default();
        ensure(
            minted.iter().any(|t| t == tok),
            format!("request for {session} carried a token not minted for it: {r}"),
        )?;
        for (other, (_, other_minted)) in &tokens {
            if other != session {
                ensure(
                    !other_minted.iter().any(|t| t == tok),
                    format!("request for {session} carried {other}'s token: {r}"),
                )?;
            }
        }
        checked += 1;
    }
    ensure(
        checked > 0,
        "no authenticated request for A or B in the sim log",
    )?;
    Ok(format!("({checked} authenticated requests checked)"))
}

/// #copy-session-id puts the full ID on the clipboard and says "Copied".
async fn copy_session_id(ctx: &Ctx) -> Result<String> {
    let id = ctx.session_of("A")?;
    ctx.popup("A").await?;
    let mut how = "navigator.clipboard.readText()";
    if ctx.b.kind == Kind::Chromium {
        // Headless Chromium denies clipboard reads unless the permission is granted.
        ctx.b.wd.set_permission("clipboard-read", "granted").await?;
        how = "navigator.clipboard.readText() (clipboard-read granted over WebDriver)";
    }
    ctx.b
        .eval(
            "await navigator.clipboard.writeText('not-the-id'); return null;",
            vec![],
        )
        .await
        .ok();
    ctx.click_in_popup("A", "#copy-session-id").await?;
    let wd = &ctx.b.wd;
    wait_for("#copy-session-id text 'Copied'", WAIT, || async {
        let t = wd.text(&wd.find("#copy-session-id").await?).await?;
        Ok(if t.trim() == "Copied" { Ok(()) } else { Err(t) })
    })
    .await?;
    let clip = ctx
        .b
        .eval("return await navigator.clipboard.readText();", vec![])
        .await?;
    ensure(
        clip == json!(id),
        format!("clipboard holds {clip}, expected {id}"),
    )?;
    Ok(format!("(read with {how})"))
}

async fn wait_tab_complete(ctx: &Ctx, tab_id: i64, url_part: &str) -> Result<()> {
    wait_for("the tab to finish loading", WAIT, || async {
        let t = ctx
            .eval(
                "const t = await api.tabs.get(args[0]); return { status: t.status };",
                vec![json!(tab_id)],
            )
            .await?;
        Ok(if t["status"] == "complete" {
            Ok(())
        } else {
            Err(format!("{t} ({url_part})"))
        })
    })
    .await
}

/// A reload and a navigation of tab A keep its session ID.
async fn reload_and_navigate_keep_id(ctx: &mut Ctx) -> Result<String> {
    let id = ctx.session_of("A")?;
    let tab_id = ctx.tab("A")?.id;
    ctx.eval(
        "await api.tabs.reload(args[0]); return null;",
        vec![json!(tab_id)],
    )
    .await?;
    wait_tab_complete(ctx, tab_id, "reload").await?;
    let url = ctx.sim.page("A2");
    ctx.eval(
        "await api.tabs.update(args[0], { url: args[1] }); return null;",
        vec![json!(tab_id), json!(url)],
    )
    .await?;
    wait_tab_complete(ctx, tab_id, "navigation").await?;
    let (tab_key, rec, token) = ctx.keys_of(tab_id, &id).await?;
    ensure(
        tab_key == json!(id),
        format!("after reload+navigation wpp_tab_{tab_id} = {tab_key}, expected {id}"),
    )?;
    ensure(
        rec.is_object() && token.is_string(),
        format!("record/token lost after navigation: {rec} {token}"),
    )?;
    ctx.open_popup("A").await?;
    let s = ctx
        .wait_popup("A", "the same ID after reload+navigation", |s| {
            s["idTitle"] == json!(id)
        })
        .await?;
    Ok(format!("({})", brief(&s)))
}

/// The popup's #logout logs out only A on the server and removes only A's keys.
async fn logout_via_popup(ctx: &Ctx) -> Result<String> {
    let (id_a, id_b) = (ctx.session_of("A")?, ctx.session_of("B")?);
    let (tab_a, tab_b) = (ctx.tab("A")?.id, ctx.tab("B")?.id);
    let b_before = ctx.sim_status(&id_b).await?;
    let b_keys_before = ctx.keys_of(tab_b, &id_b).await?;
    ctx.click_in_popup("A", "#logout").await?;
    wait_for("A's three keys to go", WAIT, || async {
        let k = ctx.keys_of(tab_a, &id_a).await?;
        Ok(if k.0.is_null() && k.1.is_null() && k.2.is_null() {
            Ok(())
        } else {
            Err(format!("{k:?}"))
        })
    })
    .await?;
    let log = ctx.sim.log().await?;
    let logouts: Vec<_> = log["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            ["logout-session", "close-session"].contains(&r["route"].as_str().unwrap_or_default())
        })
        .collect();
    ensure(
        logouts
            .iter()
            .any(|r| r["session"] == json!(id_a) && r["auth"] == "ok"),
        format!("no authenticated logout/close for A in the sim log: {logouts:?}"),
    )?;
    ensure(
        !logouts.iter().any(|r| r["session"] == json!(id_b)),
        format!("B was logged out too: {logouts:?}"),
    )?;
    let a_after = ctx.sim_status(&id_a).await?;
    ensure(
        a_after.as_deref() != Some("CONNECTED"),
        format!("sim still has A CONNECTED: {a_after:?}"),
    )?;
    let b_after = ctx.sim_status(&id_b).await?;
    ensure(
        b_after == b_before,
        format!("B's server status changed: {b_before:?} -> {b_after:?}"),
    )?;
    ensure(
        ctx.keys_of(tab_b, &id_b).await? == b_keys_before,
        "B's keys changed when A logged out",
    )?;
    Ok(format!("(sim A: {a_after:?}, B: {b_after:?})"))
}

/// The context-menu handler logs out B (found through the background's global) and only B.
async fn logout_via_menu(ctx: &mut Ctx) -> Result<String> {
    // A bystander tab C, paired, must stay untouched.
    ctx.create_tab("C", "C").await?;
    ctx.open_popup("C").await?;
    let s = ctx
        .wait_popup("C", "an ID", |s| {
            s["idTitle"].as_str().is_some_and(is_session_id)
        })
        .await?;
    let id_c = s["idTitle"].as_str().unwrap().to_string();
    ctx.tabs.get_mut("C").unwrap().session = Some(id_c.clone());
    ctx.pair_to_qr("C").await?;
    let id_b = ctx.session_of("B")?;
    let (tab_b, tab_c) = (ctx.tab("B")?.id, ctx.tab("C")?.id);
    let c_before = ctx.keys_of(tab_c, &id_c).await?;
    let sim_c_before = ctx.sim_status(&id_c).await?;
    ctx.to_main().await?;
    let r = ctx
        .b
        .call_background(
            "menuClicked",
            vec![
                json!({"menuItemId": "logout-tab-session"}),
                json!({"id": tab_b}),
            ],
        )
        .await?;
    wait_for("B's three keys to go", WAIT, || async {
        let k = ctx.keys_of(tab_b, &id_b).await?;
        Ok(if k.0.is_null() && k.1.is_null() && k.2.is_null() {
            Ok(())
        } else {
            Err(format!("{k:?}"))
        })
    })
    .await?;
    let log = ctx.sim.log().await?;
    let reqs = log["requests"].as_array().cloned().unwrap_or_default();
    let is_logout = |r: &Value| {
        ["logout-session", "close-session"].contains(&r["route"].as_str().unwrap_or_default())
    };
    ensure(
        reqs.iter()
            .any(|r| is_logout(r) && r["session"] == json!(id_b) && r["auth"] == "ok"),
        "no authenticated logout/close for B in the sim log",
    )?;
    ensure(
        !reqs
            .iter()
            .any(|r| is_logout(r) && r["session"] == json!(id_c)),
        "C was logged out too",
    )?;
    ensure(
        ctx.keys_of(tab_c, &id_c).await? == c_before,
        "C's keys changed when B was logged out",
    )?;
    let sim_c = ctx.sim_status(&id_c).await?;
    ensure(
        sim_c == sim_c_before,
        format!("C's server status changed: {sim_c_before:?} -> {sim_c:?}"),
    )?;
    Ok(format!(
        "(menuClicked returned {r}; sim B now {:?})",
        ctx.sim_status(&id_b).await?
    ))
}

/// Before any settings exist, a popup shows NONE and the #open-options link.
async fn popup_without_settings(ctx: &mut Ctx) -> Result<String> {
    ctx.create_tab("X", "X").await?;
    ctx.open_popup("X").await?;
    let s = ctx
        .wait_popup("X", "NONE with the #open-options link", |s| {
            s["status"] == "NONE" && s["optionsLinkVisible"] == true && s["qrVisible"] == false
        })
        .await?;
    Ok(format!("({})", brief(&s)))
}

async fn core_flow(kind: Kind) {
    let mut ctx = Ctx::new(kind).await;
    let mut report = Report::new(kind, "core");
    let r = popup_without_settings(&mut ctx).await;
    report.record("popup before settings: NONE and the options link", r);
    let r = set_up_settings(&ctx).await;
    report.record("settings via the options page", r);
    let r = two_tabs_two_ids(&mut ctx).await;
    report.record("two tabs, two IDs of the required form", r);
    let r = pairing_and_scan(&mut ctx).await;
    report.record("pairing A shows the QR; scan connects A; B stays QRCODE", r);
    let r = badges_follow_state(&ctx, &[("A", "ON"), ("B", "QR")]).await;
    report.record("each tab's badge shows its own state (A ON, B QR)", r);
    let r = tokens_and_log(&ctx).await;
    report.record("tokens only in storage.session, log tokens per session", r);
    let r = copy_session_id(&ctx).await;
    report.record("copy session ID", r);
    let r = reload_and_navigate_keep_id(&mut ctx).await;
    report.record("reload and navigation keep the ID", r);
    let r = logout_via_popup(&ctx).await;
    report.record("logout A via the popup", r);
    let r = badges_follow_state(&ctx, &[("A", ""), ("B", "QR")]).await;
    report.record("logout clears A's badge only", r);
    let r = logout_via_menu(&mut ctx).await;
    report.record("logout B via the context-menu handler", r);
    let r = malformed_messages(&ctx).await;
    report.record(
        "malformed messages are refused; the worker keeps working",
        r,
    );
    ctx.b.quit().await;
    report.finish();
}

/// Waits until each named tab's toolbar badge reads the expected text.
async fn badges_follow_state(ctx: &Ctx, expected: &[(&str, &str)]) -> Result<String> {
    let mut seen = Vec::new();
    for (name, text) in expected {
        let tab = ctx.tab(name)?.id;
        let badge = wait_for(
            &format!("badge of {name} = {text:?}"),
            WAIT,
            || async move {
                let badge = ctx
                    .eval(
                        "return await api.action.getBadgeText({ tabId: args[0] });",
                        vec![json!(tab)],
                    )
                    .await?;
                Ok(if badge == json!(text) {
                    Ok(badge)
                } else {
                    Err(badge.to_string())
                })
            },
        )
        .await?;
        seen.push(format!("{name}={badge}"));
    }
    Ok(format!("({})", seen.join(", ")))
}

/// Sends the worker malformed, wrong-version and unauthorised requests from an extension
/// page; each must be refused with a reason, and nothing stored may change. A port that never
/// subscribed to tab C asks to log it out, then posts junk: tab C must stay untouched.
async fn malformed_messages(ctx: &Ctx) -> Result<String> {
    let id_c = ctx.session_of("C")?;
    let tab_c = ctx.tab("C")?.id;
    let before = ctx.storage().await?;
    let replies = ctx
        .eval(
            "const send = (m) => api.runtime.sendMessage(m);\
             const out = [await send({ v: 2, type: 'getSettings' }), await send('garbage'),\
               await send({ v: 1, type: 'saveSettings', serverUrl: 'javascript:alert(1)', rememberSecret: true }),\
               await send({ v: 1, type: 'selfDestruct' })];\
             const port = api.runtime.connect({ name: 'wpp-tabs-popup' });\
             port.postMessage({ v: 1, type: 'logout', tabId: args[0] });\
             port.postMessage(null);\
             port.postMessage({ v: 1, type: 'subscribe', tabId: -5 });\
             await new Promise((r) => setTimeout(r, 1500));\
             port.disconnect();\
             out.push(await send({ v: 1, type: 'getSettings' }));\
             return out;",
            vec![json!(tab_c)],
        )
        .await?;
    let replies = replies.as_array().cloned().unwrap_or_default();
    ensure(
        replies.len() == 5,
        format!("expected 5 replies: {replies:?}"),
    )?;
    let expect_error = |i: usize, needle: &str| -> Result<()> {
        let r = &replies[i];
        ensure(
            r["type"] == "error" && r["message"].as_str().is_some_and(|m| m.contains(needle)),
            format!("reply {i} should be an error mentioning {needle:?}: {r}"),
        )
    };
    expect_error(0, "version")?;
    expect_error(1, "not an object")?;
    expect_error(2, "Server URL")?;
    expect_error(3, "invalid message")?;
    ensure(
        replies[4]["type"] == "settings" && replies[4]["hasSecret"] == true,
        format!(
            "the worker stopped answering well-formed requests: {}",
            replies[4]
        ),
    )?;
    let after = ctx.storage().await?;
    ensure(
        after["local"] == before["local"],
        format!(
            "settings changed: {} -> {}",
            before["local"], after["local"]
        ),
    )?;
    let (tab_key, _, token) = ctx.keys_of(tab_c, &id_c).await?;
    ensure(
        tab_key == json!(id_c) && token.is_string(),
        "tab C's session was touched by a port that never subscribed to it",
    )?;
    ensure(
        ctx.sim_status(&id_c).await? == Some("QRCODE".into()),
        "tab C's server session changed",
    )?;
    Ok(format!(
        "(refusals: {:?})",
        replies[..4]
            .iter()
            .map(|r| &r["message"])
            .collect::<Vec<_>>()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_core_flow() {
    core_flow(Kind::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_core_flow() {
    core_flow(Kind::Firefox).await;
}

// ---------------------------------------------------------------------------------------------
// Faults

/// Opens tab `name`, pairs it, waits for QRCODE; returns its session ID.
/// The start of a scenario group: settings through the options page, then tab `name` paired
/// to its QR code; both are recorded.
async fn settings_and_paired_tab(ctx: &mut Ctx, report: &mut Report, name: &'static str) {
    let r = set_up_settings(ctx).await;
    report.record("settings via the options page", r);
    let r = paired_tab(ctx, name)
        .await
        .map(|id| format!("({name}={id})"));
    report.record(&format!("tab {name} paired (QRCODE)"), r);
}

async fn paired_tab(ctx: &mut Ctx, name: &'static str) -> Result<String> {
    ctx.create_tab(name, name).await?;
    ctx.open_popup(name).await?;
    let s = ctx
        .wait_popup(name, "an ID", |s| {
            s["idTitle"].as_str().is_some_and(is_session_id)
        })
        .await?;
    let id = s["idTitle"].as_str().unwrap().to_string();
    ctx.tabs.get_mut(name).unwrap().session = Some(id.clone());
    ctx.pair_to_qr(name).await?;
    Ok(id)
}

/// A message a person can act on (not empty, not a raw JS/serde artefact).
fn clear_message(text: &str) -> Result<()> {
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

/// Asserts ID, token and record of tab `name` are still in storage.session; returns the token.
async fn state_kept(ctx: &Ctx, name: &str) -> Result<String> {
    let id = ctx.session_of(name)?;
    let (tab_key, rec, token) = ctx.keys_of(ctx.tab(name)?.id, &id).await?;
    ensure(
        tab_key == json!(id),
        format!("wpp_tab_ of {name} is {tab_key}, expected {id}"),
    )?;
    ensure(
        rec.is_object() && rec["id"] == json!(id),
        format!("record of {id} lost: {rec}"),
    )?;
    token
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("token of {id} lost: {token}"))
}

/// Injects one fault kind on `route` for the polled session, checks #error and state, clears
/// the fault and waits for recovery.
/// Waits for tab `name`'s popup to show no error and a live status. When `allow_retry`, a
/// visible #pair (the popup's "Retry") is clicked once, as a user would; returns whether it was.
async fn wait_recovered(ctx: &Ctx, name: &str, allow_retry: bool) -> Result<(Value, bool)> {
    let wd = &ctx.b.wd;
    let retried = std::cell::Cell::new(false);
    let retried_ref = &retried;
    let s = wait_for(
        &format!("popup {name}: recovery (#error hidden, status shown)"),
        WAIT,
        || async move {
            let s = ctx.popup(name).await?;
            if s["errorVisible"] == false
                && ["QRCODE", "CONNECTED", "INITIALIZING"].contains(&s["status"].as_str().unwrap_or(""))
            {
                return Ok(Ok(s));
            }
            if allow_retry && !retried_ref.get() {
                let pair = wd
                    .execute(
                        "const e = document.querySelector('#pair'); return !!e && !e.hidden && !e.disabled;",
                        vec![],
                    )
                    .await?;
                if pair == json!(true) {
                    wd.click(&wd.find("#pair").await?).await?;
                    retried_ref.set(true);
                }
            }
            Ok(Err(brief(&s)))
        },
    )
    .await?;
    Ok((s, retried.get()))
}

async fn fault_scenario(ctx: &mut Ctx, kind: &str) -> Result<String> {
    let id = ctx.session_of("F")?;
    // Precondition: a clean popup, so that the error seen below is this fault's.
    wait_recovered(ctx, "F", true)
        .await
        .map_err(|e| format!("precondition (no error before injecting): {e}"))?;
    let token_before = state_kept(ctx, "F").await?;
    ctx.sim
        .fault(json!({"route": "status-session", "session": id, "kind": kind, "count": 1000}))
        .await?;
    let s = ctx
        .wait_popup("F", &format!("#error visible under a {kind} fault"), |s| {
            s["errorVisible"] == true
        })
        .await;
    let cleared = ctx.sim.clear_faults().await;
    let s = match s {
        Ok(s) => s,
        Err(e) => {
            // Say whether the extension asked the server at all meanwhile.
            let log = ctx.sim.log().await?;
            let polls: Vec<_> = log["requests"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r["session"] == json!(id))
                .map(|r| format!("{} {}", r["route"].as_str().unwrap_or(""), r["status"]))
                .collect();
            let tail = &polls[polls.len().saturating_sub(8)..];
            return Err(format!(
                "{e}; the sim's last requests for F: {tail:?} ({} in all)",
                polls.len()
            ));
        }
    };
    cleared?;
    let msg = s["errorText"].as_str().unwrap_or_default().to_string();
    clear_message(&msg)?;
    let token_during = state_kept(ctx, "F").await?;
    // Every fault must clear by itself once the server behaves again; after a 401 the
    // worker mints a fresh token before it polls again.
    let (s2, retried) = wait_recovered(ctx, "F", false).await?;
    let token_after = state_kept(ctx, "F").await?;
    let mut note = if token_after != token_before || token_during != token_before {
        " (token was renewed)".to_string()
    } else {
        String::new()
    };
    if retried {
        note += " (recovered after the user pressed #pair/Retry)";
    }
    Ok(format!(
        "(error: {msg:?}; after: status={}{note})",
        s2["status"]
    ))
}

async fn server_down_scenario(ctx: &mut Ctx) -> Result<String> {
    wait_recovered(ctx, "F", true)
        .await
        .map_err(|e| format!("precondition (no error before the server goes down): {e}"))?;
    state_kept(ctx, "F").await?;
    ctx.sim.proxy.down();
    let s = ctx
        .wait_popup("F", "#error visible with the server down", |s| {
            s["errorVisible"] == true
        })
        .await;
    let up = ctx.sim.proxy.up().await;
    let s = s?;
    up?;
    let msg = s["errorText"].as_str().unwrap_or_default().to_string();
    clear_message(&msg)?;
    state_kept(ctx, "F").await?;
    let s2 = ctx
        .wait_popup("F", "recovery after the server is back", |s| {
            s["errorVisible"] == false && s["status"] != "NONE"
        })
        .await?;
    state_kept(ctx, "F").await?;
    Ok(format!("(error: {msg:?}; after: {})", brief(&s2)))
}

/// A fault while pairing starts (start-session answers 500): #error, state kept, #pair retries.
async fn pairing_fault_scenario(ctx: &mut Ctx) -> Result<String> {
    ctx.create_tab("G", "G").await?;
    // The popup may start pairing as soon as it opens: the fault is in place before that
    // (no other tab starts a session meanwhile).
    ctx.sim
        .fault(json!({"route": "start-session", "kind": "http500", "count": 1000}))
        .await?;
    ctx.open_popup("G").await?;
    let s = ctx
        .wait_popup("G", "an ID", |s| {
            s["idTitle"].as_str().is_some_and(is_session_id)
        })
        .await?;
    let id = s["idTitle"].as_str().unwrap().to_string();
    ctx.tabs.get_mut("G").unwrap().session = Some(id.clone());
    if ctx.popup("G").await?["errorVisible"] == false {
        let pair = ctx
            .b
            .wd
            .execute(
                "const e = document.querySelector('#pair'); return !!e && !e.hidden;",
                vec![],
            )
            .await?;
        if pair == json!(true) {
            ctx.click_in_popup("G", "#pair").await?;
        }
    }
    let s = ctx
        .wait_popup("G", "#error when start-session fails", |s| {
            s["errorVisible"] == true
        })
        .await;
    ctx.sim.clear_faults().await?;
    let s = s?;
    let msg = s["errorText"].as_str().unwrap_or_default().to_string();
    clear_message(&msg)?;
    let (tab_key, _, _) = ctx.keys_of(ctx.tab("G")?.id, &id).await?;
    ensure(
        tab_key == json!(id),
        format!("G's ID lost after a failed pairing: {tab_key}"),
    )?;
    ctx.click_in_popup("G", "#pair").await?;
    ctx.wait_popup("G", "QRCODE after retrying #pair", |s| {
        qr_shown(s) && s["errorVisible"] == false
    })
    .await?;
    state_kept(ctx, "G").await?;
    Ok(format!("(error: {msg:?})"))
}

async fn faults(kind: Kind) {
    let mut ctx = Ctx::new(kind).await;
    let mut report = Report::new(kind, "faults");
    settings_and_paired_tab(&mut ctx, &mut report, "F").await;
    for fault in [
        "http500",
        "unauthorized",
        "malformed_json",
        "html_error",
        "oversized",
        "drop",
    ] {
        let r = fault_scenario(&mut ctx, fault).await;
        report.record(&format!("fault {fault} on status-session"), r);
    }
    let r = server_down_scenario(&mut ctx).await;
    report.record("server down (connection refused)", r);
    let r = pairing_fault_scenario(&mut ctx).await;
    report.record("fault http500 on start-session while pairing", r);
    let r = async {
        let id = ctx.session_of("F")?;
        ctx.sim.scan(&id).await?;
        ctx.wait_popup("F", "CONNECTED after the faults", |s| {
            s["status"] == "CONNECTED"
        })
        .await
        .map(|s| brief(&s))
    }
    .await;
    report.record("after the faults, a scan connects F", r);
    ctx.b.quit().await;
    report.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_faults() {
    faults(Kind::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_faults() {
    faults(Kind::Firefox).await;
}

// ---------------------------------------------------------------------------------------------
// Chromium: the service worker stops mid-pairing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_service_worker_restart() {
    let mut ctx = Ctx::new(Kind::Chromium).await;
    let mut report = Report::new(Kind::Chromium, "service-worker");
    settings_and_paired_tab(&mut ctx, &mut report, "S").await;
    let r = async {
        let id = ctx.session_of("S")?;
        let tab = ctx.tab("S")?.id;
        let before = ctx.keys_of(tab, &id).await?;
        let cdp = ctx.b.cdp.as_ref().unwrap();
        let how = cdp.stop_extension_worker(&ctx.b.ext_id).await?;
        // The worker comes back (the popup reconnects / polling resumes).
        cdp.wait_extension_worker(&ctx.b.ext_id, WAIT)
            .await
            .map_err(|e| format!("the worker did not come back after the stop: {e}"))?;
        let after = ctx.keys_of(tab, &id).await?;
        ensure(
            after.0 == before.0,
            format!("ID changed: {:?} -> {:?}", before.0, after.0),
        )?;
        ensure(
            after.2 == before.2,
            format!("token changed: {:?} -> {:?}", before.2, after.2),
        )?;
        ensure(
            after.1["id"] == before.1["id"] && after.1["createdAt"] == before.1["createdAt"],
            format!("record changed: {} -> {}", before.1, after.1),
        )?;
        let s = ctx
            .wait_popup("S", "the popup shows the state again", |s| {
                s["status"] == "QRCODE"
                    && s["qrVisible"] == true
                    && s["errorVisible"] == false
                    && s["idTitle"] == json!(id)
            })
            .await?;
        ctx.sim.scan(&id).await?;
        let s2 = ctx
            .wait_popup("S", "CONNECTED after a scan after the restart", |s| {
                s["status"] == "CONNECTED"
            })
            .await?;
        Ok(format!(
            "(stopped with {how}; popup then {}; after scan {})",
            brief(&s),
            brief(&s2)
        ))
    }
    .await;
    report.record(
        "worker stopped mid-pairing: nothing lost, popup recovers, scan picked up",
        r,
    );
    ctx.b.quit().await;
    report.finish();
}

// ---------------------------------------------------------------------------------------------
// Server timeouts: an unscanned QR expires (Refresh QR code); a start hangs (Restart session)

async fn expiry_and_hang(kind: Kind) {
    let sim = Sim::start_with_auto_close(std::time::Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ctx = Ctx::with_sim(kind, sim).await;
    let mut report = Report::new(kind, "expiry-and-hang");
    settings_and_paired_tab(&mut ctx, &mut report, "E").await;
    let r = async {
        let id = ctx.session_of("E")?;
        let first_qr = ctx.popup("E").await?["qrSrc"].clone();
        let expired = ctx
            .wait_popup("E", "the QR expired: no QR, a Refresh action", |s| {
                s["status"] == "CLOSED"
                    && s["phase"] == "expired"
                    && s["qrVisible"] == false
                    && s["pairVisible"] == true
            })
            .await?;
        ensure(
            ctx.sim_status(&id).await? == Some("CLOSED".into()),
            "the sim does not report the session CLOSED",
        )?;
        ctx.click_in_popup("E", "#pair").await?;
        let fresh = ctx
            .wait_popup("E", "a fresh QR after Refresh", |s| {
                s["status"] == "QRCODE" && s["qrVisible"] == true && s["qrSrc"] != first_qr
            })
            .await?;
        ctx.sim.scan(&id).await?;
        ctx.wait_popup("E", "CONNECTED after scanning the fresh QR", |s| {
            s["status"] == "CONNECTED" && s["qrVisible"] == false
        })
        .await?;
        Ok(format!(
            "(expired: {:?} / {:?}; then {})",
            expired["statusText"],
            expired["pairText"],
            brief(&fresh)
        ))
    }
    .await;
    report.record(
        "an expired QR offers Refresh, which shows a fresh QR that pairs",
        r,
    );
    let r = stuck_initializing(&mut ctx).await;
    report.record(
        "INITIALIZING for minutes is reported with Restart, which recovers",
        r,
    );
    ctx.b.quit().await;
    report.finish();
}

/// The server's known hang (contract §9.1): a start that never leaves INITIALIZING. The popup
/// must call it stuck after its threshold (150 s) and offer a restart that recovers.
async fn stuck_initializing(ctx: &mut Ctx) -> Result<String> {
    paired_tab(ctx, "K").await?;
    let id = ctx.session_of("K")?;
    ctx.sim.stuck(&id).await?;
    ctx.wait_popup("K", "the QR expired", |s| s["phase"] == "expired")
        .await?;
    ctx.click_in_popup("K", "#pair").await?;
    ctx.wait_popup("K", "INITIALIZING after the refresh", |s| {
        s["status"] == "INITIALIZING"
    })
    .await?;
    let started = std::time::Instant::now();
    let stuck = wait_for(
        "popup K: reported stuck",
        std::time::Duration::from_secs(200),
        || async {
            let s = ctx.popup("K").await?;
            Ok(if s["phase"] == "stuck" && s["pairVisible"] == true {
                Ok(s)
            } else {
                Err(brief(&s))
            })
        },
    )
    .await?;
    let after = started.elapsed().as_secs();
    ensure(
        stuck["status"] == "INITIALIZING" && stuck["pairText"] == "Restart session",
        format!("stuck view: {}", brief(&stuck)),
    )?;
    ctx.click_in_popup("K", "#pair").await?;
    let s = ctx
        .wait_popup("K", "a QR again after Restart", |s| {
            s["status"] == "QRCODE" && s["qrVisible"] == true
        })
        .await?;
    Ok(format!(
        "(stuck reported after ~{after} s: {:?}; after Restart: {})",
        stuck["statusText"],
        brief(&s)
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_expiry_and_hang() {
    expiry_and_hang(Kind::Chromium).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_expiry_and_hang() {
    expiry_and_hang(Kind::Firefox).await;
}
