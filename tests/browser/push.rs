//! Push over the server's Socket.IO: QR rotations reach the open popup without a request,
//! other sessions' events never do, a lost socket falls back to polling and comes back, and
//! events without a session (upstream #1931) still keep the QR current.

use std::time::Duration;

use serde_json::Value;

use crate::ctx::Ctx;
use crate::harness::{ensure, wait_for, Kind, Result, WAIT};
use crate::sim::Sim;

/// Every request the server logged (all of them cost a token or secret check).
async fn requests(ctx: &Ctx) -> Result<Vec<Value>> {
    let log = ctx.sim.log().await?;
    Ok(log["requests"].as_array().cloned().unwrap_or_default())
}

fn routes(requests: &[Value]) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            let route = r["route"].as_str().unwrap_or("?");
            let session = r["session"].as_str().unwrap_or("-");
            format!("{route} {session}")
        })
        .collect()
}

/// Waits until the worker's socket has joined the server's namespace.
async fn push_joined(ctx: &Ctx, n: usize) -> Result<()> {
    let control = ctx.sim.handle();
    wait_for(&format!("{n} socket(s) joined wpp-sim"), WAIT, || async {
        let joined = control.sockets_joined();
        Ok(if joined >= n {
            Ok(())
        } else {
            Err(format!("{joined} joined"))
        })
    })
    .await
}

/// Waits for the popup of `name` to show a QR other than `than`; returns it.
async fn next_qr(ctx: &Ctx, name: &str, than: &str) -> Result<String> {
    let s = ctx
        .wait_popup(name, "the next QR", |s| s.qr_shown() && s.qr_src != than)
        .await?;
    Ok(s.qr_src)
}

/// A QR rotation reaches the open popup with no request in between; another session's QR
/// events (every socket gets every session's) never show in this popup; a scan connects.
pub async fn push_qr_without_requests(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let a = ctx.paired_tab("A").await?;
    let b = ctx.paired_tab("B").await?;
    // B's QRs are all exactly this long, so one in A's popup would be seen.
    const B_QR_BYTES: usize = 20_002;
    ctx.sim.qr_size(&b, B_QR_BYTES).await?;
    push_joined(&ctx, 1).await?;
    let mut qr = ctx.popup("A").await?.qr_src;
    let mut quiet = 0;
    for _ in 0..3 {
        ctx.sim.clear_log().await?;
        qr = next_qr(&ctx, "A", &qr).await?;
        ensure(qr.len() != B_QR_BYTES, "tab A's popup showed tab B's QR")?;
        let between = requests(&ctx).await?;
        if between.is_empty() {
            quiet += 1;
        } else {
            eprintln!("requests during a rotation: {:?}", routes(&between));
        }
    }
    // The safety check (every 30 s) may land in one rotation; never in all three.
    ensure(
        quiet >= 2,
        format!("only {quiet} of 3 rotations came with no request"),
    )?;
    let shown_b = ctx
        .wait_popup("B", "B's own QR", |s| {
            s.qr_shown() && s.qr_src.len() == B_QR_BYTES
        })
        .await?;
    ensure(shown_b.id() == b, "tab B shows another session")?;
    ctx.sim.scan(&a).await?;
    ctx.wait_popup("A", "CONNECTED after the scan", |s| {
        s.status() == "CONNECTED"
    })
    .await?;
    let b_now = ctx.popup("B").await?;
    ensure(
        b_now.status() == "QRCODE",
        format!("B left QRCODE: {}", b_now.brief()),
    )?;
    Ok(format!(
        "{quiet}/3 rotations with no request; B's QRs stayed in B"
    ))
}

/// The socket dropped and refused: the popup's QR keeps changing by polling; once sockets
/// are accepted again, the worker reconnects and rotations need no request again.
pub async fn push_lost_falls_back_to_polling(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    ctx.paired_tab("A").await?;
    push_joined(&ctx, 1).await?;
    let control = ctx.sim.handle();
    control.drop_sockets(true);
    let mut qr = ctx.popup("A").await?.qr_src;
    ctx.sim.clear_log().await?;
    for _ in 0..2 {
        qr = next_qr(&ctx, "A", &qr).await?;
    }
    let polled = requests(&ctx).await?;
    let polls = polled
        .iter()
        .filter(|r| r["route"] == "status-session")
        .count();
    ensure(
        polls >= 2,
        format!(
            "no polling while the socket was down: {:?}",
            routes(&polled)
        ),
    )?;
    control.allow_sockets();
    push_joined(&ctx, 1).await?;
    let mut quiet = 0;
    let mut seen = vec![];
    for _ in 0..3 {
        ctx.sim.clear_log().await?;
        qr = next_qr(&ctx, "A", &qr).await?;
        let between = requests(&ctx).await?;
        quiet += usize::from(between.is_empty());
        seen.push(format!(
            "{:?} ({} socket(s) joined)",
            routes(&between),
            control.sockets_joined()
        ));
    }
    ensure(
        quiet >= 2,
        format!(
            "push did not take over again: {quiet}/3 quiet; requests per rotation: {}",
            seen.join(", ")
        ),
    )?;
    Ok(format!(
        "{polls} polls while down; back to push ({quiet}/3 quiet rotations)"
    ))
}

