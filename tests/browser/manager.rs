//! The session manager in real browsers: sessions that outlive their tabs and a browser
//! restart (the durable index in `storage.local`), re-attaching a session to another tab,
//! account names, drop notifications from the refresh alarm, the migration of the one-server
//! settings, the Sessions page's "open all", logout, export and import, and two servers each
//! with its own secret. Every scenario ends with [`no_secrets_at_rest`].

use std::cell::Cell;

use fantoccini::wd::WindowHandle;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::ctx::{is_session_id, Ctx, PopupSnapshot};
use crate::harness::{ensure, wait_for, wd, Build, Kind, Result, TempDir, WAIT};
use crate::sim::Sim;

/// The accounts the phone "scans" as: (digits, pushname).
const ACCOUNT_1: (&str, &str) = ("5511988880001", "Loja Centro");
const ACCOUNT_2: (&str, &str) = ("5521977770002", "Filial Norte");

/// `Name (+digits)`, as the popup and the notification show an account.
fn shown(account: (&str, &str)) -> String {
    format!("{} (+{})", account.1, account.0)
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The popup's session-manager parts, in one round trip.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Look {
    /// `#look` shown.
    look: bool,
    label: String,
    colour: String,
    /// `#account`'s text while shown.
    account: Option<String>,
    detach: bool,
    /// `#attach-list button[data-session-id]` while `#attach` shows: `[id, text, status]`.
    attach: Vec<(String, String, String)>,
    /// `#server-choice`'s option values while it shows.
    server_choice: Option<Vec<String>>,
}

const LOOK: &str = r#"
const q = s => document.querySelector(s);
const vis = e => !!e && !e.closest('[hidden]') && getComputedStyle(e).display !== 'none';
return {
  look: vis(q('#look')),
  label: q('#label').value,
  colour: q('#colour').value,
  account: vis(q('#account')) ? q('#account').textContent.trim() : null,
  detach: vis(q('#detach')),
  attach: vis(q('#attach')) ? [...document.querySelectorAll('#attach-list button[data-session-id]')]
    .map(b => [b.getAttribute('data-session-id'), b.textContent.trim(), b.getAttribute('data-status')]) : [],
  serverChoice: vis(q('#server-choice')) ? [...q('#server-choice').options].map(o => o.value) : null,
};
"#;

impl Look {
    fn attachable(&self, id: &str) -> Option<&(String, String, String)> {
        self.attach.iter().find(|a| a.0 == id)
    }
}

/// Tab `name`'s popup: the shared snapshot and the session-manager parts.
async fn view(ctx: &Ctx, name: &str) -> Result<(PopupSnapshot, Look)> {
    let snap = ctx.popup(name).await?;
    let v = ctx.b.execute(LOOK, vec![]).await?;
    let look = serde_json::from_value(v.clone()).map_err(|e| format!("popup look {v}: {e}"))?;
    Ok((snap, look))
}

/// Waits until tab `name`'s popup satisfies `pred`; fails if a QR code ever shows meanwhile
/// and `no_qr` is set.
async fn wait_view(
    ctx: &Ctx,
    name: &str,
    what: &str,
    no_qr: bool,
    pred: impl Fn(&PopupSnapshot, &Look) -> bool,
) -> Result<(PopupSnapshot, Look)> {
    let qr_seen = Cell::new(false);
    let r = wait_for(&format!("popup {name}: {what}"), WAIT, || async {
        let (s, l) = view(ctx, name).await?;
        qr_seen.set(qr_seen.get() || s.qr_visible);
        Ok(if pred(&s, &l) {
            Ok((s, l))
        } else {
            Err(format!("{} / {l:?}", s.brief()))
        })
    })
    .await?;
    ensure(
        !(no_qr && qr_seen.get()),
        format!("popup {name}: a QR code showed while waiting for {what}"),
    )?;
    Ok(r)
}

/// Waits until tab `name`'s popup shows CONNECTED with `account` in `#account`.
async fn wait_connected_as(ctx: &Ctx, name: &str, account: (&str, &str)) -> Result<()> {
    let expected = shown(account);
    wait_view(
        ctx,
        name,
        &format!("CONNECTED as {expected}"),
        false,
        |s, l| s.status() == "CONNECTED" && l.account.as_deref() == Some(expected.as_str()),
    )
    .await
    .map(drop)
}

/// Types `label` into tab `name`'s `#label` and commits it (the change event leaving the field
/// fires), then waits for the index to hold it.
pub async fn label_in_popup(ctx: &Ctx, name: &str, label: &str) -> Result<()> {
    let id = ctx.session_of(name)?;
    ctx.to_popup(name).await?;
    ctx.b
        .execute(
            "const i = document.querySelector('#label'); i.focus(); i.value = '';",
            vec![],
        )
        .await?;
    ctx.b
        .find("#label")
        .await?
        .send_keys(label)
        .await
        .map_err(|e| format!("type into #label: {e}"))?;
    ctx.b
        .execute(
            "const i = document.querySelector('#label');\
             i.dispatchEvent(new Event('change', { bubbles: true })); i.blur();",
            vec![],
        )
        .await?;
    ctx.wait_index(&format!("{id} labelled {label:?}"), |i| {
        i[&id]["label"] == json!(label)
    })
    .await
    .map(drop)
}

