//! Benchmark (an ignored test, run by `scripts/bench.sh`): how fast the popup shows a paired
//! tab's session, in real Chromium with the shipped build (`dist/chrome`), against wpp-sim.
//! Prints, side by side, the first paint from the cached state in storage.session (what the
//! user sees at once) and the first live state the worker pushes (the baseline: what a popup
//! without the cache would wait for), with the worker warm and with the worker stopped just
//! before the popup opens.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::ctx::Ctx;
use crate::harness::{wait_for, wd, Build, Kind, Result};
use crate::sim::Sim;

/// Runs before any script of every document in the measured window: records when the session
/// ID (cached paint) and the live CONNECTED state from the worker first appear.
const OBSERVER: &str = r#"
(() => {
  const t0 = performance.now();
  const seen = {};
  new MutationObserver(() => {
    const id = document.querySelector('#session-id');
    const status = document.querySelector('#status');
    if (!seen.cached && id && id.title) seen.cached = performance.now() - t0;
    if (!seen.live && status && status.dataset.phase === 'connected'
        && document.body && document.body.dataset.source === 'worker') {
      seen.live = performance.now() - t0;
    }
  }).observe(document, { subtree: true, childList: true, attributes: true });
  globalThis.__wppBench = seen;
})();
"#;

fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() as f64 * p) as usize).min(s.len() - 1)]
}

pub async fn popup_open() -> Result<String> {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dist");
    if !dist.join("chrome/manifest.json").is_file() {
        return Err(format!(
            "{}/chrome is missing: run scripts/build.sh first (the benchmark measures the shipped build)",
            dist.display()
        ));
    }
    let mut ctx = Ctx::with_build(Kind::Chromium, Sim::start().await?, &Build::at(&dist)).await?;
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

    let mut rows = Vec::new();
    for (name, stop_worker) in [("worker warm", false), ("worker stopped", true)] {
        let (mut cached, mut live) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            if stop_worker {
                cdp.stop_extension_worker(&ctx.b.ext_id).await?;
            }
            ctx.b
                .wd
                .goto(&popup_url)
                .await
                .map_err(wd("open the popup"))?;
            let b = &ctx.b;
            let seen: Value =
                wait_for("cached and live paint", Duration::from_secs(20), || async {
                    let v = b
                        .execute("return globalThis.__wppBench || null;", vec![])
                        .await?;
                    Ok(if v["cached"].is_number() && v["live"].is_number() {
                        Ok(v)
                    } else {
                        Err(v.to_string())
                    })
                })
                .await?;
            cached.push(seen["cached"].as_f64().unwrap_or_default());
            live.push(seen["live"].as_f64().unwrap_or_default());
        }
        rows.push((name, cached, live));
    }
    let mut out = format!(
        "popup open, {runs} runs each (ms from navigation; median / p90)\n\
         scenario         | cached first paint | live state (baseline)\n"
    );
    for (name, c, l) in rows {
        out += &format!(
            "{name:16} | {:7.1} / {:6.1}   | {:7.1} / {:6.1}\n",
            percentile(&c, 0.5),
            percentile(&c, 0.9),
            percentile(&l, 0.5),
            percentile(&l, 0.9)
        );
    }
    println!("{out}");
    Ok(out)
}
