//! The Sessions page (`sessions.html`) against the worker: the empty state, rows that follow
//! the sessions live (`data-status`, `data-known`, `data-tab`), the actions each row offers,
//! renaming through `[data-field=label]` (and refusing an empty name), the status filter and
//! the search, selection and the bulk buttons, the in-page confirmation (Escape cancels),
//! a row action reaching the server, export and import (an oversized file refused on the
//! page), forgetting a session, and (Chromium) reconnecting to a stopped worker.

use std::time::Duration;

use fantoccini::wd::WindowHandle;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::harness::{ensure, wait_for, wd, Kind, Result, TempDir, WAIT};

/// One row of the page, as a check reads it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    id: String,
    status: Option<String>,
    known: Option<String>,
    tab: Option<String>,
    shown: bool,
    label: String,
    select_label: Option<String>,
    selected: bool,
    /// The `data-action` of each shown button.
    actions: Vec<String>,
}

/// Everything a check reads from the page, in one round trip.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    source: Option<String>,
    rows: Vec<Row>,
    /// The `data-bulk` of each enabled bulk button.
    bulk_enabled: Vec<String>,
    /// `#select-all`: `[checked, indeterminate]`.
    select_all: (bool, bool),
    empty: bool,
    no_match: bool,
    /// `#notice`: `[data-result, text]`.
    notice: (Option<String>, String),
    error: Option<String>,
    /// `#confirm-question` while the confirmation shows.
    confirm: Option<String>,
    focus: Option<String>,
    /// The `data-session-id` of the row holding the focus.
    focus_row: Option<String>,
}

const SNAPSHOT: &str = r#"
const q = s => document.querySelector(s);
const vis = e => !!e && !e.closest('[hidden]') && getComputedStyle(e).display !== 'none';
const rows = [...document.querySelectorAll('tr[data-session-id]')].map(tr => {
  const select = tr.querySelector('[data-select]');
  return {
    id: tr.getAttribute('data-session-id'),
    status: tr.getAttribute('data-status'),
    known: tr.getAttribute('data-known'),
    tab: tr.getAttribute('data-tab'),
    shown: vis(tr),
    label: tr.querySelector('[data-field=label]').value,
    selectLabel: select.getAttribute('aria-label'),
    selected: select.checked,
    actions: [...tr.querySelectorAll('[data-action]')].filter(vis).map(b => b.getAttribute('data-action')),
  };
});
const all = q('#select-all');
const active = document.activeElement;
return {
  source: document.body.getAttribute('data-source'),
  rows,
  bulkEnabled: [...document.querySelectorAll('[data-bulk]')].filter(b => !b.disabled)
    .map(b => b.getAttribute('data-bulk')),
  selectAll: [all.checked, all.indeterminate],
  empty: vis(q('#empty')),
  noMatch: vis(q('#no-match')),
  notice: [q('#notice').getAttribute('data-result'), q('#notice').textContent.trim()],
  error: vis(q('#error')) ? q('#error').textContent : null,
  confirm: vis(q('#confirm')) ? q('#confirm-question').textContent : null,
  focus: active ? (active.id || active.getAttribute('data-bulk') || active.tagName) : null,
  focusRow: active && active.closest('tr[data-session-id]')
    ? active.closest('tr[data-session-id]').getAttribute('data-session-id') : null,
};
"#;

impl Page {
    fn row(&self, id: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id)
    }

    /// IDs of the shown rows, in page order.
    fn shown(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.shown)
            .map(|r| r.id.as_str())
            .collect()
    }

    fn brief(&self) -> String {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                format!(
                    "{}[{:?} known={:?} tab={:?} {} label={:?} sel={} {:?}]",
                    r.id,
                    r.status,
                    r.known,
                    r.tab,
                    if r.shown { "shown" } else { "hidden" },
                    r.label,
                    r.selected,
                    r.actions
                )
            })
            .collect();
        format!(
            "source={:?} rows={rows:?} bulk={:?} selectAll={:?} empty={} noMatch={} notice={:?} \
             error={:?} confirm={:?} focus={:?}",
            self.source,
            self.bulk_enabled,
            self.select_all,
            self.empty,
            self.no_match,
            self.notice,
            self.error,
            self.confirm,
            self.focus
        )
    }
}

/// The Sessions page in its own window.
struct Sessions<'a> {
    ctx: &'a Ctx,
    window: WindowHandle,
}

