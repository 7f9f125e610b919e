//! Accessibility: axe-core (WCAG 2.x A and AA rules) in the extension's real pages, in each
//! state a user meets: the popup asking for settings, showing a QR, connected, asking to
//! confirm a logout, pairing by phone, showing an error; the options
//! page; the Sessions page with sessions; the Diagnostics page; in light and in dark colours
//! (where the contrast rules check the dark palette). Every violation fails.

use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::harness::{ensure, Kind, Look, Result};

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
    axe_in(kind, &Look::default()).await
}

pub async fn axe_in_every_page_dark(kind: Kind) -> Result<String> {
    let look = Look {
        dark: true,
        ..Look::default()
    };
    axe_in(kind, &look).await
}

async fn axe_in(kind: Kind, look: &Look<'_>) -> Result<String> {
    let axe = axe_source()?;
    let mut ctx = Ctx::with_look(kind, look).await?;
    ensure(
        ctx.b
            .eval(
                "return matchMedia('(prefers-color-scheme: dark)').matches;",
                vec![],
            )
            .await?
            == json!(look.dark),
        format!(
            "the pages do not see the colour scheme asked for (dark: {})",
            look.dark
        ),
    )?;
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
    // The QR's text alternative says what to do, and how without a camera.
    let qr = ctx
        .b
        .execute(
            "const qr = document.querySelector('#qr');\
             const steps = document.getElementById(qr.getAttribute('aria-describedby'));\
             return { alt: qr.alt, phone: document.querySelector('#pair-by-phone').textContent.trim(),\
               steps: steps && steps.checkVisibility() ? steps.textContent.trim() : '' };",
            vec![],
        )
        .await?;
    let says = |k: &str| qr[k].as_str().unwrap_or_default().to_owned();
    let alt_says_what_to_do = says("alt").contains(&says("phone"))
        && says("alt").len() > says("phone").len()
        && !says("steps").is_empty();
    check(
        "popup, QR's text alternative",
        if alt_says_what_to_do {
            vec![]
        } else {
            vec![format!("does not say what to do: {qr}")]
        },
    );
    ctx.sim.scan(&a).await?;
    ctx.wait_popup("B", "CONNECTED", |s| s.status() == "CONNECTED")
        .await?;
    check("popup, connected", violations(&ctx, &axe).await?);
    ctx.click_in_popup("B", "#logout").await?;
    check("popup, log out?", violations(&ctx, &axe).await?);

    ctx.paired_tab("P").await?;
    ctx.click_in_popup("P", "#pair-by-phone").await?;
    check("popup, phone form", violations(&ctx, &axe).await?);
    ctx.type_into("#phone", "+55 21 98888-7777").await?;
    ctx.click_in_popup("P", "#phone-submit").await?;
    ctx.wait_popup("P", "the pairing code", |s| s.status() == "PHONECODE")
        .await?;
    check("popup, phone code", violations(&ctx, &axe).await?);

    let e = ctx.paired_tab_polling("E").await?;
    ctx.status_checks_fail("E", &e).await?;
    check("popup, error", violations(&ctx, &axe).await?);
    ctx.sim.clear_faults().await?;
    ctx.to_popup("P").await?;
    ctx.choose("#colour", "purple").await?;
    ctx.b.open_in_new_window("sessions.html").await?;
    check("sessions.html", violations(&ctx, &axe).await?);
    check(
        "sessions.html, colours in words",
        colours_in_words(&ctx).await?,
    );
    ctx.b.open_in_new_window("diagnostics.html").await?;
    check("diagnostics.html", violations(&ctx, &axe).await?);
    ensure(
        failures.is_empty(),
        format!("axe violations:\n{}", failures.join("\n")),
    )?;
    Ok(format!("{} (violations per page)", json!(report)))
}

