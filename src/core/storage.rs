//! The storage scheme, defined once.
//! - `storage.session` (memory only, extension pages only): each tab's binding, each
//!   session's token, and the secret keys the user did not ask to remember.
//! - `storage.local`: the settings and the durable session index, which hold no token.
//!
//! A token is never written to `local` or `sync`.

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
    use crate::core::settings::ServerId;

    /// `storage.local`: [`crate::core::settings::Settings`].
    pub const SETTINGS: &str = "wpp_settings";
    /// `storage.local`: [`crate::core::index::SessionIndex`].
    pub const SESSIONS: &str = "wpp_sessions";
    /// `storage.session`: the one-server shape's unremembered secret (before server IDs).
    pub const LEGACY_SECRET: &str = "wpp_secret";

    const SECRET_PREFIX: &str = "wpp_secret_";
    const TAB_PREFIX: &str = "wpp_tab_";
    const TOKEN_PREFIX: &str = "wpp_token_";

    /// `storage.session`: a server's secret key when the user did not ask to remember it.
    pub fn secret(server: &ServerId) -> String {
        format!("{SECRET_PREFIX}{server}")
    }

    /// `storage.session`: the session ID bound to a tab.
    pub fn tab(tab_id: TabId) -> String {
        format!("{TAB_PREFIX}{tab_id}")
    }

    /// `storage.session`: the session's bearer token.
    pub fn token(id: &SessionId) -> String {
        format!("{TOKEN_PREFIX}{id}")
    }

    /// The tab a `wpp_tab_<id>` key belongs to.
    pub fn parse_tab(key: &str) -> Option<TabId> {
        TabId::new(key.strip_prefix(TAB_PREFIX)?.parse().ok()?)
    }
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
    use crate::core::session_id::SessionId;

    const TOKEN: &str = "$2b$10$duQ5YYV6fojn5qFiFv.aEuY32_SnHgcmxdfxohnjG4EHJ5_Z6QWhe";

    #[test]
    fn keys_follow_the_documented_scheme() {
        let id = SessionId::parse("session_abc_def").unwrap();
        let tab = TabId::new(7).unwrap();
        assert_eq!(keys::tab(tab), "wpp_tab_7");
        assert_eq!(keys::token(&id), "wpp_token_session_abc_def");
        let server = crate::core::settings::ServerId::parse("s2").unwrap();
        assert_eq!(keys::secret(&server), "wpp_secret_s2");
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
            "wpp_sessions",
        ] {
            assert_eq!(keys::parse_tab(other), None, "{other}");
        }
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
