//! Credentials at rest (SPEC §5): envelope encryption with AES-256-GCM.
//!
//! Each record gets a fresh random data key (DEK). The DEK encrypts the credentials; the newest
//! key-encryption key (KEK) wraps the DEK. The organization, project and record id are bound in
//! as associated data of both layers, so a ciphertext copied to another row does not open; the
//! KEK's id is bound into the wrapping too. Rotation re-wraps the DEK under a new KEK and leaves
//! the encrypted credentials as they are.
//!
//! Blob layout, version 1:
//! `0x01 | kek_id_len (u8) | kek_id | wrap_nonce (12) | wrapped_dek (48) | data_nonce (12) | ciphertext+tag`

use std::fmt;

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::Credentials;
use crate::tenant::TenantScope;

const BLOB_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const WRAPPED_DEK_LEN: usize = 32 + 16;

/// Encrypted credentials as stored, with the key names kept beside them in the clear.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCredentials {
    pub kek_id: String,
    pub blob: Vec<u8>,
    pub fields: Vec<String>,
}

impl fmt::Debug for SealedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedCredentials")
            .field("kek_id", &self.kek_id)
            .field("len", &self.blob.len())
            .field("fields", &self.fields)
            .finish()
    }
}

/// What a ciphertext is bound to: the record and its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub scope: &'a TenantScope,
    pub record_id: Uuid,
}

impl Binding<'_> {
    fn aad(&self, layer: &str, kek_id: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(96);
        aad.extend_from_slice(b"modelreg/credentials/v1\0");
        aad.extend_from_slice(layer.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.scope.org.as_str().as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.scope.project.as_str().as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.record_id.as_bytes());
        aad.push(0);
        aad.extend_from_slice(kek_id.as_bytes());
        aad
    }
}

/// A key-encryption key. The bytes are zeroized on drop and never printed.
#[derive(Clone)]
pub struct Kek {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl Kek {
    /// A KEK with an id derived from its bytes, so the same key always has the same id.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let key = Zeroizing::new(key);
        let mut h = Sha256::new();
        h.update(b"modelreg-kek-id\0");
        h.update(key.as_slice());
        let d = h.finalize();
        let id = format!(
            "k{}",
            d[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Kek { id, key }
    }

    /// Parses a base64-encoded 32-byte key, as in `MODELREG_MASTER_KEY`.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| "master key is not valid base64".to_string())?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "master key must be 32 bytes (base64 of 32 random bytes), got {}",
                bytes.len()
            )
        })?;
        Ok(Kek::from_bytes(key))
    }

    /// A new random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        let kek = Kek::from_bytes(key);
        zeroize::Zeroize::zeroize(&mut key);
        kek
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as base64, for writing a key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.key.as_slice()))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(self.key.as_slice()).expect("32-byte key")
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a stored ciphertext could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the credentials were encrypted with key '{0}', which is not configured")]
    UnknownKey(String),
    #[error("the stored credentials are malformed")]
    Malformed,
    #[error(
        "the stored credentials failed authentication (tampered, or moved from another record)"
    )]
    Tampered,
}

/// The configured KEKs. The last one is the newest and wraps every new data key; the others
/// still open what they wrapped.
#[derive(Debug)]
pub struct Keyring {
    keks: Vec<Kek>,
}

impl Keyring {
    pub fn new(keks: Vec<Kek>) -> Result<Self, String> {
        if keks.is_empty() {
            return Err("at least one master key is required".into());
        }
        for (i, k) in keks.iter().enumerate() {
            if keks[..i].iter().any(|o| o.id == k.id) {
                return Err(format!("master key '{}' is configured twice", k.id));
            }
        }
        Ok(Keyring { keks })
    }

    pub fn current(&self) -> &Kek {
        self.keks.last().expect("non-empty")
    }

    /// Every configured KEK, oldest first.
    pub fn keks(&self) -> &[Kek] {
        &self.keks
    }

    /// A key for `purpose` derived from each KEK (HMAC-SHA256 of the purpose under the KEK),
    /// with the KEK's id, newest first: keys every replica shares, without using a KEK itself
    /// for anything but wrapping.
    pub fn derive(&self, purpose: &str) -> Vec<(String, Zeroizing<[u8; 32]>)> {
        use hmac::{KeyInit, Mac};
        self.keks
            .iter()
            .rev()
            .map(|k| {
                let mut mac = hmac::Hmac::<Sha256>::new_from_slice(k.key.as_slice())
                    .expect("HMAC takes any key length");
                mac.update(b"modelreg-derive\0");
                mac.update(purpose.as_bytes());
                (
                    k.id.clone(),
                    Zeroizing::new(mac.finalize().into_bytes().into()),
                )
            })
            .collect()
    }

