//! Several servers on the options page: the list in `#server-select`, one server edited at a
//! time, adding, choosing the default, the URL-changed rule, removing; and the Behaviour
//! preferences.

use serde_json::{json, Value};

use crate::ctx::{english_message, Ctx};
use crate::harness::{ensure, Result};
use crate::sim::Sim;

const URL_CHANGED: &str = "The URL changed: enter this server's secret key again.";

/// What the options page shows: the server list, the form and the preferences.
async fn page(ctx: &Ctx) -> Result<Value> {
    ctx.b
        .execute(
            "const q = s => document.querySelector(s);\
             return {\
               selected: q('#server-select').value,\
               options: [...q('#server-select').options].map(o => [o.value, o.textContent]),\
               name: q('#server-name').value,\
               url: q('#server-url').value,\
               secret: q('#secret-key').value,\
               placeholder: q('#secret-key').placeholder,\
               makeDefault: [q('#make-default').checked, q('#make-default').disabled],\
               removeHidden: q('#remove-server').hidden,\
               disabled: q('#settings-fields').disabled || q('#preferences-fields').disabled,\
               closedTab: q('#closed-tab').value,\
               notify: q('#notify-drops').checked,\
               sessionsLink: q('#open-sessions').getAttribute('href'),\
             };",
            vec![],
        )
        .await
}

