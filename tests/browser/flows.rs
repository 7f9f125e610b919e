//! The main flows: settings, session IDs, pairing, badges, tokens, copy, reload, logout, the
//! worker's message checks, and the new: settings reaching an open popup, a QR at the size
//! limit, a panic in the worker. Each scenario sets up its own browser, sim and tabs.

use std::collections::HashMap;

use serde_json::{json, Value};
use wpp_tabs::core::api::MAX_REPLY_BYTES;
use wpp_tabs::core::messages::{POPUP_PORT, PROTOCOL_VERSION};

use crate::ctx::{english_message, is_session_id, Ctx, PopupSnapshot};
use crate::harness::{copy_dir, ensure, test_dist, wait_for, Build, Kind, Result, WAIT};
use crate::sim::Sim;

/// Before any settings exist, a popup shows NONE and the #open-options link.
pub async fn popup_before_settings(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.create_tab("X").await?;
    ctx.open_popup("X").await?;
    let s = ctx
        .wait_popup("X", "NONE with the #open-options link", |s| {
            s.status() == "NONE" && s.options_link_visible && !s.qr_visible
        })
        .await?;
    Ok(s.brief())
}

/// The options page UI in the current window: server URL + secret, remember off; save, then
/// test the connection.
async fn fill_options_page(ctx: &Ctx) -> Result<(String, String)> {
    ctx.open_options_page().await?;
    let b = &ctx.b;
    let err = |what: &'static str| move |e: fantoccini::error::CmdError| format!("{what}: {e}");
    let url = b.find("#server-url").await?;
    url.clear().await.map_err(err("clear #server-url"))?;
    url.send_keys(&ctx.sim.server_url())
        .await
        .map_err(err("type the server URL"))?;
    let secret = b.find("#secret-key").await?;
    ensure(
        secret.attr("type").await.map_err(err("#secret-key type"))? == Some("password".into()),
        "#secret-key is not a password input",
    )?;
    secret.clear().await.map_err(err("clear #secret-key"))?;
    secret
        .send_keys(&ctx.sim.secret)
        .await
        .map_err(err("type the secret"))?;
    let remember = b.find("#remember-secret").await?;
    if remember.prop("checked").await.map_err(err("checked"))? == Some("true".into()) {
        remember.click().await.map_err(err("untick remember"))?;
    }
    let typed = url.prop("value").await.map_err(err("#server-url value"))?;
    ensure(
        typed.as_deref() == Some(ctx.sim.server_url().as_str()),
        format!("#server-url holds {typed:?} after typing"),
    )?;
    b.click("#save").await?;
    let saved = ctx.options_result("#save", |r| r == "ok").await?.1;
    // Test connection: the sim answers, the secret is right.
    b.execute(
        "document.querySelector('#options-status').removeAttribute('data-result')",
        vec![],
    )
    .await?;
    b.click("#test-connection").await?;
    let tested = ctx
        .options_result("#test-connection", |r| r == "ok")
        .await?
        .1;
    Ok((saved, tested))
}

/// The options page: typing URL and secret, Save, Test connection; storage holds the URL in
/// storage.local and the secret only in storage.session (remember off).
pub async fn settings_via_options_page(kind: Kind) -> Result<String> {
    let ctx = Ctx::new(kind).await?;
    ctx.to_main().await?;
    let (saved, tested) = fill_options_page(&ctx).await?;
    let st = ctx.storage().await?;
    // The page edited the default server, `s1`: its entry in the list of servers.
    let settings = &st["local"]["wpp_settings"]["servers"][0];
    ensure(
        settings["id"] == "s1"
            && settings["url"].as_str().map(|s| s.trim_end_matches('/'))
                == Some(&ctx.sim.server_url()),
        format!("storage.local wpp_settings.servers[0].url wrong: {settings}"),
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
        st["session"]["wpp_secret_s1"] == json!(ctx.sim.secret),
        format!(
            "storage.session wpp_secret_s1 should hold the secret, has {}",
            st["session"]["wpp_secret_s1"]
        ),
    )?;
    let reply = ctx.options_request(json!({"type": "getSettings"})).await?;
    ensure(
        reply["type"] == "settings" && reply["servers"][0]["hasSecret"] == true,
        format!("getSettings after saving: {reply}"),
    )?;
    Ok(format!("save: {saved:?}; test: {tested:?}"))
}

