//! Session IDs: `session_<ms timestamp, base36>_<64 random bits, base36>`.
//!
//! Short enough for the server's bcrypt (which ignores input past 72 bytes of session+secret)
//! and made of `[a-z0-9_]` only, a subset of the server's safe name set `[A-Za-z0-9_-]`.
//! No user-agent fingerprint: it would identify the user and buys no uniqueness.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest session name the extension uses (contract §7: keep names at most 32 bytes).
pub const MAX_LEN: usize = 32;
const PREFIX: &str = "session_";
/// 64 random bits need 13 base36 digits (36^12 < 2^64 <= 36^13); padding keeps IDs one length.
const RANDOM_DIGITS: usize = 13;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSessionId(pub String);

impl fmt::Display for InvalidSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid session ID {:?}", self.0)
    }
}

impl std::error::Error for InvalidSessionId {}

impl SessionId {
    /// Builds a fresh ID from the clock and 64 bits from a CSPRNG (the shell supplies both).
    pub fn generate(now_ms: u64, random: u64) -> Self {
        let id = format!(
            "{PREFIX}{}_{:0>width$}",
            base36(now_ms),
            base36(random),
            width = RANDOM_DIGITS
        );
        debug_assert!(id.len() <= MAX_LEN, "{id} is too long");
        SessionId(id)
    }

    /// Accepts only IDs of the form this extension generates.
    pub fn parse(s: &str) -> Result<Self, InvalidSessionId> {
        let err = || InvalidSessionId(s.chars().take(64).collect());
        let rest = s.strip_prefix(PREFIX).ok_or_else(err)?;
        let (stamp, random) = rest.split_once('_').ok_or_else(err)?;
        let is_base36 = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        };
        if s.len() > MAX_LEN || !is_base36(stamp) || !is_base36(random) {
            return Err(err());
        }
        Ok(SessionId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SessionId {
    type Error = InvalidSessionId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SessionId::parse(&s)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(RANDOM_DIGITS);
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("base36 digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_documented_form() {
        let id = SessionId::generate(1_795_000_000_000, 0xdead_beef_cafe_f00d);
        let s = id.as_str();
        assert!(s.starts_with("session_"), "{s}");
        assert!(s.len() <= MAX_LEN, "{s} has {} chars", s.len());
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        let parts: Vec<_> = s.split('_').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            u64::from_str_radix(parts[1], 36).unwrap(),
            1_795_000_000_000
        );
        assert_eq!(
            u64::from_str_radix(parts[2], 36).unwrap(),
            0xdead_beef_cafe_f00d
        );
        assert_eq!(SessionId::parse(s), Ok(id));
    }

    #[test]
    fn extreme_inputs_stay_within_32_chars_and_keep_every_random_bit() {
        for (now, random) in [(0, 0), (u64::MAX >> 20, u64::MAX), (4_102_444_800_000, 1)] {
            let id = SessionId::generate(now, random);
            assert!(id.as_str().len() <= MAX_LEN, "{id}");
            let random_part = id.as_str().rsplit('_').next().unwrap();
            assert_eq!(random_part.len(), RANDOM_DIGITS);
            assert_eq!(u64::from_str_radix(random_part, 36).unwrap(), random);
        }
    }

    #[test]
    fn different_random_bits_give_different_ids_at_the_same_millisecond() {
        let a = SessionId::generate(1_795_000_000_000, 1);
        let b = SessionId::generate(1_795_000_000_000, 2);
        assert_ne!(a, b);
    }

    #[test]
    fn parse_rejects_foreign_and_unsafe_names() {
        for bad in [
            "",
            "session_",
            "session__abc",
            "session_abc_",
            "session_ABC_def",
            "mySession",
            "session_1a:2b_x",
            "session_1a_2b/../x",
            "session_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbb",
        ] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn serde_round_trip_validates() {
        let id = SessionId::generate(42, 7);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<SessionId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<SessionId>("\"evil:name\"").is_err());
    }
}
