//! The extension's test build in Chromium against the REAL wppconnect-server
//! (`scripts/real-server.sh`), not wpp-sim: settings and the connection test, pairing to
//! INITIALIZING (as far as it gets offline), logout of a starting session, the restart of a
//! stuck session under a fresh session ID, and two tabs' tokens kept apart.
//!
//! Each scenario runs its own server instance (each started session costs a Chromium of
//! ~400 MB there). They run only with `WPP_REAL_SERVER=1` and a wppconnect-server source tree;
//! otherwise they are reported ignored with the reason:
//!
//! ```sh
//! WPP_REAL_SERVER=1 cargo test --test browser -- chromium_real_server_ --test-threads 2
//! ```
//!
//! The tabs' pages still come from an in-process wpp-sim (plain HTML pages); every API request
//! of the extension goes to the real server.

#[path = "../support/real_server.rs"]
mod support;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use libtest_mimic::{Completion, Failed, Trial};
use serde_json::{json, Value};
use wpp_tabs::core::timings::Timings;

use crate::ctx::{is_session_id, Ctx, PopupSnapshot};
use crate::harness::{ensure, wait_for, Kind, Result, WAIT};
use support::RealServer;

type Run =
    for<'a> fn(&'a mut Ctx, &'a RealServer) -> Pin<Box<dyn Future<Output = Result<String>> + 'a>>;

/// A scenario is cut off after this.
const TIMEOUT: Duration = Duration::from_secs(150);

/// The `chromium_real_server_*` trials (skipped with the reason unless the tier is on).
pub fn trials() -> Vec<Trial> {
    let scenarios: [(&str, Run); 4] = [
        ("settings_and_connection_test", |c, s| {
            Box::pin(settings_and_connection_test(c, s))
        }),
        ("pairing_then_logout", |c, s| {
            Box::pin(pairing_then_logout(c, s))
        }),
        ("stuck_restart_uses_a_fresh_id", |c, s| {
            Box::pin(stuck_restart_uses_a_fresh_id(c, s))
        }),
        ("two_tabs_isolated", |c, s| {
            Box::pin(two_tabs_isolated(c, s))
        }),
    ];
    scenarios
        .into_iter()
        .map(|(name, run)| {
            let name = format!("chromium_real_server_{name}");
            Trial::ignorable_test(name.clone(), move || run_gated(&name, run))
        })
        .collect()
}

