//! The user's settings: which wppconnect-server to talk to, and its secret key.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const DEFAULT_SERVER_URL: &str = "http://localhost:21465";
/// Longer than any real secret; bounds what a page can make the worker store.
const MAX_SECRET_LEN: usize = 512;

/// Stored in `storage.local` under [`crate::core::storage::keys::SETTINGS`]. The secret is kept
/// here only when the user asked to remember it; otherwise it lives in `storage.session`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub server_url: ServerUrl,
    #[serde(default)]
    pub remember_secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<SecretKey>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server_url: ServerUrl::parse(DEFAULT_SERVER_URL).expect("default URL is valid"),
            remember_secret: false,
            secret_key: None,
        }
    }
}

/// An `http(s)://host[:port][/path]` base URL, kept without a trailing slash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerUrl(String);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingsError {
    BadServerUrl(String),
    BadSecret(&'static str),
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::BadServerUrl(why) => write!(f, "Server URL: {why}"),
            SettingsError::BadSecret(why) => write!(f, "Secret key: {why}"),
        }
    }
}

impl std::error::Error for SettingsError {}

impl ServerUrl {
    pub fn parse(input: &str) -> Result<Self, SettingsError> {
        let bad = |why: &str| SettingsError::BadServerUrl(why.to_owned());
        let trimmed = input.trim().trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("http://")
            .or_else(|| trimmed.strip_prefix("https://"))
            .ok_or_else(|| bad("must start with http:// or https://"))?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        if trimmed
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "?#@\\\"<>".contains(c))
        {
            return Err(bad(
                "may not contain spaces, credentials, a query or a fragment",
            ));
        }
        if trimmed.len() > 2048 {
            return Err(bad("is too long"));
        }
        Ok(ServerUrl(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServerUrl {
    type Error = SettingsError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ServerUrl::parse(&s)
    }
}

impl From<ServerUrl> for String {
    fn from(url: ServerUrl) -> String {
        url.0
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server's `SECRET_KEY`. Its `Debug` never prints the value, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretKey(String);

impl SecretKey {
    pub fn parse(input: &str) -> Result<Self, SettingsError> {
        if input.is_empty() {
            return Err(SettingsError::BadSecret("is empty"));
        }
        if input.len() > MAX_SECRET_LEN {
            return Err(SettingsError::BadSecret("is too long"));
        }
        if input.chars().any(char::is_control) {
            return Err(SettingsError::BadSecret(
                "may not contain control characters",
            ));
        }
        Ok(SecretKey(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl TryFrom<String> for SecretKey {
    type Error = SettingsError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SecretKey::parse(&s)
    }
}

impl From<SecretKey> for String {
    fn from(secret: SecretKey) -> String {
        secret.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalised() {
        let url = ServerUrl::parse("  http://localhost:21465/ ").unwrap();
        assert_eq!(url.as_str(), "http://localhost:21465");
        let url = ServerUrl::parse("https://wpp.example.com/base/").unwrap();
        assert_eq!(url.as_str(), "https://wpp.example.com/base");
    }

    #[test]
    fn bad_server_urls_are_refused_with_a_reason() {
        for bad in [
            "",
            "localhost:21465",
            "ftp://x",
            "http://",
            "http:///x",
            "http://a b",
            "http://user:pw@host",
            "http://host/?q=1",
            "javascript:alert(1)",
        ] {
            let err = ServerUrl::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("Server URL:"), "{bad}: {err}");
        }
    }

    #[test]
    fn secret_debug_output_is_redacted() {
        let secret = SecretKey::parse("THISISMYSECURETOKEN").unwrap();
        assert!(!format!("{secret:?}").contains("THISIS"));
        let settings = Settings {
            secret_key: Some(secret),
            ..Settings::default()
        };
        assert!(!format!("{settings:?}").contains("THISIS"));
    }

    #[test]
    fn settings_json_omits_an_unremembered_secret() {
        let json = serde_json::to_value(Settings::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"serverUrl": "http://localhost:21465", "rememberSecret": false})
        );
        let back: Settings = serde_json::from_value(json).unwrap();
        assert_eq!(back, Settings::default());
    }

    #[test]
    fn settings_with_a_bad_url_or_secret_do_not_deserialize() {
        let bad_url = serde_json::json!({"serverUrl": "nope", "rememberSecret": false});
        assert!(serde_json::from_value::<Settings>(bad_url).is_err());
        let bad_secret = serde_json::json!({"serverUrl": DEFAULT_SERVER_URL, "secretKey": ""});
        assert!(serde_json::from_value::<Settings>(bad_secret).is_err());
    }
}
