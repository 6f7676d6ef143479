//! Authentication: who a request comes from. The API's layer
//! (`api::authn`) takes what the request presents (a bearer token, HTTP
//! basic, the UI's session cookie, a verified client certificate) and asks
//! the [`Authenticator`] for the identity it proves; what that identity may
//! do is the engine's decision ([`crate::model::access`]).
//!
//! - [`credentials`]: the credentials file's format, and the lookups.
//! - [`reload`]: the file, read again when it changes.
//! - [`sessions`]: the UI's login sessions.
//!
//! Without a credentials file, only `--allow-anonymous` lets callers in
//! (each as the anonymous admin), and only on a loopback address: the
//! scheduler refuses to start otherwise ([`ListenCheck`]).

pub mod credentials;
pub mod reload;
pub mod sessions;

use crate::model::access::Identity;
use credentials::{Credentials, Digest32};
use reload::CredentialsFile;
use sessions::Sessions;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Semaphore;

/// What a request presents to prove who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// Nothing.
    Nothing,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// The UI's session cookie.
    Session(String),
    /// A client certificate the TLS layer verified, by its name.
    Certificate(String),
}

/// How an identity was proven, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Not at all (`--allow-anonymous`).
    Anonymous,
    /// A bearer token.
    Token,
    /// HTTP basic.
    Basic,
    /// A UI session.
    Session,
    /// A client certificate.
    Certificate,
}

impl Via {
    /// Its name in audit lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Anonymous => "anonymous",
            Via::Token => "token",
            Via::Basic => "basic",
            Via::Session => "session",
            Via::Certificate => "certificate",
        }
    }
}

/// Why a request is not authenticated (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    /// Nothing presented, and anonymous callers are not let in.
    #[error(
        "authentication required: send 'Authorization: Bearer <token>' or HTTP basic \
         credentials from the scheduler's credentials file"
    )]
    NothingPresented,
    /// A token nobody has.
    #[error("the bearer token is not in the credentials file (revoked, or mistyped)")]
    UnknownToken,
    /// A user name and password that do not match.
    #[error("user '{0}': wrong user name or password")]
    BadPassword(String),
    /// A session that ended, or never was.
    #[error("the session has ended; log in again")]
    SessionEnded,
    /// A certificate whose name is nobody's.
    #[error("client certificate '{0}' names no user in the credentials file")]
    UnknownCertificate(String),
    /// Credentials presented to a scheduler that has no credentials file.
    #[error("this scheduler has no credentials file: it takes no credentials")]
    NoCredentialsFile,
}

/// Most password checks at once: argon2 is slow on purpose, and a flood
/// of wrong passwords must not take the scheduler's cores.
const PASSWORD_CHECKS: usize = 2;
/// Most remembered password checks; past it they are all forgotten.
const PASSWORD_CACHE: usize = 4096;

/// Turns what a request presents into an identity.
#[derive(Debug)]
pub struct Authenticator {
    file: Option<Arc<CredentialsFile>>,
    allow_anonymous: bool,
    /// The UI's login sessions.
    pub sessions: Sessions,
    /// Passwords that checked, by the digest of user and password, so that
    /// a client sending HTTP basic with every request pays argon2 once.
    /// Emptied when the file changes.
    checked: Mutex<HashMap<Digest32, Arc<Identity>>>,
    checking: Semaphore,
}

impl Authenticator {
    /// With this credentials file (if any), letting anonymous callers in
    /// or not.
    pub fn new(file: Option<Arc<CredentialsFile>>, allow_anonymous: bool) -> Authenticator {
        Authenticator {
            file,
            allow_anonymous,
            sessions: Sessions::default(),
            checked: Mutex::default(),
            checking: Semaphore::new(PASSWORD_CHECKS),
        }
    }

    /// Lets everybody in as the anonymous admin: what the engine's tests
    /// and a scheduler started with `--allow-anonymous` and no file do.
    pub fn anonymous() -> Authenticator {
        Authenticator::new(None, true)
    }

    /// The credentials file, if any.
    pub fn file(&self) -> Option<Arc<CredentialsFile>> {
        self.file.clone()
    }

    /// Whether a caller presenting nothing is let in.
    pub fn allows_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    /// The credentials file changed: forget the passwords checked.
    pub fn credentials_changed(&self) {
        self.checked_lock().clear();
    }