/// Colour is never the only signal: in the Sessions page (the current window), once a purple
/// row shows, every coloured row names its colour in words. Returns what is amiss.
async fn colours_in_words(ctx: &Ctx) -> Result<Vec<String>> {
    if let Err(e) = ctx
        .wait_true(
            "a purple row in the Sessions page",
            "return !!document.querySelector('.swatch[data-colour=purple]');",
        )
        .await
    {
        return Ok(vec![e]);
    }
    let rows = ctx
        .b
        .execute(
            "return [...document.querySelectorAll('.swatch[data-colour]')].map(s => {\
               const name = s.parentElement.querySelector('.colour-name');\
               return [s.dataset.colour, name && name.checkVisibility() ? name.textContent.trim() : ''];\
             });",
            vec![],
        )
        .await?;
    let unnamed = rows
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r[1].as_str().unwrap_or_default().is_empty());
    Ok(if unnamed {
        vec![format!("a colour shown by its swatch alone: {rows}")]
    } else {
        vec![]
    })
}

/// Records, from now on, every text the page shows: the element's ID, its text, whether it is
/// shown, and how a screen reader hears it: `polite`, `assertive` (its live region's
/// `aria-live`, or the implicit one of `role=status` / `role=alert`) or `none`.
const RECORD_ANNOUNCEMENTS: &str = r#"
if (window.__announced) return;
window.__announced = [];
window.__statusNode = document.querySelector('#status');
const politeness = el => {
  const region = el.closest('[aria-live],[role=status],[role=alert],[role=log]');
  if (!region) return 'none';
  return region.getAttribute('aria-live')
    ?? (region.getAttribute('role') === 'alert' ? 'assertive' : 'polite');
};
const shown = el => el.checkVisibility ? el.checkVisibility() : !!el.offsetParent;
new MutationObserver(changes => {
  for (const c of changes) {
    const el = c.target.nodeType === 1 ? c.target : c.target.parentElement;
    const text = el && el.textContent.trim();
    if (!text) continue;
    const named = el.closest('[id]');
    window.__announced.push({
      id: named ? named.id : '', text, shown: shown(el), live: politeness(el),
    });
  }
}).observe(document, {
  subtree: true, childList: true, characterData: true, attributes: true,
  attributeFilter: ['hidden'],
});
"#;

/// Where and how the page said `text` (shown) since [`RECORD_ANNOUNCEMENTS`]: `(id, live)`.
async fn heard(ctx: &Ctx, text: &str) -> Result<Vec<(String, String)>> {
    let v = ctx.b.execute("return window.__announced;", vec![]).await?;
    let s = |a: &Value, k: &str| a[k].as_str().unwrap_or_default().to_owned();
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["shown"] == json!(true) && a["text"] == text)
        .map(|a| (s(a, "id"), s(a, "live")))
        .collect())
}

/// Whether `text` was heard, each time with politeness `live`, and only in `#id` if given.
fn heard_only(heard: &[(String, String)], live: &str, id: Option<&str>) -> bool {
    !heard.is_empty()
        && heard
            .iter()
            .all(|(i, l)| l == live && id.is_none_or(|id| i == id))
}

