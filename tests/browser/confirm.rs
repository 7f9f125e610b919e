//! Logging out a connected account asks first: in the popup (`#logout` opens
//! `#logout-confirmation`; Escape or `#logout-cancel` closes it) and from the context menu
//! (a small window with the same confirmation).

use serde_json::json;

use crate::ctx::Ctx;
use crate::harness::{ensure, wait_for, wd, Kind, Result, WAIT};

/// Whether the confirmation is on screen in the current window.
async fn confirmation_shown(ctx: &Ctx) -> Result<bool> {
    let v = ctx
        .b
        .execute(
            "const e = document.querySelector('#logout-confirmation');\
             return !!e && !e.hidden && getComputedStyle(e).display !== 'none';",
            vec![],
        )
        .await?;
    Ok(v == json!(true))
}

async fn no_logout_yet(ctx: &Ctx, id: &str, when: &str) -> Result<()> {
    let logouts = ctx.logouts().await?;
    ensure(
        !logouts.iter().any(|r| r["session"] == json!(id)),
        format!("{when}: the server was asked to log out already: {logouts:?}"),
    )?;
    ensure(
        ctx.sim.status_of(id).await?.as_deref() == Some("CONNECTED"),
        format!("{when}: the account is no longer connected"),
    )
}

/// The popup asks before unlinking a connected account; Escape cancels, confirming logs out.
pub async fn logout_confirmation_in_popup(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    let (a, _) = ctx.a_connected_b_qr().await?;
    ctx.click_in_popup("A", "#logout").await?;
    ensure(
        confirmation_shown(&ctx).await?,
        "#logout did not ask for a confirmation",
    )?;
    no_logout_yet(&ctx, &a, "asking").await?;
    ctx.b
        .execute(
            "document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));",
            vec![],
        )
        .await?;
    ensure(
        !confirmation_shown(&ctx).await?,
        "Escape did not close the confirmation",
    )?;
    no_logout_yet(&ctx, &a, "after Escape").await?;
    ctx.click_in_popup("A", "#logout").await?;
    ctx.click_in_popup("A", "#logout-confirm").await?;
    ctx.wait_keys_gone("A").await?;
    let after = ctx.sim.status_of(&a).await?;
    ensure(
        after.as_deref() != Some("CONNECTED"),
        format!("still connected after confirming: {after:?}"),
    )?;
    Ok(format!("sim A after: {after:?}"))
}

/// The confirmation window the context menu opens. WebDriver lists it in Firefox; chromedriver
/// does not list popup-type windows, so in Chromium it is driven over CDP.
enum ConfirmWindow {
    Handle(fantoccini::wd::WindowHandle),
    CdpPage,
}

const CONFIRM_URL: &str = "confirm=logout";
const SHOWN: &str = "(() => { const e = document.querySelector('#logout-confirmation'); \
                     return !!e && !e.hidden && getComputedStyle(e).display !== 'none'; })()";

impl ConfirmWindow {
    async fn find(ctx: &Ctx, before: &[fantoccini::wd::WindowHandle]) -> Result<ConfirmWindow> {
        let b = &ctx.b;
        wait_for("a confirmation window", WAIT, || async {
            if let Some(cdp) = &b.cdp {
                return Ok(match cdp.has_page(CONFIRM_URL).await? {
                    true => Ok(ConfirmWindow::CdpPage),
                    false => Err("no page with confirm=logout".to_owned()),
                });
            }
            let handles = b.wd.windows().await.map_err(wd("window handles"))?;
            for handle in handles.into_iter().filter(|h| !before.contains(h)) {
                b.wd.switch_to_window(handle.clone())
                    .await
                    .map_err(wd("switch"))?;
                let url = b.wd.current_url().await.map_err(wd("url"))?;
                if url.as_str().contains(CONFIRM_URL) {
                    return Ok(Ok(ConfirmWindow::Handle(handle)));
                }
            }
            Ok(Err("no new window with confirm=logout".to_owned()))
        })
        .await
    }

    async fn eval(&self, ctx: &Ctx, expression: &str) -> Result<serde_json::Value> {
        match self {
            ConfirmWindow::CdpPage => {
                let cdp = ctx.b.cdp.as_ref().ok_or("no CDP")?;
                cdp.eval_in_page(CONFIRM_URL, expression).await
            }
            ConfirmWindow::Handle(handle) => {
                ctx.b
                    .wd
                    .switch_to_window(handle.clone())
                    .await
                    .map_err(wd("switch"))?;
                ctx.b
                    .execute(&format!("return {expression};"), vec![])
                    .await
            }
        }
    }

    async fn is_open(&self, ctx: &Ctx) -> Result<bool> {
        match self {
            ConfirmWindow::CdpPage => {
                ctx.b
                    .cdp
                    .as_ref()
                    .ok_or("no CDP")?
                    .has_page(CONFIRM_URL)
                    .await
            }
            ConfirmWindow::Handle(handle) => {
                let handles = ctx.b.wd.windows().await.map_err(wd("window handles"))?;
                Ok(handles.contains(handle))
            }
        }
    }
}

/// The context menu on a connected account opens the confirmation in a window of its own,
/// which logs out on "Log out" and closes itself.
pub async fn logout_confirmation_from_menu(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    let (a, _) = ctx.a_connected_b_qr().await?;
    let tab_a = ctx.tab_id("A")?;
    ctx.to_main().await?;
    let before = ctx.b.wd.windows().await.map_err(wd("window handles"))?;
    ctx.b
        .call_background(
            "menuClicked",
            vec![
                json!({"menuItemId": "logout-tab-session"}),
                json!({"id": tab_a}),
            ],
        )
        .await?;
    let window = ConfirmWindow::find(&ctx, &before).await?;
    wait_for("the confirmation in that window", WAIT, || async {
        Ok(match window.eval(&ctx, SHOWN).await? == json!(true) {
            true => Ok(()),
            false => Err("hidden".to_owned()),
        })
    })
    .await?;
    no_logout_yet(&ctx, &a, "the menu only asked").await?;
    window
        .eval(
            &ctx,
            "(() => { document.querySelector('#logout-confirm').click(); return true; })()",
        )
        .await?;
    ctx.wait_keys_gone("A").await?;
    wait_for("the confirmation window to close itself", WAIT, || async {
        Ok(match window.is_open(&ctx).await? {
            true => Err("still open".to_owned()),
            false => Ok(()),
        })
    })
    .await?;
    Ok(format!("sim A after: {:?}", ctx.sim.status_of(&a).await?))
}
