//! Benchmark (an ignored test, run by `scripts/bench.sh`): how fast the popup shows a paired
//! tab's session, in real Chromium with the shipped build (`dist/chrome`), against wpp-sim.
//! Prints, side by side, when a static page with the popup's HTML and CSS and no script could
//! first paint (parsed and its stylesheet loaded: the floor, since a stylesheet blocks
//! rendering), when the popup itself is styled, the first paint of the session (its ID: from
//! the worker's first state, or from the cached state in storage.session when that comes
//! first) and the first live state the worker pushes, with the worker warm and with the worker
//! stopped just before the popup opens. [`popup_cold_timeline`] shows where the stopped
//! worker's share goes.
//!
//! A second benchmark, [`sessions_page_load`], counts what the session manager costs the
//! server: 20 connected sessions, the authenticated requests wpp-sim receives in a real minute
//! with the Sessions page open and in another with no page open, beside a naive page polling
//! every session every 2 s and the seed design's 3 s poll.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wpp_tabs::core::messages::{PROTOCOL_VERSION, SESSIONS_PORT};

use crate::ctx::Ctx;
use crate::harness::{ensure, wait_for, wd, Build, Kind, Result, WAIT};
use crate::sim::Sim;

/// Runs before any script of every document in the measured window: records when the HTML is
/// parsed (`readyState` interactive, before any module script runs), when the stylesheet has
/// loaded, and when the session ID (first paint) and the live CONNECTED state from the
/// worker first appear.
const OBSERVER: &str = r#"
(() => {
  const t0 = performance.now();
  const seen = {};
  document.addEventListener('readystatechange', () => {
    if (!seen.parsed && document.readyState !== 'loading') seen.parsed = performance.now() - t0;
  });
  // A <link>'s load event does not bubble: caught on the way down.
  document.addEventListener('load', (e) => {
    if (!seen.css && e.target.localName === 'link') seen.css = performance.now() - t0;
  }, true);
  new MutationObserver(() => {
    const id = document.querySelector('#session-id');
    const status = document.querySelector('#status');
    if (!seen.id && id && id.title) seen.id = performance.now() - t0;
    const source = document.body && document.body.dataset.source;
    if (!seen.live && status && status.dataset.phase === 'connected'
        && (source === 'paint' || source === 'worker')) {
      seen.live = performance.now() - t0;
    }
  }).observe(document, { subtree: true, childList: true, attributes: true });
  // The popup's start on the clock the worker's marks use (performance.timeOrigin + now).
  seen.start = performance.timeOrigin + t0;
  globalThis.__wppBench = seen;
})();
"#;

/// Runs per benchmark row: `BENCH_RUNS`, 15 unless set.
pub(crate) fn bench_runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15)
}

fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() as f64 * p) as usize).min(s.len() - 1)]
}

/// `dist/`, the shipped build, or an error saying how to make it. `WPP_TABS_BENCH_DIST`
/// names another build of the same layout (e.g. an earlier one, to compare).
pub(crate) fn shipped_dist() -> Result<PathBuf> {
    let dist = std::env::var_os("WPP_TABS_BENCH_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dist"));
    if !dist.join("chrome/manifest.json").is_file() {
        return Err(format!(
            "{}/chrome is missing: run scripts/build.sh first (the benchmark measures the shipped build)",
            dist.display()
        ));
    }
    Ok(dist)
}

/// A Chromium with `dist`'s build and wpp-sim, its one tab's session paired and connected, the
/// bench's observer set on that tab's popup; the popup's URL.
async fn connected_tab(dist: &std::path::Path) -> Result<(Ctx, String)> {
    let mut ctx = Ctx::with_build(Kind::Chromium, Sim::start().await?, &Build::at(dist)).await?;
    ctx.settings_fast().await?;
    // Pair the tab once, so every measured open has a cached session to paint.
    let id = ctx.paired_tab("bench").await?;
    ctx.sim.scan(&id).await?;
    ctx.wait_popup("bench", "CONNECTED", |s| s.status() == "CONNECTED")
        .await?;
    let popup_url = ctx
        .b
        .url(&format!("popup.html?tab={}", ctx.tab_id("bench")?));
    let cdp = ctx.b.cdp.as_ref().ok_or("Chromium only")?;
    cdp.add_init_script(&popup_url, OBSERVER).await?;
    ctx.to_popup("bench").await?;
    Ok((ctx, popup_url))
}

/// Opens the popup in the current window; what the observer saw, once it saw it all.
async fn open_popup(ctx: &Ctx, popup_url: &str) -> Result<Value> {
    open_observed(ctx, popup_url, &["parsed", "css", "id", "live"]).await
}

