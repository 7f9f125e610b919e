//! Benchmark (an ignored test, run by `scripts/bench.sh`): push over Socket.IO against the
//! polling baseline, for one pairing session in the shipped build (`dist/chrome`) in real
//! Chromium against wpp-sim rotating its QR every 2 s. The baseline is the same build with
//! wpp-sim refusing sockets, so the worker falls back to polling, as before push existed.
//!
//! Per mode: the authenticated requests wpp-sim logs over `BENCH_SECONDS` (default 60) with
//! the popup open, then as long with no page open; and for each QR rotation in the first
//! window, the time from wpp-sim sending it to the popup's `#qr` showing it (wall clock on
//! both sides: `Date.now()` in the popup, the system clock in wpp-sim).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::ctx::Ctx;
use crate::harness::{wd, Build, Kind, Result};
use crate::sim::Sim;

/// Installed in the open popup: when each new QR was set on `#qr`, and which one.
const QR_OBSERVER: &str = r#"
const img = document.querySelector('#qr');
if (!globalThis.__wppQr) {
  const shown = [];
  let last = '';
  const note = () => {
    const src = img.getAttribute('src') || '';
    if (src && src !== last && !img.hidden) {
      last = src;
      shown.push({ at: Date.now(), tail: src.slice(-arguments[0]) });
    }
  };
  new MutationObserver(note).observe(img, { attributes: true, attributeFilter: ['src', 'hidden'] });
  note();
  globalThis.__wppQr = shown;
}
return true;
"#;

struct Figures {
    open_per_min: f64,
    idle_per_min: f64,
    /// QR sent -> shown, ms, sorted.
    latencies: Vec<f64>,
}

fn authenticated(log: &Value) -> usize {
    log["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            let route = r["route"].as_str().unwrap_or_default();
            let auth = r["auth"].as_str().unwrap_or_default();
            matches!(route, "generate-token" | "show-all-sessions")
                || matches!(auth, "ok" | "invalid")
        })
        .count()
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

async fn measure(build: &Build, push: bool, window: Duration) -> Result<Figures> {
    let mut config = wpp_sim::SimConfig::fast();
    config.auto_close = Duration::from_secs(3_600);
    let sim = Sim::start_with_config(config).await?;
    if !push {
        sim.handle().drop_sockets(true);
    }
    let mut ctx = Ctx::with_build(Kind::Chromium, sim, build).await?;
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("bench").await?;
    ctx.to_popup("bench").await?;
    ctx.b
        .execute(
            QR_OBSERVER,
            vec![Value::from(wpp_sim::DATA_TAIL_CHARS as u64)],
        )
        .await?;
    if push {
        let handle = ctx.sim.handle();
        crate::harness::wait_for(
            "the worker's socket joined",
            crate::harness::WAIT,
            || async {
                Ok(match handle.sockets_joined() {
                    0 => Err("none joined".to_owned()),
                    _ => Ok(()),
                })
            },
        )
        .await?;
    }

    // Window 1: the popup open, after the first start.
    ctx.sim.clear_log().await?;
    let started = now_ms();
    tokio::time::sleep(window).await;
    let open_log = ctx.sim.log().await?;
    let open_min = (now_ms() - started) / 60_000.0;
    ctx.to_popup("bench").await?;
    let shown = ctx
        .b
        .execute("return globalThis.__wppQr || [];", vec![])
        .await?;
    let emitted = ctx.sim.handle().emitted();
    let mut latencies: Vec<f64> = shown
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["at"].as_f64().unwrap_or_default() >= started)
        .filter_map(|s| {
            let tail = s["tail"].as_str()?;
            let sent = emitted.iter().find(|e| {
                e.event == "qrCode"
                    && e.data_tail.as_deref() == Some(tail)
                    && e.session.as_deref().is_none_or(|name| name == id)
            })?;
            Some(s["at"].as_f64()? - sent.at_ms as f64)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);

    // Window 2: no page open.
    ctx.b
        .wd
        .close_window()
        .await
        .map_err(wd("close the popup"))?;
    ctx.tabs.get_mut("bench").unwrap().popup = None;
    ctx.to_main().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    ctx.sim.clear_log().await?;
    let started = now_ms();
    tokio::time::sleep(window).await;
    let idle_log = ctx.sim.log().await?;
    let idle_min = (now_ms() - started) / 60_000.0;
    Ok(Figures {
        open_per_min: authenticated(&open_log) as f64 / open_min,
        idle_per_min: authenticated(&idle_log) as f64 / idle_min,
        latencies,
    })
}

