//! The durable session index: what the extension knows about each session, kept in
//! `storage.local` under [`crate::core::storage::keys::SESSIONS`] so that sessions outlive
//! tabs and browser restarts. It never holds a token or a secret key: those stay in
//! `storage.session` and the settings.

use crate::core::api::Account;
use crate::core::session_id::SessionId;
use crate::core::settings::{ServerId, ServerUrl, StaleAfterDays};
use crate::core::status::ServerStatus;
use crate::core::text::Text;
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

    /// The colour's name for the user: a catalogue key (`name` is the wire's and the CSS's).
    pub fn key(self) -> &'static str {
        match self {
            Colour::Green => "colour_green",
            Colour::Blue => "colour_blue",
            Colour::Orange => "colour_orange",
            Colour::Purple => "colour_purple",
            Colour::Red => "colour_red",
            Colour::Teal => "colour_teal",
            Colour::Pink => "colour_pink",
            Colour::Grey => "colour_grey",
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

/// Why a name is not a [`Label`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelError {
    Empty,
    TooLong,
    ControlCharacters,
}

impl LabelError {
    pub fn text(self) -> Text {
        match self {
            LabelError::Empty => Text::new("sessions_label_empty"),
            LabelError::TooLong => Text::new("sessions_label_too_long").arg(MAX_LABEL_CHARS),
            LabelError::ControlCharacters => Text::new("sessions_label_control"),
        }
    }
}

/// For serde, which reads labels from storage and messages: a technical report, not shown.
impl std::fmt::Display for LabelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self {
            LabelError::Empty => "empty",
            LabelError::TooLong => "too long",
            LabelError::ControlCharacters => "has control characters",
        };
        write!(f, "invalid session name: {why}")
    }
}