/// New tabs paired, scanned as their accounts, CONNECTED and named in their popups, each step
/// for all of them before the next: `(tab, account, label)` each. Returns their session IDs.
async fn named_sessions<const N: usize>(
    ctx: &mut Ctx,
    tabs: [(&'static str, (&str, &str), &str); N],
) -> Result<[String; N]> {
    let mut ids: [String; N] = std::array::from_fn(|_| String::new());
    for (id, (name, ..)) in ids.iter_mut().zip(tabs) {
        *id = ctx.paired_tab(name).await?;
    }
    for (id, (_, account, _)) in ids.iter().zip(tabs) {
        ctx.sim.scan_as(id, account.0, account.1).await?;
    }
    for (name, account, _) in tabs {
        wait_connected_as(ctx, name, account).await?;
    }
    for (name, _, label) in tabs {
        label_in_popup(ctx, name, label).await?;
    }
    Ok(ids)
}

/// The s1 server with its secret remembered (`storage.local`), as a user who wants the
/// sessions back after a browser restart without typing the secret again sets it.
async fn settings_remembered(ctx: &Ctx) -> Result<()> {
    let reply = ctx
        .options_request(json!({
            "type": "saveServer", "id": "s1", "name": "My server",
            "serverUrl": ctx.sim.server_url(), "secretKey": ctx.sim.secret,
            "rememberSecret": true,
        }))
        .await?;
    ensure(
        reply["type"] == "saved",
        format!("saveServer answered {reply}"),
    )
}

/// The sim's log entries.
async fn requests(sim: &Sim) -> Result<Vec<Value>> {
    Ok(sim.log().await?["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// `route status auth` of each of `session`'s requests from entry `from` on.
fn routes_of(log: &[Value], session: &str, from: usize) -> Vec<String> {
    log.iter()
        .skip(from)
        .filter(|r| r["session"] == json!(session))
        .map(|r| {
            format!(
                "{} {} {}",
                r["route"].as_str().unwrap_or("?"),
                r["status"],
                r["auth"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// Every token in `storage.session`.
fn session_tokens(session_area: &Value) -> Vec<String> {
    session_area
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("wpp_token_"))
        .filter_map(|(_, v)| v.as_str().map(str::to_string))
        .collect()
}

/// The storage.session keys that start with `prefix`, with their values.
fn keys_with(session_area: &Value, prefix: &str) -> Vec<(String, Value)> {
    session_area
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// No token and no secret at rest: every token the sims saw (their logs) and every token the
/// browser holds (`storage.session`) is absent from `storage.local` and `storage.sync`, and
/// so is each sim's secret, except where the user asked to remember it: the `secretKey` of a
/// server with `rememberSecret` in the settings.
pub async fn no_secrets_at_rest(ctx: &Ctx, sims: &[&Sim]) -> Result<String> {
    let st = ctx.storage().await?;
    let mut tokens = session_tokens(&st["session"]);
    for sim in sims {
        let log = sim.log().await?;
        for r in log["requests"].as_array().into_iter().flatten() {
            if let Some(t) = r["token"].as_str() {
                tokens.push(t.to_string());
            }
        }
        for auth in log["sessions"].as_object().into_iter().flatten() {
            for t in auth.1["tokens"].as_array().into_iter().flatten() {
                if let Some(t) = t.as_str() {
                    tokens.push(t.to_string());
                }
            }
        }
    }
    // Only real tokens (a redacted or malformed one is no secret).
    tokens.retain(|t| t.len() >= 20);
    tokens.sort();
    tokens.dedup();
    let mut local = st["local"].clone();
    let mut remembered = 0;
    if let Some(servers) = local["wpp_settings"]["servers"].as_array_mut() {
        for s in servers {
            if s["rememberSecret"] == json!(true) {
                if let Some(o) = s.as_object_mut() {
                    remembered += usize::from(o.remove("secretKey").is_some());
                }
            }
        }
    }
    let at_rest = json!({ "local": local, "sync": st["sync"] }).to_string();
    for t in &tokens {
        ensure(
            !at_rest.contains(t.as_str()),
            format!("a token is at rest in storage.local/sync: {at_rest}"),
        )?;
    }
    for sim in sims {
        ensure(
            !at_rest.contains(sim.secret.as_str()),
            format!(
                "the secret {:?} is at rest outside a remembered server's secretKey: {at_rest}",
                sim.secret
            ),
        )?;
    }
    ensure(
        !tokens.is_empty(),
        "no token to look for: the scenario never paired?",
    )?;
    Ok(format!(
        "no secret at rest ({} tokens, {} secrets looked for; {remembered} remembered secretKey)",
        tokens.len(),
        sims.len()
    ))
}

/// Closes tab `name`'s popup window (the popup is gone, as when the user clicks away).
async fn close_popup(ctx: &mut Ctx, name: &str) -> Result<()> {
    ctx.to_popup(name).await?;
    ctx.b
        .wd
        .close_window()
        .await
        .map_err(wd("close the popup window"))?;
    ctx.tabs.get_mut(name).ok_or("no such tab")?.popup.take();
    ctx.to_main().await
}

/// Closes tab `name` itself (`tabs.remove`), after its popup.
async fn close_tab(ctx: &mut Ctx, name: &str) -> Result<()> {
    if ctx.tab(name)?.popup.is_some() {
        close_popup(ctx, name).await?;
    }
    ctx.eval(
        "await api.tabs.remove(args[0]);",
        vec![json!(ctx.tab_id(name)?)],
    )
    .await
    .map(drop)
}

/// Clicks the attach button of session `id` in tab `name`'s popup.
async fn attach_in_popup(ctx: &Ctx, name: &str, id: &str) -> Result<()> {
    ctx.click_in_popup(
        name,
        &format!("#attach-list button[data-session-id=\"{id}\"]"),
    )
    .await
}

/// A browser restart, as far as each browser allows one with the extension:
/// Chromium quits and starts again on the same profile; Firefox cannot keep a temporary
/// add-on across a restart, so its `storage.session` is cleared and the add-on reloaded
/// (`runtime.reload()`): what a restart leaves (storage.local) and loses (storage.session,
/// the worker's memory) is the same. Returns the new world and what was done.
pub async fn restart(ctx: Ctx) -> Result<(Ctx, &'static str)> {
    match ctx.b.kind {
        Kind::Chromium => {
            let Ctx { b, sim, .. } = ctx;
            let b = b.restart_chromium(&Build::test()?.chrome_dir).await?;
            Ok((
                Ctx::with_browser(b, sim).await?,
                "Chromium quit and relaunched on the same profile",
            ))
        }
        Kind::Firefox => {
            let mut ctx = ctx;
            reload_firefox_extension(&mut ctx).await?;
            Ok((
                ctx,
                "Firefox: storage.session cleared and the add-on reloaded (runtime.reload)",
            ))
        }
    }
}

/// Firefox: clears `storage.session` and reloads the add-on; a plain window survives, which
/// becomes the control window (on the options page) once the add-on serves pages again.
async fn reload_firefox_extension(ctx: &mut Ctx) -> Result<()> {
    let keep = ctx.b.new_window().await?;
    ctx.b.switch_to(&keep, "switch to the kept window").await?;
    ctx.b
        .wd
        .goto(&ctx.sim.page("kept"))
        .await
        .map_err(wd("open a plain page"))?;
    let old_main = ctx.main.clone();
    ctx.eval(
        "await api.storage.session.clear(); setTimeout(() => api.runtime.reload(), 50);",
        vec![],
    )
    .await?;
    // The add-on's pages go with it.
    wait_for("the add-on's pages closed by the reload", WAIT, || async {
        let windows = ctx.b.wd.windows().await.map_err(wd("list windows"))?;
        Ok(if windows.contains(&old_main) {
            Err(format!(
                "{} windows, the control page among them",
                windows.len()
            ))
        } else {
            Ok(())
        })
    })
    .await?;
    ctx.b.switch_to(&keep, "switch to the kept window").await?;
    ctx.open_options_page().await?;
    ctx.main = keep;
    for tab in ctx.tabs.values_mut() {
        tab.popup = None;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. A browser restart

/// Two tabs paired as two accounts and named; after a browser restart a new tab's popup
/// lists both; attaching one shows it CONNECTED with its account, without a QR: the worker
/// minted a fresh token (generate-token) and asked status-session, which accepted it.
pub async fn sessions_survive_a_browser_restart(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    settings_remembered(&ctx).await?;
    let [a, b] = named_sessions(
        &mut ctx,
        [("A", ACCOUNT_1, "Reception"), ("B", ACCOUNT_2, "Warehouse")],
    )
    .await?;
    let before = ctx.index().await?;
    let old_tokens = session_tokens(&ctx.storage().await?["session"]);
    ensure(
        old_tokens.len() == 2,
        format!("two tokens before: {old_tokens:?}"),
    )?;
    let mark = requests(&ctx.sim).await?.len();

    let (mut ctx, how) = restart(ctx).await?;
    let st = ctx.storage().await?;
    ensure(
        keys_with(&st["session"], "wpp_token_").is_empty()
            && keys_with(&st["session"], "wpp_tab_").is_empty(),
        format!("storage.session survived the restart: {}", st["session"]),
    )?;
    let after = &st["local"]["wpp_sessions"];
    for (id, label) in [(&a, "Reception"), (&b, "Warehouse")] {
        ensure(
            after[id]["label"] == json!(label)
                && after[id]["lastStatus"] == "CONNECTED"
                && after[id]["account"] == before[id]["account"],
            format!("index entry {id} after the restart: {after} (before: {before})"),
        )?;
    }

    ctx.create_tab("N").await?;
    ctx.open_popup("N").await?;
    let (_, look) = wait_view(&ctx, "N", "both sessions offered", true, |s, l| {
        s.session_id.is_none()
            && l.attachable(&a)
                .is_some_and(|x| x.1.contains("Reception") && x.1.contains(ACCOUNT_1.1))
            && l.attachable(&b)
                .is_some_and(|x| x.1.contains("Warehouse") && x.1.contains(ACCOUNT_2.1))
    })
    .await?;
    ensure(
        look.attach.len() == 2,
        format!("the attach list offers more: {:?}", look.attach),
    )?;
    attach_in_popup(&ctx, "N", &a).await?;
    let expected = shown(ACCOUNT_1);
    wait_view(&ctx, "N", "A's session CONNECTED, no QR", true, |s, l| {
        s.id() == a
            && s.status() == "CONNECTED"
            && !s.qr_visible
            && l.look
            && l.detach
            && !l.colour.is_empty()
            && l.label == "Reception"
            && l.account.as_deref() == Some(expected.as_str())
    })
    .await?;
    ctx.tabs.get_mut("N").unwrap().session = Some(a.clone());

    // The server's view: a fresh token minted, then status-session with it, no start. (The
    // popup shows the index's last status, CONNECTED, before the server has answered: the
    // check is the server's answer, then the popup once more.)
    let log = wait_for("status-session for A after the restart", WAIT, || async {
        let log = requests(&ctx.sim).await?;
        let since = routes_of(&log, &a, mark);
        Ok(
            match since.iter().any(|r| r.starts_with("status-session")) {
                true => Ok(log),
                false => Err(format!("{since:?}")),
            },
        )
    })
    .await?;
    let since = routes_of(&log, &a, mark);
    ensure(
        since
            .first()
            .is_some_and(|r| r.starts_with("generate-token 20"))
            && since.get(1).is_some_and(|r| r == "status-session 200 ok")
            && !since.iter().any(|r| r.starts_with("start-session")),
        format!("A's requests after the restart: {since:?}"),
    )?;
    wait_view(
        &ctx,
        "N",
        "A's session still CONNECTED, no QR",
        true,
        |s, _| s.id() == a && s.status() == "CONNECTED" && s.source.as_deref() == Some("worker"),
    )
    .await?;
    let new_token = ctx.state_kept("N").await?;
    ensure(
        !old_tokens.contains(&new_token),
        "the token after the restart is an old one",
    )?;
    let status_token = log
        .iter()
        .skip(mark)
        .find(|r| r["session"] == json!(a) && r["route"] == "status-session")
        .and_then(|r| r["token"].as_str())
        .unwrap_or_default();
    ensure(
        status_token == new_token,
        "status-session after the restart did not carry the new token",
    )?;
    // Nothing lost: both entries, labels, accounts; B still waits unattached.
    let i = ctx.index().await?;
    ensure(
        i[&a]["label"] == "Reception" && i[&b]["label"] == "Warehouse",
        format!("index after attaching: {i}"),
    )?;
    ensure(
        routes_of(&log, &b, mark).is_empty(),
        format!(
            "B was asked for after the restart: {:?}",
            routes_of(&log, &b, mark)
        ),
    )?;
    let secrets = no_secrets_at_rest(&ctx, &[&ctx.sim]).await?;
    Ok(format!("{how}; A after: {since:?}; {secrets}"))
}

// ---------------------------------------------------------------------------------------------
// 2. A closed tab

/// A tab whose session never started takes it along when it closes; a connected tab's
/// session stays listed with its token when its tab closes (nothing is sent to the server),
/// and another tab's popup attaches it again: same ID, same token, CONNECTED.
pub async fn a_closed_tabs_session_stays_listed_and_can_be_reattached(
    kind: Kind,
) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    // Before any settings: the popup gives the tab a session that cannot start.
    ctx.create_tab("U").await?;
    let unstarted = ctx.open_popup_for_id("U").await?;
    ctx.wait_index("the unstarted session listed", |i| {
        i.get(&unstarted).is_some()
    })
    .await?;
    close_tab(&mut ctx, "U").await?;
    ctx.wait_index("the unstarted session forgotten with its tab", |i| {
        i.get(&unstarted).is_none()
    })
    .await?;

    ctx.settings_fast().await?;
    let [a] = named_sessions(&mut ctx, [("A", ACCOUNT_1, "Front desk")]).await?;
    let token = ctx.state_kept("A").await?;
    let tab_a = ctx.tab_id("A")?;
    let mark = requests(&ctx.sim).await?.len();
    close_tab(&mut ctx, "A").await?;
    wait_for("A's tab binding gone", WAIT, || async {
        let st = ctx.storage().await?;
        let binding = &st["session"][format!("wpp_tab_{tab_a}")];
        Ok(if binding.is_null() {
            Ok(())
        } else {
            Err(binding.to_string())
        })
    })
    .await?;
    let st = ctx.storage().await?;
    ensure(
        st["session"][format!("wpp_token_{a}")] == json!(token)
            && st["local"]["wpp_sessions"][&a]["label"] == "Front desk"
            && st["local"]["wpp_sessions"][&a]["lastStatus"] == "CONNECTED",
        format!("after closing A's tab: {st}"),
    )?;
    ensure(
        ctx.sim.status_of(&a).await?.as_deref() == Some("CONNECTED"),
        "closing the tab changed the server's session",
    )?;

    ctx.create_tab("B").await?;
    ctx.open_popup("B").await?;
    let expected = shown(ACCOUNT_1);
    let (s, _) = wait_view(&ctx, "B", "A's session offered", true, |s, l| {
        s.session_id.is_none()
            && l.attach.len() == 1
            && l.attachable(&a).is_some_and(|x| {
                x.1.contains("Front desk") && x.1.contains(&expected) && x.2 == "CONNECTED"
            })
    })
    .await?;
    ensure(
        s.pair_visible,
        format!(
            "no offer to pair a new account beside the list: {}",
            s.brief()
        ),
    )?;
    attach_in_popup(&ctx, "B", &a).await?;
    wait_view(&ctx, "B", "A's session CONNECTED in B", true, |s, l| {
        s.id() == a
            && s.status() == "CONNECTED"
            && l.look
            && l.detach
            && l.label == "Front desk"
            && l.account.as_deref() == Some(expected.as_str())
    })
    .await?;
    ctx.tabs.get_mut("B").unwrap().session = Some(a.clone());
    let token_b = ctx.state_kept("B").await?;
    ensure(token_b == token, "the token changed across the re-attach")?;
    let since = routes_of(&requests(&ctx.sim).await?, &a, mark);
    ensure(
        !since
            .iter()
            .any(|r| r.starts_with("start-session") || r.starts_with("generate-token"))
            && !since
                .iter()
                .any(|r| r.starts_with("logout-session") || r.starts_with("close-session")),
        format!("A's requests from the tab's close on: {since:?}"),
    )?;
    let secrets = no_secrets_at_rest(&ctx, &[&ctx.sim]).await?;
    Ok(format!(
        "unstarted {unstarted} forgotten; A's requests after its tab closed: {since:?}; {secrets}"
    ))
}

// ---------------------------------------------------------------------------------------------
// 3. A drop notification

/// Counts `notifications.create` calls in the background, from now on (a test hook, set
/// from the test only): Chromium over CDP in the service worker, Firefox from the control
/// page on the background page's `chrome.notifications`.
async fn count_notifications(ctx: &Ctx) -> Result<()> {
    match ctx.b.kind {
        Kind::Chromium => {
            let cdp = ctx.b.cdp.as_ref().ok_or("Chromium has CDP")?;
            cdp.eval_in_worker(
                &ctx.b.ext_id,
                "(() => { const n = chrome.notifications; const orig = n.create.bind(n);\
                 globalThis.__wppCreated = [];\
                 globalThis.__wppOutcomes = [];\
                 n.create = (...a) => { globalThis.__wppCreated.push(JSON.stringify(a.filter(x => typeof x !== 'function')));\
                   const p = orig(...a); Promise.resolve(p).then(v => globalThis.__wppOutcomes.push('created ' + v), e => globalThis.__wppOutcomes.push('rejected ' + e)); return p; };\
                 return n.create !== orig; })()",
                WAIT,
            )
            .await
            .and_then(|v| {
                ensure(v == json!(true), "chrome.notifications.create could not be wrapped")
            })
        }
        Kind::Firefox => ctx
            .eval(
                "const bg = await api.runtime.getBackgroundPage();\
                 const n = bg.chrome.notifications; const orig = n.create;\
                 bg.__wppCreated = new bg.Array();\
                 bg.__wppOutcomes = new bg.Array();\
                 n.create = function (...a) { bg.__wppCreated.push(JSON.stringify(a)); const p = orig.apply(n, a);\
                   p.then(v => bg.__wppOutcomes.push('created ' + v), e => bg.__wppOutcomes.push('rejected ' + e)); return p; };\
                 return true;",
                vec![],
            )
            .await
            .map(drop),
    }
}

/// The `notifications.create` calls counted so far: `[id, options]` each.
async fn notifications_created(ctx: &Ctx) -> Result<Vec<Value>> {
    let v = match ctx.b.kind {
        Kind::Chromium => {
            let cdp = ctx.b.cdp.as_ref().ok_or("Chromium has CDP")?;
            cdp.eval_in_worker(&ctx.b.ext_id, "globalThis.__wppCreated ?? null", WAIT)
                .await?
        }
        Kind::Firefox => {
            ctx.eval(
                "const bg = await api.runtime.getBackgroundPage();\
                 return bg.__wppCreated ? [...bg.__wppCreated] : null;",
                vec![],
            )
            .await?
        }
    };
    let calls = v
        .as_array()
        .ok_or_else(|| format!("the notification counter is gone (worker restarted?): {v}"))?;
    calls
        .iter()
        .map(|c| {
            serde_json::from_str(c.as_str().unwrap_or_default())
                .map_err(|e| format!("counted call {c}: {e}"))
        })
        .collect()
}

/// What became of each counted `notifications.create` call (`created <id>` / `rejected <why>`).
async fn notification_outcomes(ctx: &Ctx) -> Result<Value> {
    match ctx.b.kind {
        Kind::Chromium => {
            let cdp = ctx.b.cdp.as_ref().ok_or("Chromium has CDP")?;
            cdp.eval_in_worker(&ctx.b.ext_id, "globalThis.__wppOutcomes ?? null", WAIT)
                .await
        }
        Kind::Firefox => {
            ctx.eval(
                "const bg = await api.runtime.getBackgroundPage();\
                 return bg.__wppOutcomes ? [...bg.__wppOutcomes] : null;",
                vec![],
            )
            .await
        }
    }
}

/// One run of the refresh alarm on a worker started afresh, as when the alarm wakes a worker
/// the browser stopped: the alarm skips a session checked within half a period, which only
/// the worker's memory knows. Chromium: the service worker is stopped and woken (an options
/// request); Firefox, whose event page cannot be stopped alone: the add-on is reloaded
/// (storage.session cleared, see [`reload_firefox_extension`]). Returns the
/// `notifications.create` calls of that run (`[id, options]`) and what became of each.
async fn alarm_on_a_fresh_worker(ctx: &mut Ctx) -> Result<(Vec<Value>, Value)> {
    match &ctx.b.cdp {
        Some(cdp) => {
            if cdp.extension_worker(&ctx.b.ext_id).await?.is_some() {
                cdp.stop_extension_worker(&ctx.b.ext_id).await?;
            }
            ctx.options_request(json!({ "type": "getSettings" }))
                .await?;
        }
        None => reload_firefox_extension(ctx).await?,
    }
    count_notifications(ctx).await?;
    ctx.to_main().await?;
    ctx.b
        .call_background("alarm", vec![json!({ "name": "wpp-tabs-refresh" })])
        .await?;
    let created = notifications_created(ctx).await?;
    let outcomes = wait_for("each notification's creation settled", WAIT, || async {
        let v = notification_outcomes(ctx).await?;
        Ok(match v.as_array().map(Vec::len) {
            Some(n) if n == created.len() => Ok(v),
            _ => Err(v.to_string()),
        })
    })
    .await?;
    Ok((created, outcomes))
}

/// The message of the one notification in `created` (`notifications.create` calls), which must
/// be session `id`'s drop notification; `when` names the alarm in an error.
fn one_drop_notification<'a>(created: &'a [Value], id: &str, when: &str) -> Result<&'a str> {
    ensure(
        created.len() == 1 && created[0][0] == json!(format!("wpp-drop:{id}")),
        format!("notifications.create calls at the alarm {when}: {created:?}"),
    )?;
    Ok(created[0][1]["message"].as_str().unwrap_or_default())
}

/// A connected, named account is unlinked on the phone while no popup is open: the refresh
/// alarm notices it and raises one notification naming the session and the account; the next
/// alarm raises none. Then the server stops answering: one notification for the other
/// connected session, and none at the next alarm (the index remembers it was notified).
pub async fn an_unlinked_account_raises_one_notification(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    // Remembered: Firefox's add-on reload (its stand-in for a worker restart) clears
    // storage.session.
    settings_remembered(&ctx).await?;
    let [a, b] = named_sessions(
        &mut ctx,
        [("A", ACCOUNT_2, "Sales"), ("B", ACCOUNT_1, "Support")],
    )
    .await?;
    ctx.wait_index("A and B recorded CONNECTED with their accounts", |i| {
        i[&a]["lastStatus"] == "CONNECTED"
            && i[&a]["account"]["phone"] == ACCOUNT_2.0
            && i[&b]["lastStatus"] == "CONNECTED"
            && i[&b]["account"]["phone"] == ACCOUNT_1.0
    })
    .await?;
    close_popup(&mut ctx, "A").await?;
    close_popup(&mut ctx, "B").await?;

    // Unlinked on the phone: one notification, naming the session and the account.
    ctx.sim.unlink(&a).await?;
    let (created, outcomes) = alarm_on_a_fresh_worker(&mut ctx).await?;
    let message = one_drop_notification(&created, &a, "after the unlink")?;
    ensure(
        message.contains("Sales") && message.contains(&shown(ACCOUNT_2)),
        format!("the notification does not name the session and account: {message:?}"),
    )?;
    let i = ctx
        .wait_index("A's drop recorded and notified", |i| {
            i[&a]["dropNotified"] == json!(true) && i[&a]["lastStatus"] != "CONNECTED"
        })
        .await?;
    let id_a = format!("wpp-drop:{a}");
    let listed = ctx
        .eval("return await api.notifications.getAll();", vec![])
        .await;
    let shown_note = match &listed {
        Ok(all) if all.get(&id_a).is_some() => "getAll lists it".to_string(),
        Ok(all) if kind == Kind::Chromium => {
            return Err(format!(
                "notifications.getAll() does not list {id_a}: {all}"
            ))
        }
        Ok(all) => format!("getAll does not list it (headless Firefox shows none): {all}"),
        Err(e) => format!("getAll failed: {e}"),
    };
    let (again, _) = alarm_on_a_fresh_worker(&mut ctx).await?;
    ensure(
        again.is_empty(),
        format!("the next alarm notified again: {again:?}"),
    )?;

    // The server stops answering: B (still connected when last seen) is notified once.
    ctx.sim.proxy.down();
    let (created, _) = alarm_on_a_fresh_worker(&mut ctx).await?;
    let down_message = one_drop_notification(&created, &b, "with the server down")?;
    ensure(
        down_message.contains("Support")
            && down_message.contains(&shown(ACCOUNT_1))
            && down_message.contains("stopped answering"),
        format!("the server-down notification: {down_message:?}"),
    )?;
    ctx.wait_index("B's drop notified", |i| {
        i[&b]["dropNotified"] == json!(true)
    })
    .await?;
    let (again, _) = alarm_on_a_fresh_worker(&mut ctx).await?;
    ensure(
        again.is_empty(),
        format!("the next alarm with the server still down notified again: {again:?}"),
    )?;
    ctx.sim.proxy.up().await?;
    let secrets = no_secrets_at_rest(&ctx, &[&ctx.sim]).await?;
    Ok(format!(
        "unlinked: {message:?} (create: {outcomes}; {shown_note}; lastStatus {}); server down: \
         {down_message:?}; none again at the next alarms; {secrets}",
        i[&a]["lastStatus"],
    ))
}

// ---------------------------------------------------------------------------------------------
// 4. The one-server settings shape

/// The settings as the version before several servers stored them (URL and, not remembered,
/// the secret in `storage.session` under `wpp_secret`): the worker, started afresh, reads
/// them, pairing works with that secret, and the settings are rewritten in the new shape.
pub async fn migration_from_the_old_settings_shape_keeps_url_and_secret(
    kind: Kind,
) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    let url = ctx.sim.server_url();
    // Firefox's event page cannot be stopped alone, and a reload would clear the
    // storage.session the old shape keeps its secret in: the add-on is reloaded first (the
    // new version starting afresh), then the old shape written; its next read migrates it.
    if kind == Kind::Firefox {
        reload_firefox_extension(&mut ctx).await?;
    }
    ctx.eval(
        "await api.storage.local.clear();\
         await api.storage.local.set({ wpp_settings: { serverUrl: args[0], rememberSecret: false, allowInsecureHttp: false } });\
         await api.storage.session.set({ wpp_secret: args[1] });",
        vec![json!(url), json!(ctx.sim.secret)],
    )
    .await?;
    let worker = match &ctx.b.cdp {
        Some(cdp) => {
            let how = cdp.stop_extension_worker(&ctx.b.ext_id).await?;
            format!("service worker stopped ({how}) after the write")
        }
        None => "add-on reloaded before the write".to_string(),
    };

    let id = ctx.paired_tab("A").await?;
    let log = requests(&ctx.sim).await?;
    let routes = routes_of(&log, &id, 0);
    ensure(
        routes
            .first()
            .is_some_and(|r| r.starts_with("generate-token 20"))
            && routes
                .iter()
                .any(|r| r.starts_with("start-session 20") && r.ends_with(" ok")),
        format!("A's requests: {routes:?}"),
    )?;
    ctx.sim.scan(&id).await?;
    ctx.wait_popup("A", "CONNECTED", |s| s.status() == "CONNECTED")
        .await?;

    let st = ctx.storage().await?;
    let settings = &st["local"]["wpp_settings"];
    ensure(
        settings["servers"].as_array().map(Vec::len) == Some(1)
            && settings["servers"][0]["id"] == "s1"
            && settings["servers"][0]["url"] == json!(url)
            && settings["servers"][0]["rememberSecret"] == false
            && settings["servers"][0].get("secretKey").is_none()
            && settings["defaultServer"] == "s1"
            && settings.get("serverUrl").is_none(),
        format!("wpp_settings after the migration: {settings}"),
    )?;
    ensure(
        st["session"].get("wpp_secret").is_none()
            && st["session"]["wpp_secret_s1"] == json!(ctx.sim.secret),
        format!("the secret after the migration: {}", st["session"]),
    )?;
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    let shown_url = ctx
        .b
        .execute("return document.querySelector('#server-url').value", vec![])
        .await?;
    ensure(
        shown_url == json!(url),
        format!("the options page shows {shown_url}, not {url}"),
    )?;
    let secrets = no_secrets_at_rest(&ctx, &[&ctx.sim]).await?;
    Ok(format!("{worker}; A: {routes:?}; {secrets}"))
}

// ---------------------------------------------------------------------------------------------
// 5. The Sessions page

/// One row of the Sessions page.
#[derive(Clone, Debug, Deserialize)]
struct ListedRow {
    id: String,
    /// `data-status`.
    status: Option<String>,
    /// `data-tab`: the tab it is attached to.
    tab: Option<String>,
    label: String,
    /// The `data-server-id` of its `section.server-group`.
    server: Option<String>,
}

impl ListedRow {
    fn in_tab(&self) -> bool {
        self.tab.as_deref().is_some_and(|t| !t.is_empty())
    }
}

/// What the Sessions page shows: its rows and groups.
#[derive(Clone, Debug, Deserialize)]
struct Listing {
    rows: Vec<ListedRow>,
    /// `#notice`: `[data-result, text]`.
    notice: (Option<String>, String),
    /// `#confirm-question` while the confirmation shows.
    confirm: Option<String>,
}

const LISTING: &str = r#"
const q = s => document.querySelector(s);
const vis = e => !!e && !e.closest('[hidden]') && getComputedStyle(e).display !== 'none';
return {
  rows: [...document.querySelectorAll('tr[data-session-id]')].map(r => {
    const label = r.querySelector('[data-field=label]');
    const group = r.closest('section.server-group');
    return {
      id: r.getAttribute('data-session-id'), status: r.getAttribute('data-status'),
      tab: r.getAttribute('data-tab'), label: label ? label.value : '',
      server: group ? group.getAttribute('data-server-id') : null,
    };
  }),
  notice: [q('#notice').getAttribute('data-result'), q('#notice').textContent.trim()],
  confirm: vis(q('#confirm')) ? q('#confirm-question').textContent : null,
};
"#;

impl Listing {
    fn row(&self, id: &str) -> Option<&ListedRow> {
        self.rows.iter().find(|r| r.id == id)
    }
}

/// The Sessions page, open in its own window.
struct SessionsPage {
    window: WindowHandle,
}

impl SessionsPage {
    async fn open(ctx: &Ctx) -> Result<SessionsPage> {
        let window = ctx.b.open_in_new_window("sessions.html").await?;
        // Its controls work once the worker's first list has come.
        wait_for("the Sessions page live", WAIT, || async {
            let v = ctx
                .b
                .execute("return document.body.getAttribute('data-source');", vec![])
                .await?;
            Ok(if v == json!("worker") {
                Ok(())
            } else {
                Err(v.to_string())
            })
        })
        .await?;
        Ok(SessionsPage { window })
    }

    async fn focus(&self, ctx: &Ctx) -> Result<()> {
        ctx.b
            .switch_to(&self.window, "switch to the Sessions page")
            .await
    }

    async fn wait(
        &self,
        ctx: &Ctx,
        what: &str,
        pred: impl Fn(&Listing) -> bool,
    ) -> Result<Listing> {
        wait_for(&format!("Sessions page: {what}"), WAIT, || async {
            self.focus(ctx).await?;
            let v = ctx.b.execute(LISTING, vec![]).await?;
            let l: Listing =
                serde_json::from_value(v.clone()).map_err(|e| format!("listing {v}: {e}"))?;
            Ok(if pred(&l) {
                Ok(l)
            } else {
                Err(format!("{l:?}"))
            })
        })
        .await
    }

    async fn click(&self, ctx: &Ctx, css: &str) -> Result<()> {
        self.focus(ctx).await?;
        ctx.b.click(css).await
    }

    /// Exports through the page (`#export`), capturing the download's text: in this test only,
    /// `URL.createObjectURL` is wrapped to read the blob it is given, and the download link's
    /// click is swallowed.
    async fn export(&self, ctx: &Ctx) -> Result<String> {
        self.focus(ctx).await?;
        ctx.b
            .execute(
                "const saved = { name: null, text: null };\
                 window.__exported = saved;\
                 if (!window.__createObjectURL) window.__createObjectURL = URL.createObjectURL;\
                 URL.createObjectURL = function (blob) {\
                   if (blob instanceof Blob) blob.text().then(t => { window.__exported.text = t; });\
                   return window.__createObjectURL.call(URL, blob);\
                 };\
                 HTMLAnchorElement.prototype.click = function () { window.__exported.name = this.download; };",
                vec![],
            )
            .await?;
        ctx.b.click("#export").await?;
        wait_for("the export's download", WAIT, || async {
            self.focus(ctx).await?;
            let v = ctx.b.execute("return window.__exported;", vec![]).await?;
            Ok(match v["text"].as_str() {
                Some(t) => Ok(t.to_string()),
                None => Err(v.to_string()),
            })
        })
        .await
    }

    async fn import(&self, ctx: &Ctx, path: &std::path::Path) -> Result<()> {
        self.focus(ctx).await?;
        ctx.b
            .find("#import-file")
            .await?
            .send_keys(&path.display().to_string())
            .await
            .map_err(|e| format!("pick {path:?} in #import-file: {e}"))
    }
}

/// An index entry without `lastSeenConnected`, which every check of a connected session
/// moves on.
fn settled(entry: &Value) -> Value {
    let mut entry = entry.clone();
    if let Some(o) = entry.as_object_mut() {
        o.remove("lastSeenConnected");
    }
    entry
}

fn row_css(id: &str, inner: &str) -> String {
    format!("tr[data-session-id=\"{id}\"] {inner}")
}

/// Two named, connected sessions, both detached: "Open all" gives each a tab again; one
/// logged out from the page (confirmed) loses exactly its token, binding and entry; the
/// export (through the page) names the other with its label and holds no token and no
/// secret; imported into a fresh browser profile, it lists that session again, which
/// attaches CONNECTED once its server has its secret.
pub async fn sessions_page_open_all_logout_and_export_import(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let [a, b] = named_sessions(
        &mut ctx,
        [("A", ACCOUNT_1, "Shop one"), ("B", ACCOUNT_2, "Shop two")],
    )
    .await?;
    for name in ["A", "B"] {
        ctx.click_in_popup(name, "#detach").await?;
    }
    wait_for("both detached (no wpp_tab_ binding)", WAIT, || async {
        let st = ctx.storage().await?;
        let bound = keys_with(&st["session"], "wpp_tab_");
        Ok(if bound.is_empty() {
            Ok(())
        } else {
            Err(format!("{bound:?}"))
        })
    })
    .await?;

    let page = SessionsPage::open(&ctx).await?;
    page.wait(&ctx, "A and B listed without a tab", |l| {
        [&a, &b]
            .iter()
            .all(|id| l.row(id).is_some_and(|r| !r.in_tab()))
    })
    .await?;
    page.click(&ctx, "#open-all").await?;
    let bound = wait_for("a tab bound to each session", WAIT, || async {
        let st = ctx.storage().await?;
        let mut bound: Vec<String> = keys_with(&st["session"], "wpp_tab_")
            .into_iter()
            .filter_map(|(_, v)| v.as_str().map(str::to_string))
            .collect();
        bound.sort();
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        Ok(if bound == want {
            Ok(bound)
        } else {
            Err(format!("{bound:?}"))
        })
    })
    .await?;
    page.wait(&ctx, "A and B in tabs, CONNECTED", |l| {
        [&a, &b].iter().all(|id| {
            l.row(id)
                .is_some_and(|r| r.status.as_deref() == Some("CONNECTED") && r.in_tab())
        })
    })
    .await?;
    // B's binding, token and index entry (settled), if it has a binding.
    let b_stored = |st: &Value| {
        Some((
            keys_with(&st["session"], "wpp_tab_")
                .into_iter()
                .find(|(_, v)| *v == json!(b))?,
            st["session"][format!("wpp_token_{b}")].clone(),
            settled(&st["local"]["wpp_sessions"][&b]),
        ))
    };
    let b_keys = b_stored(&ctx.storage().await?).ok_or("B's binding")?;

    // Logout of A from the page, confirmed.
    page.click(&ctx, &row_css(&a, "[data-action=logout]"))
        .await?;
    page.wait(&ctx, "the logout confirmation", |l| l.confirm.is_some())
        .await?;
    page.click(&ctx, "#confirm-yes").await?;
    let st = wait_for("A's token, binding and entry gone", WAIT, || async {
        let st = ctx.storage().await?;
        let gone = st["session"].get(format!("wpp_token_{a}")).is_none()
            && !keys_with(&st["session"], "wpp_tab_")
                .iter()
                .any(|(_, v)| *v == json!(a))
            && st["local"]["wpp_sessions"].get(&a).is_none();
        Ok(if gone { Ok(st) } else { Err(st.to_string()) })
    })
    .await?;
    let b_after = b_stored(&st).ok_or("B's binding went with A's logout")?;
    ensure(
        b_after == b_keys,
        format!("B changed with A's logout: {b_keys:?} -> {b_after:?}"),
    )?;
    ensure(
        ctx.logouts()
            .await?
            .iter()
            .any(|r| r["session"] == json!(a) && r["route"] == "logout-session"),
        "no logout-session for A",
    )?;
    ensure(
        ctx.sim.status_of(&b).await?.as_deref() == Some("CONNECTED"),
        "B is no longer connected",
    )?;

    // Export through the page: B with its label, no token, no secret.
    let text = page.export(&ctx).await?;
    let file: Value = serde_json::from_str(&text).map_err(|e| format!("export {text}: {e}"))?;
    ensure(
        file["sessions"][&b]["label"] == "Shop two" && file["sessions"].get(&a).is_none(),
        format!("the export: {text}"),
    )?;
    let mut tokens = session_tokens(&ctx.storage().await?["session"]);
    for r in requests(&ctx.sim).await? {
        if let Some(t) = r["token"].as_str().filter(|t| t.len() >= 20) {
            tokens.push(t.to_string());
        }
    }
    ensure(
        !tokens.is_empty() && !tokens.iter().any(|t| text.contains(t.as_str())),
        format!("a token in the export: {text}"),
    )?;
    ensure(
        !text.contains(&ctx.sim.secret),
        format!("the secret in the export: {text}"),
    )?;
    let first = no_secrets_at_rest(&ctx, &[&ctx.sim]).await?;

    // A fresh browser profile imports it.
    let dir = TempDir::new("manager-export")?;
    let path = dir.0.join("export.json");
    std::fs::write(&path, &text).map_err(|e| format!("write {path:?}: {e}"))?;
    let Ctx { b: old, sim, .. } = ctx;
    drop(old);
    let ctx = Ctx::with_sim(kind, sim).await?;
    let page = SessionsPage::open(&ctx).await?;
    page.import(&ctx, &path).await?;
    let l = page
        .wait(&ctx, "B imported with its label", |l| {
            l.notice.0.as_deref() == Some("ok") && l.row(&b).is_some_and(|r| r.label == "Shop two")
        })
        .await?;
    ensure(
        l.row(&a).is_none(),
        format!("the logged-out A came back: {l:?}"),
    )?;
    let st = ctx.storage().await?;
    let server = st["local"]["wpp_settings"]["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["url"] == json!(ctx.sim.server_url()))
        .cloned()
        .ok_or_else(|| format!("the export's server was not added: {st}"))?;
    ensure(
        st["local"]["wpp_sessions"][&b]["label"] == "Shop two"
            && st["local"]["wpp_sessions"][&b]["server"] == server["id"]
            && server.get("secretKey").is_none(),
        format!("storage after the import: {st}"),
    )?;
    // Its secret given, B attaches from the page and shows CONNECTED (still linked): the
    // server is asked with a token minted here (the row alone could show the imported last
    // status).
    let mark = requests(&ctx.sim).await?.len();
    let reply = ctx
        .options_request(json!({
            "type": "saveServer", "id": server["id"], "name": server["name"],
            "serverUrl": ctx.sim.server_url(), "secretKey": ctx.sim.secret,
            "rememberSecret": false,
        }))
        .await?;
    ensure(
        reply["type"] == "saved",
        format!("saveServer answered {reply}"),
    )?;
    page.click(&ctx, &row_css(&b, "[data-action=attach]"))
        .await?;
    page.wait(&ctx, "B attached and CONNECTED", |l| {
        l.row(&b)
            .is_some_and(|r| r.status.as_deref() == Some("CONNECTED") && r.in_tab())
    })
    .await?;
    let checked = wait_for("B's status asked in the fresh profile", WAIT, || async {
        let since = routes_of(&requests(&ctx.sim).await?, &b, mark);
        Ok(
            match since
                .first()
                .is_some_and(|r| r.starts_with("generate-token 20"))
                && since.iter().any(|r| r == "status-session 200 ok")
            {
                true => Ok(since),
                false => Err(format!("{since:?}")),
            },
        )
    })
    .await?;
    page.wait(&ctx, "B still CONNECTED", |l| {
        l.row(&b)
            .is_some_and(|r| r.status.as_deref() == Some("CONNECTED"))
    })
    .await?;
    let second = no_secrets_at_rest(&ctx, &[&ctx.sim]).await?;
    Ok(format!(
        "open-all bound {bound:?}; import: {:?}; B in the fresh profile: {checked:?}; first \
         browser: {first}; fresh profile: {second}",
        l.notice.1
    ))
}

// ---------------------------------------------------------------------------------------------
// 6. Two servers

/// Two servers, each a wpp-sim with its own secret, set on the options page; one session on
/// each (the second chosen in the popup's `#server-choice`). Each server hears only of its
/// own session, each session's token was minted with its own server's secret (accepted
/// there, refused by the other), and the Sessions page groups them by server.
pub async fn two_servers_each_with_its_own_secret(kind: Kind) -> Result<String> {
    let first = Sim::start_with_secret("FIRST-server-secret-1111").await?;
    let second = Sim::start_with_secret("SECOND-server-secret-2222").await?;
    let mut ctx = Ctx::with_sim(kind, first).await?;
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    ctx.save_server_on_page(&ctx.sim.server_url(), &ctx.sim.secret, "the first server")
        .await?;
    ctx.choose("#server-select", "new").await?;
    ctx.type_into("#server-name", "Second").await?;
    ctx.save_server_on_page(&second.server_url(), &second.secret, "the second server")
        .await?;

    // A new tab: with two servers nothing starts by itself; #pair pairs on the default (first).
    let a = ctx.paired_tab("A").await?;
    ctx.sim.scan_as(&a, ACCOUNT_1.0, ACCOUNT_1.1).await?;
    wait_connected_as(&ctx, "A", ACCOUNT_1).await?;
    // With A detached, tab B's popup offers it, and a choice of server for a new one.
    ctx.click_in_popup("A", "#detach").await?;
    ctx.create_tab("B").await?;
    ctx.open_popup("B").await?;
    let (_, look) = wait_view(&ctx, "B", "A offered and a server choice", false, |_, l| {
        l.attachable(&a).is_some() && l.server_choice.is_some()
    })
    .await?;
    ensure(
        look.server_choice == Some(vec!["s1".into(), "s2".into()]),
        format!("#server-choice offers {:?}", look.server_choice),
    )?;
    ctx.to_popup("B").await?;
    ctx.choose("#server-choice", "s2").await?;
    ctx.click_in_popup("B", "#pair").await?;
    let s = ctx
        .wait_popup("B", "a QR for a new session", |s| {
            s.qr_shown() && is_session_id(s.id()) && s.id() != a
        })
        .await?;
    let b = s.id().to_string();
    ctx.tabs.get_mut("B").unwrap().session = Some(b.clone());
    second.scan_as(&b, ACCOUNT_2.0, ACCOUNT_2.1).await?;
    wait_connected_as(&ctx, "B", ACCOUNT_2).await?;
    // A back in its tab.
    attach_in_popup(&ctx, "A", &a).await?;
    wait_view(&ctx, "A", "A attached again", true, |s, _| {
        s.id() == a && s.status() == "CONNECTED"
    })
    .await?;

    // Each server heard only of its own session, and minted its token.
    let mut summary = Vec::new();
    for (sim, own, other, name) in [(&ctx.sim, &a, &b, "first"), (&second, &b, &a, "second")] {
        let log = requests(sim).await?;
        let foreign: Vec<&Value> = log
            .iter()
            .filter(|r| !r["session"].is_null() && r["session"] != json!(own))
            .collect();
        ensure(
            foreign.is_empty(),
            format!("the {name} server was asked about other sessions: {foreign:?}"),
        )?;
        let routes = routes_of(&log, own, 0);
        ensure(
            routes.iter().any(|r| r.starts_with("generate-token 20"))
                && routes.iter().any(|r| r.ends_with(" ok")),
            format!("the {name} server's requests for its session: {routes:?}"),
        )?;
        let known: Vec<String> = sim.sessions().await?["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["session"].as_str().map(str::to_string))
            .collect();
        ensure(
            known == [own.clone()],
            format!("the {name} server knows {known:?}"),
        )?;
        ensure(
            sim.status_of(other).await?.is_none(),
            format!("the {name} server knows the other session"),
        )?;
        summary.push(format!("{name}: {}", routes.len()));
    }
    let st = ctx.storage().await?;
    let token = |id: &str| {
        st["session"][format!("wpp_token_{id}")]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no token for {id}: {}", st["session"]))
    };
    let (ta, tb) = (token(&a)?, token(&b)?);
    ctx.sim
        .status_session_body(&a, &ta)
        .await
        .map_err(|e| format!("the first server refused A's token: {e}"))?;
    second
        .status_session_body(&b, &tb)
        .await
        .map_err(|e| format!("the second server refused B's token: {e}"))?;
    ensure(
        second.status_session_body(&a, &ta).await.is_err()
            && ctx.sim.status_session_body(&b, &tb).await.is_err(),
        "a token was accepted by the other server (the secrets were mixed up)",
    )?;
    ensure(
        st["session"]["wpp_secret_s1"] == json!(ctx.sim.secret)
            && st["session"]["wpp_secret_s2"] == json!(second.secret),
        format!("each server's secret in storage.session: {}", st["session"]),
    )?;

    // The Sessions page groups them by server.
    let page = SessionsPage::open(&ctx).await?;
    page.wait(&ctx, "A under s1, B under s2", |l| {
        l.row(&a).is_some_and(|r| r.server.as_deref() == Some("s1"))
            && l.row(&b).is_some_and(|r| r.server.as_deref() == Some("s2"))
    })
    .await?;
    let secrets = no_secrets_at_rest(&ctx, &[&ctx.sim, &second]).await?;
    Ok(format!("requests {summary:?}; {secrets}"))
}
