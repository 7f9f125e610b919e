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

/// The focused element's `id` (or tag name).
const FOCUSED: &str = "const e = document.activeElement; return e.id || e.tagName.toLowerCase();";

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

async fn focused(ctx: &Ctx) -> Result<String> {
    let id = ctx.b.execute(FOCUSED, vec![]).await?;
    Ok(id.as_str().unwrap_or_default().to_owned())
}

/// Tabs forward until `id` has the focus; returns the ids passed on the way.
async fn tab_to(ctx: &Ctx, id: &str) -> Result<Vec<String>> {
    let mut passed = Vec::new();
    for _ in 0..30 {
        press(ctx, Key::Tab).await?;
        let now = focused(ctx).await?;
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

    // One full round of Tab: every control, in page order, each with its focus ring.
    let ids = tab_round(&ctx, "popup").await??;
    for needed in ["copy-session-id", "pair-by-phone", "open-sessions"] {
        ensure(
            ids.iter().any(|id| id == needed),
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
        Ok(match f == "phone" {
            true => Ok(()),
            false => Err(format!("focus on {f}, form shown: {form}")),
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
        "Tab round: {ids:?}; confirmation opened on #{safe}; phone pairing and logout by keyboard"
    ))
}

/// Numbers every control a keyboard user should reach in the current page (shown, enabled, not
/// taken out of the tab order) as `data-kb`, in page order; returns how many.
const NUMBER_CONTROLS: &str = r#"
const all = document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]');
const reachable = [...all].filter(e =>
  !e.disabled && e.tabIndex >= 0 && !e.closest('[inert]') &&
  (e.checkVisibility ? e.checkVisibility({ visibilityProperty: true }) : !!e.offsetParent));
document.querySelectorAll('[data-kb]').forEach(e => e.removeAttribute('data-kb'));
reachable.forEach((e, i) => e.setAttribute('data-kb', String(i)));
if (document.activeElement) document.activeElement.blur();
return reachable.length;
"#;

/// The focused control: its `data-kb` number (-1: a control not counted), whether its focus
/// ring shows (an outline of at least 2 px), and a name for messages.
const FOCUSED_CONTROL: &str = r#"
const e = document.activeElement;
if (!e || e === document.body) return null;
const s = getComputedStyle(e);
return {
  n: e.hasAttribute('data-kb') ? Number(e.getAttribute('data-kb')) : -1,
  ring: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
  name: e.id || `${e.tagName.toLowerCase()}[${e.getAttribute('data-action') || e.getAttribute('data-field') || e.textContent.trim().slice(0, 20)}]`,
};
"#;

/// One round of Tab through the current page: every control counted by [`NUMBER_CONTROLS`] is
/// reached once, in page order, with its focus ring; nothing else takes the focus. Returns the
/// stops (an ID, or a tag and what names it), or what went wrong.
async fn tab_round(ctx: &Ctx, page: &str) -> Result<std::result::Result<Vec<String>, String>> {
    let count = ctx.b.execute(NUMBER_CONTROLS, vec![]).await?;
    let count = count.as_u64().unwrap_or_default() as usize;
    let mut stops: Vec<Value> = Vec::new();
    for _ in 0..count + 5 {
        press(ctx, Key::Tab).await?;
        let f = ctx.b.execute(FOCUSED_CONTROL, vec![]).await?;
        // The round ends where the focus leaves the page or comes back round.
        if f.is_null() || stops.first().is_some_and(|first| first["n"] == f["n"]) {
            break;
        }
        stops.push(f);
    }
    let order: Vec<i64> = stops
        .iter()
        .map(|s| s["n"].as_i64().unwrap_or(-1))
        .collect();
    let expected: Vec<i64> = (0..count as i64).collect();
    let unringed: Vec<&Value> = stops.iter().filter(|s| s["ring"] != json!(true)).collect();
    let names: Vec<String> = stops
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("?").to_owned())
        .collect();
    Ok(if count == 0 {
        Err(format!("{page}: no control to reach"))
    } else if order != expected {
        Err(format!(
            "{page}: Tab went {order:?} through {names:?}, expected 0..{count} in page order"
        ))
    } else if !unringed.is_empty() {
        Err(format!("{page}: no visible focus on {unringed:?}"))
    } else {
        Ok(names)
    })
}

/// The options, Sessions and Diagnostics pages with the keyboard: Tab reaches every control in
/// page order with a visible focus, the Sessions page's rows included.
pub async fn pages_by_keyboard(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    ctx.paired_tab("K").await?;
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    let mut report = vec![];
    let mut failures = vec![];
    let mut record = |page: &str, r: std::result::Result<Vec<String>, String>| match r {
        Ok(stops) => report.push(format!("{page}: {} stops", stops.len())),
        Err(why) => failures.push(why),
    };
    record("options", tab_round(&ctx, "options").await?);
    ctx.b.open_in_new_window("sessions.html").await?;
    ctx.wait_true(
        "a session row",
        "return !!document.querySelector('tr[data-session-id] [data-action]');",
    )
    .await?;
    record("sessions", tab_round(&ctx, "sessions").await?);
    ctx.b.open_in_new_window("diagnostics.html").await?;
    ctx.wait_true(
        "the diagnostics shown",
        "return document.body.getAttribute('aria-busy') === 'false';",
    )
    .await?;
    record("diagnostics", tab_round(&ctx, "diagnostics").await?);
    ensure(failures.is_empty(), failures.join("\n"))?;
    Ok(report.join("; "))
}
