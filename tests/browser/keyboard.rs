//! The keyboard: the manifest's command that opens the Sessions page, as the browser delivers
//! it to the worker (a key press on the browser's own UI is beyond WebDriver's reach).

use serde_json::json;

use crate::ctx::Ctx;
use crate::harness::{ensure, wait_for, Kind, Result, WAIT};

/// The extension's pages open in tabs, by path.
const OPEN_PAGES: &str =
    "return api.extension.getViews({ type: 'tab' }).map((view) => view.location.pathname);";

pub async fn command_opens_sessions_page(kind: Kind) -> Result<String> {
    let ctx = Ctx::new(kind).await?;
    let before = ctx.eval(OPEN_PAGES, vec![]).await?;
    ensure(
        !before.to_string().contains("sessions.html"),
        format!("a Sessions page was open already: {before}"),
    )?;
    ctx.b
        .call_background("command", vec![json!("open-sessions")])
        .await?;
    let pages = wait_for("a Sessions page opened by the command", WAIT, || async {
        let pages = ctx.eval(OPEN_PAGES, vec![]).await?;
        Ok(match pages.to_string().contains("/sessions.html") {
            true => Ok(pages),
            false => Err(pages.to_string()),
        })
    })
    .await?;
    // An unknown command opens nothing more.
    ctx.b
        .call_background("command", vec![json!("no-such-command")])
        .await?;
    let after = ctx.eval(OPEN_PAGES, vec![]).await?;
    let count = |v: &serde_json::Value| v.to_string().matches("sessions.html").count();
    ensure(
        count(&after) == 1,
        format!("pages after an unknown command: {after}"),
    )?;
    Ok(format!("open pages: {pages}"))
}
