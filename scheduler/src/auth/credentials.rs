//! The credentials file: who may call the API, with what role, proving it
//! how. YAML, read at start and again whenever it changes
//! ([`super::reload`]):
//!
//! ```yaml
//! users:
//!   - name: alice
//!     role: user            # viewer | user | operator | admin
//!     teams: [payments]     # jobs owned by these teams are hers too
//!     tokens:               # bearer tokens, by their SHA-256 digest
//!       - sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
//!     password: $argon2id$v=19$m=19456,t=2,p=1$...   # HTTP basic and the UI's login
//! ```
//!
//! Tokens are kept as digests and passwords as argon2 hashes
//! (`drover-scheduler credentials token` and `... credentials hash` make
//! them), so the file gives away no secret. A client certificate whose
//! name is a user's name authenticates as that user.

use crate::model::access::{Identity, Role};
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// The prefix of a token digest in the file.
pub const TOKEN_DIGEST_PREFIX: &str = "sha256:";

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

/// The digest a token is looked up by.
pub fn token_digest(token: &str) -> Digest32 {
    Sha256::digest(token.as_bytes()).into()
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    users: Vec<UserShape>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserShape {
    name: String,
    role: String,
    #[serde(default)]
    teams: Vec<String>,
    #[serde(default)]
    tokens: Vec<String>,
    #[serde(default)]
    password: Option<String>,
}

/// A credentials file that cannot be used; nothing of it is taken.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Not YAML of the expected shape.
    #[error("not a credentials file: {0}")]
    Shape(#[from] serde_yaml::Error),
    /// A user's entry is wrong.
    #[error("user {index} ('{name}'): {problem}")]
    User {
        /// Its place in the list, from 1.
        index: usize,
        /// Its name.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

/// One user's password hash, checked against what HTTP basic presents.
#[derive(Debug, Clone)]
struct PasswordEntry {
    identity: Arc<Identity>,
    /// An argon2 PHC string, checked to parse when the file was read.
    hash: Option<String>,
}

/// The credentials as last read: lookups by token digest and by name.
#[derive(Debug, Default)]
pub struct Credentials {
    by_token: HashMap<Digest32, Arc<Identity>>,
    by_name: HashMap<String, PasswordEntry>,
}

impl Credentials {
    /// Parses a credentials file's text; every entry is checked, and any
    /// error refuses the whole file.
    pub fn parse(text: &str) -> Result<Credentials, CredentialsError> {
        let shape: FileShape = serde_yaml::from_str(text)?;
        let mut credentials = Credentials::default();
        for (i, user) in shape.users.into_iter().enumerate() {
            let problem = |problem: String| CredentialsError::User {
                index: i + 1,
                name: user.name.clone(),
                problem,
            };
            if user.name.is_empty() || user.name.chars().any(|c| c.is_control() || c == ':') {
                return Err(problem(
                    "a name is not empty and has no ':' or control characters".into(),
                ));
            }
            let role = Role::parse(&user.role).ok_or_else(|| {
                problem(format!(
                    "role '{}' is not one of viewer, user, operator, admin",
                    user.role
                ))
            })?;
            let identity = Arc::new(Identity {
                name: user.name.clone(),
                role,
                teams: user.teams.clone(),
                anonymous: false,
            });
            for token in &user.tokens {
                let digest = parse_digest(token).map_err(problem)?;
                if credentials
                    .by_token
                    .insert(digest, identity.clone())
                    .is_some()
                {
                    return Err(problem(format!("token {token} is another user's too")));
                }
            }
            if let Some(hash) = &user.password {
                PasswordHash::new(hash).map_err(|e| {
                    problem(format!(
                        "password is not an argon2 hash ({e}); make one with \
                         `drover-scheduler credentials hash`"
                    ))
                })?;
            }
            let entry = PasswordEntry {
                identity,
                hash: user.password.clone(),
            };
            if credentials
                .by_name
                .insert(user.name.clone(), entry)
                .is_some()
            {
                return Err(problem("the name is given twice".into()));
            }
        }
        Ok(credentials)
    }

    /// Users in the file.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether the file names nobody.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The identity a bearer token proves, if any.
    pub fn by_token(&self, token: &str) -> Option<Arc<Identity>> {
        self.by_token.get(&token_digest(token)).cloned()
    }

    /// The user of this name, if any (a client certificate's name, a login
    /// session's user).
    pub fn by_name(&self, name: &str) -> Option<Arc<Identity>> {
        self.by_name.get(name).map(|e| e.identity.clone())
    }

    /// The identity a user name and password prove, if they do. Slow on
    /// purpose (argon2): call it off the async workers, and cache.
    pub fn by_password(&self, name: &str, password: &str) -> Option<Arc<Identity>> {
        let entry = self.by_name.get(name)?;
        let hash = PasswordHash::new(entry.hash.as_deref()?).ok()?;
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .ok()
            .map(|()| entry.identity.clone())
    }
}

/// `sha256:<64 hex digits>`.
fn parse_digest(text: &str) -> Result<Digest32, String> {
    let bad = || {
        format!(
            "token '{text}' is not {TOKEN_DIGEST_PREFIX}<64 hex digits> (the file keeps \
             digests, not tokens: `drover-scheduler credentials token` makes both)"
        )
    };
    let hex = text.strip_prefix(TOKEN_DIGEST_PREFIX).ok_or_else(bad)?;
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(digest)
}

/// The file's spelling of a token's digest.
pub fn digest_text(token: &str) -> String {
    let digest = token_digest(token);
    let mut text = String::with_capacity(TOKEN_DIGEST_PREFIX.len() + 64);
    text.push_str(TOKEN_DIGEST_PREFIX);
    for byte in digest {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// An argon2 hash of `password` for the file.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// A new random bearer token (256 bits, URL-safe).
pub fn new_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(password_hash: &str) -> String {
        format!(
            "users:\n  - name: alice\n    role: user\n    teams: [payments]\n    tokens: [{}]\n    \
             password: '{password_hash}'\n  - name: viewer-bot\n    role: viewer\n    tokens: [{}]\n",
            digest_text("alice-token"),
            digest_text("bot-token")
        )
    }

    #[test]
    fn tokens_and_passwords_prove_their_users() {
        let hash = hash_password("s3cret").unwrap();
        let credentials = Credentials::parse(&file(&hash)).unwrap();
        assert_eq!(credentials.len(), 2);
        let alice = credentials.by_token("alice-token").unwrap();
        assert_eq!((alice.name.as_str(), alice.role), ("alice", Role::User));
        assert_eq!(alice.teams, vec!["payments".to_owned()]);
        assert_eq!(
            credentials.by_token("bot-token").unwrap().role,
            Role::Viewer
        );
        assert!(credentials.by_token("nobody's").is_none());
        assert_eq!(
            credentials.by_password("alice", "s3cret").unwrap().name,
            "alice"
        );
        assert!(credentials.by_password("alice", "wrong").is_none());
        // No password in the file: basic never proves the user.
        assert!(credentials.by_password("viewer-bot", "").is_none());
        assert!(credentials.by_name("viewer-bot").is_some());
    }

    #[test]
    fn a_bad_entry_refuses_the_file_naming_it() {
        let cases = [
            (
                "users:\n  - {name: a, role: root}\n",
                "user 1 ('a'): role 'root'",
            ),
            (
                "users:\n  - {name: a, role: user, tokens: [plain-token]}\n",
                "user 1 ('a'): token 'plain-token' is not sha256:",
            ),
            (
                "users:\n  - {name: a, role: user}\n  - {name: a, role: admin}\n",
                "user 2 ('a'): the name is given twice",
            ),
            (
                "users:\n  - {name: a, role: user, password: hunter2}\n",
                "user 1 ('a'): password is not an argon2 hash",
            ),
            (
                "users:\n  - {name: 'a:b', role: user}\n",
                "user 1 ('a:b'): a name",
            ),
            (
                "users:\n  - {name: a, role: user, extra: 1}\n",
                "unknown field `extra`",
            ),
        ];
        for (text, expected) in cases {
            let error = Credentials::parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} lacks {expected}");
        }
    }

    #[test]
    fn one_token_for_two_users_is_refused() {
        let digest = digest_text("shared");
        let text = format!(
            "users:\n  - {{name: a, role: user, tokens: [{digest}]}}\n  - {{name: b, role: user, tokens: [{digest}]}}\n"
        );
        assert!(Credentials::parse(&text)
            .unwrap_err()
            .to_string()
            .contains("is another user's too"));
    }

    #[test]
    fn new_tokens_differ_and_digest_round_trips() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(parse_digest(&digest_text(&a)).unwrap(), token_digest(&a));
    }
}
