//! Secrets (Peloton `peloton.Secret`): bytes a job's tasks get as a file in
//! their sandbox, readable only by the task's user, and shown nowhere else.
//!
//! What keeps a value out of every answer, log and event is its type:
//! - [`SecretValue`]'s `Debug` is redacted, so no `{:?}` of a spec, request
//!   or launch prints it.
//! - [`SecretSpec`] serializes its id and path, never its value: every JSON
//!   answer, watch event and task label made from a spec has no value to
//!   show. The one exception is the store, which seals values inside the
//!   spec it writes: it runs its serialization inside [`sealed_with`], and
//!   reads back inside [`opened_with`] (the engine's load) or [`blind`]
//!   (the API's readers, which never see a value). The scope is a
//!   thread-local because serde gives a field no context; it is set and
//!   cleared around one synchronous `serde_json` call, never across an
//!   await.
//!
//! The rules a job's secrets meet ([`validate`]) and how a new version
//! keeps values the user did not resend ([`carry_over`]) are pure.

use serde::de::Error as _;
use serde::ser::{Error as _, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// The largest secret, in bytes: 64 KiB. Certificates, private keys,
/// tokens and client configurations fit many times over; every run of the
/// job carries its secrets in its TaskInfo (in the ACCEPT that launches
/// it, through the master and the agent), so a job of thousands of
/// instances with large secrets would make launches megabytes each.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// The most a job's secrets may add up to: 256 KiB (see
/// [`MAX_SECRET_BYTES`]).
pub const MAX_TOTAL_SECRET_BYTES: usize = 256 * 1024;

/// The most secrets one job may have.
pub const MAX_SECRETS: usize = 32;

/// The longest secret path or id, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// A secret's bytes. Its `Debug` never shows them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// A value of these bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretValue(bytes)
    }

    /// The bytes, for the one place that hands them on (the TaskInfo).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether no value was given (a secret named only by id and path).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// One secret of a job: its id, where it goes (relative to the task's
/// sandbox) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretSpec {
    /// Peloton `secret_id`; the path when the user gives none.
    pub id: String,
    /// The file's path inside the sandbox, relative.
    pub path: String,
    /// The bytes; empty when a new version names the secret without a
    /// value (it keeps the current one, [`carry_over`]).
    pub value: SecretValue,
}

/// The JSON shape a [`SecretSpec`] is read from and written as (by hand,
/// because its value is sealed or left out): for the API's document.
#[derive(utoipa::ToSchema)]
pub struct SecretShape {
    /// Peloton `secret_id`; the path when absent.
    pub id: Option<String>,
    /// The file's path inside the sandbox, relative.
    pub path: String,
    /// The bytes, base64; absent in answers, and in an update that keeps
    /// the value the job has.
    pub value: Option<String>,
}

/// Seals and opens secret values for the store. The store's key is its
/// own; the model only calls through this.
pub trait Sealer: Send + Sync {
    /// `plain` sealed, bound to `aad`, as text.
    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<String, SealError>;
    /// The bytes `seal` sealed with the same `aad`; an error when the key
    /// is not the one that sealed them or the text was altered.
    fn open(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>, SealError>;
}

/// A value could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Opening failed: another key sealed it, or it was altered.
    #[error("cannot be decrypted with the secret key given")]
    WrongKey,
    /// The sealed text is not what `seal` writes.
    #[error("the sealed value is malformed")]
    Malformed,
    /// The cipher refused to seal (a value longer than it takes).
    #[error("the value cannot be sealed")]
    Seal,
}

/// How (de)serializing a [`SecretSpec`] treats its value on this thread.
#[derive(Clone)]
enum Scope {
    /// The store writes: values are sealed (`sealed`).
    Seal(Arc<dyn Sealer>),
    /// The store's writer reads: sealed values are opened.
    Open(Arc<dyn Sealer>),
    /// A reader without the key: sealed values are dropped.
    Blind,
    /// A writer without a key: a value cannot be stored.
    NoKey,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
    static OPEN_FAILED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Restores the scope before it on drop, so a panic cannot leave one set.
struct ScopeGuard(Option<Scope>);

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        SCOPE.with(|s| *s.borrow_mut() = previous);
    }
}

fn within<R>(scope: Scope, f: impl FnOnce() -> R) -> R {
    let previous = SCOPE.with(|s| s.borrow_mut().replace(scope));
    let _guard = ScopeGuard(previous);
    f()
}

fn current() -> Option<Scope> {
    SCOPE.with(|s| s.borrow().clone())
}

/// Runs `f` (the store serializing a spec) with secret values sealed by
/// `sealer`; `None`: the store has no key, and a value fails the write.
pub fn sealed_with<R>(sealer: Option<&Arc<dyn Sealer>>, f: impl FnOnce() -> R) -> R {
    within(sealer.map_or(Scope::NoKey, |s| Scope::Seal(s.clone())), f)
}