impl<'a> Sessions<'a> {
    async fn open(ctx: &'a Ctx) -> Result<Sessions<'a>> {
        let window = ctx.b.open_in_new_window("sessions.html").await?;
        Ok(Sessions { ctx, window })
    }

    async fn focus(&self) -> Result<()> {
        self.ctx
            .b
            .switch_to(&self.window, "switch to the Sessions page")
            .await
    }

    async fn snapshot(&self) -> Result<Page> {
        self.focus().await?;
        let v = self.ctx.b.execute(SNAPSHOT, vec![]).await?;
        serde_json::from_value(v.clone()).map_err(|e| format!("Sessions page snapshot {v}: {e}"))
    }

    async fn wait(&self, what: &str, pred: impl Fn(&Page) -> bool) -> Result<Page> {
        wait_for(&format!("Sessions page: {what}"), WAIT, || async {
            let page = self.snapshot().await?;
            Ok(if pred(&page) {
                Ok(page)
            } else {
                Err(page.brief())
            })
        })
        .await
    }

    async fn run(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.focus().await?;
        self.ctx.b.execute(script, args).await
    }

    async fn click(&self, css: &str) -> Result<()> {
        self.focus().await?;
        self.ctx.b.click(css).await
    }

    /// Types a name into a row's label field and commits it, as leaving the field does.
    async fn rename(&self, id: &str, label: &str) -> Result<()> {
        self.run(
            "const i = document.querySelector(`tr[data-session-id=\"${arguments[0]}\"] [data-field=label]`);\
             i.value = arguments[1]; i.dispatchEvent(new Event('change', { bubbles: true }));",
            vec![json!(id), json!(label)],
        )
        .await
        .map(drop)
    }

    /// `body[data-connections]`: the ports the page opened so far.
    async fn connections(&self) -> Result<u64> {
        let v = self
            .run(
                "return document.body.getAttribute('data-connections');",
                vec![],
            )
            .await?;
        v.as_str()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("body[data-connections] is {v}"))
    }

    async fn filter(&self, value: &str) -> Result<()> {
        self.focus().await?;
        self.ctx.choose("#filter-status", value).await
    }

    async fn search(&self, text: &str) -> Result<()> {
        self.run(
            "const i = document.querySelector('#search'); i.value = '';\
             i.dispatchEvent(new Event('input', { bubbles: true }));",
            vec![],
        )
        .await?;
        if !text.is_empty() {
            self.ctx
                .b
                .find("#search")
                .await?
                .send_keys(text)
                .await
                .map_err(|e| format!("type into #search: {e}"))?;
        }
        Ok(())
    }

    async fn pick_file(&self, path: &std::path::Path) -> Result<()> {
        self.focus().await?;
        self.ctx
            .b
            .find("#import-file")
            .await?
            .send_keys(&path.display().to_string())
            .await
            .map_err(|e| format!("pick {path:?} in #import-file: {e}"))
    }

    async fn clear_notice(&self) -> Result<()> {
        self.run(
            "const n = document.querySelector('#notice'); n.textContent = '';\
             n.removeAttribute('data-result');",
            vec![],
        )
        .await
        .map(drop)
    }
}

fn row_css(id: &str, inner: &str) -> String {
    format!("tr[data-session-id=\"{id}\"] {inner}")
}

const ESCAPE: &str = "\u{E00C}";

