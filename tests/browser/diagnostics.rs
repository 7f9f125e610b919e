//! The Diagnostics page (issue 11, monitoring): a scenario's requests by route and its
//! failure show there, and its copied text holds no token wpp-sim issued and not the secret;
//! a panic of the worker shows there too, recorded by the panic hook for the next instance.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::harness::{ensure, wait_for, Kind, Result, WAIT};

/// What the page shows of one server and of the events, in one round trip.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    /// `body[data-source]`: `worker` once a view arrived.
    source: Option<String>,
    /// `[route, requests, failures]` of server `s1`.
    routes: Vec<(String, u64, u64)>,
    /// `[kind, count]` of server `s1`'s failures.
    failures: Vec<(String, u64)>,
    latency: String,
    push: String,
    /// `[kind, text]`, newest first.
    events: Vec<(String, String)>,
    text: String,
}

const PAGE: &str = r#"
const q = s => document.querySelector(s);
const server = q('section.server-diag[data-server-id="s1"]');
const all = (root, s) => root ? [...root.querySelectorAll(s)] : [];
return {
  source: document.body.getAttribute('data-source'),
  routes: all(server, 'tr[data-route]').map(tr => [tr.getAttribute('data-route'),
    Number(tr.querySelector('[data-field="requests"]').textContent),
    Number(tr.querySelector('[data-field="failures"]').textContent)]),
  failures: all(server, '[data-kind]').map(e => [e.getAttribute('data-kind'), Number(e.getAttribute('data-count'))]),
  latency: server ? server.querySelector('[data-field="latency"]').textContent : '',
  push: server ? server.querySelector('[data-field="push"]').textContent : '',
  events: all(document, '#events tbody tr').map(tr => [tr.getAttribute('data-kind'), tr.textContent]),
  text: q('#diagnostics-text').value,
};
"#;

impl Page {
    fn route(&self, route: &str) -> (u64, u64) {
        let row = self.routes.iter().find(|r| r.0 == route);
        row.map_or((0, 0), |r| (r.1, r.2))
    }

    fn has_event(&self, kind: &str, part: &str) -> bool {
        self.events
            .iter()
            .any(|(k, t)| k == kind && t.contains(part))
    }
}

async fn page(ctx: &Ctx) -> Result<Page> {
    let v = ctx.b.execute(PAGE, vec![]).await?;
    serde_json::from_value(v.clone()).map_err(|e| format!("diagnostics page {v}: {e}"))
}

/// The sim's requests for `route` (and `session`, when given), and those with `status`.
fn sim_count(log: &Value, route: &str, status: Option<u64>) -> u64 {
    let requests = log["requests"].as_array().into_iter().flatten();
    requests
        .filter(|r| r["route"] == json!(route))
        .filter(|r| status.is_none_or(|s| r["status"] == json!(s)))
        .count() as u64
}

/// Every token wpp-sim issued or was sent (its log), and every token the browser holds.
async fn every_token(ctx: &Ctx) -> Result<Vec<String>> {
    let log = ctx.sim.log().await?;
    let mut tokens: Vec<String> = Vec::new();
    for r in log["requests"].as_array().into_iter().flatten() {
        tokens.extend(r["token"].as_str().map(str::to_string));
    }
    for (_, auth) in log["sessions"].as_object().into_iter().flatten() {
        let issued = auth["tokens"].as_array().into_iter().flatten();
        tokens.extend(issued.filter_map(|t| t.as_str().map(str::to_string)));
    }
    let st = ctx.storage().await?;
    for (key, value) in st["session"].as_object().into_iter().flatten() {
        if key.starts_with("wpp_token_") {
            tokens.extend(value.as_str().map(str::to_string));
        }
    }
    // A redacted or malformed one is no token.
    tokens.retain(|t| t.len() >= 20);
    tokens.sort();
    tokens.dedup();
    ensure(!tokens.is_empty(), "no token to look for: nothing paired?")?;
    Ok(tokens)
}

