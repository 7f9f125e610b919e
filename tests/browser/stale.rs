//! Stale sessions and monitoring (issue 11) in real browsers: a session whose last-seen date
//! the test sets 40 days back in the index is marked stale on the Sessions page (and only it);
//! the options page's "stale after" setting reaches the page; "Close and forget stale
//! sessions", confirmed once, closes exactly that session on wpp-sim and forgets its entry,
//! token and tab binding, leaving the others whole. Along the way, a session unlinked on the
//! phone and noticed by the refresh alarm shows one drop in its monitoring line.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::ctx::Ctx;
use crate::harness::{ensure, wait_for, wd, Kind, Result, WAIT};

const DAY_MS: f64 = 86_400_000.0;

/// One row of the Sessions page, as these checks read it.
#[derive(Clone, Debug, Deserialize)]
struct Row {
    id: String,
    known: Option<String>,
    /// `data-stale`.
    stale: Option<String>,
    /// The "Stale" marker's text, while it shows.
    marker: Option<String>,
    /// The monitoring line, while it shows, and its `data-drops`.
    stats: Option<String>,
    drops: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct Listing {
    source: Option<String>,
    rows: Vec<Row>,
    /// `#forget-stale` is enabled.
    forget_stale: bool,
    /// `#confirm-question` while the confirmation shows.
    confirm: Option<String>,
    /// `#notice`: `[data-result, text]`.
    notice: (Option<String>, String),
}

impl Listing {
    fn row(&self, id: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id)
    }

    fn stale(&self, id: &str) -> bool {
        self.row(id)
            .is_some_and(|r| r.stale.as_deref() == Some("true"))
    }

    /// The IDs of the rows marked stale, in page order.
    fn stale_ids(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| self.stale(&r.id))
            .map(|r| r.id.as_str())
            .collect()
    }
}

const LISTING: &str = r#"
const q = s => document.querySelector(s);
const vis = e => !!e && !e.closest('[hidden]') && getComputedStyle(e).display !== 'none';
const text = e => vis(e) ? e.textContent.trim() : null;
return {
  source: document.body.getAttribute('data-source'),
  rows: [...document.querySelectorAll('tr[data-session-id]')].map(tr => {
    const stats = tr.querySelector('.row-stats');
    return {
      id: tr.getAttribute('data-session-id'),
      known: tr.getAttribute('data-known'),
      stale: tr.getAttribute('data-stale'),
      marker: text(tr.querySelector('.stale-marker')),
      stats: text(stats),
      drops: stats ? stats.getAttribute('data-drops') : null,
    };
  }),
  forget_stale: !q('#forget-stale').disabled,
  confirm: vis(q('#confirm')) ? q('#confirm-question').textContent : null,
  notice: [q('#notice').getAttribute('data-result'), q('#notice').textContent.trim()],
};
"#;

