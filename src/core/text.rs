//! User-facing text: the core says *which* message (a key of the catalogue,
//! `extension/_locales/<locale>/messages.json`) and with what values; the pages and the worker
//! turn it into the browser's language with `i18n.getMessage`. No English sentence is built
//! here, so every word the user reads is in the catalogue, and a test checks each key is in
//! every locale.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The most substitutions `i18n.getMessage` takes (Chrome returns nothing past 9).
pub const MAX_ARGS: usize = 9;

/// A catalogue message and its substitutions (`$1`..`$9` in the message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub key: Cow<'static, str>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

impl Text {
    pub const fn new(key: &'static str) -> Self {
        Text {
            key: Cow::Borrowed(key),
            args: Vec::new(),
        }
    }

    /// The next substitution (`$1`, then `$2`, ...).
    pub fn arg(mut self, value: impl ToString) -> Self {
        self.args.push(value.to_string());
        self
    }

    /// A key is what a catalogue may hold: lower-case ASCII letters, digits and `_` (the
    /// browser ignores a key's case), at most 64. Checked on receipt, so a page never asks the
    /// browser for a key a message made up.
    pub fn is_valid(&self) -> bool {
        !self.key.is_empty()
            && self.key.len() <= 64
            && self
                .key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && self.args.len() <= MAX_ARGS
    }

    /// The message in English, from the catalogue the extension ships: for tests and tools,
    /// which run without a browser (a module that never calls it does not hold the catalogue).
    pub fn english(&self) -> String {
        let message = english_catalogue()
            .get(self.key.as_ref())
            .unwrap_or_else(|| panic!("no message {:?} in the English catalogue", self.key));
        substitute(message, &self.args)
    }
}

/// Fills `$1`..`$9` with `args` and turns `$$` into `$`, as `i18n.getMessage` does.
pub fn substitute(message: &str, args: &[String]) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some(d @ '1'..='9') => {
                chars.next();
                let i = d as usize - '1' as usize;
                out.push_str(args.get(i).map(String::as_str).unwrap_or(""));
            }
            _ => out.push('$'),
        }
    }
    out
}

/// A catalogue file (`messages.json`) as key -> message; an entry without a message is refused.
pub fn parse_catalogue(json: &str) -> Result<BTreeMap<String, String>, String> {
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| e.to_string())?;
    raw.into_iter()
        .map(|(key, entry)| match entry["message"].as_str() {
            Some(message) => Ok((key, message.to_owned())),
            None => Err(format!("{key} has no message")),
        })
        .collect()
}

/// The English catalogue, read once.
pub fn english_catalogue() -> &'static BTreeMap<String, String> {
    static CATALOGUE: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        parse_catalogue(include_str!("../../extension/_locales/en/messages.json"))
            .expect("the English catalogue")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutions_fill_in_order_and_dollars_stay() {
        let args = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            substitute("$2 then $1, $$5 and $", &args),
            "b then a, $5 and $"
        );
        assert_eq!(substitute("missing $3.", &args), "missing .");
    }

    #[test]
    fn keys_are_checked() {
        assert!(Text::new("ext_name").arg(1).is_valid());
        assert!(!Text::new("").is_valid());
        assert!(!Text::new("a b").is_valid());
        assert!(!Text::new("popupTitle").is_valid());
        let mut many = Text::new("k");
        for i in 0..10 {
            many = many.arg(i);
        }
        assert!(!many.is_valid());
    }

    #[test]
    fn english_comes_from_the_shipped_catalogue() {
        assert_eq!(Text::new("ext_name").english(), "wpp-tabs");
    }
}