fn quantile(xs: &[f64], p: f64) -> f64 {
    match xs.len() {
        0 => f64::NAN,
        n => xs[((n as f64 * p).ceil() as usize).clamp(1, n) - 1],
    }
}

pub async fn push_pairing() -> Result<String> {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(60);
    let build = Build::at(&crate::bench::shipped_dist()?);
    let window = Duration::from_secs(secs);
    let polling = measure(&build, false, window).await?;
    let push = measure(&build, true, window).await?;
    let qr = |f: &Figures| {
        format!(
            "{:6.0} / {:6.0} / {:6.0} ({:2})",
            quantile(&f.latencies, 0.5),
            quantile(&f.latencies, 0.95),
            f.latencies.last().copied().unwrap_or(f64::NAN),
            f.latencies.len()
        )
    };
    let out = format!(
        "push vs polling: one pairing session, shipped build, wpp-sim rotating its QR every 2 s, {secs} s windows\n\
         measure                                      | polling (baseline)         | push\n\
         auth requests / min, popup open              | {:26.1} | {:.1}\n\
         auth requests / min, no page open            | {:26.1} | {:.1}\n\
         QR sent -> shown, ms: p50 / p95 / max (n)    | {} | {}\n",
        polling.open_per_min,
        push.open_per_min,
        polling.idle_per_min,
        push.idle_per_min,
        qr(&polling),
        qr(&push),
    );
    println!("{out}");
    Ok(out)
}

/// The baseline worker: an empty JS service worker that answers every message at once.
const EMPTY_MANIFEST: &str = r#"{
  "manifest_version": 3,
  "name": "empty worker (benchmark baseline)",
  "version": "1.0",
  "background": { "service_worker": "worker.js" }
}"#;
const EMPTY_WORKER: &str =
    "chrome.runtime.onMessage.addListener((message, sender, reply) => { reply({ ok: true }); });\n";
const EMPTY_PAGE: &str = "<!doctype html><title>page</title>\n";