/// Checks `text` holds no token, not the secret and no full session ID (but its short form).
async fn redacted(ctx: &Ctx, what: &str, text: &str, ids: &[&str]) -> Result<usize> {
    let tokens = every_token(ctx).await?;
    for token in &tokens {
        ensure(
            !text.contains(token.as_str()),
            format!("{what} holds a token wpp-sim issued: {text}"),
        )?;
    }
    ensure(
        !text.contains(ctx.sim.secret.as_str()),
        format!("{what} holds the secret: {text}"),
    )?;
    for id in ids {
        ensure(
            !text.contains(id) && text.contains(&id[..14]),
            format!("{what}: session {id} is not shortened: {text}"),
        )?;
    }
    Ok(tokens.len())
}

/// Clicks `#copy-diagnostics` and returns the copied text and how it was read: the clipboard
/// where the browser lets the test read it, else the page's text area (which the page
/// selects when the clipboard refuses).
async fn copied(ctx: &Ctx, kind: Kind) -> Result<(String, &'static str)> {
    if kind == Kind::Chromium {
        // Headless Chromium denies clipboard reads unless the permission is granted.
        ctx.b.set_permission("clipboard-read", "granted").await?;
    }
    let sentinel = "not-the-diagnostics";
    let writable = ctx
        .b
        .eval(
            "await navigator.clipboard.writeText(args[0]); return true;",
            vec![json!(sentinel)],
        )
        .await
        .is_ok();
    ctx.b.click("#copy-diagnostics").await?;
    let b = &ctx.b;
    let result = wait_for("#copy-status[data-result]", WAIT, || async {
        let v = b
            .execute(
                "const e = document.querySelector('#copy-status');\
                 return [e.getAttribute('data-result'), e.textContent];",
                vec![],
            )
            .await?;
        Ok(match v[0].as_str() {
            Some(r) => Ok(r.to_string()),
            None => Err(v.to_string()),
        })
    })
    .await?;
    let clip = b
        .eval("return await navigator.clipboard.readText();", vec![])
        .await;
    match (result.as_str(), clip) {
        ("ok", Ok(Value::String(text))) if writable && text != sentinel => {
            Ok((text, "navigator.clipboard.readText()"))
        }
        (result, clip) => {
            let text = page(ctx).await?.text;
            ensure(
                !text.is_empty(),
                format!("copy {result}, clipboard {clip:?}, and the text area is empty"),
            )?;
            Ok((
                text,
                "the page's #diagnostics-text (clipboard not readable)",
            ))
        }
    }
}

