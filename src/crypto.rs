//! Encryption at rest with the salt key, readable and writable by LiteLLM.
//!
//! LiteLLM keeps credentials it stores in the database (the string values of a DB model's
//! `litellm_params`) encrypted under a key derived from `LITELLM_SALT_KEY`, or the master key
//! when that is unset: SHA-256 of the key text. Two formats exist and both are read here:
//!
//! - the default, NaCl `SecretBox` (XSalsa20-Poly1305): `nonce(24) || tag(16) || ciphertext`,
//!   URL-safe base64 with padding (older releases wrote standard base64, also accepted);
//! - `v2:gcm:` followed by URL-safe base64 of `nonce(12) || ciphertext || tag(16)` (AES-256-GCM,
//!   no associated data), written when `general_settings.encryption_algorithm` is
//!   `aes-256-gcm`.
//!
//! What must not go in here: where values come from or which ones are secret (see
//! `routing::db_models`). Nothing here logs; a key is never in `Debug` output.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// Marker of LiteLLM's AES-256-GCM values. A colon never occurs in base64, so the prefix tells
/// the two formats apart without trying both.
pub const GCM_PREFIX: &str = "v2:gcm:";
const SECRETBOX_NONCE: usize = 24;
const SECRETBOX_TAG: usize = 16;
const GCM_NONCE: usize = 12;

/// Python's `urlsafe_b64decode` / `b64decode` accept missing or extra padding only as far as
/// the length allows; being indifferent to padding reads everything they wrote.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE_PADDED: GeneralPurpose = base64::engine::general_purpose::URL_SAFE;

/// Which algorithm new values are written with (`general_settings.encryption_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// LiteLLM's default: NaCl `SecretBox`.
    #[default]
    XSalsa20Poly1305,
    Aes256Gcm,
}

impl Algorithm {
    /// LiteLLM's reading of the setting: `aes-256-gcm` (any case) opts in, anything else keeps
    /// the default.
    pub fn from_setting(v: Option<&str>) -> Self {
        match v {
            Some(s) if s.eq_ignore_ascii_case("aes-256-gcm") => Self::Aes256Gcm,
            _ => Self::XSalsa20Poly1305,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("not valid base64")]
    Encoding,
    #[error("too short to be a ciphertext")]
    TooShort,
    #[error("authentication failed (wrong salt key or corrupted value)")]
    Authentication,
    #[error("the plaintext is not UTF-8")]
    Utf8,
}

/// The 32-byte key derived from the salt key.
#[derive(Clone)]
pub struct SaltKey {
    key: [u8; 32],
    write: Algorithm,
}

impl std::fmt::Debug for SaltKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaltKey")
            .field("key", &"<redacted>")
            .field("write", &self.write)
            .finish()
    }
}

impl SaltKey {
    pub fn new(salt: &str, write: Algorithm) -> Self {
        Self {
            key: Sha256::digest(salt.as_bytes()).into(),
            write,
        }
    }

    /// Encrypts `plaintext` in the configured format.
    pub fn encrypt(&self, plaintext: &str) -> Result<String, String> {
        match self.write {
            Algorithm::XSalsa20Poly1305 => self.encrypt_secretbox(plaintext),
            Algorithm::Aes256Gcm => self.encrypt_gcm(plaintext),
        }
    }

    fn encrypt_secretbox(&self, plaintext: &str) -> Result<String, String> {
        let mut nonce = [0u8; SECRETBOX_NONCE];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "the system random source failed".to_string())?;
        let cipher = XSalsa20Poly1305::new(&self.key.into());
        let sealed = cipher
            .encrypt(&nonce.into(), plaintext.as_bytes())
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = Vec::with_capacity(SECRETBOX_NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_PADDED.encode(out))
    }

    fn encrypt_gcm(&self, plaintext: &str) -> Result<String, String> {
        let mut nonce = [0u8; GCM_NONCE];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "the system random source failed".to_string())?;
        let key = self.gcm_key()?;
        let mut buf = plaintext.as_bytes().to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = Vec::with_capacity(GCM_NONCE + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(format!("{GCM_PREFIX}{}", URL_SAFE_PADDED.encode(out)))
    }

    fn gcm_key(&self) -> Result<LessSafeKey, String> {
        UnboundKey::new(&AES_256_GCM, &self.key)
            .map(LessSafeKey::new)
            .map_err(|_| "invalid AES key".to_string())
    }

    /// Decrypts a value in either format.
    pub fn decrypt(&self, value: &str) -> Result<String, DecryptError> {
        if let Some(rest) = value.strip_prefix(GCM_PREFIX) {
            let mut sealed = URL_SAFE_LENIENT
                .decode(rest)
                .map_err(|_| DecryptError::Encoding)?;
            if sealed.len() < GCM_NONCE + AES_256_GCM.tag_len() {
                return Err(DecryptError::TooShort);
            }
            let mut nonce = [0u8; GCM_NONCE];
            nonce.copy_from_slice(&sealed[..GCM_NONCE]);
            let key = self.gcm_key().map_err(|_| DecryptError::Authentication)?;
            let plain = key
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    &mut sealed[GCM_NONCE..],
                )
                .map_err(|_| DecryptError::Authentication)?;
            return String::from_utf8(plain.to_vec()).map_err(|_| DecryptError::Utf8);
        }
        let bytes = decode_legacy(value).ok_or(DecryptError::Encoding)?;
        if bytes.is_empty() {
            // LiteLLM reads an empty value as an empty plaintext.
            return Ok(String::new());
        }
        if bytes.len() < SECRETBOX_NONCE + SECRETBOX_TAG {
            return Err(DecryptError::TooShort);
        }
        let (nonce, sealed) = bytes.split_at(SECRETBOX_NONCE);
        let cipher = XSalsa20Poly1305::new(&self.key.into());
        let plain = cipher
            .decrypt(crypto_secretbox::Nonce::from_slice(nonce), sealed)
            .map_err(|_| DecryptError::Authentication)?;
        String::from_utf8(plain).map_err(|_| DecryptError::Utf8)
    }
}

