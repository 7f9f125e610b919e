//! The remembered secret key in real browsers: its lock and its duration.
//! - Locked with a passphrase on the options page, `storage.local` holds only its sealed form
//!   (checked for the secret in every encoding the test can think of); after a browser
//!   restart the popup asks for the passphrase (`#unlock`); a wrong one changes nothing and
//!   says so; the right one lets the session reattach and a new tab pair; "Lock now" asks again.
//!   The unlock cost (PBKDF2 at the stored iteration count, then AES-GCM) is measured here, in
//!   the browser, on the stored form.
//! - Remembered for 7 days, then the test moves `rememberUntil` into the past (a clock the
//!   test controls): the next read forgets the key, clear or sealed, and the popup asks for it.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::harness::{ensure, wait_for, Kind, Result, WAIT};
use crate::manager::{no_secrets_at_rest, restart};
use crate::sim::Sim;

const SECRET: &str = "Lock-Scenario-Secret_7319";
const PASSPHRASE: &str = "correct horse battery staple";

/// The popup's lock-related parts, in one round trip.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LockView {
    /// `#unlock` shown.
    unlock: bool,
    label: String,
    /// `#unlock-error`'s text while shown.
    error: Option<String>,
    submit_enabled: bool,
    /// `#open-options` shown (the settings are needed).
    options_link: bool,
    qr: bool,
    attach: Vec<String>,
}

const LOCK_VIEW: &str = r#"
const q = s => document.querySelector(s);
const vis = e => !!e && !e.closest('[hidden]') && getComputedStyle(e).display !== 'none';
return {
  unlock: vis(q('#unlock')),
  label: q('#unlock-label') ? q('#unlock-label').textContent.trim() : '',
  error: vis(q('#unlock-error')) ? q('#unlock-error').textContent.trim() : null,
  submitEnabled: !!q('#unlock-submit') && !q('#unlock-submit').disabled,
  optionsLink: vis(q('#open-options')),
  qr: vis(q('#qr')),
  attach: vis(q('#attach')) ? [...document.querySelectorAll('#attach-list button[data-session-id]')]
    .map(b => b.getAttribute('data-session-id')) : [],
};
"#;

async fn lock_view(ctx: &Ctx, name: &str) -> Result<LockView> {
    ctx.to_popup(name).await?;
    let v = ctx.b.execute(LOCK_VIEW, vec![]).await?;
    serde_json::from_value(v.clone()).map_err(|e| format!("popup lock view {v}: {e}"))
}

async fn wait_lock_view(
    ctx: &Ctx,
    name: &str,
    what: &str,
    pred: impl Fn(&LockView) -> bool,
) -> Result<LockView> {
    wait_for(&format!("popup {name}: {what}"), WAIT, || async {
        let v = lock_view(ctx, name).await?;
        Ok(if pred(&v) {
            Ok(v)
        } else {
            Err(format!("{v:?}"))
        })
    })
    .await
}

/// Types `passphrase` into tab `name`'s `#passphrase` and submits `#unlock`.
async fn submit_passphrase(ctx: &Ctx, name: &str, passphrase: &str) -> Result<()> {
    wait_lock_view(ctx, name, "#unlock ready for a try", |v| {
        v.unlock && v.submit_enabled
    })
    .await?;
    ctx.type_into("#passphrase", passphrase).await?;
    ctx.b.click("#unlock-submit").await
}

/// Server s1 as `storage.local` holds it, and the whole of `local` and `sync` as text.
async fn at_rest(ctx: &Ctx) -> Result<(Value, String, Value)> {
    let st = ctx.storage().await?;
    let server = st["local"]["wpp_settings"]["servers"][0].clone();
    let text = json!({"local": st["local"], "sync": st["sync"]}).to_string();
    Ok((server, text, st["session"].clone()))
}

