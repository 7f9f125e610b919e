//! The durable session index: what the extension knows about each session, kept in
//! `storage.local` under [`crate::core::storage::keys::SESSIONS`] so that sessions outlive
//! tabs and browser restarts. It never holds a token or a secret key: those stay in
//! `storage.session` and the settings.

use crate::core::api::Account;
use crate::core::session_id::SessionId;
use crate::core::settings::{ServerId, ServerUrl};
use crate::core::status::ServerStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const MAX_LABEL_CHARS: usize = 40;
/// More sessions than one browser can show; bounds an import.
pub const MAX_SESSIONS: usize = 500;

/// The colours a session can wear: named, so the popup, the Sessions page and the badge
/// agree, and each has a text name for those who do not see the colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Colour {
    Green,
    Blue,
    Orange,
    Purple,
    Red,
    Teal,
    Pink,
    Grey,
}

impl Colour {
    pub const ALL: [Colour; 8] = [
        Colour::Green,
        Colour::Blue,
        Colour::Orange,
        Colour::Purple,
        Colour::Red,
        Colour::Teal,
        Colour::Pink,
        Colour::Grey,
    ];

    /// The colour's CSS value: dark enough for white text (WCAG AA) in both themes.
    pub fn css(self) -> &'static str {
        match self {
            Colour::Green => "#1b7f3b",
            Colour::Blue => "#1d5fbf",
            Colour::Orange => "#a84a00",
            Colour::Purple => "#6d3bb5",
            Colour::Red => "#b3261e",
            Colour::Teal => "#00756f",
            Colour::Pink => "#ad1f68",
            Colour::Grey => "#5f6368",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Orange => "orange",
            Colour::Purple => "purple",
            Colour::Red => "red",
            Colour::Teal => "teal",
            Colour::Pink => "pink",
            Colour::Grey => "grey",
        }
    }

    /// The n-th session's colour: new sessions cycle through the palette.
    pub fn nth(n: usize) -> Colour {
        Colour::ALL[n % Colour::ALL.len()]
    }
}

/// A session's name as the user gave it: trimmed, 1 to 40 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Label(String);

impl Label {
    pub fn parse(input: &str) -> Result<Label, &'static str> {
        let label = input.trim();
        if label.is_empty() {
            return Err("A session's name cannot be empty.");
        }
        if label.chars().count() > MAX_LABEL_CHARS {
            return Err("A session's name has at most 40 characters.");
        }
        if label.chars().any(char::is_control) {
            return Err("A session's name cannot contain control characters.");
        }
        Ok(Label(label.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Label {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Label::parse(&s)
    }
}

impl From<Label> for String {
    fn from(label: Label) -> String {
        label.0
    }
}

/// One session in the index. Times are milliseconds since the epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEntry {
    pub server: ServerId,
    pub label: Label,
    pub colour: Colour,
    pub created_at: f64,
    /// When the entry last changed: an import never replaces a newer entry.
    pub updated_at: f64,
    #[serde(default)]
    pub last_status: Option<ServerStatus>,
    #[serde(default)]
    pub last_seen_connected: Option<f64>,
    #[serde(default)]
    pub account: Option<Account>,
    /// The drop was notified: one notification per drop, not one per check.
    #[serde(default)]
    pub drop_notified: bool,
}

/// Every session the extension knows, by ID.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionIndex(pub BTreeMap<SessionId, SessionEntry>);

impl SessionIndex {
    pub fn get(&self, id: &SessionId) -> Option<&SessionEntry> {
        self.0.get(id)
    }

    /// The label and colour a new session gets: "Account N" and the next colour.
    pub fn next_look(&self) -> (Label, Colour) {
        let n = (1..)
            .find(|n| {
                let label = format!("Account {n}");
                !self.0.values().any(|e| e.label.as_str() == label)
            })
            .unwrap_or(1);
        let label = Label::parse(&format!("Account {n}")).expect("a valid label");
        (label, Colour::nth(self.0.len()))
    }