fn decode_legacy(value: &str) -> Option<Vec<u8>> {
    URL_SAFE_LENIENT
        .decode(value)
        .or_else(|_| STANDARD_LENIENT.decode(value))
        .ok()
}

/// Whether `value` has the shape of a ciphertext (as opposed to a plaintext someone wrote into
/// the table by hand): the `v2:gcm:` marker, or base64 long enough to hold a `SecretBox`.
pub fn looks_encrypted(value: &str) -> bool {
    value.starts_with(GCM_PREFIX)
        || decode_legacy(value).is_some_and(|b| b.len() >= SECRETBOX_NONCE + SECRETBOX_TAG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixture() -> Value {
        let text = include_str!("../tests/fixtures/litellm_salt_ciphertexts.json");
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn decrypts_values_written_by_pynacl_and_by_litellm_aes_gcm() {
        let f = fixture();
        let key = SaltKey::new(f["salt_key"].as_str().unwrap(), Algorithm::default());
        let mut n = 0;
        for section in [
            "xsalsa20_poly1305",
            "aes_256_gcm",
            "xsalsa20_poly1305_std_b64",
        ] {
            for case in f[section].as_array().unwrap() {
                let ct = case["ciphertext"].as_str().unwrap();
                let pt = case["plaintext"].as_str().unwrap();
                assert_eq!(key.decrypt(ct).as_deref(), Ok(pt), "{section}: {ct}");
                assert!(looks_encrypted(ct), "{ct}");
                n += 1;
            }
        }
        assert_eq!(n, 9);
    }

    #[test]
    fn wrong_key_fails_authentication() {
        let f = fixture();
        let key = SaltKey::new("not-the-salt", Algorithm::default());
        for section in ["xsalsa20_poly1305", "aes_256_gcm"] {
            let ct = f[section][1]["ciphertext"].as_str().unwrap();
            assert_eq!(key.decrypt(ct), Err(DecryptError::Authentication));
        }
    }

    #[test]
    fn round_trips_in_both_formats() {
        for algo in [Algorithm::XSalsa20Poly1305, Algorithm::Aes256Gcm] {
            let key = SaltKey::new("sk-1234", algo);
            for pt in ["sk-upstream", "", "ünï ✓", "openai/gpt-4o"] {
                let ct = key.encrypt(pt).unwrap();
                assert_ne!(ct, pt);
                assert_eq!(ct.starts_with(GCM_PREFIX), algo == Algorithm::Aes256Gcm);
                assert_eq!(key.decrypt(&ct).as_deref(), Ok(pt));
                assert!(looks_encrypted(&ct));
            }
            // A fresh nonce per value: the same plaintext never encrypts the same way twice.
            assert_ne!(key.encrypt("x").unwrap(), key.encrypt("x").unwrap());
        }
    }

    #[test]
    fn secretbox_output_is_padded_url_safe_base64_like_litellm() {
        let key = SaltKey::new("k", Algorithm::default());
        let ct = key.encrypt("a").unwrap();
        // 24 + 16 + 1 bytes -> 56 base64 chars with padding.
        assert_eq!(ct.len(), 56);
        assert!(ct.ends_with('='));
        assert!(!ct.contains('+') && !ct.contains('/'));
    }

    #[test]
    fn plaintexts_do_not_look_encrypted() {
        for v in [
            "openai/gpt-4o",
            "http://127.0.0.1:4000/v1",
            "sk-1234",
            "os.environ/OPENAI_API_KEY",
        ] {
            assert!(!looks_encrypted(v), "{v}");
        }
        assert_eq!(
            SaltKey::new("k", Algorithm::default()).decrypt("v2:gcm:AAAA"),
            Err(DecryptError::TooShort)
        );
    }
}