/// The secret in every encoding the test can try: as typed, in either case, base64 (standard
/// and URL-safe, padded or not, at each of the three byte alignments), hex, percent-encoded,
/// and UTF-16 (as text, hex and base64, either byte order).
fn encodings(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let utf16le: Vec<u8> = secret.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let utf16be: Vec<u8> = secret.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut all = vec![
        secret.to_string(),
        secret.to_lowercase(),
        secret.to_uppercase(),
        hex(bytes),
        hex(bytes).to_uppercase(),
        bytes.iter().map(|b| format!("%{b:02X}")).collect(),
        bytes.iter().map(|b| format!("%{b:02x}")).collect(),
        secret.chars().flat_map(|c| [c, '\0']).collect(),
        secret
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect(),
    ];
    for raw in [bytes, &utf16le, &utf16be] {
        all.push(hex(raw));
        for skip in 0..3 {
            for engine in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                let text = engine.encode(&raw[skip..]);
                // The last group depends on what follows the secret in a longer text.
                all.push(text[..text.len().saturating_sub(4)].to_string());
            }
        }
    }
    all.retain(|e| e.len() >= 8);
    all.sort();
    all.dedup();
    all
}

/// The secret appears in `text` in none of [`encodings`], nor in the bytes of any base64
/// field of the sealed form.
fn nowhere(text: &str, sealed: &Value, secret: &str) -> Result<usize> {
    let tried = encodings(secret);
    for e in &tried {
        ensure(
            !text.contains(e.as_str()),
            format!("the secret is at rest as {e:?}: {text}"),
        )?;
    }
    for field in ["salt", "iv", "ciphertext"] {
        let b = STANDARD
            .decode(sealed[field].as_str().unwrap_or_default())
            .map_err(|e| format!("lockedSecret.{field} is not base64: {e}"))?;
        let utf16: Vec<u8> = secret.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for needle in [secret.as_bytes(), &utf16[..]] {
            ensure(
                !b.windows(needle.len()).any(|w| w == needle),
                format!("lockedSecret.{field} holds the secret's bytes"),
            )?;
        }
    }
    Ok(tried.len())
}

/// The sealed form as documented: `{v: 1, kdf: "PBKDF2-SHA-256", iterations >= 600000,
/// salt (16 bytes), iv (12 bytes), ciphertext}` in base64, and no clear key beside it.
fn check_sealed(server: &Value) -> Result<Value> {
    let sealed = server["lockedSecret"].clone();
    let len = |f: &str| {
        STANDARD
            .decode(sealed[f].as_str().unwrap_or_default())
            .map(|b| b.len())
            .unwrap_or(0)
    };
    ensure(
        sealed["v"] == 1
            && sealed["kdf"] == "PBKDF2-SHA-256"
            && sealed["iterations"].as_u64() >= Some(600_000)
            && len("salt") == 16
            && len("iv") == 12
            && len("ciphertext") == SECRET.len() + 16
            && server.get("secretKey").is_none(),
        format!("the stored server is not as documented: {server}"),
    )?;
    Ok(sealed)
}

/// On the options page (current window): remember the key for `duration` (`days7`,
/// `days30`, `always`), with `secret` typed when given, and save.
async fn remember_on_page(ctx: &Ctx, secret: Option<&str>, duration: &str) -> Result<()> {
    ctx.type_into("#server-url", &ctx.sim.server_url()).await?;
    if let Some(secret) = secret {
        ctx.type_into("#secret-key", secret).await?;
    }
    let ticked = ctx
        .b
        .execute(
            "return document.querySelector('#remember-secret').checked",
            vec![],
        )
        .await?;
    if ticked != json!(true) {
        ctx.b.click("#remember-secret").await?;
    }
    ctx.choose("#remember-for", duration).await?;
    let saved = ctx.press("#save").await?;
    ensure(
        saved.0 == "ok",
        format!("save, remembered {duration}: {saved:?}"),
    )
}

