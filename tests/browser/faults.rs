//! Server faults, the server going away, a worker stopped mid-pairing, an expiring QR and the
//! server's known INITIALIZING hang. Each scenario sets up its own browser, sim and tabs.

use std::time::Duration;

use serde_json::json;
use wpp_tabs::core::timings::Timings;

use crate::ctx::{clear_message, Ctx, PopupSnapshot};
use crate::harness::{ensure, wait_for, Kind, Result, WAIT};
use crate::sim::Sim;

/// Waits for tab `name`'s popup to show no error and a live status. When `allow_retry`, a
/// visible #pair (the popup's "Retry") is clicked once, as a user would; returns whether it was.
async fn wait_recovered(ctx: &Ctx, name: &str, allow_retry: bool) -> Result<(PopupSnapshot, bool)> {
    let retried = std::cell::Cell::new(false);
    let s = wait_for(
        &format!("popup {name}: recovery (#error hidden, status shown)"),
        WAIT,
        || async {
            let s = ctx.popup(name).await?;
            if !s.error_visible && ["QRCODE", "CONNECTED", "INITIALIZING"].contains(&s.status()) {
                return Ok(Ok(s));
            }
            if allow_retry && !retried.get() && s.can_pair() {
                ctx.b.click("#pair").await?;
                retried.set(true);
            }
            Ok(Err(s.brief()))
        },
    )
    .await?;
    Ok((s, retried.get()))
}

/// Injects `kind` on status-session for tab `name`'s session until an #error shows; checks the
/// message and that nothing stored was lost; clears the fault and waits for recovery by
/// itself. Returns the error message and a note.
async fn fault_round(ctx: &Ctx, name: &str, kind: &str) -> Result<String> {
    let id = ctx.session_of(name)?;
    // Precondition: a clean popup, so that the error seen below is this fault's.
    wait_recovered(ctx, name, true)
        .await
        .map_err(|e| format!("precondition (no error before injecting): {e}"))?;
    let token_before = ctx.state_kept(name).await?;
    ctx.sim
        .fault(json!({"route": "status-session", "session": id, "kind": kind, "count": 1000}))
        .await?;
    let s = ctx
        .wait_popup(name, &format!("#error visible under a {kind} fault"), |s| {
            s.error_visible
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
                "{e}; the sim's last requests for {name}: {tail:?} ({} in all)",
                polls.len()
            ));
        }
    };
    cleared?;
    clear_message(&s.error_text)?;
    let token_during = ctx.state_kept(name).await?;
    // Every fault must clear by itself once the server behaves again; after a 401 the
    // worker mints a fresh token before it polls again.
    let (after, retried) = wait_recovered(ctx, name, false).await?;
    let token_after = ctx.state_kept(name).await?;
    let mut note = String::new();
    if token_after != token_before || token_during != token_before {
        note += " (token was renewed)";
    }
    if retried {
        note += " (recovered after the user pressed #pair/Retry)";
    }
    Ok(format!(
        "error {:?} [{}]; after: {}{note}",
        s.error_text,
        s.error_code.as_deref().unwrap_or("-"),
        after.status()
    ))
}

/// One status-session fault: a clear #error, ID/record/token kept, recovery by itself; then
/// a scan still connects.
pub async fn status_fault(kind: Kind, fault: &'static str) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    // These faults hit the popup's polls: the socket is refused, as when a server's socket
    // is down, so the popup polls (push itself is in push.rs).
    ctx.sim.handle().drop_sockets(true);
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("F").await?;
    let note = fault_round(&ctx, "F", fault).await?;
    ctx.sim.scan(&id).await?;
    ctx.wait_popup("F", "CONNECTED after the fault", |s| {
        s.status() == "CONNECTED"
    })
    .await?;
    Ok(note)
}

