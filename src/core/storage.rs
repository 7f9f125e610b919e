//! The storage scheme, defined once. `storage.session` (memory only, extension pages only):
//! the tab binding, the session record and the token, each under a per-session key.
//! `storage.local`: the settings. A token is never written to `local` or `sync`.

use crate::core::session_id::SessionId;
use crate::core::settings::ServerUrl;
use crate::core::status::ServerStatus;
use serde::{Deserialize, Serialize};

/// A browser tab's ID: a non-negative integer, as `tabs` gives them (`TAB_ID_NONE` is -1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct TabId(i32);

impl TabId {
    pub fn new(id: i64) -> Option<TabId> {
        i32::try_from(id).ok().filter(|id| *id >= 0).map(TabId)
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

impl std::fmt::Display for TabId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<i64> for TabId {
    type Error = &'static str;
    fn try_from(id: i64) -> Result<Self, Self::Error> {
        TabId::new(id).ok_or("a tab ID is a non-negative 32-bit integer")
    }
}

impl From<TabId> for i64 {
    fn from(id: TabId) -> i64 {
        id.0.into()
    }
}

pub mod keys {
    use super::TabId;
    use crate::core::session_id::SessionId;

    /// `storage.local`: [`crate::core::settings::Settings`].
    pub const SETTINGS: &str = "wpp_settings";
    /// `storage.session`: the secret key when the user did not ask to remember it.
    pub const SECRET: &str = "wpp_secret";

    const TAB_PREFIX: &str = "wpp_tab_";
    const SESSION_PREFIX: &str = "wpp_session_";
    const TOKEN_PREFIX: &str = "wpp_token_";

    /// `storage.session`: the session ID bound to a tab.
    pub fn tab(tab_id: TabId) -> String {
        format!("{TAB_PREFIX}{tab_id}")
    }

    /// `storage.session`: the session's [`super::SessionRecord`].
    pub fn session(id: &SessionId) -> String {
        format!("{SESSION_PREFIX}{id}")
    }

    /// `storage.session`: the session's bearer token.
    pub fn token(id: &SessionId) -> String {
        format!("{TOKEN_PREFIX}{id}")
    }

    /// Every key that belongs to a tab's session: what logging it out removes.
    pub fn all_for(tab_id: TabId, id: &SessionId) -> [String; 3] {
        [tab(tab_id), session(id), token(id)]
    }

    /// The tab a `wpp_tab_<id>` key belongs to.
    pub fn parse_tab(key: &str) -> Option<TabId> {
        TabId::new(key.strip_prefix(TAB_PREFIX)?.parse().ok()?)
    }
}

/// What the extension remembers about a session besides its token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub id: SessionId,
    /// `None` once the tab is closed: the server session and its token outlive the tab.
    pub tab_id: Option<TabId>,
    pub server_url: ServerUrl,
    /// Milliseconds since the epoch.
    pub created_at: f64,
    pub last_status: Option<ServerStatus>,
}

/// A bcrypt token as generate-token returns it (contract §1.1): URL-safe, header-safe.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Token(String);

impl Token {
    pub fn parse(s: &str) -> Option<Token> {
        let ok = (20..=200).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"$./_-".contains(&b));
        ok.then(|| Token(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl TryFrom<String> for Token {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Token::parse(&s).ok_or("not a wppconnect-server token")
    }
}

impl From<Token> for String {
    fn from(t: Token) -> String {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "$2b$10$duQ5YYV6fojn5qFiFv.aEuY32_SnHgcmxdfxohnjG4EHJ5_Z6QWhe";

    #[test]
    fn keys_follow_the_documented_scheme() {
        let id = SessionId::parse("session_abc_def").unwrap();
        let tab = TabId::new(7).unwrap();
        assert_eq!(keys::tab(tab), "wpp_tab_7");
        assert_eq!(keys::session(&id), "wpp_session_session_abc_def");
        assert_eq!(keys::token(&id), "wpp_token_session_abc_def");
        assert_eq!(
            keys::all_for(tab, &id),
            [
                "wpp_tab_7".to_owned(),
                "wpp_session_session_abc_def".to_owned(),
                "wpp_token_session_abc_def".to_owned()
            ]
        );
    }

    #[test]
    fn tab_keys_parse_back() {
        let tab = TabId::new(42).unwrap();
        assert_eq!(keys::parse_tab(&keys::tab(tab)), Some(tab));
        for other in [
            "wpp_tab_",
            "wpp_tab_x",
            "wpp_tab_-1",
            "wpp_token_1",
            "wpp_settings",
        ] {
            assert_eq!(keys::parse_tab(other), None, "{other}");
        }
    }

    #[test]
    fn record_json_is_camel_case_and_round_trips() {
        let record = SessionRecord {
            id: SessionId::parse("session_abc_def").unwrap(),
            tab_id: TabId::new(3),
            server_url: ServerUrl::parse("http://localhost:21465").unwrap(),
            created_at: 1.5e12,
            last_status: Some(ServerStatus::QrCode),
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["id"], "session_abc_def");
        assert_eq!(json["tabId"], 3);
        assert_eq!(json["serverUrl"], "http://localhost:21465");
        assert_eq!(json["lastStatus"], "QRCODE");
        assert_eq!(
            serde_json::from_value::<SessionRecord>(json).unwrap(),
            record
        );
    }

    #[test]
    fn tab_ids_are_non_negative_32_bit_integers() {
        assert_eq!(TabId::new(0).map(TabId::get), Some(0));
        for bad in [-1, i64::from(i32::MAX) + 1] {
            assert_eq!(TabId::new(bad), None, "{bad}");
        }
        assert!(serde_json::from_value::<TabId>(serde_json::json!(-3)).is_err());
        assert!(serde_json::from_value::<TabId>(serde_json::json!(1.5)).is_err());
        assert!(serde_json::from_value::<TabId>(serde_json::json!("1")).is_err());
        assert_eq!(serde_json::to_value(TabId::new(9).unwrap()).unwrap(), 9);
    }

    #[test]
    fn tokens_are_validated_and_never_debug_printed() {
        let token = Token::parse(TOKEN).unwrap();
        assert_eq!(token.expose(), TOKEN);
        assert!(!format!("{token:?}").contains("duQ5"));
        for bad in [
            "",
            "short",
            "has space in it and is long enough",
            "a\nb_________________________",
        ] {
            assert!(Token::parse(bad).is_none(), "{bad:?}");
        }
    }
}
