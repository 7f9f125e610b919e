//! The message catalogue (`extension/_locales/<locale>/messages.json`) against the code: every
//! locale has every message with the same substitutions, every key the code names is in it,
//! every message in it is used, and no page holds words of its own outside it.

#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use wpp_tabs::core::text::parse_catalogue;

/// The locales shipped; `en` is the default (`default_locale`) and the reference.
const LOCALES: [&str; 3] = ["en", "pt_BR", "es"];

/// Every key starts with one of these and `_`: a string literal of that shape in the code is a
/// key (so a key chosen by a `match` is checked too), and no wire or storage name has it.
const PREFIXES: [&str; 17] = [
    "ext",
    "action",
    "command",
    "common",
    "popup",
    "phone",
    "unlock",
    "status",
    "error",
    "colour",
    "sessions",
    "options",
    "diagnostics",
    "notify",
    "menu",
    "badge",
    "time",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn catalogue(locale: &str) -> BTreeMap<String, String> {
    let path = root().join(format!("extension/_locales/{locale}/messages.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    parse_catalogue(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn is_key_shaped(s: &str) -> bool {
    PREFIXES.iter().any(|p| {
        s.strip_prefix(p)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
    })
}

/// `$1`..`$9` a message uses.
fn substitutions(message: &str) -> BTreeSet<char> {
    let mut found = BTreeSet::new();
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            match chars.peek() {
                Some('$') => {
                    chars.next();
                }
                Some(d) if d.is_ascii_digit() => {
                    found.insert(*d);
                }
                _ => {}
            }
        }
    }
    found
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// The double-quoted string literals of a source text (escapes kept as written).
fn literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            let mut lit = String::new();
            let mut escaped = false;
            for c in chars.by_ref() {
                if escaped {
                    escaped = false;
                    lit.push(c);
                } else if c == '\\' {
                    escaped = true;
                    lit.push(c);
                } else if c == '"' {
                    break;
                } else {
                    lit.push(c);
                }
            }
            out.push(lit);
        }
    }
    out
}

