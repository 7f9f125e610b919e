//! The pictures in the README: the built extension in Chromium against wpp-sim, each page in
//! the state a user meets, in English and Portuguese, light and dark, written as PNGs to
//! `docs/screenshots/` (or `WPP_SCREENSHOTS_DIR`). Run by `scripts/screenshots.sh`.

use std::path::PathBuf;

use crate::ctx::Ctx;
use crate::harness::{Kind, Look, Result};
use crate::manager::label_in_popup;

fn out_dir() -> PathBuf {
    std::env::var_os("WPP_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"))
}

/// The popup's body (the popup's own 300 px), or the whole window for a page.
async fn shoot(ctx: &Ctx, whole_window: bool, file: &str) -> Result<String> {
    // Pictures show the page at rest: no blinking caret, no focus ring.
    ctx.b
        .execute(
            "document.activeElement && document.activeElement.blur();",
            vec![],
        )
        .await?;
    let png = if whole_window {
        ctx.b.wd.screenshot().await
    } else {
        ctx.b.find("body").await?.screenshot().await
    }
    .map_err(|e| format!("screenshot {file}: {e}"))?;
    let path = out_dir().join(file);
    std::fs::write(&path, &png).map_err(|e| format!("write {path:?}: {e}"))?;
    Ok(file.to_owned())
}

/// One language and theme: every picture.
async fn one_look(lang: &str, look: Look<'_>, theme: &str) -> Result<Vec<String>> {
    let mut ctx = Ctx::with_look(Kind::Chromium, &look).await?;
    ctx.b
        .wd
        .set_window_size(1000, 720)
        .await
        .map_err(|e| format!("window size: {e}"))?;
    let mut written = Vec::new();
    let file = |page: &str| format!("{page}-{lang}-{theme}.png");

    ctx.settings_fast().await?;
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    written.push(shoot(&ctx, true, &file("options")).await?);

    let a = ctx.paired_tab("A").await?;
    label_in_popup(&ctx, "A", "Support").await?;
    ctx.wait_popup("A", "the QR", |s| s.qr_shown()).await?;
    written.push(shoot(&ctx, false, &file("popup-qr")).await?);

    ctx.paired_tab("P").await?;
    label_in_popup(&ctx, "P", "Sales").await?;
    ctx.click_in_popup("P", "#pair-by-phone").await?;
    ctx.to_popup("P").await?;
    ctx.type_into("#phone", "+55 21 98888-7777").await?;
    ctx.click_in_popup("P", "#phone-submit").await?;
    ctx.wait_popup("P", "the pairing code", |s| s.status() == "PHONECODE")
        .await?;
    written.push(shoot(&ctx, false, &file("popup-phone-code")).await?);

    ctx.sim.scan(&a).await?;
    ctx.wait_popup("A", "connected", |s| s.status() == "CONNECTED")
        .await?;
    ctx.wait_true(
        "the account shown",
        "return !document.querySelector('#account').hidden;",
    )
    .await?;
    written.push(shoot(&ctx, false, &file("popup-connected")).await?);

    let e = ctx.paired_tab_polling("E").await?;
    ctx.status_checks_fail("E", &e).await?;
    written.push(shoot(&ctx, false, &file("popup-error")).await?);
    ctx.sim.clear_faults().await?;

    ctx.b.open_in_new_window("sessions.html").await?;
    ctx.b
        .wd
        .set_window_size(1000, 720)
        .await
        .map_err(|e| format!("window size: {e}"))?;
    ctx.wait_true(
        "the sessions listed",
        "return document.querySelectorAll('tr[data-session-id]').length >= 3;",
    )
    .await?;
    written.push(shoot(&ctx, true, &file("sessions")).await?);
    Ok(written)
}

pub async fn screenshots() -> Result<String> {
    std::fs::create_dir_all(out_dir()).map_err(|e| format!("{:?}: {e}", out_dir()))?;
    let mut written = Vec::new();
    for (lang, locale) in [("en", None), ("pt-BR", Some("pt-BR"))] {
        for (theme, dark) in [("light", false), ("dark", true)] {
            written.extend(one_look(lang, Look { locale, dark }, theme).await?);
        }
    }
    Ok(format!(
        "{} pictures in {:?}: {written:?}",
        written.len(),
        out_dir()
    ))
}