    /// Seals under the newest KEK.
    pub fn seal(&self, binding: Binding<'_>, credentials: &Credentials) -> SealedCredentials {
        self.seal_with(self.current(), binding, credentials)
    }

    /// Seals under the KEK `kek_id` (the newest when it is not configured).
    pub fn seal_under(
        &self,
        kek_id: &str,
        binding: Binding<'_>,
        credentials: &Credentials,
    ) -> SealedCredentials {
        let kek = self
            .keks
            .iter()
            .find(|k| k.id == kek_id)
            .unwrap_or_else(|| self.current());
        self.seal_with(kek, binding, credentials)
    }

    fn seal_with(
        &self,
        kek: &Kek,
        binding: Binding<'_>,
        credentials: &Credentials,
    ) -> SealedCredentials {
        let mut dek = Zeroizing::new([0u8; 32]);
        fill_random(dek.as_mut_slice());
        let mut wrap_nonce = [0u8; NONCE_LEN];
        fill_random(&mut wrap_nonce);
        let mut data_nonce = [0u8; NONCE_LEN];
        fill_random(&mut data_nonce);

        let wrapped = kek
            .cipher()
            .encrypt(
                &Nonce::from(wrap_nonce),
                Payload {
                    msg: dek.as_slice(),
                    aad: &binding.aad("dek", &kek.id),
                },
            )
            .expect("AES-GCM encryption of 32 bytes cannot fail");
        let data_cipher = Aes256Gcm::new_from_slice(dek.as_slice()).expect("32-byte key");
        let ciphertext = data_cipher
            .encrypt(
                &Nonce::from(data_nonce),
                Payload {
                    msg: credentials.expose_json().as_bytes(),
                    aad: &binding.aad("data", ""),
                },
            )
            .expect("AES-GCM encryption of at most 64 KiB cannot fail");

        let blob = encode_blob(&kek.id, &wrap_nonce, &wrapped, &data_nonce, &ciphertext);
        SealedCredentials {
            kek_id: kek.id.clone(),
            blob,
            fields: credentials.fields().to_vec(),
        }
    }

    pub fn open(
        &self,
        binding: Binding<'_>,
        sealed: &SealedCredentials,
    ) -> Result<Credentials, OpenError> {
        let blob = Blob::parse(&sealed.blob)?;
        let dek = self.unwrap_dek(binding, &blob)?;
        let data_cipher =
            Aes256Gcm::new_from_slice(dek.as_slice()).map_err(|_| OpenError::Malformed)?;
        let plain = Zeroizing::new(
            data_cipher
                .decrypt(
                    &nonce(blob.data_nonce)?,
                    Payload {
                        msg: blob.ciphertext,
                        aad: &binding.aad("data", ""),
                    },
                )
                .map_err(|_| OpenError::Tampered)?,
        );
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&plain).map_err(|_| OpenError::Malformed)?;
        Credentials::from_map(map).map_err(|_| OpenError::Malformed)
    }

    /// Re-wraps the data key under the newest KEK. The encrypted credentials are untouched,
    /// and checked: a record that does not open is not re-wrapped.
    pub fn rewrap(
        &self,
        binding: Binding<'_>,
        sealed: &SealedCredentials,
    ) -> Result<SealedCredentials, OpenError> {
        self.open(binding, sealed)?;
        let blob = Blob::parse(&sealed.blob)?;
        let dek = self.unwrap_dek(binding, &blob)?;
        let kek = self.current();
        let mut wrap_nonce = [0u8; NONCE_LEN];
        fill_random(&mut wrap_nonce);
        let wrapped = kek
            .cipher()
            .encrypt(
                &Nonce::from(wrap_nonce),
                Payload {
                    msg: dek.as_slice(),
                    aad: &binding.aad("dek", &kek.id),
                },
            )
            .expect("AES-GCM encryption of 32 bytes cannot fail");
        Ok(SealedCredentials {
            kek_id: kek.id.clone(),
            blob: encode_blob(
                &kek.id,
                &wrap_nonce,
                &wrapped,
                blob.data_nonce,
                blob.ciphertext,
            ),
            fields: sealed.fields.clone(),
        })
    }

    /// The ids of the configured KEKs, oldest first.
    pub fn ids(&self) -> Vec<&str> {
        self.keks.iter().map(|k| k.id.as_str()).collect()
    }

    fn unwrap_dek(
        &self,
        binding: Binding<'_>,
        blob: &Blob<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let kek = self
            .keks
            .iter()
            .find(|k| k.id == blob.kek_id)
            .ok_or_else(|| OpenError::UnknownKey(blob.kek_id.to_owned()))?;
        let dek = kek
            .cipher()
            .decrypt(
                &nonce(blob.wrap_nonce)?,
                Payload {
                    msg: blob.wrapped,
                    aad: &binding.aad("dek", blob.kek_id),
                },
            )
            .map_err(|_| OpenError::Tampered)?;
        Ok(Zeroizing::new(dek))
    }
}