/// Opens `url` in the current window; what the observer saw, once it saw each of `marks`.
async fn open_observed(ctx: &Ctx, url: &str, marks: &[&str]) -> Result<Value> {
    ctx.b.wd.goto(url).await.map_err(wd("open a page"))?;
    let b = &ctx.b;
    wait_for(
        &format!("{marks:?} in {url}"),
        Duration::from_secs(20),
        || async {
            let v = b
                .execute("return globalThis.__wppBench || null;", vec![])
                .await?;
            let all = marks.iter().all(|k| v[k].is_number());
            Ok(if all { Ok(v) } else { Err(v.to_string()) })
        },
    )
    .await
}

/// A copy of `dist`'s Chromium build with `static.html` beside its popup: the popup's HTML
/// and stylesheet without its scripts, the page the popup is measured against.
fn with_static_popup(dist: &std::path::Path) -> Result<crate::harness::TempDir> {
    let copy = crate::harness::TempDir::new("popup-static")?;
    crate::harness::copy_dir(&dist.join("chrome"), &copy.0.join("chrome"))?;
    let html =
        std::fs::read_to_string(copy.0.join("chrome/popup.html")).map_err(|e| e.to_string())?;
    let without_scripts: Vec<&str> = html
        .lines()
        .filter(|line| !line.trim_start().starts_with("<script"))
        .collect();
    ensure(
        without_scripts.len() < html.lines().count()
            && !without_scripts.concat().contains("<script"),
        "popup.html's scripts are each one line of their own".to_string(),
    )?;
    std::fs::write(
        copy.0.join("chrome/static.html"),
        without_scripts.join("\n"),
    )
    .map_err(|e| e.to_string())?;
    Ok(copy)
}

pub async fn popup_open() -> Result<String> {
    let runs = bench_runs();
    let build = with_static_popup(&shipped_dist()?)?;
    let (ctx, popup_url) = connected_tab(&build.0).await?;
    let cdp = ctx.b.cdp.as_ref().ok_or("Chromium only")?;
    let static_url = ctx.b.url("static.html");

    let mut rows = Vec::new();
    for (name, stop_worker) in [("worker warm", false), ("worker stopped", true)] {
        let mut columns: [Vec<f64>; 5] = Default::default();
        for _ in 0..runs {
            let still = open_observed(&ctx, &static_url, &["parsed", "css"]).await?;
            let floor = still["parsed"]
                .as_f64()
                .unwrap_or_default()
                .max(still["css"].as_f64().unwrap_or_default());
            if stop_worker {
                cdp.stop_extension_worker(&ctx.b.ext_id).await?;
            }
            let seen = open_popup(&ctx, &popup_url).await?;
            let at = |k: &str| seen[k].as_f64().unwrap_or_default();
            let styled = at("parsed").max(at("css"));
            // A change made before the popup's stylesheet loaded shows only with it.
            let shown = at("live").max(styled);
            for (column, value) in
                columns
                    .iter_mut()
                    .zip([floor, styled, at("id").max(styled), shown, shown - floor])
            {
                column.push(value);
            }
        }
        rows.push((name, columns));
    }
    let mut out = format!(
        "popup open, {runs} runs each (ms from navigation; median / p90)\n\
         scenario         | static page (floor) | popup styled   | session ID shown   | live state     | live - static\n"
    );
    for (name, columns) in rows {
        out += &format!("{name:16}");
        for (column, width) in columns.iter().zip([19, 14, 18, 14, 13]) {
            let cell = format!(
                "{:5.1} / {:5.1}",
                percentile(column, 0.5),
                percentile(column, 0.9)
            );
            out += &format!(" | {cell:width$}");
        }
        out += "\n";
    }
    println!("{out}");
    Ok(out)
}

/// Sessions in the load benchmark.
const LOAD_SESSIONS: usize = 20;

/// Authenticated requests in one window of wpp-sim's log, by route. Authenticated: the
/// request carried a token (`auth` `ok` or `invalid`: the server ran a bcrypt compare) or the
/// secret key (`generate-token`, `show-all-sessions`).
#[derive(Default)]
struct RouteCounts {
    status: u64,
    list: u64,
    token: u64,
    others: u64,
    /// Requests without credentials (not in the table).
    unauthenticated: u64,
    /// Authenticated requests answered with an error status (or dropped).
    failed: u64,
    /// `status-session` requests per session.
    per_session: std::collections::BTreeMap<String, u64>,
}

