//! WebCrypto as the core's [`Crypto`]: PBKDF2-SHA-256 derives an AES-GCM 256 key from the
//! passphrase, which seals and opens a remembered secret key. `crypto.subtle` is there in
//! the service worker, the Firefox event page, the extension's pages and Node alike. The
//! parameters and the stored form are the core's (`core::lock`); the browser only computes.

use crate::core::lock::{
    Crypto, OpenError, Passphrase, Sealed, SealedParts, ITERATIONS, IV_LEN, SALT_LEN,
};
use crate::core::settings::SecretKey;
use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesDerivedKeyParams, AesGcmParams, CryptoKey, Pbkdf2Params, SubtleCrypto};

pub struct WebCrypto;

/// The global scope's `crypto.subtle`, whatever the global is.
fn subtle() -> Result<SubtleCrypto, String> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into())
        .ok()
        .filter(|c| !c.is_undefined())
        .ok_or("this browser has no WebCrypto")?;
    Ok(crypto.unchecked_into::<web_sys::Crypto>().subtle())
}

fn js_text(err: JsValue) -> String {
    super::browser::js_error_text(&err)
}

async fn call(promise: Result<js_sys::Promise, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(promise?).await
}

fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// The AES-GCM 256 key PBKDF2-SHA-256 derives from the passphrase (in Unicode NFC, so the
/// same passphrase typed on another system opens it too), usable only to encrypt and
/// decrypt, and not extractable.
async fn derive(
    subtle: &SubtleCrypto,
    passphrase: &Passphrase,
    salt: &[u8; SALT_LEN],
    iterations: u32,
) -> Result<CryptoKey, JsValue> {
    let normal: String = js_sys::JsString::from(passphrase.expose())
        .normalize("NFC")
        .into();
    let raw = Uint8Array::from(normal.as_bytes());
    let usage = Array::of1(&"deriveKey".into());
    let base = call(subtle.import_key_with_str("raw", &raw, "PBKDF2", false, &usage)).await?;
    let params = Pbkdf2Params::new_with_str(
        "PBKDF2",
        "SHA-256",
        iterations,
        &Uint8Array::from(&salt[..]),
    );
    let aes = AesDerivedKeyParams::new("AES-GCM", 256);
    let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
    let key = call(subtle.derive_key_with_object_and_object(
        &params,
        base.unchecked_ref(),
        &aes,
        false,
        &usages,
    ))
    .await?;
    Ok(key.unchecked_into())
}

impl Crypto for WebCrypto {
    async fn seal(&self, secret: &SecretKey, passphrase: &Passphrase) -> Result<Sealed, String> {
        let subtle = subtle()?;
        // Fresh for every encryption: the same key sealed twice looks unrelated.
        let salt = random::<SALT_LEN>()?;
        let iv = random::<IV_LEN>()?;
        let key = derive(&subtle, passphrase, &salt, ITERATIONS)
            .await
            .map_err(js_text)?;
        let params = AesGcmParams::new("AES-GCM", &Uint8Array::from(&iv[..]));
        let sealed = call(subtle.encrypt_with_object_and_u8_array(
            &params,
            &key,
            secret.expose().as_bytes(),
        ))
        .await
        .map_err(js_text)?;
        let ciphertext = Uint8Array::new(&sealed).to_vec();
        Ok(Sealed::new(&salt, &iv, &ciphertext))
    }

    async fn open(&self, sealed: &Sealed, passphrase: &Passphrase) -> Result<SecretKey, OpenError> {
        let SealedParts {
            iterations,
            salt,
            iv,
            ciphertext,
        } = sealed.parts().map_err(OpenError::Failed)?;
        let subtle = subtle().map_err(OpenError::Failed)?;
        let key = derive(&subtle, passphrase, &salt, iterations)
            .await
            .map_err(|e| OpenError::Failed(js_text(e)))?;
        let params = AesGcmParams::new("AES-GCM", &Uint8Array::from(&iv[..]));
        // AES-GCM checks its tag first: with another passphrase's key it refuses
        // (`OperationError`) and yields nothing.
        let plain = call(subtle.decrypt_with_object_and_u8_array(&params, &key, &ciphertext))
            .await
            .map_err(|_| OpenError::WrongPassphrase)?;
        let text = String::from_utf8(Uint8Array::new(&plain).to_vec())
            .map_err(|_| OpenError::Failed("the opened key is not text".into()))?;
        SecretKey::parse(&text).map_err(|e| OpenError::Failed(e.to_string()))
    }
}
