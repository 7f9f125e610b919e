//! Pairing by phone number: the popup's "Link with phone number instead", its form and its
//! check of the number, the pairing code (start-session `{phone, waitQrCode: true}`), its
//! expiry, and the way back to the QR, against wpp-sim.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::ctx::{Ctx, PopupSnapshot};
use crate::harness::{ensure, wait_for, Kind, Result, WAIT};
use crate::sim::Sim;
use wpp_tabs::core::timings::Timings;

/// The number typed in the form, as people write it.
const TYPED: &str = "+55 (21) 98888-7777";
const DIGITS: &str = "5521988887777";
/// How long an unused code lives in the expiry scenario: the sim's autoClose, as long as the
/// test build expects (it checks the code's status once then, as the server pushes nothing).
const CODE_LIFETIME: Duration = Duration::from_millis(Timings::TEST.phone_code_valid_ms as u64);

/// The phone-pairing part of the popup, in one round trip.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhoneSnapshot {
    code: String,
    code_visible: bool,
    hint: String,
    expiry: String,
    by_phone_visible: bool,
    by_phone_text: String,
    by_qr_visible: bool,
    form_visible: bool,
    error_visible: bool,
    error_text: String,
    invalid: Option<String>,
    account: String,
}

const PHONE_SNAPSHOT: &str = r#"
const q = s => document.querySelector(s);
const vis = e => !!e && !e.hidden && !e.hasAttribute('hidden') && getComputedStyle(e).display !== 'none';
const text = e => e ? e.textContent.trim() : '';
return {
  code: text(q('#phone-code')),
  codeVisible: vis(q('#phone-code-box')) && vis(q('#phone-code')),
  hint: text(q('#phone-code-hint')),
  expiry: text(q('#phone-code-expiry')),
  byPhoneVisible: vis(q('#pair-by-phone')),
  byPhoneText: text(q('#pair-by-phone')),
  byQrVisible: vis(q('#pair-by-qr')),
  formVisible: vis(q('#phone-form')),
  errorVisible: vis(q('#phone-error')),
  errorText: text(q('#phone-error')),
  invalid: q('#phone') ? q('#phone').getAttribute('aria-invalid') : null,
  account: vis(q('#account')) ? text(q('#account')) : '',
};
"#;

impl PhoneSnapshot {
    /// `ABCD-EFGH`: 4 letters or digits, a hyphen, 4 more.
    fn code_well_formed(&self) -> bool {
        let b = self.code.as_bytes();
        b.len() == 9
            && b[4] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_uppercase() || c.is_ascii_digit())
    }

    fn brief(&self) -> String {
        format!(
            "code={:?} (visible {}) byPhone={}{:?} byQr={} form={} error={}{:?}",
            self.code,
            self.code_visible,
            self.by_phone_visible,
            self.by_phone_text,
            self.by_qr_visible,
            self.form_visible,
            self.error_visible,
            self.error_text
        )
    }
}

async fn phone_part(ctx: &Ctx, name: &str) -> Result<PhoneSnapshot> {
    ctx.to_popup(name).await?;
    let v = ctx.b.execute(PHONE_SNAPSHOT, vec![]).await?;
    serde_json::from_value(v.clone()).map_err(|e| format!("phone snapshot {v}: {e}"))
}

/// Waits until tab `name`'s popup and its phone part satisfy `pred`.
async fn wait_phone(
    ctx: &Ctx,
    name: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&PopupSnapshot, &PhoneSnapshot) -> bool,
) -> Result<(PopupSnapshot, PhoneSnapshot)> {
    wait_for(&format!("popup {name}: {what}"), timeout, || async {
        let s = ctx.popup(name).await?;
        let p = phone_part(ctx, name).await?;
        Ok(if pred(&s, &p) {
            Ok((s, p))
        } else {
            Err(format!("{} | {}", s.brief(), p.brief()))
        })
    })
    .await
}

/// Opens the form with "Link with phone number instead" and submits `number`.
async fn submit_number(ctx: &Ctx, name: &str, number: &str) -> Result<()> {
    ctx.click_in_popup(name, "#pair-by-phone").await?;
    ctx.to_popup(name).await?;
    ctx.type_into("#phone", number).await?;
    ctx.click_in_popup(name, "#phone-submit").await
}

