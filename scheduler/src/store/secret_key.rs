//! The store's secret key: 32 bytes in a file of the scheduler's, with
//! which the store seals every secret value it writes (XChaCha20-Poly1305
//! from RustCrypto: a random 192-bit nonce per value needs no counter kept
//! anywhere, and the tag makes a wrong key or an altered value an error,
//! never garbage). Each value is bound to its secret's id and path, so a
//! sealed value moved to another secret does not open.
//!
//! The file is made (0600, 32 random bytes) when the scheduler starts
//! without one at the default place, the data directory; a key named by
//! `--secret-key-file` must exist. Losing the key loses the secrets: a
//! store whose secrets do not open with the key given refuses to start
//! ([`super::StoreError::SecretKey`]).

use crate::model::secret::{SealError, Sealer};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The key file's name in the data directory, by default.
pub const KEY_FILE: &str = "secret.key";

/// The key's length in bytes.
pub const KEY_BYTES: usize = 32;

/// What a sealed value starts with: the scheme, so another can follow.
const PREFIX: &str = "xchacha20poly1305:";

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    /// The key file could not be read.
    #[error("cannot read the secret key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file could not be made.
    #[error("cannot create the secret key file {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a key.
    #[error("the secret key file {path} holds {len} bytes; a key is exactly {KEY_BYTES} bytes")]
    Length {
        /// The file.
        path: PathBuf,
        /// What it holds.
        len: usize,
    },
}

/// The store's key. Its `Debug` shows nothing of it.
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// The key in `path`; when `create` and the file is absent, a new
    /// random key written there first, readable by its owner only.
    /// Returns whether it was made.
    pub fn load(path: &Path, create: bool) -> Result<(Self, bool), SecretKeyError> {
        let made = create && make(path)?;
        let bytes = std::fs::read(path).map_err(|source| SecretKeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        if bytes.len() != KEY_BYTES {
            return Err(SecretKeyError::Length {
                path: path.to_owned(),
                len: bytes.len(),
            });
        }
        let cipher =
            XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretKeyError::Length {
                path: path.to_owned(),
                len: bytes.len(),
            })?;
        Ok((SecretKey { cipher }, made))
    }

    /// A key of these bytes (tests).
    pub fn from_bytes(bytes: &[u8; KEY_BYTES]) -> Self {
        SecretKey {
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }

    /// The key as the model's sealer.
    pub fn into_sealer(self) -> Arc<dyn Sealer> {
        Arc::new(self)
    }
}

/// Writes a new random key to `path` unless a file is there; whether it
/// wrote one. `create_new` makes a race with another writer harmless.
fn make(path: &Path) -> Result<bool, SecretKeyError> {
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    let mut file = match created {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(source) => {
            return Err(SecretKeyError::Create {
                path: path.to_owned(),
                source,
            })
        }
    };
    let key = XChaCha20Poly1305::generate_key(&mut OsRng);
    let wrap = |source| SecretKeyError::Create {
        path: path.to_owned(),
        source,
    };
    // The umask may have taken bits away, never added them; set 0600 anyway.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(wrap)?;
    file.write_all(&key).map_err(wrap)?;
    file.sync_all().map_err(wrap)?;
    Ok(true)
}

impl Sealer for SecretKey {
    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<String, SealError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .map_err(|_| SealError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    fn open(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>, SealError> {
        let text = sealed.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| SealError::Malformed)?;
        if bytes.len() < 24 {
            return Err(SealError::Malformed);
        }
        let (nonce, body) = bytes.split_at(24);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
            .map_err(|_| SealError::WrongKey)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_made_once_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let (key, made) = SecretKey::load(&path, true).unwrap();
        assert!(made);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap().len(), KEY_BYTES);
        let sealed = key.seal(b"aad", b"hunter2").unwrap();
        let (again, made) = SecretKey::load(&path, true).unwrap();
        assert!(!made);
        assert_eq!(again.open(b"aad", &sealed).unwrap(), b"hunter2");
    }

    #[test]
    fn another_key_or_another_secret_does_not_open_a_value() {
        let key = SecretKey::from_bytes(&[1; KEY_BYTES]);
        let sealed = key.seal(b"db", b"hunter2").unwrap();
        assert!(!sealed.contains("hunter2"));
        let other = SecretKey::from_bytes(&[2; KEY_BYTES]);
        assert_eq!(other.open(b"db", &sealed), Err(SealError::WrongKey));
        assert_eq!(key.open(b"tls", &sealed), Err(SealError::WrongKey));
        assert_eq!(key.open(b"db", "garbage"), Err(SealError::Malformed));
    }

    #[test]
    fn a_named_key_file_must_exist_and_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        assert!(matches!(
            SecretKey::load(&path, false),
            Err(SecretKeyError::Read { .. })
        ));
        std::fs::write(&path, b"short").unwrap();
        let err = SecretKey::load(&path, false).unwrap_err();
        assert!(err.to_string().contains("exactly 32 bytes"), "{err}");
    }
}