    /// Merges an imported index: new sessions are added; a known one is replaced only by a
    /// newer entry, and an older one is reported, never dropped silently.
    pub fn merge(&mut self, incoming: SessionIndex) -> MergeReport {
        let mut report = MergeReport::default();
        for (id, entry) in incoming.0 {
            match self.0.get(&id) {
                None if self.0.len() >= MAX_SESSIONS => report.refused += 1,
                None => {
                    self.0.insert(id, entry);
                    report.added += 1;
                }
                Some(ours) if entry.updated_at > ours.updated_at => {
                    self.0.insert(id, entry);
                    report.updated += 1;
                }
                Some(ours) if entry == *ours => report.unchanged += 1,
                Some(_) => report.kept_newer += 1,
            }
        }
        report
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeReport {
    pub added: u32,
    pub updated: u32,
    pub unchanged: u32,
    /// Known here with a newer or equally recent, different entry: ours was kept.
    pub kept_newer: u32,
    /// Over [`MAX_SESSIONS`].
    pub refused: u32,
}

impl MergeReport {
    pub fn describe(&self) -> String {
        let mut parts = vec![format!(
            "Imported: {} new, {} updated, {} unchanged.",
            self.added, self.updated, self.unchanged
        )];
        if self.kept_newer > 0 {
            parts.push(format!(
                "{} kept as they are here, because they changed here more recently.",
                self.kept_newer
            ));
        }
        if self.refused > 0 {
            parts.push(format!(
                "{} refused: at most {MAX_SESSIONS} sessions.",
                self.refused
            ));
        }
        parts.join(" ")
    }
}

pub const EXPORT_FORMAT: &str = "wpp-tabs-sessions";
pub const EXPORT_VERSION: u32 = 1;

/// A server as exported: its name and URL, never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedServer {
    pub id: ServerId,
    pub name: String,
    pub url: ServerUrl,
}

/// The export file: the index and the servers it refers to. No token, no secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Export {
    pub format: String,
    pub version: u32,
    pub exported_at: f64,
    pub servers: Vec<ExportedServer>,
    pub sessions: SessionIndex,
}

impl Export {
    /// Reads an export file, refusing anything that is not one.
    pub fn parse(text: &str) -> Result<Export, String> {
        let export: Export = serde_json::from_str(text)
            .map_err(|e| format!("This is not a wpp-tabs session export: {e}"))?;
        if export.format != EXPORT_FORMAT {
            return Err("This is not a wpp-tabs session export.".into());
        }
        if export.version != EXPORT_VERSION {
            return Err(format!(
                "This export is version {}; this extension reads version {EXPORT_VERSION}.",
                export.version
            ));
        }
        if export.sessions.0.len() > MAX_SESSIONS {
            return Err(format!("An export holds at most {MAX_SESSIONS} sessions."));
        }
        let unknown_server = export
            .sessions
            .0
            .values()
            .any(|e| !export.servers.iter().any(|s| s.id == e.server));
        if unknown_server {
            return Err("The export names a session whose server it does not list.".into());
        }
        Ok(export)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(updated_at: f64, label: &str) -> SessionEntry {
        SessionEntry {
            server: ServerId::first(),
            label: Label::parse(label).unwrap(),
            colour: Colour::Green,
            created_at: 1.0,
            updated_at,
            last_status: Some(ServerStatus::Connected),
            last_seen_connected: Some(5.0),
            account: None,
            drop_notified: false,
        }
    }

    fn id(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    #[test]
    fn labels_are_trimmed_and_bounded() {
        assert_eq!(
            Label::parse("  Loja Centro ").unwrap().as_str(),
            "Loja Centro"
        );
        assert!(Label::parse("   ").is_err());
        assert!(Label::parse(&"é".repeat(41)).is_err());
        assert!(Label::parse(&"é".repeat(40)).is_ok());
        assert!(Label::parse("a\nb").is_err());
        assert!(serde_json::from_value::<Label>(serde_json::json!("")).is_err());
    }

    #[test]
    fn new_sessions_get_the_next_free_name_and_colour() {
        let mut index = SessionIndex::default();
        assert_eq!(index.next_look().0.as_str(), "Account 1");
        index.0.insert(id("session_a_1"), entry(1.0, "Account 1"));
        index.0.insert(id("session_a_2"), entry(1.0, "Account 3"));
        let (label, colour) = index.next_look();
        assert_eq!(label.as_str(), "Account 2");
        assert_eq!(colour, Colour::Orange);
    }

    #[test]
    fn merging_never_replaces_a_newer_entry_silently() {
        let mut ours = SessionIndex::default();
        ours.0.insert(id("session_a_1"), entry(10.0, "Ours newer"));
        ours.0.insert(id("session_a_2"), entry(10.0, "Ours older"));
        ours.0.insert(id("session_a_3"), entry(10.0, "Same"));
        let mut theirs = SessionIndex::default();
        theirs
            .0
            .insert(id("session_a_1"), entry(5.0, "Theirs older"));
        theirs
            .0
            .insert(id("session_a_2"), entry(20.0, "Theirs newer"));
        theirs.0.insert(id("session_a_3"), entry(10.0, "Same"));
        theirs.0.insert(id("session_a_4"), entry(1.0, "New"));
        let report = ours.merge(theirs);
        assert_eq!(
            report,
            MergeReport {
                added: 1,
                updated: 1,
                unchanged: 1,
                kept_newer: 1,
                refused: 0
            }
        );
        assert_eq!(ours.0[&id("session_a_1")].label.as_str(), "Ours newer");
        assert_eq!(ours.0[&id("session_a_2")].label.as_str(), "Theirs newer");
        assert_eq!(ours.0[&id("session_a_4")].label.as_str(), "New");
        assert!(report.describe().contains("1 kept"));
    }

    #[test]
    fn exports_are_validated_on_import() {
        let mut sessions = SessionIndex::default();
        sessions.0.insert(id("session_a_1"), entry(1.0, "Loja"));
        let export = Export {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            exported_at: 2.0,
            servers: vec![ExportedServer {
                id: ServerId::first(),
                name: "Main".into(),
                url: ServerUrl::parse("http://localhost:21465").unwrap(),
            }],
            sessions,
        };
        let text = serde_json::to_string(&export).unwrap();
        assert_eq!(Export::parse(&text).unwrap(), export);

        let mut wrong = export.clone();
        wrong.format = "other".into();
        assert!(Export::parse(&serde_json::to_string(&wrong).unwrap()).is_err());
        let mut orphan = export.clone();
        orphan.servers.clear();
        assert!(Export::parse(&serde_json::to_string(&orphan).unwrap()).is_err());
        // A token smuggled into an entry is refused, not carried along.
        let mut value = serde_json::to_value(&export).unwrap();
        value["secretKey"] = "THISISMYSECURETOKEN".into();
        assert!(Export::parse(&value.to_string()).is_err());
        assert!(Export::parse("not json").is_err());
    }
}