/// Settings, tab `name` paired to a QR, then switched to pairing by phone: its code shown.
/// Returns the QR's session, the code's session and the popup's phone part.
async fn code_on(ctx: &mut Ctx, name: &'static str) -> Result<(String, String, PhoneSnapshot)> {
    ctx.settings_fast().await?;
    let qr_session = ctx.paired_tab(name).await?;
    let offer = wait_phone(
        ctx,
        name,
        "pairing by phone offered beside the QR",
        WAIT,
        |s, p| s.qr_shown() && p.by_phone_visible,
    )
    .await?
    .1;
    ensure(
        offer.by_phone_text == "Link with phone number instead",
        format!("the link reads {:?}", offer.by_phone_text),
    )?;
    submit_number(ctx, name, TYPED).await?;
    let (s, p) = wait_phone(ctx, name, "a pairing code", WAIT, |s, p| {
        s.status() == "PHONECODE" && p.code_visible && !s.qr_visible
    })
    .await?;
    Ok((qr_session, s.id().to_owned(), p))
}

/// The sim's log: `(route, session)` of each request but the status polls.
async fn requests(ctx: &Ctx) -> Result<Vec<(String, String)>> {
    let log = ctx.sim.log().await?;
    Ok(log["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["route"] != "status-session")
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (field("route"), field("session"))
        })
        .collect())
}

/// (1) Pairing by phone shows the code, as WhatsApp shows it, with the steps and a copy
/// button; entering it on the phone (the sim's scan) connects the account of that number.
pub async fn phone_code_shown_and_scan_connects(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    let (_, id, code) = code_on(&mut ctx, "P").await?;
    let p = &code;
    ensure(
        p.code_well_formed(),
        format!("code not ABCD-EFGH: {:?}", p.code),
    )?;
    let sim_code = ctx.sim.sessions().await?["sessions"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["session"] == json!(id)).cloned())
        .map(|s| s["phoneCode"].clone())
        .unwrap_or(Value::Null);
    ensure(
        sim_code == json!(p.code),
        format!("the popup shows {:?}, the sim gave {sim_code}", p.code),
    )?;
    ensure(
        p.hint.contains("Link with phone number instead") && p.hint.contains("Linked devices"),
        format!("steps missing: {:?}", p.hint),
    )?;
    ensure(
        p.expiry.starts_with("Valid until"),
        format!("expiry: {:?}", p.expiry),
    )?;
    ensure(p.by_qr_visible, "no way back to the QR")?;
    let mut copied = "not read back";
    if kind == Kind::Chromium {
        ctx.b.set_permission("clipboard-read", "granted").await?;
    }
    ctx.click_in_popup("P", "#copy-phone-code").await?;
    ctx.wait_true(
        "#copy-phone-code says Copied",
        "return document.querySelector('#copy-phone-code').textContent.trim() === 'Copied';",
    )
    .await?;
    if let Ok(clip) = ctx
        .b
        .eval("return await navigator.clipboard.readText();", vec![])
        .await
    {
        ensure(
            clip == json!(p.code),
            format!("clipboard holds {clip}, expected {:?}", p.code),
        )?;
        copied = "read back";
    }
    ctx.sim.scan(&id).await?;
    let (s, p) = wait_phone(
        &ctx,
        "P",
        "CONNECTED after the code is entered",
        WAIT,
        |s, p| s.status() == "CONNECTED" && !p.code_visible && !p.account.is_empty(),
    )
    .await?;
    ensure(
        p.account.contains(DIGITS),
        format!("account {:?}, expected the number {DIGITS}", p.account),
    )?;
    ensure(
        !p.by_phone_visible && !p.by_qr_visible && !p.form_visible,
        format!("pairing offered while connected: {}", p.brief()),
    )?;
    Ok(format!(
        "code {} ({copied}); then {} as {}",
        code.code,
        s.status(),
        p.account
    ))
}

/// (2) A code nobody enters expires with the server's autoClose: the popup offers "Get a new
/// code", which brings a new one.
pub async fn expired_code_offers_a_new_one(kind: Kind) -> Result<String> {
    let sim = Sim::start_with_auto_close(CODE_LIFETIME).await?;
    let mut ctx = Ctx::with_sim(kind, sim).await?;
    let (_, first_id, first) = code_on(&mut ctx, "X").await?;
    let (expired, p) = wait_phone(
        &ctx,
        "X",
        "the code expired, a new one offered",
        CODE_LIFETIME + WAIT,
        |s, p| s.phase() == "expired" && s.can_pair() && !p.code_visible,
    )
    .await?;
    ensure(
        expired.pair_text == "Get a new code",
        format!("#pair reads {:?}", expired.pair_text),
    )?;
    ensure(
        expired.status_text.contains("pairing code expired"),
        format!("status: {:?}", expired.status_text),
    )?;
    ensure(p.by_qr_visible, "no way back to the QR after expiry")?;
    ctx.click_in_popup("X", "#pair").await?;
    let (s, p) = wait_phone(&ctx, "X", "a new code", WAIT, |s, p| {
        s.status() == "PHONECODE" && p.code_visible && s.id() != first_id
    })
    .await?;
    ensure(
        p.code_well_formed() && p.code != first.code,
        format!("new code {:?} after {:?}", p.code, first.code),
    )?;
    ctx.sim.scan(s.id()).await?;
    ctx.wait_popup("X", "CONNECTED with the new code", |s| {
        s.status() == "CONNECTED"
    })
    .await?;
    Ok(format!(
        "{} expired ({:?}), then {}",
        first.code, expired.pair_text, p.code
    ))
}

