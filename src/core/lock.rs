//! The remembered secret key: how long it is remembered, and its lock.
//!
//! - A remembered key can be remembered for a while ([`Remember`]): once `rememberUntil` has
//!   passed, reading the settings forgets it ([`expire_remembered`]), judged by the worker's
//!   clock, and the key is asked for again.
//! - A remembered key can be locked with a passphrase: `storage.local` then holds only its
//!   [`Sealed`] form (AES-GCM 256, the key derived with PBKDF2-SHA-256), and the clear key is
//!   kept in `storage.session` once unlocked, for the rest of the browser session. The
//!   browser does the cryptography ([`Crypto`], WebCrypto); everything else is decided here.
//! - A wrong passphrase costs a growing delay before the next try ([`Throttle`]); nothing
//!   stored changes. A forgotten one is no lockout: entering the secret key again replaces
//!   the sealed form.

#![allow(async_fn_in_trait)]

use crate::core::messages::OptionsReply;
use crate::core::settings::{Remember, SecretKey, ServerConfig, ServerId, ServerUrl, Settings};
use crate::core::storage::TabId;
use crate::core::text::Text;
use crate::core::worker::{Shell, Worker};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::rc::Rc;

/// The stored form's version.
pub const SEALED_VERSION: u32 = 1;
pub const KDF: &str = "PBKDF2-SHA-256";
/// OWASP's 2023 guidance for PBKDF2-HMAC-SHA-256.
pub const ITERATIONS: u32 = 600_000;
/// Read back up to this many: a later version may raise the count; far more would only be a
/// way to hang the worker.
const MAX_ITERATIONS: u32 = 10_000_000;
pub const SALT_LEN: usize = 16;
pub const IV_LEN: usize = 12;
/// AES-GCM's authentication tag, appended to the ciphertext by WebCrypto.
pub const TAG_LEN: usize = 16;
/// A secret key is at most 512 bytes (`SecretKey`), so its ciphertext is at most this.
const MAX_CIPHERTEXT_LEN: usize = 512 + TAG_LEN;

pub const MIN_PASSPHRASE_CHARS: usize = 8;
pub const MAX_PASSPHRASE_CHARS: usize = 1024;
/// The delay after the first wrong passphrase; it doubles with each one, up to the cap.
const FIRST_DELAY_MS: f64 = 1_000.0;
const MAX_DELAY_MS: f64 = 30_000.0;

/// A passphrase as typed: 8 to 1024 characters. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Passphrase(String);