/// Runs `f` (the store's writer deserializing a spec) with sealed values
/// opened by `sealer`. Err(secret id) when one could not be opened (the
/// wrong key): the caller refuses the store rather than drop a secret.
pub fn opened_with<R>(sealer: &Arc<dyn Sealer>, f: impl FnOnce() -> R) -> Result<R, String> {
    OPEN_FAILED.with(|o| o.borrow_mut().take());
    let out = within(Scope::Open(sealer.clone()), f);
    match OPEN_FAILED.with(|o| o.borrow_mut().take()) {
        Some(id) => Err(id),
        None => Ok(out),
    }
}

/// Runs `f` (a reader deserializing a stored spec) with sealed values
/// dropped: readers answer with ids and paths only.
pub fn blind<R>(f: impl FnOnce() -> R) -> R {
    within(Scope::Blind, f)
}

fn aad(id: &str, path: &str) -> Vec<u8> {
    format!("drover.secret\0{id}\0{path}").into_bytes()
}

impl Serialize for SecretSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let sealed = match (current(), self.value.is_empty()) {
            (Some(Scope::Seal(sealer)), false) => Some(
                sealer
                    .seal(&aad(&self.id, &self.path), self.value.expose())
                    .map_err(S::Error::custom)?,
            ),
            (Some(Scope::NoKey), false) => {
                return Err(S::Error::custom(
                    "the store has no secret key to seal secrets with",
                ))
            }
            _ => None,
        };
        let mut s = serializer.serialize_struct("SecretSpec", 2 + usize::from(sealed.is_some()))?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("path", &self.path)?;
        if let Some(sealed) = sealed {
            s.serialize_field("sealed", &sealed)?;
        }
        s.end()
    }
}

/// A secret as JSON says it: `value` (base64) from users, `sealed` from
/// the store.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretWire {
    #[serde(default)]
    id: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    sealed: Option<String>,
}

impl<'de> Deserialize<'de> for SecretSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = SecretWire::deserialize(deserializer)?;
        let id = if wire.id.is_empty() {
            wire.path.clone()
        } else {
            wire.id
        };
        let value = match (wire.value, wire.sealed) {
            (Some(_), Some(_)) => {
                return Err(D::Error::custom(
                    "a secret has a value or is sealed, not both",
                ))
            }
            (Some(text), None) => SecretValue(decode_base64(&text).map_err(D::Error::custom)?),
            (None, Some(sealed)) => match current() {
                Some(Scope::Open(sealer)) => match sealer.open(&aad(&id, &wire.path), &sealed) {
                    Ok(bytes) => SecretValue(bytes),
                    Err(_) => {
                        OPEN_FAILED.with(|o| {
                            o.borrow_mut().get_or_insert_with(|| id.clone());
                        });
                        SecretValue::default()
                    }
                },
                Some(Scope::Blind) => SecretValue::default(),
                _ => return Err(D::Error::unknown_field("sealed", &["id", "path", "value"])),
            },
            (None, None) => SecretValue::default(),
        };
        Ok(SecretSpec {
            id,
            path: wire.path,
            value,
        })
    }
}

/// A value's base64 (standard alphabet, padding optional), with an error
/// that never quotes the text (it is the secret).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, &'static str> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim()))
        .map_err(|_| "secret value is not base64 (standard alphabet)")
}

/// A job's secrets that break a rule; each names the secret by index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// More than [`MAX_SECRETS`].
    #[error("a job has at most {max} secrets, not {count}")]
    TooMany {
        /// How many were given.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// A secret without a path.
    #[error("secrets[{index}].path is required")]
    NoPath {
        /// Which secret.
        index: usize,
    },
    /// A path that is absolute or leaves the sandbox.
    #[error("secrets[{index}].path '{path}' must be relative to the sandbox, without '.' or '..' parts or empty parts")]
    PathOutside {
        /// Which secret.
        index: usize,
        /// The path.
        path: String,
    },
    /// A path or id too long, or with control characters.
    #[error(
        "secrets[{index}].{field} is longer than {MAX_PATH_BYTES} bytes or has control characters"
    )]
    BadName {
        /// Which secret.
        index: usize,
        /// `path` or `id`.
        field: &'static str,
    },
    /// Two secrets at one path, or one inside another's path.
    #[error("secrets[{index}].path '{path}' collides with secrets[{other}].path")]
    PathTaken {
        /// Which secret.
        index: usize,
        /// Its path.
        path: String,
        /// The secret it collides with.
        other: usize,
    },
    /// Two secrets with one id.
    #[error("secrets[{index}].id '{id}' is used twice")]
    IdTaken {
        /// Which secret.
        index: usize,
        /// The id.
        id: String,
    },
    /// A secret over [`MAX_SECRET_BYTES`].
    #[error("secrets[{index}] is {bytes} bytes; a secret is at most {max} bytes")]
    TooLarge {
        /// Which secret.
        index: usize,
        /// Its size.
        bytes: usize,
        /// The cap.
        max: usize,
    },
    /// All secrets together over [`MAX_TOTAL_SECRET_BYTES`].
    #[error("the job's secrets are {bytes} bytes together; at most {max}")]
    TotalTooLarge {
        /// Their size.
        bytes: usize,
        /// The cap.
        max: usize,
    },
    /// A secret with no value that the job does not have already.
    #[error(
        "secrets[{index}] ('{id}') has no value, and the job has no secret of that id to keep"
    )]
    NoValue {
        /// Which secret.
        index: usize,
        /// Its id.
        id: String,
    },
}