/// Upstream #1931: after close-session and a restart, the server's qrCode events carry no
/// session. The worker checks its pairing sessions once per such event: the QR stays current.
pub async fn push_events_without_session(kind: Kind) -> Result<String> {
    let mut config = wpp_sim::SimConfig::fast();
    config.auto_close = Duration::from_secs(900);
    // A close of a pairing session leaves the server's `{status:null}` entry behind.
    config.profile_lock = false;
    let mut ctx = Ctx::with_sim(kind, Sim::start_with_config(config).await?).await?;
    ctx.settings_fast().await?;
    let a = ctx.paired_tab("A").await?;
    push_joined(&ctx, 1).await?;
    let token = ctx.storage().await?["session"][format!("wpp_token_{a}")]
        .as_str()
        .map(str::to_owned)
        .ok_or("no token stored for A")?;
    // Upstream answers 500 for a session still pairing, and still resets it to the unnamed
    // `{status:null}` entry (contract §2.5; wpp-sim does the same).
    let (status, body) = ctx.sim.close_session(&a, &token).await?;
    ensure(
        status == 200 || status == 500,
        format!("close-session: {status} {body}"),
    )?;
    // That 500 sends no event: the popup, opened again, asks and offers a fresh QR; the
    // restart's events carry no session.
    ctx.open_popup("A").await?;
    ctx.wait_popup("A", "a closed session offering a new QR", |s| s.can_pair())
        .await?;
    let control = ctx.sim.handle();
    let before = control.emitted().len();
    ctx.click_in_popup("A", "#pair").await?;
    let mut qr = ctx
        .wait_popup("A", "a QR after the restart", |s| s.qr_shown())
        .await?
        .qr_src;
    for _ in 0..2 {
        qr = next_qr(&ctx, "A", &qr).await?;
    }
    let unnamed = control.emitted()[before..]
        .iter()
        .filter(|e| e.event == "qrCode" && e.session.is_none())
        .count();
    ensure(
        unnamed >= 2,
        format!("the sim sent {unnamed} qrCode events without a session"),
    )?;
    Ok(format!(
        "{unnamed} unnamed qrCode events; the QR stayed current"
    ))
}

/// How long the background keeps a socket with nothing but the socket's traffic to keep it:
/// a pairing session (its QR events flowing every 2 s) with its popup closed, then open.
/// Firefox only, on demand, with a 3 s idle timeout instead of 30 s
/// (`WPP_FIREFOX_IDLE_TIMEOUT_MS`, set by the caller); prints what it saw.
pub async fn probe_event_page_lifetime(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    ctx.paired_tab("A").await?;
    push_joined(&ctx, 1).await?;
    let control = ctx.sim.handle();
    let mut seen = vec![];
    let sample = |label: &str, seen: &mut Vec<String>| {
        seen.push(format!("{label}: {} socket(s)", control.sockets_joined()));
    };
    sample("popup open", &mut seen);
    ctx.to_popup("A").await?;
    ctx.b
        .wd
        .close_window()
        .await
        .map_err(crate::harness::wd("close the popup"))?;
    ctx.tabs.get_mut("A").unwrap().popup = None;
    ctx.to_main().await?;
    // The control window shows an extension page without a port to the worker.
    for second in [5, 10, 15, 20] {
        tokio::time::sleep(Duration::from_secs(5)).await;
        sample(&format!("popup closed {second} s"), &mut seen);
    }
    ctx.open_popup("A").await?;
    push_joined(&ctx, 1).await?;
    for second in [5, 10, 15] {
        tokio::time::sleep(Duration::from_secs(5)).await;
        sample(&format!("popup open again {second} s"), &mut seen);
    }
    let out = seen.join("; ");
    println!("event page lifetime ({kind}): {out}");
    Ok(out)
}