/// Clicks the options page's `button` in the passphrase section and waits for its outcome.
async fn press_lock(ctx: &Ctx, button: &str) -> Result<String> {
    let (result, text) = ctx.press_for(button, "#lock-status").await?;
    ensure(result == "ok", format!("{button}: {text}"))?;
    Ok(text)
}

/// Locks the remembered key on the options page (current window) with [`PASSPHRASE`].
async fn lock_on_page(ctx: &Ctx) -> Result<()> {
    ctx.wait_true(
        "#lock shown for the remembered key",
        "return !document.querySelector('#lock').hidden",
    )
    .await?;
    ctx.type_into("#passphrase-new", PASSPHRASE).await?;
    press_lock(ctx, "#passphrase-set").await.map(drop)
}

/// Checks that the stored form opens to the secret with the documented parameters, with
/// WebCrypto in an extension page; then measures what an unlock costs there (ms): PBKDF2-SHA-256
/// at the stored iteration count, then AES-GCM over the stored ciphertext, on a salt never
/// derived before (Firefox's NSS caches a derivation it has just done).
async fn measure_unlock(ctx: &Ctx, sealed: &Value) -> Result<f64> {
    let v = ctx
        .eval(
            "const [s, pass] = args; const b = t => Uint8Array.from(atob(t), c => c.charCodeAt(0));\
             const derive = async salt => crypto.subtle.deriveKey(\
               { name: 'PBKDF2', hash: 'SHA-256', salt, iterations: s.iterations },\
               await crypto.subtle.importKey('raw', new TextEncoder().encode(pass.normalize('NFC')), 'PBKDF2', false, ['deriveKey']),\
               { name: 'AES-GCM', length: 256 }, false, ['decrypt']);\
             const open = async key => crypto.subtle.decrypt({ name: 'AES-GCM', iv: b(s.iv) }, key, b(s.ciphertext));\
             const text = new TextDecoder().decode(await open(await derive(b(s.salt))));\
             const t0 = performance.now();\
             const opened = await open(await derive(crypto.getRandomValues(new Uint8Array(16)))).then(() => true, () => false);\
             return { ms: performance.now() - t0, text, opened };",
            vec![sealed.clone(), json!(PASSPHRASE)],
        )
        .await?;
    ensure(
        v["text"] == SECRET && v["opened"] == false,
        "the stored form does not open to the secret with the documented parameters",
    )?;
    v["ms"].as_f64().ok_or_else(|| format!("no time: {v}"))
}