/// The parts of a version-1 blob.
struct Blob<'a> {
    kek_id: &'a str,
    wrap_nonce: &'a [u8],
    wrapped: &'a [u8],
    data_nonce: &'a [u8],
    ciphertext: &'a [u8],
}

impl<'a> Blob<'a> {
    fn parse(b: &'a [u8]) -> Result<Blob<'a>, OpenError> {
        if b.len() < 2 || b[0] != BLOB_VERSION {
            return Err(OpenError::Malformed);
        }
        let id_len = b[1] as usize;
        let rest = &b[2..];
        if rest.len() < id_len + NONCE_LEN * 2 + WRAPPED_DEK_LEN + 16 {
            return Err(OpenError::Malformed);
        }
        let (id, rest) = rest.split_at(id_len);
        let kek_id = std::str::from_utf8(id).map_err(|_| OpenError::Malformed)?;
        let (wrap_nonce, rest) = rest.split_at(NONCE_LEN);
        let (wrapped, rest) = rest.split_at(WRAPPED_DEK_LEN);
        let (data_nonce, ciphertext) = rest.split_at(NONCE_LEN);
        Ok(Blob {
            kek_id,
            wrap_nonce,
            wrapped,
            data_nonce,
            ciphertext,
        })
    }
}

fn encode_blob(
    kek_id: &str,
    wrap_nonce: &[u8],
    wrapped: &[u8],
    data_nonce: &[u8],
    ciphertext: &[u8],
) -> Vec<u8> {
    let id = kek_id.as_bytes();
    let mut blob = Vec::with_capacity(
        2 + id.len() + wrap_nonce.len() + wrapped.len() + data_nonce.len() + ciphertext.len(),
    );
    blob.push(BLOB_VERSION);
    blob.push(u8::try_from(id.len()).expect("kek ids are short"));
    blob.extend_from_slice(id);
    blob.extend_from_slice(wrap_nonce);
    blob.extend_from_slice(wrapped);
    blob.extend_from_slice(data_nonce);
    blob.extend_from_slice(ciphertext);
    blob
}

fn nonce(bytes: &[u8]) -> Result<aes_gcm::Nonce<aes_gcm::aead::consts::U12>, OpenError> {
    Nonce::try_from(bytes).map_err(|_| OpenError::Malformed)
}

/// Fills `buf` from the operating system's CSPRNG. A machine without one cannot run modelreg
/// safely, so failure aborts.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{OrgId, ProjectId};

    fn scope(org: &str, project: &str) -> TenantScope {
        TenantScope::new(
            OrgId::parse(org).unwrap(),
            ProjectId::parse(project).unwrap(),
        )
    }