pub async fn sessions_page(kind: Kind) -> Result<String> {
    let mut ctx = Ctx::new(kind).await?;
    ctx.settings_fast().await?;
    let window = {
        let page = Sessions::open(&ctx).await?;
        page.wait("the empty state", |p| {
            p.source.as_deref() == Some("worker") && p.empty && p.rows.is_empty()
        })
        .await?;
        page.window
    };
    let a = ctx.paired_tab("A").await?;
    let b = ctx.paired_tab("B").await?;
    ctx.sim.scan(&a).await?;
    let (tab_a, tab_b) = (ctx.tab_id("A")?.to_string(), ctx.tab_id("B")?.to_string());
    let page = Sessions { ctx: &ctx, window };

    // Rows follow the sessions live, with the page left open.
    let p = page
        .wait("A CONNECTED in its tab, B QRCODE in its tab", |p| {
            let ok = |id: &str, status: &str, tab: &str| {
                p.row(id).is_some_and(|r| {
                    r.status.as_deref() == Some(status)
                        && r.known.as_deref() == Some("true")
                        && r.tab.as_deref() == Some(tab)
                })
            };
            ok(&a, "CONNECTED", &tab_a) && ok(&b, "QRCODE", &tab_b) && !p.empty
        })
        .await?;
    let row_a = p.row(&a).ok_or("row A")?.clone();
    let mut actions = row_a.actions.clone();
    actions.sort();
    ensure(
        actions
            == [
                "close",
                "detach",
                "focus-tab",
                "forget",
                "logout",
                "restart",
            ],
        format!("A (known, in a tab) offers {actions:?}"),
    )?;
    ensure(
        p.bulk_enabled.is_empty() && p.select_all == (false, false),
        format!("bulk buttons enabled with nothing selected: {}", p.brief()),
    )?;
    let label_b = p.row(&b).ok_or("row B")?.label.clone();

    // Chromium: the worker stopped, the page reconnects (a new port) and subscribes again.
    if let Some(cdp) = &ctx.b.cdp {
        let before = page.connections().await?;
        cdp.stop_extension_worker(&ctx.b.ext_id).await?;
        wait_for("the page to reconnect", WAIT, || async {
            let now = page.connections().await?;
            Ok(if now > before {
                Ok(())
            } else {
                Err(format!("{now}"))
            })
        })
        .await?;
    }

    // Renaming: the worker's list comes back with the new name; an empty name is refused.
    page.rename(&a, "  Shop Centre ").await?;
    page.wait("A renamed by the worker's list", |p| {
        p.row(&a).is_some_and(|r| {
            r.label == "Shop Centre" && r.select_label.as_deref() == Some("Select Shop Centre")
        })
    })
    .await?;
    page.rename(&a, "   ").await?;
    page.wait("an empty name refused, the old one back", |p| {
        p.notice.0.as_deref() == Some("error")
            && p.notice.1.contains("empty")
            && p.row(&a).is_some_and(|r| r.label == "Shop Centre")
    })
    .await?;

    // The status filter and the search hide rows.
    page.filter("connected").await?;
    page.wait("only A under Connected", |p| p.shown() == [a.as_str()])
        .await?;
    page.filter("pairing").await?;
    page.wait("only B under Pairing", |p| p.shown() == [b.as_str()])
        .await?;
    page.filter("unknown").await?;
    page.wait("none under Not known here", |p| {
        p.shown().is_empty() && p.no_match
    })
    .await?;
    page.filter("all").await?;
    page.wait("both under All", |p| p.shown().len() == 2 && !p.no_match)
        .await?;
    page.search("sHOP").await?;
    page.wait("only A for \"sHOP\"", |p| p.shown() == [a.as_str()])
        .await?;
    page.search("no such name").await?;
    page.wait("none for \"no such name\"", |p| {
        p.shown().is_empty() && p.no_match
    })
    .await?;
    page.search("").await?;
    page.wait("both again", |p| p.shown().len() == 2).await?;

    // Selection: bulk buttons follow it; a row filtered out is unselected.
    page.click(&row_css(&a, "[data-select]")).await?;
    page.wait("A selected, bulk enabled", |p| {
        p.bulk_enabled.len() == 5
            && p.select_all == (false, true)
            && p.row(&a).is_some_and(|r| r.selected)
    })
    .await?;
    page.filter("pairing").await?;
    page.wait("A filtered out and unselected", |p| {
        p.shown() == [b.as_str()]
            && p.bulk_enabled.is_empty()
            && p.row(&a).is_some_and(|r| !r.selected)
    })
    .await?;
    page.filter("all").await?;
    page.click("#select-all").await?;
    page.wait("both selected", |p| {
        p.select_all == (true, false) && p.rows.iter().all(|r| r.selected)
    })
    .await?;

    // Forgetting asks first, naming how many; Escape cancels, nothing is sent.
    page.click("[data-bulk=forget]").await?;
    let p = page
        .wait("the confirmation for 2 sessions", |p| {
            p.confirm
                .as_deref()
                .is_some_and(|q| q.contains("2 sessions"))
        })
        .await?;
    ensure(
        p.focus.as_deref() == Some("confirm-no"),
        format!("the confirmation opened with focus on {:?}", p.focus),
    )?;
    ctx.b
        .find("#confirm-no")
        .await?
        .send_keys(ESCAPE)
        .await
        .map_err(wd("press Escape"))?;
    page.wait("Escape closed the confirmation", |p| {
        p.confirm.is_none() && p.focus.as_deref() == Some("forget")
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = page.snapshot().await?;
    ensure(
        p.row(&a)
            .is_some_and(|r| r.known.as_deref() == Some("true"))
            && p.row(&b)
                .is_some_and(|r| r.known.as_deref() == Some("true")),
        format!("a cancelled forget changed rows: {}", p.brief()),
    )?;
    page.click("#select-all").await?;
    page.wait("none selected", |p| p.bulk_enabled.is_empty())
        .await?;

    // A row action reaches the server: close B.
    page.click(&row_css(&b, "[data-action=close]")).await?;
    wait_for("close-session for B", WAIT, || async {
        let closes = ctx.logouts().await?;
        Ok(
            match closes
                .iter()
                .any(|r| r["session"] == json!(b) && r["route"] == "close-session")
            {
                true => Ok(()),
                false => Err(format!("{closes:?}")),
            },
        )
    })
    .await?;
    // The focus stays in B's row while it is busy and after (a disabled button would drop it).
    page.wait("B CLOSED, the focus still in its row", |p| {
        p.row(&b)
            .is_some_and(|r| r.status.as_deref() == Some("CLOSED"))
            && p.focus_row.as_deref() == Some(b.as_str())
    })
    .await?;

    // Export: the download's name and content.
    page.run(
        "window.__exported = null;\
         const createObjectURL = URL.createObjectURL;\
         let blob = null;\
         URL.createObjectURL = b => { blob = b; return createObjectURL(b); };\
         HTMLAnchorElement.prototype.click = function () {\
           const saved = { name: this.download, href: this.href, text: null };\
           window.__exported = saved;\
           blob.text().then(t => { saved.text = t; });\
         };",
        vec![],
    )
    .await?;
    page.clear_notice().await?;
    page.click("#export").await?;
    let exported = wait_for("the export's download", WAIT, || async {
        let v = page.run("return window.__exported;", vec![]).await?;
        Ok(match v["text"].as_str() {
            Some(_) => Ok(v),
            None => Err(v.to_string()),
        })
    })
    .await?;
    let name = exported["name"].as_str().unwrap_or_default().to_string();
    let text = exported["text"].as_str().unwrap_or_default().to_string();
    let dated = name
        .strip_prefix("wpp-tabs-sessions-")
        .and_then(|r| r.strip_suffix(".json"))
        .is_some_and(|d| {
            d.len() == 10
                && d.chars().enumerate().all(|(i, c)| {
                    if i == 4 || i == 7 {
                        c == '-'
                    } else {
                        c.is_ascii_digit()
                    }
                })
        });
    ensure(dated, format!("export file name {name:?}"))?;
    ensure(
        exported["href"]
            .as_str()
            .is_some_and(|h| h.starts_with("blob:")),
        format!("export link {}", exported["href"]),
    )?;
    let file: Value = serde_json::from_str(&text).map_err(|e| format!("export {text}: {e}"))?;
    ensure(
        file["format"] == "wpp-tabs-sessions"
            && file["sessions"].get(&a).is_some()
            && file["sessions"].get(&b).is_some(),
        format!("export content: {text}"),
    )?;
    page.wait("the export's notice", |p| {
        p.notice.0.as_deref() == Some("ok")
    })
    .await?;

    // Import: an oversized file is refused on the page; the export is accepted.
    let dir = TempDir::new("sessions-import")?;
    let big = dir.0.join("big.json");
    std::fs::write(&big, vec![b' '; 1024 * 1024 + 1]).map_err(|e| e.to_string())?;
    page.clear_notice().await?;
    page.pick_file(&big).await?;
    page.wait("an oversized file refused", |p| {
        p.notice.0.as_deref() == Some("error") && p.notice.1.contains("too large")
    })
    .await?;
    let good = dir.0.join("export.json");
    std::fs::write(&good, &text).map_err(|e| e.to_string())?;
    page.clear_notice().await?;
    page.pick_file(&good).await?;
    let p = page
        .wait("the export imported", |p| {
            p.notice.0.as_deref() == Some("ok") && p.notice.1.starts_with("Imported")
        })
        .await?;
    let imported = p.notice.1.clone();

    // Forget B, confirmed, named in the question: this browser no longer knows it.
    page.click(&row_css(&b, "[data-action=forget]")).await?;
    page.wait("the confirmation naming B", |p| {
        p.confirm
            .as_deref()
            .is_some_and(|q| q.contains(&format!("“{label_b}”")))
    })
    .await?;
    page.click("#confirm-yes").await?;
    let p = page
        .wait("B forgotten (gone, or listed by the server only)", |p| {
            p.confirm.is_none()
                && p.row(&b)
                    .is_none_or(|r| r.known.as_deref() == Some("false"))
        })
        .await?;
    ensure(p.error.is_none(), format!("an error shows: {}", p.brief()))?;
    Ok(format!(
        "{imported}; B after forget: {:?}",
        p.row(&b).map(|r| &r.known)
    ))
}
