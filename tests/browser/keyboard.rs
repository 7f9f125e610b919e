//! The keyboard: the manifest's command that opens the Sessions page, as the browser delivers
//! it to the worker (a key press on the browser's own UI is beyond WebDriver's reach), and the
//! popup used with the keyboard alone.

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::{json, Value};

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

/// What has the focus, and whether it shows: `id` (or tag), shown, a focus outline of at least
/// 2 px, its tab index, and whether it follows the previously recorded element in the page.
const FOCUSED: &str = r#"
const e = document.activeElement;
const s = getComputedStyle(e);
// Kept in the page (a script's own globals may not outlive it, as in Firefox).
const prev = document.querySelector('[data-last-focused]');
if (prev) prev.removeAttribute('data-last-focused');
e.setAttribute('data-last-focused', '');
return {
  id: e.id || e.tagName.toLowerCase(),
  shown: e.checkVisibility ? e.checkVisibility() : !!e.offsetParent,
  ring: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
  tabIndex: e.tabIndex,
  after: !prev || prev === e || !!(prev.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING),
};
"#;

/// Presses `key` in the current window, as the keyboard does (WebDriver actions).
async fn press(ctx: &Ctx, key: impl Into<char>) -> Result<()> {
    let c: char = key.into();
    ctx.b
        .wd
        .perform_actions(
            KeyActions::new("keyboard".into())
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c }),
        )
        .await
        .map_err(|e| format!("press {c:?}: {e}"))
}

/// Enter on the focused control. Firefox under WebDriver delivers the key (trusted `keydown`,
/// `keypress` and `keyup` reach the button) but does not turn it into the button's click on an
/// extension page, so there the click the browser would make stands for it.
async fn activate(ctx: &Ctx, kind: Kind) -> Result<()> {
    match kind {
        Kind::Chromium => press(ctx, Key::Return).await,
        Kind::Firefox => ctx
            .b
            .execute(
                // In a form's field, Enter submits: the browser clicks its submit button.
                "const e = document.activeElement;\
                 (e.form && e.tagName === 'INPUT' ? e.form.querySelector('[type=submit]') : e).click();",
                vec![],
            )
            .await
            .map(drop),
    }
}

async fn focused(ctx: &Ctx) -> Result<Value> {
    ctx.b.execute(FOCUSED, vec![]).await
}

/// Tabs forward until `id` has the focus; returns the ids passed on the way.
async fn tab_to(ctx: &Ctx, id: &str) -> Result<Vec<String>> {
    let mut passed = Vec::new();
    for _ in 0..30 {
        press(ctx, Key::Tab).await?;
        let f = focused(ctx).await?;
        let now = f["id"].as_str().unwrap_or_default().to_owned();
        if now == id {
            return Ok(passed);
        }
        passed.push(now);
    }
    Err(format!("Tab never reached #{id}: {passed:?}"))
}

/// The popup from pairing to logging out, with the keyboard alone: Tab goes through every
/// control in page order, each showing a focus ring; the phone form opens, takes the number and
/// shows the code on Enter; the logout confirmation takes the focus, Escape closes it and gives
/// the focus back, and Enter on its confirm button logs out.
pub async fn popup_by_keyboard_alone(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    ctx.paired_tab("K").await?;
    ctx.to_popup("K").await?;

    // One full round of Tab: every stop shown, ringed, in page order, no positive tabindex.
    let mut round: Vec<Value> = Vec::new();
    for _ in 0..30 {
        press(&ctx, Key::Tab).await?;
        let f = focused(&ctx).await?;
        // The round ends where focus leaves the page (to the browser) or comes back round.
        if f["id"] == "body" || round.first().is_some_and(|first| first["id"] == f["id"]) {
            break;
        }
        round.push(f);
    }
    let ids: Vec<&str> = round.iter().filter_map(|f| f["id"].as_str()).collect();
    for f in &round {
        ensure(
            f["shown"] == true && f["ring"] == true && f["tabIndex"].as_i64() <= Some(0),
            format!("a stop without a visible focus ring, or out of order: {f} in {ids:?}"),
        )?;
    }
    ensure(
        round.iter().skip(1).all(|f| f["after"] == true),
        format!("Tab does not follow the page order: {round:?}"),
    )?;
    for needed in ["copy-session-id", "pair-by-phone", "open-sessions"] {
        ensure(
            ids.contains(&needed),
            format!("Tab never reaches #{needed}: {ids:?}"),
        )?;
    }

    // Pairing by phone number, from the keyboard.
    tab_to(&ctx, "pair-by-phone").await?;
    activate(&ctx, kind).await?;
    wait_for("the phone field has the focus", WAIT, || async {
        let f = focused(&ctx).await?;
        let form = ctx
            .b
            .execute(
                "return !document.querySelector('#phone-form').hidden;",
                vec![],
            )
            .await?;
        Ok(match f["id"] == "phone" {
            true => Ok(()),
            false => Err(format!("focus on {}, form shown: {form}", f["id"])),
        })
    })
    .await?;
    for c in "5521988887777".chars() {
        press(&ctx, c).await?;
    }
    activate(&ctx, kind).await?;
    let s = ctx
        .wait_popup("K", "the pairing code", |s| s.status() == "PHONECODE")
        .await?;
    ctx.wait_true(
        "#phone-code shows ABCD-EFGH",
        "return /^[A-Z0-9]{4}-[A-Z0-9]{4}$/.test(document.querySelector('#phone-code').textContent.trim());",
    )
    .await?;
    let id = s.id().to_owned();
    ctx.sim.scan(&id).await?;
    ctx.wait_popup("K", "CONNECTED", |s| s.status() == "CONNECTED")
        .await?;

    // Logging out: the confirmation takes the focus; Escape gives it back to #logout.
    ctx.to_popup("K").await?;
    tab_to(&ctx, "logout").await?;
    activate(&ctx, kind).await?;
    ctx.wait_true(
        "the confirmation has the focus",
        "return !!document.activeElement.closest('#logout-confirmation') && !document.querySelector('#logout-confirmation').hidden;",
    )
    .await?;
    let safe = focused(&ctx).await?;
    press(&ctx, Key::Escape).await?;
    ctx.wait_true(
        "Escape closed the confirmation, #logout has the focus back",
        "return document.querySelector('#logout-confirmation').hidden && document.activeElement.id === 'logout';",
    )
    .await?;
    activate(&ctx, kind).await?;
    tab_to(&ctx, "logout-confirm").await?;
    activate(&ctx, kind).await?;
    wait_for("the session logged out", WAIT, || async {
        let gone = ctx.sim.sessions().await?["sessions"]
            .as_array()
            .is_some_and(|all| all.iter().all(|s| s["session"] != json!(id)));
        Ok(if gone {
            Ok(())
        } else {
            Err(format!("{id} still on the server"))
        })
    })
    .await?;
    Ok(format!(
        "Tab round: {ids:?}; confirmation opened on #{}; phone pairing and logout by keyboard",
        safe["id"].as_str().unwrap_or_default()
    ))
}