/// Every key-shaped literal in the Rust sources, the pages and the manifest, with where.
fn referenced_keys() -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut sources = Vec::new();
    files(&root().join("src"), "rs", &mut sources);
    files(&root().join("extension"), "html", &mut sources);
    files(&root().join("extension"), "js", &mut sources);
    sources.push(root().join("manifest.json"));
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap();
        for lit in literals(&text) {
            let manifest_key = lit
                .strip_prefix("__MSG_")
                .and_then(|k| k.strip_suffix("__"));
            // The manifest's own keys (`options_ui`) are not messages; its `__MSG_x__` are.
            let key = match manifest_key {
                Some(key) => key,
                None if path.ends_with("manifest.json") => continue,
                None => &lit,
            };
            if is_key_shaped(key) {
                found
                    .entry(key.to_owned())
                    .or_insert_with(|| path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn every_locale_has_every_message_with_the_same_substitutions() {
    let en = catalogue("en");
    assert!(!en.is_empty());
    for key in en.keys() {
        assert!(
            is_key_shaped(key),
            "en/{key}: a key is <prefix>_<lower_snake>, prefixes {PREFIXES:?}"
        );
    }
    for locale in &LOCALES[1..] {
        let other = catalogue(locale);
        let missing: Vec<_> = en.keys().filter(|k| !other.contains_key(*k)).collect();
        let extra: Vec<_> = other.keys().filter(|k| !en.contains_key(*k)).collect();
        assert!(missing.is_empty(), "{locale} lacks {missing:?}");
        assert!(
            extra.is_empty(),
            "{locale} has keys English lacks: {extra:?}"
        );
        for (key, message) in &other {
            assert!(!message.trim().is_empty(), "{locale}/{key} is empty");
            assert_eq!(
                substitutions(message),
                substitutions(&en[key]),
                "{locale}/{key}: {message:?} against {:?}",
                en[key]
            );
        }
    }
}

#[test]
fn every_key_the_code_names_is_in_the_catalogue_and_every_message_is_used() {
    let en = catalogue("en");
    let used = referenced_keys();
    let missing: Vec<_> = used
        .iter()
        .filter(|(k, _)| !en.contains_key(*k))
        .map(|(k, at)| format!("{k} ({at})"))
        .collect();
    assert!(missing.is_empty(), "keys not in the catalogue: {missing:?}");
    let unused: Vec<_> = en.keys().filter(|k| !used.contains_key(*k)).collect();
    assert!(unused.is_empty(), "messages nothing uses: {unused:?}");
}

/// The pages' own words: every element with text of its own names its message (`data-i18n`),
/// and the attributes a reader hears or sees (`title`, `aria-label`, `placeholder`, `alt`) are
/// never written in the page.
#[test]
fn no_page_has_words_outside_the_catalogue() {
    let mut pages = Vec::new();
    files(&root().join("extension"), "html", &mut pages);
    assert!(pages.len() >= 4, "{pages:?}");
    let mut problems = Vec::new();
    for page in pages {
        let html = std::fs::read_to_string(&page).unwrap();
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        let mut open_tag = String::new();
        let mut rest = html.as_str();
        while let Some(start) = rest.find('<') {
            let text = rest[..start].trim();
            if text.chars().any(char::is_alphabetic)
                && !open_tag.starts_with("<!")
                && !open_tag.contains("data-i18n=")
            {
                problems.push(format!("{name}: {text:?} after {open_tag}"));
            }
            let end = rest[start..]
                .find('>')
                .map(|e| start + e + 1)
                .unwrap_or(rest.len());
            let tag = &rest[start..end];
            if !tag.starts_with("</") {
                open_tag = tag.to_owned();
            }
            for attribute in ["title", "aria-label", "placeholder", "alt"] {
                for quoted in [format!(" {attribute}=\""), format!("\n{attribute}=\"")] {
                    if let Some(at) = tag.find(&quoted) {
                        let value = &tag[at + quoted.len()..];
                        let value = &value[..value.find('"').unwrap_or(0)];
                        if value.chars().any(char::is_alphabetic) {
                            problems.push(format!("{name}: {attribute}={value:?} in {tag}"));
                        }
                    }
                }
            }
            rest = &rest[end..];
        }
    }
    assert!(
        problems.is_empty(),
        "words outside the catalogue:\n{}",
        problems.join("\n")
    );
}

/// The pages' Wasm writes text only through the catalogue: no text setter of the shell is
/// handed an English literal.
#[test]
fn the_shell_writes_no_literal_words() {
    let mut sources = Vec::new();
    files(&root().join("src/shell"), "rs", &mut sources);
    let setters = [
        "set_text_content(",
        "show_error(",
        "text_el(",
        "set_title(",
        "show_result(",
        "set_attribute(",
    ];
    let mut problems = Vec::new();
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap();
        // Wasm tests may say what they like.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            for setter in setters {
                if let Some(at) = line.find(setter) {
                    let literal_words = literals(&line[at..]).into_iter().any(|l| {
                        l.split_whitespace().count() > 1 && l.chars().any(char::is_alphabetic)
                    });
                    if literal_words {
                        problems.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "English written by the shell:\n{}",
        problems.join("\n")
    );
}

/// `Text::english` and the browsers fill `$n` the same way: checked here for the catalogue's
/// messages with substitutions, so a translation cannot drop one (covered above) or add a stray `$`.
#[test]
fn no_message_has_a_stray_dollar() {
    for locale in LOCALES {
        for (key, message) in catalogue(locale) {
            let mut chars = message.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '$' {
                    match chars.next() {
                        Some('$') | Some('1'..='9') => {}
                        other => panic!("{locale}/{key}: '$' followed by {other:?} in {message:?}"),
                    }
                }
            }
        }
    }
}