/// Lock with a passphrase, restart, a wrong passphrase, the right one, reattach and pair,
/// then "Lock now".
pub async fn lock_and_unlock_across_a_restart(kind: Kind) -> Result<String> {
    let sim = Sim::start_with_secret(SECRET).await?;
    let mut ctx = Ctx::with_sim(kind, sim).await?;
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    remember_on_page(&ctx, Some(SECRET), "always").await?;
    lock_on_page(&ctx).await?;
    let (server, text, session) = at_rest(&ctx).await?;
    let sealed = check_sealed(&server)?;
    let tried = nowhere(&text, &sealed, SECRET)?;
    ensure(
        server["remember"] == "always" && session["wpp_secret_s1"] == SECRET,
        format!("unlocked for this browser session: {server} / {session}"),
    )?;
    let mut unlock_ms = Vec::new();
    for _ in 0..3 {
        unlock_ms.push(measure_unlock(&ctx, &sealed).await?);
    }

    // Unlocked: pairing works as ever.
    let a = ctx.paired_tab("A").await?;
    ctx.sim.scan(&a).await?;
    ctx.wait_popup("A", "CONNECTED", |s| s.status() == "CONNECTED")
        .await?;

    // A restart: the clear key is gone with storage.session; the popup asks.
    let (mut ctx, how) = restart(ctx).await?;
    let (_, before, session) = at_rest(&ctx).await?;
    ensure(
        session.get("wpp_secret_s1").is_none(),
        format!("the clear key survived the restart: {session}"),
    )?;
    ctx.create_tab("N").await?;
    ctx.open_popup("N").await?;
    let asked = wait_lock_view(&ctx, "N", "#unlock, and A offered", |v| {
        v.unlock && !v.options_link && !v.qr && v.attach.contains(&a)
    })
    .await?;
    ensure(
        asked.label.contains("My server"),
        format!("#unlock names its server: {asked:?}"),
    )?;

    // A wrong passphrase: a clear error, and nothing stored changes.
    submit_passphrase(&ctx, "N", "not the passphrase at all").await?;
    let wrong = wait_lock_view(&ctx, "N", "the wrong passphrase refused", |v| {
        v.error
            .as_deref()
            .is_some_and(|e| e.starts_with("Wrong passphrase"))
    })
    .await?;
    let (_, after, session) = at_rest(&ctx).await?;
    ensure(
        after == before && session.get("wpp_secret_s1").is_none(),
        format!("a wrong passphrase changed storage: {after} / {session}"),
    )?;
    ctx.to_popup("N").await?;
    let field = ctx
        .b
        .execute("return document.querySelector('#passphrase').value", vec![])
        .await?;
    ensure(
        field == json!(""),
        "the typed passphrase stayed in the page",
    )?;

    // The right one, once the delay is over (a try during it is refused and repeated).
    let mut refused = 0;
    loop {
        // The last refusal's text is cleared first, so only this try's answer can match.
        ctx.to_popup("N").await?;
        ctx.b
            .execute(
                "document.querySelector('#unlock-error').textContent = ''",
                vec![],
            )
            .await?;
        submit_passphrase(&ctx, "N", PASSPHRASE).await?;
        // A refusal shows at once, without a try running; a try shows busy, then its end.
        let v = wait_lock_view(&ctx, "N", "unlocked, or the delay", |v| {
            !v.unlock
                || (v.submit_enabled && v.error.as_deref().is_some_and(|e| e.contains("Wait")))
        })
        .await?;
        if !v.unlock {
            break;
        }
        refused += 1;
        ensure(
            refused < 5,
            "the right passphrase never got through the delay",
        )?;
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    }
    let (_, after, session) = at_rest(&ctx).await?;
    ensure(
        after == before && session["wpp_secret_s1"] == SECRET,
        format!("after unlocking: {after} / {session}"),
    )?;
    // The session reattaches (a fresh token, no QR), and a new tab pairs.
    ctx.click_in_popup(
        "N",
        &format!("#attach-list button[data-session-id=\"{a}\"]"),
    )
    .await?;
    ctx.wait_popup("N", "A's session CONNECTED", |s| {
        s.id() == a && s.status() == "CONNECTED" && !s.qr_visible
    })
    .await?;
    ctx.tabs.get_mut("N").unwrap().session = Some(a.clone());
    let b = ctx.paired_tab("B").await?;

    // "Lock now": the clear key leaves memory, and a popup asks again.
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    press_lock(&ctx, "#lock-now").await?;
    let (server, text, session) = at_rest(&ctx).await?;
    ensure(
        session.get("wpp_secret_s1").is_none(),
        format!("Lock now left the clear key: {session}"),
    )?;
    nowhere(&text, &check_sealed(&server)?, SECRET)?;
    ctx.create_tab("C").await?;
    ctx.open_popup("C").await?;
    wait_lock_view(&ctx, "C", "#unlock after Lock now", |v| v.unlock).await?;
    let secrets = no_secrets_at_rest(&ctx, &[&ctx.sim]).await?;
    unlock_ms.sort_by(f64::total_cmp);
    Ok(format!(
        "{how}; {tried} encodings absent; wrong passphrase: {:?}; {refused} tries refused during \
         the delay; A reattached, B ({b}) paired; unlock (PBKDF2-SHA-256 x{} + AES-GCM) in \
         {kind}: {:.0} ms (median of 3: {:?}); {secrets}",
        wrong.error.unwrap_or_default(),
        sealed["iterations"],
        unlock_ms[1],
        unlock_ms.iter().map(|m| m.round()).collect::<Vec<_>>(),
    ))
}