impl RouteCounts {
    fn of(log: &Value) -> RouteCounts {
        let mut c = RouteCounts::default();
        for r in log["requests"].as_array().into_iter().flatten() {
            let route = r["route"].as_str().unwrap_or_default();
            let auth = r["auth"].as_str().unwrap_or_default();
            let secret_route = matches!(route, "generate-token" | "show-all-sessions");
            if !(secret_route || matches!(auth, "ok" | "invalid")) {
                c.unauthenticated += 1;
                continue;
            }
            if !(200..300).contains(&r["status"].as_u64().unwrap_or_default()) {
                c.failed += 1;
            }
            match route {
                "status-session" => {
                    c.status += 1;
                    let session = r["session"].as_str().unwrap_or_default().to_string();
                    *c.per_session.entry(session).or_default() += 1;
                }
                "show-all-sessions" => c.list += 1,
                "generate-token" => c.token += 1,
                _ => c.others += 1,
            }
        }
        c
    }

    fn total(&self) -> u64 {
        self.status + self.list + self.token + self.others
    }

    /// `status-session` per session over `sessions`: `min-max`, sessions never checked
    /// counting 0.
    fn spread(&self, sessions: &[String]) -> String {
        let per = sessions
            .iter()
            .map(|id| self.per_session.get(id).copied().unwrap_or(0));
        let (min, max) = (per.clone().min().unwrap_or(0), per.max().unwrap_or(0));
        format!("{min}-{max}")
    }
}

/// What the server sees of the session manager: [`LOAD_SESSIONS`] sessions paired and
/// connected in the shipped build (tabs left open, popups closed), then wpp-sim's
/// authenticated requests counted over `BENCH_SECONDS` (default 60) of real time with the
/// Sessions page open, and as long again with no page open (the minute alarm's share).
pub async fn sessions_page_load() -> Result<String> {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(60);
    let window = Duration::from_secs(secs);
    let dist = shipped_dist()?;
    // The Sessions page itself when the build has it; else a bare port to the worker, which
    // subscribes as the page does (the pacing is the worker's either way).
    let with_page = dist.join("chrome/sessions.html").is_file();
    let mut ctx = Ctx::with_build(Kind::Chromium, Sim::start().await?, &Build::at(&dist)).await?;
    ctx.settings_fast().await?;

    // Pair and connect every session, each in its own tab, through its popup.
    let names: Vec<&'static str> = (0..LOAD_SESSIONS)
        .map(|i| &*Box::leak(format!("load{i:02}").into_boxed_str()))
        .collect();
    let mut ids = Vec::new();
    for &name in &names {
        ids.push(ctx.paired_tab(name).await?);
    }
    for id in &ids {
        ctx.sim.scan(id).await?;
    }
    for &name in &names {
        ctx.wait_popup(name, "CONNECTED after the scan", |s| {
            s.status() == "CONNECTED"
        })
        .await?;
    }
    for &name in &names {
        ctx.to_popup(name).await?;
        ctx.b.wd.close_window().await.map_err(wd("close a popup"))?;
        ctx.tabs.get_mut(name).unwrap().popup = None;
    }
    ctx.to_main().await?;
    // Settle: the last polls of the closed popups and the account reads land before counting.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for id in &ids {
        let status = ctx.sim.status_of(id).await?;
        ensure(
            status.as_deref() == Some("CONNECTED"),
            format!("{id} is {status:?} on wpp-sim before the measurement"),
        )?;
    }
    let cdp = ctx.b.cdp.as_ref().ok_or("Chromium only")?;

    // Window 1: the Sessions page open.
    ctx.sim.clear_log().await?;
    let started = Instant::now();
    let page_window = if with_page {
        let handle = ctx.b.open_in_new_window("sessions.html").await?;
        let b = &ctx.b;
        wait_for("the Sessions page listing every session", WAIT, || async {
            let n = b
                .execute(
                    "return document.querySelectorAll('tr[data-session-id]').length;",
                    vec![],
                )
                .await?;
            Ok(if n.as_u64() >= Some(LOAD_SESSIONS as u64) {
                Ok(())
            } else {
                Err(format!("{n} rows"))
            })
        })
        .await?;
        Some(handle)
    } else {
        ctx.eval(
            "globalThis.__benchPort = api.runtime.connect({ name: args[0] });\
             globalThis.__benchPort.postMessage({ v: args[1], type: 'subscribe' });",
            vec![json!(SESSIONS_PORT), json!(PROTOCOL_VERSION)],
        )
        .await?;
        None
    };
    tokio::time::sleep(window.saturating_sub(started.elapsed())).await;
    let open_log = ctx.sim.log().await?;
    let open_secs = started.elapsed().as_secs_f64();
    let open_worker = cdp.extension_worker(&ctx.b.ext_id).await?.is_some();
    match page_window {
        Some(handle) => {
            ctx.b
                .switch_to(&handle, "switch to the Sessions page")
                .await?;
            ctx.b
                .wd
                .close_window()
                .await
                .map_err(wd("close the Sessions page"))?;
        }
        None => {
            ctx.eval("globalThis.__benchPort.disconnect();", vec![])
                .await?;
        }
    }
    ctx.to_main().await?;
    // A check in flight when the page closed lands before the second window.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Window 2: no page open (the control window shows the options page, which polls nothing).
    ctx.sim.clear_log().await?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let closed_log = ctx.sim.log().await?;
    let closed_secs = started.elapsed().as_secs_f64();
    let closed_worker = cdp.extension_worker(&ctx.b.ext_id).await?.is_some();

    let (open, closed) = (RouteCounts::of(&open_log), RouteCounts::of(&closed_log));
    let n = LOAD_SESSIONS as u64;
    let (naive, seed) = (n * secs / 2, n * secs / 3);
    let page = if with_page {
        "sessions.html"
    } else {
        "a port subscribed as the page (sessions.html not in dist/)"
    };
    let mut out = format!(
        "sessions page load: {n} connected sessions, authenticated requests to wpp-sim in {secs} s (shipped build)\n\
         route             | naive 2 s | seed 3 s | measured (Sessions page open) | measured (no page open)\n"
    );
    let rows = [
        (
            "status-session",
            Some(naive),
            Some(seed),
            open.status,
            closed.status,
        ),
        ("show-all-sessions", None, None, open.list, closed.list),
        ("generate-token", None, None, open.token, closed.token),
        ("others", None, None, open.others, closed.others),
        (
            "total",
            Some(naive),
            Some(seed),
            open.total(),
            closed.total(),
        ),
    ];
    let cell = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    for (route, naive, seed, open, closed) in rows {
        out += &format!(
            "{route:17} | {:>9} | {:>8} | {open:>29} | {closed:>23}\n",
            cell(naive),
            cell(seed),
        );
    }
    out += &format!(
        "windows {open_secs:.1} s / {closed_secs:.1} s; page: {page}; failed: {} / {}; \
         without credentials: {} / {}; worker running at the end: {open_worker} / {closed_worker}\n\
         status-session per session (min-max): {} / {}\n\
         baselines: {n} sessions x one status-session per 2 s / 3 s, nothing else\n",
        open.failed,
        closed.failed,
        open.unauthenticated,
        closed.unauthenticated,
        open.spread(&ids),
        closed.spread(&ids),
    );
    println!("{out}");
    Ok(out)
}