fn run_gated(name: &str, run: Run) -> std::result::Result<Completion, Failed> {
    let src = match support::gate() {
        Ok(src) => src,
        Err(why) => {
            eprintln!("[{name}] {why}");
            return Ok(Completion::ignored_with(why));
        }
    };
    let rt = crate::harness::scenario_runtime().map_err(Failed::from)?;
    let started = Instant::now();
    let outcome = rt.block_on(async {
        let server = RealServer::start_async(src).await?;
        let boot = server.start_took;
        let result = match tokio::time::timeout(TIMEOUT, async {
            let mut ctx = Ctx::new(Kind::Chromium).await?;
            let r = run(&mut ctx, &server).await;
            drop(ctx);
            r
        })
        .await
        {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {TIMEOUT:?}")),
        };
        let result = result.map_err(|e| {
            format!(
                "{e}\n--- real server log (tail) ---\n{}",
                server.log_tail(2500)
            )
        });
        // Stop the server and its Chromiums, and check none is left.
        let stop = Instant::now();
        server.stop();
        let left = server.chromium_pids(None);
        let stop_took = stop.elapsed();
        drop(server);
        let note = result?;
        ensure(
            left.is_empty(),
            format!("Chromium processes left after stopping the real server: {left:?}"),
        )?;
        Ok::<_, String>(format!(
            "{note} [server start {:.1} s, stop {:.1} s]",
            boot.as_secs_f64(),
            stop_took.as_secs_f64()
        ))
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    let took = started.elapsed().as_secs_f64();
    match outcome {
        Ok(note) => {
            eprintln!("[{name}] PASS in {took:.1} s: {note}");
            Ok(Completion::Completed)
        }
        Err(e) => {
            eprintln!("[{name}] FAIL in {took:.1} s: {e}");
            Err(e.into())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The options page's own `saveServer` request with the real server's URL and secret.
async fn settings_real(ctx: &Ctx, server: &RealServer) -> Result<()> {
    let reply = ctx
        .options_request(json!({
            "type": "saveServer",
            "id": "s1",
            "name": "Real server",
            "serverUrl": server.url,
            "secretKey": server.secret,
            "rememberSecret": false,
        }))
        .await?;
    ensure(
        reply["type"] == "saved",
        format!("saveServer answered {reply}"),
    )
}

/// A request to the real server: status and JSON body.
async fn call(method: reqwest::Method, url: String, bearer: Option<&str>) -> Result<(u16, Value)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = client.request(method.clone(), &url);
    if let Some(t) = bearer {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn status_session(server: &RealServer, session: &str, token: &str) -> Result<(u16, Value)> {
    call(
        reqwest::Method::GET,
        format!("{}/api/{session}/status-session", server.url),
        Some(token),
    )
    .await
}

async fn show_all(server: &RealServer) -> Result<Value> {
    let (code, v) = call(
        reqwest::Method::GET,
        format!("{}/api/{}/show-all-sessions", server.url, server.secret),
        None,
    )
    .await?;
    ensure(code == 200, format!("show-all-sessions: {code} {v}"))?;
    Ok(v["response"].clone())
}

/// Tab `name`'s token from storage.session (`wpp_token_<id>`).
async fn token_of(ctx: &Ctx, name: &str, id: &str) -> Result<String> {
    let tab = ctx.tab_id(name)?;
    wait_for(
        &format!("wpp_token_{id} in storage.session"),
        WAIT,
        || async {
            let (_, _, token) = ctx.keys_of(tab, id).await?;
            Ok(match token.as_str() {
                Some(t) => Ok(t.to_string()),
                None => Err(token.to_string()),
            })
        },
    )
    .await
}

/// Waits until the real server reports `session` with `status` (asked with `token`).
async fn wait_server_status(
    server: &RealServer,
    session: &str,
    token: &str,
    status: &str,
) -> Result<Value> {
    wait_for(
        &format!("the real server to report {session} {status}"),
        WAIT,
        || async {
            let (code, v) = status_session(server, session, token).await?;
            Ok(if code == 200 && v["status"] == status {
                Ok(v)
            } else {
                Err(format!("{code} {v}"))
            })
        },
    )
    .await
}

/// Waits until a Chromium runs with the profile `userDataDir/<session>`.
async fn wait_browser(server: &RealServer, session: &str) -> Result<Vec<u32>> {
    wait_for(
        &format!("a Chromium with --user-data-dir .../userDataDir/{session}"),
        WAIT,
        || async {
            let pids = server.chromium_pids(Some(session));
            Ok(if pids.is_empty() {
                Err("none".into())
            } else {
                Ok(pids)
            })
        },
    )
    .await
}

/// A new tab `name` whose popup is open and shows INITIALIZING (the popup starts pairing by
/// itself; if it offers #pair instead, that is pressed once). Returns its session ID.
async fn tab_initializing(ctx: &mut Ctx, name: &'static str) -> Result<String> {
    ctx.create_tab(name).await?;
    let id = ctx.open_popup_for_id(name).await?;
    let pressed = std::cell::Cell::new(false);
    let c = &*ctx;
    wait_for(
        &format!("popup {name}: #status[data-status=INITIALIZING]"),
        WAIT,
        || async {
            let s = c.popup(name).await?;
            if s.status() == "INITIALIZING" {
                return Ok(Ok(()));
            }
            if s.can_pair() && s.phase() == "notStarted" && !pressed.get() {
                pressed.set(c.b.click("#pair").await.is_ok());
            }
            Ok(Err(s.brief()))
        },
    )
    .await?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// The options page: URL and secret of the real server, Save, Test connection: OK; then a
/// wrong secret: the test says the server refused it.
async fn settings_and_connection_test(ctx: &mut Ctx, server: &RealServer) -> Result<String> {
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    let b = &ctx.b;
    ctx.type_into("#server-url", &server.url).await?;
    ctx.type_into("#secret-key", &server.secret).await?;
    let remember = b.find("#remember-secret").await?;
    if remember
        .prop("checked")
        .await
        .map_err(|e| format!("checked: {e}"))?
        == Some("true".into())
    {
        remember
            .click()
            .await
            .map_err(|e| format!("untick remember: {e}"))?;
    }
    let saved = ctx.press("#save").await?;
    ensure(saved.0 == "ok", format!("#save: {saved:?}"))?;
    let tested = ctx.press("#test-connection").await?;
    ensure(
        tested.0 == "ok",
        format!("#test-connection with the right secret: {tested:?}"),
    )?;
    let reply = ctx.options_request(json!({"type": "getSettings"})).await?;
    ensure(
        reply["type"] == "settings" && reply["servers"][0]["hasSecret"] == true,
        format!("getSettings after saving: {reply}"),
    )?;
    ctx.to_main().await?;
    ctx.type_into("#secret-key", "NOT-THE-SECRET").await?;
    let wrong = ctx.press("#test-connection").await?;
    ensure(
        wrong.0 == "error" && wrong.1.contains("refused the secret"),
        format!("#test-connection with a wrong secret: {wrong:?}"),
    )?;
    Ok(format!("right: {:?}; wrong: {:?}", tested.1, wrong.1))
}

/// Pairing reaches INITIALIZING (all it can offline); the stored token verifies on the real
/// server; the popup's #logout then removes the tab's keys and the server stops the session.
async fn pairing_then_logout(ctx: &mut Ctx, server: &RealServer) -> Result<String> {
    settings_real(ctx, server).await?;
    let id = tab_initializing(ctx, "A").await?;
    let token = token_of(ctx, "A", &id).await?;
    let (code, v) = status_session(server, &id, &token).await?;
    ensure(
        code == 200 && v["status"] == "INITIALIZING",
        format!("status-session with the stored token: {code} {v}"),
    )?;
    let (code, v) = status_session(
        server,
        &id,
        "$2b$10$notthetokennotthetokennotthetokennotthetokennotthetok",
    )
    .await?;
    ensure(
        code == 401,
        format!("a wrong token is accepted: {code} {v}"),
    )?;
    let browsers = wait_browser(server, &id).await?;
    ctx.click_in_popup("A", "#logout").await?;
    ctx.wait_keys_gone("A").await?;
    let after = wait_server_status(server, &id, &token, "CLOSED").await?;
    let listed = show_all(server).await?;
    // The server keeps a closed session's browser running (upstream leak, see
    // wpp-sim/README.md); reported, not asserted.
    let leaked = server.chromium_pids(Some(&id));
    Ok(format!(
        "{id}: INITIALIZING with {} browser(s), token verified; after #logout keys gone, server: {after}; \
         show-all-sessions still lists {listed}; browsers of the session after logout: {}",
        browsers.len(),
        leaked.len()
    ))
}

/// The reported hang: INITIALIZING past the threshold (4 s in the test build) shows phase
/// `stuck` with "Restart session"; pressing it closes the old session and starts a FRESH
/// session ID (the real server has locked the old name's profile), to which the tab is
/// rebound; the new session really starts on the server (a Chromium for it), the old one is
/// reported CLOSED.
async fn stuck_restart_uses_a_fresh_id(ctx: &mut Ctx, server: &RealServer) -> Result<String> {
    let stuck_after = Duration::from_millis(Timings::TEST.stuck_after_ms as u64);
    settings_real(ctx, server).await?;
    let old = tab_initializing(ctx, "K").await?;
    let old_token = token_of(ctx, "K", &old).await?;
    wait_browser(server, &old).await?;
    let started = Instant::now();
    let stuck = ctx
        .wait_popup_within("K", "phase stuck with #pair", 3 * stuck_after + WAIT, |s| {
            s.phase() == "stuck" && s.pair_visible
        })
        .await?;
    let stuck_in = started.elapsed();
    ensure(
        stuck.status() == "INITIALIZING" && stuck.pair_text == "Restart session",
        format!("stuck view: {}", stuck.brief()),
    )?;
    ctx.click_in_popup("K", "#pair").await?;
    let fresh = ctx
        .wait_popup(
            "K",
            "#session-id[title] to change to a fresh session ID",
            |s: &PopupSnapshot| is_session_id(s.id()) && s.id() != old,
        )
        .await
        .map_err(|e| {
            format!(
                "{e} (the restart kept the old session ID {old}: the real server has locked \
                 its profile, so a start under it never launches)"
            )
        })?;
    let new = fresh.id().to_string();
    ctx.tabs.get_mut("K").unwrap().session = Some(new.clone());
    let tab = ctx.tab_id("K")?;
    let (tab_key, rec, _) = ctx.keys_of(tab, &new).await?;
    ensure(
        tab_key == json!(new) && rec.is_object(),
        format!("tab K is not rebound to {new}: wpp_tab_{tab} = {tab_key}, index entry {rec}"),
    )?;
    let new_token = token_of(ctx, "K", &new).await?;
    let new_status = wait_server_status(server, &new, &new_token, "INITIALIZING").await?;
    let new_browsers = wait_browser(server, &new).await?;
    ctx.wait_popup("K", "INITIALIZING under the fresh ID", |s| {
        s.id() == new && s.status() == "INITIALIZING"
    })
    .await?;
    let old_status = wait_server_status(server, &old, &old_token, "CLOSED").await?;
    let (_, old_rec, old_tok) = ctx.keys_of(tab, &old).await?;
    Ok(format!(
        "stuck after {:.1} s; {old} -> {new}; new: {new_status} with {} browser(s); old: {old_status} \
         ({} browser(s) of the old profile still running: the server leaks them; old keys {})",
        stuck_in.as_secs_f64(),
        new_browsers.len(),
        server.chromium_pids(Some(&old)).len(),
        if old_rec.is_null() && old_tok.is_null() {
            "removed"
        } else {
            "kept"
        }
    ))
}

/// Two tabs, two sessions on the real server: each token opens its own session only.
async fn two_tabs_isolated(ctx: &mut Ctx, server: &RealServer) -> Result<String> {
    settings_real(ctx, server).await?;
    let a = tab_initializing(ctx, "A").await?;
    let b = tab_initializing(ctx, "B").await?;
    ensure(a != b, format!("tabs A and B share the ID {a}"))?;
    let ta = token_of(ctx, "A", &a).await?;
    let tb = token_of(ctx, "B", &b).await?;
    ensure(ta != tb, "tabs A and B hold the same token")?;
    for (session, token, label) in [(&a, &ta, "A's own"), (&b, &tb, "B's own")] {
        let (code, v) = status_session(server, session, token).await?;
        ensure(
            code == 200 && v["status"] == "INITIALIZING",
            format!("{label} token on {session}: {code} {v}"),
        )?;
    }
    let refused = json!({"error": "Check that the Session and Token are correct"});
    for (session, token, label) in [(&a, &tb, "B's token on A"), (&b, &ta, "A's token on B")] {
        let (code, v) = status_session(server, session, token).await?;
        ensure(code == 401 && v == refused, format!("{label}: {code} {v}"))?;
    }
    // The path form too.
    let (code, v) = call(
        reqwest::Method::GET,
        format!("{}/api/{a}:{tb}/status-session", server.url),
        None,
    )
    .await?;
    ensure(
        code == 401,
        format!("path form {a}:<B's token>: {code} {v}"),
    )?;
    let browsers = (
        server.chromium_pids(Some(&a)).len(),
        server.chromium_pids(Some(&b)).len(),
    );
    Ok(format!(
        "A={a} B={b}: each token 200 on its own session, 401 on the other; browsers {browsers:?}"
    ))
}