/// Waits until the Sessions page open in `window` satisfies `pred`.
async fn wait_listing(
    ctx: &Ctx,
    window: &fantoccini::wd::WindowHandle,
    what: &str,
    pred: impl Fn(&Listing) -> bool,
) -> Result<Listing> {
    wait_for(&format!("Sessions page: {what}"), WAIT, || async {
        ctx.b
            .wd
            .switch_to_window(window.clone())
            .await
            .map_err(wd("switch to the Sessions page"))?;
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

/// Closes every popup window: nothing polls while the index is edited.
async fn close_popups(ctx: &mut Ctx) -> Result<()> {
    let names: Vec<&'static str> = ctx.tabs.keys().copied().collect();
    for name in names {
        if ctx.tab(name)?.popup.is_none() {
            continue;
        }
        ctx.to_popup(name).await?;
        ctx.b
            .wd
            .close_window()
            .await
            .map_err(wd("close a popup window"))?;
        ctx.tabs.get_mut(name).ok_or("no such tab")?.popup = None;
    }
    ctx.to_main().await
}

/// Sets session `id`'s `lastSeenConnected` (and `createdAt`, an hour before) 40 days back in
/// `storage.local`'s index, then has the worker read its cache again: Chromium's service
/// worker is stopped over CDP before the write (storage.session, so tokens and tab bindings,
/// survive it); Firefox's event page cannot be stopped alone, and a `runtime.reload()` would
/// clear storage.session with the bindings this scenario checks, so a panic on demand (the
/// test build's hook) hands the next event to a fresh Wasm instance, which rebuilds its state
/// from storage. Then the refresh alarm runs on that fresh worker. Returns what was done.
async fn backdate_and_reload(ctx: &Ctx, id: &str) -> Result<String> {
    let stopped = match &ctx.b.cdp {
        Some(cdp) => {
            if cdp.extension_worker(&ctx.b.ext_id).await?.is_some() {
                Some(cdp.stop_extension_worker(&ctx.b.ext_id).await?)
            } else {
                Some("already stopped")
            }
        }
        None => None,
    };
    ctx.eval(
        "const s = (await api.storage.local.get('wpp_sessions')).wpp_sessions;\
         s[args[0]].lastSeenConnected = Date.now() - args[1];\
         s[args[0]].createdAt = Date.now() - args[1] - 3600000;\
         await api.storage.local.set({ wpp_sessions: s });",
        vec![json!(id), json!(40.0 * DAY_MS)],
    )
    .await?;
    let how = match stopped {
        Some(how) => format!("service worker stopped ({how}) before the write"),
        None => {
            ctx.to_main().await?;
            match ctx.b.call_background("testPanic", vec![]).await {
                Ok(v) => return Err(format!("testPanic returned {v} instead of panicking")),
                Err(e) if e.contains("no wppTabsListeners.testPanic") => {
                    return Err(format!("the test build has no testPanic hook: {e}"))
                }
                Err(_) => "Wasm instance replaced (testPanic) after the write".to_string(),
            }
        }
    };
    // Wakes the worker (Chromium) and makes sure it answers before the alarm is fired.
    wait_for("the worker to answer again", WAIT, || async {
        Ok(
            match ctx.options_request(json!({ "type": "getSettings" })).await {
                Ok(r) if r["type"] == "settings" => Ok(()),
                Ok(r) => Err(r.to_string()),
                Err(e) => Err(e),
            },
        )
    })
    .await?;
    ctx.to_main().await?;
    ctx.b
        .call_background("alarm", vec![json!({ "name": "wpp-tabs-refresh" })])
        .await?;
    Ok(how)
}

/// Sets "stale after" on the options page (the control window) and saves the Behaviour part.
async fn stale_after_on_options_page(ctx: &Ctx, days: u32) -> Result<()> {
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    ctx.wait_true(
        "the Behaviour fields enabled",
        "return !document.querySelector('#preferences-fields').disabled;",
    )
    .await?;
    ctx.type_into("#stale-after-days", &days.to_string())
        .await?;
    let result = ctx
        .press_for("#save-preferences", "#preferences-status")
        .await?;
    ensure(
        result.0 == "ok",
        format!("saving stale after {days} days: {result:?}"),
    )?;
    let stored = ctx.storage().await?["local"]["wpp_settings"]["staleAfterDays"].clone();
    ensure(
        stored == json!(days),
        format!("wpp_settings.staleAfterDays is {stored}, not {days}"),
    )
}

/// Three sessions paired and connected: A's last-seen date is set 40 days back (and A is
/// unlinked, so the server no longer calls it connected), B is unlinked on the phone, C stays
/// connected. After the worker reloads its cache and the refresh alarm runs, exactly A is
/// marked stale; B shows one drop; stale-after 45 days unmarks A, 30 marks it again; "Close
/// and forget stale sessions", confirmed, closes A on the server and forgets its entry, token
/// and binding; B and C keep theirs.
pub async fn stale_sessions_marked_and_forgotten(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let a = ctx.paired_tab("A").await?;
    let b = ctx.paired_tab("B").await?;
    let c = ctx.paired_tab("C").await?;
    for (name, id) in [("A", &a), ("B", &b), ("C", &c)] {
        ctx.sim.scan(id).await?;
        ctx.wait_popup(name, "CONNECTED after the scan", |s| {
            s.status() == "CONNECTED"
        })
        .await?;
    }
    ctx.wait_index("A, B and C recorded CONNECTED", |i| {
        [&a, &b, &c]
            .iter()
            .all(|id| i[id.as_str()]["lastStatus"] == "CONNECTED")
    })
    .await?;
    close_popups(&mut ctx).await?;
    let tabs = [
        ("A", &a, ctx.tab_id("A")?),
        ("B", &b, ctx.tab_id("B")?),
        ("C", &c, ctx.tab_id("C")?),
    ];
    ctx.sim.unlink(&a).await?;
    ctx.sim.unlink(&b).await?;

    // The edit is retried if a save of the old worker raced it (an alarm of the browser's
    // own, between the write and the stop).
    let mut how = String::new();
    let mut backdated = false;
    for _ in 0..3 {
        how = backdate_and_reload(&ctx, &a).await?;
        let now = ctx.eval("return Date.now();", vec![]).await?;
        let now = now.as_f64().ok_or("Date.now()")?;
        let i = ctx
            .wait_index("A and B CLOSED after the alarm", |i| {
                i[&a]["lastStatus"] == "CLOSED" && i[&b]["lastStatus"] == "CLOSED"
            })
            .await?;
        if i[&a]["lastSeenConnected"]
            .as_f64()
            .is_some_and(|t| t < now - 39.0 * DAY_MS)
        {
            backdated = true;
            break;
        }
    }
    ensure(backdated, "A's last-seen date could not be set back")?;
    ctx.wait_index("one drop each for A and B, C connected", |i| {
        i[&a]["drops"] == 1 && i[&b]["drops"] == 1 && i[&c]["lastStatus"] == "CONNECTED"
    })
    .await?;

    // Exactly A is stale: a row attribute and a marker in words; B shows its drop.
    let window = ctx.b.wd.new_window(true).await.map_err(wd("new window"))?;
    let window = window.handle;
    ctx.b
        .wd
        .switch_to_window(window.clone())
        .await
        .map_err(wd("switch to the Sessions page"))?;
    ctx.b.open("sessions.html").await?;
    let l = wait_listing(&ctx, &window, "A stale, B one drop, C connected", |l| {
        l.source.as_deref() == Some("worker")
            && l.stale_ids() == [a.as_str()]
            && l.forget_stale
            && l.row(&b).is_some_and(|r| r.drops.as_deref() == Some("1"))
            && l.row(&c)
                .and_then(|r| r.stats.as_deref())
                .is_some_and(|s| s.starts_with("Connected "))
    })
    .await?;
    let row_a = l.row(&a).ok_or("row A")?;
    ensure(
        row_a.marker.as_deref() == Some("Stale"),
        format!("A's stale marker: {row_a:?}"),
    )?;
    for id in [&b, &c] {
        let row = l.row(id).ok_or("row B/C")?;
        ensure(
            row.marker.is_none() && row.stale.as_deref() == Some("false"),
            format!("a fresh row marked stale: {row:?}"),
        )?;
    }
    let stats_b = l
        .row(&b)
        .and_then(|r| r.stats.clone())
        .ok_or("B's monitoring line")?;
    ensure(
        stats_b.contains("1 drop"),
        format!("B's monitoring line: {stats_b:?}"),
    )?;

    // The setting reaches the open page: 45 days unmarks A, 30 marks it again.
    stale_after_on_options_page(&ctx, 45).await?;
    wait_listing(&ctx, &window, "nothing stale at 45 days", |l| {
        l.stale_ids().is_empty() && !l.forget_stale
    })
    .await?;
    stale_after_on_options_page(&ctx, 30).await?;
    wait_listing(&ctx, &window, "A stale again at 30 days", |l| {
        l.stale_ids() == [a.as_str()] && l.forget_stale
    })
    .await?;

    // Asked once, naming how many; then exactly A is closed on the server and forgotten.
    let closes_before = closes(&ctx).await?;
    ensure(
        closes_before.is_empty(),
        format!("close-session before the user's word: {closes_before:?}"),
    )?;
    ctx.b.click("#forget-stale").await?;
    let l = wait_listing(&ctx, &window, "the confirmation for 1 stale session", |l| {
        l.confirm
            .as_deref()
            .is_some_and(|q| q.contains("1 stale session"))
    })
    .await?;
    let question = l.confirm.clone().unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(200)).await;
    ensure(
        closes(&ctx).await?.is_empty(),
        "close-session sent before the confirmation was answered",
    )?;
    ctx.b
        .wd
        .switch_to_window(window.clone())
        .await
        .map_err(wd("switch to the Sessions page"))?;
    ctx.b.click("#confirm-yes").await?;
    let l = wait_listing(&ctx, &window, "A forgotten, the outcome said", |l| {
        l.confirm.is_none()
            && l.notice.0.as_deref() == Some("ok")
            && l.notice.1.starts_with("Closed and forgot 1 stale session")
            && l.row(&a)
                .is_none_or(|r| r.known.as_deref() == Some("false"))
            && l.stale_ids().is_empty()
    })
    .await?;
    let closed = wait_for("close-session for A on wpp-sim", WAIT, || async {
        let closes = closes(&ctx).await?;
        Ok(if closes == [a.clone()] {
            Ok(closes)
        } else {
            Err(format!("{closes:?}"))
        })
    })
    .await?;
    let st = ctx.storage().await?;
    let (local, session) = (&st["local"], &st["session"]);
    for (name, id, tab) in tabs {
        let kept = (
            local["wpp_sessions"].get(id.as_str()).is_some(),
            session.get(format!("wpp_token_{id}")).is_some(),
            session[format!("wpp_tab_{tab}")] == json!(id),
        );
        let expected = match name {
            "A" => (false, false, false),
            _ => (true, true, true),
        };
        ensure(
            kept == expected,
            format!(
                "{name} ({id}): entry, token, binding kept = {kept:?}, expected {expected:?}: \
                 {st}"
            ),
        )?;
    }
    Ok(format!(
        "{how}; B: {stats_b:?}; asked {question:?}; close-session for {closed:?}; {:?}",
        l.notice.1
    ))
}

/// The sessions wpp-sim got a close-session for, in order.
async fn closes(ctx: &Ctx) -> Result<Vec<String>> {
    Ok(ctx
        .logouts()
        .await?
        .into_iter()
        .filter(|r| r["route"] == "close-session")
        .filter_map(|r| r["session"].as_str().map(str::to_string))
        .collect())
}