/// Two tabs get two different IDs of the required form when their popups first open.
pub async fn two_tabs_two_ids(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let a = ctx.create_tab("A").await?;
    let b = ctx.create_tab("B").await?;
    let before = ctx.storage().await?;
    ensure(
        before["session"].get(format!("wpp_tab_{a}")).is_none()
            && before["session"].get(format!("wpp_tab_{b}")).is_none(),
        format!(
            "a tab has an ID before its popup ever opened: {}",
            before["session"]
        ),
    )?;
    let mut ids = Vec::new();
    for name in ["A", "B"] {
        let id = ctx.open_popup_for_id(name).await?;
        let s = ctx.popup(name).await?;
        // With settings present the popup starts pairing at once: NONE or a pairing state.
        ensure(
            ["NONE", "CLOSED", "INITIALIZING", "QRCODE"].contains(&s.status()),
            format!(
                "a fresh tab's popup shows an unexpected status: {}",
                s.brief()
            ),
        )?;
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
    Ok(format!("A={} B={}", ids[0], ids[1]))
}

/// Pairing A and B shows their QR codes; a scan makes A CONNECTED and leaves B in QRCODE; A's
/// record follows.
pub async fn pairing_and_scan(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let id_a = ctx.paired_tab("A").await?;
    let id_b = ctx.paired_tab("B").await?;
    for name in ["A", "B"] {
        let s = ctx.popup(name).await?;
        ensure(
            !s.error_visible,
            format!("error shown while pairing {name}: {}", s.brief()),
        )?;
    }
    ctx.sim.scan(&id_a).await?;
    let a = ctx
        .wait_popup("A", "CONNECTED after the scan", |s| {
            s.status() == "CONNECTED"
        })
        .await?;
    ensure(
        !a.qr_visible && a.qr_hidden_attr,
        format!("QR still shown once connected: {}", a.brief()),
    )?;
    let b = ctx.popup("B").await?;
    ensure(
        b.status() == "QRCODE",
        format!("tab B left QRCODE when A was scanned: {}", b.brief()),
    )?;
    let sim_a = ctx.sim.status_of(&id_a).await?;
    let sim_b = ctx.sim.status_of(&id_b).await?;
    ensure(
        sim_a.as_deref() == Some("CONNECTED"),
        format!("sim says A is {sim_a:?}"),
    )?;
    ensure(
        sim_b.as_deref() != Some("CONNECTED"),
        format!("sim says B is {sim_b:?}"),
    )?;
    let tab_a = ctx.tab_id("A")?;
    let rec = wait_for("wpp_sessions[A].lastStatus CONNECTED", WAIT, || async {
        let (_, rec, _) = ctx.keys_of(tab_a, &id_a).await?;
        Ok(if rec["lastStatus"] == "CONNECTED" {
            Ok(rec)
        } else {
            Err(rec.to_string())
        })
    })
    .await?;
    for field in [
        "server",
        "label",
        "colour",
        "createdAt",
        "lastStatus",
        "lastSeenConnected",
    ] {
        ensure(
            rec.get(field).is_some(),
            format!("index entry of {id_a} lacks {field}: {rec}"),
        )?;
    }
    let (bound, _, _) = ctx.keys_of(tab_a, &id_a).await?;
    ensure(bound == json!(id_a), format!("wpp_tab_{tab_a} is {bound}"))?;
    Ok(format!("sim: A={sim_a:?} B={sim_b:?}"))
}

/// Each tab's toolbar badge shows its own state: A ON, B QR.
pub async fn badges_per_tab(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.a_connected_b_qr().await?;
    ctx.wait_badges(&[("A", "ON"), ("B", "QR")]).await
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
pub async fn tokens_only_in_session_storage(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    let (id_a, id_b) = ctx.a_connected_b_qr().await?;
    let st = ctx.storage().await?;
    let log = ctx.sim.log().await?;
    let requests = log["requests"].as_array().cloned().unwrap_or_default();
    let mut tokens = HashMap::new();
    for (name, id) in [("A", &id_a), ("B", &id_b)] {
        let token = st["session"][format!("wpp_token_{id}")]
            .as_str()
            .ok_or_else(|| {
                format!(
                    "no string wpp_token_{id} in storage.session: {}",
                    st["session"]
                )
            })?
            .to_string();
        let minted: Vec<String> = log["sessions"][id]["tokens"]
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
        tokens.insert(id.clone(), (token, minted));
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
    Ok(format!("{checked} authenticated requests checked"))
}

/// #copy-session-id puts the full ID on the clipboard and says "Copied".
pub async fn copy_session_id(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("A").await?;
    ctx.to_popup("A").await?;
    let mut how = "navigator.clipboard.readText()";
    if kind == Kind::Chromium {
        // Headless Chromium denies clipboard reads unless the permission is granted.
        ctx.b.set_permission("clipboard-read", "granted").await?;
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
    let b = &ctx.b;
    wait_for("#copy-session-id text 'Copied'", WAIT, || async {
        let t = b
            .execute(
                "return document.querySelector('#copy-session-id').textContent.trim();",
                vec![],
            )
            .await?;
        Ok(if t == "Copied" {
            Ok(())
        } else {
            Err(t.to_string())
        })
    })
    .await?;
    let clip = b
        .eval("return await navigator.clipboard.readText();", vec![])
        .await?;
    ensure(
        clip == json!(id),
        format!("clipboard holds {clip}, expected {id}"),
    )?;
    Ok(format!("read with {how}"))
}

/// The test build with the popup's own Wasm module replaced by bytes that are not Wasm, in a
/// directory of its own: a popup of it stays as it is before that module loads.
fn build_without_popup_module(kind: Kind) -> Result<Build> {
    let from = test_dist()?;
    let dir = std::env::temp_dir().join(format!(
        "wpp-tabs-no-popup-module-{}-{kind}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&from.join("chrome"), &dir.join("chrome"))?;
    let module = "wasm/popup_bg.wasm";
    std::fs::write(dir.join("chrome").join(module), b"not wasm").map_err(|e| e.to_string())?;
    // The Firefox package is the same zip with that one entry replaced.
    let zip = dir.join("wpp-tabs-firefox.zip");
    let rewrite = "import sys, zipfile\n\
        src, dst, name = sys.argv[1:4]\n\
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', zipfile.ZIP_DEFLATED) as zout:\n\
        \x20   for item in zin.infolist():\n\
        \x20       zout.writestr(item, b'not wasm' if item.filename == name else zin.read(item))\n";
    let status = std::process::Command::new("python3")
        .args(["-c", rewrite])
        .arg(from.join("wpp-tabs-firefox.zip"))
        .arg(&zip)
        .arg(module)
        .status()
        .map_err(|e| format!("python3: {e}"))?;
    ensure(
        status.success(),
        format!("rewriting the Firefox zip: {status}"),
    )?;
    Ok(Build {
        chrome_dir: dir.join("chrome"),
        firefox_zip: zip,
        firefox_manifest: from.join("firefox/manifest.json"),
    })
}

/// Waits until tab A's popup, read as shown, satisfies `pred` (`Ctx::popup` would wait for
/// the popup's module, which the scenario below never loads).
async fn painted(
    ctx: &Ctx,
    what: &str,
    pred: impl Fn(&PopupSnapshot) -> bool,
) -> Result<PopupSnapshot> {
    ctx.to_popup("A").await?;
    wait_for(&format!("popup A: {what}"), WAIT, || async {
        let s = ctx.popup_as_shown().await?;
        Ok(if pred(&s) { Ok(s) } else { Err(s.brief()) })
    })
    .await
}

/// The popup shows the worker's state before its own Wasm module has loaded (`popup-port.js`
/// applies the paint of the first state, core::paint). Here that module never loads, and the
/// popup still shows the session the worker started for the tab, in the browser's words with
/// no control that could not act; opened again, it shows that session's QR.
pub async fn popup_paints_before_its_module(kind: Kind) -> Result<String> {
    let build = build_without_popup_module(kind)?;
    let mut ctx = Ctx::with_build(kind, Sim::start().await?, &build).await?;
    ctx.settings_fast().await?;
    ctx.create_tab("A").await?;
    ctx.open_popup("A").await?;
    let first = painted(
        &ctx,
        "the worker's first state, painted without the module",
        |s| s.source.as_deref() == Some("paint") && is_session_id(s.id()) && !s.phase().is_empty(),
    )
    .await?;
    let id = first.id().to_string();
    // The catalogue's words for the state, not the page's "Loading…" nor a message key.
    let loading = wpp_tabs::core::text::Text::new("popup_loading").english();
    ensure(
        !first.status_text.is_empty()
            && first.status_text != loading
            && !first.status_text.contains('_'),
        format!("the first state's status reads {:?}", first.status_text),
    )?;
    ensure(
        !first.pair_visible,
        "#pair shown before the module that would act on it",
    )?;
    wait_for("the sim: the session shows a QR", WAIT, || async {
        let status = ctx.sim.status_of(&id).await?;
        Ok(match status.as_deref() {
            Some("QRCODE") => Ok(()),
            other => Err(format!("{other:?}")),
        })
    })
    .await?;
    ctx.open_popup("A").await?;
    let again = painted(&ctx, "the QR, painted without the module", |s| {
        s.status() == "QRCODE" && s.qr_shown()
    })
    .await?;
    ensure(
        again.id() == id,
        format!("the popup opened again shows {}, not {id}", again.id()),
    )?;
    ensure(
        again.qr_src.starts_with("data:image/png;base64,"),
        format!("#qr src {:.40}", again.qr_src),
    )?;
    let _ = std::fs::remove_dir_all(build.chrome_dir.parent().unwrap_or(&build.chrome_dir));
    Ok(format!(
        "first state {} ({:?}), then QRCODE with the QR, with popup_bg.wasm not Wasm",
        first.phase(),
        first.status_text
    ))
}

/// A JS expression: a promise resolved when tab `args[0]` next reports status "complete"
/// (rejected after 20 s).
const TAB_LOADED: &str = "new Promise((resolve, reject) => {\
   const on = (id, change) => { if (id === args[0] && change.status === 'complete') {\
     api.tabs.onUpdated.removeListener(on); resolve(true); } };\
   api.tabs.onUpdated.addListener(on);\
   setTimeout(() => reject(new Error('tab ' + args[0] + ' did not finish loading in 20 s')), 20000); })";

/// A reload and a navigation of tab A keep its session ID (storage and popup).
pub async fn reload_and_navigation_keep_id(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("A").await?;
    let tab_id = ctx.tab_id("A")?;
    // Each change is awaited through tabs.onUpdated (status "complete" after it started).
    ctx.eval(
        &"const done = tab_loaded(args[0]); await api.tabs.reload(args[0]); return await done;"
            .replace("tab_loaded(args[0])", TAB_LOADED),
        vec![json!(tab_id)],
    )
    .await
    .map_err(|e| format!("reload: {e}"))?;
    let url = ctx.sim.page("A2");
    ctx.eval(
        &"const done = tab_loaded(args[0]); await api.tabs.update(args[0], { url: args[1] }); return await done;"
            .replace("tab_loaded(args[0])", TAB_LOADED),
        vec![json!(tab_id), json!(url)],
    )
    .await
    .map_err(|e| format!("navigation: {e}"))?;
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
        .wait_popup("A", "the same ID after reload+navigation", |s| s.id() == id)
        .await?;
    Ok(s.brief())
}

/// Logs A out with the popup's #logout and checks only A went (server and storage).
async fn logout_a_via_popup(ctx: &Ctx, id_a: &str, id_b: &str) -> Result<String> {
    let tab_b = ctx.tab_id("B")?;
    let b_before = ctx.sim.status_of(id_b).await?;
    let b_keys_before = ctx.keys_of(tab_b, id_b).await?;
    // A is connected: the popup asks first.
    ctx.click_in_popup("A", "#logout").await?;
    ctx.click_in_popup("A", "#logout-confirm").await?;
    ctx.wait_keys_gone("A").await?;
    let logouts = ctx.logouts().await?;
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
    let a_after = ctx.sim.status_of(id_a).await?;
    ensure(
        a_after.as_deref() != Some("CONNECTED"),
        format!("sim still has A CONNECTED: {a_after:?}"),
    )?;
    let b_after = ctx.sim.status_of(id_b).await?;
    ensure(
        b_after == b_before,
        format!("B's server status changed: {b_before:?} -> {b_after:?}"),
    )?;
    ensure(
        ctx.keys_of(tab_b, id_b).await? == b_keys_before,
        "B's keys changed when A logged out",
    )?;
    Ok(format!("sim A: {a_after:?}, B: {b_after:?}"))
}

/// The popup's #logout logs out only A on the server and removes only A's keys.
pub async fn logout_via_popup(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    let (a, b) = ctx.a_connected_b_qr().await?;
    logout_a_via_popup(&ctx, &a, &b).await
}

/// After A logs out its badge is cleared; B's stays QR.
pub async fn badge_after_logout(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    let (a, b) = ctx.a_connected_b_qr().await?;
    ctx.wait_badges(&[("A", "ON"), ("B", "QR")]).await?;
    logout_a_via_popup(&ctx, &a, &b).await?;
    ctx.wait_badges(&[("A", ""), ("B", "QR")]).await
}

/// The context-menu handler logs out B (found through the background's global) and only B;
/// a paired bystander C is untouched.
pub async fn logout_via_menu(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let id_b = ctx.paired_tab("B").await?;
    let id_c = ctx.paired_tab("C").await?;
    let (tab_b, tab_c) = (ctx.tab_id("B")?, ctx.tab_id("C")?);
    let c_before = ctx.keys_of(tab_c, &id_c).await?;
    let sim_c_before = ctx.sim.status_of(&id_c).await?;
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
    ctx.wait_keys_gone("B").await?;
    let logouts = ctx.logouts().await?;
    ensure(
        logouts
            .iter()
            .any(|r| r["session"] == json!(id_b) && r["auth"] == "ok"),
        "no authenticated logout/close for B in the sim log",
    )?;
    ensure(
        !logouts.iter().any(|r| r["session"] == json!(id_c)),
        "C was logged out too",
    )?;
    ensure(
        ctx.keys_of(tab_c, &id_c).await? == c_before,
        "C's keys changed when B was logged out",
    )?;
    let sim_c = ctx.sim.status_of(&id_c).await?;
    ensure(
        sim_c == sim_c_before,
        format!("C's server status changed: {sim_c_before:?} -> {sim_c:?}"),
    )?;
    Ok(format!(
        "menuClicked returned {r}; sim B now {:?}",
        ctx.sim.status_of(&id_b).await?
    ))
}

/// Malformed, wrong-version and unauthorised requests from an extension page are refused with
/// a reason and change nothing. Over the popup port, a port that never subscribed asks to pair
/// and log out tab C and posts junk; then, as a barrier, the same port subscribes to C: the
/// worker handles one port's messages in order, so C's state push proves the junk before it
/// was handled. Tab C must be untouched.
pub async fn malformed_messages_refused(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let id_c = ctx.paired_tab("C").await?;
    let tab_c = ctx.tab_id("C")?;
    let before = ctx.storage().await?;
    let v = PROTOCOL_VERSION;
    let replies = ctx
        .eval(
            "const [v, tab, portName] = args;\
             const send = (m) => api.runtime.sendMessage(m);\
             const out = [await send({ v: v + 1, type: 'getSettings' }), await send('garbage'),\
               await send({ v, type: 'saveServer', name: 'x', serverUrl: 'javascript:alert(1)', rememberSecret: true }),\
               await send({ v, type: 'selfDestruct' })];\
             const port = api.runtime.connect({ name: portName });\
             const pushes = [];\
             const barrier = new Promise((resolve) => port.onMessage.addListener((m) => {\
               pushes.push(m);\
               if (m && m.type === 'state') resolve(m);\
             }));\
             port.postMessage({ v, type: 'logout' });\
             port.postMessage({ v, type: 'pair' });\
             port.postMessage({ v, type: 'logout', tabId: tab });\
             port.postMessage({ v, type: 'pair', tabId: tab });\
             port.postMessage(null);\
             port.postMessage({ v: v + 1, type: 'logout', tabId: tab });\
             port.postMessage({ v, type: 'subscribe', tabId: -5 });\
             port.postMessage({ v, type: 'subscribe', tabId: tab });\
             const timeout = new Promise((_, reject) => setTimeout(() =>\
               reject(new Error('no state push after the barrier subscribe to tab ' + tab + '; pushes: ' + JSON.stringify(pushes).slice(0, 500))), 10000));\
             const state = await Promise.race([barrier, timeout]);\
             port.disconnect();\
             out.push(await send({ v, type: 'getSettings' }));\
             return { replies: out, barrier: state, pushes: pushes.length };",
            vec![json!(v), json!(tab_c), json!(POPUP_PORT)],
        )
        .await?;
    let list = replies["replies"].as_array().cloned().unwrap_or_default();
    ensure(list.len() == 5, format!("expected 5 replies: {replies}"))?;
    let expect_error = |i: usize, needle: &str| -> Result<()> {
        let r = &list[i];
        ensure(
            r["type"] == "error" && english_message(r).contains(needle),
            format!("reply {i} should be an error mentioning {needle:?}: {r}"),
        )
    };
    expect_error(0, "version")?;
    expect_error(1, "not an object")?;
    expect_error(2, "Server URL")?;
    expect_error(3, "invalid message")?;
    ensure(
        list[4]["type"] == "settings" && list[4]["servers"][0]["hasSecret"] == true,
        format!(
            "the worker stopped answering well-formed requests: {}",
            list[4]
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
        "tab C's session was touched by a port that had not subscribed to it",
    )?;
    let logouts = ctx.logouts().await?;
    ensure(
        logouts.is_empty(),
        format!("a logout/close reached the server: {logouts:?}"),
    )?;
    ensure(
        ctx.sim.status_of(&id_c).await? == Some("QRCODE".into()),
        "tab C's server session changed",
    )?;
    let barrier_view = &replies["barrier"]["view"];
    ensure(
        barrier_view["sessionId"] == json!(id_c),
        format!("the barrier's state push is not C's session: {barrier_view}"),
    )?;
    Ok(format!(
        "refusals: {:?}; barrier: C's state push ({} push(es) in all)",
        list[..4].iter().map(english_message).collect::<Vec<_>>(),
        replies["pushes"]
    ))
}

/// A popup opened before any settings shows NONE and #open-options; once settings are saved
/// through the options page, that same popup (no reload) leaves the needs-settings view and
/// starts pairing: a session ID and then a QR code.
pub async fn saving_settings_updates_open_popup(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.create_tab("P").await?;
    ctx.open_popup("P").await?;
    ctx.wait_popup("P", "NONE with #open-options before any settings", |s| {
        s.status() == "NONE" && s.options_link_visible
    })
    .await?;
    let marker = ctx
        .b
        .execute("window.__notReloaded = 1; return location.href;", vec![])
        .await?;
    ctx.to_main().await?;
    fill_options_page(&ctx).await?;
    let s = ctx
        .wait_popup(
            "P",
            "the open popup to leave the needs-settings view and show a QR code",
            |s| !s.options_link_visible && is_session_id(s.id()) && s.qr_shown(),
        )
        .await
        .map_err(|e| {
            format!("{e} (the popup was not reloaded: the worker must push the change)")
        })?;
    let same = ctx
        .b
        .execute("return window.__notReloaded === 1;", vec![])
        .await?;
    ensure(
        same == json!(true),
        format!("the popup at {marker} was reloaded during the check"),
    )?;
    Ok(s.brief())
}

/// The QR the server sends is as large as the extension accepts: the whole status-session
/// reply just under `MAX_REPLY_BYTES`. The popup shows exactly that QR, with no error.
pub async fn oversized_qr_at_the_edge(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("Q").await?;
    let token = ctx.state_kept("Q").await?;
    // The reply's size apart from the QR: constant (the urlcode has a fixed length).
    let body = ctx.sim.status_session_body(&id, &token).await?;
    let reply: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    let qr_len = reply["qrcode"].as_str().map_or(0, str::len);
    ensure(qr_len > 0, format!("no QR in {body}"))?;
    let overhead = body.len() - qr_len;
    // The largest data URL (22-byte prefix + a multiple of 4) with the body under the limit.
    let mut n = MAX_REPLY_BYTES - 1 - overhead;
    n -= (n - 22) % 4;
    ctx.sim.qr_size(&id, n).await?;
    let body = ctx.sim.status_session_body(&id, &token).await?;
    ensure(
        body.len() < MAX_REPLY_BYTES && body.len() > MAX_REPLY_BYTES - 8,
        format!(
            "status-session reply is {} bytes, wanted just under {MAX_REPLY_BYTES}",
            body.len()
        ),
    )?;
    // The QR rotates: the popup must show the server's current QR (or catch up to it).
    let sim = &ctx.sim;
    let last = std::cell::RefCell::new(None::<PopupSnapshot>);
    let shown = wait_for(
        "popup Q: exactly the server's QR of the edge size",
        WAIT,
        || async {
            let s = ctx.popup("Q").await?;
            let reply: Value = serde_json::from_str(&sim.status_session_body(&id, &token).await?)
                .map_err(|e| e.to_string())?;
            let server_qr = reply["qrcode"].as_str().unwrap_or_default().to_string();
            let ok = s.qr_shown() && !s.error_visible && s.qr_src == server_qr;
            let seen = format!(
                "{} (server QR {} B, equal: {})",
                s.brief(),
                server_qr.len(),
                s.qr_src == server_qr
            );
            *last.borrow_mut() = Some(s);
            Ok(if ok { Ok(server_qr.len()) } else { Err(seen) })
        },
    )
    .await;
    let shown = shown.map_err(|e| {
        let s = last.borrow();
        let hint = match s.as_ref() {
            Some(s) if s.error_visible => format!(" (#error: {:?})", s.error_text),
            _ => String::new(),
        };
        format!("{e}{hint}")
    })?;
    ensure(
        shown == n,
        format!("the QR shown is {shown} bytes, not {n}"),
    )?;
    Ok(format!(
        "status-session reply {} bytes (limit {MAX_REPLY_BYTES}), QR data URL {n} bytes shown",
        body.len()
    ))
}

/// With a paired tab, the test build's `testPanic()` makes the Wasm worker panic; the worker
/// keeps working: it answers getSettings, the reopened popup shows the same session's QR, and
/// a scan connects it.
pub async fn panic_does_not_kill_the_worker(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("W").await?;
    let before = ctx.popup("W").await?;
    ctx.to_main().await?;
    // A panic aborts the Wasm call: the hook must throw, or nothing was proven.
    let panicked = match ctx.b.call_background("testPanic", vec![]).await {
        Ok(v) => return Err(format!("testPanic returned {v} instead of panicking")),
        Err(e) if e.contains("no wppTabsListeners.testPanic") => {
            return Err(format!(
                "the test build has no wppTabsListeners.testPanic (is it built with --test-build?): {e}"
            ))
        }
        Err(e) => format!("threw ({})", e.chars().take(120).collect::<String>()),
    };
    // The popup that was open during the panic reconnects by itself: the QR the server
    // rotates meanwhile reaches it without reopening it.
    ctx.wait_popup(
        "W",
        "a rotated QR in the popup open during the panic",
        |s| s.qr_shown() && s.qr_src != before.qr_src && !s.error_visible,
    )
    .await?;
    let reply = wait_for("getSettings answered after the panic", WAIT, || async {
        let r = ctx.options_request(json!({"type": "getSettings"})).await;
        Ok(match r {
            Ok(r) if r["type"] == "settings" => Ok(r),
            Ok(r) => Err(r.to_string()),
            Err(e) => Err(e),
        })
    })
    .await?;
    ensure(
        reply["servers"][0]["hasSecret"] == true,
        format!("settings lost after the panic: {reply}"),
    )?;
    ctx.open_popup("W").await?;
    let s = ctx
        .wait_popup("W", "the same session's QR after the panic", |s| {
            s.qr_shown()
                && s.id() == id
                && !s.error_visible
                && s.source.as_deref() == Some("worker")
        })
        .await?;
    ctx.sim.scan(&id).await?;
    ctx.wait_popup("W", "CONNECTED after a scan after the panic", |s| {
        s.status() == "CONNECTED"
    })
    .await?;
    Ok(format!("testPanic {panicked}; then {}", s.brief()))
}