    fn creds(json: &str) -> Credentials {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn seal_then_open() {
        let ring = Keyring::new(vec![Kek::generate()]).unwrap();
        let s = scope("o", "p");
        let id = Uuid::now_v7();
        let c = creds(r#"{"api_key":"sk-very-secret-1234","org":"x"}"#);
        let sealed = ring.seal(
            Binding {
                scope: &s,
                record_id: id,
            },
            &c,
        );
        assert_eq!(sealed.fields, ["api_key", "org"]);
        assert_eq!(sealed.kek_id, ring.current().id());
        let hay = String::from_utf8_lossy(&sealed.blob);
        assert!(!hay.contains("sk-very-secret"));
        let opened = ring
            .open(
                Binding {
                    scope: &s,
                    record_id: id,
                },
                &sealed,
            )
            .unwrap();
        assert_eq!(opened.expose_json(), c.expose_json());
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_or_tenant_fails() {
        let ring = Keyring::new(vec![Kek::generate()]).unwrap();
        let s = scope("o", "p");
        let id = Uuid::now_v7();
        let sealed = ring.seal(
            Binding {
                scope: &s,
                record_id: id,
            },
            &creds(r#"{"k":"v"}"#),
        );
        let other_row = Binding {
            scope: &s,
            record_id: Uuid::now_v7(),
        };
        assert_eq!(
            ring.open(other_row, &sealed).unwrap_err(),
            OpenError::Tampered
        );
        let other_org = scope("o2", "p");
        let moved = Binding {
            scope: &other_org,
            record_id: id,
        };
        assert_eq!(ring.open(moved, &sealed).unwrap_err(), OpenError::Tampered);
        let other_project = scope("o", "p2");
        let moved = Binding {
            scope: &other_project,
            record_id: id,
        };
        assert_eq!(ring.open(moved, &sealed).unwrap_err(), OpenError::Tampered);
    }

    #[test]
    fn tampered_or_unknown_key_fails_loudly() {
        let ring = Keyring::new(vec![Kek::generate()]).unwrap();
        let s = scope("o", "p");
        let b = Binding {
            scope: &s,
            record_id: Uuid::now_v7(),
        };
        let mut sealed = ring.seal(b, &creds(r#"{"k":"v"}"#));
        let last = sealed.blob.len() - 1;
        sealed.blob[last] ^= 1;
        assert_eq!(ring.open(b, &sealed).unwrap_err(), OpenError::Tampered);
        sealed.blob.truncate(10);
        assert_eq!(ring.open(b, &sealed).unwrap_err(), OpenError::Malformed);

        let sealed = ring.seal(b, &creds(r#"{"k":"v"}"#));
        let other = Keyring::new(vec![Kek::generate()]).unwrap();
        assert!(matches!(
            other.open(b, &sealed),
            Err(OpenError::UnknownKey(_))
        ));
    }

    #[test]
    fn older_keks_still_open_and_newest_seals() {
        let old = Kek::generate();
        let old_b64 = old.to_base64();
        let ring = Keyring::new(vec![old]).unwrap();
        let s = scope("o", "p");
        let b = Binding {
            scope: &s,
            record_id: Uuid::now_v7(),
        };
        let sealed = ring.seal(b, &creds(r#"{"k":"v"}"#));
        let new = Kek::generate();
        let new_id = new.id().to_owned();
        let ring2 = Keyring::new(vec![Kek::from_base64(&old_b64).unwrap(), new]).unwrap();
        assert!(ring2.open(b, &sealed).is_ok());
        assert_eq!(ring2.seal(b, &creds(r#"{"k":"v"}"#)).kek_id, new_id);
    }

    #[test]
    fn kek_ids_are_stable_and_keys_validated() {
        let k = Kek::generate();
        let again = Kek::from_base64(&k.to_base64()).unwrap();
        assert_eq!(k.id(), again.id());
        assert!(Kek::from_base64("not base64!").is_err());
        assert!(Kek::from_base64(&STANDARD.encode([1u8; 16])).is_err());
        assert!(!format!("{k:?}").contains(k.to_base64().as_str()));
    }

    #[test]
    fn rotation_rewraps_the_data_key_only() {
        let old = Kek::generate();
        let old_b64 = old.to_base64();
        let ring = Keyring::new(vec![old]).unwrap();
        let s = scope("o", "p");
        let b = Binding {
            scope: &s,
            record_id: Uuid::now_v7(),
        };
        let sealed = ring.seal(b, &creds(r#"{"k":"v"}"#));
        let new = Kek::generate();
        let new_id = new.id().to_owned();
        let ring2 = Keyring::new(vec![Kek::from_base64(&old_b64).unwrap(), new]).unwrap();
        let rewrapped = ring2.rewrap(b, &sealed).unwrap();
        assert_eq!(rewrapped.kek_id, new_id);
        // The data nonce and the encrypted credentials (the blob's last 12 + 9 + 16 bytes) are
        // unchanged; the wrapping is new.
        let tail = |blob: &[u8]| blob[blob.len() - 37..].to_vec();
        assert_eq!(tail(&rewrapped.blob), tail(&sealed.blob));
        assert_ne!(rewrapped.blob, sealed.blob);
        // The new key alone opens it now.
        let only_new = Keyring::new(vec![
            Kek::from_base64(&ring2.current().to_base64()).unwrap(),
        ])
        .unwrap();
        assert_eq!(
            only_new.open(b, &rewrapped).unwrap().expose_json(),
            r#"{"k":"v"}"#
        );
        assert!(matches!(
            only_new.open(b, &sealed),
            Err(OpenError::UnknownKey(_))
        ));
        // A record that does not open is not re-wrapped.
        let other = Binding {
            scope: &s,
            record_id: Uuid::now_v7(),
        };
        assert_eq!(
            ring2.rewrap(other, &sealed).unwrap_err(),
            OpenError::Tampered
        );
    }
}
