//! Accessibility: axe-core (WCAG 2.x A and AA rules) in the extension's real pages, in each
//! state a user meets: the popup asking for settings, showing a QR, connected; the options
//! page; the Sessions page with sessions; the Diagnostics page. Every violation fails.

use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::harness::{ensure, Kind, Result};

/// axe-core as installed by `scripts/setup.sh` (pinned in `scripts/package-lock.json`).
fn axe_source() -> Result<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/node_modules/axe-core/axe.min.js"
    );
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e} (run scripts/setup.sh test)"))
}

/// Runs axe in the current window's page; returns its violations, each as one line.
async fn violations(ctx: &Ctx, axe: &str) -> Result<Vec<String>> {
    ctx.b.execute(axe, vec![]).await?;
    let found = ctx
        .b
        .eval(
            "const r = await axe.run(document, { runOnly: { type: 'tag', values: \
             ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } });\
             return r.violations.map(v => ({ id: v.id, impact: v.impact, \
             nodes: v.nodes.map(n => n.target.join(' ')) }));",
            vec![],
        )
        .await?;
    Ok(found
        .as_array()
        .into_iter()
        .flatten()
        .map(|v: &Value| format!("{} ({}) at {}", v["id"], v["impact"], v["nodes"]))
        .collect())
}

pub async fn axe_in_every_page(kind: Kind) -> Result<String> {
    let axe = axe_source()?;
    let mut ctx = Ctx::new(kind).await?;
    let mut report = vec![];
    let mut failures = vec![];
    let mut check = |page: &str, found: Vec<String>| {
        report.push(format!("{page}: {}", found.len()));
        failures.extend(found.into_iter().map(|f| format!("{page}: {f}")));
    };
    ctx.create_tab("A").await?;
    ctx.open_popup("A").await?;
    ctx.wait_popup("A", "asking for settings", |s| s.options_link_visible)
        .await?;
    check("popup, no settings", violations(&ctx, &axe).await?);
    ctx.to_main().await?;
    check("options", violations(&ctx, &axe).await?);
    ctx.settings_fast().await?;
    let a = ctx.paired_tab("B").await?;
    ctx.to_popup("B").await?;
    check("popup, QR", violations(&ctx, &axe).await?);
    ctx.sim.scan(&a).await?;
    ctx.wait_popup("B", "CONNECTED", |s| s.status() == "CONNECTED")
        .await?;
    check("popup, connected", violations(&ctx, &axe).await?);
    for page in ["sessions.html", "diagnostics.html"] {
        ctx.b.open_in_new_window(page).await?;
        check(page, violations(&ctx, &axe).await?);
    }
    ensure(
        failures.is_empty(),
        format!("axe violations:\n{}", failures.join("\n")),
    )?;
    Ok(format!("{} (violations per page)", json!(report)))
}