/// Pair, a failed status-session, scan: the page shows the requests by route (as many as
/// wpp-sim saw) and the failure; the copied text holds no token and not the secret.
pub async fn diagnostics_page(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    // These faults hit the popup's polls: the socket is refused, as when a server's socket
    // is down, so the popup polls (push itself is in push.rs).
    ctx.sim.handle().drop_sockets(true);
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("D").await?;
    ctx.sim
        .fault(json!({"route": "status-session", "session": id, "kind": "http500", "count": 1}))
        .await?;
    wait_for("wpp-sim answered one status-session 500", WAIT, || async {
        let n = sim_count(&ctx.sim.log().await?, "status-session", Some(500));
        Ok(if n == 1 { Ok(()) } else { Err(n.to_string()) })
    })
    .await?;
    ctx.sim.scan(&id).await?;
    ctx.wait_popup("D", "CONNECTED after the scan", |s| {
        s.status() == "CONNECTED"
    })
    .await?;

    ctx.b.open_in_new_window("diagnostics.html").await?;
    let routes = ["generate-token", "start-session", "status-session"];
    let shown = wait_for(
        "the Diagnostics page shows the scenario's requests as wpp-sim saw them",
        WAIT,
        || async {
            // Live pushes follow the log; #refresh asks at once.
            ctx.b.click("#refresh").await?;
            let p = page(&ctx).await?;
            let log = ctx.sim.log().await?;
            let seen: Vec<(u64, u64)> = routes
                .iter()
                .map(|r| (p.route(r).0, sim_count(&log, r, None)))
                .collect();
            let ok = p.source.as_deref() == Some("worker")
                && seen.iter().all(|(page, sim)| page == sim && *page > 0)
                && p.route("status-session").1 == 1
                && p.failures.contains(&("server".into(), 1))
                && p.has_event("error", "status-session")
                && p.has_event("state", "CONNECTED");
            Ok(if ok {
                Ok(p)
            } else {
                Err(format!("(page, sim) by route {seen:?}; page {p:?}"))
            })
        },
    )
    .await?;
    ensure(
        shown.push.contains("no push connection (polling)"),
        format!("socket state: {:?}", shown.push),
    )?;
    ensure(
        shown.latency.contains("median") && shown.latency.contains("p95"),
        format!("latency: {:?}", shown.latency),
    )?;

    let (text, how) = copied(&ctx, kind).await?;
    for part in routes
        .iter()
        .copied()
        .chain(["server 1", "status-session failed"])
    {
        ensure(
            text.contains(part),
            format!("copied text lacks {part:?}: {text}"),
        )?;
    }
    let tokens = redacted(&ctx, "the copied text", &text, &[&id]).await?;
    // What the worker keeps of it: memory-only storage.session, never storage.local.
    let stored = wait_for("the log in storage.session", WAIT, || async {
        let st = ctx.storage().await?;
        Ok(match &st["session"]["wpp_diagnostics"] {
            Value::Null => Err("not yet".to_string()),
            log => Ok((log.to_string(), st["local"].get("wpp_diagnostics").cloned())),
        })
    })
    .await?;
    ensure(stored.1.is_none(), "the log is in storage.local")?;
    redacted(&ctx, "storage.session's log", &stored.0, &[&id]).await?;
    let counts: Vec<String> = routes
        .iter()
        .map(|r| format!("{r} {:?}", shown.route(r)))
        .collect();
    Ok(format!(
        "{}; copied text read from {how}, {tokens} tokens looked for",
        counts.join(", ")
    ))
}

/// The worker panics: the Diagnostics page shows the panic (the hook's line, read by the
/// next instance) and the restart, and its text holds no token.
pub async fn diagnostics_after_a_panic(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("P").await?;
    ctx.to_main().await?;
    if let Ok(v) = ctx.b.call_background("testPanic", vec![]).await {
        return Err(format!("testPanic returned {v} instead of panicking"));
    }
    // The open popup reconnects to the fresh instance, which loads the log.
    ctx.wait_popup("P", "a QR after the panic", |s| {
        s.qr_shown() && !s.error_visible
    })
    .await?;
    ctx.b.open_in_new_window("diagnostics.html").await?;
    let shown = wait_for(
        "the Diagnostics page shows the panic and the restart",
        WAIT,
        || async {
            ctx.b.click("#refresh").await?;
            let p = page(&ctx).await?;
            // The events before the panic too: the hook stored the log on the way out.
            let ok = p.has_event("panic", "a panic the test asked for")
                && p.has_event("restart", "started again after a panic")
                && p.has_event("state", "QRCODE");
            Ok(if ok {
                Ok(p)
            } else {
                Err(format!("{:?}", p.events))
            })
        },
    )
    .await?;
    let st = ctx.storage().await?;
    let left = st["session"].as_object().into_iter().flatten();
    let left: Vec<&String> = left
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("wpp_diag_panic_"))
        .collect();
    ensure(left.is_empty(), format!("the hook's line stayed: {left:?}"))?;
    redacted(&ctx, "the diagnostics text", &shown.text, &[&id]).await?;
    let panic = shown.events.iter().find(|(k, _)| k == "panic");
    Ok(format!("{:?}", panic.map(|p| &p.1)))
}