/// The server goes away (connection refused) and comes back on the same port.
async fn server_down_round(ctx: &mut Ctx, name: &str) -> Result<String> {
    wait_recovered(ctx, name, true)
        .await
        .map_err(|e| format!("precondition (no error before the server goes down): {e}"))?;
    ctx.state_kept(name).await?;
    ctx.sim.proxy.down();
    let s = ctx
        .wait_popup(name, "#error visible with the server down", |s| {
            s.error_visible
        })
        .await;
    let up = ctx.sim.proxy.up().await;
    let s = s?;
    up?;
    clear_message(&s.error_text)?;
    ctx.state_kept(name).await?;
    let after = ctx
        .wait_popup(name, "recovery after the server is back", |s| {
            !s.error_visible && s.status() != "NONE"
        })
        .await?;
    ctx.state_kept(name).await?;
    Ok(format!(
        "error {:?}; after: {}",
        s.error_text,
        after.brief()
    ))
}

/// Server down: a clear #error, nothing lost, recovery once it is back.
pub async fn server_down(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    ctx.paired_tab("F").await?;
    server_down_round(&mut ctx, "F").await
}

/// Several faults in a row (500, 401, a dropped connection, the server down); afterwards a
/// scan connects the session.
pub async fn scan_after_faults(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    // These faults hit the popup's polls: the socket is refused, as when a server's socket
    // is down, so the popup polls (push itself is in push.rs).
    ctx.sim.handle().drop_sockets(true);
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("F").await?;
    for fault in ["http500", "unauthorized", "drop"] {
        fault_round(&ctx, "F", fault)
            .await
            .map_err(|e| format!("fault {fault}: {e}"))?;
    }
    server_down_round(&mut ctx, "F")
        .await
        .map_err(|e| format!("server down: {e}"))?;
    ctx.sim.scan(&id).await?;
    let s = ctx
        .wait_popup("F", "CONNECTED after the faults", |s| {
            s.status() == "CONNECTED"
        })
        .await?;
    Ok(s.brief())
}

/// start-session answers 500 while pairing: #error, the ID kept, and #pair retries to a QR.
pub async fn start_session_fault_then_pair_retries(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    ctx.create_tab("G").await?;
    // The popup starts pairing as soon as it opens: the fault is in place before that.
    ctx.sim
        .fault(json!({"route": "start-session", "kind": "http500", "count": 1000}))
        .await?;
    let id = ctx.open_popup_for_id("G").await?;
    // With settings present the popup starts pairing by itself; should it offer #pair
    // instead, that is pressed (once).
    let pressed = std::cell::Cell::new(false);
    let s = wait_for("popup G: #error when start-session fails", WAIT, || async {
        let s = ctx.popup("G").await?;
        if s.error_visible {
            return Ok(Ok(s));
        }
        if s.can_pair() && s.phase() == "notStarted" && !pressed.get() {
            pressed.set(ctx.b.click("#pair").await.is_ok());
        }
        Ok(Err(s.brief()))
    })
    .await;
    ctx.sim.clear_faults().await?;
    let s = s?;
    clear_message(&s.error_text)?;
    let (tab_key, _, _) = ctx.keys_of(ctx.tab_id("G")?, &id).await?;
    ensure(
        tab_key == json!(id),
        format!("G's ID lost after a failed pairing: {tab_key}"),
    )?;
    ctx.click_in_popup("G", "#pair").await?;
    ctx.wait_popup("G", "QRCODE after retrying #pair", |s| {
        s.qr_shown() && !s.error_visible
    })
    .await?;
    ctx.state_kept("G").await?;
    Ok(format!("error {:?}", s.error_text))
}

/// Chromium: the service worker is stopped mid-pairing; nothing is lost, the popup shows the
/// state again, and a scan is picked up.
pub async fn service_worker_stopped_mid_pairing(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("S").await?;
    let tab = ctx.tab_id("S")?;
    let before = ctx.keys_of(tab, &id).await?;
    let cdp = ctx.b.cdp.as_ref().ok_or("Chromium only")?;
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
            s.status() == "QRCODE" && s.qr_visible && !s.error_visible && s.id() == id
        })
        .await?;
    ctx.sim.scan(&id).await?;
    let s2 = ctx
        .wait_popup("S", "CONNECTED after a scan after the restart", |s| {
            s.status() == "CONNECTED"
        })
        .await?;
    Ok(format!(
        "stopped with {how}; popup then {}; after scan {}",
        s.brief(),
        s2.brief()
    ))
}