/// (3) From a QR shown to a phone code: the server will not switch a running session, so the
/// QR's is closed and the tab goes on under a fresh name (its name kept); and back to a QR.
pub async fn switch_from_qr_to_phone_and_back(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let qr_session = ctx.paired_tab("S").await?;
    let label = ctx.index().await?[&qr_session]["label"].clone();
    ctx.sim.clear_log().await?;
    submit_number(&ctx, "S", TYPED).await?;
    let (s, p) = wait_phone(
        &ctx,
        "S",
        "a pairing code instead of the QR",
        WAIT,
        |s, p| s.status() == "PHONECODE" && p.code_visible && !s.qr_visible,
    )
    .await?;
    let code_session = s.id().to_owned();
    ensure(
        code_session != qr_session,
        "the code came under the QR's session name",
    )?;
    let sent = requests(&ctx).await?;
    let expected = [
        ("close-session", qr_session.as_str()),
        ("generate-token", code_session.as_str()),
        ("start-session", code_session.as_str()),
    ];
    for (route, session) in expected {
        ensure(
            sent.iter().any(|(r, s)| r == route && s == session),
            format!("no {route} for {session} in {sent:?}"),
        )?;
    }
    let index = ctx
        .wait_index("the entry moved to the code's session", |i| {
            i.get(&qr_session).is_none() && i.get(&code_session).is_some()
        })
        .await?;
    ensure(
        index[&code_session]["label"] == label,
        format!("label {label} not kept: {}", index[&code_session]),
    )?;
    // And back to the QR.
    ctx.click_in_popup("S", "#pair-by-qr").await?;
    let (back, p2) = wait_phone(&ctx, "S", "a QR again", WAIT, |s, p| {
        s.qr_shown() && !p.code_visible && p.by_phone_visible
    })
    .await?;
    ctx.sim.scan(back.id()).await?;
    ctx.wait_popup("S", "CONNECTED from the QR", |s| s.status() == "CONNECTED")
        .await?;
    Ok(format!(
        "QR {qr_session} -> code {} under {code_session} -> QR under {} ({:?})",
        p.code,
        back.id(),
        p2.by_phone_text
    ))
}

/// (4) An invalid number shows the form's error and sends nothing: the sim sees no request
/// until a valid number follows.
pub async fn invalid_phone_is_refused_in_the_popup(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let id = ctx.paired_tab("V").await?;
    ctx.sim.clear_log().await?;
    let mut shown = Vec::new();
    for (number, says) in [
        ("12345", "8 to 15 digits"),
        ("0021 99999 9999", "country code"),
        ("55 21 9999x9999", "only digits"),
    ] {
        let (open, _) = wait_phone(&ctx, "V", "the link or the form", WAIT, |_, p| {
            p.by_phone_visible || p.form_visible
        })
        .await?;
        if !phone_part(&ctx, "V").await?.form_visible {
            ctx.click_in_popup("V", "#pair-by-phone").await?;
        }
        ctx.to_popup("V").await?;
        ctx.type_into("#phone", number).await?;
        ctx.click_in_popup("V", "#phone-submit").await?;
        let (s, p) = wait_phone(&ctx, "V", "the number's error", WAIT, |_, p| {
            p.error_visible && p.error_text.contains(says)
        })
        .await?;
        ensure(
            p.form_visible && p.invalid.as_deref() == Some("true"),
            format!("form closed or field not marked invalid: {}", p.brief()),
        )?;
        ensure(
            s.id() == id && s.qr_shown() && open.id() == id,
            format!("the session changed: {}", s.brief()),
        )?;
        shown.push(p.error_text);
    }
    // A valid number after them: the first request the sim sees is its switch.
    ctx.type_into("#phone", TYPED).await?;
    ctx.click_in_popup("V", "#phone-submit").await?;
    wait_phone(&ctx, "V", "a code for the valid number", WAIT, |s, p| {
        s.status() == "PHONECODE" && p.code_visible
    })
    .await?;
    let sent = requests(&ctx).await?;
    ensure(
        sent.first().map(|(r, s)| (r.as_str(), s.as_str())) == Some(("close-session", &id)),
        format!("requests before the valid number's switch: {sent:?}"),
    )?;
    let starts = sent.iter().filter(|(r, _)| r == "start-session").count();
    ensure(starts == 1, format!("{starts} start-session: {sent:?}"))?;
    Ok(format!("refused: {shown:?}"))
}