impl Label {
    pub fn parse(input: &str) -> Result<Label, LabelError> {
        let label = input.trim();
        if label.is_empty() {
            return Err(LabelError::Empty);
        }
        if label.chars().count() > MAX_LABEL_CHARS {
            return Err(LabelError::TooLong);
        }
        if label.chars().any(char::is_control) {
            return Err(LabelError::ControlCharacters);
        }
        Ok(Label(label.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Label {
    type Error = LabelError;
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
    /// The drop was recorded (counted, and notified when the user wants notifications): once
    /// per drop, not once per check.
    #[serde(default)]
    pub drop_notified: bool,
    /// Monitoring: the time the session was seen connected, in total (ms).
    #[serde(default)]
    pub connected_ms: f64,
    /// Monitoring: how many times it dropped while connected.
    #[serde(default)]
    pub drops: u32,
    /// Monitoring: the last error a request about it met.
    #[serde(default)]
    pub last_error: Option<LastError>,
}

/// An error a request about a session met: its stable code (`ApiError::code`) and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub code: String,
    pub at: f64,
}

pub const DAY_MS: f64 = 24.0 * 60.0 * 60.0 * 1000.0;

impl SessionEntry {
    /// "Stale after N days without being connected": not connected at its last check, and
    /// not seen connected (never connected: not created) for more than `after` days. A
    /// session the server last called CONNECTED is never stale, however old its date: its
    /// date only lags because nothing could check it (no secret yet, the browser closed).
    pub fn is_stale(&self, after: StaleAfterDays, now: f64) -> bool {
        if self.last_status == Some(ServerStatus::Connected) {
            return false;
        }
        let since = self.last_seen_connected.unwrap_or(self.created_at);
        now - since > f64::from(after.days()) * DAY_MS
    }

    /// Records one check at `now`: the status, and, when it found the session connected
    /// (`connected`: CONNECTED without an error), the time since the previous check that found
    /// it connected, as connected time. That gap counts for at most `max_gap_ms`: across a
    /// longer one (the browser closed, the computer asleep) nothing is known. `Some(code)`
    /// is the error the check met. Returns whether the entry changed.
    pub fn record_check(
        &mut self,
        status: Option<ServerStatus>,
        connected: bool,
        error: Option<&str>,
        now: f64,
        max_gap_ms: f64,
    ) -> bool {
        let mut changed = false;
        if connected {
            let was_connected = self.last_status == Some(ServerStatus::Connected);
            if let Some(since) = self.last_seen_connected.filter(|_| was_connected) {
                self.connected_ms += (now - since).clamp(0.0, max_gap_ms);
            }
            self.last_seen_connected = Some(now);
            changed = true;
        }
        if self.last_status != status {
            self.last_status = status;
            self.updated_at = now;
            changed = true;
        }
        if let Some(code) = error {
            self.record_error(code, now);
            changed = true;
        }
        changed
    }

    pub fn record_error(&mut self, code: &str, now: f64) {
        self.last_error = Some(LastError {
            code: code.to_owned(),
            at: now,
        });
    }

    /// A connected session dropped: counted once, until it is connected again (when
    /// `drop_notified` is cleared). Returns whether this was a new drop.
    pub fn record_drop(&mut self, now: f64) -> bool {
        if self.drop_notified {
            return false;
        }
        self.drop_notified = true;
        self.drops = self.drops.saturating_add(1);
        self.updated_at = now;
        true
    }
}

/// A duration as the Sessions page shows it: `less than a minute`, `12 min`, `3 h 12 min`,
/// `4 d 2 h`.
pub fn describe_duration(ms: f64) -> Text {
    let minutes = (ms.max(0.0) / 60_000.0).floor() as u64;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => Text::new("time_less_than_a_minute"),
        (0, 0, m) => Text::new("time_minutes").arg(m),
        (0, h, m) => Text::new("time_hours_minutes").arg(h).arg(m),
        (d, h, _) => Text::new("time_days_hours").arg(d).arg(h),
    }
}

/// A session's monitoring line, without its last error (the page adds it, with the time in
/// the user's own locale): `Connected 3 h 12 min in total · 2 drops`, or `Never connected`.
/// `render` turns the duration and the drops into words, for the line to take them in.
pub fn describe_monitoring(
    connected_ms: f64,
    drops: u32,
    ever_connected: bool,
    render: impl Fn(&Text) -> String,
) -> Text {
    if !ever_connected {
        return Text::new("sessions_never_connected");
    }
    let drops = match drops {
        0 => Text::new("sessions_drops_none"),
        1 => Text::new("sessions_drops_one"),
        n => Text::new("sessions_drops_other").arg(n),
    };
    Text::new("sessions_connected_in_total")
        .arg(render(&describe_duration(connected_ms)))
        .arg(render(&drops))
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
    /// The import's outcome, and `servers_added` (servers the import added to the settings,
    /// without their secrets): one message per combination of the sentences that apply, so
    /// that each reads whole in every language.
    pub fn text(&self, servers_added: u32) -> Text {
        let key = match (self.kept_newer > 0, self.refused > 0, servers_added > 0) {
            (false, false, false) => "sessions_imported",
            (true, false, false) => "sessions_imported_kept",
            (false, true, false) => "sessions_imported_refused",
            (true, true, false) => "sessions_imported_kept_refused",
            (false, false, true) => "sessions_imported_servers",
            (true, false, true) => "sessions_imported_kept_servers",
            (false, true, true) => "sessions_imported_refused_servers",
            (true, true, true) => "sessions_imported_kept_refused_servers",
        };
        Text::new(key)
            .arg(self.added)
            .arg(self.updated)
            .arg(self.unchanged)
            .arg(self.kept_newer)
            .arg(self.refused)
            .arg(MAX_SESSIONS)
            .arg(servers_added)
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
    pub fn parse(text: &str) -> Result<Export, Text> {
        // Through a `Value`, as the API's replies (see `api::parse_json`).
        let export: Export = serde_json::from_str(text)
            .and_then(serde_json::from_value)
            .map_err(|e| Text::new("sessions_export_unreadable").arg(e))?;
        if export.format != EXPORT_FORMAT {
            return Err(Text::new("sessions_export_not_one"));
        }
        if export.version != EXPORT_VERSION {
            return Err(Text::new("sessions_export_version")
                .arg(export.version)
                .arg(EXPORT_VERSION));
        }
        if export.sessions.0.len() > MAX_SESSIONS {
            return Err(Text::new("sessions_export_too_many").arg(MAX_SESSIONS));
        }
        let unknown_server = export
            .sessions
            .0
            .values()
            .any(|e| !export.servers.iter().any(|s| s.id == e.server));
        if unknown_server {
            return Err(Text::new("sessions_export_unknown_server"));
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
            connected_ms: 0.0,
            drops: 0,
            last_error: None,
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
        assert!(report.text(0).english().contains("1 kept"));
        assert_eq!(
            report.text(2).english(),
            "Imported: 1 new, 1 updated, 1 unchanged. 1 kept as they are here, because they \
             changed here more recently. 2 server(s) added: enter their secret keys in the \
             options."
        );
    }

    #[test]
    fn a_session_is_stale_after_n_days_without_being_connected() {
        let days = |n| StaleAfterDays::new(n).unwrap();
        let mut e = entry(1.0, "Loja");
        e.last_status = Some(ServerStatus::Closed);
        e.last_seen_connected = Some(10.0 * DAY_MS);
        assert!(
            !e.is_stale(days(30), 40.0 * DAY_MS),
            "exactly 30 days: not yet"
        );
        assert!(e.is_stale(days(30), 40.0 * DAY_MS + 1.0));
        assert!(!e.is_stale(days(31), 40.0 * DAY_MS + 1.0));
        assert!(e.is_stale(days(1), 11.5 * DAY_MS));
        // Never connected: counted from its creation.
        e.last_seen_connected = None;
        e.created_at = 20.0 * DAY_MS;
        assert!(!e.is_stale(days(30), 40.0 * DAY_MS));
        assert!(e.is_stale(days(30), 51.0 * DAY_MS));
        e.last_status = None;
        assert!(e.is_stale(days(30), 51.0 * DAY_MS), "never started");
        // Connected at its last check: never stale, however old the date.
        e.last_status = Some(ServerStatus::Connected);
        e.last_seen_connected = Some(0.0);
        assert!(!e.is_stale(days(1), 1000.0 * DAY_MS));
        // Entries stored before monitoring existed read with empty monitoring.
        let mut old = serde_json::to_value(entry(1.0, "Old")).unwrap();
        for key in ["connectedMs", "drops", "lastError"] {
            old.as_object_mut().unwrap().remove(key);
        }
        let old: SessionEntry = serde_json::from_value(old).unwrap();
        assert_eq!(
            (old.connected_ms, old.drops, old.last_error),
            (0.0, 0, None)
        );
    }

    #[test]
    fn connected_time_counts_between_connected_checks_with_a_cap() {
        let cap = 120_000.0;
        let mut e = entry(1.0, "Loja");
        e.last_status = Some(ServerStatus::QrCode);
        e.last_seen_connected = None;
        // The first connected check: connected from now on, no time yet.
        assert!(e.record_check(Some(ServerStatus::Connected), true, None, 1_000.0, cap));
        assert_eq!(e.connected_ms, 0.0);
        assert_eq!(e.last_seen_connected, Some(1_000.0));
        assert_eq!(e.updated_at, 1_000.0);
        // A minute later, and a minute after that.
        e.record_check(Some(ServerStatus::Connected), true, None, 61_000.0, cap);
        e.record_check(Some(ServerStatus::Connected), true, None, 121_000.0, cap);
        assert_eq!(e.connected_ms, 120_000.0);
        // A check that failed (the server unreachable) neither counts nor moves the date...
        assert!(e.record_check(
            Some(ServerStatus::Connected),
            false,
            Some("unreachable"),
            181_000.0,
            cap
        ));
        assert_eq!(e.last_seen_connected, Some(121_000.0));
        assert_eq!(
            e.last_error,
            Some(LastError {
                code: "unreachable".into(),
                at: 181_000.0
            })
        );
        // ...and a gap of an hour counts for the cap only.
        e.record_check(Some(ServerStatus::Connected), true, None, 3_721_000.0, cap);
        assert_eq!(e.connected_ms, 120_000.0 + cap);
        // Closed: nothing more counts, and the next connection starts afresh.
        assert!(e.record_check(Some(ServerStatus::Closed), false, None, 3_781_000.0, cap));
        e.record_check(Some(ServerStatus::Connected), true, None, 9_000_000.0, cap);
        assert_eq!(e.connected_ms, 120_000.0 + cap);
        // Nothing new: nothing to save.
        e.last_status = Some(ServerStatus::Closed);
        assert!(!e.record_check(Some(ServerStatus::Closed), false, None, 9_100_000.0, cap));
    }

    #[test]
    fn a_drop_counts_once_until_connected_again() {
        let mut e = entry(1.0, "Loja");
        assert!(e.record_drop(10.0));
        assert!(!e.record_drop(20.0), "the same drop, checked again");
        assert_eq!((e.drops, e.updated_at), (1, 10.0));
        e.drop_notified = false;
        assert!(e.record_drop(30.0));
        assert_eq!(e.drops, 2);
    }

    #[test]
    fn durations_and_monitoring_read_plainly() {
        let min = 60_000.0;
        let duration = |ms| describe_duration(ms).english();
        assert_eq!(duration(0.0), "less than a minute");
        assert_eq!(duration(59_999.0), "less than a minute");
        assert_eq!(duration(12.0 * min), "12 min");
        assert_eq!(duration(192.0 * min + 5.0), "3 h 12 min");
        assert_eq!(duration(DAY_MS * 4.0 + 125.0 * min), "4 d 2 h");
        assert_eq!(duration(-5.0), "less than a minute");
        let monitoring = |ms, drops, ever| describe_monitoring(ms, drops, ever, Text::english);
        assert_eq!(
            monitoring(192.0 * min, 2, true).english(),
            "Connected 3 h 12 min in total · 2 drops"
        );
        assert_eq!(
            monitoring(0.0, 1, true).english(),
            "Connected less than a minute in total · 1 drop"
        );
        assert_eq!(monitoring(0.0, 0, false).english(), "Never connected");
    }

    #[test]
    fn labels_and_colours_are_named_from_the_catalogue() {
        assert_eq!(
            Label::parse(" ").unwrap_err().text().english(),
            "A session's name cannot be empty."
        );
        assert_eq!(
            Label::parse(&"a".repeat(41)).unwrap_err().text().english(),
            "A session's name has at most 40 characters."
        );
        assert_eq!(Colour::Grey.key(), "colour_grey");
        for colour in Colour::ALL {
            assert!(Text::new(colour.key()).english().to_lowercase() == colour.name());
        }
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
        assert_eq!(
            Export::parse(&serde_json::to_string(&wrong).unwrap())
                .unwrap_err()
                .english(),
            "This is not a wpp-tabs session export."
        );
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
