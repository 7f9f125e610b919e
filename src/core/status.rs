//! The session statuses wppconnect-server really reports (contract §3), defined once.

use crate::core::text::Text;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerStatus {
    Closed,
    Initializing,
    #[serde(rename = "QRCODE")]
    QrCode,
    #[serde(rename = "PHONECODE")]
    PhoneCode,
    Connected,
}

impl ServerStatus {
    pub const ALL: [ServerStatus; 5] = [
        ServerStatus::Closed,
        ServerStatus::Initializing,
        ServerStatus::QrCode,
        ServerStatus::PhoneCode,
        ServerStatus::Connected,
    ];

    /// The server's own spelling, as `status-session` sends it.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerStatus::Closed => "CLOSED",
            ServerStatus::Initializing => "INITIALIZING",
            ServerStatus::QrCode => "QRCODE",
            ServerStatus::PhoneCode => "PHONECODE",
            ServerStatus::Connected => "CONNECTED",
        }
    }

    /// Case-insensitive: the `waitQrCode` reply spells them `qrcode` and `phoneCode` (§2.1).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
    }

    /// Words a person understands, for the popup.
    pub fn describe(self) -> Text {
        Text::new(match self {
            ServerStatus::Closed => "status_closed",
            ServerStatus::Initializing => "status_initializing",
            ServerStatus::QrCode => "status_qrcode",
            ServerStatus::PhoneCode => "status_phonecode",
            ServerStatus::Connected => "status_connected",
        })
    }
}

impl fmt::Display for ServerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling_the_server_uses() {
        for status in ServerStatus::ALL {
            assert_eq!(ServerStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(ServerStatus::parse("qrcode"), Some(ServerStatus::QrCode));
        assert_eq!(
            ServerStatus::parse("phoneCode"),
            Some(ServerStatus::PhoneCode)
        );
    }

    #[test]
    fn library_only_states_are_not_server_statuses() {
        for s in [
            "READY",
            "AUTHENTICATING",
            "PAIRING",
            "UNPAIRED",
            "OPENING",
            "TIMEOUT",
            "",
        ] {
            assert_eq!(ServerStatus::parse(s), None, "{s}");
        }
    }
}