    fn credentials(&self) -> Result<Arc<Credentials>, Unauthenticated> {
        self.file
            .as_ref()
            .map(|f| f.current())
            .ok_or(Unauthenticated::NoCredentialsFile)
    }

    /// The identity `presented` proves.
    pub async fn authenticate(
        &self,
        presented: Presented,
    ) -> Result<(Arc<Identity>, Via), Unauthenticated> {
        match presented {
            Presented::Nothing if self.allow_anonymous => {
                Ok((Arc::new(Identity::anonymous()), Via::Anonymous))
            }
            Presented::Nothing => Err(Unauthenticated::NothingPresented),
            Presented::Bearer(token) => self
                .credentials()?
                .by_token(&token)
                .map(|identity| (identity, Via::Token))
                .ok_or(Unauthenticated::UnknownToken),
            Presented::Basic { user, password } => self
                .check_password(&user, &password)
                .await
                .map(|identity| (identity, Via::Basic)),
            Presented::Session(id) => {
                let user = self
                    .sessions
                    .user(&id, Instant::now())
                    .ok_or(Unauthenticated::SessionEnded)?;
                // The user as the file says now: removed, the session ends.
                self.credentials()?
                    .by_name(&user)
                    .map(|identity| (identity, Via::Session))
                    .ok_or(Unauthenticated::SessionEnded)
            }
            Presented::Certificate(name) => self
                .credentials()?
                .by_name(&name)
                .map(|identity| (identity, Via::Certificate))
                .ok_or(Unauthenticated::UnknownCertificate(name)),
        }
    }

    /// A user name and password, checked (the UI's login, HTTP basic).
    pub async fn check_password(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Arc<Identity>, Unauthenticated> {
        let credentials = self.credentials()?;
        let key: Digest32 = {
            let mut hasher = Sha256::new();
            hasher.update(user.as_bytes());
            hasher.update([0]);
            hasher.update(password.as_bytes());
            hasher.finalize().into()
        };
        if let Some(identity) = self.checked_lock().get(&key) {
            return Ok(identity.clone());
        }
        let refused = || Unauthenticated::BadPassword(user.to_owned());
        let _turn = self.checking.acquire().await.map_err(|_| refused())?;
        let (name, secret) = (user.to_owned(), password.to_owned());
        let identity = tokio::task::spawn_blocking(move || credentials.by_password(&name, &secret))
            .await
            .ok()
            .flatten()
            .ok_or_else(refused)?;
        let mut checked = self.checked_lock();
        if checked.len() >= PASSWORD_CACHE {
            checked.clear();
        }
        checked.insert(key, identity.clone());
        Ok(identity)
    }

    fn checked_lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest32, Arc<Identity>>> {
        match self.checked.lock() {
            Ok(checked) => checked,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// What the scheduler may listen on, with what protection: anonymous
/// access only on loopback, and a non-loopback address only with TLS and
/// a credentials file.
#[derive(Debug, Clone, Copy)]
pub struct ListenCheck {
    /// The address the API listens on.
    pub listen: SocketAddr,
    /// `--tls-cert` and `--tls-key` given.
    pub tls: bool,
    /// `--credentials-file` given.
    pub credentials: bool,
    /// `--allow-anonymous` given.
    pub allow_anonymous: bool,
}

/// Why the scheduler will not listen as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenRefused {
    /// No way to authenticate anybody, and anonymous access not asked for.
    #[error(
        "no credentials: pass --credentials-file FILE (users, roles and their tokens or \
         passwords; see `drover-scheduler credentials --help`), or --allow-anonymous to \
         let unauthenticated callers in as admins (loopback addresses only)"
    )]
    NoCredentials,
    /// Anonymous access on an address others can reach.
    #[error(
        "--allow-anonymous on {0}, which is not a loopback address: anybody who can reach \
         it would be an admin; listen on 127.0.0.1 or ::1, or drop --allow-anonymous"
    )]
    AnonymousBeyondLoopback(SocketAddr),
    /// Credentials or job data in clear text on an address others can reach.
    #[error(
        "listening on {0}, which is not a loopback address, needs TLS and authentication: \
         pass --tls-cert FILE --tls-key FILE and --credentials-file FILE"
    )]
    ClearBeyondLoopback(SocketAddr),
}