/// From an extension page: the worker stopped, one message sent, the time to its reply (ms).
async fn cold_replies(
    b: &crate::harness::Browser,
    page: &str,
    message: Value,
    runs: usize,
) -> Result<Vec<f64>> {
    b.open(page).await?;
    let cdp = b.cdp.as_ref().ok_or("Chromium only")?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        cdp.stop_extension_worker(&b.ext_id).await?;
        let ms = b
            .eval(
                "const t = performance.now(); const r = await api.runtime.sendMessage(args[0]);\
                 if (r === undefined) throw new Error('no reply'); return performance.now() - t;",
                vec![message.clone()],
            )
            .await?;
        times.push(ms.as_f64().ok_or("no time")?);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// Worker cold start: from a message that wakes a stopped worker to its first reply, the
/// shipped build's worker (its options request `getSettings`) against an empty JS worker.
pub async fn worker_cold_start() -> Result<String> {
    let runs = crate::bench::bench_runs();
    let empty = crate::harness::TempDir::new("empty-worker")?;
    for (name, text) in [
        ("manifest.json", EMPTY_MANIFEST),
        ("worker.js", EMPTY_WORKER),
        ("page.html", EMPTY_PAGE),
    ] {
        std::fs::write(empty.0.join(name), text).map_err(|e| format!("write {name}: {e}"))?;
    }
    let baseline = {
        let b = crate::harness::Browser::chromium(&empty.0).await?;
        cold_replies(&b, "page.html", serde_json::json!({"ping": true}), runs).await?
    };
    let ours = {
        let dist = crate::bench::shipped_dist()?;
        let b = crate::harness::Browser::chromium(&dist.join("chrome")).await?;
        let request = serde_json::json!({
            "v": wpp_tabs::core::messages::PROTOCOL_VERSION,
            "type": "getSettings",
        });
        cold_replies(&b, "options.html", request, runs).await?
    };
    let row = |xs: &[f64]| {
        format!(
            "{:6.1} / {:6.1} / {:6.1}",
            quantile(xs, 0.5),
            quantile(xs, 0.9),
            xs.last().copied().unwrap_or(f64::NAN)
        )
    };
    let out = format!(
        "worker cold start: a message to the stopped worker -> its reply, {runs} runs (ms: median / p90 / max)\n\
         empty JS worker (baseline) | {}\n\
         wpp-tabs worker (shipped)  | {}\n",
        row(&baseline),
        row(&ours),
    );
    println!("{out}");
    Ok(out)
}

/// Calls in the host-permission benchmark: each to another session's URL, as a worker
/// checking several sessions makes them (the browser caches a preflight per URL).
const PREFLIGHT_CALLS: usize = 20;

/// From an extension page: `status-session` of [`PREFLIGHT_CALLS`] sessions, one after the
/// other, with their tokens; each call's time (ms).
const TIMED_CALLS: &str = r#"
const [base, calls] = args;
const times = [];
for (const [session, token] of calls) {
  const t = performance.now();
  const r = await fetch(`${base}/api/${session}/status-session`, {
    headers: { Authorization: `Bearer ${token}` }, cache: 'no-store', credentials: 'omit',
  });
  await r.text();
  times.push(performance.now() - t);
}
return times;
"#;

/// With and without the server's origin as a host permission: the CORS preflights the server
/// answers per authenticated call, and the time per call, from an extension page of the
/// shipped build (the worker's `fetch` is the same) in Chromium.
pub async fn host_permission() -> Result<String> {
    let dist = crate::bench::shipped_dist()?.join("chrome");
    let mut rows = vec![];
    for granted in [false, true] {
        let dir = crate::harness::TempDir::new("host-permission")?;
        crate::harness::copy_dir(&dist, &dir.0)?;
        if granted {
            let path = dir.0.join("manifest.json");
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            let mut manifest: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            manifest["host_permissions"] = serde_json::json!(["http://127.0.0.1/*"]);
            std::fs::write(&path, manifest.to_string()).map_err(|e| e.to_string())?;
        }
        let sim = Sim::start().await?;
        let handle = sim.handle();
        let calls: Vec<Value> = (0..PREFLIGHT_CALLS)
            .map(|i| {
                let session = format!("bench{i}");
                let token = handle.token_for(&session);
                serde_json::json!([session, token])
            })
            .collect();
        let b = crate::harness::Browser::chromium(&dir.0).await?;
        b.open("options.html").await?;
        let before = handle.preflights();
        let times = b
            .eval(
                TIMED_CALLS,
                vec![Value::from(sim.direct.clone()), Value::from(calls)],
            )
            .await?;
        let preflights = handle.preflights() - before;
        let mut times: Vec<f64> = times
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect();
        times.sort_by(f64::total_cmp);
        rows.push((granted, preflights, times));
    }
    let mut out = format!(
        "host permission: {PREFLIGHT_CALLS} authenticated calls (status-session of as many sessions) from an extension page, Chromium, loopback\n\
         origin permission          | preflights / call | ms per call: median / p90\n"
    );
    for (granted, preflights, times) in rows {
        out += &format!(
            "{:26} | {:17.2} | {:5.2} / {:5.2}\n",
            if granted {
                "granted"
            } else {
                "not granted (shipped)"
            },
            preflights as f64 / PREFLIGHT_CALLS as f64,
            quantile(&times, 0.5),
            quantile(&times, 0.9),
        );
    }
    println!("{out}");
    Ok(out)
}
