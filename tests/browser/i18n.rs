//! The interface in the browser's language: with the browser in Brazilian Portuguese or in
//! Spanish (`--lang` in Chromium, `intl.locale.requested` in Firefox), every page in each state
//! a user meets speaks that language, and no English is left: neither a message of the English
//! catalogue nor an English sentence written outside it.

use serde_json::json;
use std::collections::BTreeMap;
use wpp_tabs::core::text::parse_catalogue;

use crate::ctx::Ctx;
use crate::harness::{ensure, Kind, Look, Result};

/// The page's visible words: `lang`, the title, each line of rendered text, and the
/// `title`, `aria-label`, `placeholder` and `alt` of the elements shown.
const VISIBLE_WORDS: &str = r#"
const shown = e => e.checkVisibility ? e.checkVisibility() : !!e.offsetParent;
const attrs = [];
for (const e of document.querySelectorAll('[title],[aria-label],[placeholder],[alt]')) {
  if (!shown(e)) continue;
  for (const a of ['title', 'aria-label', 'placeholder', 'alt']) {
    const v = e.getAttribute(a);
    if (v) attrs.push(`${a}=${v}`);
  }
}
// Records kept as written (`translate="no"`: the diagnostics log, for a bug report) are
// left out while the text is read.
const records = [...document.querySelectorAll('[translate="no"]')];
const displays = records.map(e => e.style.display);
records.forEach(e => { e.style.display = 'none'; });
const lines = [document.title, ...document.body.innerText.split('\n')].map(l => l.trim()).filter(l => l);
records.forEach((e, i) => { e.style.display = displays[i]; });
return {
  lang: document.documentElement.lang,
  uiLanguage: (globalThis.browser ?? globalThis.chrome).i18n.getUILanguage(),
  lines,
  attrs,
};
"#;

/// Words only English has (none is a Portuguese or Spanish word): a line with one of them is
/// English that escaped the catalogue.
const ENGLISH_ONLY: [&str; 22] = [
    "the", "this", "with", "your", "and", "of", "to", "not", "you", "was", "from", "for", "is",
    "are", "has", "have", "be", "or", "by", "it", "its", "an",
];