impl Passphrase {
    pub fn parse(input: &str) -> Result<Passphrase, &'static str> {
        let chars = input.chars().count();
        match (MIN_PASSPHRASE_CHARS..=MAX_PASSPHRASE_CHARS).contains(&chars) {
            true => Ok(Passphrase(input.to_owned())),
            false => Err("a passphrase has 8 to 1024 characters"),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl TryFrom<String> for Passphrase {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Passphrase::parse(&s)
    }
}

impl From<Passphrase> for String {
    fn from(p: Passphrase) -> String {
        p.0
    }
}

/// A secret key encrypted with a passphrase, as `storage.local` keeps it:
/// `{v: 1, kdf: "PBKDF2-SHA-256", iterations, salt, iv, ciphertext}`, the bytes in base64.
/// The ciphertext ends with AES-GCM's tag. Checked when read: a form this version cannot
/// open is refused whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SealedFields")]
pub struct Sealed {
    v: u32,
    kdf: String,
    iterations: u32,
    salt: String,
    iv: String,
    ciphertext: String,
}

#[derive(Deserialize)]
struct SealedFields {
    v: u32,
    kdf: String,
    iterations: u32,
    salt: String,
    iv: String,
    ciphertext: String,
}

impl TryFrom<SealedFields> for Sealed {
    type Error = String;
    fn try_from(f: SealedFields) -> Result<Self, String> {
        if f.v != SEALED_VERSION || f.kdf != KDF {
            return Err(format!("a sealed secret of version {} ({})", f.v, f.kdf));
        }
        if !(ITERATIONS..=MAX_ITERATIONS).contains(&f.iterations) {
            return Err(format!("{} PBKDF2 iterations", f.iterations));
        }
        let sealed = Sealed {
            v: f.v,
            kdf: f.kdf,
            iterations: f.iterations,
            salt: f.salt,
            iv: f.iv,
            ciphertext: f.ciphertext,
        };
        sealed.parts()?;
        Ok(sealed)
    }
}

/// A sealed secret's bytes, decoded and checked.
pub struct SealedParts {
    pub iterations: u32,
    pub salt: [u8; SALT_LEN],
    pub iv: [u8; IV_LEN],
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// The stored form of what the browser encrypted, at [`ITERATIONS`].
    pub fn new(salt: &[u8; SALT_LEN], iv: &[u8; IV_LEN], ciphertext: &[u8]) -> Sealed {
        Sealed {
            v: SEALED_VERSION,
            kdf: KDF.to_owned(),
            iterations: ITERATIONS,
            salt: base64::encode(salt),
            iv: base64::encode(iv),
            ciphertext: base64::encode(ciphertext),
        }
    }

    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The bytes to decrypt with; `Err` says what is wrong with the stored form.
    pub fn parts(&self) -> Result<SealedParts, String> {
        let bytes = |what: &str, text: &str| {
            base64::decode(text).ok_or_else(|| format!("the {what} is not base64"))
        };
        let salt = bytes("salt", &self.salt)?
            .try_into()
            .map_err(|_| "the salt is not 16 bytes".to_owned())?;
        let iv = bytes("IV", &self.iv)?
            .try_into()
            .map_err(|_| "the IV is not 12 bytes".to_owned())?;
        let ciphertext = bytes("ciphertext", &self.ciphertext)?;
        if !(TAG_LEN + 1..=MAX_CIPHERTEXT_LEN).contains(&ciphertext.len()) {
            return Err("the ciphertext has a wrong length".into());
        }
        Ok(SealedParts {
            iterations: self.iterations,
            salt,
            iv,
            ciphertext,
        })
    }
}

/// Why a sealed secret did not open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// AES-GCM refused the tag: the passphrase is not the one it was sealed with.
    WrongPassphrase,
    /// Anything else (the browser's crypto failed, a stored form that does not decode).
    Failed(String),
}

/// The browser's cryptography (WebCrypto in the shell): seals a secret key with a
/// passphrase (PBKDF2-SHA-256 at [`ITERATIONS`] with a fresh random salt, then AES-GCM 256
/// with a fresh random IV), and opens it again.
pub trait Crypto {
    async fn seal(&self, secret: &SecretKey, passphrase: &Passphrase) -> Result<Sealed, String>;
    async fn open(&self, sealed: &Sealed, passphrase: &Passphrase) -> Result<SecretKey, OpenError>;
}

/// The delay before the next try after `failures` wrong passphrases in a row: 1 s, 2 s, 4 s…
/// up to 30 s.
pub fn retry_delay_ms(failures: u32) -> f64 {
    match failures {
        0 => 0.0,
        n => (FIRST_DELAY_MS * 2f64.powi(n.saturating_sub(1).min(16) as i32)).min(MAX_DELAY_MS),
    }
}

/// The unlock tries of one server, in the worker's memory: one at a time, and after a wrong
/// passphrase none before the delay has passed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Throttle {
    failures: u32,
    not_before: f64,
    /// A try is running (deriving the key takes a while).
    pub busy: bool,
    /// What the last try came to, for the popup.
    pub error: Option<Text>,
}

impl Throttle {
    /// Whether a try may run now; it is then running until [`Throttle::failed`] or the end.
    pub fn admit(&mut self, now: f64) -> bool {
        if self.busy {
            return false;
        }
        if now < self.not_before {
            let secs = ((self.not_before - now) / 1000.0).ceil();
            self.error = Some(Text::new("unlock_wait").arg(secs));
            return false;
        }
        self.busy = true;
        self.error = None;
        true
    }

