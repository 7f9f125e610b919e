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
    /// The user accepted plain `http://` to a server that is not on this computer: the
    /// secret key and tokens then travel readable by anyone on the way.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server_url: ServerUrl::parse(DEFAULT_SERVER_URL).expect("default URL is valid"),
            remember_secret: false,
            secret_key: None,
            allow_insecure_http: false,
        }
    }
}

impl Settings {
    /// Whether requests to this server travel unencrypted beyond this computer.
    pub fn is_insecure(&self) -> bool {
        is_insecure(&self.server_url)
    }

    /// Refuses plain HTTP beyond this computer unless the user opted in for this server.
    pub fn check_transport(&self) -> Result<(), SettingsError> {
        check_transport(&self.server_url, self.allow_insecure_http)
    }
}

pub fn is_insecure(url: &ServerUrl) -> bool {
    url.is_plain_http() && !url.is_loopback()
}

/// The secret key travels in a URL path and every token in a header: over plain HTTP to
/// another machine, anyone on the way can read them.
pub fn check_transport(url: &ServerUrl, allow_insecure_http: bool) -> Result<(), SettingsError> {
    match is_insecure(url) && !allow_insecure_http {
        true => Err(SettingsError::InsecureHttp),
        false => Ok(()),
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
    InsecureHttp,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::BadServerUrl(why) => write!(f, "Server URL: {why}"),
            SettingsError::BadSecret(why) => write!(f, "Secret key: {why}"),
            SettingsError::InsecureHttp => f.write_str(
                "Server URL: plain http:// to another computer would send the secret key \
                 unencrypted. Use https://, or allow plain HTTP for this server.",
            ),
        }
    }
}

impl std::error::Error for SettingsError {}

impl ServerUrl {
    /// Parses and normalises a base URL: the scheme and host in lower case (`HTTPS://` is
    /// fine), a non-ASCII host label shown as Punycode, a port in 1-65535, no trailing slash.
    pub fn parse(input: &str) -> Result<Self, SettingsError> {
        let bad = |why: &str| SettingsError::BadServerUrl(why.to_owned());
        let trimmed = input.trim().trim_end_matches('/');
        if trimmed.len() > 2048 {
            return Err(bad("is too long"));
        }
        if trimmed
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "?#@\\\"<>".contains(c))
        {
            return Err(bad(
                "may not contain spaces, credentials, a query or a fragment",
            ));
        }
        let (scheme, rest) = trimmed
            .split_once("://")
            .ok_or_else(|| bad("must start with http:// or https://"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("must start with http:// or https://"));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = split_port(authority).ok_or_else(|| bad("has a bad port"))?;
        let host = normalise_host(host).ok_or_else(|| bad("has no valid host"))?;
        let port = match port {
            Some(port) => format!(":{port}"),
            None => String::new(),
        };
        // A non-ASCII path is shown as it travels: percent-encoded UTF-8.
        let path: String = path
            .chars()
            .map(|c| match c.is_ascii() {
                true => c.to_string(),
                false => c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
            })
            .collect();
        Ok(ServerUrl(format!("{scheme}://{host}{port}{path}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host as normalised (`[::1]` for IPv6).
    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split('/').next().unwrap_or_default();
        split_port(authority).map_or("", |(host, _)| host)
    }

    /// Plain `http://`: what travels to the server can be read on the way.
    pub fn is_plain_http(&self) -> bool {
        self.0.starts_with("http://")
    }

    /// This computer: `localhost`, `127.0.0.0/8` or `[::1]`. Plain HTTP does not leave it.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host == "localhost"
            || host.ends_with(".localhost")
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// `host[:port]` -> (host, port); `None` when the port is empty, not a number or out of range.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let port_at = match authority.strip_prefix('[') {
        Some(v6) => v6.find(']').map(|end| end + 2)?,
        None => authority.find(':').unwrap_or(authority.len()),
    };
    let (host, port) = authority.split_at(port_at.min(authority.len()));
    match port.strip_prefix(':') {
        None if port.is_empty() => Some((host, None)),
        None => None,
        Some(port) => {
            let valid =
                !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
            let port: u16 = port.parse().ok().filter(|_| valid)?;
            (port > 0).then_some((host, Some(port)))
        }
    }
}

/// The host in lower case, each non-ASCII label as `xn--` Punycode; `None` if it is no host.
fn normalise_host(host: &str) -> Option<String> {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: std::net::Ipv6Addr = v6.parse().ok()?;
        return Some(format!("[{ip}]"));
    }
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    let labels: Option<Vec<String>> = host
        .split('.')
        .map(|label| {
            let label = label.to_lowercase();
            let label = match label.is_ascii() {
                true => label,
                false => format!("xn--{}", crate::core::punycode::encode(&label)?),
            };
            let valid = (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            valid.then_some(label)
        })
        .collect();
    Some(labels?.join("."))
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
    fn scheme_and_host_case_ports_and_idn_are_normalised() {
        for (input, normal) in [
            (
                "HTTPS://WPP.Example.COM:8443/Base/",
                "https://wpp.example.com:8443/Base",
            ),
            ("http://127.0.0.1:65535", "http://127.0.0.1:65535"),
            ("http://[::1]:21465", "http://[::1]:21465"),
            ("https://münchen.example", "https://xn--mnchen-3ya.example"),
            ("https://аpple.com", "https://xn--pple-43d.com"),
            ("http://wpp_server:21465", "http://wpp_server:21465"),
            ("https://h/wpp/é", "https://h/wpp/%C3%A9"),
        ] {
            assert_eq!(ServerUrl::parse(input).unwrap().as_str(), normal, "{input}");
        }
    }

    #[test]
    fn plain_http_is_refused_beyond_loopback_without_the_opt_in() {
        for local in [
            "http://localhost:21465",
            "http://127.0.0.7",
            "http://[::1]:1",
            "https://wpp.example.com",
        ] {
            let url = ServerUrl::parse(local).unwrap();
            assert_eq!(check_transport(&url, false), Ok(()), "{local}");
        }
        for remote in [
            "http://wpp.example.com",
            "http://192.168.1.10:21465",
            "http://10.0.0.1",
            "http://[2001:db8::1]",
        ] {
            let url = ServerUrl::parse(remote).unwrap();
            assert_eq!(
                check_transport(&url, false),
                Err(SettingsError::InsecureHttp),
                "{remote}"
            );
            assert_eq!(
                check_transport(&url, true),
                Ok(()),
                "{remote} with the opt-in"
            );
        }
        let stored = serde_json::json!({"serverUrl": "http://wpp.example.com"});
        let settings: Settings = serde_json::from_value(stored).unwrap();
        assert!(
            !settings.allow_insecure_http,
            "an old settings record has no opt-in"
        );
        assert!(settings.check_transport().is_err());
    }

    #[test]
    fn bad_server_urls_are_refused_with_a_reason() {
        for bad in [
            "",
            "localhost:21465",
            "ftp://x",
            "http://",
            "http:///x",
            "http://:",
            "http://:21465",
            "http://host:",
            "http://host:0",
            "http://host:99999",
            "http://host:+80",
            "http://host:8a",
            "http://[::1",
            "http://[nope]:80",
            "http://-host",
            "http://a..b",
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
            serde_json::json!({"serverUrl": "http://localhost:21465", "rememberSecret": false, "allowInsecureHttp": false})
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