fn catalogue(locale: &str) -> Result<BTreeMap<String, String>> {
    let path = format!(
        "{}/extension/_locales/{locale}/messages.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_catalogue(&text).map_err(|e| format!("{path}: {e}"))
}

/// The fixed parts of a message (around its `$n`), the longest first.
fn fixed_parts(message: &str) -> Vec<String> {
    let mut parts: Vec<String> = message
        .split('$')
        .map(|p| {
            p.trim_start_matches(|c: char| c.is_ascii_digit())
                .trim()
                .to_owned()
        })
        .filter(|p| !p.is_empty())
        .collect();
    parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
    parts
}

/// A language the extension ships besides English.
#[derive(Clone, Copy)]
pub struct Language {
    /// As the browser is told (`--lang`, `intl.locale.requested`).
    browser_locale: &'static str,
    /// The `_locales` folder.
    catalogue: &'static str,
    name: &'static str,
}

pub const PORTUGUESE: Language = Language {
    browser_locale: "pt-BR",
    catalogue: "pt_BR",
    name: "Portuguese",
};

pub const SPANISH: Language = Language {
    browser_locale: "es-ES",
    catalogue: "es",
    name: "Spanish",
};

struct Checker {
    language: Language,
    /// English fixed parts that the language says differently: seeing one is a miss.
    english: Vec<(String, String)>,
    /// The language's fixed parts that differ from English: seeing one proves the catalogue
    /// spoke.
    translated: Vec<String>,
    failures: Vec<String>,
    report: Vec<String>,
}

impl Checker {
    fn new(language: Language) -> Result<Checker> {
        let en = catalogue("en")?;
        let other = catalogue(language.catalogue)?;
        let mut english = Vec::new();
        let mut ours = Vec::new();
        for (key, message) in &en {
            let Some(translated) = other.get(key) else {
                continue;
            };
            if translated == message {
                continue;
            }
            if let Some(part) = fixed_parts(message).into_iter().next() {
                // A word or two ("servers.", "sessions") may be a name in a record; a phrase
                // of three words is English.
                if part.split_whitespace().count() >= 3 {
                    english.push((key.clone(), part));
                }
            }
            if let Some(part) = fixed_parts(translated).into_iter().next() {
                if part.len() >= 4 {
                    ours.push(part);
                }
            }
        }
        Ok(Checker {
            language,
            english,
            translated: ours,
            failures: Vec::new(),
            report: Vec::new(),
        })
    }

    async fn check(&mut self, ctx: &Ctx, page: &str) -> Result<()> {
        let seen = ctx.b.execute(VISIBLE_WORDS, vec![]).await?;
        let lang = seen["lang"].as_str().unwrap_or_default();
        let want = &self.language.catalogue[..2];
        if !lang.starts_with(want) {
            self.failures.push(format!(
                "{page}: <html lang={lang:?}>, UI language {}",
                seen["uiLanguage"]
            ));
        }
        let texts: Vec<String> = ["lines", "attrs"]
            .iter()
            .flat_map(|k| seen[k].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let mut translated = 0;
        for text in &texts {
            let lower = text.to_lowercase();
            let words: Vec<&str> = lower
                .split(|c: char| !c.is_alphanumeric() && c != '\'')
                .collect();
            if let Some(w) = ENGLISH_ONLY.iter().find(|w| words.contains(w)) {
                self.failures
                    .push(format!("{page}: English ({w:?}) in {text:?}"));
            }
            if let Some((key, part)) = self.english.iter().find(|(_, p)| text.contains(p.as_str()))
            {
                self.failures
                    .push(format!("{page}: English {key} ({part:?}) in {text:?}"));
            }
            if self.translated.iter().any(|p| text.contains(p.as_str())) {
                translated += 1;
            }
        }
        if translated == 0 {
            self.failures.push(format!(
                "{page}: no {} message in {texts:?}",
                self.language.name
            ));
        }
        self.report
            .push(format!("{page}: {translated}/{}", texts.len()));
        Ok(())
    }
}

pub async fn portuguese_everywhere(kind: Kind) -> Result<String> {
    everywhere_in(kind, PORTUGUESE).await
}

pub async fn spanish_everywhere(kind: Kind) -> Result<String> {
    everywhere_in(kind, SPANISH).await
}

/// Every page, in each state a user meets, in `language`.
async fn everywhere_in(kind: Kind, language: Language) -> Result<String> {
    let look = Look {
        locale: Some(language.browser_locale),
        dark: false,
    };
    let mut ctx = Ctx::with_look(kind, &look).await?;
    let mut checker = Checker::new(language)?;
    let ui = ctx.eval("return api.i18n.getUILanguage();", vec![]).await?;
    ctx.create_tab("A").await?;
    ctx.open_popup("A").await?;
    ctx.wait_popup("A", "asking for settings", |s| s.options_link_visible)
        .await?;
    checker.check(&ctx, "popup, no settings").await?;
    ctx.to_main().await?;
    checker.check(&ctx, "options").await?;
    ctx.settings_fast().await?;
    // The worker's verdict on a connection test, in the language.
    ctx.to_main().await?;
    ctx.open_options_page().await?;
    let (result, said) = ctx.press("#test-connection").await?;
    let expected = catalogue(language.catalogue)?["options_test_ok"].clone();
    ensure(
        result == "ok" && said == expected,
        format!("Test connection: {result} {said:?}, expected {expected:?}"),
    )?;
    checker.check(&ctx, "options, connection tested").await?;
    let a = ctx.paired_tab("B").await?;
    ctx.to_popup("B").await?;
    checker.check(&ctx, "popup, QR").await?;
    ctx.click_in_popup("B", "#pair-by-phone").await?;
    checker.check(&ctx, "popup, phone form").await?;
    ctx.sim.scan(&a).await?;
    ctx.wait_popup("B", "CONNECTED", |s| s.status() == "CONNECTED")
        .await?;
    checker.check(&ctx, "popup, connected").await?;
    ctx.click_in_popup("B", "#logout").await?;
    checker.check(&ctx, "popup, log out?").await?;
    for page in ["sessions.html", "diagnostics.html"] {
        ctx.b.open_in_new_window(page).await?;
        checker.check(&ctx, page).await?;
    }
    ensure(
        checker.failures.is_empty(),
        format!("not in {}:\n{}", language.name, checker.failures.join("\n")),
    )?;
    Ok(format!(
        "UI language {ui}; {} lines per page: {}",
        language.name,
        json!(checker.report)
    ))
}