    pub fn failed(&mut self, now: f64) {
        self.busy = false;
        self.failures = self.failures.saturating_add(1);
        let delay = retry_delay_ms(self.failures);
        self.not_before = now + delay;
        self.error = Some(Text::new("unlock_wrong").arg((delay / 1000.0).ceil()));
    }

    /// A try that failed for another reason: no delay for that.
    pub fn broke(&mut self, why: Text) {
        self.busy = false;
        self.error = Some(why);
    }
}

/// The popup's unlock form: shown while the secret key a tab needs is locked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlockPrompt {
    pub server: ServerId,
    pub server_name: String,
    pub busy: bool,
    pub error: Option<Text>,
}

impl UnlockPrompt {
    pub fn of(server: &ServerConfig, throttle: Option<&Throttle>) -> UnlockPrompt {
        UnlockPrompt {
            server: server.id.clone(),
            server_name: server.name.clone(),
            busy: throttle.is_some_and(|t| t.busy),
            error: throttle.and_then(|t| t.error.clone()),
        }
    }
}

/// Forgets each remembered secret key whose time is up at `now`, clear and sealed: the
/// user is asked for it again (the duration they chose stays). The servers it forgot.
pub fn expire_remembered(settings: &mut Settings, now: f64) -> Vec<ServerId> {
    let mut expired = Vec::new();
    for server in &mut settings.servers {
        if server.remember_expired(now) {
            server.secret_key = None;
            server.locked_secret = None;
            server.remember_until = None;
            expired.push(server.id.clone());
        }
    }
    expired
}

/// A server's secret as the options page saves it: the key typed, or the one kept.
#[derive(Debug, PartialEq)]
pub struct SavedSecret {
    pub secret_key: Option<SecretKey>,
    pub locked_secret: Option<Sealed>,
    pub remember_until: Option<f64>,
}

/// What a save keeps of `existing`'s secret, or `Err` with what the user must do.
/// - A key typed anew replaces whatever was kept, the sealed form too (a forgotten
///   passphrase is no lockout), and starts its remember duration again.
/// - Otherwise the kept key stays, if the URL is the same (a secret goes only to the server
///   it was entered for); its lock stays while it is remembered, and its duration runs on
///   unless the duration changed.
pub fn secret_for_save(
    existing: Option<&ServerConfig>,
    url: &ServerUrl,
    typed: Option<SecretKey>,
    remember: Remember,
    now: f64,
) -> Result<SavedSecret, Text> {
    if let Some(secret) = typed {
        return Ok(SavedSecret {
            secret_key: Some(secret),
            locked_secret: None,
            remember_until: remember.until(now),
        });
    }
    let Some(kept) = existing.filter(|s| &s.server_url == url) else {
        return Err(Text::new(match existing {
            Some(_) => "options_url_changed",
            None => "options_no_secret",
        }));
    };
    let remember_until = match kept.remember == remember {
        true => kept.remember_until,
        false => remember.until(now),
    };
    match (
        &kept.secret_key,
        &kept.locked_secret,
        remember.is_remembered(),
    ) {
        (None, None, _) => Err(Text::new("options_no_secret")),
        (None, Some(_), false) => Err(Text::new("options_secret_locked_memory_only")),
        (secret, locked, remembered) => Ok(SavedSecret {
            secret_key: secret.clone(),
            locked_secret: locked.clone().filter(|_| remembered),
            remember_until,
        }),
    }
}