/// Status changes are announced politely and errors assertively: in the popup (the status of a
/// pairing that connects, a server error) and in the options page (a connection test that
/// works, one that fails). In Chromium the accessibility tree is asked as well.
pub async fn status_polite_errors_assertive(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let mut failures = vec![];
    let mut expect = |what: String, ok: bool| {
        if !ok {
            failures.push(what);
        }
    };

    let a = ctx.paired_tab("B").await?;
    ctx.to_popup("B").await?;
    ctx.b.execute(RECORD_ANNOUNCEMENTS, vec![]).await?;
    ctx.sim.scan(&a).await?;
    let connected = ctx
        .wait_popup("B", "CONNECTED", |s| s.status() == "CONNECTED")
        .await?;
    let status_text = connected.status_text.clone();
    let status_heard = heard(&ctx, &status_text).await?;
    expect(
        format!("popup: the status {status_text:?} was heard as {status_heard:?}, not only in #status, politely"),
        heard_only(&status_heard, "polite", Some("status")),
    );
    let same_node = ctx
        .b
        .execute(
            "return window.__statusNode === document.querySelector('#status') \
             && window.__statusNode.isConnected;",
            vec![],
        )
        .await?;
    expect(
        "popup: #status was replaced, so a screen reader would miss its change".into(),
        same_node == json!(true),
    );

    let e = ctx.paired_tab_polling("E").await?;
    ctx.to_popup("E").await?;
    ctx.b.execute(RECORD_ANNOUNCEMENTS, vec![]).await?;
    let failed = ctx.status_checks_fail("E", &e).await?;
    let error_text = failed.error_text.clone();
    let error_heard = heard(&ctx, &error_text).await?;
    expect(
        format!("popup: the error {error_text:?} was heard as {error_heard:?}, not assertively"),
        heard_only(&error_heard, "assertive", None),
    );
    ctx.sim.clear_faults().await?;
    ctx.sim.handle().allow_sockets();

    if let Some(cdp) = ctx.b.cdp.as_ref() {
        let url = format!("popup.html?tab={}", ctx.tab_id("B")?);
        let status = cdp.ax_node(&url, "#status").await?;
        expect(
            format!("Chromium's accessibility tree has #status as {status}"),
            ax_property(&status, "live") == json!("polite")
                && status["role"]["value"] == json!("status"),
        );
        let url = format!("popup.html?tab={}", ctx.tab_id("E")?);
        let error = cdp.ax_node(&url, "#error").await?;
        expect(
            format!("Chromium's accessibility tree has #error as {error}"),
            ax_property(&error, "live") == json!("assertive")
                && error["role"]["value"] == json!("alert"),
        );
        // Opened again, recorded from its first script on: popup-port.js paints the status, then
        // the Wasm takes over with the same words, which must not be said a second time.
        let url = ctx.b.url(&format!("popup.html?tab={}", ctx.tab_id("B")?));
        let from_start = format!("(() => {{ {RECORD_ANNOUNCEMENTS} }})();");
        cdp.add_init_script(&url, &from_start).await?;
        ctx.open_popup("B").await?;
        ctx.wait_true(
            "popup B rendered by its module (aria-busy false)",
            "return document.body?.getAttribute('aria-busy') === 'false';",
        )
        .await?;
        let said = heard(&ctx, &status_text).await?;
        let in_status = said.iter().filter(|(id, _)| id == "status").count();
        expect(
            format!("popup opened again: {status_text:?} was said {in_status} times in #status ({said:?}), not once"),
            in_status == 1,
        );
    }

    ctx.to_main().await?;
    ctx.open_options_page().await?;
    ctx.b.execute(RECORD_ANNOUNCEMENTS, vec![]).await?;
    let (result, works) = ctx.press("#test-connection").await?;
    expect(
        format!("options: a good test gave {result}"),
        result == "ok",
    );
    ctx.type_into("#secret-key", "not-the-secret").await?;
    let (result, fails) = ctx.press("#test-connection").await?;
    expect(
        format!("options: a wrong secret gave {result}"),
        result == "error",
    );
    let works_heard = heard(&ctx, &works).await?;
    expect(
        format!("options: the verdict {works:?} was heard {works_heard:?}, not politely"),
        heard_only(&works_heard, "polite", None),
    );
    let fails_heard = heard(&ctx, &fails).await?;
    expect(
        format!("options: the error {fails:?} was heard {fails_heard:?}, not assertively"),
        heard_only(&fails_heard, "assertive", None),
    );
    ensure(failures.is_empty(), failures.join("\n"))?;
    Ok(format!(
        "status {status_text:?} polite; errors {error_text:?} and {fails:?} assertive"
    ))
}

/// An accessibility node's property (`live`, `busy`, …) as Chromium reports it.
fn ax_property(node: &Value, name: &str) -> Value {
    node["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .map_or(Value::Null, |p| p["value"]["value"].clone())
}