/// Marks in a copy of the build: in the popup's `popup-port.js`, when it opens its port (kept in
/// the bench's observer, as `port`); in the worker's loader (`background.js`), when its script
/// starts, when its module is fetched, compiled and ready, when the popup's port connects and
/// its subscription reaches Wasm, and when the first state is posted (kept in
/// `storage.session` under [`TIMELINE_KEY`], which replaces that word, once that state is
/// posted). Each is a file, a text it must hold, and what replaces that text.
const TIMELINE_KEY: &str = "benchTimeline";
const TIMELINE_MARKS: [(&str, &str, &str); 5] = [
    (
        "popup-port.js",
        "  const port = api.runtime.connect({ name: \"wpp-tabs-popup\" });",
        "  if (globalThis.__wppBench) globalThis.__wppBench.port = performance.timeOrigin + performance.now();\n\
         const port = api.runtime.connect({ name: \"wpp-tabs-popup\" });",
    ),
    (
        "background.js",
        "const ready = init({ module_or_path: new URL(\"./wasm/worker_bg.wasm\", import.meta.url) })",
        "const mark = (name) => { timeline[name] ??= performance.timeOrigin + performance.now(); };\n\
         const timeline = {}; mark(\"start\");\n\
         const ready = fetch(new URL(\"./wasm/worker_bg.wasm\", import.meta.url))\n\
           .then((r) => { mark(\"fetched\"); return WebAssembly.compileStreaming(r); })\n\
           .then((m) => { mark(\"compiled\"); return init({ module_or_path: m }); })\n\
           .then(() => mark(\"ready\"))",
    ),
    (
        "background.js",
        "  connect: (port) => {\n",
        "  connect: (port) => {\n    mark(\"connect\");\n\
             const post = port.postMessage.bind(port);\n\
             port.postMessage = (m) => {\n\
               post(m);\n\
               if (timeline.posted) return;\n\
               mark(\"posted\");\n\
               chrome.storage.session.set({ TIMELINE_KEY: timeline });\n\
             };\n",
    ),
    (
        "background.js",
        "      for (const message of early) w.worker_on_port_message(key, message);",
        "      if (early.length) mark(\"handed\");\n      for (const message of early) w.worker_on_port_message(key, message);",
    ),
    (
        "background.js",
        "      port.onMessage.addListener((message) => w.worker_on_port_message(key, message));",
        "      port.onMessage.addListener((message) => { mark(\"handed\"); w.worker_on_port_message(key, message); });",
    ),
];