impl<S: Shell + 'static> Worker<S> {
    /// A popup's passphrase for `server`'s locked secret key. A wrong one changes nothing
    /// stored and delays the next try; the right one puts the clear key in `storage.session`
    /// and every open popup goes on where it stopped.
    pub(crate) async fn unlock(
        self: &Rc<Self>,
        tab: TabId,
        server: ServerId,
        passphrase: Passphrase,
    ) {
        let settings = self.load_settings().await;
        let sealed = settings
            .server(&server)
            .filter(|s| s.secret_key.is_none())
            .and_then(|s| s.locked_secret.clone());
        // Unlocked meanwhile (another popup), or no longer locked: show what is.
        let Some(sealed) = sealed else {
            return self.render_tab(tab);
        };
        let now = self.shell.now_ms();
        let admitted = self.throttle(&server, |t| t.admit(now));
        if !admitted {
            return self.render_watched();
        }
        self.render_watched();
        let opened = self.shell.crypto().open(&sealed, &passphrase).await;
        let now = self.shell.now_ms();
        let secret = match opened {
            Ok(secret) => secret,
            Err(OpenError::WrongPassphrase) => {
                self.warn(&format!("a wrong passphrase for server {server}"));
                self.throttle(&server, |t| t.failed(now));
                return self.render_watched();
            }
            Err(OpenError::Failed(why)) => {
                self.warn(&format!("unlocking server {server} failed: {why}"));
                self.throttle(&server, |t| t.broke(Text::new("unlock_failed").arg(why)));
                return self.render_watched();
            }
        };
        // Deriving took a while: the settings may have changed since.
        let mut settings = self.load_settings().await;
        let still_locked = settings
            .server_mut(&server)
            .filter(|s| s.locked_secret.as_ref() == Some(&sealed));
        if let Some(config) = still_locked {
            config.secret_key = Some(secret);
            if let Err(err) = self.store().save_settings(&settings).await {
                self.throttle(&server, |t| t.broke(err.text()));
                return self.render_watched();
            }
        }
        self.state.borrow_mut().unlocks.remove(&server);
        self.settings_saved(settings);
    }

    /// Changes `server`'s unlock tries with `f`.
    fn throttle<R>(&self, server: &ServerId, f: impl FnOnce(&mut Throttle) -> R) -> R {
        f(self
            .state
            .borrow_mut()
            .unlocks
            .entry(server.clone())
            .or_default())
    }

    fn render_watched(&self) {
        for tab in self.watched_tabs() {
            self.render_tab(tab);
        }
    }

    /// The options page's "Lock with this passphrase": the remembered key is sealed, and
    /// from then on only its sealed form is stored in `storage.local`; it stays unlocked for
    /// this browser session. Also changes the passphrase of a key that is unlocked.
    pub(crate) async fn set_passphrase(
        self: &Rc<Self>,
        settings: Settings,
        id: ServerId,
        passphrase: Passphrase,
    ) -> OptionsReply {
        let error = |message: Text| OptionsReply::Error { message };
        let Some(server) = settings.server(&id) else {
            return error(Text::new("options_server_gone"));
        };
        if !server.remember.is_remembered() {
            return error(Text::new("options_passphrase_needs_remember"));
        }
        let Some(secret) = server.secret_key.clone() else {
            return error(Text::new(match server.locked_secret {
                Some(_) => "options_passphrase_key_locked",
                None => "options_passphrase_no_secret",
            }));
        };
        let sealed = match self.shell.crypto().seal(&secret, &passphrase).await {
            Ok(sealed) => sealed,
            Err(why) => return error(Text::new("options_passphrase_seal_failed").arg(why)),
        };
        // Deriving took a while: seal only the key that is still there.
        let mut settings = self.load_settings().await;
        match settings.server_mut(&id) {
            Some(s) if s.secret_key.as_ref() == Some(&secret) && s.remember.is_remembered() => {
                s.locked_secret = Some(sealed);
            }
            _ => return error(Text::new("options_settings_changed")),
        }
        self.state.borrow_mut().unlocks.remove(&id);
        self.save_and_reply(settings, Some(id)).await
    }

    /// "Lock now": the clear key leaves `storage.session`; the passphrase is needed again.
    pub(crate) async fn lock_now(
        self: &Rc<Self>,
        mut settings: Settings,
        id: ServerId,
    ) -> OptionsReply {
        let Some(server) = settings.server_mut(&id) else {
            return OptionsReply::Error {
                message: Text::new("options_server_gone"),
            };
        };
        if server.locked_secret.is_none() {
            return OptionsReply::Error {
                message: Text::new("options_lock_no_passphrase"),
            };
        }
        server.secret_key = None;
        self.save_and_reply(settings, Some(id)).await
    }
}