impl ListenCheck {
    /// Ok when the listen address and the protection go together.
    pub fn check(self) -> Result<(), ListenRefused> {
        let loopback = self.listen.ip().is_loopback();
        if self.allow_anonymous && !loopback {
            return Err(ListenRefused::AnonymousBeyondLoopback(self.listen));
        }
        let protected = self.tls && self.credentials;
        if !loopback && !protected {
            return Err(ListenRefused::ClearBeyondLoopback(self.listen));
        }
        if !self.credentials && !self.allow_anonymous {
            return Err(ListenRefused::NoCredentials);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::access::Role;

    fn check(
        listen: &str,
        tls: bool,
        credentials: bool,
        allow_anonymous: bool,
    ) -> Result<(), ListenRefused> {
        ListenCheck {
            listen: listen.parse().unwrap(),
            tls,
            credentials,
            allow_anonymous,
        }
        .check()
    }

    #[test]
    fn listening_needs_protection_beyond_loopback() {
        assert_eq!(
            check("127.0.0.1:1", false, false, false),
            Err(ListenRefused::NoCredentials)
        );
        assert!(check("127.0.0.1:1", false, false, true).is_ok());
        assert!(check("[::1]:1", false, true, false).is_ok());
        assert!(matches!(
            check("0.0.0.0:1", true, true, true),
            Err(ListenRefused::AnonymousBeyondLoopback(_))
        ));
        assert!(matches!(
            check("0.0.0.0:1", false, true, false),
            Err(ListenRefused::ClearBeyondLoopback(_))
        ));
        assert!(matches!(
            check("10.0.0.1:1", true, false, false),
            Err(ListenRefused::ClearBeyondLoopback(_))
        ));
        assert!(check("0.0.0.0:1", true, true, false).is_ok());
        let message = check("0.0.0.0:8080", false, false, false)
            .unwrap_err()
            .to_string();
        assert!(message.contains("--tls-cert FILE --tls-key FILE and --credentials-file FILE"));
    }

    #[tokio::test]
    async fn each_way_of_proving_names_its_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        let hash = credentials::hash_password("pw").unwrap();
        std::fs::write(
            &path,
            format!(
                "users:\n  - {{name: alice, role: operator, tokens: [{}], password: '{hash}'}}\n",
                credentials::digest_text("tok")
            ),
        )
        .unwrap();
        let file = Arc::new(CredentialsFile::load(&path).unwrap());
        let auth = Authenticator::new(Some(file), false);
        let (who, via) = auth
            .authenticate(Presented::Bearer("tok".into()))
            .await
            .unwrap();
        assert_eq!(
            (who.name.as_str(), who.role, via),
            ("alice", Role::Operator, Via::Token)
        );
        let basic = |password: &str| Presented::Basic {
            user: "alice".into(),
            password: password.into(),
        };
        assert_eq!(auth.authenticate(basic("pw")).await.unwrap().1, Via::Basic);
        // Cached: the second check costs no argon2, and says the same.
        assert_eq!(
            auth.authenticate(basic("pw")).await.unwrap().0.name,
            "alice"
        );
        assert_eq!(
            auth.authenticate(basic("no")).await.unwrap_err(),
            Unauthenticated::BadPassword("alice".into())
        );
        let session = auth.sessions.open("alice", Instant::now());
        assert_eq!(
            auth.authenticate(Presented::Session(session))
                .await
                .unwrap()
                .1,
            Via::Session
        );
        assert_eq!(
            auth.authenticate(Presented::Certificate("alice".into()))
                .await
                .unwrap()
                .1,
            Via::Certificate
        );
        assert_eq!(
            auth.authenticate(Presented::Certificate("mallory".into()))
                .await
                .unwrap_err(),
            Unauthenticated::UnknownCertificate("mallory".into())
        );
        assert_eq!(
            auth.authenticate(Presented::Nothing).await.unwrap_err(),
            Unauthenticated::NothingPresented
        );
        assert_eq!(
            auth.authenticate(Presented::Bearer("old".into()))
                .await
                .unwrap_err(),
            Unauthenticated::UnknownToken
        );
    }

    #[tokio::test]
    async fn anonymous_callers_are_admins_only_when_let_in() {
        let auth = Authenticator::anonymous();
        let (who, via) = auth.authenticate(Presented::Nothing).await.unwrap();
        assert_eq!(
            (who.role, via, who.anonymous),
            (Role::Admin, Via::Anonymous, true)
        );
        // Credentials presented to a scheduler without a file are refused,
        // not ignored.
        assert_eq!(
            auth.authenticate(Presented::Bearer("x".into()))
                .await
                .unwrap_err(),
            Unauthenticated::NoCredentialsFile
        );
    }
}