/// Option values of `#server-select`, in order.
fn values(page: &Value) -> Vec<String> {
    page["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o[0].as_str().map(str::to_owned))
        .collect()
}

fn option_text(page: &Value, value: &str) -> String {
    page["options"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o[0] == json!(value))
        .and_then(|o| o[1].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Two servers through the page alone: the first (the placeholder `s1`, keeping its prefilled
/// name), then "Add a server…" with a second wpp-sim; after a reload both are listed, the
/// default marked; the second made the default; its URL changed without its secret is refused
/// (by the page and by the worker); its connection test uses its own saved secret; a tab's
/// session on it keeps it from being removed (the worker's reason shown); once that session
/// is logged out, removed, it is gone with its secret, and the first is the default again. Then the preferences are
/// saved and survive a reload.
pub async fn two_servers_via_options_page(kind: crate::harness::Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    let second = Sim::start().await?;
    ctx.to_main().await?;
    ctx.open_options_page().await?;

    // A fresh install: the placeholder server, chosen and named, the only one.
    let p = page(&ctx).await?;
    ensure(
        p["selected"] == "s1"
            && values(&p) == ["s1", "new"]
            && p["name"] == "My server"
            && p["makeDefault"] == json!([true, true])
            && p["removeHidden"] == true
            && p["disabled"] == false
            && p["sessionsLink"] == "sessions.html",
        format!("fresh options page: {p}"),
    )?;

    // The first server: URL and secret only.
    ctx.save_server_on_page(&ctx.sim.server_url(), &ctx.sim.secret, "the first server")
        .await?;

    // "Add a server…": an empty form; saving without a secret is refused on the page.
    ctx.choose("#server-select", "new").await?;
    let p = page(&ctx).await?;
    ensure(
        p["name"] == ""
            && p["url"] == ""
            && p["removeHidden"] == true
            && p["makeDefault"] == json!([false, false]),
        format!("the new-server form is not empty: {p}"),
    )?;
    ctx.type_into("#server-name", "Second").await?;
    ctx.type_into("#server-url", &second.server_url()).await?;
    let refused = ctx.press("#save").await?;
    ensure(
        refused.0 == "error" && refused.1.contains("secret key"),
        format!("a new server without a secret: {refused:?}"),
    )?;
    ctx.type_into("#secret-key", &second.secret).await?;
    let saved = ctx.press("#save").await?;
    ensure(
        saved.0 == "ok",
        format!("save the second server: {saved:?}"),
    )?;
    let p = page(&ctx).await?;
    ensure(
        p["selected"] == "s2" && p["name"] == "Second" && p["secret"] == "",
        format!("after saving, the saved server is chosen: {p}"),
    )?;

    // A reload lists both, the first as the default, and chooses it.
    ctx.open_options_page().await?;
    let p = page(&ctx).await?;
    let (first_text, second_text) = (option_text(&p, "s1"), option_text(&p, "s2"));
    ensure(
        values(&p) == ["s1", "s2", "new"]
            && p["selected"] == "s1"
            && first_text.contains("My server")
            && first_text.contains(&ctx.sim.server_url())
            && first_text.contains("(default)")
            && second_text.contains("Second")
            && second_text.contains(&second.server_url())
            && !second_text.contains("(default)")
            && p["removeHidden"] == false,
        format!("after a reload: {p}"),
    )?;

    // The second, chosen: its own fields; made the default.
    ctx.choose("#server-select", "s2").await?;
    let p = page(&ctx).await?;
    ensure(
        p["name"] == "Second"
            && p["url"] == json!(second.server_url())
            && p["secret"] == ""
            && p["placeholder"] == "Saved. Leave empty to keep it."
            && p["makeDefault"] == json!([false, false])
            && p["removeHidden"] == false,
        format!("the second server's form: {p}"),
    )?;
    ctx.b.click("#make-default").await?;
    let saved = ctx.press("#save").await?;
    ensure(
        saved.0 == "ok",
        format!("make the second the default: {saved:?}"),
    )?;
    let p = page(&ctx).await?;
    ensure(
        p["selected"] == "s2"
            && option_text(&p, "s2").contains("(default)")
            && !option_text(&p, "s1").contains("(default)")
            && p["makeDefault"] == json!([true, true]),
        format!("the second as the default: {p}"),
    )?;

    // Its connection test, secret field empty: the worker uses the secret saved for it.
    let tested = ctx.press("#test-connection").await?;
    ensure(
        tested.0 == "ok",
        format!("test the second with its saved secret: {tested:?}"),
    )?;

    // Its URL changed without a secret: refused on the page, and by the worker.
    ctx.type_into("#server-url", "http://127.0.0.1:9").await?;
    let refused = ctx.press("#save").await?;
    ensure(
        refused == ("error".to_owned(), URL_CHANGED.to_owned()),
        format!("a changed URL without a secret: {refused:?}"),
    )?;
    let reply = ctx
        .options_request(json!({
            "type": "saveServer", "id": "s2", "name": "Second",
            "serverUrl": "http://127.0.0.1:9", "rememberSecret": false,
        }))
        .await?;
    ensure(
        reply["type"] == "error" && english_message(&reply) == URL_CHANGED,
        format!("the worker on a changed URL without a secret: {reply}"),
    )?;
    ctx.open_options_page().await?;
    ctx.choose("#server-select", "s2").await?;
    let p = page(&ctx).await?;
    ensure(
        p["url"] == json!(second.server_url()),
        format!("the refused URL was saved anyway: {p}"),
    )?;
    let st = ctx.storage().await?;
    ensure(
        st["session"]["wpp_secret_s2"] == json!(second.secret),
        format!(
            "the second's secret is not in storage.session: {}",
            st["session"]
        ),
    )?;

    // A tab's session on it, the default: the worker refuses to remove it, the page says why.
    ctx.create_tab("A").await?;
    let id = ctx.open_popup_for_id("A").await?;
    crate::harness::wait_for(
        "the new session started on the default (second) server",
        crate::harness::WAIT,
        || async {
            Ok(match second.status_of(&id).await? {
                Some(status) => Ok(status),
                None => Err(format!("{id} unknown to the second sim")),
            })
        },
    )
    .await?;
    ensure(
        ctx.sim.status_of(&id).await?.is_none(),
        format!("the new session {id} started on the first server too"),
    )?;
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    ctx.choose("#server-select", "s2").await?;
    let hint = ctx
        .b
        .execute(
            "return document.querySelector('#server-sessions').textContent",
            vec![],
        )
        .await?;
    ensure(
        hint == "1 session uses this server.",
        format!("#server-sessions: {hint}"),
    )?;
    let refused = ctx.press("#remove-server").await?;
    ensure(
        refused.0 == "error" && refused.1.contains("Sessions belong to this server"),
        format!("removing a server that has a session: {refused:?}"),
    )?;
    // Logged out (not connected: no confirmation), the session is forgotten.
    ctx.click_in_popup("A", "#logout").await?;
    ctx.wait_keys_gone("A").await?;
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    ctx.choose("#server-select", "s2").await?;

    // Removed: gone from the list with its secret; the first is the default again.
    let removed = ctx.press("#remove-server").await?;
    ensure(removed.0 == "ok", format!("remove the second: {removed:?}"))?;
    let p = page(&ctx).await?;
    ensure(
        values(&p) == ["s1", "new"]
            && p["selected"] == "s1"
            && option_text(&p, "s1").contains("(default)")
            && p["removeHidden"] == true,
        format!("after removing the second: {p}"),
    )?;
    let st = ctx.storage().await?;
    let servers = &st["local"]["wpp_settings"]["servers"];
    ensure(
        servers.as_array().map(Vec::len) == Some(1)
            && servers[0]["id"] == "s1"
            && st["local"]["wpp_settings"]["defaultServer"] == "s1"
            && st["session"].get("wpp_secret_s2").is_none(),
        format!("storage after removing the second: {st}"),
    )?;

    // Behaviour: saved, and shown again after a reload.
    ensure(
        p["closedTab"] == "keepRunning" && p["notify"] == true,
        format!("preferences before saving: {p}"),
    )?;
    ctx.choose("#closed-tab", "closeOnServer").await?;
    ctx.b.click("#notify-drops").await?;
    ctx.b.click("#save-preferences").await?;
    crate::harness::wait_for(
        "#preferences-status[data-result=ok]",
        crate::harness::WAIT,
        || async {
            let v = ctx
                .b
                .execute(
                    "const e = document.querySelector('#preferences-status');\
                     return [e.getAttribute('data-result'), e.textContent];",
                    vec![],
                )
                .await?;
            Ok(if v[0] == "ok" {
                Ok(())
            } else {
                Err(v.to_string())
            })
        },
    )
    .await?;
    ctx.open_options_page().await?;
    let p = page(&ctx).await?;
    ensure(
        p["closedTab"] == "closeOnServer" && p["notify"] == false,
        format!("preferences after a reload: {p}"),
    )?;
    Ok(format!("removed: {:?}", removed.1))
}