/// Standard base64 with padding, for the sealed form's bytes.
pub mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                match i <= chunk.len() {
                    true => out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char),
                    false => out.push('='),
                }
            }
        }
        out
    }

    /// `None` unless `text` is canonical padded base64.
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let text = text.as_bytes();
        if text.len() % 4 != 0 {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() / 4 * 3);
        for (at, chunk) in text.chunks(4).enumerate() {
            let last = at + 1 == text.len() / 4;
            let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 || (pad > 0 && !last) {
                return None;
            }
            let mut n = 0u32;
            for &c in &chunk[..4 - pad] {
                let v = ALPHABET.iter().position(|&a| a == c)?;
                n = (n << 6) | v as u32;
            }
            n <<= 6 * pad as u32;
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            // Bits past the last byte must be zero: one text per byte string.
            if bytes[3 - pad..].iter().any(|&b| b != 0) {
                return None;
            }
            out.extend_from_slice(&bytes[..3 - pad]);
        }
        Some(out)
    }
}

/// A stand-in for WebCrypto in the native tests (the real one runs in the Wasm tests): the
/// same shapes and failure modes, no real cryptography.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) mod fake {
    use super::*;
    use std::cell::Cell;
    use std::hash::{Hash, Hasher};

    #[derive(Default)]
    pub struct FakeCrypto {
        sealed: Cell<u8>,
        /// How many times a key was derived.
        pub derived: Cell<u32>,
    }

    fn hash(parts: &[&[u8]]) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        parts.hash(&mut h);
        h.finish()
    }

    fn keystream(passphrase: &Passphrase, salt: &[u8], len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| hash(&[passphrase.expose().as_bytes(), salt, &i.to_le_bytes()]) as u8)
            .collect()
    }

    impl Crypto for FakeCrypto {
        async fn seal(
            &self,
            secret: &SecretKey,
            passphrase: &Passphrase,
        ) -> Result<Sealed, String> {
            self.derived.set(self.derived.get() + 1);
            self.sealed.set(self.sealed.get().wrapping_add(1));
            let (salt, iv) = ([self.sealed.get(); SALT_LEN], [self.sealed.get(); IV_LEN]);
            let plain = secret.expose().as_bytes();
            let mut out: Vec<u8> = plain
                .iter()
                .zip(keystream(passphrase, &salt, plain.len()))
                .map(|(p, k)| p ^ k)
                .collect();
            let tag = hash(&[passphrase.expose().as_bytes(), &salt, plain]).to_le_bytes();
            out.extend(tag.iter().chain(tag.iter()));
            Ok(Sealed::new(&salt, &iv, &out))
        }

        async fn open(
            &self,
            sealed: &Sealed,
            passphrase: &Passphrase,
        ) -> Result<SecretKey, OpenError> {
            self.derived.set(self.derived.get() + 1);
            let parts = sealed.parts().map_err(OpenError::Failed)?;
            let (body, tag) = parts.ciphertext.split_at(parts.ciphertext.len() - TAG_LEN);
            let plain: Vec<u8> = body
                .iter()
                .zip(keystream(passphrase, &parts.salt, body.len()))
                .map(|(c, k)| c ^ k)
                .collect();
            let expected = hash(&[passphrase.expose().as_bytes(), &parts.salt, &plain]);
            if tag[..8] != expected.to_le_bytes() {
                return Err(OpenError::WrongPassphrase);
            }
            let text = String::from_utf8(plain).map_err(|e| OpenError::Failed(e.to_string()))?;
            SecretKey::parse(&text).map_err(|e| OpenError::Failed(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "THISISMYSECURETOKEN";

    fn config(remember: Remember) -> ServerConfig {
        ServerConfig {
            server_url: ServerUrl::parse("https://wpp.example.com").unwrap(),
            remember,
            secret_key: Some(SecretKey::parse(SECRET).unwrap()),
            ..ServerConfig::default()
        }
    }

    fn sealed() -> Sealed {
        Sealed::new(&[7; SALT_LEN], &[9; IV_LEN], &[1; 40])
    }

    #[test]
    fn the_delay_doubles_from_one_second_up_to_thirty() {
        let delays: Vec<f64> = (0..9).map(retry_delay_ms).collect();
        assert_eq!(
            delays,
            [0.0, 1e3, 2e3, 4e3, 8e3, 16e3, 30e3, 30e3, 30e3],
            "seconds after 0..8 failures"
        );
        assert_eq!(retry_delay_ms(u32::MAX), 30e3);
    }

    #[test]
    fn the_throttle_admits_one_try_at_a_time_and_none_before_the_delay() {
        let mut t = Throttle::default();
        assert!(t.admit(0.0));
        assert!(!t.admit(0.0), "a second try while one runs");
        t.failed(500.0);
        let error = |t: &Throttle| t.error.as_ref().map(Text::english);
        assert_eq!(
            error(&t).as_deref(),
            Some("Wrong passphrase. Try again in 1 s.")
        );
        assert!(!t.admit(1_000.0));
        assert_eq!(
            error(&t).as_deref(),
            Some("Wrong passphrase. Wait 1 s before the next try.")
        );
        assert!(t.admit(1_500.0));
        t.failed(2_000.0);
        assert!(!t.admit(3_999.0), "2 s after the second");
        assert!(t.admit(4_000.0));
        t.broke(Text::new("unlock_failed").arg("storage failed"));
        assert!(
            t.admit(4_000.0),
            "no delay for a failure that is not a wrong passphrase"
        );
    }

    #[test]
    fn passphrases_have_8_to_1024_characters_and_never_print() {
        assert!(Passphrase::parse("1234567").is_err());
        assert!(Passphrase::parse("12345678").is_ok());
        assert!(
            Passphrase::parse(&"é".repeat(1024)).is_ok(),
            "characters, not bytes"
        );
        assert!(Passphrase::parse(&"x".repeat(1025)).is_err());
        let p = Passphrase::parse("correct horse battery").unwrap();
        assert_eq!(format!("{p:?}"), "Passphrase(<redacted>)");
        let wire: Result<Passphrase, _> = serde_json::from_value(serde_json::json!("short"));
        assert!(!wire.unwrap_err().to_string().contains("short"));
    }

    #[test]
    fn base64_round_trips_and_refuses_what_is_not_canonical() {
        for bytes in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0xff; 33],
        ] {
            let text = base64::encode(bytes);
            assert_eq!(base64::decode(&text).as_deref(), Some(bytes), "{text}");
        }
        assert_eq!(base64::encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64::encode(b"fo"), "Zm8=");
        for bad in ["Zm8", "Zm9=", "Z===", "Zm=8", "Zm8=Zm8=", "Zm-_", "Zm8 "] {
            assert_eq!(base64::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_sealed_form_is_checked_when_read() {
        let json = serde_json::to_value(sealed()).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["kdf"], "PBKDF2-SHA-256");
        assert_eq!(json["iterations"], 600_000);
        assert_eq!(
            base64::decode(json["salt"].as_str().unwrap())
                .unwrap()
                .len(),
            16
        );
        assert_eq!(
            serde_json::from_value::<Sealed>(json.clone()).unwrap(),
            sealed()
        );
        for (field, bad) in [
            ("v", serde_json::json!(2)),
            ("kdf", serde_json::json!("PBKDF2-SHA-1")),
            ("iterations", serde_json::json!(1000)),
            ("iterations", serde_json::json!(2_000_000_000)),
            ("salt", serde_json::json!(base64::encode(&[1; 8]))),
            ("iv", serde_json::json!(base64::encode(&[1; 16]))),
            ("ciphertext", serde_json::json!(base64::encode(&[1; 16]))),
            ("ciphertext", serde_json::json!("not base64!")),
        ] {
            let mut wrong = json.clone();
            wrong[field] = bad.clone();
            assert!(
                serde_json::from_value::<Sealed>(wrong).is_err(),
                "{field}: {bad}"
            );
        }
    }

    #[test]
    fn a_remembered_key_expires_at_its_time_and_only_then() {
        let now = 1.8e12;
        let mut settings = Settings::default();
        settings.servers[0] = config(Remember::Days7);
        settings.servers[0].remember_until = Remember::Days7.until(now);
        settings.servers[0].locked_secret = Some(sealed());
        let mut always = config(Remember::Always);
        always.id = ServerId::parse("s2").unwrap();
        settings.servers.push(always);
        let week = 7.0 * 24.0 * 3600.0 * 1000.0;
        assert_eq!(settings.servers[0].remember_until, Some(now + week));
        assert!(expire_remembered(&mut settings, now + week - 1.0).is_empty());
        assert_eq!(
            expire_remembered(&mut settings, now + week),
            [ServerId::first()]
        );
        let s1 = &settings.servers[0];
        assert_eq!(
            (&s1.secret_key, &s1.locked_secret, s1.remember_until),
            (&None, &None, None)
        );
        assert_eq!(s1.remember, Remember::Days7, "the user's choice stays");
        assert!(settings.servers[1].secret_key.is_some(), "always is always");
        assert!(expire_remembered(&mut settings, f64::MAX).is_empty());
    }

    #[test]
    fn a_save_keeps_or_replaces_the_secret_as_the_form_says() {
        let now = 1.8e12;
        let url = ServerUrl::parse("https://wpp.example.com").unwrap();
        let typed = || Some(SecretKey::parse("NEWSECRET").unwrap());
        let mut locked = config(Remember::Days30);
        locked.remember_until = Some(now + 5.0);
        locked.locked_secret = Some(sealed());
        locked.secret_key = None;

        // A key typed anew replaces the sealed one: a forgotten passphrase is no lockout.
        let saved = secret_for_save(Some(&locked), &url, typed(), Remember::Days30, now).unwrap();
        assert_eq!(saved.secret_key, typed());
        assert_eq!(saved.locked_secret, None);
        assert_eq!(saved.remember_until, Remember::Days30.until(now));

        // Saving other fields keeps the lock and the running duration.
        let saved = secret_for_save(Some(&locked), &url, None, Remember::Days30, now).unwrap();
        assert_eq!(saved.locked_secret, Some(sealed()));
        assert_eq!(
            (saved.secret_key, saved.remember_until),
            (None, Some(now + 5.0))
        );
        // A new duration starts now.
        let saved = secret_for_save(Some(&locked), &url, None, Remember::Always, now).unwrap();
        assert_eq!(saved.remember_until, None);
        // Memory only needs the clear key, which a locked one is not.
        assert!(secret_for_save(Some(&locked), &url, None, Remember::Session, now).is_err());
        let mut unlocked = locked.clone();
        unlocked.secret_key = typed();
        let saved = secret_for_save(Some(&unlocked), &url, None, Remember::Session, now).unwrap();
        assert_eq!((saved.secret_key, saved.locked_secret), (typed(), None));

        // A secret goes only to the server it was entered for.
        let moved = ServerUrl::parse("https://other.example.com").unwrap();
        let err = secret_for_save(Some(&unlocked), &moved, None, Remember::Days30, now);
        assert_eq!(
            err.map(drop).map_err(|t| t.english()),
            Err("The URL changed: enter this server's secret key again.".to_owned())
        );
        assert!(secret_for_save(None, &url, None, Remember::Always, now).is_err());
    }
}