/// Checks the shape of a job's secrets: count, ids, paths, sizes. Values
/// may be missing here (a new version keeps current ones); [`require_values`]
/// checks them once carried over.
pub fn validate(secrets: &[SecretSpec]) -> Result<(), SecretError> {
    if secrets.len() > MAX_SECRETS {
        return Err(SecretError::TooMany {
            count: secrets.len(),
            max: MAX_SECRETS,
        });
    }
    let mut ids = HashSet::new();
    let mut total = 0usize;
    for (index, s) in secrets.iter().enumerate() {
        if s.path.is_empty() {
            return Err(SecretError::NoPath { index });
        }
        for (field, text) in [("path", &s.path), ("id", &s.id)] {
            if text.len() > MAX_PATH_BYTES || text.chars().any(char::is_control) {
                return Err(SecretError::BadName { index, field });
            }
        }
        if !is_inside_sandbox(&s.path) {
            return Err(SecretError::PathOutside {
                index,
                path: s.path.clone(),
            });
        }
        if !ids.insert(s.id.as_str()) {
            return Err(SecretError::IdTaken {
                index,
                id: s.id.clone(),
            });
        }
        let bytes = s.value.expose().len();
        if bytes > MAX_SECRET_BYTES {
            return Err(SecretError::TooLarge {
                index,
                bytes,
                max: MAX_SECRET_BYTES,
            });
        }
        total += bytes;
    }
    if total > MAX_TOTAL_SECRET_BYTES {
        return Err(SecretError::TotalTooLarge {
            bytes: total,
            max: MAX_TOTAL_SECRET_BYTES,
        });
    }
    check_paths_apart(secrets)
}

/// A relative path of plain parts: no leading `/`, no `.`, `..` or empty
/// part, so that joined to the sandbox it stays inside it.
pub fn is_inside_sandbox(path: &str) -> bool {
    !path.starts_with('/')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// No two secrets at one path, and none under another's (a file cannot
/// also be a directory).
fn check_paths_apart(secrets: &[SecretSpec]) -> Result<(), SecretError> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, s) in secrets.iter().enumerate() {
        let prefixes = s
            .path
            .match_indices('/')
            .map(|(at, _)| &s.path[..at])
            .chain(std::iter::once(s.path.as_str()));
        for prefix in prefixes {
            if let Some(&other) = seen.get(prefix) {
                return Err(SecretError::PathTaken {
                    index,
                    path: s.path.clone(),
                    other,
                });
            }
        }
        let under = format!("{}/", s.path);
        if let Some((_, &other)) = seen
            .range(under.as_str()..)
            .next()
            .filter(|(p, _)| p.starts_with(&under))
        {
            return Err(SecretError::PathTaken {
                index,
                path: s.path.clone(),
                other,
            });
        }
        seen.insert(&s.path, index);
    }
    Ok(())
}

/// Whether a new version's secrets (`next`, as sent: maybe none, maybe
/// without values) change the job's (`current`): what a pod gets changes,
/// so every pod is updated.
pub fn differ(current: &[SecretSpec], next: &[SecretSpec]) -> bool {
    if next.is_empty() {
        return false;
    }
    current.len() != next.len()
        || current.iter().zip(next).any(|(c, n)| {
            c.id != n.id || c.path != n.path || (!n.value.is_empty() && c.value != n.value)
        })
}

/// Every secret has a value (after [`carry_over`]).
pub fn require_values(secrets: &[SecretSpec]) -> Result<(), SecretError> {
    match secrets.iter().position(|s| s.value.is_empty()) {
        Some(index) => Err(SecretError::NoValue {
            index,
            id: secrets[index].id.clone(),
        }),
        None => Ok(()),
    }
}

/// The secrets of a job's new version (Peloton ReplaceJob/PatchJob), from
/// what the user sent and what the job has: naming none keeps the job's
/// secrets (Peloton keeps a job's secret volumes when an update names no
/// secrets); naming some makes them the job's secrets, and one named by
/// an id the job has, without a value, keeps that secret's value (so that
/// what GetJob answers, ids and paths, can be sent back unchanged).
pub fn carry_over(current: &[SecretSpec], next: &mut Vec<SecretSpec>) {
    if next.is_empty() {
        next.extend(current.iter().cloned());
        return;
    }
    for secret in next.iter_mut().filter(|s| s.value.is_empty()) {
        if let Some(kept) = current.iter().find(|c| c.id == secret.id) {
            secret.value = kept.value.clone();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