/// The worker's marks of [`TIMELINE_MARKS`], in order, with what the row prints for each.
const TIMELINE: [(&str, &str); 7] = [
    ("start", "worker script runs"),
    ("fetched", "its Wasm fetched"),
    ("compiled", "compiled"),
    ("ready", "instantiated"),
    ("connect", "popup's port connects"),
    ("handed", "subscription to Wasm"),
    ("posted", "first state posted"),
];

/// Where a popup's time goes when it wakes a stopped worker: the shipped build with marks in
/// the worker's loader (its module loaded in the same steps as the glue's `init`, fetch then
/// compile then instantiate, split to mark each), each mark in ms from the popup's navigation,
/// beside when the popup is styled (its own floor) and when its live state shows.
pub async fn popup_cold_timeline() -> Result<String> {
    let runs = bench_runs();
    let dist = crate::harness::TempDir::new("cold-timeline")?;
    crate::harness::copy_dir(&shipped_dist()?.join("chrome"), &dist.0.join("chrome"))?;
    for (file, from, to) in TIMELINE_MARKS {
        let path = dist.0.join("chrome").join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        ensure(
            text.contains(from),
            format!("{file} no longer holds {from:?}: update TIMELINE_MARKS"),
        )?;
        let to = to.replace("TIMELINE_KEY", TIMELINE_KEY);
        std::fs::write(&path, text.replacen(from, &to, 1)).map_err(|e| e.to_string())?;
    }

    let (ctx, popup_url) = connected_tab(&dist.0).await?;
    let cdp = ctx.b.cdp.as_ref().ok_or("Chromium only")?;
    let names: Vec<&str> = TIMELINE.iter().map(|(_, name)| *name).collect();
    // The rows: the floor, the popup's port, each of the worker's marks, the live state, then
    // the Wasm's own share (subscription in, first state out), taken within each run.
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); TIMELINE.len() + 4];
    for _ in 0..runs {
        ctx.b
            .execute(
                &format!("return chrome.storage.session.remove('{TIMELINE_KEY}');"),
                vec![],
            )
            .await?;
        cdp.stop_extension_worker(&ctx.b.ext_id).await?;
        let seen = open_popup(&ctx, &popup_url).await?;
        let b = &ctx.b;
        let marks: Value = wait_for("the worker's marks", WAIT, || async {
            let v = b
                .execute(
                    &format!("return chrome.storage.session.get('{TIMELINE_KEY}').then((r) => r['{TIMELINE_KEY}'] || null);"),
                    vec![],
                )
                .await?;
            Ok(if v.is_object() { Ok(v) } else { Err(v.to_string()) })
        })
        .await?;
        let at = |k: &str| seen[k].as_f64().unwrap_or_default();
        let floor = at("parsed").max(at("css"));
        columns[0].push(floor);
        let port = seen["port"].as_f64().ok_or("no mark of the popup's port")?;
        columns[1].push(port - at("start"));
        for (column, (mark, _)) in columns[2..].iter_mut().zip(TIMELINE) {
            let t = marks[mark]
                .as_f64()
                .ok_or(format!("no mark {mark}: {marks}"))?;
            column.push(t - at("start"));
        }
        columns[TIMELINE.len() + 2].push(at("live").max(floor));
        let answer = marks["posted"].as_f64().zip(marks["handed"].as_f64());
        columns[TIMELINE.len() + 3].push(answer.map_or(f64::NAN, |(out, into)| out - into));
    }
    let mut out = format!(
        "popup cold timeline: the worker stopped, {runs} runs (ms from the popup's navigation; median / p90)\n"
    );
    let rows = ["popup styled", "popup opens its port"]
        .into_iter()
        .chain(names)
        .chain(["live state shown", "Wasm's answer (ms)"]);
    for (name, column) in rows.zip(&columns) {
        out += &format!(
            "{name:24} | {:5.1} / {:5.1}\n",
            percentile(column, 0.5),
            percentile(column, 0.9)
        );
    }
    println!("{out}");
    Ok(out)
}