/// How long an unscanned QR lives in the expiry scenarios' sim.
const QR_LIFETIME: Duration = Duration::from_secs(5);

/// An unscanned QR expires (the server closes the session): the popup offers Refresh, which
/// shows a fresh QR that pairs.
pub async fn qr_expiry_offers_refresh(kind: Kind) -> Result<String> {
    let sim = Sim::start_with_auto_close(QR_LIFETIME).await?;
    let mut ctx = Ctx::with_sim(kind, sim).await?;
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("E").await?;
    let first_qr = ctx.popup("E").await?.qr_src;
    let expired = ctx
        .wait_popup_within(
            "E",
            "the QR expired: no QR, a Refresh action",
            QR_LIFETIME + WAIT,
            |s| s.status() == "CLOSED" && s.phase() == "expired" && !s.qr_visible && s.pair_visible,
        )
        .await?;
    ensure(
        ctx.sim.status_of(&id).await? == Some("CLOSED".into()),
        "the sim does not report the session CLOSED",
    )?;
    ctx.click_in_popup("E", "#pair").await?;
    let fresh = ctx
        .wait_popup("E", "a fresh QR after Refresh", |s| {
            s.status() == "QRCODE" && s.qr_visible && s.qr_src != first_qr
        })
        .await?;
    ctx.sim.scan(&id).await?;
    ctx.wait_popup("E", "CONNECTED after scanning the fresh QR", |s| {
        s.status() == "CONNECTED" && !s.qr_visible
    })
    .await?;
    Ok(format!(
        "expired: {:?} / {:?}; then {}",
        expired.status_text,
        expired.pair_text,
        fresh.brief()
    ))
}

/// The server's known hang (contract §9.1): a start that never leaves INITIALIZING. The popup
/// calls it stuck after `Timings::TEST.stuck_after_ms` and offers "Restart session", which
/// recovers.
pub async fn stuck_initializing_offers_restart(kind: Kind) -> Result<String> {
    let timings = Timings::TEST;
    let sim = Sim::start_with_auto_close(QR_LIFETIME).await?;
    let mut ctx = Ctx::with_sim(kind, sim).await?;
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("K").await?;
    // From its next start on, the session hangs in INITIALIZING. Get there: let the QR expire,
    // then Refresh.
    ctx.sim.stuck(&id).await?;
    ctx.wait_popup_within("K", "the QR expired", QR_LIFETIME + WAIT, |s| {
        s.phase() == "expired" && s.can_pair()
    })
    .await?;
    ctx.click_in_popup("K", "#pair").await?;
    ctx.wait_popup("K", "INITIALIZING after the refresh", |s| {
        s.status() == "INITIALIZING"
    })
    .await?;
    let started = std::time::Instant::now();
    let stuck_after = Duration::from_millis(timings.stuck_after_ms as u64);
    let stuck = ctx
        .wait_popup_within("K", "reported stuck with #pair", 3 * stuck_after, |s| {
            s.phase() == "stuck" && s.pair_visible
        })
        .await?;
    let after = started.elapsed();
    ensure(
        stuck.status() == "INITIALIZING" && stuck.pair_text == "Restart session",
        format!("stuck view: {}", stuck.brief()),
    )?;
    ctx.click_in_popup("K", "#pair").await?;
    let s = ctx
        .wait_popup("K", "a QR again after Restart", |s| {
            s.status() == "QRCODE" && s.qr_visible
        })
        .await?;
    Ok(format!(
        "stuck reported after {:.1} s (threshold {stuck_after:?}): {:?}; after Restart: {}",
        after.as_secs_f64(),
        stuck.status_text,
        s.brief()
    ))
}