/// Moves s1's `rememberUntil` into the past: the clock the test controls.
async fn expire_now(ctx: &Ctx) -> Result<()> {
    ctx.eval(
        "const { wpp_settings: s } = await api.storage.local.get('wpp_settings');\
         s.servers[0].rememberUntil = Date.now() - 1000;\
         await api.storage.local.set({ wpp_settings: s });",
        vec![],
    )
    .await
    .map(drop)
}

/// Tab `name`'s popup opens asking for the settings (not a passphrase), and the key is gone:
/// neither `secretKey` nor `lockedSecret` in `storage.local`, nothing in `storage.session`.
async fn asked_again(ctx: &mut Ctx, name: &'static str) -> Result<()> {
    ctx.create_tab(name).await?;
    ctx.open_popup(name).await?;
    wait_lock_view(ctx, name, "the settings asked for", |v| {
        v.options_link && !v.unlock && !v.qr
    })
    .await?;
    let (server, text, session) = at_rest(ctx).await?;
    ensure(
        server.get("secretKey").is_none()
            && server.get("lockedSecret").is_none()
            && server.get("rememberUntil").is_none()
            && session.get("wpp_secret_s1").is_none()
            && !text.contains(SECRET),
        format!("the expired key is still stored: {server} / {session}"),
    )
}

/// Remembered 7 days: stored with its end date; once that is past, the key is forgotten
/// and asked for again; entered again (30 days, locked), it expires the same way.
pub async fn remember_duration_expires(kind: Kind) -> Result<String> {
    let sim = Sim::start_with_secret(SECRET).await?;
    let mut ctx = Ctx::with_sim(kind, sim).await?;
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    let saved_at = ctx.eval("return Date.now();", vec![]).await?;
    remember_on_page(&ctx, Some(SECRET), "days7").await?;
    let (server, _, _) = at_rest(&ctx).await?;
    let week = 7.0 * 24.0 * 3600.0 * 1000.0;
    let until = server["rememberUntil"].as_f64().unwrap_or_default();
    let from = saved_at.as_f64().unwrap_or_default();
    ensure(
        server["remember"] == "days7"
            && server["secretKey"] == SECRET
            && (until - from - week).abs() < 60_000.0,
        format!("remembered 7 days from {from}: {server}"),
    )?;
    let shown = ctx
        .b
        .execute(
            "const e = document.querySelector('#remember-until'); return !e.hidden && e.textContent",
            vec![],
        )
        .await?;
    ensure(
        shown
            .as_str()
            .is_some_and(|t| t.starts_with("Remembered until")),
        format!("#remember-until: {shown}"),
    )?;

    expire_now(&ctx).await?;
    asked_again(&mut ctx, "A").await?;
    // The options page asks for the key too; the chosen duration stays.
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    let form = ctx
        .b
        .execute(
            "const q = s => document.querySelector(s);\
             return [q('#secret-key').placeholder, q('#remember-secret').checked, q('#remember-for').value];",
            vec![],
        )
        .await?;
    ensure(
        form == json!(["", true, "days7"]),
        format!("the options page after expiry (placeholder, remember, for): {form}"),
    )?;

    // Entered again, remembered 30 days and locked: it expires the same way, sealed form too.
    remember_on_page(&ctx, Some(SECRET), "days30").await?;
    ctx.pair_to_qr("A").await?;
    ctx.to_main().await?;
    lock_on_page(&ctx).await?;
    check_sealed(&at_rest(&ctx).await?.0)?;
    let secrets = no_secrets_at_rest(&ctx, &[&ctx.sim]).await?;
    expire_now(&ctx).await?;
    asked_again(&mut ctx, "B").await?;
    Ok(format!(
        "7 days: forgotten once rememberUntil passed; 30 days locked: sealed form forgotten; {secrets}"
    ))
}
